/* Benchmark: GCS bridge RPC round trips per second and p50/p99 latency for a Start-sized
 * request, host bridge_client against a guest bridge_conn echo server in a forked process,
 * over a socketpair and over a unix socket (host listens, guest dials, as on the real
 * bridge).  One call in flight at a time; each configuration runs 5 times and the median of
 * each figure is printed.  Prints numbers; never passes or fails on them. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "bridge/client.h"
#include "bridge/conn.h"
#include "common/fdio.h"
#include "common/xalloc.h"
#include "tests/lib/stats.h"

#define RUNS  5
#define CALLS 20000

static const char start_req[] =
    "{\"ContainerId\":\"3f2a9c1e5b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a\","
    "\"ActivityId\":\"00000000-0000-0000-0000-000000000000\"}\n";
static const char start_resp[] =
    "{\"Result\":0,\"ActivityId\":\"00000000-0000-0000-0000-000000000000\"}";

/* ---- guest side (child process) ---- */

static void echo_request(struct bridge_conn *c, const struct bridge_hdr *h, const char *json,
                         size_t len, void *ud)
{
	(void)json;
	(void)len;
	(void)ud;
	struct err e;
	if (bridge_conn_respond(c, h->type, h->id, start_resp, sizeof(start_resp) - 1, &e) < 0) {
		fprintf(stderr, "guest: %s\n", e.msg);
		_exit(1);
	}
}

static void guest_closed(struct bridge_conn *c, const struct err *why, void *ud)
{
	(void)c;
	(void)why;
	ev_break((struct ev_loop *)ud, EVBREAK_ALL);
}

static void guest_main(int fd)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct err e;
	const struct bridge_conn_cbs cbs = {.on_request = echo_request, .on_close = guest_closed};
	struct bridge_conn *c = bridge_conn_new(loop, fd, &cbs, loop, &e);
	if (!c) {
		fprintf(stderr, "guest: %s\n", e.msg);
		_exit(1);
	}
	ev_run(loop, 0);
	bridge_conn_free(c);
	ev_loop_destroy(loop);
	_exit(0);
}

/* ---- host side ---- */

struct run {
	struct ev_loop *loop;
	struct bridge_client *cl;
	double *lat; /* us per call */
	int done;
	long long t_call;
	int failed;
};

static void issue(struct run *r);

static void on_resp(struct bridge_client *cl, int status, const char *json, size_t len,
                    const struct err *why, void *ud)
{
	(void)cl;
	(void)json;
	(void)len;
	struct run *r = ud;
	if (status < 0) {
		fprintf(stderr, "host: call failed: %s\n", why->msg);
		r->failed = 1;
		ev_break(r->loop, EVBREAK_ALL);
		return;
	}
	r->lat[r->done++] = (double)(mono_ns() - r->t_call) / 1e3;
	if (r->done == CALLS)
		ev_break(r->loop, EVBREAK_ALL);
	else
		issue(r);
}

static void issue(struct run *r)
{
	struct err e;
	r->t_call = mono_ns();
	if (bridge_client_call(r->cl, RPC_START, start_req, sizeof(start_req) - 1, on_resp, r, NULL,
	                       &e) < 0) {
		fprintf(stderr, "host: %s\n", e.msg);
		r->failed = 1;
		ev_break(r->loop, EVBREAK_ALL);
	}
}

/* Connect a host fd and a forked guest; returns the host fd and the child pid. */
static int connect_socketpair(pid_t *pid)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	*pid = fork();
	if (*pid == 0) {
		close(sv[0]);
		guest_main(sv[1]);
	}
	close(sv[1]);
	return sv[0];
}

static int connect_unix(pid_t *pid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/ferry-bench-rpc-%d.sock", (int)getpid());
	unlink(sa.sun_path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
		return -errno;
	*pid = fork();
	if (*pid == 0) {
		close(lfd);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(1);
		guest_main(fd);
	}
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	int saved = errno;
	close(lfd);
	unlink(sa.sun_path);
	return fd < 0 ? -saved : fd;
}

static int one_run(int (*dial)(pid_t *), double *rps, double *p50, double *p99)
{
	pid_t pid = -1;
	int fd = dial(&pid);
	if (fd < 0) {
		fprintf(stderr, "connect: %s\n", strerror(-fd));
		return -1;
	}
	struct run r = {.loop = ev_loop_new(0)};
	struct err e;
	r.lat = xcalloc(CALLS, sizeof(*r.lat));
	r.cl = bridge_client_new(r.loop, NULL, NULL);
	if (bridge_client_attach(r.cl, fd, &e) < 0) {
		fprintf(stderr, "attach: %s\n", e.msg);
		return -1;
	}
	long long t0 = mono_ns();
	issue(&r);
	ev_run(r.loop, 0);
	long long t1 = mono_ns();
	bridge_client_free(r.cl); /* closes the connection: the guest exits */
	ev_loop_destroy(r.loop);
	int status;
	waitpid(pid, &status, 0);
	if (r.failed || r.done != CALLS) {
		free(r.lat);
		return -1;
	}
	*rps = CALLS / ((double)(t1 - t0) / 1e9);
	*p50 = stats_percentile(r.lat, CALLS, 0.50);
	*p99 = stats_percentile(r.lat, CALLS, 0.99);
	free(r.lat);
	return 0;
}

static int bench(const char *name, int (*dial)(pid_t *))
{
	double rps[RUNS], p50[RUNS], p99[RUNS];
	for (int i = 0; i < RUNS; i++)
		if (one_run(dial, &rps[i], &p50[i], &p99[i]) < 0)
			return -1;
	printf("%-12s %10.0f %9.1f %9.1f\n", name, stats_median(rps, RUNS), stats_median(p50, RUNS),
	       stats_median(p99, RUNS));
	return 0;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	printf("bridge_rpc: host bridge_client <-> guest bridge_conn echo (forked), %zu-byte "
	       "Start request, %zu-byte response, 1 call in flight, %d calls x %d runs (median)\n",
	       sizeof(start_req) - 1, sizeof(start_resp) - 1, CALLS, RUNS);
	printf("%-12s %10s %9s %9s\n", "transport", "rpc/s", "p50_us", "p99_us");
	fflush(stdout);
	if (bench("socketpair", connect_socketpair) < 0 || bench("unix", connect_unix) < 0)
		return 1;
	return 0;
}
