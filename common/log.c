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
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(f, "%s.%03ld %s %s: %s\n", when, ts.tv_nsec / 1000000, ident, tags[lvl], line);
	fflush(f);
}
