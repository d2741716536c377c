/* ferry-gcs's container runtime layer: runs containers through an OCI runtime binary (crun)
 * and plain processes in the utility VM, tracks every process it started, relays their stdio
 * to host connections and keeps exit codes with the exact semantics of the Linux GCS
 * (../shared/spec/gcs-bridge.md §5.2-§5.4, §6.2-§6.7).  It knows nothing about the bridge:
 * the bridge handlers (guest/gcs.c) call it and map its results to HRESULTs.
 *
 * Everything is event driven on one libev loop, which must be the default loop (ev_default_loop)
 * because children are reaped through libev's SIGCHLD handling.  No call below blocks on a
 * child process: crun invocations are spawned and their completion reported through callbacks.
 * The object sets PR_SET_CHILD_SUBREAPER on the calling process, so container init and exec'd
 * processes are re-parented to (and reaped by) it.  NOTE: libev's default loop reaps *every*
 * child of the process (waitpid(-1)); code sharing the process must not waitpid() its own
 * children itself but use ev_child watchers (or rt_exec_external).
 *
 * Errors: functions return 0 / a count on success and a negative errno, with struct err
 * filled, on failure.  Three codes have a fixed meaning (see rt_err_hresult):
 *   -ENOENT  unknown container id          -> HR_VMCOMPUTE_SYSTEM_NOT_FOUND
 *   -ESRCH   unknown / untracked / gone pid -> HR_ERR_NOT_FOUND
 *   -EEXIST  container id already in use   -> HR_VMCOMPUTE_SYSTEM_ALREADY_EXISTS
 * every other failure maps to HR_FAIL.
 *
 * Callbacks are always invoked from the loop, never from inside the call that registered them.
 * A callback may call any rt_* function, including rt_delete of its own container and rt_free
 * (after rt_free no further callback of that rt runs). */
#ifndef FERRY_GUEST_RUNTIME_H
#define FERRY_GUEST_RUNTIME_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

struct rt;
struct rt_wait;
struct relay_stream;

/* How a container's init ended, for the container notification (§5.4). */
enum rt_exit_type {
	RT_EXIT_UNEXPECTED = 0, /* "UnexpectedExit" (default) */
	RT_EXIT_GRACEFUL,       /* "GracefulExit": SIGTERM delivered (shutdown graceful/signal) */
	RT_EXIT_FORCED,         /* "ForcedExit": SIGKILL delivered (shutdown forced/signal 9|0) */
};

/* Wire name of an exit type: "UnexpectedExit", "GracefulExit", "ForcedExit". */
const char *rt_exit_type_name(enum rt_exit_type t);

/* Raised exactly once per container, when its init has exited AND a waiter obtained the exit
 * code (§5.4); never raised for a container whose init nobody waited for.  `id` is borrowed
 * for the duration of the call. */
typedef void (*rt_container_exit_cb)(struct rt *rt, const char *id, enum rt_exit_type type,
                                     void *ud);

struct rt_config {
	const char *runtime;      /* OCI runtime binary (PATH lookup); NULL -> "crun" */
	const char *runtime_root; /* its --root state dir; NULL -> the runtime's default */
	const char *state_dir;    /* bookkeeping (pid files, process.json, console sockets,
				     runtime logs), one subdir per container; NULL ->
				     "/var/run/gcsrunc"; created if missing */
	bool use_pivot_root;      /* false (default, as the Linux GCS): pass --no-pivot, needed when
				the agent's root is an initramfs */
	rt_container_exit_cb on_container_exit; /* may be NULL */
	bool retain_exits;     /* exec'd and UVM processes stay (answering waits with their exit
				    code) after the first wait obtains it: until rt_release, the
				    deletion of their container, or the bound of 1024 kept exits
				    per container (and for UVM processes), oldest dropped first;
				    a new process reusing a kept pid replaces the entry */
	struct relay_hub *hub; /* borrowed, may be NULL: stdio streams with a port are linked to
				    it (re-dialled after a loss, guest/relay.h) */
	unsigned long child_nofile; /* soft RLIMIT_NOFILE of every child (the agent raises its
				    own limit; children get what they would have had); 0:
				    inherit */
	void *ud;                   /* passed to on_container_exit */
};

/* Host connections for one process's stdio: fds (sockets, usually vsock/unix streams) or -1
 * for a stream the host did not request.  Ownership of every fd >= 0 passes to the runtime
 * when the call is made, whatever its result (on failure they are closed). */
struct rt_stdio {
	int in;
	int out;
	int err;
	uint32_t ports[3]; /* vsock ports the connections were dialled on (0: unknown); with a
			      hub, the streams re-dial them after a loss */
};
#define RT_STDIO_NONE ((struct rt_stdio){.in = -1, .out = -1, .err = -1})

/* Completion of an asynchronous operation.  status is 0 or a negative errno (the codes above;
 * e is then filled with a message that includes the runtime's own error text).  pid is the
 * process id (in the agent's pid namespace) for start/exec, else 0.  `id` and `e` are
 * borrowed for the call. */
typedef void (*rt_done_cb)(struct rt *rt, const char *id, int status, const struct err *e,
                           pid_t pid, void *ud);

/* Result of a wait: hresult is HR_OK with exit_code set, or HR_VMCOMPUTE_TIMEOUT,
 * HR_ERR_NOT_FOUND (process unknown/forgotten), HR_VMCOMPUTE_SYSTEM_NOT_FOUND (unknown
 * container), HR_FAIL (container still being created).  Exit code: container processes
 * 128+signal when killed by a signal, else the exit status; external (UVM) processes the exit
 * status, or 0xFFFFFFFF (-1) when killed by a signal.  The wait handle is freed after the
 * callback returns. */
typedef void (*rt_wait_cb)(struct rt *rt, int32_t hresult, uint32_t exit_code, void *ud);

/* Create the runtime on `loop` (must be EV_DEFAULT).  cfg is copied.  Sets
 * PR_SET_CHILD_SUBREAPER, ignores SIGPIPE if it had the default disposition (relays get EPIPE
 * instead) and creates cfg->state_dir.  Keeps an ev_child watcher active for its lifetime, so
 * ev_run does not return on its own while the runtime exists.  NULL + e on failure. */
struct rt *rt_new(struct ev_loop *loop, const struct rt_config *cfg, struct err *e);
/* Free everything the runtime holds (relays, fds, watchers, tables, pending waits and
 * operations, whose callbacks are NOT invoked).  Containers are left to the OCI runtime as
 * they are (call rt_delete first to remove them).  NULL-safe; may be called from a callback. */
void rt_free(struct rt *rt);

/* Create container `id` (state "creating" until done): mkdir -p bundle_dir (0700), write
 * bundle_dir/config.json from `spec` (borrowed, written as given; process.terminal decides
 * pipes vs pty), then run `<runtime> create --bundle B --pid-file P [--console-socket S] id`.
 * Non-terminal: three fresh pipes become its stdio and the parent ends are kept for
 * rt_container_start.  Terminal: the pty master arrives on the console socket.
 * Returns 0 and later calls done (status 0 -> "created"; failure -> the container is removed
 * from the table again), or fails synchronously: -EEXIST duplicate id, -EINVAL bad args. */
int rt_container_create(struct rt *rt, const char *id, const char *bundle_dir, json_t *spec,
                        rt_done_cb done, void *ud, struct err *e);

/* Start a created container: attach relays between its pipes/pty and `conns` (ownership taken,
 * see struct rt_stdio; unrequested pipes are closed), then run `<runtime> start id`.
 * done gets the init pid.  Sync failures: -ENOENT unknown id, -EINVAL not in state created. */
int rt_container_start(struct rt *rt, const char *id, struct rt_stdio conns, rt_done_cb done,
                       void *ud, struct err *e);

/* Execute an additional process in a running container: write process.json from `process`
 * (an OCI "process" object, borrowed; its "terminal" decides pipes vs pty), then
 * `<runtime> exec -d --process F --pid-file P [--console-socket S] id`.  Requested streams get
 * pipes (others /dev/null).  done gets the pid, which is then tracked for wait/signal/resize.
 * Sync failures: -ENOENT unknown id, -EINVAL container not running / bad args. */
int rt_exec(struct rt *rt, const char *id, json_t *process, struct rt_stdio conns, rt_done_cb done,
            void *ud, struct err *e);

/* Run a process directly in the UVM (null container id / CreateInUtilityVM): fork + exec of
 * argv[0] (PATH lookup) with `env` (NULL -> inherit; both borrowed) in `cwd` (NULL -> ours).
 * Non-console: pipes, relayed to the connections (so that they can be re-dialled; missing
 * ones /dev/null).  emulate_console: a pty from posix_openpt, the child
 * runs setsid with the pty as controlling tty, stdin->pty and pty->stdout are relayed (a
 * requested stderr connection is unused and closed at the end).  Synchronous; *pid set on
 * success.  A failed exec is an error here (never one of the three fixed codes: HR_FAIL). */
int rt_exec_external(struct rt *rt, char *const argv[], char *const env[], const char *cwd,
                     bool emulate_console, struct rt_stdio conns, pid_t *pid, struct err *e);

#define RT_WAIT_INFINITE 0xFFFFFFFFu

/* Wait for process `pid` of container `id` (NULL or the null GUID: external processes).
 * timeout_ms: RT_WAIT_INFINITE, 0 = poll (answers at once on the next loop iteration), else
 * milliseconds.  The exit is reported only after the process's stdio relay has finished
 * (output flushed, connection shut down for writing and closed by the host).  The first wait
 * that obtains an exit code releases it: exec'd and external processes are then forgotten
 * (later waits -> HR_ERR_NOT_FOUND); the init keeps answering until rt_delete.  An exit that
 * happened before any wait is retained; a timed-out wait consumes nothing.
 * Always returns a handle (never NULL); cb runs exactly once from the loop unless the wait is
 * cancelled first. */
struct rt_wait *rt_wait(struct rt *rt, const char *id, pid_t pid, uint32_t timeout_ms,
                        rt_wait_cb cb, void *ud);
/* Cancel a wait whose callback has not run yet (e.g. its connection died): the callback is not
 * called and the handle is freed.  Must not be used after the callback ran.  NULL-safe. */
void rt_wait_cancel(struct rt *rt, struct rt_wait *w);

/* kill(2) `sig` to a tracked process of container id (the init or a tracked exec'd pid).
 * sig 0 is treated as SIGKILL (§5.4).  SIGTERM/SIGKILL on the init pid set the exit type to
 * Graceful/Forced.  -ENOENT unknown container (also for a NULL id: UVM processes cannot be
 * signalled, §6.3), -EBUSY container still being created, -ESRCH untracked pid, already
 * exited, or ESRCH from kill. */
int rt_signal(struct rt *rt, const char *id, pid_t pid, int sig, struct err *e);

/* `<runtime> kill id 15|9` (init only) and set the exit type; asynchronous, done has pid 0.
 * Sync failure: -ENOENT unknown id. */
int rt_shutdown(struct rt *rt, const char *id, bool graceful, rt_done_cb done, void *ud,
                struct err *e);

/* Set the window size of the pty of a tracked process (TIOCSWINSZ on the master).
 * -ENOENT unknown container (NULL id included), -ESRCH untracked pid, -ENOTTY no terminal. */
int rt_resize(struct rt *rt, const char *id, pid_t pid, uint16_t height, uint16_t width,
              struct err *e);

/* Processes of a container (pids in the agent's namespace), read from its cgroup's
 * cgroup.procs (via /proc/<init>/cgroup).  Fills at most `max` pids, returns how many the
 * cgroup holds (may be > max), 0 when the init has exited.  -ENOENT unknown id. */
int rt_ps(struct rt *rt, const char *id, pid_t *pids, size_t max, struct err *e);

/* Delete container id: the table entry is removed at once (relays closed; pending waits
 * answered with the retained exit code, or HR_ERR_NOT_FOUND), then `<runtime> delete -f id`
 * runs asynchronously, after which the bundle directory (not crossing mount points) and the
 * bookkeeping dir are removed and done is called (status reports the runtime's failure, the
 * entry is gone anyway).  done may be NULL.  Sync failures: -ENOENT unknown id, -EBUSY still
 * being created (entry kept), or the runtime could not be spawned (entry removed anyway). */
int rt_delete(struct rt *rt, const char *id, rt_done_cb done, void *ud, struct err *e);

/* Init pid of a started container (0 before start); -ENOENT unknown id. */
int rt_container_pid(struct rt *rt, const char *id, pid_t *pid, struct err *e);

/* The relay stream (0 stdin, 1 stdout, 2 stderr) of a tracked process, for reconnect
 * (relay_stream_set_conn) and byte counting; NULL when there is none.  Borrowed: valid until
 * the process is forgotten or its container deleted. */
struct relay_stream *rt_process_stream(struct rt *rt, const char *id, pid_t pid, int which);

/* The host has received the exit code of process `pid` (id NULL or the null GUID: a UVM
 * process): forget an exited exec'd or UVM process kept by retain_exits.  -ENOENT unknown
 * container, -ESRCH no such exited process (the init is never released: it lives until
 * rt_delete). */
int rt_release(struct rt *rt, const char *id, pid_t pid, struct err *e);

/* HRESULT for a status returned by the functions above (0 -> HR_OK). */
int32_t rt_err_hresult(int status);

#endif
