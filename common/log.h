/* Process-wide logging for daemons and CLIs (libraries report through struct err instead).
 * The level is checked before any formatting happens.  Messages are lower-case, ids as
 * key=value.  Output goes to stderr (or a file set with log_set_file). */
#ifndef FERRY_COMMON_LOG_H
#define FERRY_COMMON_LOG_H

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

#endif
