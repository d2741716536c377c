/* Interoperability of ferry's ttrpc with Go's containerd/ttrpc (Debian's 1.1.1, through the
 * peer program tests/interop/ttrpc-peer, built offline by the Makefile into $BUILD/go/), in
 * both directions, on unix sockets:
 *
 *   Go client -> ferry server: unary calls, status codes and messages, Unimplemented, a
 *   deadline only the server can enforce (timeout_nano shorter than the Go context), the
 *   timeout and metadata as the server sees them, a Request of exactly 4 MiB and one byte
 *   over (Go 1.1.1 sends it: ferry skips it and answers ResourceExhausted), a reply over the
 *   cap (answered ResourceExhausted instead: Go 1.1.1 would crash on the frame), 100
 *   concurrent calls on one connection, and a refused peer.
 *
 *   ferry client -> Go server: the same families: echo, codes and messages, Unimplemented,
 *   deadlines (the Go server's own DeadlineExceeded arrives), timeout and metadata seen by
 *   Go, 4 MiB requests, an oversized reply from Go (skipped, ResourceExhausted, the
 *   connection lives on) and 100 calls in flight.
 *
 * Go 1.1.1 has no streams: streams are tested between ferry's own ends (unit tests). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fdio.h"
#include "common/xalloc.h"
#include "tests/lib/echo_env.h"
#include "tests/lib/goproc.h"

#define PEER "ttrpc-peer"

struct ctx {
	struct echo_env env;
	struct goproc go;
};

static int setup(void **state)
{
	struct ctx *c = xcalloc(1, sizeof(*c));
	echo_env_init(&c->env, "ttrpc-interop", 120.0);
	c->go.in = c->go.out = -1;
	buf_init(&c->go.buf);
	if (access(goproc_bin(PEER), X_OK) < 0)
		fail_msg("%s missing: build it with `make go-peers` (needs golang-go and "
		         "golang-github-containerd-ttrpc-dev, see `make deps`)",
		         goproc_bin(PEER));
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	goproc_stop(&c->go);
	echo_env_fini(&c->env);
	free(c);
	return 0;
}

/* ======== Go client -> ferry server ======== */

static void start_ferry_server(struct ctx *c, const struct ttrpc_server_opts *opts)
{
	echo_env_listen(&c->env, opts);
}

/* Run the Go client's scenario against the ferry server (served on our loop meanwhile) and
 * return its output lines joined by '\n' (static storage). */
static const char *go_client(struct ctx *c, const char *scenario)
{
	static char out[4096];
	char *argv[] = {(char *)goproc_bin(PEER), "client", c->env.path, (char *)scenario, NULL};
	assert_int_equal(goproc_start(&c->go, argv), 0);
	int rc = goproc_wait(&c->go, c->env.ev.loop, 90.0);
	size_t n = buf_avail(&c->go.buf);
	snprintf(out, sizeof(out), "%.*s", (int)n, (const char *)buf_head(&c->go.buf));
	goproc_stop(&c->go);
	if (rc != 0)
		fail_msg("go client %s exited %d:\n%s", scenario, rc, out);
	return out;
}

static void expect_lines(const char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("go client said:\n%s\nwant:\n%s", got, want);
}

static void test_go_client_unary(void **state)
{
	struct ctx *c = *state;
	start_ferry_server(c, NULL);
	expect_lines(go_client(c, "unary"), "code=0 msg= text=hello from go data_ok=1\n"
	                                    "empty code=0 msg= text= len=0\n");
	expect_lines(go_client(c, "error"), "code=5 msg=container `c1` not found\n"
	                                    "code=9 msg=migration in progress\n");
	expect_lines(go_client(c, "unimplemented"), "service code=12 msg=service no.such.Service\n"
	                                            "method code=12 msg=method Nope\n");
	expect_lines(go_client(c, "metadata"), "code=0 msg= metadata=alpha=1,alpha=2,zeta=last\n");
	struct ttrpc_server_stats st;
	ttrpc_server_stats(c->env.s, &st);
	assert_int_equal(st.conns_accepted, 4);
	assert_int_equal(st.calls_started, 5); /* Unimplemented never reaches a handler */
}

static void test_go_client_deadlines(void **state)
{
	struct ctx *c = *state;
	start_ferry_server(c, NULL);
	/* Go's context allows 60 s; only ferry's server can end the call at 200 ms. */
	const char *out = go_client(c, "deadline");
	long ms = -1;
	assert_int_equal(sscanf(out, "code=4 msg=context deadline exceeded elapsed_ms=%ld", &ms),
	                 1);
	assert_true(ms >= 190 && ms < 5000);
	assert_int_equal(c->env.svc.cancelled, 1);
	assert_int_equal(c->env.svc.last_cancel_code, TTRPC_DEADLINE_EXCEEDED);
	/* Go sends its context deadline as timeout_nano; the server reports what it got. */
	out = go_client(c, "timeout");
	long long t = 0;
	assert_int_equal(sscanf(out, "code=0 msg= timeout_nano=%lld", &t), 1);
	assert_true(t > 25000000000LL && t <= 30000000000LL);
}

static void test_go_client_size_cap(void **state)
{
	struct ctx *c = *state;
	start_ferry_server(c, NULL);
	/* Exactly 4 MiB of Request data is accepted; a Response of exactly 4 MiB is sent. */
	expect_lines(go_client(c, "near-cap"),
	             "request code=0 msg= request_bytes=4194304 len=1\n"
	             "reply code=0 msg= response_bytes=4194304 data_ok=1\n");
	/* One byte more: Go 1.1.1 sends it anyway; ferry discards it unbuffered and answers on
	 * its stream; the connection goes on. */
	expect_lines(go_client(c, "over-cap-request"),
	             "code=8 msg=message length 4194305 exceed maximum message size of 4194304 "
	             "request_bytes=4194305\n"
	             "after code=0 msg= text=after\n");
	/* A reply that would not fit is replaced by ResourceExhausted (an oversized frame would
	 * crash Go 1.1.1's client). */
	const char *out = go_client(c, "over-cap-reply");
	assert_non_null(strstr(out, "code=8 msg=message length "));
	assert_non_null(strstr(out, "exceeds maximum message size of 4194304\n"
	                            "after code=0 msg= text=after\n"));
}

static void test_go_client_concurrent(void **state)
{
	struct ctx *c = *state;
	start_ferry_server(c, NULL);
	expect_lines(go_client(c, "concurrent"), "ok=100 failed=0\n");
	struct ttrpc_server_stats st;
	ttrpc_server_stats(c->env.s, &st);
	assert_int_equal(st.conns_accepted, 1); /* all on one connection */
	assert_int_equal(st.calls_started, 100);
	assert_true(st.max_in_flight >= 50);
}

static bool refuse_all(const struct ucred *peer, void *ud)
{
	(void)peer;
	(void)ud;
	return false;
}

static void quiet(struct ttrpc_server *s, const struct ucred *peer, const char *why, void *ud)
{
	(void)s;
	(void)peer;
	(void)why;
	(*(int *)ud)++;
}

static void test_go_client_refused(void **state)
{
	struct ctx *c = *state;
	int refused = 0;
	const struct ttrpc_server_opts opts = {
	    .peer_allowed = refuse_all, .on_refused = quiet, .ud = &refused};
	start_ferry_server(c, &opts);
	const char *out = go_client(c, "error");
	/* The Go client reads a clear status, not a dropped connection. */
	assert_non_null(strstr(out, "code=7 msg=ttrpc: permission denied: refused connection "
	                            "from pid="));
	assert_int_equal(refused, 1);
	assert_int_equal(c->env.svc.started, 0);
}

/* ======== ferry client -> Go server ======== */

struct res {
	int n;
	int code;
	char msg[256];
	Ttrpc__Echo__EchoReply *rep; /* unpacked copy of the reply */
};

static void start_go_server(struct ctx *c)
{
	char *argv[] = {(char *)goproc_bin(PEER), "server", c->env.path, NULL};
	assert_int_equal(goproc_start(&c->go, argv), 0);
	char line[64];
	assert_true(goproc_line(&c->go, NULL, 30.0, line, sizeof(line)));
	assert_string_equal(line, "ready");
	struct err e;
	int fd = ttrpc_dial_unix(c->env.path, &e);
	assert_true(fd >= 0);
	c->env.cl = ttrpc_client_new(c->env.ev.loop, fd, NULL, NULL, &e);
	assert_non_null(c->env.cl);
}

static void reply_cb(struct ttrpc_client *cl, const struct ttrpc_status *st,
                     const ProtobufCMessage *reply, void *ud)
{
	(void)cl;
	struct res *r = ud;
	r->n++;
	r->code = st->code;
	snprintf(r->msg, sizeof(r->msg), "%s", st->message);
	if (reply) {
		/* keep a copy: the reply is only valid during the callback */
		size_t n = protobuf_c_message_get_packed_size(reply);
		uint8_t *b = xmalloc(n + 1);
		protobuf_c_message_pack(reply, b);
		struct err e;
		r->rep = (Ttrpc__Echo__EchoReply *)ttrpc_msg_unpack(
		    &ttrpc__echo__echo_reply__descriptor, b, n, &e);
		free(b);
	}
}

static int call(struct ctx *c, struct res *r, const Ttrpc__Echo__EchoRequest *req,
                const struct ttrpc_call_opts *opts, struct err *e)
{
	return ttrpc_client_call(c->env.cl, ECHO_SERVICE, "Echo", &req->base,
	                         &ttrpc__echo__echo_reply__descriptor, opts, reply_cb, r, NULL, e);
}

static void wait_res(struct ctx *c, struct res *r)
{
	EVTEST_SPIN(&c->env.ev, r->n);
}

static void res_free(struct res *r)
{
	ttrpc_msg_free(r->rep ? &r->rep->base : NULL);
	r->rep = NULL;
}

static void test_ferry_client_unary(void **state)
{
	struct ctx *c = *state;
	start_go_server(c);
	struct err e;
	struct res r[6] = {0};
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = "hello from C";
	uint8_t blob[3000];
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 3);
	req.data.data = blob;
	req.data.len = sizeof(blob);
	assert_int_equal(call(c, &r[0], &req, NULL, &e), 0);
	Ttrpc__Echo__EchoRequest empty = TTRPC__ECHO__ECHO_REQUEST__INIT;
	assert_int_equal(call(c, &r[1], &empty, NULL, &e), 0);
	Ttrpc__Echo__EchoRequest bad = TTRPC__ECHO__ECHO_REQUEST__INIT;
	bad.fail_code = TTRPC_ALREADY_EXISTS;
	bad.fail_message = "sandbox `s1` exists";
	assert_int_equal(call(c, &r[2], &bad, NULL, &e), 0);
	assert_int_equal(ttrpc_client_call(c->env.cl, "no.such.Service", "Echo", &req.base,
	                                   &ttrpc__echo__echo_reply__descriptor, NULL, reply_cb,
	                                   &r[3], NULL, &e),
	                 0);
	assert_int_equal(ttrpc_client_call(c->env.cl, ECHO_SERVICE, "Nope", &req.base,
	                                   &ttrpc__echo__echo_reply__descriptor, NULL, reply_cb,
	                                   &r[4], NULL, &e),
	                 0);
	const struct ttrpc_kv md[] = {{"zeta", "last"}, {"alpha", "1"}, {"alpha", "2"}};
	const struct ttrpc_call_opts mopts = {
	    .timeout_ns = 30000000000LL, .metadata = md, .n_metadata = 3};
	assert_int_equal(call(c, &r[5], &empty, &mopts, &e), 0);
	for (int i = 0; i < 6; i++)
		wait_res(c, &r[i]);
	assert_int_equal(r[0].code, TTRPC_OK);
	assert_string_equal(r[0].rep->text, "hello from C");
	assert_int_equal(r[0].rep->data.len, sizeof(blob));
	assert_memory_equal(r[0].rep->data.data, blob, sizeof(blob));
	assert_int_equal(r[1].code, TTRPC_OK);
	assert_string_equal(r[1].rep->text, "");
	assert_int_equal(r[2].code, TTRPC_ALREADY_EXISTS);
	assert_string_equal(r[2].msg, "sandbox `s1` exists");
	assert_int_equal(r[3].code, TTRPC_UNIMPLEMENTED);
	assert_string_equal(r[3].msg, "service no.such.Service");
	assert_int_equal(r[4].code, TTRPC_UNIMPLEMENTED);
	assert_string_equal(r[4].msg, "method Nope");
	/* What Go saw: our metadata (keys sorted by the peer, values in order) and timeout. */
	assert_int_equal(r[5].code, TTRPC_OK);
	assert_int_equal(r[5].rep->n_metadata, 3);
	assert_string_equal(r[5].rep->metadata[0], "alpha=1");
	assert_string_equal(r[5].rep->metadata[1], "alpha=2");
	assert_string_equal(r[5].rep->metadata[2], "zeta=last");
	assert_true(r[5].rep->timeout_nano > 25000000000LL &&
	            r[5].rep->timeout_nano <= 30000000000LL);
	for (int i = 0; i < 6; i++)
		res_free(&r[i]);
}

static void test_ferry_client_deadline(void **state)
{
	struct ctx *c = *state;
	start_go_server(c);
	struct err e;
	struct res r = {0};
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.delay_ms = 10000;
	const struct ttrpc_call_opts opts = {.timeout_ns = 200 * 1000000LL};
	long long t0 = mono_ns();
	assert_int_equal(call(c, &r, &req, &opts, &e), 0);
	wait_res(c, &r);
	long long ms = (mono_ns() - t0) / 1000000;
	assert_int_equal(r.code, TTRPC_DEADLINE_EXCEEDED);
	assert_true(ms >= 190 && ms < 5000);
	/* The Go server honoured timeout_nano too: its own DeadlineExceeded answer comes soon
	 * after (far before the 10 s delay), for a call we already ended. */
	long long t1 = mono_ns();
	EVTEST_SPIN(&c->env.ev, ttrpc_client_ignored_frames(c->env.cl) == 1);
	assert_true((mono_ns() - t1) / 1000000 < 8000);
}

static void test_ferry_client_size_cap(void **state)
{
	struct ctx *c = *state;
	start_go_server(c);
	struct err e;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	/* A Request of exactly 4 MiB, answered with one byte: find the data length by
	 * encoding. */
	req.reply_bytes = 1;
	size_t n = TTRPC_MAX_DATA - 64;
	uint8_t *blob = xmalloc(TTRPC_MAX_DATA);
	for (size_t i = 0; i < TTRPC_MAX_DATA; i++)
		blob[i] = (uint8_t)(i * 13 + 1);
	req.data.data = blob;
	for (;; n++) {
		req.data.len = n;
		struct buf b;
		buf_init(&b);
		const struct ttrpc_request_out rq = {
		    .service = ECHO_SERVICE, .method = "Echo", .payload = &req.base};
		int rr = ttrpc_wire_put_request(&b, 1, 0, &rq, &e);
		size_t len = buf_avail(&b) - TTRPC_HDR_SIZE;
		buf_fini(&b);
		if (rr == 0 && len == TTRPC_MAX_DATA)
			break;
		assert_true(rr == 0 && len < TTRPC_MAX_DATA);
	}
	struct res r[5] = {0};
	assert_int_equal(call(c, &r[0], &req, NULL, &e), 0);
	wait_res(c, &r[0]);
	assert_int_equal(r[0].code, TTRPC_OK);
	assert_int_equal(r[0].rep->data.len, 1);
	/* A Response of exactly 4 MiB from Go. */
	size_t m = TTRPC_MAX_DATA - 64;
	Ttrpc__Echo__EchoReply rep = TTRPC__ECHO__ECHO_REPLY__INIT;
	rep.data.data = blob;
	for (;; m++) {
		rep.data.len = m + 1;
		struct buf b;
		buf_init(&b);
		int rr = ttrpc_wire_put_response(&b, 1, 0, "", 0, NULL, &rep.base, &e);
		buf_fini(&b);
		if (rr < 0)
			break;
	}
	Ttrpc__Echo__EchoRequest near = TTRPC__ECHO__ECHO_REQUEST__INIT;
	near.reply_bytes = (uint32_t)m;
	assert_int_equal(call(c, &r[4], &near, NULL, &e), 0);
	wait_res(c, &r[4]);
	assert_int_equal(r[4].code, TTRPC_OK);
	assert_int_equal(r[4].rep->data.len, m);
	for (size_t i = 0; i < m; i++)
		if (r[4].rep->data.data[i] != echo_pattern(i))
			fail_msg("reply byte %zu differs", i);
	/* One byte more is refused here, before anything is sent. */
	req.data.len = n + 1;
	assert_int_equal(call(c, &r[1], &req, NULL, &e), -EMSGSIZE);
	assert_int_equal(ttrpc_client_outstanding(c->env.cl), 0);
	/* Go 1.1.1 sends replies over the cap: skipped without buffering, the call fails with
	 * ResourceExhausted, the connection lives on. */
	Ttrpc__Echo__EchoRequest big = TTRPC__ECHO__ECHO_REQUEST__INIT;
	big.reply_bytes = TTRPC_MAX_DATA;
	assert_int_equal(call(c, &r[2], &big, NULL, &e), 0);
	Ttrpc__Echo__EchoRequest after = TTRPC__ECHO__ECHO_REQUEST__INIT;
	after.text = "after";
	assert_int_equal(call(c, &r[3], &after, NULL, &e), 0);
	wait_res(c, &r[2]);
	wait_res(c, &r[3]);
	assert_int_equal(r[2].code, TTRPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(r[2].msg, "exceed maximum message size of 4194304"));
	assert_int_equal(r[3].code, TTRPC_OK);
	assert_string_equal(r[3].rep->text, "after");
	for (int i = 0; i < 5; i++)
		res_free(&r[i]);
	free(blob);
}

static void test_ferry_client_concurrent(void **state)
{
	struct ctx *c = *state;
	start_go_server(c);
	enum { N = 100 };
	struct res *r = xcalloc(N, sizeof(*r));
	char texts[N][16];
	struct err e;
	for (int i = 0; i < N; i++) {
		Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
		snprintf(texts[i], sizeof(texts[i]), "c-%d", i);
		req.text = texts[i];
		req.delay_ms = (uint32_t)(20 + (i * 37) % 80);
		assert_int_equal(call(c, &r[i], &req, NULL, &e), 0);
	}
	assert_int_equal(ttrpc_client_outstanding(c->env.cl), N);
	for (int i = 0; i < N; i++)
		wait_res(c, &r[i]);
	for (int i = 0; i < N; i++) {
		assert_int_equal(r[i].code, TTRPC_OK);
		assert_string_equal(r[i].rep->text, texts[i]);
		res_free(&r[i]);
	}
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_go_client_unary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_go_client_deadlines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_go_client_size_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_go_client_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_go_client_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ferry_client_unary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ferry_client_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ferry_client_size_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ferry_client_concurrent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
