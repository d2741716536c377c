/* Error reporting for every fallible ferry function: a negative errno return value plus a
 * caller-owned struct err holding the same code and a human-readable message.  Context is
 * prepended on the way up ("import pod `p1`: container `c2`: bad schema_version 7"). */
#ifndef FERRY_COMMON_ERR_H
#define FERRY_COMMON_ERR_H

#include <stddef.h>

#define ERR_MSG_MAX 512

struct err {
	int code;              /* negative errno, 0 when no error has been set */
	char msg[ERR_MSG_MAX]; /* NUL-terminated, may be truncated */
};

/* Reset to "no error". */
void err_clear(struct err *e);

/* Record error `code` (a negative errno; a positive value is negated) with a printf-style
 * message.  Returns the negative code so callers can `return err_set(e, -EINVAL, ...)`.
 * `e` may be NULL, in which case only the code is returned. */
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like err_set, appending ": strerror(-code)" to the message. */
int err_sys(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepend context "<fmt>: " to the existing message; returns e->code (or -EIO if unset). */
int err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
