/* Unit tests for bridge/conn (guest half) and bridge/client (host half): both ends on one real
 * ev_loop over socketpairs, or one end against a raw socket that writes hand-made frames.
 * Covers id allocation, out-of-order responses, seeding and preregistration, the fatal
 * receive rules, frame reassembly, size caps, notifications, migrating-mode detach/attach,
 * failure of pending calls, timeouts, cancellation and freeing from inside callbacks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "bridge/client.h"
#include "bridge/conn.h"
#include "bridge/frame.h"
#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/xalloc.h"
#include "tests/lib/evtest.h"

#define MAXR 64

struct ctx;

struct req {
	struct bridge_hdr h;
	char json[512];
	size_t len;
};

struct res {
	struct ctx *c;
	int ncalls;
	int status;
	char json[512];
	size_t len;
	char msg[ERR_MSG_MAX];
};

struct ctx {
	struct evtest ev;
	struct bridge_client *cl;
	struct bridge_conn *gc;
	int raw; /* raw peer socket when a test plays one side by hand */
	struct req reqs[MAXR];
	int nreq;
	bool echo; /* guest answers each request at once with {"echo":ID} */
	struct res res[MAXR];
	int nnotify;
	char notify[512];
	size_t notify_len;
	int nclose;
	struct err close_why;
	int ndetach;
	int gclose;
	struct err gclose_why;
	bool free_client_in_cb;
	bool free_conn_in_req;
};

/* ---- host callbacks ---- */

static void call_cb(struct bridge_client *cl, int status, const char *json, size_t len,
                    const struct err *why, void *ud)
{
	struct res *r = ud;
	r->ncalls++;
	r->status = status;
	if (status == 0) {
		assert_null(why);
		r->len = len;
		if (len > 0) /* payloads larger than json[] are only measured */
			assert_non_null(json);
		if (len >= sizeof(r->json))
			len = sizeof(r->json) - 1;
		memcpy(r->json, json, len);
		r->json[len] = '\0';
	} else {
		assert_null(json);
		assert_non_null(why);
		assert_int_equal(why->code, status);
		snprintf(r->msg, sizeof(r->msg), "%s", why->msg);
	}
	if (r->c->free_client_in_cb) {
		bridge_client_free(cl);
		r->c->cl = NULL;
	}
}

static void on_notify(struct bridge_client *cl, const char *json, size_t len, void *ud)
{
	(void)cl;
	struct ctx *c = ud;
	c->nnotify++;
	assert_true(len < sizeof(c->notify));
	memcpy(c->notify, json, len);
	c->notify[len] = '\0';
	c->notify_len = len;
}

static void on_close(struct bridge_client *cl, const struct err *why, void *ud)
{
	(void)cl;
	struct ctx *c = ud;
	c->nclose++;
	c->close_why = *why;
}

static void on_detach(struct bridge_client *cl, const struct err *why, void *ud)
{
	(void)cl;
	(void)why;
	struct ctx *c = ud;
	c->ndetach++;
}

static const struct bridge_client_cbs ccbs = {
    .on_notify = on_notify, .on_close = on_close, .on_detach = on_detach};

/* ---- guest callbacks ---- */

static void on_request(struct bridge_conn *gc, const struct bridge_hdr *h, const char *json,
                       size_t len, void *ud)
{
	struct ctx *c = ud;
	assert_true(c->nreq < MAXR);
	struct req *r = &c->reqs[c->nreq++];
	r->h = *h;
	r->len = len;
	if (len >= sizeof(r->json)) /* large requests are only measured */
		len = sizeof(r->json) - 1;
	memcpy(r->json, json, len);
	r->json[len] = '\0';
	if (c->echo) {
		char out[64];
		int n = snprintf(out, sizeof(out), "{\"echo\":%llu}", (unsigned long long)h->id);
		struct err e;
		assert_int_equal(bridge_conn_respond(gc, h->type, h->id, out, (size_t)n, &e), 0);
	}
	if (c->free_conn_in_req) {
		bridge_conn_free(gc);
		c->gc = NULL;
	}
}

static void on_gclose(struct bridge_conn *gc, const struct err *why, void *ud)
{
	(void)gc;
	struct ctx *c = ud;
	c->gclose++;
	c->gclose_why = *why;
}

static const struct bridge_conn_cbs gcbs = {.on_request = on_request, .on_close = on_gclose};

/* ---- fixture ---- */

static int setup(void **state)
{
	struct ctx *c = xcalloc(1, sizeof(*c));
	evtest_init(&c->ev, 10.0);
	for (int i = 0; i < MAXR; i++)
		c->res[i].c = c;
	c->raw = -1;
	c->cl = bridge_client_new(c->ev.loop, &ccbs, c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	bridge_client_free(c->cl);
	bridge_conn_free(c->gc);
	if (c->raw >= 0)
		close(c->raw);
	evtest_fini(&c->ev);
	free(c);
	return 0;
}

/* Client attached to a real guest conn. */
static void connect_pair(struct ctx *c)
{
	int sv[2];
	struct err e;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(bridge_client_attach(c->cl, sv[0], &e), 0);
	c->gc = bridge_conn_new(c->ev.loop, sv[1], &gcbs, c, &e);
	assert_non_null(c->gc);
	assert_true(bridge_client_attached(c->cl));
}

/* Client attached to a raw socket c->raw (blocking) played by the test. */
static void connect_raw_guest(struct ctx *c)
{
	int sv[2];
	struct err e;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(bridge_client_attach(c->cl, sv[0], &e), 0);
	c->raw = sv[1];
}

/* Guest conn on a raw socket c->raw played by the test (as the host). */
static void connect_raw_host(struct ctx *c)
{
	int sv[2];
	struct err e;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c->gc = bridge_conn_new(c->ev.loop, sv[1], &gcbs, c, &e);
	assert_non_null(c->gc);
	c->raw = sv[0];
}

static void raw_frame(struct ctx *c, uint32_t type, uint32_t size, uint64_t id, const char *json)
{
	uint8_t hdr[16];
	struct bridge_hdr h = {.type = type, .size = size, .id = id};
	struct err e;
	bridge_hdr_encode(&h, hdr);
	assert_int_equal(fd_write_all(c->raw, hdr, sizeof(hdr), &e), 0);
	if (json && *json)
		assert_int_equal(fd_write_all(c->raw, json, strlen(json), &e), 0);
}

static int64_t call(struct ctx *c, int slot, enum bridge_rpc rpc, const char *json)
{
	int64_t id = -1;
	struct err e;
	assert_int_equal(
	    bridge_client_call(c->cl, rpc, json, strlen(json), call_cb, &c->res[slot], &id, &e), 0);
	return id;
}

/* ---- tests ---- */

static void test_out_of_order(void **state)
{
	struct ctx *c = *state;
	connect_pair(c);
	enum { N = 8 };
	char body[64];
	for (int i = 0; i < N; i++) {
		snprintf(body, sizeof(body), "{\"n\":%d}\n", i);
		assert_int_equal(call(c, i, RPC_EXECUTE_PROCESS, body), i); /* ids 0, 1, 2, ... */
	}
	assert_int_equal(bridge_client_next_id(c->cl), N);
	assert_int_equal(bridge_client_outstanding(c->cl), N);
	EVTEST_SPIN(&c->ev, c->nreq == N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(c->reqs[i].h.type, 0x10100501u);
		assert_int_equal(c->reqs[i].h.id, (uint64_t)i);
		snprintf(body, sizeof(body), "{\"n\":%d}\n", i);
		assert_string_equal(c->reqs[i].json, body);
	}
	/* answer in reverse order */
	struct err e;
	for (int i = N - 1; i >= 0; i--) {
		snprintf(body, sizeof(body), "{\"r\":%d}", i);
		assert_int_equal(bridge_conn_respond(c->gc, c->reqs[i].h.type, c->reqs[i].h.id,
		                                     body, strlen(body), &e),
		                 0);
	}
	EVTEST_SPIN(&c->ev, bridge_client_outstanding(c->cl) == 0);
	for (int i = 0; i < N; i++) {
		snprintf(body, sizeof(body), "{\"r\":%d}", i);
		assert_int_equal(c->res[i].ncalls, 1);
		assert_int_equal(c->res[i].status, 0);
		assert_string_equal(c->res[i].json, body);
	}
	assert_int_equal(c->nclose, 0);
	assert_int_equal(c->gclose, 0);
}

static void test_seed_and_preregister(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_pair(c);
	assert_int_equal(bridge_client_next_id(c->cl), 0);
	bridge_client_seed_next_id(c->cl, 10);
	assert_int_equal(bridge_client_next_id(c->cl), 10);
	bridge_client_seed_next_id(c->cl, 5); /* never lowers */
	assert_int_equal(bridge_client_next_id(c->cl), 10);
	assert_int_equal(call(c, 0, RPC_START, "{}"), 10);
	assert_int_equal(bridge_client_next_id(c->cl), 11);

	/* adopt id 42 from a "source host" and route its late response */
	assert_int_equal(bridge_client_preregister(c->cl, 42, call_cb, &c->res[1], &e), 0);
	assert_int_equal(bridge_client_preregister(c->cl, 42, call_cb, &c->res[2], &e), -EEXIST);
	assert_true(bridge_client_next_id(c->cl) > 42);
	const char *late = "{\"ExitCode\":3}";
	assert_int_equal(bridge_conn_respond(c->gc, bridge_request_type(RPC_WAIT_FOR_PROCESS), 42,
	                                     late, strlen(late), &e),
	                 0);
	EVTEST_SPIN(&c->ev, c->res[1].ncalls == 1);
	assert_int_equal(c->res[1].status, 0);
	assert_string_equal(c->res[1].json, late);
	assert_int_equal(c->res[2].ncalls, 0);
	assert_int_equal(c->nclose, 0);
	assert_int_equal(bridge_client_outstanding(c->cl), 1); /* the Start call */
}

static void test_unknown_response_fatal(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_pair(c);
	call(c, 0, RPC_START, "{}");
	EVTEST_SPIN(&c->ev, c->nreq == 1);
	assert_int_equal(bridge_conn_respond(c->gc, c->reqs[0].h.type, 99, "{}", 2, &e), 0);
	EVTEST_SPIN(&c->ev, c->nclose == 1);
	assert_non_null(strstr(c->close_why.msg, "unknown rpc response id=99"));
	assert_int_equal(c->close_why.code, -EPROTO);
	assert_true(bridge_client_closed(c->cl));
	assert_int_equal(c->res[0].ncalls, 1);
	assert_int_equal(c->res[0].status, -ECONNRESET);
	assert_non_null(strstr(c->res[0].msg, "unknown rpc response"));
	/* the guest sees the connection go away */
	EVTEST_SPIN(&c->ev, c->gclose == 1);
	/* a dead bridge refuses everything */
	int64_t id;
	assert_int_equal(
	    bridge_client_call(c->cl, RPC_START, "{}", 2, call_cb, &c->res[1], &id, &e),
	    -ECONNRESET);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(bridge_client_attach(c->cl, sv[0], &e), -ECONNRESET);
	close(sv[1]);
	evtest_run_for(&c->ev, 0.01);
	assert_int_equal(c->nclose, 1);
	assert_int_equal(c->res[0].ncalls, 1);
	assert_int_equal(c->res[1].ncalls, 0);
}

static void check_host_fatal_size(struct ctx *c, uint32_t size, int code)
{
	connect_raw_guest(c);
	call(c, 0, RPC_START, "{}");
	raw_frame(c, bridge_response_type(bridge_request_type(RPC_START)), size, 0, NULL);
	EVTEST_SPIN(&c->ev, c->nclose == 1);
	assert_non_null(strstr(c->close_why.msg, "invalid message size"));
	assert_int_equal(c->close_why.code, code);
	assert_int_equal(c->res[0].ncalls, 1);
	assert_int_equal(c->res[0].status, -ECONNRESET);
}

static void test_host_rejects_small_frame(void **state)
{
	check_host_fatal_size(*state, 8, -EBADMSG);
}

static void test_host_rejects_big_frame(void **state)
{
	check_host_fatal_size(*state, BRIDGE_MAX_MSG + 1, -EMSGSIZE);
}

static void test_host_rejects_bad_types(void **state)
{
	struct ctx *c = *state;
	connect_raw_guest(c);
	/* a request from the guest is not allowed */
	raw_frame(c, bridge_request_type(RPC_START), 18, 0, "{}");
	EVTEST_SPIN(&c->ev, c->nclose == 1);
	assert_int_equal(c->close_why.code, -EPROTO);
	assert_non_null(strstr(c->close_why.msg, "unexpected message type 0x10100201"));
	/* a notification type other than 0x30100101 */
	teardown(state);
	setup(state);
	c = *state;
	connect_raw_guest(c);
	raw_frame(c, BRIDGE_MT_NOTIFY | BRIDGE_CAT_SYSTEM | 0x201u, 18, 0, "{}");
	EVTEST_SPIN(&c->ev, c->nclose == 1);
	assert_non_null(strstr(c->close_why.msg, "unexpected message type 0x30100201"));
	assert_int_equal(c->nnotify, 0);
}

static void test_split_frame_reassembles(void **state)
{
	struct ctx *c = *state;
	connect_raw_guest(c);
	int64_t id = call(c, 0, RPC_GET_PROPERTIES, "{}");
	const char *json = "{\"Result\":0,\"Properties\":\"{}\"}";
	struct buf b;
	struct err e;
	buf_init(&b);
	assert_int_equal(
	    bridge_frame_append(&b, bridge_response_type(bridge_request_type(RPC_GET_PROPERTIES)),
	                        (uint64_t)id, json, strlen(json), BRIDGE_MAX_MSG, &e),
	    0);
	for (size_t i = 0; i < buf_avail(&b); i++) {
		assert_int_equal(fd_write_all(c->raw, buf_head(&b) + i, 1, &e), 0);
		ev_run(c->ev.loop, EVRUN_NOWAIT);
		if (i + 1 < buf_avail(&b))
			assert_int_equal(c->res[0].ncalls, 0);
	}
	buf_fini(&b);
	EVTEST_SPIN(&c->ev, c->res[0].ncalls == 1);
	assert_int_equal(c->res[0].status, 0);
	assert_string_equal(c->res[0].json, json);
	assert_int_equal(c->nclose, 0);
}

/* Connect a pair and get one call (DumpStacks) to the guest; returns an answer body of n bytes
 * of `fill` (caller frees). */
static char *request_with_answer(struct ctx *c, size_t n, char fill)
{
	connect_pair(c);
	call(c, 0, RPC_DUMP_STACKS, "{}");
	EVTEST_SPIN(&c->ev, c->nreq == 1);
	char *big = xmalloc(n);
	memset(big, fill, n);
	return big;
}

static void test_guest_response_cap(void **state)
{
	struct ctx *c = *state;
	struct err e;
	size_t max = BRIDGE_MAX_MSG - BRIDGE_HDR_SIZE;
	char *big = request_with_answer(c, max + 1, 'a');
	err_clear(&e);
	assert_int_equal(bridge_conn_respond(c->gc, c->reqs[0].h.type, 0, big, max + 1, &e),
	                 -EMSGSIZE);
	assert_true(e.msg[0] != '\0');
	assert_int_equal(bridge_conn_notify(c->gc, big, max + 1, &e), -EMSGSIZE);
	assert_int_equal(bridge_conn_pending(c->gc), 0); /* nothing was queued */
	free(big);
	/* the connection is still fine; a small answer goes through */
	assert_int_equal(bridge_conn_respond(c->gc, c->reqs[0].h.type, 0, "{\"Result\":0}", 12, &e),
	                 0);
	EVTEST_SPIN(&c->ev, c->res[0].ncalls == 1);
	assert_string_equal(c->res[0].json, "{\"Result\":0}");
	assert_int_equal(c->nclose, 0);
}

static void test_guest_max_response_accepted(void **state)
{
	struct ctx *c = *state;
	struct err e;
	/* exactly 64 KiB including the header is allowed both ways */
	size_t max = BRIDGE_MAX_MSG - BRIDGE_HDR_SIZE;
	char *big = request_with_answer(c, max, 'b');
	assert_int_equal(bridge_conn_respond(c->gc, c->reqs[0].h.type, 0, big, max, &e), 0);
	free(big);
	EVTEST_SPIN(&c->ev, c->res[0].ncalls == 1 || c->nclose > 0);
	assert_int_equal(c->nclose, 0);
	assert_int_equal(c->res[0].status, 0);
	assert_int_equal(c->res[0].len, max);
}

static void test_guest_rejects_bad_frames(void **state)
{
	struct ctx *c = *state;
	/* size < 16 */
	connect_raw_host(c);
	raw_frame(c, bridge_request_type(RPC_START), 4, 1, NULL);
	EVTEST_SPIN(&c->ev, c->gclose == 1);
	assert_int_equal(c->gclose_why.code, -EBADMSG);
	assert_non_null(strstr(c->gclose_why.msg, "invalid message size"));
	assert_int_equal(c->nreq, 0);
	struct err e;
	assert_int_equal(bridge_conn_respond(c->gc, bridge_request_type(RPC_START), 1, "{}", 2, &e),
	                 -EPIPE);
	bridge_conn_free(c->gc);
	c->gc = NULL;
	close(c->raw);
	/* a response type arriving at the guest */
	connect_raw_host(c);
	raw_frame(c, bridge_request_type(RPC_START), 18, 1, "{}");
	raw_frame(c, bridge_response_type(bridge_request_type(RPC_START)), 18, 2, "{}");
	EVTEST_SPIN(&c->ev, c->gclose == 2);
	assert_int_equal(c->nreq, 1); /* the request before it was served */
	assert_int_equal(c->gclose_why.code, -EPROTO);
	assert_non_null(strstr(c->gclose_why.msg, "unexpected message type 0x20100201"));
	bridge_conn_free(c->gc);
	c->gc = NULL;
	close(c->raw);
	/* over the guest's own cap */
	connect_raw_host(c);
	raw_frame(c, bridge_request_type(RPC_START), BRIDGE_GUEST_MAX_MSG + 1, 1, NULL);
	EVTEST_SPIN(&c->ev, c->gclose == 3);
	assert_int_equal(c->gclose_why.code, -EMSGSIZE);
	/* but a large (> 64 KiB) request within the cap is fine */
	bridge_conn_free(c->gc);
	c->gc = NULL;
	close(c->raw);
	connect_raw_host(c);
	size_t n = 100000;
	char *big = xmalloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	raw_frame(c, bridge_request_type(RPC_CREATE), (uint32_t)(n + 16), 7, big);
	free(big);
	EVTEST_SPIN(&c->ev, c->nreq == 2 || c->gclose == 4);
	assert_int_equal(c->gclose, 3);
	assert_int_equal(c->reqs[1].len, n);
	assert_int_equal(c->reqs[1].h.id, 7);
}

static void test_notification(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_pair(c);
	const char *n = "{\"ContainerId\":\"c1\",\"Type\":\"UnexpectedExit\",\"Result\":0}";
	assert_int_equal(bridge_conn_notify(c->gc, n, strlen(n), &e), 0);
	EVTEST_SPIN(&c->ev, c->nnotify == 1);
	assert_string_equal(c->notify, n);
	assert_int_equal(c->nclose, 0);
}

static void test_notification_wire_format(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_raw_host(c);
	assert_int_equal(bridge_conn_notify(c->gc, "{}", 2, &e), 0);
	uint8_t f[18];
	assert_int_equal(fd_read_all(c->raw, f, sizeof(f), &e), 0);
	struct bridge_hdr h;
	bridge_hdr_decode(f, &h);
	assert_int_equal(h.type, 0x30100101u);
	assert_int_equal(h.size, 18);
	assert_int_equal(h.id, 0);
	/* responses carry the response type and the request's id */
	assert_int_equal(bridge_conn_respond(c->gc, 0x10100b01u, 77, "{}", 2, &e), 0);
	assert_int_equal(fd_read_all(c->raw, f, sizeof(f), &e), 0);
	bridge_hdr_decode(f, &h);
	assert_int_equal(h.type, 0x20100b01u);
	assert_int_equal(h.id, 77);
}

static void test_migrating_keeps_calls(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_pair(c);
	bridge_client_set_migrating(c->cl, true);
	int64_t id = call(c, 0, RPC_WAIT_FOR_PROCESS, "{\"wait\":1}");
	EVTEST_SPIN(&c->ev, c->nreq == 1);
	/* the guest side goes away (VM paused and moved) */
	bridge_conn_free(c->gc);
	c->gc = NULL;
	EVTEST_SPIN(&c->ev, c->ndetach == 1);
	assert_false(bridge_client_attached(c->cl));
	assert_false(bridge_client_closed(c->cl));
	assert_int_equal(c->nclose, 0);
	assert_int_equal(c->res[0].ncalls, 0);
	assert_int_equal(bridge_client_outstanding(c->cl), 1);
	int64_t id2;
	assert_int_equal(
	    bridge_client_call(c->cl, RPC_START, "{}", 2, call_cb, &c->res[1], &id2, &e),
	    -ENOTCONN);
	/* re-dialled connection: the old id completes on it */
	connect_pair(c);
	assert_int_equal(bridge_conn_respond(c->gc, bridge_request_type(RPC_WAIT_FOR_PROCESS),
	                                     (uint64_t)id, "{\"ExitCode\":0}", 14, &e),
	                 0);
	EVTEST_SPIN(&c->ev, c->res[0].ncalls == 1);
	assert_int_equal(c->res[0].status, 0);
	assert_string_equal(c->res[0].json, "{\"ExitCode\":0}");
	/* and new calls continue the id sequence */
	assert_int_equal(call(c, 2, RPC_START, "{}"), id + 1);
	evtest_run_for(&c->ev, 0.01);
	assert_int_equal(c->res[1].ncalls, 0);
	assert_int_equal(c->nclose, 0);
}

/* Probation: a connection that has not proved itself delivers nothing but the response to the
 * call it must answer; a fake response or notification first drops it (not the bridge), and
 * the outstanding calls wait for the next connection.  Even outside migrating mode. */
static void test_probation(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_pair(c);
	int64_t wait = call(c, 0, RPC_WAIT_FOR_PROCESS, "{}");
	EVTEST_SPIN(&c->ev, c->nreq == 1);
	/* an impostor's connection */
	bridge_conn_free(c->gc);
	connect_pair(c);
	int64_t neg = call(c, 1, RPC_NEGOTIATE_PROTOCOL, "{}");
	bridge_client_probation(c->cl, neg);
	EVTEST_SPIN(&c->ev, c->nreq == 2);
	/* a fake exit for the outstanding wait, before any proof */
	assert_int_equal(bridge_conn_respond(c->gc, bridge_request_type(RPC_WAIT_FOR_PROCESS),
	                                     (uint64_t)wait, "{\"ExitCode\":99}", 15, &e),
	                 0);
	EVTEST_SPIN(&c->ev, c->ndetach == 1);
	assert_int_equal(c->res[0].ncalls, 0); /* not taken */
	assert_int_equal(c->nclose, 0);
	assert_false(bridge_client_closed(c->cl));
	assert_int_equal(bridge_client_cancel(c->cl, neg), 0);
	/* a notification first: the same */
	bridge_conn_free(c->gc);
	connect_pair(c);
	neg = call(c, 1, RPC_NEGOTIATE_PROTOCOL, "{}");
	bridge_client_probation(c->cl, neg);
	EVTEST_SPIN(&c->ev, c->nreq == 3);
	assert_int_equal(bridge_conn_notify(c->gc, "{}", 2, &e), 0);
	EVTEST_SPIN(&c->ev, c->ndetach == 2);
	assert_int_equal(c->nnotify, 0);
	assert_int_equal(bridge_client_cancel(c->cl, neg), 0);
	/* the real guest: its answer is dispatched, then everything flows once trusted */
	bridge_conn_free(c->gc);
	connect_pair(c);
	neg = call(c, 1, RPC_NEGOTIATE_PROTOCOL, "{}");
	bridge_client_probation(c->cl, neg);
	EVTEST_SPIN(&c->ev, c->nreq == 4);
	assert_int_equal(bridge_conn_respond(c->gc, bridge_request_type(RPC_NEGOTIATE_PROTOCOL),
	                                     (uint64_t)neg, "{}", 2, &e),
	                 0);
	EVTEST_SPIN(&c->ev, c->res[1].ncalls == 1); /* the two refused ones were cancelled */
	assert_int_equal(c->res[1].status, 0);
	bridge_client_trust(c->cl);
	assert_int_equal(bridge_conn_respond(c->gc, bridge_request_type(RPC_WAIT_FOR_PROCESS),
	                                     (uint64_t)wait, "{\"ExitCode\":0}", 14, &e),
	                 0);
	EVTEST_SPIN(&c->ev, c->res[0].ncalls == 1);
	assert_string_equal(c->res[0].json, "{\"ExitCode\":0}");
	assert_int_equal(c->ndetach, 2);
}

static void test_migrating_fails_unsent(void **state)
{
	struct ctx *c = *state;
	connect_raw_guest(c);
	bridge_client_set_migrating(c->cl, true);
	call(c, 0, RPC_WAIT_FOR_PROCESS, "{}"); /* small: written at once */
	/* a request far larger than the socket buffer stays (partly) queued */
	size_t n = 4u << 20;
	char *big = xmalloc(n + 1);
	memset(big, ' ', n);
	big[n] = '\0';
	call(c, 1, RPC_CREATE, big);
	free(big);
	close(c->raw); /* peer gone without reading */
	c->raw = -1;
	EVTEST_SPIN(&c->ev, c->ndetach == 1);
	assert_int_equal(c->res[1].ncalls, 1);
	assert_int_equal(c->res[1].status, -ECONNRESET);
	assert_int_equal(c->res[0].ncalls, 0); /* fully written: parked */
	assert_int_equal(bridge_client_outstanding(c->cl), 1);
	assert_int_equal(c->nclose, 0);
}

static void test_not_migrating_fails_pending_once(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_pair(c);
	for (int i = 0; i < 3; i++)
		call(c, i, RPC_MODIFY_SETTINGS, "{}");
	EVTEST_SPIN(&c->ev, c->nreq == 3);
	bridge_conn_free(c->gc);
	c->gc = NULL;
	EVTEST_SPIN(&c->ev, c->nclose == 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c->res[i].ncalls, 1);
		assert_int_equal(c->res[i].status, -ECONNRESET);
		assert_non_null(strstr(c->res[i].msg, "bridge closed"));
	}
	assert_int_equal(c->close_why.code, -ECONNRESET);
	assert_int_equal(c->ndetach, 0);
	evtest_run_for(&c->ev, 0.02);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c->res[i].ncalls, 1);
	assert_int_equal(c->nclose, 1);
	bridge_client_close(c->cl, NULL); /* idempotent */
	assert_int_equal(c->nclose, 1);
	int64_t id;
	assert_int_equal(
	    bridge_client_call(c->cl, RPC_START, "{}", 2, call_cb, &c->res[5], &id, &e),
	    -ECONNRESET);
}

static void test_timeout_is_fatal(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_pair(c);
	bridge_client_set_migrating(c->cl, true); /* timeouts stay fatal even then */
	call(c, 0, RPC_WAIT_FOR_PROCESS, "{}");
	int64_t id;
	assert_int_equal(
	    bridge_client_call_ex(c->cl, RPC_START, "{}", 2, 30, call_cb, &c->res[1], &id, &e), 0);
	long long t0 = mono_ns();
	EVTEST_SPIN(&c->ev, c->res[1].ncalls == 1);
	assert_true(mono_ns() - t0 >= 25 * 1000000LL);
	assert_int_equal(c->res[1].status, -ETIMEDOUT);
	assert_non_null(strstr(c->res[1].msg, "message timeout"));
	assert_int_equal(c->nclose, 1);
	assert_int_equal(c->close_why.code, -ETIMEDOUT);
	assert_int_equal(c->res[0].ncalls, 1);
	assert_int_equal(c->res[0].status, -ECONNRESET);
	evtest_run_for(&c->ev, 0.05);
	assert_int_equal(c->res[1].ncalls, 1);
}

static void test_default_timeout_skips_wait(void **state)
{
	struct ctx *c = *state;
	connect_pair(c);
	bridge_client_set_default_timeout(c->cl, 20);
	call(c, 0, RPC_WAIT_FOR_PROCESS, "{}");
	evtest_run_for(&c->ev, 0.08);
	assert_int_equal(c->res[0].ncalls, 0);
	assert_int_equal(c->nclose, 0);
	call(c, 1, RPC_SIGNAL_PROCESS, "{}"); /* default applies */
	EVTEST_SPIN(&c->ev, c->nclose == 1);
	assert_int_equal(c->res[1].status, -ETIMEDOUT);
	assert_int_equal(c->res[0].status, -ECONNRESET);
}

static void test_cancel_drops_late_response(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_pair(c);
	int64_t id = call(c, 0, RPC_GET_PROPERTIES, "{}");
	EVTEST_SPIN(&c->ev, c->nreq == 1);
	assert_int_equal(bridge_client_cancel(c->cl, id), 0);
	assert_int_equal(bridge_client_cancel(c->cl, id), -ENOENT);
	assert_int_equal(bridge_client_outstanding(c->cl), 0);
	assert_int_equal(bridge_conn_respond(c->gc, c->reqs[0].h.type, (uint64_t)id, "{}", 2, &e),
	                 0);
	/* still alive: another call completes after the dropped response */
	c->echo = true;
	call(c, 1, RPC_START, "{}");
	EVTEST_SPIN(&c->ev, c->res[1].ncalls == 1 || c->nclose > 0);
	assert_int_equal(c->nclose, 0);
	assert_int_equal(c->res[0].ncalls, 0);
	assert_int_equal(c->res[1].status, 0);
	/* a second response for the cancelled id is no longer excused */
	assert_int_equal(bridge_conn_respond(c->gc, c->reqs[0].h.type, (uint64_t)id, "{}", 2, &e),
	                 0);
	EVTEST_SPIN(&c->ev, c->nclose == 1);
	assert_non_null(strstr(c->close_why.msg, "unknown rpc response"));
}

static void test_free_client_in_callback(void **state)
{
	struct ctx *c = *state;
	connect_pair(c);
	c->echo = true;
	for (int i = 0; i < 4; i++)
		call(c, i, RPC_START, "{}");
	c->free_client_in_cb = true;
	EVTEST_SPIN(&c->ev, c->cl == NULL);
	/* the other responses were in the same read: they must not be delivered */
	int total = 0;
	for (int i = 0; i < 4; i++)
		total += c->res[i].ncalls;
	assert_int_equal(total, 1);
	EVTEST_SPIN(&c->ev, c->gclose == 1); /* the guest sees the host go */
	evtest_run_for(&c->ev, 0.01);
}

static void test_free_client_in_fail_cb(void **state)
{
	struct ctx *c = *state;
	connect_pair(c);
	for (int i = 0; i < 4; i++)
		call(c, i, RPC_START, "{}");
	EVTEST_SPIN(&c->ev, c->nreq == 4);
	c->free_client_in_cb = true;
	bridge_conn_free(c->gc);
	c->gc = NULL;
	EVTEST_SPIN(&c->ev, c->cl == NULL);
	int total = 0;
	for (int i = 0; i < 4; i++)
		total += c->res[i].ncalls;
	assert_int_equal(total, 1);
	assert_int_equal(c->nclose, 0); /* freed before on_close */
}

static void test_free_conn_in_request(void **state)
{
	struct ctx *c = *state;
	connect_pair(c);
	c->free_conn_in_req = true;
	for (int i = 0; i < 3; i++)
		call(c, i, RPC_START, "{}");
	EVTEST_SPIN(&c->ev, c->gc == NULL);
	evtest_run_for(&c->ev, 0.02);
	assert_int_equal(c->nreq, 1);
	assert_int_equal(c->gclose, 0);
	EVTEST_SPIN(&c->ev, c->nclose == 1); /* host sees the drop */
}

static void test_attach_replaces_connection(void **state)
{
	struct ctx *c = *state;
	struct err e;
	connect_pair(c);
	int64_t id = call(c, 0, RPC_WAIT_FOR_PROCESS, "{}");
	EVTEST_SPIN(&c->ev, c->nreq == 1);
	struct bridge_conn *old = c->gc;
	c->gc = NULL;
	connect_pair(c); /* attach while attached: like ResumeOnConn */
	EVTEST_SPIN(&c->ev, c->gclose == 1);
	bridge_conn_free(old);
	assert_int_equal(c->res[0].ncalls, 0);
	assert_int_equal(bridge_conn_respond(c->gc, c->reqs[0].h.type, (uint64_t)id, "{}", 2, &e),
	                 0);
	EVTEST_SPIN(&c->ev, c->res[0].ncalls == 1);
	assert_int_equal(c->res[0].status, 0);
	assert_int_equal(c->nclose, 0);
	assert_int_equal(c->ndetach, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_out_of_order),
	    T(test_seed_and_preregister),
	    T(test_unknown_response_fatal),
	    T(test_host_rejects_small_frame),
	    T(test_host_rejects_big_frame),
	    T(test_host_rejects_bad_types),
	    T(test_split_frame_reassembles),
	    T(test_guest_response_cap),
	    T(test_guest_max_response_accepted),
	    T(test_guest_rejects_bad_frames),
	    T(test_notification),
	    T(test_notification_wire_format),
	    T(test_migrating_keeps_calls),
	    T(test_migrating_fails_unsent),
	    T(test_probation),
	    T(test_not_migrating_fails_pending_once),
	    T(test_timeout_is_fatal),
	    T(test_default_timeout_skips_wait),
	    T(test_cancel_drops_late_response),
	    T(test_free_client_in_callback),
	    T(test_free_client_in_fail_cb),
	    T(test_free_conn_in_request),
	    T(test_attach_replaces_connection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
