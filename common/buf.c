/* struct buf: amortised growth, compaction only when the dead prefix dominates. */
#include "common/buf.h"

#include <string.h>

#include "common/xalloc.h"

void buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
}

void buf_fini(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

uint8_t *buf_reserve(struct buf *b, size_t n)
{
	if (b->off > 0 && (b->off == b->len || b->off >= b->cap / 2)) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len < n)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	return b->data + b->len;
}

void buf_commit(struct buf *b, size_t n)
{
	b->len += n;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	memcpy(buf_reserve(b, n), p, n);
	b->len += n;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void buf_reset(struct buf *b)
{
	b->off = b->len = 0;
}

void buf_trim(struct buf *b, size_t keep)
{
	if (b->off == b->len && b->cap > keep)
		buf_fini(b);
}
