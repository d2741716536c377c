/* GUID text and binary conversions used by hvsock service ids and the bridge's ActivityId. */
#include "common/guid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/hex.h"

int guid_parse(const char *s, struct guid *g, struct err *e)
{
	if (!s)
		return err_set(e, -EINVAL, "invalid guid: null");
	size_t n = strlen(s);
	const char *p = s;
	if (n == GUID_STR_LEN + 2 && s[0] == '{' && s[n - 1] == '}') {
		p = s + 1;
		n -= 2;
	}
	if (n != GUID_STR_LEN)
		return err_set(e, -EINVAL, "invalid guid `%.64s`: want 36 characters", s);
	uint8_t raw[16];
	unsigned bi = 0;
	for (unsigned i = 0; i < GUID_STR_LEN;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (p[i] != '-')
				return err_set(e, -EINVAL, "invalid guid `%.64s`: want '-' at %u",
				               s, i);
			i++;
			continue;
		}
		int hi = hex_digit(p[i]), lo = hex_digit(p[i + 1]);
		if (hi < 0 || lo < 0)
			return err_set(e, -EINVAL, "invalid guid `%.64s`: bad hex at %u", s, i);
		raw[bi++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	/* raw holds the text order, which is big-endian for data1..3 */
	g->data1 = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 | (uint32_t)raw[2] << 8 | raw[3];
	g->data2 = (uint16_t)(raw[4] << 8 | raw[5]);
	g->data3 = (uint16_t)(raw[6] << 8 | raw[7]);
	memcpy(g->data4, raw + 8, 8);
	return 0;
}

char *guid_format(const struct guid *g, char *out)
{
	snprintf(out, GUID_STR_LEN + 1, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         g->data1, g->data2, g->data3, g->data4[0], g->data4[1], g->data4[2], g->data4[3],
	         g->data4[4], g->data4[5], g->data4[6], g->data4[7]);
	return out;
}

void guid_to_bytes(const struct guid *g, uint8_t out[16])
{
	out[0] = (uint8_t)g->data1;
	out[1] = (uint8_t)(g->data1 >> 8);
	out[2] = (uint8_t)(g->data1 >> 16);
	out[3] = (uint8_t)(g->data1 >> 24);
	out[4] = (uint8_t)g->data2;
	out[5] = (uint8_t)(g->data2 >> 8);
	out[6] = (uint8_t)g->data3;
	out[7] = (uint8_t)(g->data3 >> 8);
	memcpy(out + 8, g->data4, 8);
}

void guid_from_bytes(const uint8_t in[16], struct guid *g)
{
	g->data1 =
	    (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
	g->data2 = (uint16_t)(in[4] | in[5] << 8);
	g->data3 = (uint16_t)(in[6] | in[7] << 8);
	memcpy(g->data4, in + 8, 8);
}

bool guid_is_zero(const struct guid *g)
{
	static const struct guid zero;
	return guid_equal(g, &zero);
}

bool guid_equal(const struct guid *a, const struct guid *b)
{
	return a->data1 == b->data1 && a->data2 == b->data2 && a->data3 == b->data3 &&
	       memcmp(a->data4, b->data4, 8) == 0;
}
