/* Unit tests for the task event publisher (host/shim/events.c) and its order rules
 * (events_order.c), against a fake containerd Events service built with ferry's ttrpc server
 * (tests/lib/fake_events): topics and type URLs, envelopes, order with one Forward in flight,
 * retries while the server is missing, failing, restarted or too slow, permanent refusals,
 * the queue bounds and congestion, the peer check on containerd's socket, local subscribers
 * (replay, missed counts, pause, callbacks that unsubscribe or free), flush, and publishing
 * errors. */
#include <errno.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "host/shim/events.h"
#include "host/shim/events_order.h"
#include "tests/lib/evpub.h"
#include "tests/lib/evtest.h"
#include "tests/lib/fake_events.h"
#include "ttrpc/status.h"

struct env {
	struct evtest ev;
	struct fake_events fake;
	char dir[64];
	char path[96];
	struct events_publisher *p;
	FILE *null;
};

static int setup(void **state)
{
	struct env *env = xcalloc(1, sizeof(*env));
	evtest_init(&env->ev, 60);
	snprintf(env->dir, sizeof(env->dir), "/tmp/ferry-events.XXXXXX");
	assert_non_null(mkdtemp(env->dir));
	snprintf(env->path, sizeof(env->path), "%s/ctrd.sock", env->dir);
	fake_events_init(&env->fake, env->ev.loop, env->path);
	/* Retries, refusals and violations are logged, and expected here. */
	env->null = fopen("/dev/null", "w");
	log_set_file(env->null);
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;
	events_publisher_free(env->p);
	fake_events_fini(&env->fake);
	evtest_fini(&env->ev);
	rmdir(env->dir);
	log_set_file(NULL);
	fclose(env->null);
	free(env);
	return 0;
}

static struct events_publisher *publisher(struct env *env, const struct events_opts *extra)
{
	struct events_opts o = extra ? *extra : (struct events_opts){0};
	if (!o.namespace_)
		o.namespace_ = "default";
	struct err e;
	env->p = events_publisher_new(env->ev.loop, &o, &e);
	if (!env->p)
		fail_msg("%s", e.msg);
	return env->p;
}

/* ---- publishing helpers: one per event shape ---- */

static void pub(struct events_publisher *p, const ProtobufCMessage *m)
{
	struct err e;
	if (events_publish(p, m, NULL, &e) < 0)
		fail_msg("%s", e.msg);
}

static void pub_create(struct events_publisher *p, const char *cid, uint32_t pid)
{
	Containerd__Events__TaskCreate m = CONTAINERD__EVENTS__TASK_CREATE__INIT;
	m.container_id = (char *)cid;
	m.bundle = "/run/b";
	m.pid = pid;
	pub(p, &m.base);
}

static void pub_start(struct events_publisher *p, const char *cid, uint32_t pid)
{
	Containerd__Events__TaskStart m = CONTAINERD__EVENTS__TASK_START__INIT;
	m.container_id = (char *)cid;
	m.pid = pid;
	pub(p, &m.base);
}

static void pub_exec(struct events_publisher *p, int started, const char *cid, const char *eid)
{
	if (started) {
		Containerd__Events__TaskExecStarted m = CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
		m.container_id = (char *)cid;
		m.exec_id = (char *)eid;
		m.pid = 7;
		pub(p, &m.base);
	} else {
		Containerd__Events__TaskExecAdded m = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
		m.container_id = (char *)cid;
		m.exec_id = (char *)eid;
		pub(p, &m.base);
	}
}

/* A whole life: create, start, exit (code), delete: 4 events, in order. */
static void pub_life(struct events_publisher *p, const char *cid, uint32_t code)
{
	struct err e;
	if (evpub_life(p, cid, code, &e) < 0)
		fail_msg("%s", e.msg);
}

/* The fake received the lives of cids[0..n) with exit codes 0..n-1 in publish order. */
static void assert_lives(const struct fake_events *f, size_t from, const char *prefix, size_t n)
{
	static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit",
	                                     "/tasks/delete"};
	assert_true(f->n >= from + 4 * n);
	for (size_t i = 0; i < n; i++) {
		char cid[32];
		snprintf(cid, sizeof(cid), "%s%zu", prefix, i);
		for (int k = 0; k < 4; k++) {
			const struct fake_events_rec *r = &f->recs[from + 4 * i + (size_t)k];
			if (strcmp(r->cid, cid) != 0 || strcmp(r->topic, topics[k]) != 0)
				fail_msg("record %zu: %s %s, want %s %s", from + 4 * i + (size_t)k,
				         r->topic, r->cid, topics[k], cid);
			if (k == 2)
				assert_int_equal(r->exit_status, i);
		}
	}
}

static void pub_lives(struct events_publisher *p, const char *prefix, int n)
{
	struct err e;
	if (evpub_lives(p, prefix, n, &e) < 0)
		fail_msg("%s", e.msg);
}

static size_t pending_of(struct events_publisher *p)
{
	struct events_stats st;
	events_stats(p, &st);
	return st.pending;
}

/* ---- tests ---- */

static void test_type_table(void **state)
{
	(void)state;
	static const char *const want[EVENTS_N_TYPES][2] = {
	    {"/tasks/create", "containerd.events.TaskCreate"},
	    {"/tasks/start", "containerd.events.TaskStart"},
	    {"/tasks/delete", "containerd.events.TaskDelete"},
	    {"/tasks/exit", "containerd.events.TaskExit"},
	    {"/tasks/oom", "containerd.events.TaskOOM"},
	    {"/tasks/exec-added", "containerd.events.TaskExecAdded"},
	    {"/tasks/exec-started", "containerd.events.TaskExecStarted"},
	    {"/tasks/paused", "containerd.events.TaskPaused"},
	    {"/tasks/resumed", "containerd.events.TaskResumed"},
	    {"/tasks/checkpointed", "containerd.events.TaskCheckpointed"},
	};
	for (int t = 0; t < EVENTS_N_TYPES; t++) {
		assert_string_equal(events_topic((enum events_type)t), want[t][0]);
		assert_string_equal(events_type_url((enum events_type)t), want[t][1]);
		assert_int_equal(events_type_of(events_descriptor((enum events_type)t)), t);
	}
	assert_int_equal(events_type_of(&containerd__events__task_io__descriptor), -1);
	assert_null(events_topic(EVENTS_N_TYPES));
}

static void test_identifiers(void **state)
{
	(void)state;
	assert_true(events_valid_identifier("default"));
	assert_true(events_valid_identifier("k8s.io"));
	assert_true(events_valid_identifier("a-b_c.d9"));
	assert_true(events_valid_identifier("A"));
	assert_false(events_valid_identifier(""));
	assert_false(events_valid_identifier("-a"));
	assert_false(events_valid_identifier("a-"));
	assert_false(events_valid_identifier("a..b"));
	assert_false(events_valid_identifier("a/b"));
	assert_false(events_valid_identifier("a b"));
	char s[80];
	memset(s, 'x', 76);
	s[76] = '\0';
	assert_true(events_valid_identifier(s));
	s[76] = 'x';
	s[77] = '\0';
	assert_false(events_valid_identifier(s));

	struct err e;
	struct ev_loop *loop = ev_loop_new(0);
	struct events_opts o = {.namespace_ = "bad/ns"};
	assert_null(events_publisher_new(loop, &o, &e));
	assert_int_equal(e.code, -EINVAL);
	o.namespace_ = NULL;
	assert_null(events_publisher_new(loop, &o, &e));
	o.namespace_ = "ok";
	char longpath[200];
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	o.address = longpath;
	assert_null(events_publisher_new(loop, &o, &e));
	assert_int_equal(e.code, -EINVAL);
	ev_loop_destroy(loop);
}

static void test_order_rules(void **state)
{
	(void)state;
	struct events_order *o = events_order_new();
	struct err e;
	/* Good lives, with execs, shortcuts and a reused id after delete. */
	assert_int_equal(events_order_apply(o, EVENTS_TASK_CREATE, "c1", NULL, &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_START, "c1", NULL, &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXEC_ADDED, "c1", "e1", &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXEC_STARTED, "c1", "e1", &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_OOM, "c1", NULL, &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXIT, "c1", "e1", &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_DELETE, "c1", "e1", &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXEC_ADDED, "c1", "e2", &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXIT, "c1", "e2", &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXIT, "c1", "c1", &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_DELETE, "c1", "", &e), 0);
	assert_int_equal(events_order_tracked(o), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_CREATE, "c1", NULL, &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_DELETE, "c1", NULL, &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_CREATE, "c2", NULL, &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXIT, "c2", "", &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_DELETE, "c2", "c2", &e), 0);
	assert_int_equal(events_order_tracked(o), 0);

	/* Broken rules, each reported with its words. */
	assert_int_equal(events_order_apply(o, EVENTS_TASK_START, "c3", NULL, &e), -EPROTO);
	assert_string_equal(e.msg, "container c3: TaskStart while the task is none");
	assert_int_equal(events_order_apply(o, EVENTS_TASK_CREATE, "c3", NULL, &e), -EPROTO);
	assert_string_equal(e.msg, "container c3: TaskCreate while the task is started");
	assert_int_equal(events_order_apply(o, EVENTS_TASK_START, "c3", NULL, &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_DELETE, "c3", NULL, &e), -EPROTO);
	assert_string_equal(e.msg, "container c3: TaskDelete while the task is started");
	assert_int_equal(events_order_tracked(o), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_CREATE, "c4", NULL, &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXEC_STARTED, "c4", "e1", &e), -EPROTO);
	assert_string_equal(e.msg, "container c4 exec e1: TaskExecStarted while the exec is none");
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXEC_ADDED, "c4", "e1", &e), -EPROTO);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXEC_ADDED, "c4", "", &e), -EPROTO);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXIT, "c4", "c4", &e), 0);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXIT, "c4", "c4", &e), -EPROTO);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXEC_ADDED, "c4", "e9", &e), -EPROTO);
	assert_string_equal(e.msg, "container c4: TaskExecAdded while the task is exited");
	assert_int_equal(events_order_apply(o, EVENTS_TASK_PAUSED, "c5", NULL, &e), -EPROTO);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_EXIT, "c6", "e1", &e), -EPROTO);
	assert_int_equal(events_order_apply(o, EVENTS_TASK_RESUMED, "c4", NULL, &e), 0);
	events_order_forget(o, "c4");
	events_order_forget(o, "nope");
	assert_int_equal(events_order_apply(o, EVENTS_TASK_START, "c4", NULL, &e), -EPROTO);
	/* Many containers: the table grows and keeps them apart. */
	for (int i = 0; i < 1000; i++) {
		char id[16];
		snprintf(id, sizeof(id), "m%d", i);
		assert_int_equal(events_order_apply(o, EVENTS_TASK_CREATE, id, NULL, &e), 0);
	}
	for (int i = 0; i < 1000; i++) {
		char id[16];
		snprintf(id, sizeof(id), "m%d", i);
		assert_int_equal(events_order_apply(o, EVENTS_TASK_START, id, NULL, &e), 0);
	}
	assert_int_equal(events_order_tracked(o), 1001);
	events_order_free(o);
}

/* 300 events of 75 containers arrive in publish order, one call in flight at a time, each
 * envelope stamped with the namespace, topic, type URL and the publish time. */
static void test_forward_in_order(void **state)
{
	struct env *env = *state;
	fake_events_start(&env->fake);
	env->fake.delay_s = 0.001;
	struct events_opts o = {.namespace_ = "ferry-test", .address = env->path};
	struct events_publisher *p = publisher(env, &o);
	struct timespec before;
	clock_gettime(CLOCK_REALTIME, &before);
	pub_lives(p, "c", 75);
	EVTEST_SPIN(&env->ev, pending_of(p) == 0);
	assert_int_equal(env->fake.n, 300);
	assert_lives(&env->fake, 0, "c", 75);
	assert_int_equal(env->fake.max_in_flight, 1);
	const struct fake_events_rec *r = &env->fake.recs[2];
	assert_string_equal(r->ns, "ferry-test");
	assert_string_equal(r->type_url, "containerd.events.TaskExit");
	assert_string_equal(r->id, "c0");
	assert_true(r->sec >= before.tv_sec && r->sec <= before.tv_sec + 60);
	assert_string_equal(env->fake.recs[0].type_url, "containerd.events.TaskCreate");
	assert_int_equal(env->fake.recs[0].pid, 100);
	struct events_stats st;
	events_stats(p, &st);
	assert_int_equal(st.published, 300);
	assert_int_equal(st.forwarded, 300);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.order_violations, 0);
	assert_int_equal(st.tracked, 0);
	assert_true(st.connected);
}

/* No socket yet: events wait, retried with back-off, and all arrive once it appears. */
static void test_server_appears_later(void **state)
{
	struct env *env = *state;
	struct events_opts o = {
	    .address = env->path, .backoff_min_s = 0.005, .backoff_max_s = 0.05};
	struct events_publisher *p = publisher(env, &o);
	pub_lives(p, "w", 10);
	evtest_run_for(&env->ev, 0.2);
	struct events_stats st;
	events_stats(p, &st);
	assert_int_equal(st.pending, 40);
	assert_true(st.connect_failures >= 2);
	assert_int_equal(st.connects, 0);
	assert_false(st.connected);
	fake_events_start(&env->fake);
	EVTEST_SPIN(&env->ev, env->fake.n == 40);
	assert_lives(&env->fake, 0, "w", 10);
	EVTEST_SPIN(&env->ev, pending_of(p) == 0);
}

/* containerd restarts: the connection breaks, events published meanwhile wait, the
 * publisher reconnects to the new server and nothing is lost or reordered. */
static void test_server_restart(void **state)
{
	struct env *env = *state;
	fake_events_start(&env->fake);
	struct events_opts o = {
	    .address = env->path, .backoff_min_s = 0.005, .backoff_max_s = 0.05};
	struct events_publisher *p = publisher(env, &o);
	pub_lives(p, "a", 5);
	EVTEST_SPIN(&env->ev, env->fake.n == 20);
	for (int round = 0; round < 3; round++) {
		fake_events_stop(&env->fake);
		char prefix[16];
		snprintf(prefix, sizeof(prefix), "r%d-", round);
		pub_lives(p, prefix, 5);
		evtest_run_for(&env->ev, 0.1);
		assert_int_equal(pending_of(p), 20);
		fake_events_start(&env->fake);
		size_t want = 20 + 20 * (size_t)(round + 1);
		EVTEST_SPIN(&env->ev, env->fake.n == want);
		assert_lives(&env->fake, want - 20, prefix, 5);
	}
	assert_lives(&env->fake, 0, "a", 5);
	EVTEST_SPIN(&env->ev, pending_of(p) == 0);
	struct events_stats st;
	events_stats(p, &st);
	assert_int_equal(st.forwarded, 80);
	assert_int_equal(st.connects, 4);
	assert_int_equal(env->fake.n, 80); /* idle when stopped: nothing twice */
}

/* Transient failures are retried (same event, still first); a permanent refusal skips only
 * that event. */
static void test_server_errors(void **state)
{
	struct env *env = *state;
	fake_events_start(&env->fake);
	env->fake.fail_count = 3;
	env->fake.fail_code = TTRPC_UNAVAILABLE;
	struct events_opts o = {.address = env->path, .backoff_min_s = 0.002};
	struct events_publisher *p = publisher(env, &o);
	pub_lives(p, "t", 2);
	EVTEST_SPIN(&env->ev, env->fake.n == 8);
	assert_lives(&env->fake, 0, "t", 2);
	struct events_stats st;
	events_stats(p, &st);
	assert_int_equal(st.resent, 3);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(env->fake.calls, 11);

	env->fake.fail_count = 1;
	env->fake.fail_code = TTRPC_INVALID_ARGUMENT;
	pub_lives(p, "u", 2);
	EVTEST_SPIN(&env->ev, pending_of(p) == 0);
	events_stats(p, &st);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(env->fake.n, 8 + 7);
	assert_string_equal(env->fake.recs[8].topic, "/tasks/start"); /* u0's create refused */
	assert_string_equal(env->fake.recs[8].cid, "u0");
	assert_string_equal(env->fake.recs[14].topic, "/tasks/delete");
	assert_string_equal(env->fake.recs[14].cid, "u1");
}

/* A containerd that does not answer within the call timeout: the event is sent again on a
 * new connection (at least once), and later events still follow it in order. */
static void test_slow_server_resend(void **state)
{
	struct env *env = *state;
	fake_events_start(&env->fake);
	env->fake.hold = true;
	struct events_opts o = {
	    .address = env->path, .call_timeout_s = 0.1, .backoff_min_s = 0.002};
	struct events_publisher *p = publisher(env, &o);
	pub_life(p, "s0", 0);
	EVTEST_SPIN(&env->ev, env->fake.calls == 2); /* the first call timed out and was resent */
	env->fake.hold = false;
	EVTEST_SPIN(&env->ev, pending_of(p) == 0);
	/* The held calls were dropped with their connections: the retry delivered it once. */
	assert_lives(&env->fake, 0, "s", 1);
	assert_int_equal(env->fake.n, 4);
	struct events_stats st;
	events_stats(p, &st);
	assert_true(st.resent >= 1);
}

/* The bounds: max_pending events, max_pending_bytes bytes; congestion at three quarters;
 * refusals counted and queued nothing; all flows again once containerd is there. */
static void test_queue_bounds(void **state)
{
	struct env *env = *state;
	struct events_opts o = {
	    .address = env->path, .max_pending = 8, .backoff_min_s = 0.01, .backoff_max_s = 0.01};
	struct events_publisher *p = publisher(env, &o);
	struct err e;
	for (int i = 0; i < 8; i++) {
		char cid[16];
		snprintf(cid, sizeof(cid), "q%d", i);
		assert_int_equal(events_congested(p), i > 6);
		pub_create(p, cid, 1);
	}
	assert_true(events_congested(p));
	Containerd__Events__TaskOOM oom = CONTAINERD__EVENTS__TASK_OOM__INIT;
	oom.container_id = "q0";
	assert_int_equal(events_publish(p, &oom.base, NULL, &e), -ENOBUFS);
	struct events_stats st;
	events_stats(p, &st);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.published, 8);
	assert_int_equal(st.max_pending_seen, 8);
	fake_events_start(&env->fake);
	EVTEST_SPIN(&env->ev, pending_of(p) == 0);
	assert_false(events_congested(p));
	assert_int_equal(events_publish(p, &oom.base, NULL, &e), 0);
	EVTEST_SPIN(&env->ev, env->fake.n == 9);
	assert_string_equal(env->fake.recs[8].topic, "/tasks/oom");
	events_publisher_free(p);

	/* Bytes: a rootfs with long options fills a 2 KiB budget after a few events. */
	o.max_pending = 0;
	o.max_pending_bytes = 2048;
	fake_events_stop(&env->fake);
	p = publisher(env, &o);
	Containerd__Types__Mount mnt = CONTAINERD__TYPES__MOUNT__INIT;
	char opt[600];
	memset(opt, 'o', sizeof(opt) - 1);
	opt[sizeof(opt) - 1] = '\0';
	char *opts[] = {opt};
	Containerd__Types__Mount *mounts[] = {&mnt};
	mnt.type = "overlay";
	mnt.n_options = 1;
	mnt.options = opts;
	Containerd__Events__TaskCreate cr = CONTAINERD__EVENTS__TASK_CREATE__INIT;
	cr.n_rootfs = 1;
	cr.rootfs = mounts;
	int ok = 0, rc = 0;
	for (int i = 0; i < 10 && rc == 0; i++) {
		char cid[16];
		snprintf(cid, sizeof(cid), "b%d", i);
		cr.container_id = cid;
		rc = events_publish(p, &cr.base, NULL, &e);
		ok += rc == 0;
	}
	assert_int_equal(rc, -ENOBUFS);
	assert_int_equal(ok, 3); /* ~620 bytes each */
	events_stats(p, &st);
	assert_true(st.pending_bytes <= 2048 && st.pending_bytes > 1800);
}

static void test_publish_errors(void **state)
{
	struct env *env = *state;
	struct events_publisher *p = publisher(env, NULL);
	struct err e;
	Containerd__Task__V2__StateRequest notev = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
	assert_int_equal(events_publish(p, &notev.base, NULL, &e), -EINVAL);
	assert_int_equal(events_publish(p, NULL, NULL, &e), -EINVAL);
	Containerd__Events__TaskStart st = CONTAINERD__EVENTS__TASK_START__INIT;
	assert_int_equal(events_publish(p, &st.base, NULL, &e), -EINVAL); /* no container_id */
	st.container_id = "";
	assert_int_equal(events_publish(p, &st.base, NULL, &e), -EINVAL);
	Containerd__Events__TaskCheckpointed big = CONTAINERD__EVENTS__TASK_CHECKPOINTED__INIT;
	big.container_id = "c";
	big.checkpoint = xmalloc(EVENTS_MAX_EVENT_BYTES + 1);
	memset(big.checkpoint, 'x', EVENTS_MAX_EVENT_BYTES);
	big.checkpoint[EVENTS_MAX_EVENT_BYTES] = '\0';
	assert_int_equal(events_publish(p, &big.base, NULL, &e), -EMSGSIZE);
	free(big.checkpoint);
	struct events_stats s;
	events_stats(p, &s);
	assert_int_equal(s.published, 0);

	/* Out of order: logged, counted, still queued with the next number. */
	uint64_t seq = 0;
	st.container_id = "c9";
	assert_int_equal(events_publish(p, &st.base, &seq, &e), 0);
	assert_int_equal(seq, 1);
	events_stats(p, &s);
	assert_int_equal(s.published, 1);
	assert_int_equal(s.order_violations, 1);
	assert_string_equal(s.last_violation, "container c9: TaskStart while the task is none");
}

/* Who listens on containerd's path is checked: a socket of another user never gets an
 * event. */
static void test_peer_check(void **state)
{
	struct env *env = *state;
	if (geteuid() != 0)
		skip(); /* needs a listener of another uid */
	chmod(env->dir, 0777);
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(1);
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", env->path);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0)
			_exit(2);
		chmod(env->path, 0777);
		if (write(ready[1], "x", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	struct events_opts o = {.address = env->path, .backoff_min_s = 0.01, .backoff_max_s = 0.02};
	struct events_publisher *p = publisher(env, &o);
	pub_create(p, "x", 1);
	evtest_run_for(&env->ev, 0.2);
	struct events_stats st;
	events_stats(p, &st);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(env->path);
	assert_int_equal(st.connects, 0);
	assert_true(st.connect_failures >= 2);
	assert_int_equal(st.pending, 1);
}

/* ---- subscribers ---- */

struct seen {
	uint64_t seqs[64];
	char cids[64][16];
	int topics[64];
	size_t n;
	uint64_t missed;
	struct events_publisher **free_me;
	size_t stop_after; /* unsubscribe after this many (0: never) */
	bool publish_more;
};

static void on_event(struct events_sub *s, const struct events_record *rec, uint64_t missed,
                     void *ud)
{
	struct seen *w = ud;
	assert_true(w->n < 64);
	w->seqs[w->n] = rec->seq;
	snprintf(w->cids[w->n], sizeof(w->cids[0]), "%s", rec->container_id);
	w->topics[w->n] = rec->type;
	w->n++;
	w->missed += missed;
	assert_string_equal(rec->namespace_, "default");
	assert_string_equal(rec->topic, events_topic(rec->type));
	/* The record's value is the packed event. */
	ProtobufCMessage *m =
	    protobuf_c_message_unpack(events_descriptor(rec->type), NULL, rec->len, rec->value);
	assert_non_null(m);
	protobuf_c_message_free_unpacked(m, NULL);
	if (w->publish_more && w->n == 1)
		pub_life(*w->free_me, "more", 0);
	if (w->stop_after && w->n == w->stop_after)
		events_unsubscribe(s);
	if (w->free_me && !w->publish_more && w->n == 2) {
		events_publisher_free(*w->free_me);
		*w->free_me = NULL;
	}
}

static void test_subscribers(void **state)
{
	struct env *env = *state;
	struct events_opts o = {.retain = 6};
	struct events_publisher *p = publisher(env, &o);
	struct seen all = {0}, late = {0}, now = {0}, once = {.stop_after = 2};
	pub_life(p, "c0", 0);
	events_subscribe(p, 0, on_event, &all);
	struct events_sub *paused = events_subscribe(p, EVENTS_FROM_NOW, on_event, &now);
	events_subscribe(p, 0, on_event, &once);
	assert_int_equal(all.n, 0); /* never from inside the call */
	EVTEST_SPIN(&env->ev, all.n == 4);
	assert_int_equal(all.seqs[0], 1);
	assert_int_equal(all.seqs[3], 4);
	assert_int_equal(all.topics[0], EVENTS_TASK_CREATE);
	assert_int_equal(all.topics[3], EVENTS_TASK_DELETE);
	assert_int_equal(once.n, 2);
	assert_int_equal(now.n, 0);

	events_sub_pause(paused);
	pub_life(p, "c1", 1);
	EVTEST_SPIN(&env->ev, all.n == 8);
	pub_life(p, "c2", 2);
	EVTEST_SPIN(&env->ev, all.n == 12);
	assert_int_equal(all.missed, 0);
	assert_int_equal(once.n, 2); /* unsubscribed itself */
	assert_int_equal(now.n, 0);
	/* The paused one fell out of the 6-event window: told how many it missed. */
	events_sub_resume(paused);
	EVTEST_SPIN(&env->ev, now.n == 6);
	assert_int_equal(now.missed, 2);
	assert_int_equal(now.seqs[0], 7);
	assert_string_equal(now.cids[0], "c1"); /* its exit, seq 7 */
	assert_int_equal(now.topics[0], EVENTS_TASK_EXIT);
	/* A late subscriber from 0 gets the retained window only. */
	events_subscribe(p, 0, on_event, &late);
	EVTEST_SPIN(&env->ev, late.n == 6);
	assert_int_equal(late.seqs[0], 7);
	assert_int_equal(late.missed, 0);
	struct events_stats st;
	events_stats(p, &st);
	assert_int_equal(st.evicted, 6);
	assert_int_equal(st.pending, 0);
}

/* A subscriber may publish from its callback and free the publisher. */
static void test_subscriber_reentry(void **state)
{
	struct env *env = *state;
	struct events_publisher *p = publisher(env, NULL);
	struct seen w = {.free_me = &env->p, .publish_more = true};
	events_subscribe(p, 0, on_event, &w);
	pub_create(p, "c0", 1);
	EVTEST_SPIN(&env->ev, w.n == 5);
	assert_string_equal(w.cids[1], "more");
	assert_string_equal(w.cids[4], "more");
	struct seen f = {.free_me = &env->p};
	events_subscribe(p, 0, on_event, &f);
	EVTEST_SPIN(&env->ev, env->p == NULL);
	assert_int_equal(f.n, 2); /* freed inside the second callback: no third */
	evtest_run_for(&env->ev, 0.05);
	assert_int_equal(f.n, 2);
}

/* ---- flush and a late address ---- */

struct flushed {
	int n;
	size_t pending;
};

static void on_flushed(struct events_publisher *p, size_t pending, void *ud)
{
	(void)p;
	struct flushed *fl = ud;
	fl->n++;
	fl->pending = pending;
}

static void test_flush(void **state)
{
	struct env *env = *state;
	struct events_opts o = {.address = env->path, .backoff_min_s = 0.01, .backoff_max_s = 0.01};
	struct events_publisher *p = publisher(env, &o);
	struct err e;
	struct flushed a = {0}, b = {0};
	pub_life(p, "f", 0);
	assert_int_equal(events_flush(p, 0.1, on_flushed, &a, &e), 0);
	assert_int_equal(events_flush(p, 0.1, on_flushed, &b, &e), -EBUSY);
	EVTEST_SPIN(&env->ev, a.n == 1);
	assert_int_equal(a.pending, 4); /* timed out: nobody listens */
	fake_events_start(&env->fake);
	assert_int_equal(events_flush(p, 30, on_flushed, &b, &e), 0);
	EVTEST_SPIN(&env->ev, b.n == 1);
	assert_int_equal(b.pending, 0);
	assert_int_equal(env->fake.n, 4);
}

static void test_set_address_later(void **state)
{
	struct env *env = *state;
	fake_events_start(&env->fake);
	struct events_publisher *p = publisher(env, NULL);
	struct err e;
	pub_life(p, "l0", 0);
	evtest_run_for(&env->ev, 0.05);
	assert_int_equal(env->fake.calls, 0);
	assert_int_equal(pending_of(p), 0);
	assert_int_equal(events_set_address(p, "", &e), -EINVAL);
	char addr[128];
	snprintf(addr, sizeof(addr), "unix://%s", env->path);
	assert_int_equal(events_set_address(p, addr, &e), 0);
	EVTEST_SPIN(&env->ev, env->fake.n == 4);
	assert_lives(&env->fake, 0, "l", 1);
	/* And off again: later events stay local. */
	assert_int_equal(events_set_address(p, NULL, &e), 0);
	pub_life(p, "l1", 1);
	evtest_run_for(&env->ev, 0.05);
	assert_int_equal(env->fake.n, 4);
	assert_int_equal(pending_of(p), 0);
	/* Forget: the next TaskCreate of a forgotten running container is in order. */
	pub_create(p, "m", 1);
	pub_start(p, "m", 1);
	events_forget(p, "m");
	pub_create(p, "m", 2);
	struct events_stats st;
	events_stats(p, &st);
	assert_int_equal(st.order_violations, 0);
	assert_int_equal(st.tracked, 1);
	pub_exec(p, 0, "m", "e1");
	pub_exec(p, 1, "m", "e1");
	events_stats(p, &st);
	assert_int_equal(st.order_violations, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_type_table),
	    cmocka_unit_test(test_identifiers),
	    cmocka_unit_test(test_order_rules),
	    cmocka_unit_test_setup_teardown(test_forward_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_appears_later, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_server_resend, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_publish_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_check, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_subscribers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_subscriber_reentry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_address_later, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
