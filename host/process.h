/* Host-side processes of a GCS connection: container init, exec into a container, and UVM
 * (null container id) processes.  Starting one allocates stdio ports (stdin, stdout, stderr
 * order, requested pipes only), listens on them BEFORE ExecuteProcess is sent, accepts one
 * connection per port, and right after ExecuteProcess succeeds sends WaitForProcess
 * {pid, 0xFFFFFFFF}.  stdout/stderr are read to EOF and then closed (the guest reports the
 * exit only after that, spec §6.4); the exit callback runs once the exit code is known AND
 * all output has been delivered.  HrErrNotFound on a wait counts as exit code 0 (as the Go
 * host does: an exec'd process whose code was already collected is forgotten by the guest). */
#ifndef FERRY_HOST_PROCESS_H
#define FERRY_HOST_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "host/gcs_client.h"

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

/* Per-process migration state (issue 4 builds on it). */
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

#endif
