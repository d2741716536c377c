/* Non-blocking fd I/O with three distinct outcomes: bytes moved (> 0), "would block"
 * (IO_AGAIN) and end of file (IO_EOF, reads only); anything else is a negative errno with
 * struct err filled.  EINTR is retried internally. */
#ifndef FERRY_COMMON_FDIO_H
#define FERRY_COMMON_FDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* Distinct from every negative errno value. */
#define IO_AGAIN (-100000)
#define IO_EOF   0

/* Set O_NONBLOCK (when nonblock) and FD_CLOEXEC; returns 0 or -errno. */
int fd_set_flags(int fd, bool nonblock, struct err *e);
/* read(2) once: > 0 bytes, IO_EOF, IO_AGAIN, or -errno. */
ssize_t fd_read(int fd, void *p, size_t n, struct err *e);
/* write(2) once (MSG_NOSIGNAL for sockets): > 0 bytes, IO_AGAIN, or -errno. */
ssize_t fd_write(int fd, const void *p, size_t n, struct err *e);
/* Blocking helpers for setup paths and tests (fd may be blocking or not; polls on EAGAIN). */
int fd_write_all(int fd, const void *p, size_t n, struct err *e);
/* Reads exactly n bytes; -EPIPE with a message on early EOF. */
int fd_read_all(int fd, void *p, size_t n, struct err *e);
/* Monotonic clock in nanoseconds. */
long long mono_ns(void);

#endif
