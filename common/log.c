/* Line-oriented logging with a monotonic-free wall clock timestamp and level tag. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

enum log_level log_current_level = LOG_LVL_INFO;
static const char *ident = "ferry";
static FILE *out;

void log_set_level(enum log_level lvl)
{
	log_current_level = lvl;
}

int log_parse_level(const char *s, enum log_level *lvl)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*lvl = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_ident(const char *s)
{
	ident = s ? s : "ferry";
}

void log_set_file(FILE *f)
{
	out = f;
}

void log_write(enum log_level lvl, const char *fmt, ...)
{
	static const char *const tags[] = {"error", "warn", "info", "debug"};
	FILE *f = out ? out : stderr;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* UTC time of day by arithmetic: gmtime/strftime drag time-zone and locale code (and
	 * scanf) into the static guest agent */
	long day = (long)(ts.tv_sec % 86400);
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(f, "%02ld:%02ld:%02ld.%03ld %s %s: %s\n", day / 3600, day / 60 % 60, day % 60,
	        ts.tv_nsec / 1000000, ident, tags[lvl], line);
	fflush(f);
}

long long log_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

bool log_limit_allow(struct log_limit *l, long long now_ns, unsigned *suppressed)
{
	if (l->n == 0 || now_ns - l->window_ns >= LOG_LIMIT_WINDOW_NS || now_ns < l->window_ns) {
		l->window_ns = now_ns;
		l->n = 0;
	}
	if (l->n >= LOG_LIMIT_BURST) {
		l->suppressed++;
		return false;
	}
	l->n++;
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return true;
}
