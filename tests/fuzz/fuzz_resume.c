/* Fuzz harness for the stdio resume protocol (bridge/resume): arbitrary bytes go into the
 * HELLO / READY / ACK decoders at every prefix length, and into the connection splitter in
 * all four roles (guest/host x output/stdin) cut into chunks chosen by the input's first
 * byte, with every event applied through the code both ends run (resume_stream_hello at the
 * host's listener, resume_stream_event for READY / ACK / data, what guest/relay_hub.c and
 * host/iorelay_resume.c call) to a real sender or receiver.  Invariants: decoders say "need
 * more", "whole message" or -EPROTO with a message, consistently across prefixes; the
 * splitter always makes progress, never points outside the fed bytes, numbers data
 * contiguously and accounts for every byte; the stream rules return only their documented
 * verdicts, never skip more than a run, never move delivered offsets backwards, and leave
 * sender and receiver offsets ordered. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/resume.h"
#include "bridge/session.h"
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

static void check_verdict(int r, const struct err *e)
{
	assert(r == 0 || r == -ERANGE || r == -EPROTO || r == RESUME_GIVE_UP);
	if (r != 0)
		assert(e->code != 0 && e->msg[0] != '\0');
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
	/* the end whose rules apply: the data sender or the data receiver */
	struct resume_stream st = {0};
	if ((role == RESUME_DIALER) != input)
		st.tx = &s;
	else
		st.rx = &rcv;
	st.pending = seed % 3 == 0 ? seed % 17 : 0; /* bytes taken, not yet delivered */
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
	bool have_data_off = false, failed = false, stopped = false;
	uint64_t now = 0;
	while (pos < size && !failed && !stopped) {
		seed = seed * 1103515245u + 12345u;
		size_t chunk = 1 + (seed >> 16) % 37;
		if (chunk > size - pos)
			chunk = size - pos;
		const uint8_t *p = buf + pos;
		size_t n = chunk;
		while (n > 0 && !stopped) {
			struct resume_event ev;
			size_t used = 12345, skip = 12345;
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
				uint64_t had = rcv.delivered;
				err_clear(&e);
				switch (ev.type) {
				case RESUME_EV_HELLO: {
					assert(role == RESUME_LISTENER);
					assert(!!(ev.hello.flags & RESUME_FLAG_INPUT) == input);
					assert(c.state == RESUME_CONN_ANSWER);
					prefix += used;
					assert(prefix == RESUME_HELLO_LEN);
					/* the event layer refuses a HELLO */
					assert(resume_stream_event(&st, &ev, &skip, &e) == -EINVAL);
					struct resume_ready rd;
					uint8_t rb[RESUME_READY_LEN];
					err_clear(&e);
					/* a HELLO for another port is refused, nothing changes */
					uint32_t port =
					    (seed & 4) ? ev.hello.port : ev.hello.port + 1;
					struct resume_sender s0 = s;
					struct resume_receiver r0 = rcv;
					/* with a session half the time: a fuzzed HELLO cannot
					 * carry its mac, unless signed here (then it must pass) */
					struct session_auth a = {.on = (seed & 8) != 0};
					memset(a.secret, 0x11, sizeof(a.secret));
					if (a.on && (seed & 16)) {
						resume_hello_sign(&ev.hello, &a);
						ev.hello.dial = st.last_dial + 1;
						resume_hello_sign(&ev.hello, &a);
					}
					int hr =
					    resume_stream_hello(&st, &ev.hello, port, &a, &rd, &e);
					if (hr == -EACCES && port == ev.hello.port) {
						/* refused for its proof: nothing changed */
						assert(a.on);
						assert(memcmp(&s0, &s, sizeof(s)) == 0);
						assert(memcmp(&r0, &rcv, sizeof(rcv)) == 0);
						stopped = true;
						break;
					}
					if (port != ev.hello.port) {
						assert(hr == -EACCES);
						assert(memcmp(&s0, &s, sizeof(s)) == 0);
						assert(memcmp(&r0, &rcv, sizeof(rcv)) == 0);
						stopped = true;
						break;
					}
					assert(hr == 0 || hr == -ERANGE);
					assert(rd.status ==
					       (hr == 0 ? RESUME_STATUS_OK : RESUME_STATUS_GAP));
					assert(resume_conn_answer(&c, &rd, rb, &e) == 0);
					resume_stream_new_conn(&st);
					if (!c.sender) {
						next_data = c.data_off;
						have_data_off = true;
						/* the data continues where the guest resumes */
						assert(next_data ==
						       (hr == 0 ? rd.offset : ev.hello.offset));
					}
					break;
				}
				case RESUME_EV_READY: {
					assert(role == RESUME_DIALER);
					assert(c.state == RESUME_CONN_STREAM);
					prefix += used;
					assert(prefix == RESUME_READY_LEN);
					struct resume_sender s0 = s;
					int vr = resume_stream_event(&st, &ev, &skip, &e);
					check_verdict(vr, &e);
					assert(skip == 0);
					if (vr == RESUME_GIVE_UP) {
						/* a sender refuses an offset it cannot serve, and
						 * changes nothing */
						assert(!input &&
						       ev.ready.status == RESUME_STATUS_OK);
						assert(ev.ready.offset < s0.floor ||
						       ev.ready.offset > s0.produced);
						assert(memcmp(&s0, &s, sizeof(s)) == 0);
						stopped = true;
						break;
					}
					assert(vr != -EPROTO);
					if (!input && vr == 0)
						assert(s.sent == ev.ready.offset);
					if (!c.sender) {
						next_data = ev.ready.offset;
						have_data_off = true;
					}
					break;
				}
				case RESUME_EV_ACK: {
					assert(c.sender && c.state == RESUME_CONN_STREAM);
					acks++;
					uint64_t before = s.acked;
					int vr = resume_stream_event(&st, &ev, &skip, &e);
					check_verdict(vr, &e);
					assert(vr != RESUME_GIVE_UP && skip == 0);
					if (vr == 0)
						assert(s.acked == ev.ack);
					else
						assert(s.acked == before);
					if (vr == -EPROTO) {
						/* too many refused acks: the connection is dropped */
						assert(st.bad_acks >= RESUME_BAD_ACKS_MAX);
						stopped = true;
					}
					break;
				}
				case RESUME_EV_DATA: {
					assert(!c.sender && c.state == RESUME_CONN_STREAM);
					assert(have_data_off && ev.data.offset == next_data);
					assert(ev.data.p == p && ev.data.len == n && used == n);
					next_data += ev.data.len;
					data += ev.data.len;
					int vr = resume_stream_event(&st, &ev, &skip, &e);
					assert(vr == 0);
					assert(skip <= ev.data.len);
					/* the bytes kept start exactly at what the receiver had */
					uint64_t have = st.pending > UINT64_MAX - rcv.delivered
					                    ? UINT64_MAX
					                    : rcv.delivered + st.pending;
					if (skip < ev.data.len)
						assert(ev.data.offset + skip <= have);
					resume_receiver_deliver(&rcv, ev.data.len - skip, now);
					break;
				}
				}
				assert(rcv.delivered >= had);
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
	if (!failed && !stopped) {
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
		resume_sender_set_tail(&s, buf[3]);
		check_sender(&s);
		/* zero-copy appends into what is free, then trimming an emptied ring */
		size_t room;
		uint8_t *w = resume_sender_reserve(&s, buf[4] * 37u, buf[1] & 1, &room);
		assert(room <= resume_sender_free(&s));
		if (room) {
			memset(w, 0xab, room);
			resume_sender_commit(&s, room);
		}
		check_sender(&s);
		if (resume_sender_ack(&s, s.produced, &e) == 0) {
			resume_sender_trim(&s);
			assert(s.alloc == 0);
		}
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
