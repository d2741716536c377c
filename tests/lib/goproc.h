/* Child processes for the Go interoperability peers (tests/interop, built into
 * $BUILD/go/ by the Makefile): start one with pipes on stdin and stdout, read its output line
 * by line while the test's own libev loop keeps running (ferry's side of the conversation
 * lives on that loop), and stop it by closing its stdin.  Used by the ttrpc interop test and
 * the ttrpc benchmark. */
#ifndef FERRY_TESTS_GOPROC_H
#define FERRY_TESTS_GOPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <ev.h>

#include "common/buf.h"

struct goproc {
	pid_t pid;      /* 0 once reaped */
	int in;         /* write end of its stdin, or -1 */
	int out;        /* read end of its stdout (non-blocking), or -1 at EOF */
	struct buf buf; /* stdout read and not yet taken as lines */
	int status;     /* wait status once reaped */
};

/* "$BUILD/go/<name>" ($BUILD defaults to "build"); static storage. */
const char *goproc_bin(const char *name);

/* Start argv[0] (a path) with argv.  Returns 0, or -errno (the binary is missing: -ENOENT). */
int goproc_start(struct goproc *p, char *const argv[]);

/* Wait for the next whole line of output (without the newline) into line[n], running `loop`
 * (NULL: none) meanwhile, for at most timeout_s.  False on timeout or EOF without a line. */
bool goproc_line(struct goproc *p, struct ev_loop *loop, double timeout_s, char *line, size_t n);

/* Run `loop` (NULL: none) until the process exits, at most timeout_s (then SIGKILL); all its
 * remaining output is left in p->buf.  Returns the exit code, or -1 when it was killed or
 * died of a signal. */
int goproc_wait(struct goproc *p, struct ev_loop *loop, double timeout_s);

/* Close its stdin (the peers exit on EOF) and wait up to 5 s, then SIGKILL.  Releases
 * everything; safe to call twice. */
void goproc_stop(struct goproc *p);

#endif
