/* ferry's session secret and the proofs derived from it (docs/bridge.md "Sessions", docs/
 * stdio-resume.md §5).  Whoever can reach a port of ours is an adversary until it proves
 * otherwise: a process in the VM over AF_VSOCK, another container, anyone who can open a
 * hybrid unix socket.  So host and guest share a secret for the life of the agent:
 *   - the host draws 32 random bytes and hands them to the guest in the "Ferry" object of
 *     its first NegotiateProtocol ("Session"); the host keeps them in its migration state
 *     (host/gcs_state.h), the guest for its life;
 *   - every NegotiateProtocol carries a fresh 32-byte "Challenge", and the guest answers
 *     FerrySessionProof = HMAC-SHA256(secret, "ferry bridge proof v1" | challenge): a host
 *     waiting for a re-dial takes no connection that cannot answer it;
 *   - every stdio HELLO carries HMAC-SHA256(secret, "ferry stdio hello v2" | challenge |
 *     HELLO bytes 0..23 (port, direction, dial number, offset)): bound to the current
 *     negotiation and to its port, and numbered, so an old HELLO cannot be replayed;
 *   - the wake port answers a connection with a 32-byte challenge ("FRYW", version, 24
 *     random bytes) and wakes only on HMAC-SHA256(secret, "ferry wake proof v1" | challenge).
 * Proofs are compared in constant time.  Pure functions apart from session_random; nothing
 * here logs. */
#ifndef FERRY_BRIDGE_SESSION_H
#define FERRY_BRIDGE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/sha256.h"

#define SESSION_SECRET_LEN 32
#define SESSION_NONCE_LEN  32 /* a negotiation's challenge */
#define SESSION_PROOF_LEN  SHA256_LEN
#define SESSION_HEX_LEN    64 /* the JSON form of each of the three */

/* What one negotiation established: proofs are made and checked only when `on` (a session
 * exists and this negotiation carried a challenge). */
struct session_auth {
	bool on;
	uint8_t secret[SESSION_SECRET_LEN];
	uint8_t challenge[SESSION_NONCE_LEN];
};

/* n bytes from the kernel's random generator (getrandom).  0 or -errno. */
int session_random(void *buf, size_t n, struct err *e);

/* Decode a 64-hex-digit field ("Session", "Challenge", "FerrySessionProof") into 32 bytes.
 * -EINVAL with a message when s is NULL, not 64 characters or not hex. */
int session_hex32(const char *s, uint8_t out[32], struct err *e);
/* The 64 hex digits of 32 bytes, NUL-terminated (out: 65 bytes). */
void session_hex32_encode(const uint8_t in[32], char out[SESSION_HEX_LEN + 1]);

/* FerrySessionProof for a challenge. */
void session_bridge_proof(const uint8_t secret[SESSION_SECRET_LEN],
                          const uint8_t challenge[SESSION_NONCE_LEN],
                          uint8_t out[SESSION_PROOF_LEN]);
/* Check a FerrySessionProof as received (hex, may be NULL): true only when it is the proof of
 * `challenge` under `secret` (constant-time compare). */
bool session_bridge_verify(const uint8_t secret[SESSION_SECRET_LEN],
                           const uint8_t challenge[SESSION_NONCE_LEN], const char *proof_hex);

/* The MAC of a stdio HELLO: its first `len` bytes (everything before the MAC). */
void session_hello_mac(const struct session_auth *a, const uint8_t *hello, size_t len,
                       uint8_t out[SESSION_PROOF_LEN]);

/* ---- the wake port ---- */

#define SESSION_WAKE_MAGIC   "FRYW"
#define SESSION_WAKE_VERSION 1
#define SESSION_WAKE_LEN     32 /* challenge and proof alike */

/* A new wake challenge: "FRYW" | u16 version | u16 0 | 24 random bytes.  0 or -errno. */
int session_wake_challenge(uint8_t out[SESSION_WAKE_LEN], struct err *e);
/* Check a challenge received by the host (n bytes so far): SESSION_WAKE_LEN when whole and
 * valid, 0 when more bytes are needed, -EPROTO (bad magic, version or reserved field). */
int session_wake_challenge_check(const uint8_t *p, size_t n, struct err *e);
/* The proof the host answers with, and the guest's constant-time check of it. */
void session_wake_proof(const uint8_t secret[SESSION_SECRET_LEN],
                        const uint8_t challenge[SESSION_WAKE_LEN], uint8_t out[SESSION_WAKE_LEN]);
bool session_wake_verify(const uint8_t secret[SESSION_SECRET_LEN],
                         const uint8_t challenge[SESSION_WAKE_LEN],
                         const uint8_t proof[SESSION_WAKE_LEN]);

#endif
