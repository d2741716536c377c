/* Unit tests for bridge/resume: HELLO/READY/ACK codec (layout, round trips, every malformed
 * field, partial input), the sender's retained buffer (append/peek/advance/ack/rewind,
 * wrap-around, capacity, gaps, eof, fallback tail), the receiver's ack policy and READY
 * answers, the connection splitter, and an exactly-once simulation: thousands of streams
 * over connections cut at random points with random in-flight loss, in both directions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bridge/resume.h"
#include "bridge/session.h"
#include "common/buf.h"

/* ---- codec --------------------------------------------------------------------------------- */

static void test_hello_layout_round_trip(void **state)
{
	(void)state;
	struct resume_hello h = {.version = RESUME_VERSION,
	                         .flags = RESUME_FLAG_INPUT | RESUME_FLAG_FIRST,
	                         .port = 0x11223344,
	                         .dial = 0x0a0b0c0d,
	                         .offset = 0x0102030405060708ull};
	for (int i = 0; i < 32; i++)
		h.mac[i] = (uint8_t)(0xa0 + i);
	uint8_t b[RESUME_HELLO_LEN];
	uint8_t want[RESUME_HELLO_LEN] = {'F',  'R',  'Y',  'H',  2,    0,    3,    0,
	                                  0x44, 0x33, 0x22, 0x11, 0x0d, 0x0c, 0x0b, 0x0a,
	                                  8,    7,    6,    5,    4,    3,    2,    1};
	for (int i = 0; i < 32; i++)
		want[24 + i] = (uint8_t)(0xa0 + i);
	resume_hello_encode(&h, b);
	assert_memory_equal(b, want, sizeof(want));
	struct resume_hello back;
	struct err e;
	err_clear(&e);
	assert_int_equal(resume_hello_decode(b, sizeof(b), &back, &e), RESUME_HELLO_LEN);
	assert_int_equal(back.version, RESUME_VERSION);
	assert_int_equal(back.flags, 3);
	assert_int_equal(back.port, 0x11223344);
	assert_int_equal(back.dial, 0x0a0b0c0d);
	assert_true(back.offset == 0x0102030405060708ull);
	assert_memory_equal(back.mac, h.mac, 32);
	assert_int_equal(e.code, 0);
}

/* The listener's check of a HELLO: port, direction, and with a session the mac of this
 * negotiation and a new dial number; without a session only port and direction. */
static void test_hello_proof(void **state)
{
	(void)state;
	struct session_auth a = {.on = true};
	for (int i = 0; i < 32; i++) {
		a.secret[i] = (uint8_t)i;
		a.challenge[i] = (uint8_t)(100 + i);
	}
	struct resume_receiver rx;
	resume_receiver_init(&rx, 0);
	struct resume_stream st = {.rx = &rx};
	struct resume_hello h = {.version = RESUME_VERSION, .port = 9, .dial = 1, .offset = 0};
	resume_hello_sign(&h, &a);
	struct err e;
	assert_int_equal(resume_stream_hello_check(&st, &h, 9, &a, &e), 0);
	/* any field changed after signing, a wrong port, another session or challenge */
	struct resume_hello t = h;
	t.offset = 1;
	assert_int_equal(resume_stream_hello_check(&st, &t, 9, &a, &e), -EACCES);
	assert_non_null(strstr(e.msg, "proof"));
	assert_int_equal(resume_stream_hello_check(&st, &h, 10, &a, &e), -EACCES);
	assert_non_null(strstr(e.msg, "port"));
	struct session_auth b = a;
	b.challenge[0] ^= 1;
	assert_int_equal(resume_stream_hello_check(&st, &h, 9, &b, &e), -EACCES);
	b = a;
	b.secret[31] ^= 1;
	assert_int_equal(resume_stream_hello_check(&st, &h, 9, &b, &e), -EACCES);
	t = h;
	t.flags = RESUME_FLAG_INPUT;
	resume_hello_sign(&t, &a);
	assert_int_equal(resume_stream_hello_check(&st, &t, 9, &a, &e), -EACCES);
	/* taken once: the same dial again is a replay */
	struct resume_ready rd;
	assert_int_equal(resume_stream_hello(&st, &h, 9, &a, &rd, &e), 0);
	assert_int_equal(st.last_dial, 1);
	assert_int_equal(resume_stream_hello(&st, &h, 9, &a, &rd, &e), -EACCES);
	assert_non_null(strstr(e.msg, "replays"));
	h.dial = 2;
	resume_hello_sign(&h, &a);
	assert_int_equal(resume_stream_hello(&st, &h, 9, &a, &rd, &e), 0);
	/* without a session: the mac is zero and not looked at */
	struct session_auth off = {0};
	h.dial = 0;
	resume_hello_sign(&h, &off);
	for (int i = 0; i < 32; i++)
		assert_int_equal(h.mac[i], 0);
	assert_int_equal(resume_stream_hello_check(&st, &h, 9, &off, &e), 0);
	assert_int_equal(resume_stream_hello_check(&st, &h, 9, NULL, &e), 0);
}

static void test_ready_ack_layout_round_trip(void **state)
{
	(void)state;
	struct resume_ready r = {
	    .version = RESUME_VERSION, .status = RESUME_STATUS_GAP, .offset = UINT64_MAX};
	uint8_t b[RESUME_READY_LEN];
	static const uint8_t want[RESUME_READY_LEN] = {
	    'F', 'R', 'Y', 'R', 2, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	resume_ready_encode(&r, b);
	assert_memory_equal(b, want, sizeof(want));
	struct resume_ready back;
	struct err e;
	assert_int_equal(resume_ready_decode(b, sizeof(b), &back, &e), RESUME_READY_LEN);
	assert_int_equal(back.status, RESUME_STATUS_GAP);
	assert_true(back.offset == UINT64_MAX);

	uint8_t a[RESUME_ACK_LEN];
	uint64_t off = 0;
	resume_ack_encode(0x8000000000000001ull, a);
	assert_int_equal(a[0], 1);
	assert_int_equal(a[7], 0x80);
	assert_int_equal(resume_ack_decode(a, 7, &off), 0);
	assert_true(off == 0);
	assert_int_equal(resume_ack_decode(a, 8, &off), RESUME_ACK_LEN);
	assert_true(off == 0x8000000000000001ull);
}

static void test_partial_needs_more(void **state)
{
	(void)state;
	struct resume_hello h = {.version = RESUME_VERSION, .port = 7, .offset = 99};
	struct resume_ready r = {.version = RESUME_VERSION, .offset = 5};
	uint8_t hb[RESUME_HELLO_LEN], rb[RESUME_READY_LEN];
	resume_hello_encode(&h, hb);
	resume_ready_encode(&r, rb);
	for (size_t n = 0; n < RESUME_HELLO_LEN; n++) {
		struct resume_hello out = {.port = 12345};
		struct err e;
		err_clear(&e);
		assert_int_equal(resume_hello_decode(n ? hb : NULL, n, &out, &e), 0);
		assert_int_equal(out.port, 12345); /* untouched */
		assert_int_equal(e.code, 0);
	}
	for (size_t n = 0; n < RESUME_READY_LEN; n++) {
		struct resume_ready out = {.offset = 77};
		struct err e;
		assert_int_equal(resume_ready_decode(rb, n, &out, &e), 0);
		assert_true(out.offset == 77);
	}
	/* extra bytes after a whole message are not looked at */
	uint8_t big[RESUME_HELLO_LEN + 3];
	memcpy(big, hb, sizeof(hb));
	memset(big + RESUME_HELLO_LEN, 0xee, 3);
	struct resume_hello out;
	struct err e;
	assert_int_equal(resume_hello_decode(big, sizeof(big), &out, &e), RESUME_HELLO_LEN);
	assert_true(out.offset == 99);
}

/* Corrupt byte `at` of a valid message; every prefix without that byte is "need more", and
 * from `by` bytes on (the end of the field) the decoder rejects it with -EPROTO and a
 * message containing `needle`. */
static void expect_reject(const uint8_t *good, size_t len, size_t at, size_t by, uint8_t val,
                          bool hello, const char *needle)
{
	uint8_t b[RESUME_HELLO_LEN];
	memcpy(b, good, len);
	b[at] = val;
	for (size_t n = 0; n <= len; n++) {
		struct err e;
		err_clear(&e);
		struct resume_hello h;
		struct resume_ready r;
		int rc =
		    hello ? resume_hello_decode(b, n, &h, &e) : resume_ready_decode(b, n, &r, &e);
		if (n <= at) {
			assert_int_equal(rc, 0);
			continue;
		}
		/* a multi-byte field is judged once complete */
		if (n < by) {
			assert_int_equal(rc, 0);
			continue;
		}
		assert_int_equal(rc, -EPROTO);
		assert_int_equal(e.code, -EPROTO);
		if (!strstr(e.msg, needle))
			fail_msg("message `%s` lacks `%s`", e.msg, needle);
	}
	struct err e;
	struct resume_hello h;
	struct resume_ready r;
	int rc = hello ? resume_hello_decode(b, len, &h, &e) : resume_ready_decode(b, len, &r, &e);
	assert_int_equal(rc, -EPROTO);
}

static void test_malformed_rejected(void **state)
{
	(void)state;
	struct resume_hello h = {
	    .version = RESUME_VERSION, .flags = RESUME_FLAG_FIRST, .port = 1, .offset = 2};
	struct resume_ready r = {.version = RESUME_VERSION, .status = 0, .offset = 3};
	uint8_t hb[RESUME_HELLO_LEN], rb[RESUME_READY_LEN];
	resume_hello_encode(&h, hb);
	resume_ready_encode(&r, rb);

	for (size_t i = 0; i < 4; i++) {
		expect_reject(hb, sizeof(hb), i, i + 1, 'x', true, "bad magic");
		expect_reject(rb, sizeof(rb), i, i + 1, 'x', false, "bad magic");
	}
	/* a READY where a HELLO is expected, and the reverse */
	struct resume_hello ho;
	struct resume_ready ro;
	struct err e;
	assert_int_equal(resume_hello_decode(rb, sizeof(rb), &ho, &e), -EPROTO);
	assert_int_equal(resume_ready_decode(hb, sizeof(hb), &ro, &e), -EPROTO);
	/* versions */
	expect_reject(hb, sizeof(hb), 4, 6, 0, true, "version 0");
	expect_reject(hb, sizeof(hb), 4, 6, 1, true, "version 1");
	expect_reject(hb, sizeof(hb), 5, 6, 1, true, "version 258");
	expect_reject(rb, sizeof(rb), 4, 6, 1, false, "version 1");
	expect_reject(rb, sizeof(rb), 5, 6, 1, false, "version 258");
	/* every unknown flag bit */
	for (int bit = 2; bit < 16; bit++) {
		uint8_t b[RESUME_HELLO_LEN];
		memcpy(b, hb, sizeof(b));
		uint16_t f = (uint16_t)(RESUME_FLAG_FIRST | 1u << bit);
		b[6] = (uint8_t)f;
		b[7] = (uint8_t)(f >> 8);
		err_clear(&e);
		assert_int_equal(resume_hello_decode(b, 8, &ho, &e), -EPROTO);
		assert_non_null(strstr(e.msg, "unknown flags"));
		assert_int_equal(resume_hello_decode(b, 7, &ho, &e), 0);
	}
	/* READY status other than 0/1 */
	expect_reject(rb, sizeof(rb), 6, 8, 2, false, "unknown status 2");
	expect_reject(rb, sizeof(rb), 7, 8, 0xff, false, "unknown status 65280");
	/* fine fields: any port, any offset, both known flags, gap status */
	uint8_t b[RESUME_HELLO_LEN];
	struct resume_hello all = {
	    .version = RESUME_VERSION, .flags = 3, .port = UINT32_MAX, .offset = ~0ull};
	resume_hello_encode(&all, b);
	assert_int_equal(resume_hello_decode(b, sizeof(b), &ho, &e), RESUME_HELLO_LEN);
}

/* ---- sender -------------------------------------------------------------------------------- */

static uint8_t pat(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 8) * 7 + (i >> 16));
}

static void fill(uint8_t *p, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(off + i);
}

/* Collect every unsent byte from the sender (peek/advance loop), checking the pattern. */
static size_t drain_check(struct resume_sender *s, size_t max)
{
	size_t got = 0;
	while (got < max) {
		const uint8_t *p;
		size_t len;
		resume_sender_peek(s, &p, &len);
		if (len == 0)
			break;
		if (len > max - got)
			len = max - got;
		for (size_t i = 0; i < len; i++)
			assert_int_equal(p[i], pat(s->sent + i));
		struct err e;
		assert_int_equal(resume_sender_advance(s, len, &e), 0);
		got += len;
	}
	return got;
}

static void test_sender_basic(void **state)
{
	(void)state;
	struct resume_sender s;
	struct err e;
	resume_sender_init(&s, 0, 0);
	assert_int_equal(s.cap, RESUME_SENDER_CAP);
	const uint8_t *p = (const uint8_t *)"x";
	size_t len = 9;
	resume_sender_peek(&s, &p, &len);
	assert_int_equal(len, 0);
	assert_null(p);

	uint8_t data[5000];
	fill(data, 0, sizeof(data));
	assert_int_equal(resume_sender_append(&s, data, sizeof(data)), sizeof(data));
	assert_true(s.produced == 5000 && s.sent == 0 && s.acked == 0 && s.floor == 0);
	assert_int_equal(drain_check(&s, 1234), 1234);
	assert_true(s.sent == 1234);
	/* advancing past produced fails and changes nothing */
	err_clear(&e);
	assert_int_equal(resume_sender_advance(&s, 5000, &e), -EINVAL);
	assert_true(s.sent == 1234);
	assert_int_equal(drain_check(&s, 100000), 5000 - 1234);

	assert_int_equal(resume_sender_ack(&s, 1000, &e), 0);
	assert_true(s.acked == 1000 && s.floor == 1000);
	assert_int_equal(resume_sender_ack(&s, 1000, &e), 0); /* idempotent */
	err_clear(&e);
	assert_int_equal(resume_sender_ack(&s, 999, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "backwards"));
	err_clear(&e);
	assert_int_equal(resume_sender_ack(&s, 5001, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "beyond produced"));
	assert_true(s.acked == 1000);

	/* rewind inside the retained range resends exactly from there */
	assert_int_equal(resume_sender_rewind(&s, 1500, &e), 0);
	assert_true(s.sent == 1500);
	assert_int_equal(drain_check(&s, 100000), 3500);
	/* gaps */
	err_clear(&e);
	assert_int_equal(resume_sender_rewind(&s, 999, &e), -ERANGE);
	assert_non_null(strstr(e.msg, "gap"));
	assert_int_equal(resume_sender_rewind(&s, 5001, &e), -ERANGE);
	assert_true(s.sent == 5000);
	assert_int_equal(resume_sender_rewind(&s, 1000, &e), 0); /* the floor itself is fine */
	assert_int_equal(resume_sender_rewind(&s, 5000, &e), 0);

	/* eof and done */
	assert_false(resume_sender_all_sent(&s));
	resume_sender_set_eof(&s);
	assert_int_equal(resume_sender_append(&s, data, 10), 0);
	assert_true(resume_sender_all_sent(&s));
	assert_false(resume_sender_done(&s));
	assert_int_equal(resume_sender_ack(&s, 5000, &e), 0);
	assert_true(resume_sender_done(&s));
	resume_sender_fini(&s);
	resume_sender_fini(&s);
	resume_sender_fini(NULL);
}

static void test_sender_ack_beyond_sent_and_start(void **state)
{
	(void)state;
	struct resume_sender s;
	struct err e;
	/* a restored sender: stream at 1,000,000, unacked bytes appended, never sent by us */
	resume_sender_init(&s, 4096, 1000000);
	uint8_t d[3000];
	fill(d, 1000000, sizeof(d));
	assert_int_equal(resume_sender_append(&s, d, sizeof(d)), 3000);
	assert_int_equal(resume_sender_ack(&s, 1002000, &e), 0);
	assert_true(s.sent == 1002000 && s.floor == 1002000);
	assert_int_equal(drain_check(&s, 100000), 1000);
	/* the receiver (via HELLO) may be ahead of what this sender sent */
	assert_int_equal(resume_sender_rewind(&s, 1002500, &e), 0);
	assert_int_equal(drain_check(&s, 100000), 500);
	resume_sender_fini(&s);
}

static void test_sender_capacity_wrap(void **state)
{
	(void)state;
	struct resume_sender s;
	struct err e;
	resume_sender_init(&s, 1000, 0);
	uint8_t d[1500];
	fill(d, 0, sizeof(d));
	assert_int_equal(resume_sender_append(&s, d, 1500), 1000);
	assert_int_equal(resume_sender_space(&s), 0);
	assert_int_equal(resume_sender_append(&s, d, 1), 0);
	assert_true(s.alloc <= 1000);
	/* sending alone frees nothing: only acks do */
	assert_int_equal(drain_check(&s, 700), 700);
	assert_int_equal(resume_sender_space(&s), 0);
	assert_int_equal(resume_sender_ack(&s, 300, &e), 0);
	assert_int_equal(resume_sender_space(&s), 300);
	/* this append wraps around the ring end */
	uint64_t off = s.produced;
	fill(d, off, 300);
	assert_int_equal(resume_sender_append(&s, d, 500), 300);
	assert_int_equal(drain_check(&s, 100000), 600);
	/* many cycles of append / send / ack through a ring that wraps every time */
	for (int round = 0; round < 200; round++) {
		size_t want = (size_t)(round * 37 % 1000) + 1;
		size_t sp = resume_sender_space(&s);
		fill(d, s.produced, want);
		size_t took = resume_sender_append(&s, d, want);
		assert_int_equal(took, want < sp ? want : sp);
		assert_true(s.produced - s.floor <= 1000);
		size_t unsent = (size_t)(s.produced - s.sent);
		assert_int_equal(drain_check(&s, 100000), unsent);
		/* resend a piece after a rewind, as a re-dial would */
		uint64_t back = s.floor + (s.produced - s.floor) / 2;
		assert_int_equal(resume_sender_rewind(&s, back, &e), 0);
		assert_int_equal(drain_check(&s, 100000), s.produced - back);
		assert_int_equal(resume_sender_ack(&s,
		                                   s.produced - (round % 3) * 10 > s.acked
		                                       ? s.produced - (round % 3) * 10
		                                       : s.acked,
		                                   &e),
		                 0);
	}
	resume_sender_fini(&s);
}

static void test_sender_grows_lazily(void **state)
{
	(void)state;
	struct resume_sender s;
	struct err e;
	resume_sender_init(&s, 0, 0);
	assert_int_equal(s.alloc, 0);
	uint8_t *big = malloc(RESUME_SENDER_CAP + 10);
	assert_non_null(big);
	fill(big, 0, RESUME_SENDER_CAP + 10);
	assert_int_equal(resume_sender_append(&s, big, 10), 10);
	assert_true(s.alloc > 0 && s.alloc < 64 * 1024);
	assert_int_equal(drain_check(&s, 5), 5); /* unsent bytes survive growth */
	assert_int_equal(resume_sender_append(&s, big + 10, RESUME_SENDER_CAP),
	                 RESUME_SENDER_CAP - 10);
	assert_int_equal(s.alloc, RESUME_SENDER_CAP);
	assert_int_equal(drain_check(&s, SIZE_MAX), RESUME_SENDER_CAP - 5);
	assert_int_equal(resume_sender_ack(&s, RESUME_SENDER_CAP, &e), 0);
	assert_int_equal(resume_sender_space(&s), RESUME_SENDER_CAP);
	free(big);
	resume_sender_fini(&s);
}

/* Zero-copy appends: reserve a span at the tail, read into it, commit; the ring starts at
 * RESUME_RING_MIN, grows only when asked to, and a budget shared by several senders stops
 * growth (never the first ring) and gets every byte back on trim and fini. */
static void test_sender_reserve_and_budget(void **state)
{
	(void)state;
	struct resume_budget b = {.limit = 3 * RESUME_RING_MIN};
	struct resume_sender s1, s2;
	struct err e;
	resume_sender_init(&s1, 0, 0);
	resume_sender_init(&s2, 0, 0);
	resume_sender_set_budget(&s1, &b);
	resume_sender_set_budget(&s2, &b);
	size_t len;
	uint8_t *p = resume_sender_reserve(&s1, 100, false, &len);
	assert_non_null(p);
	assert_int_equal(len, 100);
	assert_int_equal(s1.alloc, RESUME_RING_MIN);
	assert_int_equal(b.used, RESUME_RING_MIN);
	fill(p, 0, 60);
	resume_sender_commit(&s1, 60);
	assert_int_equal(drain_check(&s1, SIZE_MAX), 60);
	/* no growth without `grow`: the span ends where the ring does */
	p = resume_sender_reserve(&s1, 2 * RESUME_RING_MIN, false, &len);
	assert_int_equal(len, RESUME_RING_MIN - 60);
	fill(p, 60, len);
	resume_sender_commit(&s1, len);
	assert_null(resume_sender_reserve(&s1, 10, false, &len));
	assert_int_equal(len, 0);
	/* growing doubles, within the budget: 16 KiB -> 32 KiB uses the rest but one ring */
	p = resume_sender_reserve(&s1, 10, true, &len);
	assert_int_equal(s1.alloc, 2 * RESUME_RING_MIN);
	assert_int_equal(b.used, 2 * RESUME_RING_MIN);
	assert_int_equal(len, 10);
	fill(p, RESUME_RING_MIN, 10);
	resume_sender_commit(&s1, 10);
	/* the second sender's first ring is granted, its growth is not */
	p = resume_sender_reserve(&s2, 10, true, &len);
	assert_int_equal(s2.alloc, RESUME_RING_MIN);
	assert_int_equal(b.used, 3 * RESUME_RING_MIN);
	resume_sender_commit(&s2, 0);
	fill(p, 0, RESUME_RING_MIN);
	resume_sender_commit(&s2, RESUME_RING_MIN);
	assert_int_equal(resume_sender_free(&s2), 0); /* full, and the budget is spent */
	assert_null(resume_sender_reserve(&s2, 10, true, &len));
	assert_int_equal(s2.alloc, RESUME_RING_MIN);
	assert_int_equal(resume_sender_append(&s2, "x", 1), 0);
	/* the first sender's bytes are all there, in order */
	assert_int_equal(drain_check(&s1, SIZE_MAX), RESUME_RING_MIN - 60 + 10);
	assert_int_equal(resume_sender_ack(&s1, s1.produced, &e), 0);
	/* trim gives an empty ring back; the second sender may now grow */
	resume_sender_trim(&s1);
	assert_int_equal(s1.alloc, 0);
	assert_int_equal(b.used, RESUME_RING_MIN);
	assert_true(resume_sender_free(&s2) > 0);
	p = resume_sender_reserve(&s2, 10, true, &len);
	assert_int_equal(s2.alloc, 2 * RESUME_RING_MIN);
	assert_int_equal(len, 10);
	assert_int_equal(drain_check(&s2, SIZE_MAX), RESUME_RING_MIN);
	resume_sender_fini(&s1);
	resume_sender_fini(&s2);
	assert_int_equal(b.used, 0);
	/* fallback with a tail of 0: nothing is kept once given to the connection */
	resume_sender_init(&s1, 0, 0);
	resume_sender_set_tail(&s1, 0);
	resume_sender_set_fallback(&s1, true);
	p = resume_sender_reserve(&s1, 50, false, &len);
	fill(p, 0, 50);
	resume_sender_commit(&s1, 50);
	assert_int_equal(drain_check(&s1, 20), 20);
	assert_true(s1.floor == 20);
	resume_sender_fini(&s1);
	/* overlap against any accounted offset */
	assert_int_equal(resume_overlap(10, 4, 6), 6);
	assert_int_equal(resume_overlap(10, 4, 9), 6);
	assert_int_equal(resume_overlap(10, 10, 9), 0);
	assert_int_equal(resume_overlap(10, 12, 9), 0);
}

static void test_sender_fallback_tail(void **state)
{
	(void)state;
	struct resume_sender s;
	struct err e;
	const size_t tail = RESUME_FALLBACK_TAIL;
	resume_sender_init(&s, 0, 0);
	uint8_t *d = malloc(600 * 1024);
	assert_non_null(d);
	fill(d, 0, 600 * 1024);
	assert_int_equal(resume_sender_append(&s, d, 300 * 1024), 300 * 1024);
	assert_int_equal(drain_check(&s, 200 * 1024), 200 * 1024);
	assert_true(s.floor == 0);
	/* turning fallback on keeps only the last 128 KiB sent */
	resume_sender_set_fallback(&s, true);
	assert_true(s.floor == 200 * 1024 - tail);
	assert_true(s.acked == 0);
	/* sending moves the floor along, keeping the tail */
	assert_int_equal(drain_check(&s, 50 * 1024), 50 * 1024);
	assert_true(s.floor == 250 * 1024 - tail);
	assert_int_equal(resume_sender_space(&s), RESUME_SENDER_CAP - (300 * 1024 - s.floor));
	/* replay: the last 128 KiB given to the connection go again, from sent, not produced */
	assert_true(resume_sender_replay_tail(&s, tail) == 250 * 1024 - tail);
	assert_true(s.sent == 250 * 1024 - tail);
	assert_int_equal(drain_check(&s, SIZE_MAX), tail + 50 * 1024);
	/* asking for more than is retained stops at the floor */
	assert_true(resume_sender_replay_tail(&s, 10 * tail) == s.floor);
	assert_true(s.sent == 300 * 1024 - tail);
	assert_int_equal(drain_check(&s, SIZE_MAX), tail);
	/* a small replay */
	assert_true(resume_sender_replay_tail(&s, 100) == 300 * 1024 - 100);
	assert_int_equal(drain_check(&s, SIZE_MAX), 100);
	/* done in fallback mode: everything sent once the source ended */
	resume_sender_set_eof(&s);
	assert_true(resume_sender_done(&s));
	/* a capable host takes over: the floor stays and is reported by HELLO */
	resume_sender_set_fallback(&s, false);
	struct resume_hello h;
	resume_sender_hello(&s, 9, RESUME_FLAG_INPUT, &h);
	assert_true(h.offset == 300 * 1024 - tail);
	assert_int_equal(h.flags, 0);         /* never marks an output stream as input */
	assert_false(resume_sender_done(&s)); /* now it waits for the ack */
	assert_int_equal(resume_sender_ack(&s, 300 * 1024, &e), 0);
	assert_true(resume_sender_done(&s));
	/* a fresh sender in fallback mode at the start: replay from 0 */
	struct resume_sender f;
	resume_sender_init(&f, 0, 0);
	resume_sender_set_fallback(&f, true);
	assert_int_equal(resume_sender_append(&f, d, 1000), 1000);
	assert_int_equal(drain_check(&f, 600), 600);
	assert_true(resume_sender_replay_tail(&f, tail) == 0);
	assert_int_equal(drain_check(&f, SIZE_MAX), 1000);
	resume_sender_fini(&f);
	free(d);
	resume_sender_fini(&s);
}

static void test_sender_ready_and_answer(void **state)
{
	(void)state;
	struct resume_sender s;
	struct err e;
	uint8_t d[1000];
	fill(d, 0, sizeof(d));
	resume_sender_init(&s, 0, 0);
	resume_sender_append(&s, d, 1000);
	drain_check(&s, 800);
	assert_int_equal(resume_sender_ack(&s, 200, &e), 0);

	struct resume_hello h;
	resume_sender_hello(&s, 42, RESUME_FLAG_FIRST, &h);
	assert_int_equal(h.version, RESUME_VERSION);
	assert_int_equal(h.port, 42);
	assert_int_equal(h.flags, RESUME_FLAG_FIRST);
	assert_true(h.offset == 200);

	struct resume_ready r = {
	    .version = RESUME_VERSION, .status = RESUME_STATUS_OK, .offset = 500};
	assert_int_equal(resume_sender_on_ready(&s, &r, &e), 0);
	assert_true(s.sent == 500 && s.acked == 500 && s.floor == 500);
	/* a gap answer: continue from our floor, report */
	drain_check(&s, 100);
	r.status = RESUME_STATUS_GAP;
	r.offset = 100;
	err_clear(&e);
	assert_int_equal(resume_sender_on_ready(&s, &r, &e), -ERANGE);
	assert_non_null(strstr(e.msg, "gap"));
	assert_true(s.sent == 500);
	/* OK with an offset we cannot serve (beyond produced, or below the floor without a gap
	 * status): refused, nothing changes, the caller gives the stream up (issue 7) */
	r.status = RESUME_STATUS_OK;
	r.offset = 2000;
	drain_check(&s, 100);
	err_clear(&e);
	assert_int_equal(resume_sender_on_ready(&s, &r, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "beyond produced"));
	assert_true(s.sent == 600 && s.acked == 500 && s.floor == 500);
	r.offset = 499;
	assert_int_equal(resume_sender_on_ready(&s, &r, &e), -EPROTO);
	assert_true(s.sent == 600 && s.acked == 500 && s.floor == 500);
	r.offset = 500;
	assert_int_equal(resume_sender_on_ready(&s, &r, &e), 0);
	assert_true(s.sent == 500);

	/* host side of stdin: answer the guest's HELLO */
	struct resume_hello gh = {
	    .version = RESUME_VERSION, .flags = RESUME_FLAG_INPUT, .offset = 700};
	struct resume_ready out;
	assert_int_equal(resume_sender_answer(&s, &gh, &out, &e), 0);
	assert_int_equal(out.status, RESUME_STATUS_OK);
	assert_true(out.offset == 700 && s.sent == 700 && s.acked == 700);
	gh.offset = 600; /* below the floor: gap, continue from the floor */
	assert_int_equal(resume_sender_answer(&s, &gh, &out, &e), -ERANGE);
	assert_int_equal(out.status, RESUME_STATUS_GAP);
	assert_true(out.offset == 700 && s.sent == 700);
	gh.offset = 5000; /* beyond produced */
	assert_int_equal(resume_sender_answer(&s, &gh, &out, &e), -ERANGE);
	assert_int_equal(out.status, RESUME_STATUS_GAP);
	assert_true(out.offset == 1000 && s.sent == 1000 && s.acked == 700);
	resume_sender_fini(&s);
}

/* ---- receiver ------------------------------------------------------------------------------ */

#define MS 1000000ull

static void test_receiver_ack_policy(void **state)
{
	(void)state;
	struct resume_receiver r;
	uint64_t off = 12345;
	resume_receiver_init(&r, 0);
	assert_false(resume_receiver_ack_due(&r, 100 * MS));
	assert_true(resume_receiver_ack_deadline(&r) == UINT64_MAX);
	assert_false(resume_receiver_take_ack(&r, &off));
	assert_true(off == 12345);

	/* small data: due only once 5 ms passed since its first byte */
	resume_receiver_deliver(&r, 100, 10 * MS);
	resume_receiver_deliver(&r, 100, 13 * MS);
	assert_true(resume_receiver_ack_deadline(&r) == 15 * MS);
	assert_false(resume_receiver_ack_due(&r, 10 * MS));
	assert_false(resume_receiver_ack_due(&r, 15 * MS - 1));
	assert_true(resume_receiver_ack_due(&r, 15 * MS));
	assert_false(resume_receiver_ack_due(&r, 5 * MS)); /* clock before: not due */
	assert_true(resume_receiver_take_ack(&r, &off));
	assert_true(off == 200);
	assert_false(resume_receiver_ack_due(&r, 100 * MS));
	assert_false(resume_receiver_take_ack(&r, &off));
	resume_receiver_deliver(&r, 0, 1); /* nothing: no timer */
	assert_true(resume_receiver_ack_deadline(&r) == UINT64_MAX);

	/* 64 KiB since the last ack: due at once */
	resume_receiver_deliver(&r, RESUME_ACK_BYTES - 1, 20 * MS);
	assert_false(resume_receiver_ack_due(&r, 20 * MS));
	resume_receiver_deliver(&r, 1, 20 * MS);
	assert_true(resume_receiver_ack_due(&r, 20 * MS));
	assert_true(resume_receiver_take_ack(&r, &off));
	assert_true(off == 200 + RESUME_ACK_BYTES);

	/* eof: the final offset at once */
	resume_receiver_deliver(&r, 3, 30 * MS);
	assert_false(resume_receiver_ack_due(&r, 30 * MS));
	resume_receiver_set_eof(&r);
	assert_true(resume_receiver_ack_due(&r, 30 * MS));
	assert_true(resume_receiver_take_ack(&r, &off));
	assert_true(off == 203 + RESUME_ACK_BYTES);
	assert_false(resume_receiver_ack_due(&r, 30 * MS));
}

static void test_receiver_answer_and_ready(void **state)
{
	(void)state;
	struct resume_receiver r;
	struct err e;
	struct resume_ready rd;
	resume_receiver_init(&r, 1000);

	/* host, output stream: the guest retains from 800, we delivered 1000 */
	struct resume_hello h = {.version = RESUME_VERSION, .port = 3, .offset = 800};
	assert_int_equal(resume_receiver_answer(&r, &h, &rd, &e), 0);
	assert_int_equal(rd.version, RESUME_VERSION);
	assert_int_equal(rd.status, RESUME_STATUS_OK);
	assert_true(rd.offset == 1000);
	/* the guest dropped bytes we never delivered */
	h.offset = 1500;
	err_clear(&e);
	assert_int_equal(resume_receiver_answer(&r, &h, &rd, &e), -ERANGE);
	assert_int_equal(rd.status, RESUME_STATUS_GAP);
	assert_true(rd.offset == 1000);
	assert_true(r.delivered == 1500 && r.gap_bytes == 500 && r.acked == 1500);
	assert_non_null(strstr(e.msg, "500 bytes lost"));

	/* guest, stdin */
	struct resume_hello gh;
	resume_receiver_hello(&r, 8, RESUME_FLAG_FIRST, &gh);
	assert_int_equal(gh.flags, RESUME_FLAG_INPUT | RESUME_FLAG_FIRST);
	assert_true(gh.offset == 1500);
	struct resume_ready ok = {
	    .version = RESUME_VERSION, .status = RESUME_STATUS_OK, .offset = 1500};
	assert_int_equal(resume_receiver_on_ready(&r, &ok, &e), 0);
	/* the host resends from below: delivered stays, the overlap is dropped */
	ok.offset = 1400;
	assert_int_equal(resume_receiver_on_ready(&r, &ok, &e), -ERANGE);
	assert_true(r.delivered == 1500);
	assert_int_equal(resume_receiver_overlap(&r, 1400, 50), 50);
	assert_int_equal(resume_receiver_overlap(&r, 1400, 300), 100);
	assert_int_equal(resume_receiver_overlap(&r, 1500, 300), 0);
	assert_int_equal(resume_receiver_overlap(&r, 1600, 300), 0);
	/* the host reports a gap and continues ahead */
	struct resume_ready gap = {
	    .version = RESUME_VERSION, .status = RESUME_STATUS_GAP, .offset = 1700};
	assert_int_equal(resume_receiver_on_ready(&r, &gap, &e), -ERANGE);
	assert_true(r.delivered == 1700 && r.gap_bytes == 700);
}

/* ---- connection splitter ------------------------------------------------------------------- */

static void test_conn_dialer_sender(void **state)
{
	(void)state;
	struct resume_conn c;
	struct err e;
	struct resume_event ev;
	size_t used;
	resume_conn_init(&c, RESUME_DIALER, false);
	assert_true(c.sender);
	struct resume_hello h = {.version = RESUME_VERSION, .flags = RESUME_FLAG_INPUT, .port = 1};
	uint8_t hb[RESUME_HELLO_LEN];
	assert_int_equal(resume_conn_hello(&c, &h, hb, &e), -EINVAL); /* wrong direction */
	h.flags = RESUME_FLAG_FIRST;
	assert_int_equal(resume_conn_hello(&c, &h, hb, &e), 0);
	assert_memory_equal(hb, "FRYH", 4);

	/* READY then three ACKs, one of them split, fed in chunks of every size */
	uint8_t wire[RESUME_READY_LEN + 3 * RESUME_ACK_LEN];
	struct resume_ready rd = {.version = RESUME_VERSION, .status = 0, .offset = 77};
	resume_ready_encode(&rd, wire);
	resume_ack_encode(100, wire + 16);
	resume_ack_encode(1ull << 40, wire + 24);
	resume_ack_encode(UINT64_MAX, wire + 32);
	for (size_t chunk = 1; chunk <= sizeof(wire); chunk++) {
		resume_conn_init(&c, RESUME_DIALER, false);
		assert_int_equal(resume_conn_hello(&c, &h, hb, &e), 0);
		int nready = 0, nack = 0;
		uint64_t acks[3] = {0};
		for (size_t at = 0; at < sizeof(wire); at += chunk) {
			size_t n = sizeof(wire) - at < chunk ? sizeof(wire) - at : chunk;
			const uint8_t *p = wire + at;
			for (;;) {
				int r = resume_conn_feed(&c, p, n, &used, &ev, &e);
				assert_true(r >= 0);
				assert_true(used <= n);
				if (r == 0) {
					assert_int_equal(used, n);
					break;
				}
				if (ev.type == RESUME_EV_READY) {
					assert_int_equal(nready, 0);
					assert_true(ev.ready.offset == 77);
					nready++;
				} else {
					assert_int_equal(ev.type, RESUME_EV_ACK);
					assert_int_equal(nready, 1);
					acks[nack++] = ev.ack;
				}
				p += used;
				n -= used;
			}
		}
		assert_int_equal(nready, 1);
		assert_int_equal(nack, 3);
		assert_true(acks[0] == 100 && acks[1] == 1ull << 40 && acks[2] == UINT64_MAX);
		assert_int_equal(c.state, RESUME_CONN_STREAM);
	}
	/* a bad READY fails the conn; feeding again is refused */
	resume_conn_init(&c, RESUME_DIALER, false);
	err_clear(&e);
	assert_int_equal(resume_conn_feed(&c, (const uint8_t *)"FRYH", 4, &used, &ev, &e), -EPROTO);
	assert_int_equal(c.state, RESUME_CONN_FAILED);
	assert_int_equal(resume_conn_feed(&c, wire, 1, &used, &ev, &e), -EINVAL);
	/* nothing fed, nothing happens */
	resume_conn_init(&c, RESUME_DIALER, false);
	assert_int_equal(resume_conn_feed(&c, NULL, 0, &used, &ev, &e), 0);
	assert_int_equal(used, 0);
}

static void test_conn_listener_receiver(void **state)
{
	(void)state;
	struct resume_conn c;
	struct err e;
	struct resume_event ev;
	size_t used;
	uint8_t rb[RESUME_READY_LEN];
	resume_conn_init(&c, RESUME_LISTENER, false);
	assert_false(c.sender);
	struct resume_ready rd = {.version = RESUME_VERSION, .status = 0, .offset = 10};
	assert_int_equal(resume_conn_answer(&c, &rd, rb, &e), -EINVAL); /* before HELLO */

	/* HELLO and data in one read: the data waits for the answer in the caller's buffer */
	uint8_t wire[RESUME_HELLO_LEN + 5];
	struct resume_hello h = {.version = RESUME_VERSION, .port = 5, .offset = 10};
	resume_hello_encode(&h, wire);
	memcpy(wire + RESUME_HELLO_LEN, "hello", 5);
	assert_int_equal(resume_conn_feed(&c, wire, 10, &used, &ev, &e), 0);
	assert_int_equal(used, 10);
	assert_int_equal(resume_conn_feed(&c, wire + 10, sizeof(wire) - 10, &used, &ev, &e), 1);
	assert_int_equal(used, RESUME_HELLO_LEN - 10);
	assert_int_equal(ev.type, RESUME_EV_HELLO);
	assert_int_equal(ev.hello.port, 5);
	assert_int_equal(c.state, RESUME_CONN_ANSWER);
	/* the guest may not talk before READY */
	err_clear(&e);
	assert_int_equal(resume_conn_feed(&c, (const uint8_t *)"hello", 5, &used, &ev, &e),
	                 -EPROTO);
	assert_non_null(strstr(e.msg, "before the ready"));

	/* again, answering first */
	resume_conn_init(&c, RESUME_LISTENER, false);
	assert_int_equal(resume_conn_feed(&c, wire, sizeof(wire), &used, &ev, &e), 1);
	struct resume_ready bad = {.version = RESUME_VERSION, .status = 7};
	assert_int_equal(resume_conn_answer(&c, &bad, rb, &e), -EINVAL);
	rd.offset = 3; /* GAP: data continues from HELLO.offset */
	rd.status = RESUME_STATUS_GAP;
	assert_int_equal(resume_conn_answer(&c, &rd, rb, &e), 0);
	assert_memory_equal(rb, "FRYR", 4);
	assert_int_equal(resume_conn_answer(&c, &rd, rb, &e), -EINVAL); /* once */
	assert_int_equal(resume_conn_feed(&c, wire + RESUME_HELLO_LEN, 2, &used, &ev, &e), 1);
	assert_int_equal(ev.type, RESUME_EV_DATA);
	assert_true(ev.data.offset == 10 && ev.data.len == 2);
	assert_ptr_equal(ev.data.p, wire + RESUME_HELLO_LEN);
	assert_int_equal(resume_conn_feed(&c, wire + RESUME_HELLO_LEN + 2, 3, &used, &ev, &e), 1);
	assert_true(ev.data.offset == 12 && ev.data.len == 3 && used == 3);

	/* a HELLO that says stdin on an output port */
	resume_conn_init(&c, RESUME_LISTENER, false);
	h.flags = RESUME_FLAG_INPUT;
	resume_hello_encode(&h, wire);
	err_clear(&e);
	assert_int_equal(resume_conn_feed(&c, wire, RESUME_HELLO_LEN, &used, &ev, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "says stdin"));
	/* and an output HELLO on the stdin port */
	resume_conn_init(&c, RESUME_LISTENER, true);
	assert_true(c.sender);
	h.flags = 0;
	resume_hello_encode(&h, wire);
	assert_int_equal(resume_conn_feed(&c, wire, RESUME_HELLO_LEN, &used, &ev, &e), -EPROTO);
	/* a dialer on stdin receives data right after READY, from READY.offset */
	resume_conn_init(&c, RESUME_DIALER, true);
	assert_false(c.sender);
	uint8_t w2[RESUME_READY_LEN + 4];
	rd.status = RESUME_STATUS_GAP;
	rd.offset = 900;
	resume_ready_encode(&rd, w2);
	memcpy(w2 + RESUME_READY_LEN, "abcd", 4);
	assert_int_equal(resume_conn_feed(&c, w2, sizeof(w2), &used, &ev, &e), 1);
	assert_int_equal(ev.type, RESUME_EV_READY);
	assert_int_equal(resume_conn_feed(&c, w2 + used, sizeof(w2) - used, &used, &ev, &e), 1);
	assert_int_equal(ev.type, RESUME_EV_DATA);
	assert_true(ev.data.offset == 900 && ev.data.len == 4);
	assert_memory_equal(ev.data.p, "abcd", 4);

	/* found by fuzz_resume: a READY offset near 2^64, then data, must not wrap */
	resume_conn_init(&c, RESUME_DIALER, true);
	rd.status = RESUME_STATUS_OK;
	rd.offset = UINT64_MAX - 2;
	resume_ready_encode(&rd, w2);
	assert_int_equal(resume_conn_feed(&c, w2, sizeof(w2), &used, &ev, &e), 1);
	err_clear(&e);
	assert_int_equal(resume_conn_feed(&c, w2 + used, 3, &used, &ev, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "overflow"));
	resume_conn_init(&c, RESUME_DIALER, true);
	assert_int_equal(resume_conn_feed(&c, w2, sizeof(w2) - 2, &used, &ev, &e), 1);
	assert_int_equal(resume_conn_feed(&c, w2 + used, 2, &used, &ev, &e), 1);
	assert_true(ev.data.offset == UINT64_MAX - 2 && ev.data.len == 2);
}

/* ---- exactly-once simulation --------------------------------------------------------------- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *g)
{
	g->s ^= g->s << 13;
	g->s ^= g->s >> 7;
	g->s ^= g->s << 17;
	return g->s;
}

/* uniform-ish in [0, n] */
static size_t upto(struct rng *g, size_t n)
{
	return (size_t)(rnd(g) % (n + 1));
}

/* Two ends of one stream across a sequence of connections.  The guest always dials.  The data
 * sender is the guest for an output stream and the host for stdin. */
struct sim {
	struct rng *g;
	bool input;
	struct resume_sender snd;
	struct resume_receiver rcv;
	struct resume_conn dconn, lconn; /* dialer (guest), listener (host) */
	struct buf d2l, l2d;             /* bytes in flight */
	bool fin;                        /* the sender half-closed on this connection */
	bool hello_pending;              /* listener holds a HELLO, READY not sent yet */
	struct resume_hello hello;
	size_t len; /* stream length */
	uint8_t *out;
	size_t outlen;
	uint64_t now;
	unsigned conns;
	uint64_t lost; /* in-flight bytes dropped by cuts */
};

static struct resume_conn *snd_conn(struct sim *m)
{
	return m->input ? &m->lconn : &m->dconn;
}
static struct resume_conn *rcv_conn(struct sim *m)
{
	return m->input ? &m->dconn : &m->lconn;
}
static struct buf *snd_out(struct sim *m)
{
	return m->input ? &m->l2d : &m->d2l;
}
static struct buf *rcv_out(struct sim *m)
{
	return m->input ? &m->d2l : &m->l2d;
}

static void sim_connect(struct sim *m)
{
	struct err e;
	uint8_t hb[RESUME_HELLO_LEN];
	struct resume_hello h;
	uint16_t flags = m->conns == 0 ? RESUME_FLAG_FIRST : 0;
	resume_conn_init(&m->dconn, RESUME_DIALER, m->input);
	resume_conn_init(&m->lconn, RESUME_LISTENER, m->input);
	buf_reset(&m->d2l);
	buf_reset(&m->l2d);
	m->fin = false;
	m->hello_pending = false;
	if (m->input)
		resume_receiver_hello(&m->rcv, 4, flags, &h);
	else
		resume_sender_hello(&m->snd, 4, flags, &h);
	assert_int_equal(resume_conn_hello(&m->dconn, &h, hb, &e), 0);
	buf_append(&m->d2l, hb, sizeof(hb));
	m->conns++;
}

static void sim_answer(struct sim *m)
{
	struct err e;
	struct resume_ready rd;
	uint8_t rb[RESUME_READY_LEN];
	err_clear(&e);
	int r = m->input ? resume_sender_answer(&m->snd, &m->hello, &rd, &e)
	                 : resume_receiver_answer(&m->rcv, &m->hello, &rd, &e);
	if (r != 0)
		fail_msg("answer: %s", e.msg);
	assert_int_equal(resume_conn_answer(&m->lconn, &rd, rb, &e), 0);
	buf_append(&m->l2d, rb, sizeof(rb));
	m->hello_pending = false;
}

static void sim_event(struct sim *m, bool at_listener, const struct resume_event *ev)
{
	struct err e;
	err_clear(&e);
	switch (ev->type) {
	case RESUME_EV_HELLO:
		assert_true(at_listener);
		m->hello = ev->hello;
		m->hello_pending = true;
		/* sometimes the host answers later (a destination waiting for offsets) */
		if (upto(m->g, 3) != 0)
			sim_answer(m);
		break;
	case RESUME_EV_READY: {
		assert_false(at_listener);
		int r = m->input ? resume_receiver_on_ready(&m->rcv, &ev->ready, &e)
		                 : resume_sender_on_ready(&m->snd, &ev->ready, &e);
		if (r != 0)
			fail_msg("ready: %s", e.msg);
		break;
	}
	case RESUME_EV_ACK:
		if (resume_sender_ack(&m->snd, ev->ack, &e) != 0)
			fail_msg("ack: %s", e.msg);
		break;
	case RESUME_EV_DATA: {
		/* the splitter's offsets match the receiver's: nothing to drop, nothing missing */
		assert_true(ev->data.offset == m->rcv.delivered);
		assert_int_equal(resume_receiver_overlap(&m->rcv, ev->data.offset, ev->data.len),
		                 0);
		assert_true(m->outlen + ev->data.len <= m->len);
		memcpy(m->out + m->outlen, ev->data.p, ev->data.len);
		m->outlen += ev->data.len;
		resume_receiver_deliver(&m->rcv, ev->data.len, m->now);
		break;
	}
	}
}

/* Feed up to `max` in-flight bytes of one direction into the far end's conn. */
static void sim_pump(struct sim *m, bool to_listener, size_t max)
{
	struct buf *w = to_listener ? &m->d2l : &m->l2d;
	struct resume_conn *c = to_listener ? &m->lconn : &m->dconn;
	size_t n = buf_avail(w) < max ? buf_avail(w) : max;
	/* a listener waiting to answer reads nothing (the guest would not send either) */
	if (to_listener && c->state == RESUME_CONN_ANSWER)
		return;
	while (n > 0) {
		struct resume_event ev;
		struct err e;
		size_t used = 0;
		err_clear(&e);
		int r = resume_conn_feed(c, buf_head(w), n, &used, &ev, &e);
		if (r < 0)
			fail_msg("feed: %s", e.msg);
		assert_true(used <= n);
		/* copy a data event out before consuming: it points into the wire */
		if (r == 1)
			sim_event(m, to_listener, &ev);
		buf_consume(w, used);
		n -= used;
		if (r == 0)
			assert_int_equal(n, 0);
		if (to_listener && c->state == RESUME_CONN_ANSWER)
			break;
	}
}

static void sim_cut(struct sim *m)
{
	/* every in-flight byte past a random point of each direction is lost */
	struct buf *w[2] = {&m->d2l, &m->l2d};
	for (int i = 0; i < 2; i++) {
		size_t keep = upto(m->g, buf_avail(w[i]));
		m->lost += buf_avail(w[i]) - keep;
		w[i]->len = w[i]->off + keep;
	}
	m->fin = false;
	sim_pump(m, true, SIZE_MAX);
	sim_pump(m, false, SIZE_MAX);
	sim_connect(m);
}

struct sim_stats {
	uint64_t bytes, conns, lost, cuts_mid_handshake, full_stalls;
};

static void sim_run(struct rng *g, bool input, size_t len, size_t cap, unsigned cut_per_mille,
                    const uint8_t *src, struct sim_stats *st)
{
	struct sim m;
	memset(&m, 0, sizeof(m));
	m.g = g;
	m.input = input;
	m.len = len;
	m.out = malloc(len ? len : 1);
	assert_non_null(m.out);
	resume_sender_init(&m.snd, cap, 0);
	resume_receiver_init(&m.rcv, 0);
	buf_init(&m.d2l);
	buf_init(&m.l2d);
	sim_connect(&m);
	size_t src_pos = 0;
	unsigned steps = 0;
	while (!resume_sender_done(&m.snd)) {
		assert_true(++steps < 200000);
		m.now += upto(g, 2 * MS);
		/* the source produces as far as the retained buffer allows */
		if (src_pos < len) {
			size_t want = upto(g, 3000);
			if (want > len - src_pos)
				want = len - src_pos;
			src_pos += resume_sender_append(&m.snd, src + src_pos, want);
		}
		if (src_pos == len && !m.snd.eof)
			resume_sender_set_eof(&m.snd);
		/* the sender writes to a streaming connection */
		if (snd_conn(&m)->state == RESUME_CONN_STREAM && !m.fin) {
			const uint8_t *p;
			size_t n;
			resume_sender_peek(&m.snd, &p, &n);
			n = upto(g, n);
			buf_append(snd_out(&m), p, n);
			struct err e;
			assert_int_equal(resume_sender_advance(&m.snd, n, &e), 0);
			if (resume_sender_all_sent(&m.snd))
				m.fin = true;
		}
		if (m.hello_pending && upto(g, 2) == 0)
			sim_answer(&m);
		/* the network moves bytes both ways, sometimes not at all (bytes pile up) */
		if (upto(g, 2) != 0)
			sim_pump(&m, true, upto(g, 4000));
		if (upto(g, 2) != 0)
			sim_pump(&m, false, upto(g, 4000));
		/* the receiver sees the half-close after the last byte, and acks per policy */
		struct resume_conn *rc = rcv_conn(&m);
		struct buf *rin = m.input ? &m.l2d : &m.d2l;
		if (m.fin && buf_avail(rin) == 0 && rc->state == RESUME_CONN_STREAM)
			resume_receiver_set_eof(&m.rcv);
		uint64_t off;
		if (rc->state == RESUME_CONN_STREAM && resume_receiver_ack_due(&m.rcv, m.now) &&
		    resume_receiver_take_ack(&m.rcv, &off)) {
			uint8_t a[RESUME_ACK_LEN];
			resume_ack_encode(off, a);
			buf_append(rcv_out(&m), a, sizeof(a));
		}
		/* the bounded buffer holds every unacknowledged byte */
		assert_true(m.snd.produced - m.snd.floor <= m.snd.cap);
		assert_true(m.snd.floor <= m.rcv.delivered);
		assert_true(m.rcv.delivered <= m.snd.produced);
		if (resume_sender_space(&m.snd) == 0 && src_pos < len)
			st->full_stalls++;
		if (upto(g, 999) < cut_per_mille) {
			if (snd_conn(&m)->state != RESUME_CONN_STREAM)
				st->cuts_mid_handshake++;
			sim_cut(&m);
		}
	}
	st->bytes += len;
	st->conns += m.conns;
	st->lost += m.lost;
	assert_int_equal(m.outlen, len);
	assert_memory_equal(m.out, src, len);
	assert_true(m.rcv.gap_bytes == 0);
	assert_true(m.rcv.delivered == len && m.snd.acked == len);
	free(m.out);
	buf_fini(&m.d2l);
	buf_fini(&m.l2d);
	resume_sender_fini(&m.snd);
}

static void test_exactly_once_lossy(void **state)
{
	(void)state;
	struct rng g = {.s = 0x9e3779b97f4a7c15ull};
	enum { MAXLEN = 200000 };
	uint8_t *src = malloc(MAXLEN);
	assert_non_null(src);
	/* numbered bytes: every position is recognisable */
	fill(src, 0, MAXLEN);
	struct sim_stats st[2];
	memset(st, 0, sizeof(st));
	for (int trial = 0; trial < 3000; trial++) {
		size_t len = trial % 50 == 0 ? MAXLEN : upto(&g, 20000);
		size_t cap = trial % 3 == 0 ? 0 : 256 + upto(&g, 8192);
		unsigned cut = (unsigned)(trial % 4 == 0 ? 200 : 5 + upto(&g, 60));
		bool input = upto(&g, 1) == 1;
		sim_run(&g, input, len, cap, cut, src, &st[input]);
	}
	/* the runs really cut connections, lost in-flight bytes and filled the buffer */
	for (int i = 0; i < 2; i++) {
		print_message("%s: %llu bytes, %llu connections, %llu in-flight bytes lost, "
		              "%llu cuts in handshake, %llu full-buffer stalls\n",
		              i ? "stdin" : "stdout", (unsigned long long)st[i].bytes,
		              (unsigned long long)st[i].conns, (unsigned long long)st[i].lost,
		              (unsigned long long)st[i].cuts_mid_handshake,
		              (unsigned long long)st[i].full_stalls);
		assert_true(st[i].conns > 5000);
		assert_true(st[i].lost > 500000);
		assert_true(st[i].cuts_mid_handshake > 300);
		assert_true(st[i].full_stalls > 1000);
	}
	free(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello_layout_round_trip),
	    cmocka_unit_test(test_hello_proof),
	    cmocka_unit_test(test_ready_ack_layout_round_trip),
	    cmocka_unit_test(test_partial_needs_more),
	    cmocka_unit_test(test_malformed_rejected),
	    cmocka_unit_test(test_sender_basic),
	    cmocka_unit_test(test_sender_ack_beyond_sent_and_start),
	    cmocka_unit_test(test_sender_capacity_wrap),
	    cmocka_unit_test(test_sender_grows_lazily),
	    cmocka_unit_test(test_sender_reserve_and_budget),
	    cmocka_unit_test(test_sender_fallback_tail),
	    cmocka_unit_test(test_sender_ready_and_answer),
	    cmocka_unit_test(test_receiver_ack_policy),
	    cmocka_unit_test(test_receiver_answer_and_ready),
	    cmocka_unit_test(test_conn_dialer_sender),
	    cmocka_unit_test(test_conn_listener_receiver),
	    cmocka_unit_test(test_exactly_once_lossy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
