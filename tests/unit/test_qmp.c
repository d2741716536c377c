/* Unit tests for host/vmm/qemu/qmp: the decoder's shapes and limits, and the client against a
 * fake QMP peer on a socketpair played by the test: handshake, commands queued before it,
 * replies matched by id in any order, errors, events in order, fd passing with its barrier,
 * timeouts with a late reply dropped, EOF, hostile input (long lines, bad JSON, unknown ids,
 * a second greeting) and freeing the client from inside its callbacks. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/fdio.h"
#include "common/xalloc.h"
#include "host/vmm/qemu/qmp.h"
#include "tests/lib/evtest.h"

#define GREETING                                                                                   \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "         \
	"\"package\": \"Debian\"}, \"capabilities\": [\"oob\"]}}\r\n"

struct reply {
	int status;
	char ret[256];
	char msg[ERR_MSG_MAX];
};

struct ctx {
	struct evtest ev;
	struct qmp *q;
	int peer;
	struct buf pin; /* bytes the peer received */
	int got_fd;     /* last fd the peer received, or -1 */
	int ready, ready_status, closed, close_code;
	char events[16][64];
	int64_t event_ts[16];
	int n_events;
	struct reply replies[16];
	int n_replies;
	bool free_in_event, free_in_reply, free_in_close;
};

static void cb_ready(struct qmp *q, int status, const struct err *e, void *ud)
{
	(void)q;
	(void)e;
	struct ctx *c = ud;
	c->ready++;
	c->ready_status = status;
}

static void cb_event(struct qmp *q, const char *name, json_t *data, int64_t ts, void *ud)
{
	struct ctx *c = ud;
	json_t *v = data ? json_object_get(data, "status") : NULL;
	snprintf(c->events[c->n_events], sizeof(c->events[0]), "%s%s%s", name, v ? ":" : "",
	         v ? json_string_value(v) : "");
	c->event_ts[c->n_events++] = ts;
	if (c->free_in_event) {
		qmp_free(q);
		c->q = NULL;
	}
}

static void cb_close(struct qmp *q, const struct err *why, void *ud)
{
	struct ctx *c = ud;
	c->closed++;
	c->close_code = why->code;
	if (c->free_in_close) {
		qmp_free(q);
		c->q = NULL;
	}
}

static const struct qmp_ops ops = {
    .on_ready = cb_ready, .on_event = cb_event, .on_close = cb_close};

static void cb_reply(struct qmp *q, int status, json_t *ret, const struct err *e, void *ud)
{
	struct ctx *c = ud;
	struct reply *r = &c->replies[c->n_replies++];
	r->status = status;
	if (ret) {
		char *s = json_dumps(ret, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(r->ret, sizeof(r->ret), "%s", s);
		free(s);
	}
	if (e)
		snprintf(r->msg, sizeof(r->msg), "%s", e->msg);
	if (c->free_in_reply) {
		qmp_free(q);
		c->q = NULL;
	}
}

static int setup(void **state)
{
	struct ctx *c = xcalloc(1, sizeof(*c));
	int sv[2];
	struct err e;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	evtest_init(&c->ev, 10.0);
	buf_init(&c->pin);
	c->peer = sv[1];
	c->got_fd = -1;
	c->q = qmp_new(c->ev.loop, sv[0], &ops, c, &e);
	assert_non_null(c->q);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	qmp_free(c->q);
	if (c->peer >= 0)
		close(c->peer);
	if (c->got_fd >= 0)
		close(c->got_fd);
	evtest_fini(&c->ev);
	buf_fini(&c->pin);
	free(c);
	return 0;
}

static void peer_send(struct ctx *c, const char *s)
{
	struct err e;
	assert_int_equal(fd_write_all(c->peer, s, strlen(s), &e), 0);
}

/* Read what is available on the peer (keeping any fd that came with it). */
static void peer_pull(struct ctx *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char b[65536];
	struct iovec iov = {.iov_base = b, .iov_len = sizeof(b)};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = u.buf,
	                    .msg_controllen = sizeof(u.buf)};
	ssize_t n = recvmsg(c->peer, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			if (c->got_fd >= 0)
				close(c->got_fd);
			memcpy(&c->got_fd, CMSG_DATA(cm), sizeof(int));
		}
	buf_append(&c->pin, b, (size_t)n);
}

/* Spin the loop until the peer has a whole command line; return it parsed (asserting the
 * execute name) and its id. */
static json_t *peer_expect(struct ctx *c, const char *execute, long long *id)
{
	long long deadline = mono_ns() + 5000000000ll;
	for (;;) {
		const char *s = (const char *)buf_head(&c->pin);
		const char *nl = buf_avail(&c->pin) ? memchr(s, '\n', buf_avail(&c->pin)) : NULL;
		if (nl) {
			json_error_t je;
			json_t *j = json_loadb(s, (size_t)(nl - s), 0, &je);
			buf_consume(&c->pin, (size_t)(nl - s) + 1);
			assert_non_null(j);
			assert_string_equal(json_string_value(json_object_get(j, "execute")),
			                    execute);
			assert_true(json_is_integer(json_object_get(j, "id")));
			*id = json_integer_value(json_object_get(j, "id"));
			return j;
		}
		assert_true(mono_ns() < deadline);
		ev_run(c->ev.loop, EVRUN_NOWAIT);
		struct pollfd p = {.fd = c->peer, .events = POLLIN};
		if (poll(&p, 1, 5) > 0)
			peer_pull(c);
	}
}

/* Nothing more reaches the peer for `ms` while the loop runs. */
static void peer_expect_silence(struct ctx *c, int ms)
{
	long long end = mono_ns() + ms * 1000000ll;
	while (mono_ns() < end) {
		ev_run(c->ev.loop, EVRUN_NOWAIT);
		peer_pull(c);
		usleep(1000);
	}
	assert_int_equal(buf_avail(&c->pin), 0);
}

static void peer_replyf(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void peer_replyf(struct ctx *c, const char *fmt, ...)
{
	char b[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	peer_send(c, b);
}

/* Greeting + capability negotiation, asserted. */
static void handshake(struct ctx *c)
{
	long long id;
	peer_send(c, GREETING);
	json_decref(peer_expect(c, "qmp_capabilities", &id));
	peer_replyf(c, "{\"return\": {}, \"id\": %lld}\r\n", id);
	EVTEST_SPIN(&c->ev, c->ready == 1);
	assert_int_equal(c->ready_status, 0);
	assert_true(qmp_ready(c->q));
}

static void command(struct ctx *c, const char *name, json_t *args, int fd, int timeout_ms)
{
	struct err e;
	assert_int_equal(qmp_command(c->q, name, args, fd, timeout_ms, cb_reply, c, &e), 0);
}

/* ---- decoder ---- */

static int parse(const char *s, struct qmp_msg *m)
{
	struct err e;
	return qmp_msg_parse(s, strlen(s), m, &e);
}

static void test_parse_shapes(void **state)
{
	(void)state;
	struct qmp_msg m;
	assert_int_equal(parse(GREETING, &m), 0);
	assert_int_equal(m.kind, QMP_MSG_GREETING);
	assert_int_equal(m.ver_major, 7);
	assert_int_equal(m.ver_minor, 2);
	assert_int_equal(m.ver_micro, 22);
	qmp_msg_fini(&m);

	assert_int_equal(parse("{\"return\": [1, 2], \"id\": 7}", &m), 0);
	assert_int_equal(m.kind, QMP_MSG_RETURN);
	assert_true(m.has_id);
	assert_int_equal(m.id, 7);
	assert_true(json_is_array(m.ret));
	qmp_msg_fini(&m);

	assert_int_equal(
	    parse("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": 3}", &m),
	    0);
	assert_int_equal(m.kind, QMP_MSG_ERROR);
	assert_string_equal(m.err_class, "GenericError");
	assert_string_equal(m.err_desc, "no");
	qmp_msg_fini(&m);

	assert_int_equal(parse("{\"timestamp\": {\"seconds\": 2, \"microseconds\": 5}, \"event\": "
	                       "\"MIGRATION\", \"data\": {\"status\": \"active\"}}",
	                       &m),
	                 0);
	assert_int_equal(m.kind, QMP_MSG_EVENT);
	assert_string_equal(m.event, "MIGRATION");
	assert_int_equal(m.ts_us, 2000005);
	assert_non_null(m.data);
	qmp_msg_fini(&m);

	/* no data, no timestamp; unknown extra keys are allowed */
	assert_int_equal(parse("{\"event\": \"STOP\", \"x-new\": 1}", &m), 0);
	assert_null(m.data);
	assert_int_equal(m.ts_us, -1);
	qmp_msg_fini(&m);
}

static void test_parse_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[1]",
	    "{}",
	    "{\"return\": {}, \"error\": {\"class\": \"a\", \"desc\": \"b\"}}",
	    "{\"return\": {}, \"event\": \"X\"}",
	    "{\"return\": {}, \"id\": -1}",
	    "{\"return\": {}, \"id\": \"x\"}",
	    "{\"return\": {}, \"id\": 1.5}",
	    "{\"error\": \"bad\", \"id\": 1}",
	    "{\"error\": {\"class\": 1, \"desc\": \"x\"}, \"id\": 1}",
	    "{\"error\": {\"class\": \"x\"}, \"id\": 1}",
	    "{\"event\": 5}",
	    "{\"event\": \"\"}",
	    "{\"event\": \"A B\"}",
	    "{\"event\": \"X\", \"data\": []}",
	    "{\"event\": \"X\", \"timestamp\": {\"seconds\": \"1\", \"microseconds\": 0}}",
	    "{\"event\": \"X\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 1000000}}",
	    "{\"QMP\": {}}",
	    "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": -2, \"micro\": 0}}, "
	    "\"capabilities\": []}}",
	    "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}}}}",
	    "{\"return\": 1, \"return\": 2, \"id\": 1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct qmp_msg m;
		struct err e;
		int rc = qmp_msg_parse(bad[i], strlen(bad[i]), &m, &e);
		if (rc != -EBADMSG)
			fail_msg("accepted bad message %zu: %s", i, bad[i]);
		assert_null(m.root);
		assert_true(strlen(e.msg) > 0);
	}
}

static void test_parse_limits(void **state)
{
	(void)state;
	/* Too many values: rejected before parsing. */
	size_t n = QMP_MAX_VALUES + 10;
	char *s = xmalloc(2 * n + 64);
	size_t len = (size_t)sprintf(s, "{\"return\": [");
	for (size_t i = 0; i < n; i++) {
		s[len++] = '0';
		s[len++] = ',';
	}
	len += (size_t)sprintf(s + len, "0], \"id\": 1}");
	struct qmp_msg m;
	struct err e;
	assert_int_equal(qmp_msg_parse(s, len, &m, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "JSON values"));
	/* The same commas inside a string count for nothing. */
	len = (size_t)sprintf(s, "{\"return\": \"");
	for (size_t i = 0; i < n; i++)
		s[len++] = ',';
	len += (size_t)sprintf(s + len, "\\\"\", \"id\": 1}");
	assert_int_equal(qmp_msg_parse(s, len, &m, &e), 0);
	qmp_msg_fini(&m);
	free(s);
	assert_int_equal(qmp_count_values("{\"a\":[1,2]}", 11, 100), 5);
	assert_int_equal(qmp_count_values("\"\\\",\"", 5, 100), 1);
	/* Longer than the line cap. */
	assert_int_equal(qmp_msg_parse("{}", QMP_LINE_MAX + 1, &m, &e), -EBADMSG);
}

/* ---- client ---- */

static void test_handshake_and_queued_command(void **state)
{
	struct ctx *c = *state;
	long long id;
	/* Queued before the greeting: goes out only after qmp_capabilities succeeded. */
	command(c, "query-status", NULL, -1, 0);
	peer_send(c, GREETING);
	json_decref(peer_expect(c, "qmp_capabilities", &id));
	peer_expect_silence(c, 30);
	peer_replyf(c, "{\"return\": {}, \"id\": %lld}\r\n", id);
	EVTEST_SPIN(&c->ev, c->ready == 1);
	int major, minor, micro;
	qmp_version(c->q, &major, &minor, &micro);
	assert_int_equal(major * 10000 + minor * 100 + micro, 70222);
	json_decref(peer_expect(c, "query-status", &id));
	peer_replyf(c, "{\"return\": {\"status\": \"running\"}, \"id\": %lld}\n", id);
	EVTEST_SPIN(&c->ev, c->n_replies == 1);
	assert_int_equal(c->replies[0].status, 0);
	assert_string_equal(c->replies[0].ret, "{\"status\":\"running\"}");
	assert_int_equal(qmp_outstanding(c->q), 0);
}

static void test_replies_by_id_errors_and_events(void **state)
{
	struct ctx *c = *state;
	long long a, b;
	handshake(c);
	json_t *args = json_pack("{s:s}", "path", "/machine");
	command(c, "qom-list", args, -1, 0);
	json_decref(args);
	command(c, "bogus", NULL, -1, 0);
	json_t *ja = peer_expect(c, "qom-list", &a);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(ja, "arguments"), "path")),
	    "/machine");
	json_decref(ja);
	json_decref(peer_expect(c, "bogus", &b));
	assert_int_not_equal(a, b);
	/* Second answered first, with an event in between. */
	peer_replyf(c,
	            "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command bogus "
	            "has not been found\"}, \"id\": %lld}\r\n"
	            "{\"timestamp\": {\"seconds\": 10, \"microseconds\": 1}, \"event\": "
	            "\"MIGRATION\", \"data\": {\"status\": \"active\"}}\r\n"
	            "{\"return\": [], \"id\": %lld}\r\n"
	            "{\"event\": \"STOP\"}\r\n",
	            b, a);
	EVTEST_SPIN(&c->ev, c->n_replies == 2 && c->n_events == 2);
	assert_int_equal(c->replies[0].status, -EREMOTEIO);
	assert_string_equal(c->replies[0].msg,
	                    "CommandNotFound: The command bogus has not been found");
	assert_int_equal(c->replies[1].status, 0);
	assert_string_equal(c->replies[1].ret, "[]");
	assert_string_equal(c->events[0], "MIGRATION:active");
	assert_int_equal(c->event_ts[0], 10000001);
	assert_string_equal(c->events[1], "STOP");
	assert_int_equal(c->event_ts[1], -1);
	assert_int_equal(c->closed, 0);
}

static void test_fd_passing_barrier(void **state)
{
	struct ctx *c = *state;
	long long a, f, b;
	handshake(c);
	char path[] = "/tmp/ferry-qmp-fd.XXXXXX";
	int tfd = mkstemp(path);
	assert_true(tfd >= 0);
	unlink(path);
	command(c, "query-status", NULL, -1, 0);
	json_t *args = json_pack("{s:s}", "fdname", "mig");
	command(c, "getfd", args, tfd, 0);
	json_decref(args);
	command(c, "query-migrate", NULL, -1, 0);
	/* The fd command waits for the earlier reply... */
	json_decref(peer_expect(c, "query-status", &a));
	peer_expect_silence(c, 30);
	assert_int_equal(c->got_fd, -1);
	peer_replyf(c, "{\"return\": {}, \"id\": %lld}\n", a);
	/* ...then goes alone, with the fd... */
	json_decref(peer_expect(c, "getfd", &f));
	assert_true(c->got_fd >= 0);
	struct stat s1, s2;
	assert_int_equal(fstat(tfd, &s1), 0);
	assert_int_equal(fstat(c->got_fd, &s2), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	assert_int_equal(s1.st_dev, s2.st_dev);
	peer_expect_silence(c, 30);
	/* ...and nothing passes it until its reply. */
	peer_replyf(c, "{\"return\": {}, \"id\": %lld}\n", f);
	json_decref(peer_expect(c, "query-migrate", &b));
	peer_replyf(c, "{\"return\": {}, \"id\": %lld}\n", b);
	EVTEST_SPIN(&c->ev, c->n_replies == 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c->replies[i].status, 0);
	close(tfd);
}

static void test_timeout_late_reply_dropped(void **state)
{
	struct ctx *c = *state;
	long long a, b;
	handshake(c);
	command(c, "slow", NULL, -1, 50);
	json_decref(peer_expect(c, "slow", &a));
	EVTEST_SPIN(&c->ev, c->n_replies == 1);
	assert_int_equal(c->replies[0].status, -ETIMEDOUT);
	assert_int_equal(qmp_outstanding(c->q), 0);
	/* The late reply is dropped quietly; the connection goes on. */
	peer_replyf(c, "{\"return\": {}, \"id\": %lld}\n", a);
	command(c, "next", NULL, -1, 0);
	json_decref(peer_expect(c, "next", &b));
	peer_replyf(c, "{\"return\": 1, \"id\": %lld}\n", b);
	EVTEST_SPIN(&c->ev, c->n_replies == 2);
	assert_int_equal(c->replies[1].status, 0);
	assert_int_equal(c->n_replies, 2);
	assert_int_equal(c->closed, 0);
}

static void test_eof_completes_outstanding(void **state)
{
	struct ctx *c = *state;
	long long a;
	struct err e;
	handshake(c);
	command(c, "quit", NULL, -1, 0);
	json_decref(peer_expect(c, "quit", &a));
	close(c->peer);
	c->peer = -1;
	EVTEST_SPIN(&c->ev, c->closed == 1);
	assert_int_equal(c->n_replies, 1);
	assert_int_equal(c->replies[0].status, -ECONNRESET);
	assert_int_equal(c->close_code, -ECONNRESET);
	assert_false(qmp_ready(c->q));
	assert_int_equal(qmp_command(c->q, "x", NULL, -1, 0, cb_reply, c, &e), -ENOTCONN);
}

/* Hostile peers: each input closes the connection with the error it names. */
static void hostile(void **state, const char *input, bool after_handshake, int code)
{
	struct ctx *c = *state;
	if (after_handshake) {
		handshake(c);
		command(c, "x", NULL, -1, 0);
	}
	peer_send(c, input);
	if (after_handshake) {
		EVTEST_SPIN(&c->ev, c->closed == 1);
		assert_int_equal(c->close_code, code);
		assert_int_equal(c->n_replies, 1);
		assert_int_equal(c->replies[0].status, -ECONNRESET);
	} else {
		EVTEST_SPIN(&c->ev, c->ready == 1);
		assert_int_equal(c->ready_status, code);
		assert_int_equal(c->closed, 0);
	}
}

static void test_bad_json(void **state)
{
	hostile(state, "{\"return\": \n", true, -EBADMSG);
}

static void test_embedded_nul(void **state)
{
	struct ctx *c = *state;
	handshake(c);
	command(c, "x", NULL, -1, 0);
	struct err e;
	assert_int_equal(fd_write_all(c->peer, "{\"ret\0urn\": {}}\n", 16, &e), 0);
	EVTEST_SPIN(&c->ev, c->closed == 1);
	assert_int_equal(c->close_code, -EBADMSG);
}

static void test_unknown_id(void **state)
{
	hostile(state, "{\"return\": {}, \"id\": 999}\n", true, -EPROTO);
}

static void test_second_greeting(void **state)
{
	hostile(state, GREETING, true, -EPROTO);
}

static void test_idless_error(void **state)
{
	hostile(state,
	        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\n",
	        true, -EPROTO);
}

static void test_reply_before_greeting(void **state)
{
	hostile(state, "{\"return\": {}, \"id\": 0}\n", false, -EPROTO);
}

static void test_capabilities_refused(void **state)
{
	struct ctx *c = *state;
	long long id;
	peer_send(c, GREETING);
	json_decref(peer_expect(c, "qmp_capabilities", &id));
	peer_replyf(
	    c, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": %lld}\n", id);
	EVTEST_SPIN(&c->ev, c->ready == 1);
	assert_int_equal(c->ready_status, -EPROTO);
}

static void test_line_too_long(void **state)
{
	struct ctx *c = *state;
	handshake(c);
	/* A line that never ends: closed once more than the cap is buffered. */
	size_t chunk = 256 * 1024;
	char *junk = xmalloc(chunk);
	memset(junk, 'a', chunk);
	size_t sent = 0;
	while (c->closed == 0 && sent < 2 * QMP_LINE_MAX) {
		ssize_t n = send(c->peer, junk, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
		ev_run(c->ev.loop, EVRUN_NOWAIT);
	}
	EVTEST_SPIN(&c->ev, c->closed == 1);
	assert_int_equal(c->close_code, -EBADMSG);
	free(junk);
}

static void test_free_inside_callbacks(void **state)
{
	struct ctx *c = *state;
	long long a;
	handshake(c);
	command(c, "a", NULL, -1, 0);
	command(c, "b", NULL, -1, 0);
	json_decref(peer_expect(c, "a", &a));
	c->free_in_reply = true;
	/* The reply frees the client; the event behind it in the same read must not run. */
	peer_replyf(c, "{\"return\": {}, \"id\": %lld}\n{\"event\": \"STOP\"}\n", a);
	EVTEST_SPIN(&c->ev, c->q == NULL);
	evtest_run_for(&c->ev, 0.02);
	assert_int_equal(c->n_replies, 1);
	assert_int_equal(c->n_events, 0);
}

static void test_free_inside_event_and_close(void **state)
{
	struct ctx *c = *state;
	handshake(c);
	c->free_in_event = true;
	peer_send(c, "{\"event\": \"RESUME\"}\n{\"event\": \"STOP\"}\n");
	EVTEST_SPIN(&c->ev, c->q == NULL);
	evtest_run_for(&c->ev, 0.02);
	assert_int_equal(c->n_events, 1);
}

static void test_free_inside_close(void **state)
{
	struct ctx *c = *state;
	long long a;
	handshake(c);
	command(c, "a", NULL, -1, 0);
	json_decref(peer_expect(c, "a", &a));
	c->free_in_close = true;
	shutdown(c->peer, SHUT_WR);
	EVTEST_SPIN(&c->ev, c->q == NULL);
	assert_int_equal(c->closed, 1);
	assert_int_equal(c->replies[0].status, -ECONNRESET);
}

static void test_send_queue_bound(void **state)
{
	struct ctx *c = *state;
	struct err e;
	handshake(c);
	/* The peer stops reading: big commands pile up until the queue refuses more. */
	size_t big = 512 * 1024;
	char *s = xmalloc(big + 1);
	memset(s, 'x', big);
	s[big] = '\0';
	json_t *args = json_pack("{s:s}", "blob", s);
	int rc = 0, n = 0;
	while (rc == 0 && n < 64) {
		rc = qmp_command(c->q, "big", args, -1, -1, cb_reply, c, &e);
		n++;
	}
	assert_int_equal(rc, -ENOBUFS);
	assert_true(n > 4);
	json_decref(args);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_shapes),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_parse_limits),
	    cmocka_unit_test_setup_teardown(test_handshake_and_queued_command, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replies_by_id_errors_and_events, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fd_passing_barrier, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_late_reply_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_eof_completes_outstanding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_embedded_nul, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_second_greeting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idless_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reply_before_greeting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capabilities_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_inside_callbacks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_inside_event_and_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_inside_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_queue_bound, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
