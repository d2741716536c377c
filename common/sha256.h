/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), small and dependency-free so the static
 * guest agent can prove secrets without a crypto library.  Used for session and stream proofs
 * between host and guest, and for hcsshim's session id -> uint32 rule (hcsshim-lm.md §2.4).
 * Pure functions on caller-owned memory; no allocation, thread-safe. */
#ifndef FERRY_COMMON_SHA256_H
#define FERRY_COMMON_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN   32
#define SHA256_BLOCK 64

struct sha256 {
	uint32_t h[8];
	uint64_t total; /* bytes hashed so far */
	uint8_t block[SHA256_BLOCK];
	size_t n; /* bytes waiting in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* Write the digest and wipe the state. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);
/* One-shot digest. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

/* HMAC-SHA256 of the concatenation of n_parts byte ranges, with any key length. */
struct sha256_part {
	const void *p;
	size_t n;
};
void hmac_sha256(const void *key, size_t key_len, const struct sha256_part *parts, size_t n_parts,
                 uint8_t out[SHA256_LEN]);

/* Compare n bytes in time independent of where they differ. */
bool mem_equal_ct(const void *a, const void *b, size_t n);

#endif
