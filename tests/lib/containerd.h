/* A private containerd for tests: Debian's containerd 1.6 with its own version 2 config.toml
 * whose root, state, gRPC socket and ttrpc socket all live in a temporary directory (the CRI
 * plugin disabled), started, waited for, stopped and restarted by the test; a busybox image
 * built locally (tests/scripts/mkimage.sh: an OCI image layout of busybox-static, no registry)
 * imported with `ctr images import`; and `ctr` commands run against it with their output and
 * exit status captured.  containerd runs in the test's own private mount namespace (entered
 * by ctrd_init), so the rootfs mounts of its tasks never reach the host's.
 *
 * Blocking calls, for test bodies and fixtures (never inside a loop callback).  Needs root
 * (containerd and runc do): ctrd_init returns -EPERM otherwise and the test skips. */
#ifndef FERRY_TESTS_CONTAINERD_H
#define FERRY_TESTS_CONTAINERD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

struct ctrd {
	char *dir;        /* the temporary directory (owned) */
	char *sock;       /* <dir>/c.sock: containerd's gRPC address, what ctr -a takes */
	char *ttrpc;      /* <dir>/c.sock.ttrpc: TTRPC_ADDRESS, where shims forward events */
	char *state;      /* <dir>/state */
	char *log;        /* <dir>/containerd.log: containerd's output, appended across restarts */
	pid_t pid;        /* containerd's pid while it runs, else 0 */
	double timeout_s; /* for start, stop and each ctr command; 120 s by default */
};

/* The output and exit status of one command. */
struct ctrd_out {
	int status; /* exit code, or 128 + signal */
	char *text; /* stdout and stderr interleaved, NUL-terminated (owned; ctrd_out_fini) */
	size_t len;
};

/* Enter a private mount namespace (once per process), create the directory and config.
 * 0, -EPERM when not root, or -errno with `e`. */
int ctrd_init(struct ctrd *c, struct err *e);

/* Start containerd and wait until it answers `ctr version` and its ttrpc socket exists.
 * -ETIMEDOUT or -EIO (it died; `e` quotes the end of its log). */
int ctrd_start(struct ctrd *c, struct err *e);

/* SIGTERM, wait (SIGKILL after timeout_s).  Its shims and tasks keep running, as with a real
 * containerd restart.  0 when stopped (also when it was not running). */
int ctrd_stop(struct ctrd *c, struct err *e);

/* Stop, then start. */
int ctrd_restart(struct ctrd *c, struct err *e);

/* Kill and delete every task and container it knows (shims of tasks containerd lost are
 * killed through their shim.pid), stop containerd, remove the directory.  NULL-safe, and safe
 * on a struct that ctrd_init failed on. */
void ctrd_fini(struct ctrd *c);

/* Run `ctr -a SOCK ARGS...` (NULL-terminated), stdin from /dev/null, output captured.  0 when
 * it ran (whatever its status, in out->status), -ETIMEDOUT (killed after timeout_s) or -errno
 * with `e`. */
int ctrd_ctr(struct ctrd *c, struct ctrd_out *out, struct err *e, ...) __attribute__((sentinel));
void ctrd_out_fini(struct ctrd_out *out);

/* Start `ctr -a SOCK ARGS...` in the background with its stdout and stderr on a pipe: returns
 * its pid and the pipe's read end (close-on-exec, blocking) in *fd_out, or -errno with `e`.
 * The caller kills and reaps it (ctrd_reap). */
pid_t ctrd_ctr_spawn(struct ctrd *c, int *fd_out, struct err *e, ...) __attribute__((sentinel));
/* SIGKILL `pid` and wait for it.  0 or negative is ignored. */
void ctrd_reap(pid_t pid);

/* Build (once per build directory: $BUILD/ctrd-busybox.tar) and import the busybox image as
 * `name` (e.g. "ferry.test/busybox:latest"). */
int ctrd_import_busybox(struct ctrd *c, const char *name, struct err *e);

#endif
