/* Terminal helpers for the runtime: pseudo-terminal pairs for UVM processes that emulate a
 * console, the console socket on which an OCI runtime hands over a container's pty master
 * (SCM_RIGHTS), and window-size changes. */
#ifndef FERRY_GUEST_PTY_H
#define FERRY_GUEST_PTY_H

#include <stdint.h>

#include "common/err.h"

/* Open a pty pair: *master (posix_openpt, CLOEXEC + NONBLOCK) and *slave (CLOEXEC, blocking,
 * not our controlling tty).  Both owned by the caller.  0 or -errno. */
int pty_open(int *master, int *slave, struct err *e);

/* TIOCSWINSZ on fd (a pty master or slave).  0 or -errno (-ENOTTY: not a terminal). */
int pty_set_winsize(int fd, uint16_t rows, uint16_t cols, struct err *e);

/* Listening unix stream socket at `path` (an existing file there is removed first) for
 * `--console-socket`; CLOEXEC + NONBLOCK.  Returns the fd (caller-owned) or -errno. */
int console_socket_listen(const char *path, struct err *e);

/* Non-blocking: accept one connection on the console socket and receive the fd it carries
 * (SCM_RIGHTS).  Returns the received fd (caller-owned, CLOEXEC) or IO_AGAIN (common/fdio.h)
 * when nobody has connected or sent yet, or -errno (-EPROTO: message without an fd). */
int console_socket_recv(int listen_fd, struct err *e);

#endif
