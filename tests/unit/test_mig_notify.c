/* Unit tests for host/shim/mig_notify: hcsshim's notifications_test.go list (delivery,
 * fan-out, message ids, replay to late subscribers, close, unsubscribe, a slow subscriber)
 * adapted to ferry's log, plus ferry's own rules: a slow subscriber loses nothing (no drop at
 * 64), a late subscriber gets the whole log, subscribers drain before `end`, the bounded log's
 * eviction rule, the subscriber cap, and callbacks that detach or free from inside. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host/shim/mig_notify.h"
#include "tests/lib/evtest.h"

struct rec {
	uint32_t ids[1200];
	enum vmm_phase phases[1200];
	struct mig_notify_msg last;
	size_t n;
	bool ended;
	size_t pause_at;  /* answer BUSY once n reaches this (0: never) */
	uint32_t drop_at; /* unsubscribe itself when this id arrives */
	struct mig_notify_sub *sub;
	struct mig_notify *free_log_at_first; /* free the log from inside the first delivery */
};

static int deliver(struct mig_notify_sub *s, const struct mig_notify_msg *m, void *ud)
{
	struct rec *r = ud;
	assert_ptr_equal(s, r->sub);
	if (r->pause_at && r->n >= r->pause_at)
		return MIG_NOTIFY_BUSY;
	assert_true(r->n < sizeof(r->ids) / sizeof(r->ids[0]));
	r->ids[r->n] = m->message_id;
	r->phases[r->n] = m->n.phase;
	r->n++;
	r->last = *m;
	if (r->free_log_at_first) {
		mig_notify_free(r->free_log_at_first);
		r->free_log_at_first = NULL;
	}
	if (r->drop_at && m->message_id == r->drop_at)
		mig_notify_unsubscribe(s);
	return 0;
}

static void end(struct mig_notify_sub *s, void *ud)
{
	struct rec *r = ud;
	assert_ptr_equal(s, r->sub);
	assert_false(r->ended);
	r->ended = true;
	mig_notify_unsubscribe(s); /* a no-op by now: must be harmless */
}

static const struct mig_notify_sub_ops ops = {deliver, end};

struct fx {
	struct evtest ev;
	struct mig_notify *n;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	evtest_init(&f->ev, 20.);
	f->n = mig_notify_new(f->ev.loop, VMM_ORIGIN_SOURCE, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	mig_notify_free(f->n); /* NULL when a test freed it */
	ev_run(f->ev.loop, EVRUN_NOWAIT);
	evtest_fini(&f->ev);
	free(f);
	return 0;
}

static struct mig_notify_sub *sub(struct fx *f, struct rec *r)
{
	struct err e;
	err_clear(&e);
	r->sub = mig_notify_subscribe(f->n, &ops, r, &e);
	assert_non_null(r->sub);
	return r->sub;
}

static int add(struct mig_notify *n, enum vmm_phase p)
{
	struct vmm_notification v = {.phase = p, .state = VMM_PHASE_STATE_SUCCESS};
	return mig_notify_append(n, &v);
}

static void test_delivers_to_subscriber(void **state)
{
	struct fx *f = *state;
	struct rec r = {0};
	sub(f, &r);
	assert_int_equal(add(f->n, VMM_PHASE_SETUP_DONE), 1);
	assert_int_equal(r.n, 0); /* never from inside append */
	EVTEST_SPIN(&f->ev, r.n == 1);
	assert_int_equal(r.last.message_id, 1);
	assert_int_equal(r.last.n.phase, VMM_PHASE_SETUP_DONE);
	assert_int_equal(r.last.n.origin, VMM_ORIGIN_SOURCE); /* unspecified takes the log's */
	assert_true(r.last.start_time_ns > 0);
	assert_true(r.last.update_time_ns >= r.last.start_time_ns);
	assert_int_equal(r.last.start_time_ns, mig_notify_start_time(f->n));
	mig_notify_unsubscribe(r.sub);
}

static void test_keeps_explicit_origin(void **state)
{
	struct fx *f = *state;
	struct rec r = {0};
	sub(f, &r);
	struct vmm_notification v = {.origin = VMM_ORIGIN_DESTINATION,
	                             .phase = VMM_PHASE_BLACKOUT_EXITED,
	                             .state = VMM_PHASE_STATE_SUCCESS,
	                             .has_blackout = true,
	                             .blackout_ms = 1234};
	assert_int_equal(mig_notify_append(f->n, &v), 1);
	EVTEST_SPIN(&f->ev, r.n == 1);
	assert_int_equal(r.last.n.origin, VMM_ORIGIN_DESTINATION);
	assert_true(r.last.n.has_blackout);
	assert_int_equal(r.last.n.blackout_ms, 1234);
	mig_notify_unsubscribe(r.sub);
}

static void test_fans_out_to_all_subscribers(void **state)
{
	struct fx *f = *state;
	struct rec a = {0}, b = {0};
	sub(f, &a);
	sub(f, &b);
	add(f->n, VMM_PHASE_SETUP_DONE);
	EVTEST_SPIN(&f->ev, a.n == 1 && b.n == 1);
	assert_int_equal(a.ids[0], 1);
	assert_int_equal(b.ids[0], 1);
	mig_notify_unsubscribe(a.sub);
	mig_notify_unsubscribe(b.sub);
}

static void test_increments_message_id(void **state)
{
	struct fx *f = *state;
	struct rec r = {0};
	sub(f, &r);
	assert_int_equal(add(f->n, VMM_PHASE_SETUP_DONE), 1);
	assert_int_equal(add(f->n, VMM_PHASE_SETUP_DONE), 2);
	EVTEST_SPIN(&f->ev, r.n == 2);
	assert_int_equal(r.ids[0], 1);
	assert_int_equal(r.ids[1], 2);
	assert_int_equal(mig_notify_sub_last_id(r.sub), 2);
	mig_notify_unsubscribe(r.sub);
}

/* hcsshim replays only the newest event to a late subscriber; ferry replays the whole log */
static void test_late_subscriber_gets_whole_log(void **state)
{
	struct fx *f = *state;
	add(f->n, VMM_PHASE_SETUP_DONE);
	add(f->n, VMM_PHASE_TRANSFER_IN_PROGRESS);
	add(f->n, VMM_PHASE_FAILED);
	evtest_run_for(&f->ev, 0.01); /* nothing to deliver to, nothing lost */
	struct rec r = {0};
	sub(f, &r);
	EVTEST_SPIN(&f->ev, r.n == 3);
	assert_int_equal(r.phases[0], VMM_PHASE_SETUP_DONE);
	assert_int_equal(r.phases[1], VMM_PHASE_TRANSFER_IN_PROGRESS);
	assert_int_equal(r.phases[2], VMM_PHASE_FAILED);
	assert_int_equal(r.ids[2], 3);
	add(f->n, VMM_PHASE_RECOVERY_DONE); /* then the live ones */
	EVTEST_SPIN(&f->ev, r.n == 4);
	assert_int_equal(r.ids[3], 4);
	mig_notify_unsubscribe(r.sub);
}

static void test_subscribe_after_close_fails(void **state)
{
	struct fx *f = *state;
	mig_notify_close(f->n);
	struct err e;
	err_clear(&e);
	struct rec r = {0};
	assert_null(mig_notify_subscribe(f->n, &ops, &r, &e));
	assert_int_equal(e.code, -EPIPE);
	assert_string_equal(e.msg, "migration session already terminated");
}

static void test_append_after_close_fails(void **state)
{
	struct fx *f = *state;
	mig_notify_close(f->n);
	assert_true(mig_notify_closed(f->n));
	assert_int_equal(add(f->n, VMM_PHASE_SETUP_DONE), -EPIPE);
	assert_int_equal(mig_notify_count(f->n), 0);
}

static void test_close_ends_subscribers(void **state)
{
	struct fx *f = *state;
	struct rec r = {0};
	sub(f, &r);
	add(f->n, VMM_PHASE_SETUP_DONE);
	mig_notify_close(f->n);
	EVTEST_SPIN(&f->ev, r.ended);
	assert_int_equal(r.n, 1); /* what was appended before close arrives before the end */
}

static void test_close_is_idempotent(void **state)
{
	struct fx *f = *state;
	struct rec r = {0};
	sub(f, &r);
	mig_notify_close(f->n);
	mig_notify_close(f->n);
	EVTEST_SPIN(&f->ev, r.ended);
	evtest_run_for(&f->ev, 0.01);
	assert_true(r.ended); /* end came exactly once (asserted in `end`) */
}

static void test_unsubscribe_drops_subscriber(void **state)
{
	struct fx *f = *state;
	struct rec r = {0}, other = {0};
	sub(f, &r);
	sub(f, &other);
	mig_notify_unsubscribe(r.sub);
	assert_int_equal(add(f->n, VMM_PHASE_SETUP_DONE), 1);
	EVTEST_SPIN(&f->ev, other.n == 1);
	evtest_run_for(&f->ev, 0.01);
	assert_int_equal(r.n, 0);
	mig_notify_close(f->n);
	EVTEST_SPIN(&f->ev, other.ended);
	assert_false(r.ended);
}

/* hcsshim: appends never block on a slow subscriber, which silently loses everything past
 * its 64-slot buffer.  ferry: appends never block and the slow subscriber gets all of it. */
static void test_slow_subscriber_gets_everything(void **state)
{
	struct fx *f = *state;
	struct rec slow = {.pause_at = 1}, fast = {0};
	sub(f, &slow);
	sub(f, &fast);
	for (int i = 0; i < 500; i++)
		assert_int_equal(add(f->n, VMM_PHASE_TRANSFER_IN_PROGRESS), i + 1);
	EVTEST_SPIN(&f->ev, fast.n == 500);
	assert_int_equal(slow.n, 1); /* it paused after one */
	/* resume it a little at a time, as a stream draining its queue would */
	while (slow.n < 500) {
		slow.pause_at = slow.n + 37;
		mig_notify_sub_resume(slow.sub);
		size_t before = slow.n;
		EVTEST_SPIN(&f->ev, slow.n > before && (slow.n == 500 || slow.n == slow.pause_at));
	}
	for (uint32_t i = 0; i < 500; i++)
		assert_int_equal(slow.ids[i], i + 1);
	mig_notify_close(f->n);
	EVTEST_SPIN(&f->ev, slow.ended && fast.ended);
}

/* close with a paused subscriber: it still drains everything, then ends */
static void test_paused_subscriber_drains_after_close(void **state)
{
	struct fx *f = *state;
	struct rec r = {.pause_at = 2};
	sub(f, &r);
	for (int i = 0; i < 100; i++)
		add(f->n, VMM_PHASE_TRANSFER_IN_PROGRESS);
	add(f->n, VMM_PHASE_DONE);
	EVTEST_SPIN(&f->ev, r.n == 2);
	mig_notify_free(f->n); /* the owner is done with it (Cleanup) */
	f->n = NULL;
	evtest_run_for(&f->ev, 0.01);
	assert_false(r.ended);
	r.pause_at = 0;
	mig_notify_sub_resume(r.sub);
	EVTEST_SPIN(&f->ev, r.ended);
	assert_int_equal(r.n, 101);
	assert_int_equal(r.phases[100], VMM_PHASE_DONE);
}

static void test_free_from_inside_delivery(void **state)
{
	struct fx *f = *state;
	struct rec r = {0};
	sub(f, &r);
	add(f->n, VMM_PHASE_SETUP_DONE);
	add(f->n, VMM_PHASE_DONE);
	r.free_log_at_first = f->n;
	f->n = NULL;
	EVTEST_SPIN(&f->ev, r.ended);
	assert_int_equal(r.n, 2);
}

static void test_unsubscribe_from_inside_delivery(void **state)
{
	struct fx *f = *state;
	struct rec r = {.drop_at = 2}, other = {0};
	sub(f, &r);
	sub(f, &other);
	for (int i = 0; i < 5; i++)
		add(f->n, VMM_PHASE_TRANSFER_IN_PROGRESS);
	EVTEST_SPIN(&f->ev, other.n == 5);
	evtest_run_for(&f->ev, 0.01);
	assert_int_equal(r.n, 2);
	mig_notify_unsubscribe(other.sub);
}

/* A full log evicts superseded progress first, then other non-terminal entries, never a
 * terminal one; ids stay increasing. */
static void test_bounded_log_eviction(void **state)
{
	struct fx *f = *state;
	mig_notify_free(f->n);
	f->n = mig_notify_new(f->ev.loop, VMM_ORIGIN_DESTINATION, 8);
	add(f->n, VMM_PHASE_SETUP_DONE);
	for (int i = 0; i < 20; i++)
		add(f->n, VMM_PHASE_TRANSFER_IN_PROGRESS);
	add(f->n, VMM_PHASE_BLACKOUT_STARTED);
	add(f->n, VMM_PHASE_DONE);
	assert_int_equal(mig_notify_count(f->n), 8);
	assert_int_equal(mig_notify_dropped(f->n), 15);
	assert_int_equal(mig_notify_entry(f->n, 0)->n.phase, VMM_PHASE_SETUP_DONE);
	assert_int_equal(mig_notify_entry(f->n, 6)->n.phase, VMM_PHASE_BLACKOUT_STARTED);
	assert_int_equal(mig_notify_entry(f->n, 7)->n.phase, VMM_PHASE_DONE);
	assert_int_equal(mig_notify_entry(f->n, 7)->message_id, 23);
	for (size_t i = 1; i < 8; i++)
		assert_true(mig_notify_entry(f->n, i)->message_id >
		            mig_notify_entry(f->n, i - 1)->message_id);
	/* the newest progress is kept: entries 1..5 are ids 17..21 */
	assert_int_equal(mig_notify_entry(f->n, 5)->message_id, 21);
	/* a subscriber sees exactly what is held */
	struct rec r = {0};
	sub(f, &r);
	EVTEST_SPIN(&f->ev, r.n == 8);
	assert_int_equal(r.ids[0], 1);
	assert_int_equal(r.ids[7], 23);
	/* non-progress entries go next; terminal ones never */
	for (int i = 0; i < 8; i++)
		add(f->n, VMM_PHASE_FAILED);
	assert_int_equal(mig_notify_count(f->n), 8);
	for (size_t i = 0; i < 8; i++) {
		enum vmm_phase p = mig_notify_entry(f->n, i)->n.phase;
		assert_true(p == VMM_PHASE_DONE || p == VMM_PHASE_FAILED);
	}
	uint64_t dropped = mig_notify_dropped(f->n);
	assert_int_equal(add(f->n, VMM_PHASE_SETUP_DONE), -ENOSPC);
	assert_int_equal(mig_notify_dropped(f->n), dropped + 1);
	assert_true(mig_notify_seen(f->n, VMM_ORIGIN_DESTINATION, VMM_PHASE_SETUP_DONE));
	assert_true(mig_notify_seen(f->n, VMM_ORIGIN_UNSPECIFIED, VMM_PHASE_FAILED));
	assert_false(mig_notify_seen(f->n, VMM_ORIGIN_SOURCE, VMM_PHASE_FAILED));
	assert_false(mig_notify_seen(f->n, VMM_ORIGIN_DESTINATION, VMM_PHASE_RECOVERY_DONE));
	mig_notify_unsubscribe(r.sub);
}

static void test_subscriber_cap(void **state)
{
	struct fx *f = *state;
	static struct rec r[MIG_NOTIFY_SUBS_MAX + 1];
	memset(r, 0, sizeof(r));
	for (int i = 0; i < MIG_NOTIFY_SUBS_MAX; i++)
		sub(f, &r[i]);
	struct err e;
	err_clear(&e);
	assert_null(mig_notify_subscribe(f->n, &ops, &r[MIG_NOTIFY_SUBS_MAX], &e));
	assert_int_equal(e.code, -ENOSPC);
	mig_notify_unsubscribe(r[0].sub);
	sub(f, &r[MIG_NOTIFY_SUBS_MAX]); /* a slot came free */
	add(f->n, VMM_PHASE_SETUP_DONE);
	mig_notify_close(f->n);
	EVTEST_SPIN(&f->ev, r[MIG_NOTIFY_SUBS_MAX].ended && r[1].ended);
	for (int i = 1; i <= MIG_NOTIFY_SUBS_MAX; i++)
		assert_int_equal(r[i].n, 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_delivers_to_subscriber),
	    T(test_keeps_explicit_origin),
	    T(test_fans_out_to_all_subscribers),
	    T(test_increments_message_id),
	    T(test_late_subscriber_gets_whole_log),
	    T(test_subscribe_after_close_fails),
	    T(test_append_after_close_fails),
	    T(test_close_ends_subscribers),
	    T(test_close_is_idempotent),
	    T(test_unsubscribe_drops_subscriber),
	    T(test_slow_subscriber_gets_everything),
	    T(test_paused_subscriber_drains_after_close),
	    T(test_free_from_inside_delivery),
	    T(test_unsubscribe_from_inside_delivery),
	    T(test_bounded_log_eviction),
	    T(test_subscriber_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
