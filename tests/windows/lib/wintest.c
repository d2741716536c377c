/* Windows test helpers (see wintest.h). */
#include "tests/windows/lib/wintest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

int wintest_socketpair(SOCKET s[2])
{
	WSADATA d;
	if (WSAStartup(MAKEWORD(2, 2), &d) != 0)
		return -1;
	SOCKET l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	int n = sizeof(a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l == INVALID_SOCKET || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&a, &n) != 0)
		return -1;
	s[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (s[0] == INVALID_SOCKET || connect(s[0], (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	s[1] = accept(l, NULL, NULL);
	closesocket(l);
	return s[1] == INVALID_SOCKET ? -1 : 0;
}

struct until {
	const bool *flag;
	bool expired;
};

static void on_check(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	struct until *u = w->data;
	if (*u->flag)
		ev_break(loop, EVBREAK_ONE);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	((struct until *)w->data)->expired = true;
	ev_break(loop, EVBREAK_ONE);
}

bool wintest_run_until(struct ev_loop *loop, const bool *flag)
{
	struct until u = {flag, false};
	ev_prepare p;
	ev_timer t;
	ev_prepare_init(&p, on_check);
	p.data = &u;
	ev_timer_init(&t, on_deadline, WINTEST_DEADLINE_S, 0);
	t.data = &u;
	ev_prepare_start(loop, &p);
	ev_timer_start(loop, &t);
	while (!*flag && !u.expired)
		ev_run(loop, EVRUN_ONCE);
	ev_prepare_stop(loop, &p);
	ev_timer_stop(loop, &t);
	return *flag;
}

void wintest_run_for(struct ev_loop *loop, int ms)
{
	bool never = false;
	struct until u = {&never, false};
	ev_timer t;
	ev_timer_init(&t, on_deadline, ms / 1000.0, 0);
	t.data = &u;
	ev_timer_start(loop, &t);
	while (!u.expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
}

void wintest_standin(HMODULE module, struct standin *s)
{
	assert_non_null(module);
	s->configure = (standin_configure_fn)(void *)GetProcAddress(module, "StandinConfigure");
	s->log = (standin_log_fn)(void *)GetProcAddress(module, "StandinLog");
	s->stats = (standin_stats_fn)(void *)GetProcAddress(module, "StandinStats");
	s->emit = (standin_emit_fn)(void *)GetProcAddress(module, "StandinEmit");
	assert_non_null(s->configure);
	assert_non_null(s->log);
	assert_non_null(s->stats);
	assert_non_null(s->emit);
}

json_t *wintest_log(const struct standin *s)
{
	size_t n = s->log(NULL, 0);
	char *text = malloc(n + 1);
	s->log(text, n + 1);
	json_t *j = json_loads(text, 0, NULL);
	free(text);
	assert_true(json_is_array(j));
	return j;
}

const char *wintest_fns(const struct standin *s)
{
	static char out[4096];
	json_t *j = wintest_log(s);
	size_t o = 0, i;
	json_t *v;
	out[0] = '\0';
	json_array_foreach(j, i, v)
	{
		const char *fn = json_string_value(json_object_get(v, "Fn"));
		int n = snprintf(out + o, sizeof(out) - o, "%s%s", o ? " " : "", fn ? fn : "?");
		if (n > 0 && (size_t)n < sizeof(out) - o)
			o += (size_t)n;
	}
	json_decref(j);
	return out;
}

json_t *wintest_find(json_t *log, const char *fn, size_t *from)
{
	for (size_t i = *from; i < json_array_size(log); i++) {
		json_t *v = json_array_get(log, i);
		const char *f = json_string_value(json_object_get(v, "Fn"));
		if (f && strcmp(f, fn) == 0) {
			*from = i + 1;
			return v;
		}
	}
	return NULL;
}
