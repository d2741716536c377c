/* Growable byte buffer with a read offset, used for socket input and output queues.
 * Bytes live in data[off, len); consuming advances off and compacts lazily. */
#ifndef FERRY_COMMON_BUF_H
#define FERRY_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t off; /* first unread byte */
	size_t len; /* one past the last written byte */
	size_t cap;
};

void buf_init(struct buf *b);
void buf_fini(struct buf *b);
/* Number of unread bytes. */
static inline size_t buf_avail(const struct buf *b)
{
	return b->len - b->off;
}
static inline const uint8_t *buf_head(const struct buf *b)
{
	return b->data + b->off;
}
/* Ensure room for n more bytes after len; returns a pointer to write them at. */
uint8_t *buf_reserve(struct buf *b, size_t n);
/* Mark n reserved bytes as written. */
void buf_commit(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *p, size_t n);
/* Drop n unread bytes (n <= buf_avail). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Give the memory back when the buffer is empty and holds more than `keep` bytes of capacity
 * (after one large message, so that one input does not cost its size for ever). */
void buf_trim(struct buf *b, size_t keep);

/* Little-endian helpers for wire formats. */
static inline uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t le64_get(const uint8_t *p)
{
	return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}
static inline void le32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline void le64_put(uint8_t *p, uint64_t v)
{
	le32_put(p, (uint32_t)v);
	le32_put(p + 4, (uint32_t)(v >> 32));
}

#endif
