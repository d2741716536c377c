/* A libev loop for unit tests, with a guard timer: a test that waits for something that never
 * happens fails (cmocka assertion) after the guard's time instead of hanging.  Embed a struct
 * evtest in the test's fixture, evtest_init in setup, evtest_fini in teardown. */
#ifndef FERRY_TESTS_EVTEST_H
#define FERRY_TESTS_EVTEST_H

#include <ev.h>
#include <stdbool.h>

struct evtest {
	struct ev_loop *loop; /* owned */
	ev_timer guard;
	bool timed_out; /* the guard fired (the loop was broken out of) */
};

/* A new loop (asserted) with the guard armed for guard_s seconds. */
void evtest_init(struct evtest *t, double guard_s);
/* Stop the guard and destroy the loop.  Everything else on the loop must be stopped first. */
void evtest_fini(struct evtest *t);

/* Run the loop until `cond` holds; fails the test when the guard fires first.  NOWAIT first:
 * libev runs already-pending (fed) events at the start of ev_run and would then block in the
 * poll even though `cond` already holds. */
#define EVTEST_SPIN(t, cond)                                                                       \
	do {                                                                                       \
		while (!(cond) && !(t)->timed_out) {                                               \
			ev_run((t)->loop, EVRUN_NOWAIT);                                           \
			if (!(cond))                                                               \
				ev_run((t)->loop, EVRUN_ONCE);                                     \
		}                                                                                  \
		assert_false((t)->timed_out);                                                      \
	} while (0)

/* Run the loop without blocking for `sec` seconds of wall time (at least one iteration), or
 * until the guard fires: to show that something does NOT happen. */
void evtest_run_for(struct evtest *t, double sec);

#endif
