/* The process controller's saved state: hcsshim's process payload
 * (hcsshim.controller.process.save.v1.Payload, spec hcsshim-lm.md §3.6) plus ferry's
 * fields — per-stream resume state (delivered/acknowledged offsets, unacknowledged stdin,
 * EOF) and a retained exit status (docs/saved-state.md).  Every process travels, init and
 * exec'd, in its container's `processes` map (or, for a process of the utility VM itself,
 * in the VM payload's ferry_uvm_processes).
 *
 * Shape shared by every <object>_save module: a plain struct that is what the controller
 * hands over; <object>_save_encode packs it into a google.protobuf.Any; <object>_save_decode
 * checks and unpacks one (a failed decode leaves *out untouched); <object>_save_fini frees
 * it; <object>_save_from_any is the step a parent payload's decoder calls. */
#ifndef FERRY_HOST_CTRL_PROCESS_SAVE_H
#define FERRY_HOST_CTRL_PROCESS_SAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "google/protobuf/any.pb-c.h"
#include "host/gcs_state.h"

struct save_dec;

/* Index of stdio[]. */
enum { PROCESS_STDIN, PROCESS_STDOUT, PROCESS_STDERR };

/* Largest unacknowledged stdin a payload may carry (the guest's resume window). */
#define PROCESS_SAVE_MAX_UNACKED GCS_STATE_MAX_UNACKED

struct process_stream_save {
	uint32_t port;     /* GCS vsock port; 0: the stream was not requested */
	bool has_resume;   /* ferry's resume state below is present (never from hcsshim) */
	uint64_t offset;   /* stdin: acknowledged by the guest; stdout/stderr: delivered */
	bool offset_known; /* stdout/stderr: false = it comes with FinalizeSandbox; stdin: true */
	bool eof;
	uint8_t *unacked; /* stdin: bytes [offset, offset + n_unacked) (owned) */
	size_t n_unacked;
};

struct process_save {
	char *exec_id; /* "" for the init process (owned, never NULL once decoded) */
	int32_t pid;   /* in the guest, > 0 */
	char *bundle;  /* host OCI bundle path (owned) */
	/* The OCI process spec as JSON text, NUL-terminated (a JSON object or null), or NULL
	 * for none (the init process). */
	char *spec_json;
	size_t spec_len;
	int64_t io_retry_timeout_ns;
	struct process_stream_save stdio[3];
	int64_t wait_call_id; /* the source's outstanding WaitForProcess id; 0: none */
	/* ferry: the process exited and its status is kept until the task is deleted. */
	bool exited;
	uint32_t exit_code;
	int64_t exited_at_ns; /* CLOCK_REALTIME */
};

/* NULL-safe; zeroes *s. */
void process_save_fini(struct process_save *s);

/* Pack s (exec_id NULL counts as "").  out: type_url static, value malloc'd (release with
 * save_any_fini).  -E2BIG when too large. */
int process_save_encode(const struct process_save *s, Google__Protobuf__Any *out, struct err *e);

/* Check and unpack a process payload (every check of docs/saved-state.md: type URL, schema,
 * strings, pid, ports, the OCI spec JSON, resume state, durations).  On failure *out is
 * left as it was and e names the field and the value. */
int process_save_decode(const Google__Protobuf__Any *any, struct process_save *out, struct err *e);

/* For parent payloads: decode `any` within decode d.  `key` is the exec id the parent's map
 * keys it by (the payload's exec_id must equal it), or NULL; `label` names it in errors
 * until its exec_id is known.  On failure *out is zeroed. */
int process_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *key,
                          struct process_save *out);

/* ---- the GCS client's half (host/gcs_state.h), for the controllers of the next step ---- */

/* Fill p's pid, stdio ports, resume state and wait_call_id from the GCS client's
 * migration state of the process (exec_id, bundle, spec are the controller's).  Copies the
 * unacknowledged bytes.  -EINVAL when m cannot be expressed (pid beyond int32, a pending
 * wait with id 0 or beyond int64). */
int process_save_from_gcs(struct process_save *p, const struct gcs_process_mstate *m,
                          struct err *e);
/* The reverse: a gcs_process_mstate for gcs_process_open (owned by the caller:
 * gcs_process_mstate_fini).  Streams without resume state get an unknown output offset
 * (stdin: offset 0).  wait_pending is wait_call_id != 0. */
void process_save_to_gcs(const struct process_save *p, const char *gcs_container_id,
                         struct gcs_process_mstate *out);

#endif
