/* Host-side processes of a GCS connection: container init, exec into a container, and UVM
 * (null container id) processes.  Starting one allocates stdio ports (stdin, stdout, stderr
 * order, requested pipes only), listens on them BEFORE ExecuteProcess is sent, accepts one
 * connection per port, and right after ExecuteProcess succeeds sends WaitForProcess
 * {pid, 0xFFFFFFFF}.  stdout/stderr are read to EOF and then closed (the guest reports the
 * exit only after that, spec §6.4); the exit callback runs once the exit code is known AND
 * all output has been delivered.  HrErrNotFound on a wait counts as exit code 0 (as the Go
 * host does: the Go GCS forgets an exec'd process whose code was already collected; ferry-gcs
 * keeps it and answers such a wait with the real code). */
#ifndef FERRY_HOST_PROCESS_H
#define FERRY_HOST_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "host/gcs_client.h"
#include "host/gcs_state.h"

struct gcs_process;

struct gcs_stdio_config {
	bool want_stdin, want_stdout, want_stderr; /* CreateStd{In,Out,Err}Pipe */
	/* Local endpoints, borrowed (the caller keeps them open until the process is freed).
	 * stdin_fd: copied to the guest until EOF, then the guest side is shut down for writing;
	 * -1: feed it with gcs_process_write_stdin/close_stdin.
	 * stdout_fd/stderr_fd: sinks (file, FIFO, pipe, terminal); -1: ops->on_output. */
	int stdin_fd, stdout_fd, stderr_fd;
};

struct gcs_process_config {
	const char *container_id; /* NULL or GCS_NULL_CONTAINER_ID: a UVM process */
	json_t *oci_process;      /* container only: NULL starts the init, else exec (borrowed) */
	/* UVM process only (ProcessParameters CommandArgs/WorkingDirectory/Environment): */
	const char *const *argv; /* NULL-terminated, required for UVM processes */
	const char *cwd;         /* NULL: "/" */
	const char *const *env;  /* "K=V", NULL-terminated; NULL: the Go host's default PATH */
	bool emulate_console;    /* allocate a pty in the guest */
	struct gcs_stdio_config stdio;
};

struct gcs_process_ops {
	/* ExecuteProcess answered: status 0 (pid known) or failure (the process is dead, no
	 * on_exit follows; free it). */
	void (*on_started)(struct gcs_process *p, const struct gcs_result *r, void *ud);
	/* Output from stream 1 (stdout) or 2 (stderr) when no sink fd was given.  May be NULL. */
	void (*on_output)(struct gcs_process *p, int stream, const void *data, size_t n, void *ud);
	/* Exit code known and output flushed (status 0), or the wait failed (bridge closed,
	 * guest error).  Called at most once; may free the process. */
	void (*on_exit)(struct gcs_process *p, const struct gcs_result *r, uint32_t exit_code,
	                void *ud);
};

/* Start a process.  Stdio listeners are created now; ExecuteProcess is queued.  `cfg` and
 * `ops` are copied (strings and JSON too).  Returns NULL with `e` filled when the client is
 * not ready, the config is invalid, or a stdio listen fails.  The process stays attached to
 * the client; gcs_client_free frees any left. */
struct gcs_process *gcs_process_start(struct gcs_client *c, const struct gcs_process_config *cfg,
                                      const struct gcs_process_ops *ops, void *ud, struct err *e);

/* NULL-safe; safe from inside the process's own callbacks.  A process that has not exited
 * keeps running in the guest; its pending wait is cancelled and its stdio is closed. */
void gcs_process_free(struct gcs_process *p);

uint32_t gcs_process_pid(const struct gcs_process *p); /* 0 until started */
const char *gcs_process_container_id(const struct gcs_process *p);
struct gcs_client *gcs_process_client(const struct gcs_process *p);

typedef void (*gcs_process_done_fn)(struct gcs_process *p, const struct gcs_result *r, void *ud);

/* SignalProcess {pid, Options{Signal}} (sig 0: Options omitted = SIGKILL in the guest).
 * HrErrNotFound (already exited) completes with status 0 and hresult HR_ERR_NOT_FOUND, i.e.
 * "not delivered" rather than an error.  Requires the process to be started (-EINVAL). */
int gcs_process_signal(struct gcs_process *p, int sig, gcs_process_done_fn done, void *ud,
                       struct err *e);
/* ResizeConsole {pid, Height, Width}. */
int gcs_process_resize(struct gcs_process *p, uint16_t height, uint16_t width,
                       gcs_process_done_fn done, void *ud, struct err *e);

/* Queue bytes for the guest's stdin (only when stdin was requested without a stdin_fd);
 * -EPIPE after close_stdin. */
int gcs_process_write_stdin(struct gcs_process *p, const void *data, size_t n, struct err *e);
/* After queued bytes are sent, shut the stdin connection down for writing (EOF in the guest). */
int gcs_process_close_stdin(struct gcs_process *p, struct err *e);

/* An extra WaitForProcess with a finite timeout (the migration exit probe uses 50 ms):
 * status -EREMOTEIO with hresult HR_VMCOMPUTE_TIMEOUT when still running; status 0 and the
 * code when exited (HrErrNotFound: 0). */
typedef void (*gcs_process_wait_fn)(struct gcs_process *p, const struct gcs_result *r,
                                    uint32_t exit_code, void *ud);
int gcs_process_wait(struct gcs_process *p, uint32_t timeout_ms, gcs_process_wait_fn done, void *ud,
                     struct err *e);

/* Per-process counters (a view; the migration state is struct gcs_process_mstate). */
struct gcs_process_state {
	uint32_t pid;
	uint32_t stdin_port, stdout_port, stderr_port; /* 0: pipe not requested */
	bool wait_pending; /* the infinite WaitForProcess is in flight */
	uint64_t wait_id;  /* its bridge id */
	uint64_t stdin_bytes, stdout_bytes, stderr_bytes; /* relayed so far */
	bool exited;
	uint32_t exit_code;
};
void gcs_process_get_state(const struct gcs_process *p, struct gcs_process_state *out);

/* ---- migration (host/gcs_state.h) ---- */

/* The migration state of p (copies; release with gcs_process_mstate_fini). */
void gcs_process_export(const struct gcs_process *p, struct gcs_process_mstate *out);
void gcs_process_mstate_fini(struct gcs_process_mstate *s);
/* True once the exit was reported (nothing left to migrate). */
bool gcs_process_finished(const struct gcs_process *p);

/* "OpenProcessWithIO" (hcsshim-lm.md §7) on a host taking over a guest: listen again on the
 * saved stdio ports (stdio.stdin_fd etc. as in gcs_stdio_config; want_* follow the saved
 * ports), adopt the outstanding wait id (st->wait_pending must be set: -EINVAL otherwise),
 * and once the bridge is (re)negotiated re-subscribe: with ferry-gcs (FerryStdioResume) a new
 * infinite WaitForProcess replaces the adopted one (which may never have reached the guest;
 * its id becomes an orphan), otherwise a 50 ms probe WaitForProcess catches an exit of the
 * blackout, as hcsshim does.  The same happens on every reconnect of a process's own host.  Output streams resume at st->stdio[i].offset, or, when
 * offset_known is false, hold READY until gcs_process_set_stream_offsets.  stdin resumes
 * from the guest's HELLO with the saved unacknowledged bytes.  May be called before the
 * bridge is accepted (that is the point).  Returns NULL with e on failure. */
struct gcs_process *gcs_process_open(struct gcs_client *c, const struct gcs_process_mstate *st,
                                     const struct gcs_stdio_config *stdio,
                                     const struct gcs_process_ops *ops, void *ud, struct err *e);
/* Late output offsets (UINT64_MAX: leave that stream as is). */
int gcs_process_set_stream_offsets(struct gcs_process *p, uint64_t stdout_off, uint64_t stderr_off,
                                   struct err *e);
/* Output stream `stream` (1 stdout, 2 stderr) of an opened process has the guest's re-dial
 * and HELLO but holds READY (and passes on no byte) until its offset is set;
 * *hello_offset (may be NULL) receives the guest's retained floor.  False otherwise. */
bool gcs_process_stdio_held(const struct gcs_process *p, int stream, uint64_t *hello_offset);
/* Every stdio stream of p is connected again (resume mode: READY sent), or finished. */
bool gcs_process_stdio_attached(const struct gcs_process *p);
/* A few lines on the process and its streams, for debugging dumps (snprintf semantics). */
int gcs_process_describe(const struct gcs_process *p, char *out, size_t n);
/* The process attached to c with that container id and pid, or NULL. */
struct gcs_process *gcs_client_find_process(struct gcs_client *c, const char *container_id,
                                            uint32_t pid);
/* All processes attached to c (for export); returns how many were stored (at most max). */
size_t gcs_client_processes(struct gcs_client *c, struct gcs_process **out, size_t max);

#endif
