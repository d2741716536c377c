/* Benchmark of the Migration service's session controller itself (host/shim/migration,
 * mig_notify, dupsock), with a sandbox that answers at once (tests/lib/fake_sandbox), so the
 * figures are the controller's own cost, not the VMM's:
 *   - a whole source session (PrepareAndExport, CreateDuplicateSocket, Transfer, Finalize,
 *     Cleanup) per call, next to one bare loop round trip (a zero-delay timer: the least any
 *     asynchronous call costs on the loop);
 *   - the destination's bookkeeping for 1, 10, 100 and 1000 containers (ImportSandbox, one
 *     patch per container, PrepareSandbox), per container;
 *   - notification fan-out: 1000 notifications to 64 subscribers, per delivery, next to a
 *     direct function call per delivery;
 *   - CreateDuplicateSocket's socket take (pidfd_open, /proc, pidfd_getfd, checks) next to a
 *     plain dup(2).
 * Medians of FERRY_BENCH_RUNS runs (default 5). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fdio.h"
#include "common/xalloc.h"
#include "tests/lib/fake_sandbox.h"
#include "tests/lib/stats.h"

static size_t runs(void)
{
	const char *s = getenv("FERRY_BENCH_RUNS");
	long v = s ? strtol(s, NULL, 10) : 0;
	return v > 0 && v < 100 ? (size_t)v : 5;
}

static struct mt *fixture(void)
{
	void *state;
	mt_setup(&state);
	return state;
}

static void fixture_free(struct mt *t)
{
	void *state = t;
	mt_teardown(&state);
}

static void must(enum mig_code c, const struct mt *t)
{
	if (c != MIG_CODE_OK) {
		fprintf(stderr, "bench: call failed: %s\n", t->st.msg);
		exit(1);
	}
}

/* ---- a source session ---- */

#define SESSIONS 300

static double source_session_us(void)
{
	struct mt *t = fixture();
	long long t0 = mono_ns();
	for (int i = 0; i < SESSIONS; i++) {
		must(mt_prepare_export(t, "s"), t);
		must(mt_register_pair(t, "s"), t);
		must(mt_transfer(t, "s", 0), t);
		mt_wait_state(t, MIG_STATE_TRANSFER_COMPLETED);
		must(mt_finalize(t, "s", MIG_FINALIZE_STOP), t);
		must(mt_cleanup(t, "s"), t);
	}
	double us = (double)(mono_ns() - t0) / 1e3 / SESSIONS;
	fixture_free(t);
	return us;
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	(*(int *)w->data)++;
}

/* One zero-delay timer, fired and waited for like a call's completion. */
static double loop_round_trip_us(void)
{
	struct evtest ev;
	evtest_init(&ev, 60.);
	ev_timer tm;
	int fired = 0;
	ev_timer_init(&tm, on_tick, 0., 0.);
	tm.data = &fired;
	const int n = 20000;
	long long t0 = mono_ns();
	for (int i = 0; i < n; i++) {
		ev_timer_set(&tm, 0., 0.);
		ev_timer_start(ev.loop, &tm);
		EVTEST_SPIN(&ev, fired == i + 1);
	}
	double us = (double)(mono_ns() - t0) / 1e3 / n;
	evtest_fini(&ev);
	return us;
}

/* ---- the destination's bookkeeping ---- */

static double dest_us_per_container(size_t n)
{
	struct mt *t = fixture();
	char **ids = calloc(n + 1, sizeof(*ids)), **pods = calloc(n + 1, sizeof(*pods));
	char **news = calloc(n + 1, sizeof(*news));
	for (size_t i = 0; i <= n; i++) {
		ids[i] = i == 0 ? xstrdup("pod") : xasprintf("ctr-%zu", i);
		pods[i] = xstrdup("pod");
		news[i] = xasprintf("dst-%zu", i);
	}
	fake_sb_containers(&t->sb, (const char *const *)ids, (const char *const *)pods, n + 1);
	t->sb.vm_state = MIGRATION_VM_NOT_CREATED;
	long long t0 = mono_ns();
	must(mt_import(t, "s", "sandbox", MIGRATION_ENVELOPE_TYPE_URL), t);
	for (size_t i = 0; i <= n; i++)
		must(mt_patch_simple(t, news[i], ids[i], NULL), t);
	must(mt_prepare_dest(t, "s"), t);
	double us = (double)(mono_ns() - t0) / 1e3 / (double)(n + 1);
	fixture_free(t);
	for (size_t i = 0; i <= n; i++) {
		free(ids[i]);
		free(pods[i]);
		free(news[i]);
	}
	free(ids);
	free(pods);
	free(news);
	return us;
}

/* ---- notification fan-out ---- */

#define SUBS   64
#define EVENTS 1000

static size_t delivered;

static int count(struct mig_notify_sub *s, const struct mig_notify_msg *m, void *ud)
{
	(void)s;
	(void)ud;
	delivered += m->message_id != 0;
	return 0;
}

static double fanout_ns(void)
{
	struct evtest ev;
	evtest_init(&ev, 60.);
	struct mig_notify *n = mig_notify_new(ev.loop, VMM_ORIGIN_SOURCE, EVENTS);
	static const struct mig_notify_sub_ops ops = {count, NULL};
	struct mig_notify_sub *subs[SUBS];
	struct err e;
	for (int i = 0; i < SUBS; i++)
		subs[i] = mig_notify_subscribe(n, &ops, NULL, &e);
	delivered = 0;
	struct vmm_notification v = {.phase = VMM_PHASE_TRANSFER_IN_PROGRESS};
	long long t0 = mono_ns();
	for (int i = 0; i < EVENTS; i++)
		mig_notify_append(n, &v);
	EVTEST_SPIN(&ev, delivered == (size_t)SUBS * EVENTS);
	double ns = (double)(mono_ns() - t0) / ((double)SUBS * EVENTS);
	for (int i = 0; i < SUBS; i++)
		mig_notify_unsubscribe(subs[i]);
	mig_notify_free(n);
	evtest_fini(&ev);
	return ns;
}

/* the same deliveries as direct calls through a function pointer */
static double direct_ns(void)
{
	static struct mig_notify_msg log[EVENTS];
	int (*volatile fn)(struct mig_notify_sub *, const struct mig_notify_msg *, void *) = count;
	for (int i = 0; i < EVENTS; i++)
		log[i].message_id = (uint32_t)i + 1;
	delivered = 0;
	long long t0 = mono_ns();
	for (int s = 0; s < SUBS; s++)
		for (int i = 0; i < EVENTS; i++)
			fn(NULL, &log[i], NULL);
	return (double)(mono_ns() - t0) / ((double)SUBS * EVENTS);
}

/* ---- the socket take ---- */

#define TAKES 2000

static double take_us(bool plain_dup)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		exit(1);
	struct dupsock_info info = {.pid = (uint32_t)getpid(), .fd = (uint32_t)sv[0]};
	struct err e;
	long long t0 = mono_ns();
	for (int i = 0; i < TAKES; i++) {
		int fd = plain_dup ? dup(sv[0]) : dupsock_take(&info, NULL, &e);
		if (fd < 0) {
			fprintf(stderr, "bench: take: %s\n", e.msg);
			exit(1);
		}
		close(fd);
	}
	double us = (double)(mono_ns() - t0) / 1e3 / TAKES;
	close(sv[0]);
	close(sv[1]);
	return us;
}

static double take_dupsock_us(void)
{
	return take_us(false);
}

static double take_dup_us(void)
{
	return take_us(true);
}

/* The medians of r interleaved runs of a measurement and its baseline. */
static void medians(size_t r, double (*fa)(void), double (*fb)(void), double *ma, double *mb)
{
	double *a = calloc(r, sizeof(double)), *b = calloc(r, sizeof(double));
	for (size_t i = 0; i < r; i++) {
		a[i] = fa();
		b[i] = fb();
	}
	*ma = stats_median(a, r);
	*mb = stats_median(b, r);
	free(a);
	free(b);
}

int main(void)
{
	size_t r = runs();
	double sess, rt, fo, dc, tk, dp;
	medians(r, source_session_us, loop_round_trip_us, &sess, &rt);
	printf("source session (6 calls, instant sandbox): %.1f us, %.2f us/call; bare loop round "
	       "trip %.2f us; ratio per call %.1f\n",
	       sess, sess / 6, rt, sess / 6 / rt);
	static const size_t sizes[] = {1, 10, 100, 1000};
	double *a = calloc(r, sizeof(double));
	for (size_t k = 0; k < 4; k++) {
		for (size_t i = 0; i < r; i++)
			a[i] = dest_us_per_container(sizes[k]);
		printf(
		    "destination bookkeeping, %4zu containers (+ sandbox container): %.2f us per "
		    "container (import + patch + prepare)\n",
		    sizes[k], stats_median(a, r));
	}
	free(a);
	medians(r, fanout_ns, direct_ns, &fo, &dc);
	printf("notification fan-out, %d events x %d subscribers: %.1f ns per delivery; direct "
	       "call %.1f ns; ratio %.1f\n",
	       EVENTS, SUBS, fo, dc, fo / dc);
	medians(r, take_dupsock_us, take_dup_us, &tk, &dp);
	printf("CreateDuplicateSocket take (pidfd + /proc + checks): %.2f us; dup(2) %.2f us; "
	       "ratio %.0f\n",
	       tk, dp, tk / dp);
	return 0;
}
