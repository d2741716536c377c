/* Running a helper program from a test (ip, mkfs.ext4, ...): fork, exec, wait, and on
 * failure an error whose message holds the command and the start of what it printed.
 * Blocking; for test setup, never inside an event loop. */
#ifndef FERRY_TESTS_LIB_RUN_H
#define FERRY_TESTS_LIB_RUN_H

#include "common/err.h"

/* Run argv0 with the NULL-terminated arguments that follow (PATH lookup), stdin from
 * /dev/null, stdout and stderr captured.  0 when it exits with status 0, else -EIO (or
 * -errno when it could not run) with e naming the command and quoting its output. */
int run_cmd(struct err *e, const char *argv0, ...) __attribute__((sentinel));

#endif
