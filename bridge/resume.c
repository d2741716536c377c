/* The stdio resume protocol of docs/stdio-resume.md §2 without any I/O: the HELLO / READY /
 * ACK codec with prefix-validating incremental decoders, the data sender's retained ring
 * buffer (grown on demand up to its cap, so idle streams cost nothing), the receiver's
 * acknowledgement policy, and the per-connection splitter that turns received bytes into
 * handshake, ACK and data events.  Offsets are u64 stream positions; the only allocation is
 * the sender's ring (xalloc, aborts on OOM as everywhere in ferry). */
#include "bridge/resume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/session.h"
#include "common/buf.h"
#include "common/sha256.h"
#include "common/xalloc.h"

static inline uint16_t le16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline void le16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* ---- codec ---------------------------------------------------------------------------------- */

void resume_hello_encode(const struct resume_hello *h, uint8_t out[RESUME_HELLO_LEN])
{
	memcpy(out, RESUME_HELLO_MAGIC, 4);
	le16_put(out + 4, h->version);
	le16_put(out + 6, h->flags);
	le32_put(out + 8, h->port);
	le32_put(out + 12, h->dial);
	le64_put(out + 16, h->offset);
	memcpy(out + RESUME_HELLO_SIGNED, h->mac, sizeof(h->mac));
}

void resume_hello_sign(struct resume_hello *h, const struct session_auth *a)
{
	memset(h->mac, 0, sizeof(h->mac));
	if (!a || !a->on)
		return;
	uint8_t m[RESUME_HELLO_LEN];
	resume_hello_encode(h, m);
	session_hello_mac(a, m, RESUME_HELLO_SIGNED, h->mac);
}

void resume_ready_encode(const struct resume_ready *r, uint8_t out[RESUME_READY_LEN])
{
	memcpy(out, RESUME_READY_MAGIC, 4);
	le16_put(out + 4, r->version);
	le16_put(out + 6, r->status);
	le64_put(out + 8, r->offset);
}

void resume_ack_encode(uint64_t offset, uint8_t out[RESUME_ACK_LEN])
{
	le64_put(out, offset);
}

/* Compare the received part of a 4-byte magic. */
static int check_magic(const uint8_t *p, size_t n, const char *magic, const char *what,
                       struct err *e)
{
	size_t k = n < 4 ? n : 4;
	for (size_t i = 0; i < k; i++) {
		if (p[i] != (uint8_t)magic[i])
			return err_set(e, -EPROTO,
			               "resume %s: bad magic byte %zu: 0x%02x, expected '%c'", what,
			               i, p[i], magic[i]);
	}
	return 0;
}

static int check_version(const uint8_t *p, size_t n, const char *what, struct err *e)
{
	if (n < 6)
		return 0;
	uint16_t v = le16_get(p + 4);
	if (v != RESUME_VERSION)
		return err_set(e, -EPROTO, "resume %s: unsupported version %u (want %u)", what, v,
		               RESUME_VERSION);
	return 0;
}

int resume_hello_decode(const uint8_t *p, size_t n, struct resume_hello *out, struct err *e)
{
	int r = check_magic(p, n, RESUME_HELLO_MAGIC, "hello", e);
	if (r == 0)
		r = check_version(p, n, "hello", e);
	if (r < 0)
		return r;
	if (n >= 8) {
		uint16_t flags = le16_get(p + 6);
		if (flags & ~RESUME_FLAGS_KNOWN)
			return err_set(e, -EPROTO, "resume hello: unknown flags 0x%04x", flags);
	}
	if (n < RESUME_HELLO_LEN)
		return 0;
	out->version = le16_get(p + 4);
	out->flags = le16_get(p + 6);
	out->port = le32_get(p + 8);
	out->dial = le32_get(p + 12);
	out->offset = le64_get(p + 16);
	memcpy(out->mac, p + RESUME_HELLO_SIGNED, sizeof(out->mac));
	return RESUME_HELLO_LEN;
}

int resume_ready_decode(const uint8_t *p, size_t n, struct resume_ready *out, struct err *e)
{
	int r = check_magic(p, n, RESUME_READY_MAGIC, "ready", e);
	if (r == 0)
		r = check_version(p, n, "ready", e);
	if (r < 0)
		return r;
	if (n >= 8) {
		uint16_t st = le16_get(p + 6);
		if (st != RESUME_STATUS_OK && st != RESUME_STATUS_GAP)
			return err_set(e, -EPROTO, "resume ready: unknown status %u", st);
	}
	if (n < RESUME_READY_LEN)
		return 0;
	out->version = le16_get(p + 4);
	out->status = le16_get(p + 6);
	out->offset = le64_get(p + 8);
	return RESUME_READY_LEN;
}

int resume_ack_decode(const uint8_t *p, size_t n, uint64_t *offset)
{
	if (n < RESUME_ACK_LEN)
		return 0;
	*offset = le64_get(p);
	return RESUME_ACK_LEN;
}

/* ---- sender --------------------------------------------------------------------------------- */

void resume_sender_init(struct resume_sender *s, size_t cap, uint64_t start)
{
	memset(s, 0, sizeof(*s));
	s->cap = cap ? cap : RESUME_SENDER_CAP;
	s->tail = RESUME_FALLBACK_TAIL;
	s->produced = s->acked = s->floor = s->sent = start;
}

static void ring_release(struct resume_sender *s)
{
	if (s->budget)
		s->budget->used -= s->alloc;
	free(s->ring);
	s->ring = NULL;
	s->alloc = 0;
	s->head = 0;
}

void resume_sender_fini(struct resume_sender *s)
{
	if (!s)
		return;
	ring_release(s);
	s->budget = NULL;
}

static size_t retained(const struct resume_sender *s)
{
	return (size_t)(s->produced - s->floor);
}

/* Ring index of stream offset `off` (floor <= off <= produced, alloc > 0). */
static size_t ring_pos(const struct resume_sender *s, uint64_t off)
{
	return (s->head + (size_t)(off - s->floor)) % s->alloc;
}

/* The largest ring this sender may have now: its cap, and within its budget (a first ring of
 * RESUME_RING_MIN is always allowed, so every stream can make progress). */
static size_t alloc_limit(const struct resume_sender *s)
{
	size_t lim = s->cap;
	size_t first = RESUME_RING_MIN < s->cap ? RESUME_RING_MIN : s->cap;
	if (s->budget) {
		size_t left =
		    s->budget->used < s->budget->limit ? s->budget->limit - s->budget->used : 0;
		size_t b = s->alloc + left;
		if (b < lim)
			lim = b;
	}
	return lim > first ? lim : first;
}

/* Make room for `need` retained bytes, linearising the ring: doubling from RESUME_RING_MIN, at
 * most alloc_limit() (so possibly less than `need`). */
static void ring_grow(struct resume_sender *s, size_t need)
{
	if (need <= s->alloc)
		return;
	size_t lim = alloc_limit(s);
	if (lim <= s->alloc)
		return;
	size_t n = s->alloc ? s->alloc : RESUME_RING_MIN;
	while (n < need && n < lim)
		n = n > lim / 2 ? lim : n * 2;
	if (n > lim)
		n = lim;
	uint8_t *ring = xmalloc(n);
	size_t have = retained(s);
	if (have) {
		size_t first = s->alloc - s->head;
		if (first > have)
			first = have;
		memcpy(ring, s->ring + s->head, first);
		memcpy(ring + first, s->ring, have - first);
	}
	if (s->budget)
		s->budget->used += n - s->alloc;
	free(s->ring);
	s->ring = ring;
	s->alloc = n;
	s->head = 0;
}

/* Drop retained bytes below `off` (floor <= off <= produced). */
static void drop_to(struct resume_sender *s, uint64_t off)
{
	if (off <= s->floor)
		return;
	if (s->alloc)
		s->head = ring_pos(s, off);
	s->floor = off;
	if (s->sent < off)
		s->sent = off;
	if (s->floor == s->produced)
		s->head = 0;
}

void resume_sender_set_budget(struct resume_sender *s, struct resume_budget *b)
{
	if (s->budget)
		s->budget->used -= s->alloc;
	s->budget = b;
	if (b)
		b->used += s->alloc;
}

size_t resume_sender_space(const struct resume_sender *s)
{
	if (s->eof)
		return 0;
	return s->cap - retained(s);
}

size_t resume_sender_free(const struct resume_sender *s)
{
	if (s->eof)
		return 0;
	size_t lim = alloc_limit(s);
	size_t have = retained(s);
	size_t top = lim > s->alloc ? lim : s->alloc;
	return top > have ? top - have : 0;
}

uint8_t *resume_sender_reserve(struct resume_sender *s, size_t want, bool grow, size_t *len)
{
	*len = 0;
	size_t space = resume_sender_space(s);
	if (want > space)
		want = space;
	if (want == 0)
		return NULL;
	size_t have = retained(s);
	if (s->alloc == 0 || (grow && s->alloc - have < want))
		ring_grow(s, have + want);
	if (s->alloc == have)
		return NULL;
	if (have == 0)
		s->head = 0; /* empty: start over for the longest span */
	size_t pos = ring_pos(s, s->produced);
	size_t span = s->alloc - have;
	if (span > s->alloc - pos)
		span = s->alloc - pos;
	*len = span < want ? span : want;
	return s->ring + pos;
}

void resume_sender_commit(struct resume_sender *s, size_t n)
{
	s->produced += n;
}

size_t resume_sender_append(struct resume_sender *s, const void *p, size_t n)
{
	size_t take = resume_sender_space(s);
	if (take > n)
		take = n;
	if (take == 0)
		return 0;
	ring_grow(s, retained(s) + take);
	if (take > s->alloc - retained(s))
		take = s->alloc - retained(s); /* the budget held the ring back */
	if (take == 0)
		return 0;
	size_t pos = ring_pos(s, s->produced);
	size_t first = s->alloc - pos;
	if (first > take)
		first = take;
	memcpy(s->ring + pos, p, first);
	memcpy(s->ring, (const uint8_t *)p + first, take - first);
	s->produced += take;
	return take;
}

void resume_sender_trim(struct resume_sender *s)
{
	if (retained(s) == 0 && s->alloc)
		ring_release(s);
}

void resume_sender_peek(const struct resume_sender *s, const uint8_t **p, size_t *len)
{
	size_t unsent = (size_t)(s->produced - s->sent);
	if (unsent == 0) {
		*p = NULL;
		*len = 0;
		return;
	}
	size_t pos = ring_pos(s, s->sent);
	size_t run = s->alloc - pos;
	*p = s->ring + pos;
	*len = run < unsent ? run : unsent;
}

static void fallback_trim(struct resume_sender *s)
{
	if (s->fallback && s->sent - s->floor > s->tail)
		drop_to(s, s->sent - s->tail);
}

int resume_sender_advance(struct resume_sender *s, size_t n, struct err *e)
{
	if (n > s->produced - s->sent)
		return err_set(e, -EINVAL, "resume: advance by %zu but only %" PRIu64 " unsent", n,
		               s->produced - s->sent);
	s->sent += n;
	fallback_trim(s);
	return 0;
}

int resume_sender_ack(struct resume_sender *s, uint64_t off, struct err *e)
{
	if (off < s->acked)
		return err_set(e, -EPROTO, "resume: ack going backwards: %" PRIu64 " < %" PRIu64,
		               off, s->acked);
	if (off > s->produced)
		return err_set(e, -EPROTO, "resume: ack beyond produced: %" PRIu64 " > %" PRIu64,
		               off, s->produced);
	s->acked = off;
	drop_to(s, off);
	return 0;
}

int resume_sender_rewind(struct resume_sender *s, uint64_t off, struct err *e)
{
	if (off < s->floor)
		return err_set(e, -ERANGE,
		               "resume: gap: offset %" PRIu64 " below retained floor %" PRIu64, off,
		               s->floor);
	if (off > s->produced)
		return err_set(e, -ERANGE,
		               "resume: gap: offset %" PRIu64 " beyond produced %" PRIu64, off,
		               s->produced);
	s->sent = off;
	return 0;
}

void resume_sender_set_eof(struct resume_sender *s)
{
	s->eof = true;
}

bool resume_sender_all_sent(const struct resume_sender *s)
{
	return s->eof && s->sent == s->produced;
}

bool resume_sender_done(const struct resume_sender *s)
{
	if (!s->eof)
		return false;
	return s->fallback ? s->sent == s->produced : s->acked == s->produced;
}

void resume_sender_set_fallback(struct resume_sender *s, bool on)
{
	s->fallback = on;
	fallback_trim(s);
}

void resume_sender_set_tail(struct resume_sender *s, size_t tail)
{
	s->tail = tail;
	fallback_trim(s);
}

uint64_t resume_sender_replay_tail(struct resume_sender *s, size_t max)
{
	uint64_t to = s->sent > max ? s->sent - max : 0;
	if (to < s->floor)
		to = s->floor;
	s->sent = to;
	return to;
}

void resume_sender_hello(const struct resume_sender *s, uint32_t port, uint16_t flags,
                         struct resume_hello *h)
{
	h->version = RESUME_VERSION;
	h->flags = (uint16_t)(flags & ~RESUME_FLAG_INPUT);
	h->port = port;
	h->offset = s->floor;
}

int resume_sender_on_ready(struct resume_sender *s, const struct resume_ready *r, struct err *e)
{
	if (r->status == RESUME_STATUS_GAP) {
		/* The receiver lost bytes we no longer have: continue from what is still here. */
		s->sent = s->floor;
		return err_set(e, -ERANGE,
		               "resume: peer reports a gap (it has %" PRIu64
		               "), continuing from retained floor %" PRIu64,
		               r->offset, s->floor);
	}
	if (r->offset > s->produced)
		return err_set(e, -EPROTO,
		               "resume: READY offset %" PRIu64 " beyond produced %" PRIu64
		               " (retained from %" PRIu64 "): cannot resume there",
		               r->offset, s->produced, s->floor);
	if (r->offset < s->floor)
		return err_set(e, -EPROTO,
		               "resume: READY offset %" PRIu64 " below the retained floor %" PRIu64
		               " without a gap status: cannot resume there",
		               r->offset, s->floor);
	/* floor <= offset <= produced: neither can fail */
	resume_sender_ack(s, r->offset, e);
	s->sent = r->offset;
	return 0;
}

int resume_sender_answer(struct resume_sender *s, const struct resume_hello *h,
                         struct resume_ready *r, struct err *e)
{
	r->version = RESUME_VERSION;
	if (h->offset >= s->floor && h->offset <= s->produced) {
		/* h->offset >= floor >= acked, so the ack cannot fail */
		resume_sender_ack(s, h->offset, e);
		s->sent = h->offset;
		r->status = RESUME_STATUS_OK;
		r->offset = h->offset;
		return 0;
	}
	r->status = RESUME_STATUS_GAP;
	r->offset = h->offset < s->floor ? s->floor : s->produced;
	s->sent = r->offset;
	return err_set(e, -ERANGE,
	               "resume: peer has %" PRIu64 ", retained [%" PRIu64 ", %" PRIu64
	               "]: continuing from %" PRIu64,
	               h->offset, s->floor, s->produced, r->offset);
}

/* ---- receiver ------------------------------------------------------------------------------- */

void resume_receiver_init(struct resume_receiver *r, uint64_t delivered)
{
	memset(r, 0, sizeof(*r));
	r->delivered = r->acked = delivered;
}

void resume_receiver_deliver(struct resume_receiver *r, size_t n, uint64_t now_ns)
{
	if (n == 0)
		return;
	if (r->delivered == r->acked)
		r->unacked_since = now_ns;
	r->delivered += n;
}

void resume_receiver_set_eof(struct resume_receiver *r)
{
	r->eof = true;
}

bool resume_receiver_ack_due(const struct resume_receiver *r, uint64_t now_ns)
{
	uint64_t unacked = r->delivered - r->acked;
	if (unacked == 0)
		return false;
	if (unacked >= RESUME_ACK_BYTES || r->eof)
		return true;
	return now_ns >= r->unacked_since && now_ns - r->unacked_since >= RESUME_ACK_DELAY_NS;
}

uint64_t resume_receiver_ack_deadline(const struct resume_receiver *r)
{
	if (r->delivered == r->acked)
		return UINT64_MAX;
	if (r->unacked_since > UINT64_MAX - RESUME_ACK_DELAY_NS)
		return UINT64_MAX;
	return r->unacked_since + RESUME_ACK_DELAY_NS;
}

bool resume_receiver_take_ack(struct resume_receiver *r, uint64_t *off)
{
	if (r->delivered == r->acked)
		return false;
	r->acked = r->delivered;
	*off = r->delivered;
	return true;
}

void resume_receiver_hello(const struct resume_receiver *r, uint32_t port, uint16_t flags,
                           struct resume_hello *h)
{
	h->version = RESUME_VERSION;
	h->flags = (uint16_t)(flags | RESUME_FLAG_INPUT);
	h->port = port;
	h->offset = r->delivered;
}

/* The data continues from `off`: jump there, counting skipped bytes as lost.  Going back is
 * not allowed: re-sent bytes below `delivered` are dropped by the caller through the data
 * offsets (see resume_conn), so delivered never moves backwards. */
static void receiver_continue_at(struct resume_receiver *r, uint64_t off)
{
	if (off > r->delivered) {
		r->gap_bytes += off - r->delivered;
		r->delivered = off;
	}
	r->acked = r->delivered;
}

int resume_receiver_on_ready(struct resume_receiver *r, const struct resume_ready *rd,
                             struct err *e)
{
	uint64_t had = r->delivered;
	if (rd->status == RESUME_STATUS_OK && rd->offset == had) {
		r->acked = had;
		return 0;
	}
	receiver_continue_at(r, rd->offset);
	return err_set(
	    e, -ERANGE,
	    "resume: peer %s, continuing at %" PRIu64 " with %" PRIu64 " delivered (%s)",
	    rd->status == RESUME_STATUS_OK ? "resends from another offset" : "reports a gap",
	    rd->offset, had, rd->offset > had ? "bytes lost" : "re-sent bytes will be dropped");
}

int resume_receiver_answer(struct resume_receiver *r, const struct resume_hello *h,
                           struct resume_ready *rd, struct err *e)
{
	rd->version = RESUME_VERSION;
	rd->offset = r->delivered;
	if (r->delivered >= h->offset) {
		rd->status = RESUME_STATUS_OK;
		r->acked = r->delivered;
		return 0;
	}
	rd->status = RESUME_STATUS_GAP;
	uint64_t had = r->delivered;
	receiver_continue_at(r, h->offset);
	return err_set(e, -ERANGE,
	               "resume: gap: delivered %" PRIu64 " but peer retains only from %" PRIu64
	               ", %" PRIu64 " bytes lost",
	               had, h->offset, h->offset - had);
}

size_t resume_overlap(uint64_t have, uint64_t off, size_t len)
{
	if (off >= have)
		return 0;
	uint64_t dup = have - off;
	return dup < len ? (size_t)dup : len;
}

size_t resume_receiver_overlap(const struct resume_receiver *r, uint64_t off, size_t len)
{
	return resume_overlap(r->delivered, off, len);
}

/* ---- connection splitter -------------------------------------------------------------------- */

void resume_conn_init(struct resume_conn *c, enum resume_role role, bool input)
{
	memset(c, 0, sizeof(*c));
	c->role = role;
	c->input = input;
	c->sender = (role == RESUME_DIALER) != input;
	c->state = RESUME_CONN_PREFIX;
}

int resume_conn_hello(struct resume_conn *c, const struct resume_hello *h,
                      uint8_t out[RESUME_HELLO_LEN], struct err *e)
{
	if (c->role != RESUME_DIALER || c->state != RESUME_CONN_PREFIX)
		return err_set(e, -EINVAL, "resume: hello only from a dialer before ready");
	if (!!(h->flags & RESUME_FLAG_INPUT) != c->input)
		return err_set(e, -EINVAL, "resume: hello input flag does not match the stream");
	c->hello = *h;
	resume_hello_encode(h, out);
	return 0;
}

int resume_conn_answer(struct resume_conn *c, const struct resume_ready *r,
                       uint8_t out[RESUME_READY_LEN], struct err *e)
{
	if (c->role != RESUME_LISTENER || c->state != RESUME_CONN_ANSWER)
		return err_set(e, -EINVAL, "resume: ready only from a listener after hello");
	if (r->status != RESUME_STATUS_OK && r->status != RESUME_STATUS_GAP)
		return err_set(e, -EINVAL, "resume: bad ready status %u", r->status);
	resume_ready_encode(r, out);
	if (!c->sender)
		c->data_off = r->status == RESUME_STATUS_OK ? r->offset : c->hello.offset;
	c->state = RESUME_CONN_STREAM;
	return 0;
}

static int conn_fail(struct resume_conn *c, int code)
{
	c->state = RESUME_CONN_FAILED;
	return code;
}

static int feed_prefix(struct resume_conn *c, const uint8_t *p, size_t n, size_t *used,
                       struct resume_event *ev, struct err *e)
{
	bool listener = c->role == RESUME_LISTENER;
	size_t need = listener ? RESUME_HELLO_LEN : RESUME_READY_LEN;
	size_t take = need - c->staged;
	if (take > n)
		take = n;
	/* p is non-NULL here: resume_conn_feed returns early when n == 0 */
	// cppcheck-suppress ctunullpointer
	memcpy(c->stage + c->staged, p, take);
	c->staged += take;
	int r;
	if (listener)
		r = resume_hello_decode(c->stage, c->staged, &ev->hello, e);
	else
		r = resume_ready_decode(c->stage, c->staged, &ev->ready, e);
	if (r < 0)
		return conn_fail(c, r);
	*used = take;
	if (r == 0)
		return 0;
	c->staged = 0;
	if (listener) {
		if (!!(ev->hello.flags & RESUME_FLAG_INPUT) != c->input)
			return conn_fail(
			    c,
			    err_set(e, -EPROTO, "resume hello: port %u is %s but the hello says %s",
			            ev->hello.port, c->input ? "stdin" : "an output",
			            c->input ? "output" : "stdin"));
		ev->type = RESUME_EV_HELLO;
		c->hello = ev->hello;
		c->state = RESUME_CONN_ANSWER;
	} else {
		ev->type = RESUME_EV_READY;
		/* A receiving dialer (guest stdin) gets data from READY.offset in every case. */
		if (!c->sender)
			c->data_off = ev->ready.offset;
		c->state = RESUME_CONN_STREAM;
	}
	return 1;
}

int resume_conn_feed(struct resume_conn *c, const uint8_t *p, size_t n, size_t *used,
                     struct resume_event *ev, struct err *e)
{
	*used = 0;
	if (c->state == RESUME_CONN_FAILED)
		return err_set(e, -EINVAL, "resume: connection already failed");
	if (n == 0)
		return 0;
	switch (c->state) {
	case RESUME_CONN_PREFIX:
		return feed_prefix(c, p, n, used, ev, e);
	case RESUME_CONN_ANSWER:
		return conn_fail(
		    c, err_set(e, -EPROTO, "resume: peer sent %zu bytes before the ready", n));
	case RESUME_CONN_STREAM:
		break;
	case RESUME_CONN_FAILED:
		break;
	}
	if (!c->sender) {
		/* a hostile READY/HELLO offset near 2^64 must not let offsets wrap */
		if (n > UINT64_MAX - c->data_off)
			return conn_fail(c, err_set(e, -EPROTO,
			                            "resume: stream offset overflow at %" PRIu64,
			                            c->data_off));
		ev->type = RESUME_EV_DATA;
		ev->data.p = p;
		ev->data.len = n;
		ev->data.offset = c->data_off;
		c->data_off += n;
		*used = n;
		return 1;
	}
	if (c->staged == 0 && n >= RESUME_ACK_LEN) {
		resume_ack_decode(p, n, &ev->ack);
		ev->type = RESUME_EV_ACK;
		*used = RESUME_ACK_LEN;
		return 1;
	}
	size_t take = RESUME_ACK_LEN - c->staged;
	if (take > n)
		take = n;
	memcpy(c->stage + c->staged, p, take);
	c->staged += take;
	*used = take;
	if (c->staged < RESUME_ACK_LEN)
		return 0;
	c->staged = 0;
	resume_ack_decode(c->stage, RESUME_ACK_LEN, &ev->ack);
	ev->type = RESUME_EV_ACK;
	return 1;
}

/* ---- one end of one stream ------------------------------------------------------------------ */

/* What a receiver accounts for: delivered plus pending, saturating (a hostile READY offset near
 * 2^64 must not make it wrap). */
static uint64_t stream_have(const struct resume_stream *st)
{
	uint64_t d = st->rx->delivered;
	return st->pending > UINT64_MAX - d ? UINT64_MAX : d + st->pending;
}

void resume_stream_new_conn(struct resume_stream *st)
{
	st->bad_acks = 0;
}

static int stream_ready(struct resume_stream *st, const struct resume_ready *rd, struct err *e)
{
	if (st->rx) {
		/* the data continues from READY.offset; overlaps are dropped as data arrives */
		return resume_receiver_on_ready(st->rx, rd, e);
	}
	int r = resume_sender_on_ready(st->tx, rd, e);
	return r == -EPROTO ? RESUME_GIVE_UP : r;
}

static int stream_ack(struct resume_stream *st, uint64_t off, struct err *e)
{
	if (resume_sender_ack(st->tx, off, e) == 0)
		return 0;
	if (++st->bad_acks < RESUME_BAD_ACKS_MAX)
		return -ERANGE;
	err_prefix(e, "%u refused acks on this connection, the last", st->bad_acks);
	e->code = -EPROTO;
	return -EPROTO;
}

int resume_stream_event(struct resume_stream *st, const struct resume_event *ev, size_t *skip,
                        struct err *e)
{
	*skip = 0;
	switch (ev->type) {
	case RESUME_EV_READY:
		return stream_ready(st, &ev->ready, e);
	case RESUME_EV_ACK:
		if (!st->tx)
			break;
		return stream_ack(st, ev->ack, e);
	case RESUME_EV_DATA:
		if (!st->rx)
			break;
		*skip = resume_overlap(stream_have(st), ev->data.offset, ev->data.len);
		return 0;
	case RESUME_EV_HELLO:
		break;
	}
	return err_set(e, -EINVAL, "resume: event %d does not belong to this stream end",
	               (int)ev->type);
}

int resume_stream_hello_check(const struct resume_stream *st, const struct resume_hello *h,
                              uint32_t port, const struct session_auth *a, struct err *e)
{
	bool input = st->tx != NULL; /* the listener sends data only on stdin */
	if (h->port != port)
		return err_set(e, -EACCES, "hello for port %#x on port %#x", h->port, port);
	if (!!(h->flags & RESUME_FLAG_INPUT) != input)
		return err_set(e, -EACCES, "hello for %s on %s port %#x",
		               input ? "an output stream" : "stdin",
		               input ? "the stdin" : "an output", port);
	if (!a || !a->on)
		return 0;
	struct resume_hello u = *h;
	resume_hello_sign(&u, a);
	if (!mem_equal_ct(h->mac, u.mac, sizeof(u.mac)))
		return err_set(e, -EACCES, "hello on port %#x without the session's proof", port);
	if (h->dial <= st->last_dial)
		return err_set(e, -EACCES, "hello on port %#x replays dial %u (last taken: %u)",
		               port, h->dial, st->last_dial);
	return 0;
}

int resume_stream_hello(struct resume_stream *st, const struct resume_hello *h, uint32_t port,
                        const struct session_auth *a, struct resume_ready *rd, struct err *e)
{
	int rc = resume_stream_hello_check(st, h, port, a, e);
	if (rc < 0)
		return rc;
	st->last_dial = h->dial;
	if (st->tx)
		return resume_sender_answer(st->tx, h, rd, e);
	struct resume_receiver *r = st->rx;
	uint64_t have = stream_have(st);
	rd->version = RESUME_VERSION;
	rd->offset = have;
	if (have >= h->offset) {
		rd->status = RESUME_STATUS_OK;
		r->acked = r->delivered; /* READY implies it: nothing below is acked again */
		return 0;
	}
	/* The guest dropped bytes this end never took (impossible while both keep the
	 * invariants): they are lost; the data continues from the guest's floor. */
	uint64_t lost = h->offset - have;
	rd->status = RESUME_STATUS_GAP;
	r->gap_bytes += lost;
	r->delivered += lost;
	r->acked = r->delivered;
	return err_set(e, -ERANGE,
	               "resume: gap: had %" PRIu64 " but the peer retains only from %" PRIu64
	               ", %" PRIu64 " bytes lost",
	               have, h->offset, lost);
}
