/* Process-wide logging for daemons and CLIs (libraries report through struct err instead).
 * The level is checked before any formatting happens.  Messages are lower-case, ids as
 * key=value.  Output goes to stderr (or a file set with log_set_file). */
#ifndef FERRY_COMMON_LOG_H
#define FERRY_COMMON_LOG_H

#include <stdbool.h>
#include <stdio.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

extern enum log_level log_current_level;

void log_set_level(enum log_level lvl);
/* Parse "error|warn|info|debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
/* Set a prefix such as "ferry-gcs" printed on each line (the string must outlive logging). */
void log_set_ident(const char *ident);
/* Redirect output; NULL restores stderr.  The caller keeps ownership of the FILE. */
void log_set_file(FILE *f);

void log_write(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                                           \
	do {                                                                                       \
		if ((lvl) <= log_current_level)                                                    \
			log_write((lvl), __VA_ARGS__);                                             \
	} while (0)
#define log_error(...) log_at(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LVL_DEBUG, __VA_ARGS__)

/* A rate limit for one source of repeated log lines (a connection, a stream, a listener that
 * peers can poke): at most LOG_LIMIT_BURST lines per LOG_LIMIT_WINDOW_NS.  Lines held back
 * are counted and reported just before the next line let through, so nothing is hidden
 * without a trace and a peer sending junk cannot fill the disk.  Embed it zeroed; not
 * thread-safe. */
#define LOG_LIMIT_BURST     5
#define LOG_LIMIT_WINDOW_NS (10ll * 1000 * 1000 * 1000)
struct log_limit {
	long long window_ns; /* start of the current window (monotonic) */
	unsigned n;          /* lines let through in the window */
	unsigned suppressed; /* lines held back since the last one let through */
};
/* May a line be logged at now_ns?  True: *suppressed gets the number of lines held back
 * before it (then reset).  False: the line is counted as suppressed. */
bool log_limit_allow(struct log_limit *l, long long now_ns, unsigned *suppressed);
/* Log through `lim` (a struct log_limit *) at `lvl`: a "N similar lines suppressed" line first
 * when some were held back. */
#define log_limited(lim, lvl, ...)                                                                 \
	do {                                                                                       \
		unsigned sup_;                                                                     \
		if ((lvl) <= log_current_level && log_limit_allow((lim), log_mono_ns(), &sup_)) {  \
			if (sup_)                                                                  \
				log_write((lvl), "(%u similar lines suppressed)", sup_);           \
			log_write((lvl), __VA_ARGS__);                                             \
		}                                                                                  \
	} while (0)
/* CLOCK_MONOTONIC in nanoseconds (what log_limited uses). */
long long log_mono_ns(void);

#endif
