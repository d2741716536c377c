/* Lower-case hexadecimal for byte strings that travel in JSON (session secrets and proofs,
 * unacknowledged stdin in the host's migration state).  Pure functions, no allocation. */
#ifndef FERRY_COMMON_HEX_H
#define FERRY_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* The value of one hex digit (either case), or -1. */
int hex_digit(char c);
/* Write 2n lower-case hex digits and a NUL to out (2n + 1 bytes). */
void hex_encode(const uint8_t *p, size_t n, char *out);
/* Decode exactly `len` hex digits (either case) into len / 2 bytes at out.  -EINVAL with a
 * message naming the position when len is odd or a character is not a hex digit. */
int hex_decode(const char *s, size_t len, uint8_t *out, struct err *e);

#endif
