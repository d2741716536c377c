/* Migration state of a host GCS client (issue 4, docs/stdio-resume.md §1-§2): everything a
 * destination host (or the source, on rollback) needs to take over a running guest: the next
 * stdio port and bridge id, the containers waiting for their exit notification, and per
 * process its stdio ports, the outstanding WaitForProcess id and per-stream offsets (bytes
 * delivered to the sink for stdout/stderr; bytes acknowledged by the guest plus the
 * unacknowledged bytes themselves for stdin).  Exported from a live client, serialised as
 * JSON (a stop-gap until the versioned protobuf payloads), decoded with hostile-input checks,
 * and adopted by a new client before it accepts the guest's re-dial. */
#ifndef FERRY_HOST_GCS_STATE_H
#define FERRY_HOST_GCS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct gcs_client;

#define GCS_STATE_VERSION     1
#define GCS_STATE_MAX_PROCS   4096
#define GCS_STATE_MAX_UNACKED (1024u * 1024u) /* RESUME_SENDER_CAP */
#define GCS_STATE_MAX_TEXT    (64u * 1024u * 1024u)

struct gcs_stream_state {
	uint32_t port;   /* 0: the pipe was not requested */
	uint64_t offset; /* stdout/stderr: delivered to the sink; stdin: acknowledged */
	bool
	    offset_known; /* output: false = the offset comes later (gcs_client_set_stream_offsets) */
	bool eof;         /* stdin: the host closed it; output: the final offset was acknowledged */
	uint8_t *unacked; /* stdin: bytes [offset, offset + n_unacked) (owned) */
	size_t n_unacked;
};

struct gcs_process_mstate {
	char *container_id; /* owned; GCS_NULL_CONTAINER_ID for UVM processes */
	uint32_t pid;
	struct gcs_stream_state stdio[3]; /* stdin, stdout, stderr */
	bool wait_pending;                /* the infinite WaitForProcess is outstanding */
	uint64_t wait_id;                 /* its bridge id */
};

struct gcs_client_state {
	uint32_t next_port;
	uint64_t next_id;
	/* The session secret the guest holds (bridge/session.h, docs/bridge.md "Sessions"):
	 * the destination needs it to check the guest's re-dial (FerrySessionProof), its stdio
	 * HELLOs and to wake it.  Set when the source established a session with a ferry guest;
	 * false with a plain hcsshim guest (no proof is then asked, as in hcsshim).  A secret:
	 * whoever holds the state can impersonate the host to the guest and the guest to a
	 * host, so the state travels and rests like a key. */
	uint8_t session_secret[32];
	bool has_session_secret;
	char **containers; /* registered for their exit notification (owned) */
	size_t n_containers;
	struct gcs_process_mstate *procs; /* processes not yet reported exited (owned) */
	size_t n_procs;
	/* Other calls outstanding at the cut (e.g. an exit probe, a signal): their late
	 * responses reach the new host, which must drop them instead of killing the bridge. */
	uint64_t *orphans;
	size_t n_orphans;
};

/* Snapshot a client (call after gcs_client_cut for final offsets).  Processes whose exit was
 * already reported are left out.  *out is owned by the caller (gcs_client_state_fini). */
void gcs_client_export_state(struct gcs_client *c, struct gcs_client_state *out);
/* NULL-safe, idempotent; zeroes *s. */
void gcs_client_state_fini(struct gcs_client_state *s);
/* JSON text (malloc'd, NUL-terminated); the session secret is "SessionSecret", 64 hex
 * digits, present only with has_session_secret. */
char *gcs_client_state_to_json(const struct gcs_client_state *s);
/* Decode; every field is checked (types, ranges, ports >= GCS_FIRST_STDIO_PORT, sizes,
 * duplicates, base64).  -EBADMSG with a message naming the path on bad input, *out zeroed. */
int gcs_client_state_from_json(const char *text, size_t len, struct gcs_client_state *out,
                               struct err *e);

/* Destination side, BEFORE the guest's re-dial is accepted (right after gcs_client_new):
 * raise the next id / next port, register the containers for their exit notification and
 * put the client in migrating mode.  Processes are opened one by one with gcs_process_open
 * (host/process.h), so the caller chooses their sinks and callbacks. */
int gcs_client_adopt(struct gcs_client *c, const struct gcs_client_state *s, struct err *e);

/* The final delivered offsets of an adopted process's output streams arrived late (in a real
 * migration: with FinalizeSandbox's extension field).  READY for those streams is held
 * until then.  -ENOENT when no such process is attached; UINT64_MAX leaves a stream as is. */
int gcs_client_set_stream_offsets(struct gcs_client *c, const char *container_id, uint32_t pid,
                                  uint64_t stdout_off, uint64_t stderr_off, struct err *e);

#endif
