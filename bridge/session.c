/* Session secrets and proofs (bridge/session.h): HMAC-SHA256 with a distinct label per use, so
 * a proof made for one purpose is never valid for another. */
#include "bridge/session.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "common/hex.h"

static const char label_bridge[] = "ferry bridge proof v1";
static const char label_hello[] = "ferry stdio hello v2";
static const char label_wake[] = "ferry wake proof v1";

int session_random(void *buf, size_t n, struct err *e)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(e, -errno, "getrandom");
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int session_hex32(const char *s, uint8_t out[32], struct err *e)
{
	if (!s)
		return err_set(e, -EINVAL, "missing");
	size_t n = strnlen(s, SESSION_HEX_LEN + 1);
	if (n != SESSION_HEX_LEN)
		return err_set(e, -EINVAL, "want %d hex digits, got %zu characters",
		               SESSION_HEX_LEN, n);
	return hex_decode(s, n, out, e);
}

void session_hex32_encode(const uint8_t in[32], char out[SESSION_HEX_LEN + 1])
{
	hex_encode(in, 32, out);
}

static void mac(const uint8_t *secret, const char *label, const void *a, size_t an, const void *b,
                size_t bn, uint8_t out[SESSION_PROOF_LEN])
{
	struct sha256_part parts[3] = {{label, strlen(label)}, {a, an}, {b, bn}};
	/* an empty part is left out: its NULL pointer must not reach memcpy */
	hmac_sha256(secret, SESSION_SECRET_LEN, parts, bn ? 3 : 2, out);
}

void session_bridge_proof(const uint8_t secret[SESSION_SECRET_LEN],
                          const uint8_t challenge[SESSION_NONCE_LEN],
                          uint8_t out[SESSION_PROOF_LEN])
{
	mac(secret, label_bridge, challenge, SESSION_NONCE_LEN, NULL, 0, out);
}

bool session_bridge_verify(const uint8_t secret[SESSION_SECRET_LEN],
                           const uint8_t challenge[SESSION_NONCE_LEN], const char *proof_hex)
{
	uint8_t got[SESSION_PROOF_LEN], want[SESSION_PROOF_LEN];
	struct err e;
	if (session_hex32(proof_hex, got, &e) < 0)
		return false;
	session_bridge_proof(secret, challenge, want);
	return mem_equal_ct(got, want, sizeof(want));
}

void session_hello_mac(const struct session_auth *a, const uint8_t *hello, size_t len,
                       uint8_t out[SESSION_PROOF_LEN])
{
	mac(a->secret, label_hello, a->challenge, SESSION_NONCE_LEN, hello, len, out);
}

int session_wake_challenge(uint8_t out[SESSION_WAKE_LEN], struct err *e)
{
	memcpy(out, SESSION_WAKE_MAGIC, 4);
	out[4] = SESSION_WAKE_VERSION;
	out[5] = out[6] = out[7] = 0;
	return session_random(out + 8, SESSION_WAKE_LEN - 8, e);
}

int session_wake_challenge_check(const uint8_t *p, size_t n, struct err *e)
{
	for (size_t i = 0; i < n && i < 4; i++)
		if (p[i] != (uint8_t)SESSION_WAKE_MAGIC[i])
			return err_set(e, -EPROTO, "wake challenge: bad magic byte %zu: 0x%02x", i,
			               p[i]);
	if (n >= 6 && (p[4] | p[5] << 8) != SESSION_WAKE_VERSION)
		return err_set(e, -EPROTO, "wake challenge: version %u (want %u)", p[4] | p[5] << 8,
		               SESSION_WAKE_VERSION);
	if (n >= 8 && (p[6] | p[7]))
		return err_set(e, -EPROTO, "wake challenge: reserved field not 0");
	return n >= SESSION_WAKE_LEN ? SESSION_WAKE_LEN : 0;
}

void session_wake_proof(const uint8_t secret[SESSION_SECRET_LEN],
                        const uint8_t challenge[SESSION_WAKE_LEN], uint8_t out[SESSION_WAKE_LEN])
{
	mac(secret, label_wake, challenge, SESSION_WAKE_LEN, NULL, 0, out);
}

bool session_wake_verify(const uint8_t secret[SESSION_SECRET_LEN],
                         const uint8_t challenge[SESSION_WAKE_LEN],
                         const uint8_t proof[SESSION_WAKE_LEN])
{
	uint8_t want[SESSION_WAKE_LEN];
	session_wake_proof(secret, challenge, want);
	return mem_equal_ct(proof, want, sizeof(want));
}
