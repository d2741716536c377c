/* Allocation helpers that abort on out-of-memory (the one permitted abort below main),
 * plus the cleanup attribute helpers used for scoped ownership. */
#ifndef FERRY_COMMON_XALLOC_H
#define FERRY_COMMON_XALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a freshly allocated string owned by the caller. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void freep(void *p)
{
	free(*(void **)p);
}
static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define _cleanup_free_  __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* Move ownership out of a cleanup-managed variable. */
#define steal_ptr(pp)                                                                              \
	({                                                                                         \
		__typeof__(*(pp)) steal_tmp_ = *(pp);                                              \
		*(pp) = NULL;                                                                      \
		steal_tmp_;                                                                        \
	})
static inline int steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

#endif
