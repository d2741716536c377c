/* Container-level GCS RPCs on top of the generic call path of host/gcs_client.c: Create
 * (ContainerConfig schema 2.1, registering the id in the client's wait table first), Start,
 * ShutdownGraceful/Forced (0xC037010E = success), DeleteContainerState, ModifySettings and
 * GetProperties(ProcessList).  Contracts are documented in host/gcs_container.h. */
#include "host/gcs_container.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/proto.h"
#include "common/xalloc.h"

/* Adapter from gcs_raw_fn to gcs_done_fn, optionally mapping an HRESULT to success. */
struct done_ctx {
	gcs_done_fn done;
	gcs_pids_fn pids;
	void *ud;
	int32_t ok_hr;   /* also success (0: none) */
	char *forget_id; /* wait-table entry to drop: on failure (create) or success (delete) */
	bool forget_on_success;
};

static void on_simple_done(struct gcs_client *c, const struct gcs_result *r, const void *resp,
                           void *ud)
{
	struct done_ctx *d = ud;
	struct gcs_result rr = *r;
	(void)resp;
	if (rr.status == -EREMOTEIO && d->ok_hr && rr.hresult == d->ok_hr)
		memset(&rr, 0, sizeof(rr));
	if (d->forget_id && (rr.status == 0) == d->forget_on_success)
		gcs_client_unregister_container(c, d->forget_id);
	if (d->done)
		d->done(c, &rr, d->ud);
	free(d->forget_id);
	free(d);
}

static int simple_call(struct gcs_client *c, uint32_t rpc, const char *id,
                       enum bridge_msg_kind kind, const void *req, struct done_ctx *tmpl,
                       struct err *e)
{
	if (!id || !*id) {
		free(tmpl->forget_id);
		return err_set(e, -EINVAL, "%s: empty container id", bridge_type_name(rpc));
	}
	struct done_ctx *d = xmalloc(sizeof(*d));
	*d = *tmpl;
	struct bridge_req_base base = {0};
	if (!req) {
		kind = BMSG_REQ_BASE;
		req = &base;
	}
	enum bridge_msg_kind rk = rpc == RPC_CREATE ? BMSG_CREATE_RESP : BMSG_RESP_BASE;
	int rc = gcs_client_call_msg(c, rpc, id, kind, req, rk, 0, on_simple_done, d, NULL, e);
	if (rc < 0) {
		free(d->forget_id);
		free(d);
	}
	return rc;
}

int gcs_client_create_container(struct gcs_client *c, const char *id,
                                const struct gcs_container_config *cfg, gcs_done_fn done, void *ud,
                                struct err *e)
{
	if (!id || !*id || !cfg || !json_is_object(cfg->oci_spec))
		return err_set(e, -EINVAL, "create: need a container id and an OCI spec object");
	if (!gcs_client_is_ready(c))
		return err_set(e, -ENOTCONN, "create: gcs bridge not negotiated");
	_cleanup_free_ char *bundle =
	    cfg->bundle_path ? xstrdup(cfg->bundle_path) : xasprintf("/run/gcs/c/%s", id);
	struct bridge_create_req req = {
	    .config = {.schema_version = {2, 1},
	               .oci_bundle_path = bundle,
	               .oci_specification = cfg->oci_spec,
	               .scratch_dir_path = (char *)(cfg->scratch_dir ? cfg->scratch_dir : "")}};
	/* Register before sending: the exit notification must find the container. */
	bool had = gcs_client_register_container(c, id, NULL) < 0;
	struct done_ctx d = {.done = done, .ud = ud, .forget_id = had ? NULL : xstrdup(id)};
	int rc = simple_call(c, RPC_CREATE, id, BMSG_CREATE_REQ, &req, &d, e);
	if (rc < 0 && !had)
		gcs_client_unregister_container(c, id);
	return rc;
}

int gcs_client_start_container(struct gcs_client *c, const char *id, gcs_done_fn done, void *ud,
                               struct err *e)
{
	struct done_ctx d = {.done = done, .ud = ud};
	return simple_call(c, RPC_START, id, BMSG_NONE, NULL, &d, e);
}

int gcs_client_shutdown_container(struct gcs_client *c, const char *id, bool graceful,
                                  gcs_done_fn done, void *ud, struct err *e)
{
	struct done_ctx d = {.done = done, .ud = ud, .ok_hr = HR_VMCOMPUTE_SYSTEM_NOT_FOUND};
	return simple_call(c, graceful ? RPC_SHUTDOWN_GRACEFUL : RPC_SHUTDOWN_FORCED, id, BMSG_NONE,
	                   NULL, &d, e);
}

int gcs_client_delete_container(struct gcs_client *c, const char *id, gcs_done_fn done, void *ud,
                                struct err *e)
{
	struct done_ctx d = {.done = done,
	                     .ud = ud,
	                     .forget_id = id ? xstrdup(id) : NULL,
	                     .forget_on_success = true};
	return simple_call(c, RPC_DELETE_CONTAINER_STATE, id, BMSG_NONE, NULL, &d, e);
}

int gcs_client_modify_settings(struct gcs_client *c, const char *id, json_t *request,
                               gcs_done_fn done, void *ud, struct err *e)
{
	if (!json_is_object(request))
		return err_set(e, -EINVAL, "modify settings: request must be an object");
	/* The request object is passed through as the typed struct's parts. */
	json_t *rt = json_object_get(request, "RequestType");
	json_t *rs = json_object_get(request, "ResourceType");
	struct bridge_modify_req req = {
	    .request_type = (char *)(json_is_string(rt) ? json_string_value(rt) : "Add"),
	    .resource_type = json_is_string(rs) ? (char *)json_string_value(rs) : NULL,
	    .settings = json_object_get(request, "Settings"),
	};
	struct done_ctx d = {.done = done, .ud = ud};
	return simple_call(c, RPC_MODIFY_SETTINGS, id, BMSG_MODIFY_REQ, &req, &d, e);
}

static void on_props_done(struct gcs_client *c, const struct gcs_result *r, const void *resp,
                          void *ud)
{
	struct done_ctx *d = ud;
	struct gcs_result rr = *r;
	uint32_t *pids = NULL;
	size_t n = 0;
	if (rr.status == 0) {
		const struct bridge_props_resp *pr = resp;
		pids = xcalloc(pr->props.n_process_list + 1, sizeof(*pids));
		for (size_t i = 0; i < pr->props.n_process_list; i++)
			pids[n++] = pr->props.process_list[i].process_id;
	}
	if (d->pids)
		d->pids(c, &rr, rr.status == 0 ? pids : NULL, rr.status == 0 ? n : 0, d->ud);
	free(pids);
	free(d);
}

int gcs_client_get_process_list(struct gcs_client *c, const char *id, gcs_pids_fn done, void *ud,
                                struct err *e)
{
	if (!id || !*id)
		return err_set(e, -EINVAL, "GetProperties: empty container id");
	char *types[] = {"ProcessList"};
	struct bridge_props_req req = {.property_types = types, .n_property_types = 1};
	struct done_ctx *d = xcalloc(1, sizeof(*d));
	d->pids = done;
	d->ud = ud;
	int rc = gcs_client_call_msg(c, RPC_GET_PROPERTIES, id, BMSG_PROPS_REQ, &req,
	                             BMSG_PROPS_RESP, 0, on_props_done, d, NULL, e);
	if (rc < 0)
		free(d);
	return rc;
}
