/* Figures for issue 4: how fast a host takes a guest back after every connection was lost.
 * One real ferry-gcs (hybrid vsock over unix sockets) runs N idle UVM processes (`cat`, stdin
 * and stdout over the resume handshake).  Each run cuts every connection of the host client
 * (gcs_client_cut), listens again on the same ports (gcs_client_relisten) and wakes the guest
 * (gcs_client_wake_guest); measured from the wake: the bridge renegotiated (on_reconnect) and
 * every stdio stream re-attached (READY sent on all 2N streams).  N = 1, 10, 100; median of 5
 * runs, printed next to hcsshim's fixed 100 ms re-dial interval (goal: <= 10 ms for 1 process,
 * <= 100 ms for 100).  Run from the source tree root (BUILD selects the build dir). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/process.h"
#include "tests/lib/stats.h"
#include "tests/lib/hostenv.h"

#define RUNS       5
#define MAX_PROCS  100
#define HCSSHIM_MS 100.0

struct bench {
	struct hostenv h; /* loop, tmp dir, client, the agent */
	bool reconnected;
	struct gcs_process *p[MAX_PROCS];
	int np, started;
};

static struct bench B;

static void die(const char *what, const struct err *e)
{
	fprintf(stderr, "bench reconnect: %s: %s\n", what, e ? e->msg : strerror(errno));
	exit(1);
}

static void run_until(const bool *flag, double timeout_s, const char *what)
{
	if (!hostenv_run_until(B.h.loop, flag, timeout_s) && strcmp(what, "-") != 0) {
		fprintf(stderr, "bench reconnect: timeout waiting for %s\n", what);
		exit(1);
	}
}

static long long t_reneg;
static void on_reconnect(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	(void)c;
	(void)ud;
	if (status < 0)
		die("reconnect", e);
	t_reneg = mono_ns();
	B.reconnected = true;
}

static void on_close(struct gcs_client *c, const struct err *why, void *ud)
{
	(void)c;
	(void)ud;
	die("bridge closed", why);
}

static void p_started(struct gcs_process *p, const struct gcs_result *r, void *ud)
{
	(void)p;
	(void)ud;
	if (r->status < 0)
		die("exec", &r->err);
	B.started++;
}

static const struct gcs_process_ops pops = {.on_started = p_started};

/* ev_prepare: after the callbacks of every loop iteration (just before the loop blocks), are
 * all streams back?  Not ev_check: check watchers run right after the poll, before that
 * iteration's I/O callbacks, so a check would only see the streams re-attached on the next
 * wake-up of the loop (which was the 50 ms exit probe's answer). */
static bool all_back;
static long long t_all;
static void on_check(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (all_back || !B.reconnected)
		return;
	for (int i = 0; i < B.np; i++) {
		if (!gcs_process_stdio_attached(B.p[i])) {
			if (getenv("BENCH_DEBUG")) {
				char d[1024];
				gcs_process_describe(B.p[i], d, sizeof(d));
				fprintf(stderr, "%lld not attached: %s\n", mono_ns() / 1000000, d);
			}
			return;
		}
	}
	t_all = mono_ns();
	all_back = true;
}

static void start_procs(int n)
{
	struct err e;
	const char *const argv[] = {"/bin/cat", NULL};
	struct gcs_process_config pc = {.argv = argv,
	                                .stdio = {.want_stdin = true,
	                                          .want_stdout = true,
	                                          .stdin_fd = -1,
	                                          .stdout_fd = -1,
	                                          .stderr_fd = -1}};
	while (B.np < n) {
		B.p[B.np] = gcs_process_start(B.h.c, &pc, &pops, NULL, &e);
		if (!B.p[B.np])
			die("start", &e);
		B.np++;
	}
	while (B.started < n)
		ev_run(B.h.loop, EVRUN_ONCE);
	/* every stream attached before we measure */
	for (int i = 0; i < B.np; i++) {
		bool up = false;
		while (!gcs_process_stdio_attached(B.p[i])) {
			run_until(&up, 0.001, "-");
		}
	}
}

static void one_run(double *reneg_ms, double *all_ms)
{
	struct err e;
	if (gcs_client_cut(B.h.c, &e) < 0 || gcs_client_relisten(B.h.c, &e) < 0)
		die("cut/relisten", &e);
	B.reconnected = false;
	all_back = false;
	long long t0 = mono_ns();
	if (gcs_client_wake_guest(B.h.c, &e) < 0)
		die("wake", &e);
	run_until(&all_back, 10.0, "all streams");
	*reneg_ms = (double)(t_reneg - t0) / 1e6;
	*all_ms = (double)(t_all - t0) / 1e6;
}

int main(void)
{
	struct err e;
	signal(SIGPIPE, SIG_IGN);
	/* the cuts are deliberate: their warnings are noise here unless debugging */
	log_set_level(getenv("BENCH_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	struct gcs_client_ops ops = {.on_close = on_close, .on_reconnect = on_reconnect};
	struct hostenv_config hc = {.prefix = "ferry-brc",
	                            .gcs_log_level =
	                                getenv("BENCH_GCS_LOG") ? getenv("BENCH_GCS_LOG") : "error",
	                            .ops = &ops};
	if (hostenv_start(&B.h, &hc, &e) < 0)
		die("setup", &e);
	if (!gcs_client_stdio_resume(B.h.c))
		die("FerryStdioResume not negotiated", NULL);
	ev_prepare chk;
	ev_prepare_init(&chk, on_check);
	ev_prepare_start(B.h.loop, &chk);

	printf("reconnect after a cut + wake (hybrid vsock, ferry-gcs, idle `cat` processes with "
	       "stdin+stdout, median of %d)\n",
	       RUNS);
	printf("%-10s %-8s %18s %22s %16s %8s\n", "processes", "streams", "bridge renegotiated",
	       "all stdio re-attached", "hcsshim re-dial", "goal");
	static const int ns[] = {1, 10, 100};
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		long long ts = mono_ns();
		start_procs(ns[k]);
		if (getenv("BENCH_DEBUG"))
			fprintf(stderr, "start %d: %.1f s\n", ns[k],
			        (double)(mono_ns() - ts) / 1e9);
		double rn[RUNS], al[RUNS];
		ts = mono_ns();
		for (int r = 0; r < RUNS; r++)
			one_run(&rn[r], &al[r]);
		if (getenv("BENCH_DEBUG"))
			fprintf(stderr, "runs: %.1f s\n", (double)(mono_ns() - ts) / 1e9);
		double goal = ns[k] == 1 ? 10.0 : ns[k] == 100 ? 100.0 : 0;
		char g[32] = "-";
		if (goal > 0)
			snprintf(g, sizeof(g), "%.0f ms", goal);
		printf("%-10d %-8d %15.2f ms %19.2f ms %13.0f ms %8s%s\n", ns[k], 2 * ns[k],
		       stats_median(rn, RUNS), stats_median(al, RUNS), HCSSHIM_MS, g,
		       goal > 0 && stats_median(al, RUNS) > goal ? "  (missed)" : "");
		fflush(stdout);
	}
	ev_prepare_stop(B.h.loop, &chk);
	hostenv_stop(&B.h);
	return 0;
}
