/* GUIDs in the Microsoft layout: Data1 u32, Data2 u16, Data3 u16 (little-endian in binary
 * form), Data4 8 raw bytes; text form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (lower-case
 * on output, either case accepted on input, optional surrounding braces). */
#ifndef FERRY_COMMON_GUID_H
#define FERRY_COMMON_GUID_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define GUID_STR_LEN 36 /* without NUL */

struct guid {
	uint32_t data1;
	uint16_t data2;
	uint16_t data3;
	uint8_t data4[8];
};

/* Parse text form; returns 0 or -EINVAL with a message naming the offending input. */
int guid_parse(const char *s, struct guid *g, struct err *e);
/* Format into out (at least GUID_STR_LEN + 1 bytes); returns out. */
char *guid_format(const struct guid *g, char *out);
/* 16-byte wire layout (Data1..3 little-endian, as Windows stores a GUID). */
void guid_to_bytes(const struct guid *g, uint8_t out[16]);
void guid_from_bytes(const uint8_t in[16], struct guid *g);
bool guid_is_zero(const struct guid *g);
bool guid_equal(const struct guid *a, const struct guid *b);

#endif
