/* Unit tests for the ttrpc server's edges: unix-socket listening (mode 0600 from the start,
 * stale sockets replaced, other files refused, unlinked on shutdown), the SO_PEERCRED check
 * (a foreign uid refused by the default policy, a custom policy, the PermissionDenied answer
 * and the log line), graceful shutdown (calls finish, new ones answered Unavailable, done
 * called once) and its grace expiry (calls cancelled and answered), and backpressure (a
 * client that does not read cannot make the server queue without bound). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "tests/lib/echo_env.h"

struct ctx {
	struct echo_env env;
	int done;
	int refused;
	char refused_why[256];
	struct ucred refused_peer;
	int closed;
	struct echo_result r[8];
};

static int setup(void **state)
{
	struct ctx *c = xcalloc(1, sizeof(*c));
	echo_env_init(&c->env, "ttrpc-test", 30.0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	echo_env_fini(&c->env);
	free(c);
	return 0;
}

static void start_server(struct ctx *c, const struct ttrpc_server_opts *opts)
{
	echo_env_listen(&c->env, opts);
}

static void on_close(struct ttrpc_client *cl, const struct err *why, void *ud)
{
	(void)cl;
	(void)why;
	((struct ctx *)ud)->closed++;
}

static void connect_client(struct ctx *c)
{
	struct err e;
	int fd = ttrpc_dial_unix(c->env.path, &e);
	assert_true(fd >= 0);
	const struct ttrpc_client_cbs cbs = {.on_close = on_close};
	c->env.cl = ttrpc_client_new(c->env.ev.loop, fd, &cbs, c, &e);
	assert_non_null(c->env.cl);
}

static int call_echo(struct ctx *c, struct echo_result *r, const char *text, uint32_t delay_ms)
{
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = (char *)text;
	req.delay_ms = delay_ms;
	struct err e;
	return ttrpc_client_call(c->env.cl, ECHO_SERVICE, "Echo", &req.base,
	                         &ttrpc__echo__echo_reply__descriptor, NULL, echo_result_cb, r,
	                         NULL, &e);
}

/* ---- listening ---- */

static void test_listen_mode_and_paths(void **state)
{
	struct ctx *c = *state;
	/* A stale socket from an earlier server is replaced. */
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->env.path);
	assert_int_equal(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(stale);
	mode_t old = umask(0); /* the mode must not depend on the umask */
	start_server(c, NULL);
	umask(old);
	struct stat st;
	assert_int_equal(stat(c->env.path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	connect_client(c);
	assert_int_equal(call_echo(c, &c->r[0], "via unix socket", 0), 0);
	EVTEST_SPIN(&c->env.ev, c->r[0].n);
	assert_string_equal(c->r[0].text, "via unix socket");
	/* A file that is not a socket is never removed. */
	char other[160];
	snprintf(other, sizeof(other), "%s/plain", c->env.dir);
	int fd = open(other, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	struct err e;
	assert_int_equal(ttrpc_server_listen_unix(c->env.s, other, &e), -EEXIST);
	assert_int_equal(access(other, F_OK), 0);
	unlink(other);
	/* Shutdown unlinks the socket. */
	ttrpc_server_shutdown(c->env.s, 1.0, NULL, NULL);
	assert_int_equal(access(c->env.path, F_OK), -1);
	assert_int_equal(ttrpc_dial_unix(c->env.path, &e), -ENOENT);
}

/* ---- peer credentials ---- */

static void on_refused(struct ttrpc_server *s, const struct ucred *peer, const char *why, void *ud)
{
	(void)s;
	struct ctx *c = ud;
	c->refused++;
	c->refused_peer = *peer;
	snprintf(c->refused_why, sizeof(c->refused_why), "%s", why);
}

static bool only_4242(const struct ucred *peer, void *ud)
{
	(void)ud;
	return peer->uid == 4242;
}

static void test_custom_policy_refuses(void **state)
{
	struct ctx *c = *state;
	const struct ttrpc_server_opts opts = {
	    .peer_allowed = only_4242, .on_refused = on_refused, .ud = c};
	start_server(c, &opts);
	connect_client(c);
	assert_int_equal(call_echo(c, &c->r[0], "let me in", 0), 0);
	EVTEST_SPIN(&c->env.ev, c->r[0].n && c->closed);
	assert_int_equal(c->r[0].code, TTRPC_PERMISSION_DENIED);
	char want[256];
	snprintf(want, sizeof(want),
	         "ttrpc: permission denied: refused connection from pid=%d uid=%u gid=%u: not "
	         "allowed by the server's peer check",
	         (int)getpid(), (unsigned)geteuid(), (unsigned)getegid());
	assert_string_equal(c->r[0].msg, want);
	assert_int_equal(c->refused, 1);
	assert_int_equal(c->refused_peer.pid, getpid());
	assert_non_null(strstr(c->refused_why, "refused connection from pid="));
	assert_int_equal(c->env.svc.started, 0); /* the handler never ran */
	struct ttrpc_server_stats st;
	ttrpc_server_stats(c->env.s, &st);
	assert_int_equal(st.conns_refused, 1);
	assert_int_equal(st.conns_accepted, 0);
	EVTEST_SPIN(&c->env.ev, ttrpc_server_connections(c->env.s) == 0);
}

/* In a child with uid/gid 65534: dial (expecting `expect_errno` from connect when not 0),
 * send one Echo Request and print the Response's code and message on the pipe. */
static void child_call(const char *path, int out, int expect_errno)
{
	if (setgid(65534) < 0 || setuid(65534) < 0)
		_exit(10);
	struct err e;
	int fd = ttrpc_dial_unix(path, &e);
	if (expect_errno) {
		dprintf(out, "connect=%d\n", fd < 0 ? -fd : 0);
		_exit(0);
	}
	if (fd < 0)
		_exit(11);
	fcntl(fd, F_SETFL, 0);
	struct buf b;
	buf_init(&b);
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	struct ttrpc_request_out rq = {
	    .service = ECHO_SERVICE, .method = "Echo", .payload = &req.base};
	ttrpc_wire_put_request(&b, 1, 0, &rq, &e);
	if (fd_write_all(fd, buf_head(&b), buf_avail(&b), &e) < 0)
		_exit(12);
	uint8_t hb[TTRPC_HDR_SIZE];
	if (fd_read_all(fd, hb, sizeof(hb), &e) < 0)
		_exit(13);
	struct ttrpc_hdr h;
	ttrpc_hdr_decode(hb, &h);
	uint8_t *d = xmalloc(h.length + 1);
	if (fd_read_all(fd, d, h.length, &e) < 0)
		_exit(14);
	Ttrpc__Response *r = ttrpc_response_decode(d, h.length, &e);
	if (!r)
		_exit(15);
	/* then the server closes */
	char x;
	ssize_t k = read(fd, &x, 1);
	dprintf(out, "code=%d eof=%d msg=%s\n", r->status->code, k == 0, r->status->message);
	_exit(0);
}

static void run_child(struct ctx *c, int expect_errno, char *line, size_t n)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		child_call(c->env.path, p[1], expect_errno);
	}
	close(p[1]);
	int status = 0;
	pid_t w;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && !c->env.ev.timed_out)
		ev_run(c->env.ev.loop, EVRUN_NOWAIT), usleep(1000);
	assert_int_equal(w, pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	ssize_t k = read(p[0], line, n - 1);
	assert_true(k > 0);
	line[k] = 0;
	close(p[0]);
}

static void test_default_policy_foreign_uid(void **state)
{
	struct ctx *c = *state;
	if (geteuid() != 0)
		skip(); /* needs root to become another user */
	FILE *logf = tmpfile();
	assert_non_null(logf);
	log_set_file(logf);
	start_server(c, NULL);
	/* The socket is 0600: another user cannot even connect. */
	assert_int_equal(chmod(c->env.dir, 0755), 0);
	char line[512];
	run_child(c, EACCES, line, sizeof(line));
	assert_string_equal(line, "connect=13\n");
	/* With the file opened up, SO_PEERCRED still keeps the stranger out. */
	assert_int_equal(chmod(c->env.path, 0666), 0);
	run_child(c, 0, line, sizeof(line));
	assert_non_null(strstr(line, "code=7 eof=1 msg=ttrpc: permission denied: refused "
	                             "connection from pid="));
	assert_non_null(strstr(line, "uid=65534 gid=65534: only uid 0 (the server's) and root "
	                             "may connect"));
	assert_int_equal(c->env.svc.started, 0);
	/* One log line names the peer. */
	log_set_file(NULL);
	fflush(logf);
	rewind(logf);
	char buf[1024] = {0};
	size_t k = fread(buf, 1, sizeof(buf) - 1, logf);
	fclose(logf);
	assert_true(k > 0);
	assert_non_null(strstr(buf, "warn: ttrpc: refused connection from pid="));
	assert_non_null(strstr(buf, "uid=65534"));
	assert_null(strchr(strchr(buf, '\n') + 1, '\n')); /* exactly one line */
	/* The owner still gets in. */
	connect_client(c);
	assert_int_equal(call_echo(c, &c->r[0], "me", 0), 0);
	EVTEST_SPIN(&c->env.ev, c->r[0].n);
	assert_int_equal(c->r[0].code, TTRPC_OK);
}

/* ---- shutdown ---- */

static void on_done(struct ttrpc_server *s, void *ud)
{
	struct ctx *c = ud;
	c->done++;
	assert_ptr_equal(s, c->env.s);
	/* The server may be freed from here. */
	ttrpc_server_free(s);
	c->env.s = NULL;
}

static void test_shutdown_graceful(void **state)
{
	struct ctx *c = *state;
	start_server(c, NULL);
	connect_client(c);
	assert_int_equal(call_echo(c, &c->r[0], "slow", 100), 0);
	assert_int_equal(call_echo(c, &c->r[1], "slower", 200), 0);
	EVTEST_SPIN(&c->env.ev, c->env.svc.started == 2);
	ttrpc_server_shutdown(c->env.s, 10.0, on_done, c);
	ttrpc_server_shutdown(c->env.s, 10.0, on_done, c); /* idempotent */
	assert_int_equal(c->done, 0);                      /* never from inside */
	/* New calls on the open connection are refused... */
	assert_int_equal(call_echo(c, &c->r[2], "new", 0), 0);
	EVTEST_SPIN(&c->env.ev, c->r[2].n);
	assert_int_equal(c->r[2].code, TTRPC_UNAVAILABLE);
	assert_string_equal(c->r[2].msg, "ttrpc: server shutting down");
	/* ... and no new connection gets in. */
	struct err e;
	assert_true(ttrpc_dial_unix(c->env.path, &e) < 0);
	/* The calls in flight finish normally, then the connection closes and done runs. */
	EVTEST_SPIN(&c->env.ev, c->done == 1 && c->closed == 1);
	assert_int_equal(c->r[0].code, TTRPC_OK);
	assert_string_equal(c->r[0].text, "slow");
	assert_int_equal(c->r[1].code, TTRPC_OK);
	assert_string_equal(c->r[1].text, "slower");
	assert_int_equal(c->env.svc.cancelled, 0);
}

static void test_shutdown_grace_expires(void **state)
{
	struct ctx *c = *state;
	start_server(c, NULL);
	connect_client(c);
	assert_int_equal(call_echo(c, &c->r[0], "forever", 60000), 0);
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	struct err e;
	/* A client stream that never ends. */
	assert_non_null(ttrpc_client_stream(
	    c->env.cl, ECHO_SERVICE, "Collect", TTRPC_STREAMING_CLIENT, &req.base,
	    &ttrpc__echo__echo_reply__descriptor, NULL, NULL, NULL, &e));
	EVTEST_SPIN(&c->env.ev, c->env.svc.started == 2);
	long long t0 = mono_ns();
	ttrpc_server_shutdown(c->env.s, 0.2, on_done, c);
	EVTEST_SPIN(&c->env.ev, c->done == 1);
	long long ms = (mono_ns() - t0) / 1000000;
	assert_true(ms >= 190);
	/* Every handler heard it and every call was answered. */
	assert_int_equal(c->env.svc.cancelled, 2);
	assert_int_equal(c->env.svc.last_cancel_code, TTRPC_UNAVAILABLE);
	assert_int_equal(c->env.svc.pending, 0);
	EVTEST_SPIN(&c->env.ev, c->r[0].n);
	assert_int_equal(c->r[0].code, TTRPC_UNAVAILABLE);
	assert_string_equal(c->r[0].msg, "ttrpc: server shutting down");
}

static void test_shutdown_idle_and_free(void **state)
{
	struct ctx *c = *state;
	start_server(c, NULL);
	connect_client(c);
	assert_int_equal(call_echo(c, &c->r[0], "x", 0), 0);
	EVTEST_SPIN(&c->env.ev, c->r[0].n);
	/* No calls: connections close at once, done follows from the loop. */
	ttrpc_server_shutdown(c->env.s, 5.0, on_done, c);
	assert_int_equal(c->done, 0);
	EVTEST_SPIN(&c->env.ev, c->done == 1 && c->closed == 1);
	/* A server freed with calls in flight runs no callback; the calls are detached. */
	start_server(c, NULL);
	ttrpc_client_free(c->env.cl);
	connect_client(c);
	assert_int_equal(call_echo(c, &c->r[1], "held", 60000), 0);
	EVTEST_SPIN(&c->env.ev, c->env.svc.pending == 1);
	ttrpc_server_free(c->env.s);
	c->env.s = NULL;
	assert_int_equal(c->env.svc.cancelled, 0);
	EVTEST_SPIN(&c->env.ev, c->r[1].n);
	assert_int_equal(c->r[1].code, TTRPC_UNAVAILABLE);
	/* The handler can still end its detached call. */
	echo_svc_fini(&c->env.svc);
	assert_int_equal(c->env.svc.pending, 0);
}

/* ---- backpressure ---- */

static void test_backpressure(void **state)
{
	struct ctx *c = *state;
	const struct ttrpc_server_opts opts = {.write_highwater = 1u << 20};
	start_server(c, &opts);
	struct err e;
	int fd = ttrpc_dial_unix(c->env.path, &e);
	assert_true(fd >= 0);
	enum { N = 100, REPLY = 256 * 1024 };
	/* A client that sends N requests for 256 KiB replies and reads nothing. */
	struct buf b;
	buf_init(&b);
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.reply_bytes = REPLY;
	for (uint32_t i = 0; i < N; i++) {
		struct ttrpc_request_out rq = {
		    .service = ECHO_SERVICE, .method = "Echo", .payload = &req.base};
		ttrpc_wire_put_request(&b, 2 * i + 1, 0, &rq, &e);
	}
	assert_int_equal(fd_write_all(fd, buf_head(&b), buf_avail(&b), &e), 0);
	buf_fini(&b);
	/* The server answers until its queue passes 1 MiB (4 replies), then stops reading:
	 * however long we wait, most requests stay unread in the socket. */
	struct ttrpc_server_stats st;
	EVTEST_SPIN(&c->env.ev, (ttrpc_server_stats(c->env.s, &st), st.calls_started >= 4));
	evtest_run_for(&c->env.ev, 0.3);
	ttrpc_server_stats(c->env.s, &st);
	assert_true(st.calls_started < N / 2);
	/* Reading everything lets it go on to the end. */
	size_t want = (size_t)N * (TTRPC_HDR_SIZE + REPLY), got = 0;
	uint8_t *chunk = xmalloc(1 << 16);
	while (got < want && !c->env.ev.timed_out) {
		ssize_t k = fd_read(fd, chunk, 1 << 16, &e);
		if (k > 0)
			got += (size_t)k;
		else
			ev_run(c->env.ev.loop, EVRUN_NOWAIT);
	}
	free(chunk);
	/* Each reply is a bit more than REPLY bytes (envelope, status): at least this much. */
	assert_true(got >= want);
	ttrpc_server_stats(c->env.s, &st);
	assert_int_equal(st.calls_started, N);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_listen_mode_and_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_custom_policy_refuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_policy_foreign_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_graceful, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_grace_expires, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_idle_and_free, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
