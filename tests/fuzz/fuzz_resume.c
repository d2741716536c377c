/* Fuzz harness for the stdio resume protocol (bridge/resume): arbitrary bytes go into the
 * HELLO / READY / ACK decoders at every prefix length, and into the connection splitter in
 * all four roles (guest/host x output/stdin) cut into chunks chosen by the input's first
 * byte, with every event applied to a real sender or receiver.  Invariants: decoders say
 * "need more", "whole message" or -EPROTO with a message, consistently across prefixes; the
 * splitter always makes progress, never points outside the fed bytes, numbers data
 * contiguously and accounts for every byte; sender and receiver offsets stay ordered. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/resume.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int r, const struct err *e)
{
	assert(r == -EPROTO);
	assert(e->code == r && e->msg[0] != '\0');
}

static void fuzz_decoders(const uint8_t *buf, size_t size)
{
	int hprev = 0, rprev = 0;
	struct resume_hello hfirst = {0};
	struct resume_ready rfirst = {0};
	size_t lim = size < 40 ? size : 40;
	for (size_t n = 0; n <= lim; n++) {
		struct err e;
		struct resume_hello h;
		struct resume_ready r;
		err_clear(&e);
		int hr = resume_hello_decode(buf, n, &h, &e);
		if (hr < 0)
			check_err(hr, &e);
		else
			assert(hr == 0 || (hr == RESUME_HELLO_LEN && n >= RESUME_HELLO_LEN));
		/* prefix property: a verdict, once given, never changes with more bytes */
		if (hprev < 0)
			assert(hr == hprev);
		if (hprev == RESUME_HELLO_LEN) {
			assert(hr == RESUME_HELLO_LEN);
			assert(memcmp(&h, &hfirst, sizeof(h)) == 0);
		}
		if (hr == RESUME_HELLO_LEN && hprev != hr) {
			hfirst = h;
			assert(h.version == RESUME_VERSION);
			assert((h.flags & ~RESUME_FLAGS_KNOWN) == 0);
			uint8_t back[RESUME_HELLO_LEN];
			resume_hello_encode(&h, back);
			assert(memcmp(back, buf, RESUME_HELLO_LEN) == 0);
		}
		hprev = hr;

		err_clear(&e);
		int rr = resume_ready_decode(buf, n, &r, &e);
		if (rr < 0)
			check_err(rr, &e);
		else
			assert(rr == 0 || (rr == RESUME_READY_LEN && n >= RESUME_READY_LEN));
		if (rprev < 0)
			assert(rr == rprev);
		if (rprev == RESUME_READY_LEN) {
			assert(rr == RESUME_READY_LEN);
			assert(memcmp(&r, &rfirst, sizeof(r)) == 0);
		}
		if (rr == RESUME_READY_LEN && rprev != rr) {
			rfirst = r;
			assert(r.status == RESUME_STATUS_OK || r.status == RESUME_STATUS_GAP);
			uint8_t back[RESUME_READY_LEN];
			resume_ready_encode(&r, back);
			assert(memcmp(back, buf, RESUME_READY_LEN) == 0);
		}
		rprev = rr;

		uint64_t off = 0;
		int ar = resume_ack_decode(buf, n, &off);
		assert(ar == (n >= RESUME_ACK_LEN ? RESUME_ACK_LEN : 0));
	}
}

static void check_sender(const struct resume_sender *s)
{
	assert(s->acked <= s->produced);
	assert(s->floor <= s->sent && s->sent <= s->produced);
	assert(s->produced - s->floor <= s->cap);
	assert(s->fallback || s->floor == s->acked);
}

static void fuzz_conn(const uint8_t *buf, size_t size, enum resume_role role, bool input,
                      uint32_t seed)
{
	struct resume_conn c;
	struct resume_sender s;
	struct resume_receiver rcv;
	struct err e;
	resume_conn_init(&c, role, input);
	resume_sender_init(&s, 4096, 0);
	resume_receiver_init(&rcv, 0);
	/* some retained bytes so that small acks and offsets are meaningful */
	static uint8_t fill[3000];
	assert(resume_sender_append(&s, fill, sizeof(fill)) == sizeof(fill));
	assert(resume_sender_advance(&s, 2000, &e) == 0);
	if (role == RESUME_DIALER) {
		struct resume_hello h;
		uint8_t hb[RESUME_HELLO_LEN];
		if (input)
			resume_receiver_hello(&rcv, 1, RESUME_FLAG_FIRST, &h);
		else
			resume_sender_hello(&s, 1, RESUME_FLAG_FIRST, &h);
		assert(resume_conn_hello(&c, &h, hb, &e) == 0);
	}

	size_t pos = 0, prefix = 0, acks = 0, data = 0;
	uint64_t next_data = 0;
	bool have_data_off = false, failed = false;
	uint64_t now = 0;
	while (pos < size && !failed) {
		seed = seed * 1103515245u + 12345u;
		size_t chunk = 1 + (seed >> 16) % 37;
		if (chunk > size - pos)
			chunk = size - pos;
		const uint8_t *p = buf + pos;
		size_t n = chunk;
		while (n > 0) {
			struct resume_event ev;
			size_t used = 12345;
			err_clear(&e);
			int r = resume_conn_feed(&c, p, n, &used, &ev, &e);
			if (r < 0) {
				assert(e.code == r && e.msg[0] != '\0');
				assert(c.state == RESUME_CONN_FAILED);
				assert(resume_conn_feed(&c, p, n, &used, &ev, &e) == -EINVAL);
				failed = true;
				break;
			}
			assert(used <= n);
			if (r == 0) {
				assert(used == n);
				if (c.state == RESUME_CONN_PREFIX)
					prefix += used;
			} else {
				assert(r == 1 && used > 0);
				now += 1000000;
				switch (ev.type) {
				case RESUME_EV_HELLO: {
					assert(role == RESUME_LISTENER);
					assert(!!(ev.hello.flags & RESUME_FLAG_INPUT) == input);
					assert(c.state == RESUME_CONN_ANSWER);
					prefix += used;
					assert(prefix == RESUME_HELLO_LEN);
					struct resume_ready rd;
					uint8_t rb[RESUME_READY_LEN];
					if (input)
						resume_sender_answer(&s, &ev.hello, &rd, &e);
					else
						resume_receiver_answer(&rcv, &ev.hello, &rd, &e);
					assert(resume_conn_answer(&c, &rd, rb, &e) == 0);
					if (!c.sender) {
						next_data = c.data_off;
						have_data_off = true;
					}
					break;
				}
				case RESUME_EV_READY:
					assert(role == RESUME_DIALER);
					assert(c.state == RESUME_CONN_STREAM);
					prefix += used;
					assert(prefix == RESUME_READY_LEN);
					if (input)
						resume_receiver_on_ready(&rcv, &ev.ready, &e);
					else
						resume_sender_on_ready(&s, &ev.ready, &e);
					if (!c.sender) {
						next_data = ev.ready.offset;
						have_data_off = true;
					}
					break;
				case RESUME_EV_ACK:
					assert(c.sender && c.state == RESUME_CONN_STREAM);
					acks++;
					resume_sender_ack(&s, ev.ack, &e);
					break;
				case RESUME_EV_DATA:
					assert(!c.sender && c.state == RESUME_CONN_STREAM);
					assert(have_data_off && ev.data.offset == next_data);
					assert(ev.data.p == p && ev.data.len == n && used == n);
					next_data += ev.data.len;
					data += ev.data.len;
					size_t dup = resume_receiver_overlap(&rcv, ev.data.offset,
					                                     ev.data.len);
					assert(dup <= ev.data.len);
					resume_receiver_deliver(&rcv, ev.data.len - dup, now);
					break;
				}
			}
			check_sender(&s);
			assert(rcv.acked <= rcv.delivered);
			uint64_t off;
			if (resume_receiver_ack_due(&rcv, now))
				assert(resume_receiver_take_ack(&rcv, &off) &&
				       off == rcv.delivered);
			p += used;
			n -= used;
		}
		pos += chunk;
	}
	if (!failed) {
		/* every byte is accounted for: prefix, whole acks, a partial ack, data */
		if (c.state == RESUME_CONN_PREFIX)
			assert(prefix == size && c.staged == size);
		else
			assert(prefix + acks * RESUME_ACK_LEN + data + c.staged == size);
		assert(c.staged < RESUME_HELLO_LEN);
	}
	/* the fallback paths of the sender, driven by input bytes */
	if (size > 4) {
		resume_sender_set_fallback(&s, true);
		check_sender(&s);
		resume_sender_replay_tail(&s, buf[1] | (size_t)buf[2] << 8);
		check_sender(&s);
		const uint8_t *pp;
		size_t len;
		resume_sender_peek(&s, &pp, &len);
		if (len)
			assert(resume_sender_advance(&s, len, &e) == 0);
		check_sender(&s);
	}
	resume_sender_fini(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* exact-size heap copy so ASan sees any read past the end */
	size_t n = size - 1;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, n);
	fuzz_decoders(buf, n);
	uint32_t seed = data[0];
	fuzz_conn(buf, n, RESUME_DIALER, false, seed);
	fuzz_conn(buf, n, RESUME_DIALER, true, seed);
	fuzz_conn(buf, n, RESUME_LISTENER, false, seed);
	fuzz_conn(buf, n, RESUME_LISTENER, true, seed);
	free(buf);
	return 0;
}
