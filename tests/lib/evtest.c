/* The guarded test loop of evtest.h. */
#include "tests/lib/evtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fdio.h"

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct evtest *t = w->data;
	t->timed_out = true;
	ev_break(loop, EVBREAK_ALL);
}

void evtest_init(struct evtest *t, double guard_s)
{
	t->timed_out = false;
	t->loop = ev_loop_new(0);
	assert_non_null(t->loop);
	ev_timer_init(&t->guard, on_guard, guard_s, 0.);
	t->guard.data = t;
	ev_timer_start(t->loop, &t->guard);
}

void evtest_fini(struct evtest *t)
{
	if (!t->loop)
		return;
	ev_timer_stop(t->loop, &t->guard);
	ev_loop_destroy(t->loop);
	t->loop = NULL;
}

void evtest_run_for(struct evtest *t, double sec)
{
	long long end = mono_ns() + (long long)(sec * 1e9);
	while (!t->timed_out) {
		ev_run(t->loop, EVRUN_NOWAIT);
		if (mono_ns() >= end)
			break;
		usleep(500);
	}
}
