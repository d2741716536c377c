/* Transport benchmark for the vsock shim: for a socketpair baseline, hybrid guest->host
 * (a unix socket "PATH_P"), hybrid host->guest through the test muxer (a user-space splice,
 * as a VMM's muxer adds), plain unix and tcp loopback, measure throughput (256 MiB in 64 KiB
 * writes, a reader thread) and round-trip latency (1-byte ping-pong, 20k round trips), 5 runs
 * each, and print the medians with their ratio to the socketpair baseline.  Environment:
 * FERRY_BENCH_MIB (bytes per throughput run, default 256), FERRY_BENCH_RTT (round trips,
 * default 20000), FERRY_BENCH_RUNS (default 5). */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/vsock.h"
#include "common/vsock_muxer.h"
#include "tests/lib/stats.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define CHUNK (64 * 1024)

struct pair {
	int a, b; /* a writes / pings, b reads / echoes */
};

struct reader {
	int fd;
	size_t total;
	int rc;
};

static size_t env_num(const char *name, size_t def)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	return (*end || v == 0) ? def : (size_t)v;
}

static int set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	static char buf[CHUNK];
	size_t got = 0;
	while (got < r->total) {
		ssize_t n = read(r->fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			r->rc = -1;
			return NULL;
		}
		got += (size_t)n;
	}
	r->rc = 0;
	return NULL;
}

/* MiB/s for one run of total bytes a -> b. */
static double throughput(const struct pair *p, size_t total)
{
	static char buf[CHUNK];
	memset(buf, 0x5a, sizeof(buf));
	struct reader r = {.fd = p->b, .total = total};
	pthread_t t;
	long long t0 = mono_ns();
	if (pthread_create(&t, NULL, reader_main, &r) != 0)
		return -1;
	struct err e;
	for (size_t sent = 0; sent < total; sent += CHUNK)
		if (fd_write_all(p->a, buf, CHUNK, &e) < 0)
			break;
	pthread_join(t, NULL);
	long long dt = mono_ns() - t0;
	if (r.rc < 0)
		return -1;
	return (double)total / (1024.0 * 1024.0) / ((double)dt / 1e9);
}

struct echo {
	int fd;
	size_t n;
};

static void *echo_main(void *arg)
{
	struct echo *ec = arg;
	char c;
	for (size_t i = 0; i < ec->n; i++)
		if (read(ec->fd, &c, 1) != 1 || write(ec->fd, &c, 1) != 1)
			break;
	return NULL;
}

/* Microseconds per 1-byte round trip, n round trips. */
static double latency(const struct pair *p, size_t n)
{
	struct echo ec = {.fd = p->b, .n = n};
	pthread_t t;
	if (pthread_create(&t, NULL, echo_main, &ec) != 0)
		return -1;
	char c = 'x';
	long long t0 = mono_ns();
	size_t i;
	for (i = 0; i < n; i++)
		if (write(p->a, &c, 1) != 1 || read(p->a, &c, 1) != 1)
			break;
	long long dt = mono_ns() - t0;
	pthread_join(t, NULL);
	return i == n ? (double)dt / 1e3 / (double)n : -1;
}

/* ---- connection set-up per transport ---- */

static int accept_blocking(int lfd, struct err *e)
{
	long long end = mono_ns() + 2000000000LL;
	for (;;) {
		int fd = vsock_accept(lfd, e);
		if (fd != IO_AGAIN)
			return fd;
		if (mono_ns() > end)
			return err_set(e, -ETIMEDOUT, "accept timed out");
		usleep(1000);
	}
}

/* Host listens, guest dials (the GCS direction). */
static int pair_listen_dial(const char *addr, uint32_t port, struct pair *p, struct err *e)
{
	struct vsock_addr a;
	if (vsock_addr_parse(addr, &a, e) < 0)
		return e->code;
	int lfd = vsock_listen(&a, port, e);
	if (lfd < 0)
		return lfd;
	p->b = vsock_dial(&a, port, 1000, e);
	if (p->b < 0) {
		vsock_unlisten(&a, port, lfd);
		return p->b;
	}
	p->a = accept_blocking(lfd, e);
	vsock_unlisten(&a, port, lfd);
	if (p->a < 0) {
		close(p->b);
		return p->a;
	}
	return 0;
}

struct muxer_thread {
	struct ev_loop *loop;
	struct vsock_muxer *mux;
	ev_async stop;
	pthread_t thr;
};

static void stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void *muxer_main(void *arg)
{
	struct muxer_thread *m = arg;
	ev_run(m->loop, 0);
	return NULL;
}

/* Host dials the guest through the muxer (CONNECT handshake, then a user-space splice). */
static int pair_muxer(const char *path, struct muxer_thread *m, struct pair *p, struct err *e)
{
	char s[200];
	struct vsock_addr a;
	snprintf(s, sizeof(s), "hybrid:%s", path);
	if (vsock_addr_parse(s, &a, e) < 0)
		return e->code;
	m->loop = ev_loop_new(EVFLAG_AUTO);
	m->mux = vsock_muxer_new(m->loop, path, e);
	if (!m->mux)
		return e->code;
	ev_async_init(&m->stop, stop_cb);
	ev_async_start(m->loop, &m->stop);
	pthread_create(&m->thr, NULL, muxer_main, m);
	int g = vsock_listen_guest(&a, 1024, e);
	if (g < 0)
		return g;
	p->a = vsock_dial_guest(&a, 1024, 2000, NULL, e);
	if (p->a >= 0)
		p->b = accept_blocking(g, e);
	vsock_unlisten_guest(&a, 1024, g);
	return p->a < 0 ? p->a : p->b < 0 ? p->b : 0;
}

static void muxer_stop(struct muxer_thread *m)
{
	if (!m->loop)
		return;
	if (m->mux) {
		ev_async_send(m->loop, &m->stop);
		pthread_join(m->thr, NULL);
		vsock_muxer_free(m->mux);
	}
	ev_loop_destroy(m->loop);
	m->loop = NULL;
}

struct result {
	const char *name;
	const char *note;
	double mibs, rtt_us;
	bool ok;
	char err[160];
};

int main(void)
{
	size_t mib = env_num("FERRY_BENCH_MIB", 256);
	size_t rtts = env_num("FERRY_BENCH_RTT", 20000);
	size_t runs = env_num("FERRY_BENCH_RUNS", 5);
	if (runs > 15)
		runs = 15;
	char dir[] = "/tmp/ferry-bench-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	char path[128], addr[200];
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	unsigned base = 30000 + (unsigned)(getpid() % 1000) * 20;

	struct result res[] = {
	    {.name = "socketpair", .note = "baseline (AF_UNIX socketpair)"},
	    {.name = "hybrid g->h", .note = "unix socket PATH_P, guest dials"},
	    {.name = "hybrid h->g", .note = "CONNECT handshake + test muxer splice"},
	    {.name = "unix", .note = "unix:PATH, same as hybrid g->h"},
	    {.name = "tcp", .note = "tcp:127.0.0.1, TCP_NODELAY"},
	};
	size_t nres = sizeof(res) / sizeof(res[0]);
	long long t_start = mono_ns();
	printf("vsock shim transports: %zu MiB per throughput run (64 KiB writes), %zu round trips "
	       "per latency run, median of %zu runs\n",
	       mib, rtts, runs);
	fflush(stdout);
	for (size_t i = 0; i < nres; i++) {
		struct pair p = {-1, -1};
		struct muxer_thread m = {0};
		struct err e;
		err_clear(&e);
		int r = 0;
		switch (i) {
		case 0: {
			int sv[2];
			r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0;
			if (r < 0)
				err_sys(&e, r, "socketpair");
			p.a = sv[0];
			p.b = sv[1];
			break;
		}
		case 1:
			snprintf(addr, sizeof(addr), "hybrid:%s", path);
			r = pair_listen_dial(addr, 0x40000000u, &p, &e);
			break;
		case 2:
			r = pair_muxer(path, &m, &p, &e);
			break;
		case 3:
			snprintf(addr, sizeof(addr), "unix:%s", path);
			r = pair_listen_dial(addr, 0x40000001u, &p, &e);
			break;
		case 4:
			snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%u", base);
			r = pair_listen_dial(addr, 0x40000000u, &p, &e);
			break;
		}
		if (r < 0 || set_blocking(p.a) < 0 || set_blocking(p.b) < 0) {
			snprintf(res[i].err, sizeof(res[i].err), "%s", r < 0 ? e.msg : "fcntl");
		} else {
			double tp[15] = {0}, lt[15] = {0};
			bool ok = true;
			for (size_t k = 0; k < runs && ok; k++) {
				tp[k] = throughput(&p, mib * 1024 * 1024);
				lt[k] = latency(&p, rtts);
				ok = tp[k] > 0 && lt[k] > 0;
			}
			if (ok) {
				res[i].mibs = stats_median(tp, runs);
				res[i].rtt_us = stats_median(lt, runs);
				res[i].ok = true;
			} else {
				snprintf(res[i].err, sizeof(res[i].err),
				         "i/o failed during the run");
			}
		}
		if (p.a >= 0)
			close(p.a);
		if (p.b >= 0)
			close(p.b);
		muxer_stop(&m);
	}
	rmdir(dir);

	printf("\n%-12s %12s %8s %12s %8s   %s\n", "transport", "MiB/s", "x base", "RTT us",
	       "x base", "notes");
	printf("%-12s %12s %8s %12s %8s   %s\n", "------------", "------------", "--------",
	       "------------", "--------", "-----");
	int failed = 0;
	for (size_t i = 0; i < nres; i++) {
		if (!res[i].ok) {
			printf("%-12s %12s %8s %12s %8s   error: %s\n", res[i].name, "-", "-", "-",
			       "-", res[i].err);
			failed++;
			continue;
		}
		char tr[16] = "-", lr[16] = "-";
		if (res[0].ok) {
			snprintf(tr, sizeof(tr), "%.2f", res[i].mibs / res[0].mibs);
			snprintf(lr, sizeof(lr), "%.2f", res[i].rtt_us / res[0].rtt_us);
		}
		printf("%-12s %12.0f %8s %12.2f %8s   %s\n", res[i].name, res[i].mibs, tr,
		       res[i].rtt_us, lr, res[i].note);
	}
	printf("\n(x base: throughput ratio, higher is better; RTT ratio, lower is better.) total "
	       "%.1f s\n",
	       (double)(mono_ns() - t_start) / 1e9);
	return failed ? 1 : 0;
}
