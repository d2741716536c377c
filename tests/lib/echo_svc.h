/* ferry's implementation of the ttrpc.echo.Echo service (proto/ttrpc/echo/echo.proto) on
 * libttrpc, shared by the ttrpc unit tests, the Go interoperability test and the benchmark:
 * Echo (unary; delay_ms answers from a timer, fail_code fails, reply_bytes sizes the reply,
 * the reply reports metadata and timeout_nano), Stream (server stream of `count` replies),
 * Collect (client stream) and Chat (bidirectional).  Counters let tests see what the server
 * did (handlers started, calls cancelled by the library and with which code). */
#ifndef FERRY_TESTS_ECHO_SVC_H
#define FERRY_TESTS_ECHO_SVC_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ttrpc/echo/echo.pb-c.h"
#include "ttrpc/ttrpc.h"

#define ECHO_SERVICE "ttrpc.echo.Echo"
/* Requests past these are refused (InvalidArgument), so that hostile input (the fuzz
 * harness) cannot make the service itself allocate or loop without bound. */
#define ECHO_MAX_REPLY_BYTES (TTRPC_MAX_DATA + 4096u)
#define ECHO_MAX_COUNT       20000u

struct pend;

struct echo_svc {
	struct ev_loop *loop;
	unsigned started;     /* handlers run */
	unsigned cancelled;   /* cancel callbacks run */
	int last_cancel_code; /* code of the last one */
	unsigned pending;     /* delayed answers not yet sent */
	unsigned stream_msgs; /* messages received on client streams */
	struct pend *pends;   /* calls waiting (delay timers, client streams) */
};

/* The service table; register it with the struct echo_svc as ud. */
extern const struct ttrpc_service echo_service;

/* Zero the counters and remember the loop (for delay timers). */
void echo_svc_init(struct echo_svc *svc, struct ev_loop *loop);
/* Stop every delay timer and end the calls still waiting (after a ttrpc_server_free, which
 * detaches them without callbacks). */
void echo_svc_fini(struct echo_svc *svc);

/* Byte i of a reply_bytes reply: i mod 251. */
static inline uint8_t echo_pattern(size_t i)
{
	return (uint8_t)(i % 251);
}

#endif
