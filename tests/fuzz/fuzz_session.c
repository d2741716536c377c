/* Fuzz harness for the session proofs (bridge/session.h) and the decoders of what a peer sends
 * before it proved anything: the wake challenge a host reads from a guest's wake port
 * (session_wake_challenge_check, at every prefix: the verdict never changes once given), the
 * 64-hex-digit fields of NegotiateProtocol (session_hex32), and a HELLO checked against a
 * session (resume_stream_hello_check): a HELLO made of fuzzed bytes never passes a session's
 * check, the same HELLO signed by the session always does, and the check changes nothing. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/resume.h"
#include "bridge/session.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_wake(const uint8_t *p, size_t n)
{
	int prev = 0;
	for (size_t k = 0; k <= n && k <= SESSION_WAKE_LEN + 4; k++) {
		struct err e;
		err_clear(&e);
		int r = session_wake_challenge_check(p, k, &e);
		assert(r == 0 || r == SESSION_WAKE_LEN || r == -EPROTO);
		if (r < 0)
			assert(e.msg[0] != '\0');
		if (prev < 0)
			assert(r == prev);
		if (prev == SESSION_WAKE_LEN)
			assert(r == SESSION_WAKE_LEN);
		if (r == SESSION_WAKE_LEN) {
			/* a whole valid challenge: the proof of it verifies, a changed one not */
			uint8_t s[SESSION_SECRET_LEN], pr[SESSION_WAKE_LEN];
			memset(s, 3, sizeof(s));
			session_wake_proof(s, p, pr);
			assert(session_wake_verify(s, p, pr));
			pr[k % SESSION_WAKE_LEN] ^= 1;
			assert(!session_wake_verify(s, p, pr));
		}
		prev = r;
	}
}

static void fuzz_hex(const uint8_t *p, size_t n)
{
	char s[SESSION_HEX_LEN + 2];
	size_t k = n < sizeof(s) - 1 ? n : sizeof(s) - 1;
	memcpy(s, p, k);
	s[k] = '\0';
	uint8_t out[32];
	struct err e;
	int r = session_hex32(s, out, &e);
	if (r == 0) {
		char back[SESSION_HEX_LEN + 1];
		session_hex32_encode(out, back);
		assert(strlen(s) == SESSION_HEX_LEN);
		for (size_t i = 0; i < SESSION_HEX_LEN; i++)
			assert(back[i] == (s[i] >= 'A' && s[i] <= 'F' ? s[i] + 32 : s[i]));
	} else {
		assert(r == -EINVAL && e.msg[0] != '\0');
	}
	/* a proof made of fuzzed hex is never the right one */
	uint8_t sec[32] = {1}, ch[32] = {2};
	if (r == 0) {
		uint8_t want[32];
		session_bridge_proof(sec, ch, want);
		assert(session_bridge_verify(sec, ch, s) == (memcmp(out, want, 32) == 0));
	}
}

static void fuzz_hello(const uint8_t *p, size_t n)
{
	struct resume_hello h;
	struct err e;
	if (resume_hello_decode(p, n, &h, &e) != RESUME_HELLO_LEN)
		return;
	struct session_auth a = {.on = true};
	memset(a.secret, 0x5a, sizeof(a.secret));
	memset(a.challenge, 0xa5, sizeof(a.challenge));
	struct resume_receiver rx;
	struct resume_sender tx;
	resume_receiver_init(&rx, 0);
	resume_sender_init(&tx, 0, 0);
	struct resume_stream st = {0};
	if (h.flags & RESUME_FLAG_INPUT)
		st.tx = &tx;
	else
		st.rx = &rx;
	struct resume_stream before = st;
	int r = resume_stream_hello_check(&st, &h, h.port, &a, &e);
	/* the fuzzer does not know the secret: a mac of 2^-256 luck aside, refused */
	struct resume_hello signed_h = h;
	resume_hello_sign(&signed_h, &a);
	if (memcmp(signed_h.mac, h.mac, sizeof(h.mac)) != 0)
		assert(r == -EACCES);
	assert(memcmp(&before, &st, sizeof(st)) == 0);
	signed_h.dial = 1 + (h.dial == UINT32_MAX ? 0 : h.dial);
	resume_hello_sign(&signed_h, &a);
	assert(resume_stream_hello_check(&st, &signed_h, h.port, &a, &e) == 0);
	assert(resume_stream_hello_check(&st, &signed_h, h.port + 1, &a, &e) == -EACCES);
	resume_sender_fini(&tx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	fuzz_wake(buf, size);
	fuzz_hex(buf, size);
	fuzz_hello(buf, size);
	free(buf);
	return 0;
}
