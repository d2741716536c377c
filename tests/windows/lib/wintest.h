/* Helpers for the Windows tests run under wine (tests/windows/): a loopback TCP socket pair,
 * running a libev loop until a condition holds (with a generous deadline for a loaded machine),
 * and the stand-in computecore.dll's control functions. */
#ifndef FERRY_TESTS_WINDOWS_WINTEST_H
#define FERRY_TESTS_WINDOWS_WINTEST_H

#include <winsock2.h>
#include <stdbool.h>
#include <stddef.h>

#include <ev.h>
#include <jansson.h>

#include "tests/windows/computecore/standin.h"

#define WINTEST_DEADLINE_S 30.0

/* A connected loopback TCP pair (blocking sockets); 0 or -1. */
int wintest_socketpair(SOCKET s[2]);

/* Run loop until *flag is true or WINTEST_DEADLINE_S passed; returns *flag. */
bool wintest_run_until(struct ev_loop *loop, const bool *flag);
/* Run loop for about ms milliseconds (to let stray messages arrive). */
void wintest_run_for(struct ev_loop *loop, int ms);

/* The stand-in's control entries, from the loaded computecore.dll (asserts they exist). */
struct standin {
	standin_configure_fn configure;
	standin_log_fn log;
	standin_stats_fn stats;
	standin_emit_fn emit;
};
void wintest_standin(HMODULE module, struct standin *s);
/* The call log, parsed (caller decrefs). */
json_t *wintest_log(const struct standin *s);
/* The Fn names of the log, space-separated, into a static buffer. */
const char *wintest_fns(const struct standin *s);
/* The first log entry for fn at or after index *from (advanced past it), or NULL. */
json_t *wintest_find(json_t *log, const char *fn, size_t *from);

#endif
