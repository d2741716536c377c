/* libFuzzer harness for the ttrpc server's frame handling: the input is what a hostile client
 * sends on one connection to a server running the Echo service (unary with delays, server,
 * client and bidirectional streams); the harness plays it into a socketpair, runs the loop
 * until everything was read and answered, drains the answers and frees the server with its
 * calls in flight.  Nothing may crash, leak or spin; every answer must be a well-formed frame
 * under the cap (else the harness traps). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fdio.h"
#include "ttrpc/ttrpc.h"

/* The Echo service of the unit tests (tests/lib is not part of the fuzz build). */
#include "tests/lib/echo_svc.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ev_loop *loop;

/* Check the server's answers: whole frames, under the cap, Responses that decode (on any
 * id: a bad id is answered on itself, 0 included, as Go does).  Returns
 * the bytes read. */
static size_t drain(int fd, struct buf *out)
{
	uint8_t tmp[65536];
	struct err e;
	ssize_t r;
	size_t got = 0;
	while ((r = fd_read(fd, tmp, sizeof(tmp), &e)) > 0) {
		buf_append(out, tmp, (size_t)r);
		got += (size_t)r;
	}
	struct ttrpc_framer fr;
	ttrpc_framer_init(&fr, 0);
	struct ttrpc_frame f;
	while (ttrpc_framer_next(&fr, out, &f) == 1) {
		if (f.oversized)
			__builtin_trap();
		if (f.h.type == TTRPC_MSG_RESPONSE) {
			Ttrpc__Response *resp = ttrpc_response_decode(f.data, f.h.length, &e);
			if (!resp || !resp->status)
				__builtin_trap();
			ttrpc_msg_free(&resp->base);
		} else if (f.h.type != TTRPC_MSG_DATA) {
			__builtin_trap();
		}
	}
	return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!loop)
		loop = ev_loop_new(0);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return 0;
	struct echo_svc svc;
	echo_svc_init(&svc, loop);
	struct ttrpc_server *s = ttrpc_server_new(loop, NULL);
	struct err e;
	ttrpc_server_register(s, &echo_service, &svc, &e);
	ttrpc_server_serve_fd(s, sv[0], &e);
	struct buf out;
	buf_init(&out);
	size_t off = 0;
	/* Feed, run, drain until all is written and nothing more happens. */
	for (int idle = 0; idle < 3;) {
		bool progress = false;
		if (off < size) {
			ssize_t w = fd_write(sv[1], data + off, size - off, &e);
			if (w > 0) {
				off += (size_t)w;
				progress = true;
			}
		} else if (off == size) {
			shutdown(sv[1], SHUT_WR);
			off++;
		}
		ev_run(loop, EVRUN_NOWAIT);
		if (drain(sv[1], &out) > 0)
			progress = true;
		idle = progress ? 0 : idle + 1;
	}
	ttrpc_server_free(s);
	echo_svc_fini(&svc);
	close(sv[1]);
	buf_fini(&out);
	return 0;
}
