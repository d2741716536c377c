/* Unit tests for libttrpc end to end: ferry's client against ferry's server (the Echo service
 * of tests/lib/echo_svc) over a socketpair on one loop.  Unary calls, status codes and
 * details, Unimplemented, metadata, deadlines on both sides, 200 asynchronous calls in
 * flight answered out of order, server/client/bidirectional streams and their failures,
 * the 4 MiB cap in both directions, connection loss, client close, too many streams, and
 * freeing or cancelling from inside callbacks. */
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
#include "tests/lib/echo_svc.h"
#include "tests/lib/evtest.h"

#define MAXC 256

struct res {
	int n; /* callbacks */
	int code;
	char msg[256];
	char text[4096];
	size_t data_len;
	bool data_ok; /* data matched what was expected (echo or pattern) */
	uint32_t seq;
	char md[8][64];
	size_t n_md;
	int64_t timeout;
	size_t n_details;
	/* streams */
	int msgs;
	uint32_t last_seq;
	bool in_order;
};

struct ctx {
	struct evtest ev;
	struct echo_svc svc;
	struct ttrpc_server *s;
	struct ttrpc_client *cl;
	int closed;
	struct res r[MAXC];
	const uint8_t *expect_data; /* for data_ok */
	size_t expect_len;
	bool free_client_in_cb;
};

static struct ctx *C;

static void on_close(struct ttrpc_client *cl, const struct err *why, void *ud)
{
	(void)cl;
	(void)why;
	struct ctx *c = ud;
	c->closed++;
}

static void setup_pair(struct ctx *c, const struct ttrpc_server_opts *opts)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct err e;
	c->s = ttrpc_server_new(c->ev.loop, opts);
	assert_int_equal(ttrpc_server_register(c->s, &echo_service, &c->svc, &e), 0);
	assert_int_equal(ttrpc_server_serve_fd(c->s, sv[0], &e), 0);
	const struct ttrpc_client_cbs cbs = {.on_close = on_close};
	c->cl = ttrpc_client_new(c->ev.loop, sv[1], &cbs, c, &e);
	assert_non_null(c->cl);
}

static int setup(void **state)
{
	struct ctx *c = xcalloc(1, sizeof(*c));
	evtest_init(&c->ev, 20.0);
	echo_svc_init(&c->svc, c->ev.loop);
	setup_pair(c, NULL);
	C = c;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	ttrpc_client_free(c->cl);
	ttrpc_server_free(c->s);
	echo_svc_fini(&c->svc); /* calls the server detached when it was freed */
	evtest_fini(&c->ev);
	free(c);
	return 0;
}

/* ---- callbacks ---- */

static void take_reply(struct res *r, const ProtobufCMessage *m)
{
	const Ttrpc__Echo__EchoReply *rep = (const Ttrpc__Echo__EchoReply *)m;
	snprintf(r->text, sizeof(r->text), "%s", rep->text);
	r->data_len = rep->data.len;
	r->data_ok = true;
	for (size_t i = 0; i < rep->data.len; i++) {
		uint8_t want =
		    C->expect_data ? (i < C->expect_len ? C->expect_data[i] : 0) : echo_pattern(i);
		if (rep->data.data[i] != want) {
			r->data_ok = false;
			break;
		}
	}
	r->seq = rep->seq;
	r->n_md = rep->n_metadata < 8 ? rep->n_metadata : 8;
	for (size_t i = 0; i < r->n_md; i++)
		snprintf(r->md[i], sizeof(r->md[i]), "%s", rep->metadata[i]);
	r->timeout = rep->timeout_nano;
}

static void reply_cb(struct ttrpc_client *cl, const struct ttrpc_status *st,
                     const ProtobufCMessage *reply, void *ud)
{
	struct res *r = ud;
	r->n++;
	r->code = st->code;
	snprintf(r->msg, sizeof(r->msg), "%s", st->message);
	r->n_details = st->n_details;
	if (st->code == TTRPC_OK) {
		assert_non_null(reply);
		take_reply(r, reply);
	} else {
		assert_null(reply);
	}
	if (C->free_client_in_cb) {
		ttrpc_client_free(cl);
		C->cl = NULL;
	}
}

static void call_echo(struct ctx *c, struct res *r, const Ttrpc__Echo__EchoRequest *req,
                      const struct ttrpc_call_opts *opts)
{
	struct err e;
	err_clear(&e);
	int rc =
	    ttrpc_client_call(c->cl, ECHO_SERVICE, "Echo", &req->base,
	                      &ttrpc__echo__echo_reply__descriptor, opts, reply_cb, r, NULL, &e);
	if (rc < 0)
		fail_msg("call: %s", e.msg);
}

/* ---- unary ---- */

static void test_unary(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = "hello, ttrpc";
	uint8_t blob[1000];
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 7);
	req.data.data = blob;
	req.data.len = sizeof(blob);
	c->expect_data = blob;
	c->expect_len = sizeof(blob);
	const struct ttrpc_kv md[] = {{"zeta", "last"}, {"alpha", "1"}, {"alpha", "2"}};
	const struct ttrpc_call_opts opts = {
	    .timeout_ns = 30000000000LL, .metadata = md, .n_metadata = 3};
	call_echo(c, &c->r[0], &req, &opts);
	/* An empty request is a valid message too. */
	Ttrpc__Echo__EchoRequest empty = TTRPC__ECHO__ECHO_REQUEST__INIT;
	call_echo(c, &c->r[1], &empty, NULL);
	EVTEST_SPIN(&c->ev, c->r[0].n && c->r[1].n);
	struct res *r = &c->r[0];
	assert_int_equal(r->code, TTRPC_OK);
	assert_string_equal(r->text, "hello, ttrpc");
	assert_int_equal(r->data_len, sizeof(blob));
	assert_true(r->data_ok);
	assert_int_equal(r->n_md, 3);
	assert_string_equal(r->md[0], "alpha=1");
	assert_string_equal(r->md[1], "alpha=2");
	assert_string_equal(r->md[2], "zeta=last");
	assert_int_equal(r->timeout, 30000000000LL);
	assert_int_equal(c->r[1].code, TTRPC_OK);
	assert_string_equal(c->r[1].text, "");
	assert_int_equal(c->r[1].n_md, 0);
	assert_int_equal(c->r[1].timeout, 0);
	assert_int_equal(ttrpc_client_outstanding(c->cl), 0);
	assert_int_equal(ttrpc_server_calls(c->s), 0);
}

static void test_error_status(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.fail_code = TTRPC_NOT_FOUND;
	req.fail_message = "container `c1` not found";
	call_echo(c, &c->r[0], &req, NULL);
	req.fail_code = 77; /* codes outside gRPC's range travel as they are */
	req.fail_message = "odd";
	call_echo(c, &c->r[1], &req, NULL);
	req.fail_code = TTRPC_INTERNAL;
	req.fail_message = "bad \xff byte";
	call_echo(c, &c->r[2], &req, NULL);
	EVTEST_SPIN(&c->ev, c->r[0].n && c->r[1].n && c->r[2].n);
	assert_int_equal(c->r[0].code, TTRPC_NOT_FOUND);
	assert_string_equal(c->r[0].msg, "container `c1` not found");
	assert_int_equal(c->r[1].code, 77);
	assert_string_equal(c->r[1].msg, "odd");
	/* A string field that is not UTF-8 never reaches the handler (Go's wording). */
	assert_int_equal(c->r[2].code, TTRPC_INTERNAL);
	assert_string_equal(c->r[2].msg, "ttrpc: error unmarshalling payload: "
	                                 "ttrpc.echo.EchoRequest.fail_message: invalid UTF-8");
	assert_int_equal(c->svc.started, 2);
}

static void test_unimplemented(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	struct err e;
	assert_int_equal(ttrpc_client_call(c->cl, "no.such.Service", "Echo", &req.base,
	                                   &ttrpc__echo__echo_reply__descriptor, NULL, reply_cb,
	                                   &c->r[0], NULL, &e),
	                 0);
	assert_int_equal(ttrpc_client_call(c->cl, ECHO_SERVICE, "Nope", &req.base,
	                                   &ttrpc__echo__echo_reply__descriptor, NULL, reply_cb,
	                                   &c->r[1], NULL, &e),
	                 0);
	EVTEST_SPIN(&c->ev, c->r[0].n && c->r[1].n);
	assert_int_equal(c->r[0].code, TTRPC_UNIMPLEMENTED);
	assert_string_equal(c->r[0].msg, "service no.such.Service");
	assert_int_equal(c->r[1].code, TTRPC_UNIMPLEMENTED);
	assert_string_equal(c->r[1].msg, "method Nope");
	assert_int_equal(c->svc.started, 0);
}

static void test_deadline(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.delay_ms = 10000;
	const struct ttrpc_call_opts opts = {.timeout_ns = 100 * 1000000LL};
	long long t0 = mono_ns();
	call_echo(c, &c->r[0], &req, &opts);
	EVTEST_SPIN(&c->ev, c->r[0].n && c->svc.cancelled);
	long long ms = (mono_ns() - t0) / 1000000;
	assert_int_equal(c->r[0].code, TTRPC_DEADLINE_EXCEEDED);
	assert_true(ms >= 90 && ms < 5000);
	/* The server ended the call too and told the handler. */
	assert_int_equal(c->svc.last_cancel_code, TTRPC_DEADLINE_EXCEEDED);
	assert_int_equal(c->svc.pending, 0);
	assert_int_equal(ttrpc_server_calls(c->s), 0);
	/* Both deadlines fire together; the server's DeadlineExceeded answer arrives for a
	 * stream the client already ended and is ignored. */
	EVTEST_SPIN(&c->ev, ttrpc_client_ignored_frames(c->cl) == 1);
	/* The connection works on. */
	req.delay_ms = 0;
	req.text = "after";
	call_echo(c, &c->r[1], &req, NULL);
	EVTEST_SPIN(&c->ev, c->r[1].n);
	assert_string_equal(c->r[1].text, "after");
}

static void test_many_in_flight(void **state)
{
	struct ctx *c = *state;
	enum { N = 200 };
	char texts[N][24];
	srand(42);
	for (int i = 0; i < N; i++) {
		Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
		snprintf(texts[i], sizeof(texts[i]), "call-%d", i);
		req.text = texts[i];
		req.delay_ms = (uint32_t)(rand() % 40);
		call_echo(c, &c->r[i], &req, NULL);
	}
	assert_int_equal(ttrpc_client_outstanding(c->cl), N);
	int done;
	do {
		done = 0;
		for (int i = 0; i < N; i++)
			done += c->r[i].n;
		if (done < N)
			ev_run(c->ev.loop, EVRUN_ONCE);
	} while (done < N && !c->ev.timed_out);
	assert_false(c->ev.timed_out);
	for (int i = 0; i < N; i++) {
		assert_int_equal(c->r[i].n, 1);
		assert_int_equal(c->r[i].code, TTRPC_OK);
		assert_string_equal(c->r[i].text, texts[i]);
	}
	struct ttrpc_server_stats st;
	ttrpc_server_stats(c->s, &st);
	assert_int_equal(st.calls_started, N);
	assert_true(st.max_in_flight >= N / 2);
}

/* ---- the 4 MiB cap ---- */

static void test_size_cap(void **state)
{
	struct ctx *c = *state;
	struct err e;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	/* Over the cap on the way out: refused locally, nothing sent. */
	uint8_t *blob = xcalloc(1, TTRPC_MAX_DATA);
	req.data.data = blob;
	req.data.len = TTRPC_MAX_DATA;
	err_clear(&e);
	assert_int_equal(ttrpc_client_call(c->cl, ECHO_SERVICE, "Echo", &req.base,
	                                   &ttrpc__echo__echo_reply__descriptor, NULL, reply_cb,
	                                   &c->r[0], NULL, &e),
	                 -EMSGSIZE);
	assert_int_equal(ttrpc_code_from_errno(e.code), TTRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(ttrpc_client_outstanding(c->cl), 0);
	/* Near the cap, both ways: a 4 MiB - 64 byte echo. */
	req.data.len = TTRPC_MAX_DATA - 64;
	for (size_t i = 0; i < req.data.len; i++)
		blob[i] = (uint8_t)(i * 13 + 1);
	c->expect_data = blob;
	c->expect_len = req.data.len;
	call_echo(c, &c->r[1], &req, NULL);
	EVTEST_SPIN(&c->ev, c->r[1].n);
	assert_int_equal(c->r[1].code, TTRPC_OK);
	assert_int_equal(c->r[1].data_len, TTRPC_MAX_DATA - 64);
	assert_true(c->r[1].data_ok);
	/* A reply over the cap: the server sends ResourceExhausted instead. */
	c->expect_data = NULL;
	req.data.len = 0;
	req.reply_bytes = TTRPC_MAX_DATA;
	call_echo(c, &c->r[2], &req, NULL);
	EVTEST_SPIN(&c->ev, c->r[2].n);
	assert_int_equal(c->r[2].code, TTRPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(c->r[2].msg, "exceeds maximum message size of 4194304"));
	/* ... and a reply just under it goes through. */
	req.reply_bytes = TTRPC_MAX_DATA - 32;
	call_echo(c, &c->r[3], &req, NULL);
	EVTEST_SPIN(&c->ev, c->r[3].n);
	assert_int_equal(c->r[3].code, TTRPC_OK);
	assert_int_equal(c->r[3].data_len, TTRPC_MAX_DATA - 32);
	assert_true(c->r[3].data_ok);
	free(blob);
}

/* ---- streams ---- */

static void s_msg(struct ttrpc_cstream *cs, const ProtobufCMessage *msg, void *ud)
{
	(void)cs;
	struct res *r = ud;
	const Ttrpc__Echo__EchoReply *rep = (const Ttrpc__Echo__EchoReply *)msg;
	if (r->msgs == 0)
		r->in_order = true;
	if (rep->seq != (uint32_t)r->msgs)
		r->in_order = false;
	r->msgs++;
	r->last_seq = rep->seq;
	snprintf(r->text, sizeof(r->text), "%s", rep->text);
}

static void s_end(struct ttrpc_cstream *cs, const struct ttrpc_status *st, void *ud)
{
	(void)cs;
	struct res *r = ud;
	r->n++;
	r->code = st->code;
	snprintf(r->msg, sizeof(r->msg), "%s", st->message);
}

static const struct ttrpc_cstream_cbs scbs = {.on_msg = s_msg, .on_end = s_end};

static struct ttrpc_cstream *open_stream(struct ctx *c, const char *method, unsigned flags,
                                         const Ttrpc__Echo__EchoRequest *req, struct res *r)
{
	struct err e;
	err_clear(&e);
	struct ttrpc_cstream *cs =
	    ttrpc_client_stream(c->cl, ECHO_SERVICE, method, flags, req ? &req->base : NULL,
	                        &ttrpc__echo__echo_reply__descriptor, NULL, &scbs, r, &e);
	if (!cs)
		fail_msg("stream: %s", e.msg);
	return cs;
}

static void test_server_stream(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = "tick";
	req.count = 1000;
	open_stream(c, "Stream", TTRPC_STREAMING_SERVER, &req, &c->r[0]);
	/* An empty server stream ends at once. */
	req.count = 0;
	open_stream(c, "Stream", TTRPC_STREAMING_SERVER, &req, &c->r[1]);
	/* A failing one delivers what came before the status. */
	req.count = 3;
	req.fail_code = TTRPC_ABORTED;
	req.fail_message = "migration cancelled";
	open_stream(c, "Stream", TTRPC_STREAMING_SERVER, &req, &c->r[2]);
	EVTEST_SPIN(&c->ev, c->r[0].n && c->r[1].n && c->r[2].n);
	assert_int_equal(c->r[0].code, TTRPC_OK);
	assert_int_equal(c->r[0].msgs, 1000);
	assert_true(c->r[0].in_order);
	assert_string_equal(c->r[0].text, "tick");
	assert_int_equal(c->r[1].code, TTRPC_OK);
	assert_int_equal(c->r[1].msgs, 0);
	assert_int_equal(c->r[2].code, TTRPC_ABORTED);
	assert_string_equal(c->r[2].msg, "migration cancelled");
	assert_int_equal(c->r[2].msgs, 3);
	assert_int_equal(ttrpc_client_outstanding(c->cl), 0);
	assert_int_equal(ttrpc_server_calls(c->s), 0);
}

static void send_text(struct ttrpc_cstream *cs, const char *text)
{
	Ttrpc__Echo__EchoRequest m = TTRPC__ECHO__ECHO_REQUEST__INIT;
	m.text = (char *)text;
	struct err e;
	assert_int_equal(ttrpc_cstream_send(cs, &m.base, &e), 0);
}

static void test_client_stream(void **state)
{
	struct ctx *c = *state;
	/* Without a first message in the Request. */
	struct ttrpc_cstream *cs =
	    open_stream(c, "Collect", TTRPC_STREAMING_CLIENT, NULL, &c->r[0]);
	const char *parts[] = {"mi", "gra", "", "tion"};
	for (int i = 0; i < 4; i++)
		send_text(cs, parts[i]);
	/* Nothing is answered before the client closes its side. */
	evtest_run_for(&c->ev, 0.05);
	assert_int_equal(c->r[0].n, 0);
	assert_int_equal(c->svc.stream_msgs, 4);
	struct err e;
	assert_int_equal(ttrpc_cstream_close_send(cs, &e), 0);
	assert_int_equal(ttrpc_cstream_close_send(cs, &e), -EINVAL);
	assert_int_equal(ttrpc_cstream_send(cs, NULL, &e), -EINVAL);
	EVTEST_SPIN(&c->ev, c->r[0].n);
	assert_int_equal(c->r[0].code, TTRPC_OK);
	assert_int_equal(c->r[0].msgs, 1); /* the single reply */
	assert_string_equal(c->r[0].text, "migration");

	/* With a first message carried by the Request. */
	Ttrpc__Echo__EchoRequest first = TTRPC__ECHO__ECHO_REQUEST__INIT;
	first.text = "A";
	cs = open_stream(c, "Collect", TTRPC_STREAMING_CLIENT, &first, &c->r[1]);
	send_text(cs, "B");
	assert_int_equal(ttrpc_cstream_close_send(cs, &e), 0);
	EVTEST_SPIN(&c->ev, c->r[1].n);
	assert_string_equal(c->r[1].text, "AB");
}

static void test_bidi_stream(void **state)
{
	struct ctx *c = *state;
	struct ttrpc_cstream *cs =
	    open_stream(c, "Chat", TTRPC_STREAMING_CLIENT | TTRPC_STREAMING_SERVER, NULL, &c->r[0]);
	/* Ping-pong: each reply arrives before the next message goes out. */
	const char *lines[] = {"one", "two", "three"};
	for (int i = 0; i < 3; i++) {
		send_text(cs, lines[i]);
		EVTEST_SPIN(&c->ev, c->r[0].msgs == i + 1);
		assert_string_equal(c->r[0].text, lines[i]);
	}
	struct err e;
	assert_int_equal(ttrpc_cstream_close_send(cs, &e), 0);
	EVTEST_SPIN(&c->ev, c->r[0].n);
	assert_int_equal(c->r[0].code, TTRPC_OK);
	assert_int_equal(c->r[0].msgs, 3);
	assert_true(c->r[0].in_order);

	/* The server may end a bidirectional stream with an error before the client closes. */
	cs =
	    open_stream(c, "Chat", TTRPC_STREAMING_CLIENT | TTRPC_STREAMING_SERVER, NULL, &c->r[1]);
	send_text(cs, "x");
	Ttrpc__Echo__EchoRequest bad = TTRPC__ECHO__ECHO_REQUEST__INIT;
	bad.fail_code = TTRPC_FAILED_PRECONDITION;
	bad.fail_message = "no";
	assert_int_equal(ttrpc_cstream_send(cs, &bad.base, &e), 0);
	EVTEST_SPIN(&c->ev, c->r[1].n);
	assert_int_equal(c->r[1].code, TTRPC_FAILED_PRECONDITION);
	assert_int_equal(c->r[1].msgs, 1);
}

static void test_stream_flags_checked(void **state)
{
	struct ctx *c = *state;
	struct err e;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	assert_null(ttrpc_client_stream(c->cl, ECHO_SERVICE, "Stream", 0, &req.base,
	                                &ttrpc__echo__echo_reply__descriptor, NULL, &scbs, &c->r[0],
	                                &e));
	assert_int_equal(e.code, -EINVAL);
	assert_null(ttrpc_client_stream(c->cl, ECHO_SERVICE, "Stream", TTRPC_STREAMING_SERVER, NULL,
	                                &ttrpc__echo__echo_reply__descriptor, NULL, &scbs, &c->r[0],
	                                &e));
	assert_int_equal(e.code, -EINVAL);
	/* A server-only stream cannot send. */
	req.count = 1;
	struct ttrpc_cstream *cs = open_stream(c, "Stream", TTRPC_STREAMING_SERVER, &req, &c->r[1]);
	assert_int_equal(ttrpc_cstream_send(cs, &req.base, &e), -EINVAL);
	EVTEST_SPIN(&c->ev, c->r[1].n);
	assert_int_equal(c->r[1].msgs, 1);
}

/* ---- loss, close, cancel, limits ---- */

static void test_connection_lost(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.delay_ms = 10000;
	call_echo(c, &c->r[0], &req, NULL);
	open_stream(c, "Chat", TTRPC_STREAMING_CLIENT | TTRPC_STREAMING_SERVER, NULL, &c->r[1]);
	EVTEST_SPIN(&c->ev, c->svc.started == 2);
	/* The server goes away: every client call ends Unavailable, then on_close. */
	ttrpc_server_free(c->s);
	c->s = NULL;
	EVTEST_SPIN(&c->ev, c->closed == 1);
	assert_int_equal(c->r[0].code, TTRPC_UNAVAILABLE);
	assert_non_null(strstr(c->r[0].msg, "closed"));
	assert_int_equal(c->r[1].code, TTRPC_UNAVAILABLE);
	assert_true(ttrpc_client_closed(c->cl));
	struct err e;
	assert_int_equal(ttrpc_client_call(c->cl, ECHO_SERVICE, "Echo", &req.base,
	                                   &ttrpc__echo__echo_reply__descriptor, NULL, reply_cb,
	                                   &c->r[2], NULL, &e),
	                 -EPIPE);
	/* Freeing the server runs no callback: the detached calls wait for echo_svc_fini. */
	assert_int_equal(c->svc.cancelled, 0);
	assert_int_equal(c->svc.pending, 2);
}

static void test_client_gone_cancels_server_calls(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.delay_ms = 10000;
	for (int i = 0; i < 3; i++)
		call_echo(c, &c->r[i], &req, NULL);
	open_stream(c, "Collect", TTRPC_STREAMING_CLIENT, NULL, &c->r[3]);
	EVTEST_SPIN(&c->ev, c->svc.started == 4);
	ttrpc_client_close(c->cl);
	/* Client side: Cancelled at once, then on_close. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(c->r[i].code, TTRPC_CANCELLED);
	assert_int_equal(c->closed, 1);
	/* Server side: every handler hears Cancelled and releases its call. */
	EVTEST_SPIN(&c->ev, c->svc.cancelled == 4);
	assert_int_equal(c->svc.last_cancel_code, TTRPC_CANCELLED);
	assert_int_equal(c->svc.pending, 0);
	EVTEST_SPIN(&c->ev, ttrpc_server_connections(c->s) == 0);
}

static void test_cancel_and_free_in_callback(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.delay_ms = 20;
	uint32_t id;
	struct err e;
	assert_int_equal(ttrpc_client_call(c->cl, ECHO_SERVICE, "Echo", &req.base,
	                                   &ttrpc__echo__echo_reply__descriptor, NULL, reply_cb,
	                                   &c->r[0], &id, &e),
	                 0);
	assert_int_equal(id % 2, 1);
	assert_int_equal(ttrpc_client_cancel(c->cl, id), 0);
	assert_int_equal(ttrpc_client_cancel(c->cl, id), -ENOENT);
	/* The late answer is ignored. */
	EVTEST_SPIN(&c->ev, ttrpc_client_ignored_frames(c->cl) == 1);
	assert_int_equal(c->r[0].n, 0);
	/* Freeing the client inside a reply callback with other calls in flight. */
	req.delay_ms = 0;
	call_echo(c, &c->r[1], &req, NULL);
	req.delay_ms = 50;
	call_echo(c, &c->r[2], &req, NULL);
	c->free_client_in_cb = true;
	EVTEST_SPIN(&c->ev, c->r[1].n);
	assert_null(c->cl);
	evtest_run_for(&c->ev, 0.1);
	assert_int_equal(c->r[2].n, 0);
	/* The server saw the connection go and cancelled the delayed call. */
	EVTEST_SPIN(&c->ev, c->svc.cancelled == 1);
}

static void test_ids_odd_increasing(void **state)
{
	struct ctx *c = *state;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	uint32_t prev = 0;
	for (int i = 0; i < 5; i++) {
		uint32_t id;
		struct err e;
		assert_int_equal(ttrpc_client_call(c->cl, ECHO_SERVICE, "Echo", &req.base,
		                                   &ttrpc__echo__echo_reply__descriptor, NULL,
		                                   reply_cb, &c->r[i], &id, &e),
		                 0);
		assert_int_equal(id, 2 * (uint32_t)i + 1);
		assert_true(id > prev);
		prev = id;
	}
	EVTEST_SPIN(&c->ev, c->r[4].n);
}

static void test_too_many_streams(void **state)
{
	struct ctx *c = *state;
	ttrpc_client_free(c->cl);
	ttrpc_server_free(c->s);
	const struct ttrpc_server_opts opts = {.max_streams = 2};
	setup_pair(c, &opts);
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.delay_ms = 50;
	for (int i = 0; i < 3; i++)
		call_echo(c, &c->r[i], &req, NULL);
	EVTEST_SPIN(&c->ev, c->r[0].n && c->r[1].n && c->r[2].n);
	assert_int_equal(c->r[0].code, TTRPC_OK);
	assert_int_equal(c->r[1].code, TTRPC_OK);
	assert_int_equal(c->r[2].code, TTRPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(c->r[2].msg, "too many streams"));
	/* Room again once they finished. */
	call_echo(c, &c->r[3], &req, NULL);
	EVTEST_SPIN(&c->ev, c->r[3].n);
	assert_int_equal(c->r[3].code, TTRPC_OK);
}

/* ---- a second service: details, wrong replies, handlers that misbehave ---- */

static void h_details(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT, b = GOOGLE__PROTOBUF__ANY__INIT;
	a.type_url = "type.googleapis.com/google.rpc.RetryInfo";
	b.type_url = "type.googleapis.com/google.rpc.DebugInfo";
	Google__Protobuf__Any *d[] = {&a, &b};
	assert_int_equal(ttrpc_call_fail_status(call, TTRPC_UNAVAILABLE, "try later", 2, d), 0);
}

static int wrong_rc;

static void h_wrong(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	(void)ud;
	struct err e;
	/* Unary: no stream sends; then a reply of the wrong type. */
	assert_int_equal(ttrpc_call_send(call, req, &e), -EINVAL);
	wrong_rc = ttrpc_call_respond(call, req); /* an EchoRequest, not an EchoReply */
}

static void h_free_server(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	assert_string_equal(ttrpc_call_metadata_get(call, "X-Trace"), "abc");
	assert_null(ttrpc_call_metadata_get(call, "missing"));
	assert_string_equal(ttrpc_call_service(call), "test.Misc");
	assert_string_equal(ttrpc_call_method(call), "FreeServer");
	assert_int_equal(ttrpc_call_peer(call)->uid, geteuid());
	ttrpc_server_free(C->s); /* deferred until the frame loop unwinds */
	C->s = NULL;
	assert_int_equal(ttrpc_call_fail(call, TTRPC_ABORTED, "bye"), 0);
}

static void h_bad_utf8(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	(void)req;
	(void)ud;
	ttrpc_call_fail(call, TTRPC_NOT_FOUND, "no file `/tmp/\xff\xfe\xc3\xa9`");
}

static const struct ttrpc_method misc_methods[] = {
    {"BadUtf8", &ttrpc__echo__echo_request__descriptor, &ttrpc__echo__echo_reply__descriptor,
     h_bad_utf8, 0},
    {"Details", &ttrpc__echo__echo_request__descriptor, &ttrpc__echo__echo_reply__descriptor,
     h_details, 0},
    {"Wrong", &ttrpc__echo__echo_request__descriptor, &ttrpc__echo__echo_reply__descriptor, h_wrong,
     0},
    {"FreeServer", &ttrpc__echo__echo_request__descriptor, &ttrpc__echo__echo_reply__descriptor,
     h_free_server, 0},
};
static const struct ttrpc_service misc = {"test.Misc", misc_methods, 4};

static void call_misc(struct ctx *c, const char *method, struct res *r,
                      const struct ttrpc_call_opts *opts)
{
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	struct err e;
	assert_int_equal(ttrpc_client_call(c->cl, "test.Misc", method, &req.base,
	                                   &ttrpc__echo__echo_reply__descriptor, opts, reply_cb, r,
	                                   NULL, &e),
	                 0);
}

static void test_misc_service(void **state)
{
	struct ctx *c = *state;
	struct err e;
	assert_int_equal(ttrpc_server_register(c->s, &misc, NULL, &e), 0);
	call_misc(c, "Details", &c->r[0], NULL);
	call_misc(c, "Wrong", &c->r[1], NULL);
	call_misc(c, "BadUtf8", &c->r[3], NULL);
	EVTEST_SPIN(&c->ev, c->r[0].n && c->r[1].n && c->r[3].n);
	/* A handler's message that is not UTF-8 is repaired, so that the status decodes. */
	assert_int_equal(c->r[3].code, TTRPC_NOT_FOUND);
	assert_string_equal(c->r[3].msg, "no file `/tmp/??\xc3\xa9`");
	assert_int_equal(c->r[0].code, TTRPC_UNAVAILABLE);
	assert_string_equal(c->r[0].msg, "try later");
	assert_int_equal(c->r[0].n_details, 2);
	assert_int_equal(wrong_rc, -EINVAL);
	assert_int_equal(c->r[1].code, TTRPC_INTERNAL);
	assert_string_equal(c->r[1].msg, "ttrpc: handler of Wrong replied with "
	                                 "ttrpc.echo.EchoRequest, want ttrpc.echo.EchoReply");
	/* A handler frees the server (deferred until the frame loop unwinds) and then fails
	 * its call: the answer may or may not leave before the connection closes. */
	const struct ttrpc_kv md[] = {{"x-trace", "abc"}};
	const struct ttrpc_call_opts opts = {.metadata = md, .n_metadata = 1};
	call_misc(c, "FreeServer", &c->r[2], &opts);
	EVTEST_SPIN(&c->ev, c->r[2].n);
	assert_null(c->s);
	assert_true(c->r[2].code == TTRPC_ABORTED || c->r[2].code == TTRPC_UNAVAILABLE);
}

static void test_register_errors(void **state)
{
	struct ctx *c = *state;
	struct err e;
	assert_int_equal(ttrpc_server_register(c->s, &echo_service, NULL, &e), -EEXIST);
	static const struct ttrpc_method twice[] = {
	    {"A", &ttrpc__echo__tree__descriptor, &ttrpc__echo__tree__descriptor, h_details, 0},
	    {"A", &ttrpc__echo__tree__descriptor, &ttrpc__echo__tree__descriptor, h_details, 0},
	};
	static const struct ttrpc_service s_twice = {"t.Twice", twice, 2};
	assert_int_equal(ttrpc_server_register(c->s, &s_twice, NULL, &e), -EEXIST);
	assert_non_null(strstr(e.msg, "method A listed twice"));
	static const struct ttrpc_method nodesc[] = {
	    {"A", NULL, &ttrpc__echo__tree__descriptor, h_details, 0}};
	static const struct ttrpc_service s_nodesc = {"t.NoDesc", nodesc, 1};
	assert_int_equal(ttrpc_server_register(c->s, &s_nodesc, NULL, &e), -EINVAL);
	static const struct ttrpc_method badflags[] = {
	    {"A", &ttrpc__echo__tree__descriptor, &ttrpc__echo__tree__descriptor, h_details, 4}};
	static const struct ttrpc_service s_badflags = {"t.Flags", badflags, 1};
	assert_int_equal(ttrpc_server_register(c->s, &s_badflags, NULL, &e), -EINVAL);
	static const struct ttrpc_service s_noname = {"", badflags, 0};
	assert_int_equal(ttrpc_server_register(c->s, &s_noname, NULL, &e), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_error_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unimplemented, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bidi_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_flags_checked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_lost, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_gone_cancels_server_calls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_and_free_in_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ids_odd_increasing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_streams, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_misc_service, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_register_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
