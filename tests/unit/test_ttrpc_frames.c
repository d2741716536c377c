/* ttrpc frame by frame, against the protocol document (containerd/ttrpc PROTOCOL.md) and Go's
 * behaviour: hand-built frames over a socketpair, first played against ferry's server (stream
 * id rules, the 4 MiB cap and its skip, undecodable Requests and payloads, unknown types,
 * Data on unknown or closed streams, deadlines, how streams are ended on the wire, client
 * streams with the no-data close Go sends), then against ferry's client (what it sends for
 * each kind of call, and how it takes Data on unary calls, oversized and broken answers,
 * unknown streams, stream ends in either form). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fdio.h"
#include "common/xalloc.h"
#include "tests/lib/echo_env.h"

struct ctx {
	struct evtest ev;
	struct echo_svc svc;
	struct ttrpc_server *s;
	struct ttrpc_client *cl;
	int raw;       /* the hand-played peer's socket (non-blocking) */
	struct buf in; /* bytes read from raw, not yet framed */
	struct echo_result r[8];
};

static int setup_common(struct ctx **out)
{
	struct ctx *c = xcalloc(1, sizeof(*c));
	evtest_init(&c->ev, 20.0);
	echo_svc_init(&c->svc, c->ev.loop);
	buf_init(&c->in);
	*out = c;
	return 0;
}

/* Raw client against ferry's server. */
static int setup_server(void **state)
{
	struct ctx *c;
	setup_common(&c);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct err e;
	c->s = ttrpc_server_new(c->ev.loop, NULL);
	assert_int_equal(ttrpc_server_register(c->s, &echo_service, &c->svc, &e), 0);
	assert_int_equal(ttrpc_server_serve_fd(c->s, sv[0], &e), 0);
	c->raw = sv[1];
	*state = c;
	return 0;
}

/* ferry's client against a raw server. */
static int setup_client(void **state)
{
	struct ctx *c;
	setup_common(&c);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct err e;
	c->cl = ttrpc_client_new(c->ev.loop, sv[0], NULL, NULL, &e);
	assert_non_null(c->cl);
	c->raw = sv[1];
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	ttrpc_client_free(c->cl);
	ttrpc_server_free(c->s);
	echo_svc_fini(&c->svc);
	if (c->raw >= 0)
		close(c->raw);
	buf_fini(&c->in);
	evtest_fini(&c->ev);
	free(c);
	return 0;
}

/* ---- the raw peer ---- */

/* Write all of p, running the loop while the socket is full (the other end reads there). */
static void raw_write(struct ctx *c, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0 && !c->ev.timed_out) {
		struct err e;
		ssize_t r = fd_write(c->raw, b, n, &e);
		if (r == IO_AGAIN) {
			ev_run(c->ev.loop, EVRUN_NOWAIT);
			/* Drain what the other side wrote meanwhile, so neither side blocks. */
			uint8_t tmp[65536];
			ssize_t k = fd_read(c->raw, tmp, sizeof(tmp), &e);
			if (k > 0)
				buf_append(&c->in, tmp, (size_t)k);
			continue;
		}
		assert_true(r > 0);
		b += r;
		n -= (size_t)r;
	}
	assert_false(c->ev.timed_out);
}

static void raw_frame(struct ctx *c, uint32_t id, uint8_t type, uint8_t flags, const void *data,
                      uint32_t len)
{
	struct ttrpc_hdr h = {.length = len, .stream_id = id, .type = type, .flags = flags};
	uint8_t hb[TTRPC_HDR_SIZE];
	ttrpc_hdr_encode(&h, hb);
	raw_write(c, hb, sizeof(hb));
	if (len)
		raw_write(c, data, len);
}

/* A Request for the Echo service carrying `req` (NULL: no payload). */
static void raw_request(struct ctx *c, uint32_t id, uint8_t flags, const char *method,
                        const Ttrpc__Echo__EchoRequest *req, int64_t timeout)
{
	struct buf b;
	buf_init(&b);
	struct ttrpc_request_out rq = {.service = ECHO_SERVICE,
	                               .method = method,
	                               .payload = req ? &req->base : NULL,
	                               .timeout_nano = timeout};
	struct err e;
	assert_int_equal(ttrpc_wire_put_request(&b, id, flags, &rq, &e), 0);
	raw_write(c, buf_head(&b), buf_avail(&b));
	buf_fini(&b);
}

static void raw_data(struct ctx *c, uint32_t id, uint8_t flags, const char *text)
{
	struct buf b;
	buf_init(&b);
	Ttrpc__Echo__EchoRequest m = TTRPC__ECHO__ECHO_REQUEST__INIT;
	m.text = (char *)text;
	struct err e;
	assert_int_equal(ttrpc_wire_put_data(&b, id, flags, text ? &m.base : NULL, &e), 0);
	raw_write(c, buf_head(&b), buf_avail(&b));
	buf_fini(&b);
}

/* Read the next frame the other side sends (running the loop meanwhile); its data is copied
 * into *data (caller frees). */
static void raw_read(struct ctx *c, struct ttrpc_hdr *h, uint8_t **data)
{
	for (;;) {
		if (buf_avail(&c->in) >= TTRPC_HDR_SIZE) {
			ttrpc_hdr_decode(buf_head(&c->in), h);
			assert_true(h->length <= TTRPC_MAX_DATA);
			if (buf_avail(&c->in) >= TTRPC_HDR_SIZE + h->length) {
				*data = xmalloc(h->length + 1);
				memcpy(*data, buf_head(&c->in) + TTRPC_HDR_SIZE, h->length);
				buf_consume(&c->in, TTRPC_HDR_SIZE + h->length);
				return;
			}
		}
		uint8_t tmp[65536];
		struct err e;
		ssize_t r = fd_read(c->raw, tmp, sizeof(tmp), &e);
		if (r > 0) {
			buf_append(&c->in, tmp, (size_t)r);
			continue;
		}
		assert_true(r == IO_AGAIN);
		ev_run(c->ev.loop, EVRUN_ONCE);
		assert_false(c->ev.timed_out);
	}
}

/* Nothing arrives on raw within `sec`. */
static void raw_expect_silence(struct ctx *c, double sec)
{
	evtest_run_for(&c->ev, sec);
	uint8_t tmp[64];
	struct err e;
	assert_int_equal(fd_read(c->raw, tmp, sizeof(tmp), &e), IO_AGAIN);
	assert_int_equal(buf_avail(&c->in), 0);
}

/* Read a Response on `id` and check its status. */
static Ttrpc__Response *expect_response(struct ctx *c, uint32_t id, int code, const char *msg)
{
	struct ttrpc_hdr h;
	uint8_t *d;
	raw_read(c, &h, &d);
	assert_int_equal(h.type, TTRPC_MSG_RESPONSE);
	assert_int_equal(h.stream_id, id);
	assert_int_equal(h.flags, 0);
	struct err e;
	Ttrpc__Response *r = ttrpc_response_decode(d, h.length, &e);
	free(d);
	assert_non_null(r);
	assert_non_null(r->status); /* always present, as Go sends it */
	if (r->status->code != code || (msg && strcmp(r->status->message, msg) != 0))
		fail_msg("stream %u: got %d \"%s\", want %d \"%s\"", id, r->status->code,
		         r->status->message, code, msg ? msg : "*");
	return r;
}

static void expect_status(struct ctx *c, uint32_t id, int code, const char *msg)
{
	ttrpc_msg_free(&expect_response(c, id, code, msg)->base);
}

static Ttrpc__Echo__EchoReply *expect_reply(struct ctx *c, uint32_t id)
{
	Ttrpc__Response *r = expect_response(c, id, TTRPC_OK, "");
	struct err e;
	ProtobufCMessage *m = ttrpc_msg_unpack(&ttrpc__echo__echo_reply__descriptor,
	                                       r->payload.data, r->payload.len, &e);
	ttrpc_msg_free(&r->base);
	assert_non_null(m);
	return (Ttrpc__Echo__EchoReply *)m;
}

static void expect_text(struct ctx *c, uint32_t id, const char *text)
{
	Ttrpc__Echo__EchoReply *rep = expect_reply(c, id);
	assert_string_equal(rep->text, text);
	ttrpc_msg_free(&rep->base);
}

/* ---- against the server ---- */

static void test_srv_unary_and_ids(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = "one";
	raw_request(c, 1, 0, "Echo", &req, 0);
	expect_text(c, 1, "one");
	/* Even ids are the server's (and server-initiated streams do not exist). */
	raw_request(c, 2, 0, "Echo", &req, 0);
	expect_status(c, 2, TTRPC_INVALID_ARGUMENT,
	              "StreamID must be odd for client initiated streams");
	/* Ids increase: reusing or going back is refused. */
	raw_request(c, 7, 0, "Echo", &req, 0);
	expect_text(c, 7, "one");
	raw_request(c, 7, 0, "Echo", &req, 0);
	expect_status(c, 7, TTRPC_INVALID_ARGUMENT,
	              "StreamID cannot be re-used and must increment");
	raw_request(c, 5, 0, "Echo", &req, 0);
	expect_status(c, 5, TTRPC_INVALID_ARGUMENT,
	              "StreamID cannot be re-used and must increment");
	/* A unary method takes a Request flagged for streaming as unary (Go does). */
	raw_request(c, 9, TTRPC_FLAG_REMOTE_CLOSED, "Echo", &req, 0);
	expect_text(c, 9, "one");
	assert_int_equal(c->svc.started, 3);
}

static void test_srv_bad_requests(void **state)
{
	struct ctx *c = *state;
	/* Not a Request message at all. */
	raw_frame(c, 1, TTRPC_MSG_REQUEST, 0,
	          "\x0a\x05"
	          "ab",
	          4);
	expect_status(c, 1, TTRPC_INVALID_ARGUMENT,
	              "unmarshal request error: ttrpc.Request.service (1): truncated "
	              "length-delimited field");
	/* A Request whose payload does not decode as the method's input. */
	uint8_t bad[64];
	size_t n = 0;
	const char *svc = ECHO_SERVICE;
	bad[n++] = 0x0a;
	bad[n++] = (uint8_t)strlen(svc);
	memcpy(bad + n, svc, strlen(svc));
	n += strlen(svc);
	memcpy(bad + n,
	       "\x12\x04"
	       "Echo"
	       "\x1a\x02\x18\xff",
	       10); /* delay_ms: truncated varint */
	n += 10;
	raw_frame(c, 3, TTRPC_MSG_REQUEST, 0, bad, (uint32_t)n);
	expect_status(c, 3, TTRPC_INTERNAL,
	              "ttrpc: error unmarshalling payload: ttrpc.echo.EchoRequest.delay_ms (3): "
	              "truncated varint");
	/* Unknown types and Responses from a client are ignored without an answer. */
	raw_frame(c, 5, 0x7, 0, "zz", 2);
	raw_frame(c, 5, TTRPC_MSG_RESPONSE, 0, "", 0);
	raw_expect_silence(c, 0.05);
	/* Data for a stream that does not exist. */
	raw_data(c, 11, 0, "x");
	expect_status(c, 11, TTRPC_INVALID_ARGUMENT, "StreamID is no longer active");
	/* The connection is still fine. */
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = "still here";
	raw_request(c, 13, 0, "Echo", &req, 0);
	expect_text(c, 13, "still here");
	assert_int_equal(c->svc.started, 1);
}

static void test_srv_oversized(void **state)
{
	struct ctx *c = *state;
	size_t big = 5u << 20;
	uint8_t *junk = xmalloc(big);
	memset(junk, 0x5a, big);
	raw_frame(c, 1, TTRPC_MSG_REQUEST, 0, junk, (uint32_t)big);
	free(junk);
	expect_status(c, 1, TTRPC_RESOURCE_EXHAUSTED,
	              "message length 5242880 exceed maximum message size of 4194304");
	/* The skipped bytes were not taken for frames: the next request works. */
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = "after";
	raw_request(c, 3, 0, "Echo", &req, 0);
	expect_text(c, 3, "after");
	/* Oversized data on a live client stream ends that stream. */
	raw_request(c, 5, TTRPC_FLAG_REMOTE_OPEN, "Collect", NULL, 0);
	EVTEST_SPIN(&c->ev, c->svc.started == 2);
	uint8_t hb[TTRPC_HDR_SIZE];
	struct ttrpc_hdr h = {.length = TTRPC_MAX_DATA + 1, .stream_id = 5, .type = TTRPC_MSG_DATA};
	ttrpc_hdr_encode(&h, hb);
	raw_write(c, hb, sizeof(hb));
	expect_status(c, 5, TTRPC_RESOURCE_EXHAUSTED,
	              "message length 4194305 exceed maximum message size of 4194304");
	assert_int_equal(c->svc.last_cancel_code, TTRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(c->svc.pending, 0);
}

static void test_srv_deadlines(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.delay_ms = 5000;
	long long t0 = mono_ns();
	raw_request(c, 1, 0, "Echo", &req, 50 * 1000000LL);
	expect_status(c, 1, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
	long long ms = (mono_ns() - t0) / 1000000;
	assert_true(ms >= 45);
	assert_true(ms < 4000);
	assert_int_equal(c->svc.last_cancel_code, TTRPC_DEADLINE_EXCEEDED);
	/* Already expired (Go computes time.Until(deadline), which can be negative). */
	raw_request(c, 3, 0, "Echo", &req, -1);
	expect_status(c, 3, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
	assert_int_equal(c->svc.started, 1);
	/* A deadline longer than the work changes nothing. */
	req.delay_ms = 10;
	req.text = "in time";
	raw_request(c, 5, 0, "Echo", &req, 5000 * 1000000LL);
	Ttrpc__Echo__EchoReply *rep = expect_reply(c, 5);
	assert_string_equal(rep->text, "in time");
	assert_int_equal(rep->timeout_nano, 5000 * 1000000LL);
	ttrpc_msg_free(&rep->base);
}

static void test_srv_server_stream_wire(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.count = 2;
	req.text = "s";
	raw_request(c, 1, TTRPC_FLAG_REMOTE_CLOSED, "Stream", &req, 0);
	for (uint32_t i = 0; i < 2; i++) {
		struct ttrpc_hdr h;
		uint8_t *d;
		raw_read(c, &h, &d);
		assert_int_equal(h.type, TTRPC_MSG_DATA);
		assert_int_equal(h.stream_id, 1);
		assert_int_equal(h.flags, 0);
		struct err e;
		Ttrpc__Echo__EchoReply *rep = (Ttrpc__Echo__EchoReply *)ttrpc_msg_unpack(
		    &ttrpc__echo__echo_reply__descriptor, d, h.length, &e);
		free(d);
		assert_int_equal(rep->seq, i);
		ttrpc_msg_free(&rep->base);
	}
	/* A successful server stream ends with an empty Data frame: remote-closed + no-data. */
	struct ttrpc_hdr h;
	uint8_t *d;
	raw_read(c, &h, &d);
	free(d);
	assert_int_equal(h.type, TTRPC_MSG_DATA);
	assert_int_equal(h.flags, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA);
	assert_int_equal(h.length, 0);
	/* A failed one ends with a Response carrying the status. */
	req.count = 0;
	req.fail_code = TTRPC_UNAVAILABLE;
	req.fail_message = "vm gone";
	raw_request(c, 3, TTRPC_FLAG_REMOTE_CLOSED, "Stream", &req, 0);
	expect_status(c, 3, TTRPC_UNAVAILABLE, "vm gone");
}

static void test_srv_client_stream_wire(void **state)
{
	struct ctx *c = *state;
	/* Go's shape: Request remote-open without payload, Data..., Data remote-closed +
	 * no-data. */
	raw_request(c, 1, TTRPC_FLAG_REMOTE_OPEN, "Collect", NULL, 0);
	raw_data(c, 1, 0, "a");
	raw_data(c, 1, 0, "b");
	raw_data(c, 1, TTRPC_FLAG_REMOTE_CLOSED, NULL);
	Ttrpc__Echo__EchoReply *rep = expect_reply(c, 1);
	assert_string_equal(rep->text, "ab");
	assert_int_equal(rep->seq, 2);
	ttrpc_msg_free(&rep->base);
	/* PROTOCOL.md's shape: the last Data carries a message and the remote-closed flag. */
	raw_request(c, 3, TTRPC_FLAG_REMOTE_OPEN, "Collect", NULL, 0);
	raw_data(c, 3, 0, "x");
	raw_data(c, 3, TTRPC_FLAG_REMOTE_CLOSED, "y");
	expect_text(c, 3, "xy");
	/* One message in the Request and nothing more (remote-closed on the Request). */
	Ttrpc__Echo__EchoRequest one = TTRPC__ECHO__ECHO_REQUEST__INIT;
	one.text = "only";
	raw_request(c, 5, TTRPC_FLAG_REMOTE_CLOSED, "Collect", &one, 0);
	expect_text(c, 5, "only");
	/* A zero-length Data frame without the no-data flag is an empty message. */
	raw_request(c, 7, TTRPC_FLAG_REMOTE_OPEN, "Collect", NULL, 0);
	raw_data(c, 7, 0, "");
	raw_data(c, 7, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA, NULL);
	rep = expect_reply(c, 7);
	assert_int_equal(rep->seq, 1);
	ttrpc_msg_free(&rep->base);
	/* Bidirectional: replies come back while the client still sends. */
	raw_request(c, 9, TTRPC_FLAG_REMOTE_OPEN, "Chat", NULL, 0);
	raw_data(c, 9, 0, "ping");
	struct ttrpc_hdr h;
	uint8_t *d;
	raw_read(c, &h, &d);
	free(d);
	assert_int_equal(h.type, TTRPC_MSG_DATA);
	assert_int_equal(h.stream_id, 9);
	raw_data(c, 9, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA, NULL);
	raw_read(c, &h, &d);
	free(d);
	assert_int_equal(h.flags, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA);
	assert_int_equal(c->svc.pending, 0);
}

static void test_srv_stream_violations(void **state)
{
	struct ctx *c = *state;
	/* Data after the client closed its side. */
	raw_request(c, 1, TTRPC_FLAG_REMOTE_OPEN, "Chat", NULL, 0);
	raw_data(c, 1, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA, NULL);
	struct ttrpc_hdr h;
	uint8_t *d;
	raw_read(c, &h, &d); /* Chat ends at the close */
	free(d);
	assert_int_equal(h.flags, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA);
	raw_data(c, 1, 0, "late");
	expect_status(c, 1, TTRPC_INVALID_ARGUMENT, "StreamID is no longer active");
	/* Data on a unary call in flight ends it. */
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.delay_ms = 5000;
	raw_request(c, 3, 0, "Echo", &req, 0);
	EVTEST_SPIN(&c->ev, c->svc.pending == 1);
	raw_data(c, 3, 0, "x");
	expect_status(c, 3, TTRPC_INVALID_ARGUMENT,
	              "ttrpc: data frame on a stream whose method takes no client stream");
	assert_int_equal(c->svc.last_cancel_code, TTRPC_INVALID_ARGUMENT);
	assert_int_equal(c->svc.pending, 0);
	/* A client stream whose first Data is still open then closed by a payload it cannot
	 * decode. */
	raw_request(c, 5, TTRPC_FLAG_REMOTE_OPEN, "Collect", NULL, 0);
	raw_frame(c, 5, TTRPC_MSG_DATA, 0, "\x0a\x01\xff", 3);
	expect_status(c, 5, TTRPC_INVALID_ARGUMENT,
	              "data handling error: ttrpc.echo.EchoRequest.text: invalid UTF-8");
}

/* ---- against the client ---- */

static uint32_t c_call(struct ctx *c, struct echo_result *r, const struct ttrpc_call_opts *opts)
{
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = "q";
	uint32_t id;
	struct err e;
	assert_int_equal(ttrpc_client_call(c->cl, "svc.S", "M", &req.base,
	                                   &ttrpc__echo__echo_reply__descriptor, opts,
	                                   echo_result_cb, r, &id, &e),
	                 0);
	return id;
}

static void send_reply(struct ctx *c, uint32_t id, uint8_t type, uint8_t flags, const char *text)
{
	struct buf b;
	buf_init(&b);
	Ttrpc__Echo__EchoReply rep = TTRPC__ECHO__ECHO_REPLY__INIT;
	rep.text = (char *)text;
	struct err e;
	if (type == TTRPC_MSG_RESPONSE)
		ttrpc_wire_put_response(&b, id, TTRPC_OK, "", 0, NULL, text ? &rep.base : NULL, &e);
	else
		ttrpc_wire_put_data(&b, id, flags, text ? &rep.base : NULL, &e);
	raw_write(c, buf_head(&b), buf_avail(&b));
	buf_fini(&b);
}

static void test_cli_request_wire(void **state)
{
	struct ctx *c = *state;
	const struct ttrpc_kv md[] = {{"b", "2"}, {"a", "1"}, {"b", "3"}};
	const struct ttrpc_call_opts opts = {
	    .timeout_ns = 7000000000LL, .metadata = md, .n_metadata = 3};
	uint32_t id = c_call(c, &c->r[0], &opts);
	assert_int_equal(id, 1);
	struct ttrpc_hdr h;
	uint8_t *d;
	raw_read(c, &h, &d);
	assert_int_equal(h.type, TTRPC_MSG_REQUEST);
	assert_int_equal(h.flags, 0); /* unary */
	assert_int_equal(h.stream_id, 1);
	struct err e;
	Ttrpc__Request *rq = ttrpc_request_decode(d, h.length, &e);
	free(d);
	assert_string_equal(rq->service, "svc.S");
	assert_string_equal(rq->method, "M");
	assert_int_equal(rq->timeout_nano, 7000000000LL);
	assert_int_equal(rq->n_metadata, 3);
	assert_string_equal(rq->metadata[0]->key, "b");
	assert_string_equal(rq->metadata[1]->key, "a");
	assert_string_equal(rq->metadata[2]->value, "3");
	ttrpc_msg_free(&rq->base);
	send_reply(c, 1, TTRPC_MSG_RESPONSE, 0, "r");
	EVTEST_SPIN(&c->ev, c->r[0].n);
	assert_string_equal(c->r[0].text, "r");

	/* Stream kinds on the wire. */
	Ttrpc__Echo__EchoRequest m = TTRPC__ECHO__ECHO_REQUEST__INIT;
	struct ttrpc_cstream *so = ttrpc_client_stream(
	    c->cl, "svc.S", "So", TTRPC_STREAMING_SERVER, &m.base,
	    &ttrpc__echo__echo_reply__descriptor, NULL, &echo_result_stream, &c->r[1], &e);
	assert_non_null(so);
	raw_read(c, &h, &d);
	free(d);
	assert_int_equal(h.stream_id, 3);
	assert_int_equal(h.flags, TTRPC_FLAG_REMOTE_CLOSED);
	struct ttrpc_cstream *co = ttrpc_client_stream(c->cl, "svc.S", "Co", TTRPC_STREAMING_CLIENT,
	                                               NULL, &ttrpc__echo__echo_reply__descriptor,
	                                               NULL, &echo_result_stream, &c->r[2], &e);
	raw_read(c, &h, &d);
	assert_int_equal(h.stream_id, 5);
	assert_int_equal(h.flags, TTRPC_FLAG_REMOTE_OPEN);
	rq = ttrpc_request_decode(d, h.length, &e);
	free(d);
	assert_int_equal(rq->payload.len, 0); /* no first message */
	ttrpc_msg_free(&rq->base);
	assert_int_equal(ttrpc_cstream_send(co, &m.base, &e), 0);
	raw_read(c, &h, &d);
	free(d);
	assert_int_equal(h.type, TTRPC_MSG_DATA);
	assert_int_equal(h.flags, 0);
	assert_int_equal(ttrpc_cstream_close_send(co, &e), 0);
	raw_read(c, &h, &d);
	free(d);
	assert_int_equal(h.type, TTRPC_MSG_DATA);
	assert_int_equal(h.flags, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA);
	assert_int_equal(h.length, 0);
	assert_int_equal(ttrpc_cstream_id(so), 3);
	assert_int_equal(ttrpc_client_outstanding(c->cl), 2);
}

static void test_cli_answers(void **state)
{
	struct ctx *c = *state;
	/* Data on a unary call is a protocol error for that call. */
	uint32_t a = c_call(c, &c->r[0], NULL);
	send_reply(c, a, TTRPC_MSG_DATA, 0, "x");
	EVTEST_SPIN(&c->ev, c->r[0].n);
	assert_int_equal(c->r[0].code, TTRPC_INTERNAL);
	assert_string_equal(c->r[0].msg, "ttrpc: data frame on a call without a server stream");
	/* A Response that does not decode. */
	uint32_t b = c_call(c, &c->r[1], NULL);
	raw_frame(c, b, TTRPC_MSG_RESPONSE, 0, "\x0a\x09", 2);
	EVTEST_SPIN(&c->ev, c->r[1].n);
	assert_int_equal(c->r[1].code, TTRPC_INTERNAL);
	assert_non_null(strstr(c->r[1].msg, "ttrpc: bad response: ttrpc.Response.status"));
	/* An oversized answer (a Go 1.1.1 server sends those) is skipped; the call fails. */
	uint32_t d = c_call(c, &c->r[2], NULL);
	size_t big = TTRPC_MAX_DATA + 100;
	uint8_t *junk = xcalloc(1, big);
	raw_frame(c, d, TTRPC_MSG_RESPONSE, 0, junk, (uint32_t)big);
	free(junk);
	EVTEST_SPIN(&c->ev, c->r[2].n);
	assert_int_equal(c->r[2].code, TTRPC_RESOURCE_EXHAUSTED);
	assert_string_equal(c->r[2].msg,
	                    "message length 4194404 exceed maximum message size of 4194304");
	/* Frames for streams nobody waits for, and unknown types, are ignored. */
	send_reply(c, 99, TTRPC_MSG_RESPONSE, 0, "nobody");
	uint32_t f = c_call(c, &c->r[3], NULL);
	raw_frame(c, f, 0x9, 0, "??", 2);
	raw_frame(c, f, TTRPC_MSG_REQUEST, 0, "", 0);
	/* Statuses pass through, codes outside gRPC's range included. */
	struct buf bb;
	buf_init(&bb);
	struct err e;
	ttrpc_wire_put_response(&bb, f, 99, "custom", 0, NULL, NULL, &e);
	raw_write(c, buf_head(&bb), buf_avail(&bb));
	buf_fini(&bb);
	EVTEST_SPIN(&c->ev, c->r[3].n);
	assert_int_equal(c->r[3].code, 99);
	assert_string_equal(c->r[3].msg, "custom");
	assert_int_equal(ttrpc_client_ignored_frames(c->cl), 1);
	/* The connection survived all of it. */
	uint32_t g = c_call(c, &c->r[4], NULL);
	send_reply(c, g, TTRPC_MSG_RESPONSE, 0, "fine");
	EVTEST_SPIN(&c->ev, c->r[4].n);
	assert_int_equal(c->r[4].code, TTRPC_OK);
	assert_string_equal(c->r[4].text, "fine");
	/* A reply without payload is the empty message. */
	uint32_t k = c_call(c, &c->r[5], NULL);
	send_reply(c, k, TTRPC_MSG_RESPONSE, 0, NULL);
	EVTEST_SPIN(&c->ev, c->r[5].n);
	assert_int_equal(c->r[5].code, TTRPC_OK);
	assert_string_equal(c->r[5].text, "");
}

static struct ttrpc_cstream *c_stream(struct ctx *c, unsigned flags, struct echo_result *r)
{
	Ttrpc__Echo__EchoRequest m = TTRPC__ECHO__ECHO_REQUEST__INIT;
	struct err e;
	struct ttrpc_cstream *cs = ttrpc_client_stream(c->cl, "svc.S", "St", flags, &m.base,
	                                               &ttrpc__echo__echo_reply__descriptor, NULL,
	                                               &echo_result_stream, r, &e);
	assert_non_null(cs);
	return cs;
}

static void test_cli_stream_ends(void **state)
{
	struct ctx *c = *state;
	/* Go's end: Data remote-closed + no-data. */
	uint32_t a = ttrpc_cstream_id(c_stream(c, TTRPC_STREAMING_SERVER, &c->r[0]));
	send_reply(c, a, TTRPC_MSG_DATA, 0, "1");
	send_reply(c, a, TTRPC_MSG_DATA, 0, "2");
	send_reply(c, a, TTRPC_MSG_DATA, TTRPC_FLAG_REMOTE_CLOSED, NULL);
	EVTEST_SPIN(&c->ev, c->r[0].n);
	assert_int_equal(c->r[0].code, TTRPC_OK);
	assert_int_equal(c->r[0].msgs, 2);
	/* PROTOCOL.md's end: the last Data carries a message. */
	uint32_t b = ttrpc_cstream_id(c_stream(c, TTRPC_STREAMING_SERVER, &c->r[1]));
	send_reply(c, b, TTRPC_MSG_DATA, TTRPC_FLAG_REMOTE_CLOSED, "last");
	EVTEST_SPIN(&c->ev, c->r[1].n);
	assert_int_equal(c->r[1].msgs, 1);
	assert_string_equal(c->r[1].text, "last");
	/* A final OK Response: its payload (when any) is one more message. */
	uint32_t d = ttrpc_cstream_id(c_stream(c, TTRPC_STREAMING_SERVER, &c->r[2]));
	send_reply(c, d, TTRPC_MSG_DATA, 0, "1");
	send_reply(c, d, TTRPC_MSG_RESPONSE, 0, "final");
	uint32_t f = ttrpc_cstream_id(c_stream(c, TTRPC_STREAMING_SERVER, &c->r[3]));
	send_reply(c, f, TTRPC_MSG_RESPONSE, 0, NULL);
	EVTEST_SPIN(&c->ev, c->r[2].n && c->r[3].n);
	assert_int_equal(c->r[2].msgs, 2);
	assert_string_equal(c->r[2].text, "final");
	assert_int_equal(c->r[3].code, TTRPC_OK);
	assert_int_equal(c->r[3].msgs, 0);
	/* A client-only stream ends with the Response carrying the single reply. */
	struct ttrpc_cstream *co = c_stream(c, TTRPC_STREAMING_CLIENT, &c->r[4]);
	send_reply(c, ttrpc_cstream_id(co), TTRPC_MSG_RESPONSE, 0, NULL);
	EVTEST_SPIN(&c->ev, c->r[4].n);
	assert_int_equal(c->r[4].msgs, 1); /* the empty reply message */
	/* Cancelled streams hear nothing more. */
	struct ttrpc_cstream *x = c_stream(c, TTRPC_STREAMING_SERVER, &c->r[5]);
	uint32_t xid = ttrpc_cstream_id(x);
	ttrpc_cstream_cancel(x);
	send_reply(c, xid, TTRPC_MSG_DATA, 0, "ignored");
	EVTEST_SPIN(&c->ev, ttrpc_client_ignored_frames(c->cl) == 1);
	assert_int_equal(c->r[5].msgs, 0);
	assert_int_equal(c->r[5].n, 0);
}

static void test_cli_deadline_and_loss(void **state)
{
	struct ctx *c = *state;
	const struct ttrpc_call_opts opts = {.timeout_ns = 50 * 1000000LL};
	c_call(c, &c->r[0], &opts);
	c_stream(c, TTRPC_STREAMING_SERVER, &c->r[1]);
	EVTEST_SPIN(&c->ev, c->r[0].n);
	assert_int_equal(c->r[0].code, TTRPC_DEADLINE_EXCEEDED);
	assert_int_equal(c->r[1].n, 0);
	close(c->raw);
	c->raw = -1;
	EVTEST_SPIN(&c->ev, c->r[1].n);
	assert_int_equal(c->r[1].code, TTRPC_UNAVAILABLE);
	/* EOF, or a reset when the requests were still unread: either way "closed". */
	assert_true(strncmp(c->r[1].msg, "ttrpc: closed: ", 15) == 0);
	assert_true(ttrpc_client_closed(c->cl));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_srv_unary_and_ids, setup_server, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_bad_requests, setup_server, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_oversized, setup_server, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_deadlines, setup_server, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_server_stream_wire, setup_server, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_client_stream_wire, setup_server, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_stream_violations, setup_server, teardown),
	    cmocka_unit_test_setup_teardown(test_cli_request_wire, setup_client, teardown),
	    cmocka_unit_test_setup_teardown(test_cli_answers, setup_client, teardown),
	    cmocka_unit_test_setup_teardown(test_cli_stream_ends, setup_client, teardown),
	    cmocka_unit_test_setup_teardown(test_cli_deadline_and_loss, setup_client, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
