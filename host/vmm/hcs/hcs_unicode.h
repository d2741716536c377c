/* Unicode for the HCS backend: UTF-8 runes as Go's unicode/utf8 reads and writes them, and
 * UTF-8 <-> UTF-16 for the strings computecore.dll takes and gives (PCWSTR / PWSTR): our JSON
 * documents, ids and URIs go out as UTF-16, HCS's result documents and event payloads come back
 * as UTF-16 and are read as UTF-8.  Portable (uint16_t code units; wchar_t is 16 bits on
 * Windows), so the rules are unit-tested on Linux.  Malformed input is never an error, it is
 * replaced as Go replaces it (hcsshim reads HCS strings with windows.UTF16PtrToString and
 * decodes JSON with encoding/json): an invalid UTF-8 byte or a lone surrogate becomes U+FFFD. */
#ifndef FERRY_HOST_VMM_HCS_UNICODE_H
#define FERRY_HOST_VMM_HCS_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define HCS_UNICODE_REPLACEMENT 0xfffdu

/* One rune from p[0..n), n >= 1, as utf8.DecodeRune: bad lead byte, short or overlong
 * sequence, surrogate or > U+10FFFF give U+FFFD with *size 1. */
uint32_t hcs_unicode_decode_utf8(const uint8_t *p, size_t n, size_t *size);
/* Encode r (<= U+10FFFF, not a surrogate) as UTF-8 into out; returns the byte count. */
size_t hcs_unicode_encode_utf8(uint32_t r, uint8_t out[4]);

/* s[0..n) as a NUL-terminated UTF-16 string, newly allocated (caller frees); *units (may be
 * NULL) receives its length without the NUL. */
uint16_t *hcs_unicode_to_utf16(const char *s, size_t n, size_t *units);

/* Append the UTF-16 string w (up to its NUL) to out as UTF-8, without a NUL.  At most
 * max_units code units are read: no NUL among them is -E2BIG (e filled, out unchanged), so a
 * hostile or corrupt string cannot cost more than 3 * max_units bytes.  w == NULL is the empty
 * string. */
int hcs_unicode_from_utf16(const uint16_t *w, size_t max_units, struct buf *out, struct err *e);

#endif
