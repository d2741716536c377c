/* Unit tests for common/stream: write queue under backpressure, EOF vs error, half-close,
 * pause/resume, fd stealing, ptys, and freeing a stream from inside its own callbacks.  Every
 * test runs a real ev_loop over socketpairs/pipes with a guard timer so a broken test fails
 * instead of hanging. */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
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

#include "common/fdio.h"
#include "common/stream.h"
#include "common/xalloc.h"
#include "tests/lib/evtest.h"

struct ctx {
	struct evtest ev;
	struct stream *s;
	int peer; /* the other end, owned by the test */
	struct buf got;
	int n_read, n_eof, n_error, n_drain;
	int error_code;
	bool free_in_read, free_in_eof, free_in_error, free_in_drain;
	/* slow reader */
	ev_timer slow;
	size_t slow_chunk;
	uint64_t peer_got;
	bool peer_eof;
	uint64_t expect_total;
};

static int setup(void **state)
{
	struct ctx *c = xcalloc(1, sizeof(*c));
	evtest_init(&c->ev, 10.0);
	buf_init(&c->got);
	c->peer = -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	stream_free(c->s);
	if (c->peer >= 0)
		close(c->peer);
	ev_timer_stop(c->ev.loop, &c->slow);
	evtest_fini(&c->ev);
	buf_fini(&c->got);
	free(c);
	return 0;
}

/* The test asked a callback to free the stream it reports on. */
static void free_if(struct ctx *c, struct stream *s, bool asked)
{
	if (asked) {
		stream_free(s);
		c->s = NULL;
	}
}

static void cb_read(struct stream *s, struct buf *in, void *ud)
{
	struct ctx *c = ud;
	c->n_read++;
	buf_append(&c->got, buf_head(in), buf_avail(in));
	buf_consume(in, buf_avail(in));
	free_if(c, s, c->free_in_read);
}

static void cb_eof(struct stream *s, void *ud)
{
	struct ctx *c = ud;
	c->n_eof++;
	free_if(c, s, c->free_in_eof);
}

static void cb_error(struct stream *s, const struct err *why, void *ud)
{
	struct ctx *c = ud;
	c->n_error++;
	c->error_code = why->code;
	assert_true(why->msg[0] != '\0');
	free_if(c, s, c->free_in_error);
}

static void cb_drain(struct stream *s, void *ud)
{
	struct ctx *c = ud;
	c->n_drain++;
	free_if(c, s, c->free_in_drain);
}

static const struct stream_cbs all_cbs = {
    .on_read = cb_read, .on_eof = cb_eof, .on_error = cb_error, .on_drain = cb_drain};

static void make_pair(struct ctx *c, const struct stream_cbs *cbs)
{
	int sv[2];
	struct err e;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c->s = stream_new(c->ev.loop, sv[0], cbs, c, &e);
	assert_non_null(c->s);
	c->peer = sv[1];
	assert_int_equal(fd_set_flags(c->peer, true, &e), 0);
	/* stream_new sets the flags itself */
	assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 9));
}

/* Peer reading slowly: one chunk per millisecond, checking the pattern. */
static void on_slow(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct ctx *c = w->data;
	uint8_t tmp[16384];
	size_t want = c->slow_chunk < sizeof(tmp) ? c->slow_chunk : sizeof(tmp);
	ssize_t r = read(c->peer, tmp, want);
	if (r == 0) {
		c->peer_eof = true;
		return;
	}
	for (ssize_t i = 0; i < r; i++)
		assert_int_equal(tmp[i], pattern(c->peer_got + (uint64_t)i));
	if (r > 0)
		c->peer_got += (uint64_t)r;
}

static void start_slow_reader(struct ctx *c, size_t chunk)
{
	c->slow_chunk = chunk;
	ev_timer_init(&c->slow, on_slow, 0.001, 0.001);
	c->slow.data = c;
	ev_timer_start(c->ev.loop, &c->slow);
}

static void run_until_peer_got(struct ctx *c, uint64_t n)
{
	EVTEST_SPIN(&c->ev, c->peer_got >= n);
	assert_false(c->ev.timed_out);
}

static void test_backpressure_drains(void **state)
{
	struct ctx *c = *state;
	make_pair(c, &all_cbs);
	const uint64_t total = 3u << 20; /* 3 MiB, far above the socket buffer */
	uint8_t chunk[4096];
	struct err e;
	for (uint64_t off = 0; off < total; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = pattern(off + i);
		assert_int_equal(stream_write(c->s, chunk, sizeof(chunk), &e), 0);
	}
	/* stream_write never blocked: most of it is queued */
	assert_true(stream_pending(c->s) > (1u << 20));
	assert_int_equal(stream_bytes_out(c->s) + stream_pending(c->s), total);
	start_slow_reader(c, 64 * 1024);
	run_until_peer_got(c, total);
	assert_int_equal(c->peer_got, total);
	assert_int_equal(stream_pending(c->s), 0);
	assert_int_equal(stream_bytes_out(c->s), total);
	assert_int_equal(c->n_drain, 1);
	assert_int_equal(c->n_error, 0);
}

static void test_read_and_eof(void **state)
{
	struct ctx *c = *state;
	make_pair(c, &all_cbs);
	struct err e;
	assert_int_equal(fd_write_all(c->peer, "hello ", 6, &e), 0);
	assert_int_equal(fd_write_all(c->peer, "world", 5, &e), 0);
	shutdown(c->peer, SHUT_WR);
	EVTEST_SPIN(&c->ev, c->n_eof != 0);
	assert_int_equal(c->n_eof, 1);
	assert_int_equal(c->n_error, 0);
	assert_int_equal(buf_avail(&c->got), 11);
	assert_memory_equal(buf_head(&c->got), "hello world", 11);
	assert_int_equal(stream_bytes_in(c->s), 11);
	assert_true(stream_at_eof(c->s));
	/* half-close from the peer: we can still write */
	assert_int_equal(stream_write(c->s, "bye", 3, &e), 0);
	char tmp[8];
	assert_int_equal(fd_read_all(c->peer, tmp, 3, &e), 0);
	assert_memory_equal(tmp, "bye", 3);
	evtest_run_for(&c->ev, 0.02);
	assert_int_equal(c->n_eof, 1);
}

static void test_read_error_not_eof(void **state)
{
	struct ctx *c = *state;
	make_pair(c, &all_cbs);
	struct err e;
	/* AF_UNIX: closing a socket with unread data resets the peer (read -> ECONNRESET) */
	assert_int_equal(stream_write(c->s, "unread", 6, &e), 0);
	close(c->peer);
	c->peer = -1;
	EVTEST_SPIN(&c->ev, c->n_error != 0 || c->n_eof != 0);
	assert_int_equal(c->n_error, 1);
	assert_int_equal(c->n_eof, 0);
	assert_int_equal(c->error_code, -ECONNRESET);
	assert_true(stream_failed(c->s));
	assert_int_equal(stream_write(c->s, "x", 1, &e), -EPIPE);
	evtest_run_for(&c->ev, 0.02);
	assert_int_equal(c->n_error, 1);
}

static void test_write_error_deferred(void **state)
{
	struct ctx *c = *state;
	make_pair(c, &all_cbs);
	stream_pause_read(c->s);
	close(c->peer);
	c->peer = -1;
	struct err e;
	/* EPIPE is found inside stream_write but reported from the loop */
	assert_int_equal(stream_write(c->s, "x", 1, &e), 0);
	assert_int_equal(c->n_error, 0);
	assert_false(stream_writable(c->s));
	assert_int_equal(stream_write(c->s, "y", 1, &e), -EPIPE);
	EVTEST_SPIN(&c->ev, c->n_error != 0);
	assert_int_equal(c->n_error, 1);
	assert_int_equal(c->error_code, -EPIPE);
	assert_int_equal(c->n_eof, 0);
}

static void test_shutdown_after_drain_socket(void **state)
{
	struct ctx *c = *state;
	make_pair(c, &all_cbs);
	const uint64_t total = 1u << 20;
	uint8_t chunk[4096];
	struct err e;
	for (uint64_t off = 0; off < total; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = pattern(off + i);
		assert_int_equal(stream_write(c->s, chunk, sizeof(chunk), &e), 0);
	}
	assert_true(stream_pending(c->s) > 0);
	stream_shutdown_write(c->s);
	assert_false(stream_write_closed(c->s)); /* waits for the queue */
	assert_int_equal(stream_write(c->s, "late", 4, &e), -EPIPE);
	start_slow_reader(c, 128 * 1024);
	EVTEST_SPIN(&c->ev, c->peer_eof);
	assert_false(c->ev.timed_out);
	assert_int_equal(c->peer_got, total); /* every byte before the EOF */
	assert_true(stream_write_closed(c->s));
	/* the read side stays open: the peer can still talk to us */
	assert_int_equal(fd_write_all(c->peer, "ok", 2, &e), 0);
	EVTEST_SPIN(&c->ev, buf_avail(&c->got) >= 2);
	assert_memory_equal(buf_head(&c->got), "ok", 2);
	assert_int_equal(c->n_error, 0);
}

static void test_shutdown_pipe_closes(void **state)
{
	struct ctx *c = *state;
	int p[2];
	struct err e;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	static const struct stream_cbs wcbs = {.on_error = cb_error, .on_drain = cb_drain};
	c->s = stream_new(c->ev.loop, p[1], &wcbs, c, &e);
	assert_non_null(c->s);
	c->peer = p[0];
	assert_int_equal(fd_set_flags(c->peer, true, &e), 0);
	const uint64_t total = 256 * 1024; /* over the 64 KiB pipe buffer */
	uint8_t chunk[1024];
	for (uint64_t off = 0; off < total; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = pattern(off + i);
		assert_int_equal(stream_write(c->s, chunk, sizeof(chunk), &e), 0);
	}
	stream_shutdown_write(c->s);
	assert_true(stream_fd(c->s) >= 0);
	start_slow_reader(c, 16384);
	EVTEST_SPIN(&c->ev, c->peer_eof);
	assert_false(c->ev.timed_out);
	assert_int_equal(c->peer_got, total);
	assert_int_equal(stream_fd(c->s), -1); /* a pipe cannot half-close: it was closed */
	assert_true(stream_write_closed(c->s));
}

static void test_pause_resume(void **state)
{
	struct ctx *c = *state;
	make_pair(c, &all_cbs);
	struct err e;
	stream_pause_read(c->s);
	assert_true(stream_read_paused(c->s));
	assert_int_equal(fd_write_all(c->peer, "abc", 3, &e), 0);
	evtest_run_for(&c->ev, 0.03);
	assert_int_equal(c->n_read, 0);
	stream_resume_read(c->s);
	EVTEST_SPIN(&c->ev, c->n_read != 0);
	assert_int_equal(buf_avail(&c->got), 3);
	assert_memory_equal(buf_head(&c->got), "abc", 3);
}

static void test_free_in_read(void **state)
{
	struct ctx *c = *state;
	make_pair(c, &all_cbs);
	c->free_in_read = true;
	struct err e;
	assert_int_equal(fd_write_all(c->peer, "zz", 2, &e), 0);
	EVTEST_SPIN(&c->ev, c->n_read != 0);
	assert_null(c->s);
	/* the fd was closed at once: the peer sees EOF */
	char tmp;
	int n = 0;
	ssize_t r;
	while ((r = read(c->peer, &tmp, 1)) < 0 && errno == EAGAIN && n++ < 1000)
		usleep(1000);
	assert_int_equal(r, 0);
	evtest_run_for(&c->ev, 0.01);
	assert_int_equal(c->n_read, 1);
}

static void test_free_in_eof_error_drain(void **state)
{
	struct ctx *c = *state;
	struct err e;
	/* EOF */
	make_pair(c, &all_cbs);
	c->free_in_eof = true;
	shutdown(c->peer, SHUT_WR);
	EVTEST_SPIN(&c->ev, c->n_eof != 0);
	assert_null(c->s);
	close(c->peer);
	/* error (deferred write error) */
	make_pair(c, &all_cbs);
	c->free_in_error = true;
	stream_pause_read(c->s);
	close(c->peer);
	c->peer = -1;
	assert_int_equal(stream_write(c->s, "x", 1, &e), 0);
	EVTEST_SPIN(&c->ev, c->n_error != 0);
	assert_null(c->s);
	/* drain */
	make_pair(c, &all_cbs);
	c->free_in_drain = true;
	static uint8_t big[1 << 20];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = pattern(i);
	c->peer_got = 0;
	assert_int_equal(stream_write(c->s, big, sizeof(big), &e), 0);
	assert_true(stream_pending(c->s) > 0);
	start_slow_reader(c, 1 << 20);
	EVTEST_SPIN(&c->ev, c->n_drain != 0);
	assert_null(c->s);
	evtest_run_for(&c->ev, 0.01);
	assert_int_equal(c->n_drain, 1);
}

static void test_steal_fd(void **state)
{
	struct ctx *c = *state;
	make_pair(c, &all_cbs);
	struct err e;
	int fd = stream_steal_fd(c->s);
	assert_true(fd >= 0);
	assert_int_equal(stream_fd(c->s), -1);
	assert_int_equal(stream_write(c->s, "x", 1, &e), -EPIPE);
	assert_int_equal(fd_write_all(c->peer, "q", 1, &e), 0);
	evtest_run_for(&c->ev, 0.02);
	assert_int_equal(c->n_read, 0); /* no longer watched */
	char ch;
	assert_int_equal(fd_read_all(fd, &ch, 1, &e), 0); /* still usable by the new owner */
	assert_int_equal(ch, 'q');
	stream_free(c->s); /* must not close the stolen fd */
	c->s = NULL;
	assert_int_equal(fd_write_all(fd, "r", 1, &e), 0);
	close(fd);
}

static void test_pty_eio_is_eof(void **state)
{
	struct ctx *c = *state;
	int master, slave;
	struct err e;
	if (openpty(&master, &slave, NULL, NULL, NULL) < 0)
		skip();
	c->s = stream_new(c->ev.loop, master, &all_cbs, c, &e);
	assert_non_null(c->s);
	assert_int_equal(fd_write_all(slave, "tty\n", 4, &e), 0);
	close(slave);
	EVTEST_SPIN(&c->ev, c->n_eof != 0 || c->n_error != 0);
	assert_int_equal(c->n_eof, 1);
	assert_int_equal(c->n_error, 0);
	assert_true(buf_avail(&c->got) >= 3);
	assert_memory_equal(buf_head(&c->got), "tty", 3);
}

static void test_bad_fd(void **state)
{
	struct ctx *c = *state;
	struct err e;
	err_clear(&e);
	assert_null(stream_new(c->ev.loop, -1, &all_cbs, c, &e));
	assert_int_equal(e.code, -EBADF);
	int fd = dup(0);
	close(fd);
	err_clear(&e);
	assert_null(stream_new(c->ev.loop, fd, &all_cbs, c, &e)); /* closed fd */
	assert_int_equal(e.code, -EBADF);
	stream_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_backpressure_drains, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_and_eof, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_error_not_eof, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_error_deferred, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_after_drain_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_pipe_closes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_in_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_in_eof_error_drain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_steal_fd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pty_eio_is_eof, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_fd, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
