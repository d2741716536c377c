/* Transport tests of common/vsock over real sockets: hybrid guest->host (PATH_P), hybrid
 * host->guest through the test muxer (blocking dial and libev dialer; payload right after the
 * CONNECT line; split, lower-case and malformed commands; refused and timed-out handshakes),
 * tcp on 127.0.0.1 with the port rule, plain unix, and AF_VSOCK loopback, which is skipped
 * where the kernel cannot do it.  Each test works in its own temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
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
#include <ev.h>

#include "common/fdio.h"
#include "common/vsock.h"
#include "common/vsock_muxer.h"

/* Paths are short by construction (a mkdtemp directory under /tmp). */
#pragma GCC diagnostic ignored "-Wformat-truncation"

struct fixture {
	char dir[64];
	char path[128]; /* dir/v.sock */
	struct vsock_addr hybrid, unixa;
	/* muxer thread */
	struct ev_loop *loop;
	struct vsock_muxer *mux;
	ev_async stop;
	pthread_t thr;
	bool running;
};

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct err e;
	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/ferry-vsock-XXXXXX");
	*state = f; /* teardown frees it even when setup fails below */
	if (!mkdtemp(f->dir)) {
		f->dir[0] = '\0';
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/v.sock", f->dir);
	char a[200];
	snprintf(a, sizeof(a), "hybrid:%s", f->path);
	if (vsock_addr_parse(a, &f->hybrid, &e) < 0)
		return -1;
	snprintf(a, sizeof(a), "unix:%s", f->path);
	if (vsock_addr_parse(a, &f->unixa, &e) < 0)
		return -1;
	return 0;
}

static void muxer_stop_thread(struct fixture *f);

static int teardown(void **state)
{
	struct fixture *f = *state;
	muxer_stop_thread(f);
	if (f->dir[0])
		nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void *muxer_main(void *arg)
{
	struct fixture *f = arg;
	ev_run(f->loop, 0);
	return NULL;
}

/* Run a muxer on PATH in its own thread (the blocking dial runs on the test's thread). */
static void muxer_start_thread(struct fixture *f)
{
	struct err e;
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	f->mux = vsock_muxer_new(f->loop, f->path, &e);
	if (!f->mux)
		fail_msg("muxer: %s", e.msg);
	ev_async_init(&f->stop, stop_cb);
	ev_async_start(f->loop, &f->stop);
	assert_int_equal(pthread_create(&f->thr, NULL, muxer_main, f), 0);
	f->running = true;
}

static void muxer_stop_thread(struct fixture *f)
{
	if (!f->running)
		return;
	ev_async_send(f->loop, &f->stop);
	pthread_join(f->thr, NULL);
	f->running = false;
	vsock_muxer_free(f->mux);
	ev_async_stop(f->loop, &f->stop);
	ev_loop_destroy(f->loop);
	f->mux = NULL;
	f->loop = NULL;
}

static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

static bool is_nonblock_cloexec(int fd)
{
	return (fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

/* Accept with a deadline (the listener is non-blocking). */
static int accept_wait(int lfd, int ms)
{
	struct err e;
	long long end = mono_ns() + (long long)ms * 1000000LL;
	for (;;) {
		int fd = vsock_accept(lfd, &e);
		if (fd != IO_AGAIN)
			return fd;
		if (mono_ns() > end)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		poll(&p, 1, 50);
	}
}

/* Read exactly n bytes within 2 s (fails the test otherwise, instead of hanging). */
static void read_n(int fd, void *buf, size_t n)
{
	struct err e;
	size_t got = 0;
	long long end = mono_ns() + 2000000000LL;
	while (got < n) {
		if (mono_ns() > end)
			fail_msg("read fd=%d: got %zu of %zu bytes within 2 s", fd, got, n);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		poll(&p, 1, 50);
		ssize_t r = fd_read(fd, (char *)buf + got, n - got, &e);
		if (r == IO_AGAIN)
			continue;
		if (r <= 0)
			fail_msg("read fd=%d: %s after %zu of %zu bytes", fd,
			         r == 0 ? "eof" : e.msg, got, n);
		got += (size_t)r;
	}
}

/* Send msg on a, expect it on b, and the reverse with a second message. */
static void exchange(int a, int b)
{
	struct err e;
	char buf[64];
	assert_int_equal(fd_write_all(a, "ping from a", 11, &e), 0);
	read_n(b, buf, 11);
	assert_memory_equal(buf, "ping from a", 11);
	assert_int_equal(fd_write_all(b, "pong!", 5, &e), 0);
	read_n(a, buf, 5);
	assert_memory_equal(buf, "pong!", 5);
}

/* Read until EOF (or 1 s); returns bytes read into buf. */
/* Accept the peer of the connected fd c on lfd (NONBLOCK|CLOEXEC), check that bytes flow both
 * ways, and close both. */
static void accept_exchange(int lfd, int c)
{
	int s = accept_wait(lfd, 1000);
	assert_true(s >= 0);
	assert_true(is_nonblock_cloexec(s));
	exchange(c, s);
	close(c);
	close(s);
}

static size_t read_to_eof(int fd, char *buf, size_t cap)
{
	struct err e;
	size_t n = 0;
	long long end = mono_ns() + 1000000000LL;
	while (mono_ns() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		poll(&p, 1, 50);
		ssize_t r = fd_read(fd, buf + n, cap - n, &e);
		if (r == IO_AGAIN)
			continue;
		if (r <= 0)
			return n;
		n += (size_t)r;
	}
	fail_msg("no EOF within 1 s");
	return n;
}

/* ---- hybrid guest->host ---- */

static void test_hybrid_guest_to_host(void **state)
{
	struct fixture *f = *state;
	struct err e;
	char p[128];
	const uint32_t port = 0x40000000u;
	snprintf(p, sizeof(p), "%s_%u", f->path, port);
	/* nothing there yet: ENOENT, distinct from refused */
	assert_int_equal(vsock_dial(&f->hybrid, port, 200, &e), -ENOENT);
	/* a stale socket file is replaced */
	int stale = vsock_listen(&f->hybrid, port, &e);
	assert_true(stale >= 0);
	close(stale);
	assert_true(exists(p));
	assert_int_equal(vsock_dial(&f->hybrid, port, 200, &e), -ECONNREFUSED);
	int lfd = vsock_listen(&f->hybrid, port, &e);
	if (lfd < 0)
		fail_msg("listen: %s", e.msg);
	assert_true(is_nonblock_cloexec(lfd));
	assert_int_equal(vsock_accept(lfd, &e), IO_AGAIN);
	int c = vsock_dial(&f->hybrid, port, 1000, &e);
	if (c < 0)
		fail_msg("dial: %s", e.msg);
	assert_true(is_nonblock_cloexec(c));
	accept_exchange(lfd, c);
	vsock_unlisten(&f->hybrid, port, lfd);
	assert_false(exists(p));
	assert_int_equal(vsock_dial(&f->hybrid, port, 200, &e), -ENOENT);
	/* a non-socket at the path is not unlinked */
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(vsock_listen(&f->hybrid, port, &e), -EEXIST);
	assert_non_null(strstr(e.msg, "not a socket"));
	assert_true(exists(p));
}

/* ---- hybrid host->guest through the muxer ---- */

static void test_hybrid_host_to_guest(void **state)
{
	struct fixture *f = *state;
	struct err e;
	const uint32_t port = 52;
	int g = vsock_listen_guest(&f->hybrid, port, &e);
	if (g < 0)
		fail_msg("listen guest: %s", e.msg);
	muxer_start_thread(f);
	for (uint32_t i = 0; i < 2; i++) {
		uint32_t hp = 0;
		int h = vsock_dial_guest(&f->hybrid, port, 2000, &hp, &e);
		if (h < 0)
			fail_msg("dial guest: %s", e.msg);
		assert_true(is_nonblock_cloexec(h));
		assert_int_equal(hp, 1073741824u + i);
		int s = accept_wait(g, 1000);
		assert_true(s >= 0);
		exchange(h, s);
		/* half-close travels through the splice */
		shutdown(h, SHUT_WR);
		char buf[8];
		assert_int_equal(read_to_eof(s, buf, sizeof(buf)), 0);
		close(s);
		assert_int_equal(read_to_eof(h, buf, sizeof(buf)), 0);
		close(h);
	}
	muxer_stop_thread(f);
	vsock_unlisten_guest(&f->hybrid, port, g);
	char p[128];
	snprintf(p, sizeof(p), "%s.guest_%u", f->path, port);
	assert_false(exists(p));
	assert_false(exists(f->path)); /* the muxer removed its socket */
}

/* Connect to the muxer by hand and send the given chunks, each in its own write. */
static int raw_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void test_hybrid_payload_and_split(void **state)
{
	struct fixture *f = *state;
	struct err e;
	char buf[256];
	int g = vsock_listen_guest(&f->hybrid, 7, &e);
	assert_true(g >= 0);
	muxer_start_thread(f);

	/* payload in the same write as the CONNECT line arrives intact */
	int h = raw_connect(f->path);
	const char req[] = "CONNECT 7\nfirst-bytes-of-payload";
	assert_int_equal(write(h, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
	char ok[32];
	size_t n = 0;
	do { /* one byte at a time, as a careful client does */
		assert_int_equal(read(h, ok + n, 1), 1);
	} while (ok[n++] != '\n' && n < sizeof(ok));
	assert_int_equal(n, 14);
	assert_memory_equal(ok, "OK 1073741824\n", 14);
	int s = accept_wait(g, 1000);
	assert_true(s >= 0);
	read_n(s, buf, 22);
	assert_memory_equal(buf, "first-bytes-of-payload", 22);
	/* and a large stream after it, both ways */
	static char big[200000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	static char got[sizeof(big)];
	assert_int_equal(fd_set_flags(h, true, &e), 0);
	for (size_t off = 0; off < sizeof(big);) { /* interleave to avoid a buffer deadlock */
		size_t k = sizeof(big) - off < 4096 ? sizeof(big) - off : 4096;
		assert_int_equal(fd_write_all(h, big + off, k, &e), 0);
		read_n(s, got + off, k);
		off += k;
	}
	assert_memory_equal(got, big, sizeof(big));
	close(h);
	close(s);

	/* split byte by byte, lower-case keyword, extra spaces */
	h = raw_connect(f->path);
	const char split[] = "connect   7  \n";
	for (size_t i = 0; i < sizeof(split) - 1; i++) {
		assert_int_equal(write(h, split + i, 1), 1);
		poll(NULL, 0, 2);
	}
	n = 0;
	do {
		assert_int_equal(read(h, ok + n, 1), 1);
	} while (ok[n++] != '\n' && n < sizeof(ok));
	assert_memory_equal(ok, "OK 1073741825\n", 14);
	s = accept_wait(g, 1000);
	assert_true(s >= 0);
	exchange(h, s);
	close(h);
	close(s);

	/* malformed commands: closed without OK, nothing reaches the guest */
	const char *bad[] = {"CONNECT x\n",
	                     "HELLO 7\n",
	                     "CONNECT 4294967296\n",
	                     "CONNECT 7 7\n",
	                     "CONNECT                           7\n",
	                     "CONNECT7\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h = raw_connect(f->path);
		ssize_t w = write(h, bad[i], strlen(bad[i]));
		(void)w; /* the muxer may already have closed */
		assert_int_equal(read_to_eof(h, buf, sizeof(buf)), 0);
		close(h);
	}
	/* the command split into two writes with a pause still works (buffered) */
	h = raw_connect(f->path);
	assert_int_equal(write(h, "CONN", 4), 4);
	poll(NULL, 0, 20);
	assert_int_equal(write(h, "ECT 7\n", 6), 6);
	n = 0;
	do {
		assert_int_equal(read(h, ok + n, 1), 1);
	} while (ok[n++] != '\n' && n < sizeof(ok));
	assert_memory_equal(ok, "OK 1073741826\n", 14);
	close(h);
	struct pollfd p = {.fd = g, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 1000), 1);
	s = accept_wait(g, 1000);
	assert_true(s >= 0);
	close(s);
	/* none of the malformed ones reached the guest */
	assert_int_equal(vsock_accept(g, &e), IO_AGAIN);
	muxer_stop_thread(f);
	vsock_unlisten_guest(&f->hybrid, 7, g);
}

static void test_hybrid_refused_and_timeout(void **state)
{
	struct fixture *f = *state;
	struct err e;
	/* no muxer at all */
	assert_int_equal(vsock_dial_guest(&f->hybrid, 9, 200, NULL, &e), -ENOENT);
	/* muxer, but nothing listens for port 9 behind it */
	muxer_start_thread(f);
	err_clear(&e);
	assert_int_equal(vsock_dial_guest(&f->hybrid, 9, 2000, NULL, &e), -ECONNREFUSED);
	assert_non_null(strstr(e.msg, "closed without OK"));
	muxer_stop_thread(f);
	/* a muxer that never answers */
	struct vsock_addr raw = f->hybrid;
	int l = vsock_listen(&f->unixa, 0, &e); /* any listener; we point raw at it */
	assert_true(l >= 0);
	snprintf(raw.path, sizeof(raw.path), "%s_0", f->path);
	long long t0 = mono_ns();
	err_clear(&e);
	assert_int_equal(vsock_dial_guest(&raw, 9, 250, NULL, &e), -ETIMEDOUT);
	long long ms = (mono_ns() - t0) / 1000000;
	assert_true(ms >= 240 && ms < 2000);
	assert_non_null(strstr(e.msg, "no OK"));
	/* the CONNECT line was sent in one piece */
	int s = accept_wait(l, 100);
	assert_true(s >= 0);
	char buf[64];
	ssize_t r = read(s, buf, sizeof(buf));
	assert_int_equal(r, 10);
	assert_memory_equal(buf, "CONNECT 9\n", 10);
	close(s);
	/* guest bytes right behind the OK line are not swallowed by the handshake */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct pollfd p = {.fd = l, .events = POLLIN};
		poll(&p, 1, 2000);
		int c = accept(l, NULL, NULL);
		char b[16];
		if (c >= 0 && read(c, b, sizeof(b)) > 0 && write(c, "OK 77\nearly-guest-bytes", 23))
			poll(NULL, 0, 500);
		_exit(0);
	}
	uint32_t hp = 0;
	int h = vsock_dial_guest(&raw, 9, 2000, &hp, &e);
	if (h < 0)
		fail_msg("dial: %s", e.msg);
	assert_int_equal(hp, 77);
	read_n(h, buf, 17);
	assert_memory_equal(buf, "early-guest-bytes", 17);
	close(h);
	waitpid(pid, NULL, 0);
	/* a bad reply is a protocol error */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct pollfd p = {.fd = l, .events = POLLIN};
		poll(&p, 1, 2000);
		int c = accept(l, NULL, NULL);
		char b[16];
		if (c >= 0 && read(c, b, sizeof(b)) > 0 && write(c, "NO\n", 3) == 3)
			poll(NULL, 0, 500);
		_exit(0);
	}
	err_clear(&e);
	assert_int_equal(vsock_dial_guest(&raw, 9, 2000, NULL, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "bad reply"));
	waitpid(pid, NULL, 0);
	vsock_unlisten(&f->unixa, 0, l);
}

/* ---- libev dialer ---- */

struct dial_result {
	int calls;
	int fd;
	struct err e;
	bool free_in_cb;
};

static void dial_cb(struct vsock_dialer *d, int fd, const struct err *e, void *data)
{
	struct dial_result *r = data;
	r->calls++;
	r->fd = fd;
	if (e)
		r->e = *e;
	if (r->free_in_cb)
		vsock_dialer_free(d);
}

/* Run loop until r has a result or 3 s pass. */
static void run_until(struct ev_loop *loop, struct dial_result *r)
{
	long long end = mono_ns() + 3000000000LL;
	while (r->calls == 0 && mono_ns() < end)
		ev_run(loop, EVRUN_ONCE);
}

static void test_async_dialer(void **state)
{
	struct fixture *f = *state;
	struct err e;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(loop);
	struct vsock_muxer *m = vsock_muxer_new(loop, f->path, &e);
	assert_non_null(m);
	int g = vsock_listen_guest(&f->hybrid, 0x40000005u, &e);
	assert_true(g >= 0);

	/* success: callback frees the dialer itself */
	struct dial_result r = {.fd = -1, .free_in_cb = true};
	struct vsock_dialer *d =
	    vsock_dialer_new(loop, &f->hybrid, 0x40000005u, 2000, dial_cb, &r, &e);
	assert_non_null(d);
	assert_int_equal(r.calls, 0); /* never from inside _new */
	run_until(loop, &r);
	assert_int_equal(r.calls, 1);
	if (r.fd < 0)
		fail_msg("async dial: %s", r.e.msg);
	assert_true(is_nonblock_cloexec(r.fd));
	int s = accept_wait(g, 1000);
	assert_true(s >= 0);
	/* the loop must keep splicing while we exchange: do it by hand */
	assert_int_equal(write(r.fd, "abc", 3), 3);
	char buf[8];
	size_t got = 0;
	long long end = mono_ns() + 2000000000LL;
	while (got < 3 && mono_ns() < end) {
		ev_run(loop, EVRUN_NOWAIT);
		ssize_t n = read(s, buf + got, sizeof(buf) - got);
		if (n > 0)
			got += (size_t)n;
		else
			poll(NULL, 0, 1);
	}
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "abc", 3);
	close(s);
	close(r.fd);

	/* refused: nothing behind the muxer for that port */
	struct dial_result r2 = {.fd = -1};
	d = vsock_dialer_new(loop, &f->hybrid, 77, 2000, dial_cb, &r2, &e);
	assert_non_null(d);
	run_until(loop, &r2);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r2.fd, -ECONNREFUSED);
	assert_non_null(strstr(r2.e.msg, "closed without OK"));
	vsock_dialer_free(d);

	/* immediate failure (no socket file) is delivered from the loop too */
	struct vsock_addr none = f->hybrid;
	snprintf(none.path, sizeof(none.path), "%s/absent", f->dir);
	struct dial_result r3 = {.fd = -1};
	d = vsock_dialer_new(loop, &none, 1, 2000, dial_cb, &r3, &e);
	assert_non_null(d);
	assert_int_equal(r3.calls, 0);
	run_until(loop, &r3);
	assert_int_equal(r3.fd, -ENOENT);
	vsock_dialer_free(d);

	/* timeout: a listener that never answers */
	int l = vsock_listen(&f->unixa, 3, &e);
	assert_true(l >= 0);
	struct vsock_addr raw = f->hybrid;
	snprintf(raw.path, sizeof(raw.path), "%s_3", f->path);
	struct dial_result r4 = {.fd = -1};
	long long t0 = mono_ns();
	d = vsock_dialer_new(loop, &raw, 1, 200, dial_cb, &r4, &e);
	assert_non_null(d);
	run_until(loop, &r4);
	assert_int_equal(r4.fd, -ETIMEDOUT);
	assert_true((mono_ns() - t0) / 1000000 >= 190);
	vsock_dialer_free(d);

	/* freed while pending: callback never runs, fd closed */
	struct dial_result r5 = {.fd = -1};
	d = vsock_dialer_new(loop, &raw, 1, 200, dial_cb, &r5, &e);
	assert_non_null(d);
	ev_run(loop, EVRUN_NOWAIT);
	vsock_dialer_free(d);
	ev_run(loop, EVRUN_NOWAIT);
	assert_int_equal(r5.calls, 0);

	vsock_unlisten(&f->unixa, 3, l);
	vsock_unlisten_guest(&f->hybrid, 0x40000005u, g);
	vsock_muxer_free(m);
	ev_loop_destroy(loop);
}

/* The guest->host direction (vsock_dialer_new_host, what ferry-gcs dials): hybrid/unix connect
 * "PATH_P" with no CONNECT line, tcp maps the port (localhost without a name lookup); every
 * outcome comes from the loop. */
static void test_async_dialer_to_host(void **state)
{
	struct fixture *f = *state;
	struct err e;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(loop);
	const uint32_t port = 0x40000006u;

	/* nobody listens: -ENOENT, and a stale socket file: -ECONNREFUSED */
	struct dial_result r0 = {.fd = -1};
	struct vsock_dialer *d =
	    vsock_dialer_new_host(loop, &f->hybrid, port, 1000, dial_cb, &r0, &e);
	assert_non_null(d);
	assert_int_equal(r0.calls, 0); /* never from inside _new */
	run_until(loop, &r0);
	assert_int_equal(r0.calls, 1);
	assert_int_equal(r0.fd, -ENOENT);
	vsock_dialer_free(d);
	int stale = vsock_listen(&f->hybrid, port, &e);
	assert_true(stale >= 0);
	close(stale);
	struct dial_result r1 = {.fd = -1};
	d = vsock_dialer_new_host(loop, &f->hybrid, port, 1000, dial_cb, &r1, &e);
	assert_non_null(d);
	run_until(loop, &r1);
	assert_int_equal(r1.fd, -ECONNREFUSED);
	vsock_dialer_free(d);

	/* the host's listener gets the connection; the first bytes are the caller's own */
	char s[64];
	unsigned base = 30000 + (unsigned)(getpid() % 1000) * 20;
	snprintf(s, sizeof(s), "tcp:localhost:%u", base);
	struct vsock_addr tcp;
	assert_int_equal(vsock_addr_parse(s, &tcp, &e), 0);
	const struct vsock_addr *as[3] = {&f->hybrid, &f->unixa, &tcp};
	for (int i = 0; i < 3; i++) {
		int lfd = vsock_listen(as[i], port, &e);
		if (lfd < 0)
			fail_msg("listen %s: %s", vsock_kind_name(as[i]->kind), e.msg);
		struct dial_result r = {.fd = -1, .free_in_cb = true};
		d = vsock_dialer_new_host(loop, as[i], port, 1000, dial_cb, &r, &e);
		assert_non_null(d);
		run_until(loop, &r);
		assert_int_equal(r.calls, 1);
		if (r.fd < 0)
			fail_msg("dial %s: %s", vsock_kind_name(as[i]->kind), r.e.msg);
		assert_true(is_nonblock_cloexec(r.fd));
		if (as[i] == &tcp) {
			int nd = 0;
			socklen_t sl = sizeof(nd);
			assert_int_equal(getsockopt(r.fd, IPPROTO_TCP, TCP_NODELAY, &nd, &sl), 0);
			assert_true(nd != 0);
		}
		accept_exchange(lfd, r.fd);
		vsock_unlisten(as[i], port, lfd);
	}

	/* an address that cannot be dialled at all fails at once, with no callback */
	struct vsock_addr hv;
	assert_int_equal(vsock_addr_parse("hvsock:{E0E16197-DD56-4A10-9195-5EE7A155A838}", &hv, &e),
	                 0);
	assert_null(vsock_dialer_new_host(loop, &hv, port, 1000, dial_cb, &r0, &e));
	assert_int_equal(e.code, -EAFNOSUPPORT);
	assert_int_equal(r0.calls, 1);
	ev_loop_destroy(loop);
}

/* ---- tcp ---- */

static void test_tcp_loopback(void **state)
{
	(void)state;
	struct vsock_addr a;
	struct err e;
	char s[64];
	/* a base in the middle of the range, varied per process to avoid clashes */
	unsigned base = 30000 + (unsigned)(getpid() % 1000) * 20;
	snprintf(s, sizeof(s), "tcp:127.0.0.1:%u", base);
	assert_int_equal(vsock_addr_parse(s, &a, &e), 0);
	const uint32_t port = 0x40000003u;
	assert_int_equal(vsock_dial(&a, port, 500, &e), -ECONNREFUSED);
	int lfd = vsock_listen(&a, port, &e);
	if (lfd < 0)
		fail_msg("listen: %s", e.msg);
	assert_true(is_nonblock_cloexec(lfd));
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(ntohs(sin.sin_port), base + 3);
	int c = vsock_dial(&a, port, 1000, &e);
	if (c < 0)
		fail_msg("dial: %s", e.msg);
	int sfd = accept_wait(lfd, 1000);
	assert_true(sfd >= 0);
	assert_true(is_nonblock_cloexec(c) && is_nonblock_cloexec(sfd));
	int nd = 0;
	sl = sizeof(nd);
	assert_int_equal(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &nd, &sl), 0);
	assert_true(nd != 0);
	nd = 0;
	assert_int_equal(getsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &nd, &sl), 0);
	assert_true(nd != 0);
	exchange(c, sfd);
	close(c);
	close(sfd);
	/* SO_REUSEADDR: re-listen at once after close, despite TIME_WAIT */
	vsock_unlisten(&a, port, lfd);
	lfd = vsock_listen(&a, port, &e);
	if (lfd < 0)
		fail_msg("re-listen: %s", e.msg);
	/* well-known port mapping */
	int l2 = vsock_listen(&a, 109, &e);
	assert_true(l2 >= 0);
	sl = sizeof(sin);
	assert_int_equal(getsockname(l2, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(ntohs(sin.sin_port), base - 1024 + 109);
	c = vsock_dial_guest(&a, 109, 1000, NULL, &e);
	assert_true(c >= 0);
	close(c);
	vsock_unlisten(&a, 109, l2);
	vsock_unlisten(&a, port, lfd);
	/* unresolvable host */
	assert_int_equal(vsock_addr_parse("tcp:no-such-host.invalid", &a, &e), 0);
	assert_int_equal(vsock_dial(&a, port, 500, &e), -ENXIO);
	assert_non_null(strstr(e.msg, "resolve tcp host"));
}

/* ---- unix ---- */

static void test_unix(void **state)
{
	struct fixture *f = *state;
	struct err e;
	char p[128];
	int lfd = vsock_listen(&f->unixa, 564, &e);
	assert_true(lfd >= 0);
	snprintf(p, sizeof(p), "%s_564", f->path);
	assert_true(exists(p));
	int c = vsock_dial(&f->unixa, 564, 500, &e);
	assert_true(c >= 0);
	accept_exchange(lfd, c);
	vsock_unlisten(&f->unixa, 564, lfd);
	assert_false(exists(p));
	/* host->guest without a muxer: PATH.guest_P, no handshake */
	int g = vsock_listen_guest(&f->unixa, 1, &e);
	assert_true(g >= 0);
	uint32_t hp = 99;
	c = vsock_dial_guest(&f->unixa, 1, 500, &hp, &e);
	assert_true(c >= 0);
	assert_int_equal(hp, 0);
	accept_exchange(g, c);
	/* the libev dialer on unix: (no handshake) */
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct dial_result r = {.fd = -1};
	struct vsock_dialer *d = vsock_dialer_new(loop, &f->unixa, 1, 1000, dial_cb, &r, &e);
	assert_non_null(d);
	run_until(loop, &r);
	assert_int_equal(r.calls, 1);
	assert_true(r.fd >= 0);
	accept_exchange(g, r.fd);
	vsock_dialer_free(d);
	ev_loop_destroy(loop);
	vsock_unlisten_guest(&f->unixa, 1, g);
	snprintf(p, sizeof(p), "%s.guest_1", f->path);
	assert_false(exists(p));
}

/* ---- AF_VSOCK ---- */

static void test_vsock_loopback(void **state)
{
	(void)state;
	struct vsock_addr a;
	struct err e;
	assert_int_equal(vsock_addr_parse("vsock:1", &a, &e), 0);
	const uint32_t port = 0x50000000u + (uint32_t)(getpid() & 0xffff);
	int lfd = vsock_listen(&a, port, &e);
	if (lfd < 0) {
		print_message("vsock listen unavailable: %s\n", e.msg);
		skip();
	}
	int c = vsock_dial(&a, port, 300, &e);
	if (c < 0) {
		vsock_unlisten(&a, port, lfd);
		print_message("vsock loopback dial unavailable: %s\n", e.msg);
		skip();
	}
	accept_exchange(lfd, c);
	vsock_unlisten(&a, port, lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hybrid_guest_to_host, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hybrid_host_to_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hybrid_payload_and_split, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hybrid_refused_and_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_async_dialer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_async_dialer_to_host, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tcp_loopback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vsock_loopback, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
