/* Figures for issues 4 and 7: how fast a host takes a guest back after every connection was
 * lost, and what the session (issue 7: the bridge proof, the HELLO proofs, the wake challenge)
 * costs.  Two real ferry-gcs agents (hybrid vsock over unix sockets) run N idle UVM processes
 * each (`cat`, stdin and stdout over the resume handshake); one host client has a session, the
 * other is configured without (no_session_auth: no proofs at all).  Each run cuts every
 * connection of a client (gcs_client_cut) and listens again on the same ports
 * (gcs_client_relisten); the guest sees its connections close and re-dials.  Measured from the
 * relisten: the bridge renegotiated (on_reconnect) and every stdio stream re-attached (READY
 * sent on all 2N streams).  The runs of the two clients alternate, so the ratio compares like
 * with like (goal: the session costs at most 10%).  A third row per N is the session's full
 * path as a migration destination takes it, with the authenticated wake (challenge and proof),
 * measured from the wake.  N = 1, 10, 100; median of RUNS runs; hcsshim re-dials every 100 ms.
 * Run from the source tree root (BUILD selects the build dir). */
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
#include "tests/lib/hostenv.h"
#include "tests/lib/stats.h"

#define RUNS       9
#define MAX_PROCS  100
#define HCSSHIM_MS 100.0

struct variant {
	const char *name;
	bool auth;
	struct hostenv h; /* loop, tmp dir, client, the agent */
	bool reconnected;
	long long t_reneg, t_all;
	bool all_back;
	struct gcs_process *p[MAX_PROCS];
	int np, started;
	ev_prepare chk;
};

static void die(const char *what, const struct err *e)
{
	fprintf(stderr, "bench reconnect: %s: %s\n", what, e ? e->msg : strerror(errno));
	exit(1);
}

static void on_reconnect(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	struct variant *v = ud;
	(void)c;
	if (status < 0)
		die("reconnect", e);
	v->t_reneg = mono_ns();
	v->reconnected = true;
}

static void on_close(struct gcs_client *c, const struct err *why, void *ud)
{
	(void)c;
	(void)ud;
	die("bridge closed", why);
}

static void p_started(struct gcs_process *p, const struct gcs_result *r, void *ud)
{
	struct variant *v = ud;
	(void)p;
	if (r->status < 0)
		die("exec", &r->err);
	v->started++;
}

static const struct gcs_process_ops pops = {.on_started = p_started};

/* ev_prepare: after the callbacks of every loop iteration (just before the loop blocks), are
 * all streams back?  Not ev_check: check watchers run right after the poll, before that
 * iteration's I/O callbacks, so a check would only see the streams re-attached on the next
 * wake-up of the loop. */
static void on_check(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct variant *v = w->data;
	(void)revents;
	if (v->all_back || !v->reconnected)
		return;
	for (int i = 0; i < v->np; i++) {
		if (!gcs_process_stdio_attached(v->p[i])) {
			if (getenv("BENCH_DEBUG")) {
				char d[1024];
				gcs_process_describe(v->p[i], d, sizeof(d));
				fprintf(stderr, "%s: %lld not attached: %s\n", v->name,
				        mono_ns() / 1000000, d);
			}
			return;
		}
	}
	v->t_all = mono_ns();
	v->all_back = true;
	ev_break(loop, EVBREAK_ONE); /* do not block for the next event: the run is over */
}

static void start_env(struct variant *v)
{
	struct err e;
	struct gcs_client_ops ops = {.on_close = on_close, .on_reconnect = on_reconnect};
	struct hostenv_config hc = {.prefix = "ferry-brc",
	                            .gcs_log_level =
	                                getenv("BENCH_GCS_LOG") ? getenv("BENCH_GCS_LOG") : "error",
	                            .ops = &ops,
	                            .ud = v,
	                            .no_session_auth = !v->auth};
	if (hostenv_start(&v->h, &hc, &e) < 0)
		die("setup", &e);
	if (!gcs_client_stdio_resume(v->h.c))
		die("FerryStdioResume not negotiated", NULL);
	ev_prepare_init(&v->chk, on_check);
	v->chk.data = v;
	ev_prepare_start(v->h.loop, &v->chk);
}

static void start_procs(struct variant *v, int n)
{
	struct err e;
	const char *const argv[] = {"/bin/cat", NULL};
	struct gcs_process_config pc = {.argv = argv,
	                                .stdio = {.want_stdin = true,
	                                          .want_stdout = true,
	                                          .stdin_fd = -1,
	                                          .stdout_fd = -1,
	                                          .stderr_fd = -1}};
	while (v->np < n) {
		v->p[v->np] = gcs_process_start(v->h.c, &pc, &pops, v, &e);
		if (!v->p[v->np])
			die("start", &e);
		v->np++;
	}
	while (v->started < n)
		ev_run(v->h.loop, EVRUN_ONCE);
	for (int i = 0; i < v->np; i++) {
		bool never = false;
		while (!gcs_process_stdio_attached(v->p[i]))
			hostenv_run_until(v->h.loop, &never, 0.001);
	}
}

/* One cut and take-back; with `wake`, measured from the wake (the destination's path). */
static void one_run(struct variant *v, bool wake, double *reneg_ms, double *all_ms, double *wake_ms)
{
	struct err e;
	if (gcs_client_cut(v->h.c, &e) < 0 || gcs_client_relisten(v->h.c, &e) < 0)
		die("cut/relisten", &e);
	v->reconnected = v->all_back = false;
	long long t0 = mono_ns();
	if (wake) {
		if (gcs_client_wake_guest(v->h.c, &e) < 0)
			die("wake", &e);
		*wake_ms = (double)(mono_ns() - t0) / 1e6;
	}
	if (!hostenv_run_until(v->h.loop, &v->all_back, 10.0))
		die("timeout waiting for every stream", NULL);
	*reneg_ms = (double)(v->t_reneg - t0) / 1e6;
	*all_ms = (double)(v->t_all - t0) / 1e6;
	if (getenv("BENCH_DEBUG"))
		fprintf(stderr, "%s%s: reneg %.2f ms, all %.2f ms (total %.1f ms)\n", v->name,
		        wake ? " + wake" : "", *reneg_ms, *all_ms, (double)(mono_ns() - t0) / 1e6);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	/* the cuts are deliberate: their warnings are noise here unless debugging */
	log_set_level(getenv("BENCH_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	static struct variant plain = {.name = "no session", .auth = false};
	static struct variant auth = {.name = "session", .auth = true};
	start_env(&plain);
	start_env(&auth);

	printf("reconnect after every connection was cut (hybrid vsock, ferry-gcs, idle `cat` "
	       "processes with stdin+stdout, median of %d alternating runs)\n",
	       RUNS);
	printf("%-9s %-7s %-34s %-34s %s\n", "", "", "bridge renegotiated (ms)",
	       "all stdio re-attached (ms)", "");
	printf("%-9s %-7s %10s %10s %7s   %10s %10s %7s   %s\n", "processes", "streams",
	       "no session", "session", "ratio", "no session", "session", "ratio", "goal");
	static const int ns[] = {1, 10, 100};
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		start_procs(&plain, ns[k]);
		start_procs(&auth, ns[k]);
		double rn[2][RUNS], al[2][RUNS], wr[RUNS], wa[RUNS], wk[RUNS], x;
		for (int r = 0; r < RUNS; r++) {
			one_run(&plain, false, &rn[0][r], &al[0][r], &x);
			one_run(&auth, false, &rn[1][r], &al[1][r], &x);
			one_run(&auth, true, &wr[r], &wa[r], &wk[r]);
		}
		double r0 = stats_median(rn[0], RUNS), r1 = stats_median(rn[1], RUNS);
		double a0 = stats_median(al[0], RUNS), a1 = stats_median(al[1], RUNS);
		double goal = ns[k] == 1 ? 10.0 : ns[k] == 100 ? 100.0 : 0;
		char g[48] = "-";
		if (goal > 0)
			snprintf(g, sizeof(g), "<= %.0f ms; hcsshim %.0f ms", goal, HCSSHIM_MS);
		printf("%-9d %-7d %10.2f %10.2f %7.2f   %10.2f %10.2f %7.2f   %s\n", ns[k],
		       2 * ns[k], r0, r1, r1 / r0, a0, a1, a1 / a0, g);
		printf("%-9s %-7s %10s %10.2f %7s   %10s %10.2f %7s   (session, with the wake: "
		       "%.2f ms of challenge and proof)\n",
		       "", "", "", stats_median(wr, RUNS), "", "", stats_median(wa, RUNS), "",
		       stats_median(wk, RUNS));
		fflush(stdout);
	}
	ev_prepare_stop(plain.h.loop, &plain.chk);
	ev_prepare_stop(auth.h.loop, &auth.chk);
	hostenv_stop(&plain.h);
	hostenv_stop(&auth.h);
	return 0;
}
