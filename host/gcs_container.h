/* Container-level RPCs of the host GCS client (see host/gcs_client.h for the client, its
 * result type and callbacks).  Each call is asynchronous: it queues one request on the
 * bridge and reports through a completion callback on the client's loop. */
#ifndef FERRY_HOST_GCS_CONTAINER_H
#define FERRY_HOST_GCS_CONTAINER_H

#include "host/gcs_client.h"

/* Container creation settings (ContainerConfig, SchemaVersion 2.1). */
struct gcs_container_config {
	const char *bundle_path; /* NULL: "/run/gcs/c/<id>" */
	json_t *oci_spec;        /* OCI runtime spec (borrowed; serialized into the request) */
	const char *scratch_dir; /* NULL: omitted (empty) */
};

/* Every RPC below returns 0 when the request was queued (then `done` runs exactly once, unless
 * the client is freed first) or a negative errno with `e` filled (then `done` is never
 * called): -ENOTCONN before negotiation / after close, -EINVAL for bad arguments.
 * `done` may be NULL. */

/* Create: registers `id` in the wait table BEFORE sending (so an exit notification for it is
 * routed to on_container_exit).  A failed Create removes the registration. */
int gcs_client_create_container(struct gcs_client *c, const char *id,
                                const struct gcs_container_config *cfg, gcs_done_fn done, void *ud,
                                struct err *e);
int gcs_client_start_container(struct gcs_client *c, const char *id, gcs_done_fn done, void *ud,
                               struct err *e);
/* ShutdownGraceful (SIGTERM to init) or ShutdownForced (SIGKILL).  0xC037010E is success. */
int gcs_client_shutdown_container(struct gcs_client *c, const char *id, bool graceful,
                                  gcs_done_fn done, void *ud, struct err *e);
/* DeleteContainerState; also forgets the wait-table registration of `id`. */
int gcs_client_delete_container(struct gcs_client *c, const char *id, gcs_done_fn done, void *ud,
                                struct err *e);
/* ModifySettings with `request` = the ModificationRequest object (borrowed). */
int gcs_client_modify_settings(struct gcs_client *c, const char *id, json_t *request,
                               gcs_done_fn done, void *ud, struct err *e);

/* GetProperties {"PropertyTypes":["ProcessList"]}: `pids` (n entries) is valid only during
 * the callback; n == 0 on failure. */
typedef void (*gcs_pids_fn)(struct gcs_client *c, const struct gcs_result *r, const uint32_t *pids,
                            size_t n, void *ud);
int gcs_client_get_process_list(struct gcs_client *c, const char *id, gcs_pids_fn done, void *ud,
                                struct err *e);

#endif
