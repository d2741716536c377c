/* fork + exec for the runtime: the OCI runtime's own invocations and UVM processes.  The child
 * gets exactly the three stdio fds it is given (others closed), default signal dispositions and
 * an empty signal mask (libev blocks signals it handles; that must not leak into children),
 * optionally its own session with the stdin tty as controlling terminal.  A failed exec is
 * reported to the parent through a CLOEXEC pipe, so it is a synchronous error, as with
 * posix_spawn.  The child is reaped by the caller's ev_child watcher, not here. */
#ifndef FERRY_GUEST_SPAWN_H
#define FERRY_GUEST_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"

struct spawn_opts {
	char *const *argv;    /* argv[0] looked up in PATH */
	char *const *env;     /* NULL: inherit */
	const char *cwd;      /* NULL: inherit */
	int fds[3];           /* become the child's 0, 1, 2; -1 -> /dev/null.  Borrowed. */
	bool setsid_ctty;     /* setsid() and make fd 0 (a tty) the controlling terminal */
	unsigned long nofile; /* the child's soft RLIMIT_NOFILE (the agent raised its own);
	                         0: inherit */
};

/* Start the child.  Returns its pid (> 0) or -errno with e filled (including the exec
 * failure of the child, e.g. -ENOENT for a missing binary). */
pid_t spawn_process(const struct spawn_opts *o, struct err *e);

#endif
