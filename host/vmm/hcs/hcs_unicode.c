/* UTF-8 runes and UTF-8 <-> UTF-16 with Go's replacement rules (see hcs_unicode.h). */
#include "host/vmm/hcs/hcs_unicode.h"

#include <errno.h>
#include <string.h>

#include "common/xalloc.h"

uint32_t hcs_unicode_decode_utf8(const uint8_t *p, size_t n, size_t *size)
{
	uint8_t c = p[0];
	size_t len;
	uint32_t r, min;
	*size = 1;
	if (c < 0x80)
		return c;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, r = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, r = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, r = c & 0x07, min = 0x10000;
	} else {
		return HCS_UNICODE_REPLACEMENT;
	}
	if (n < len)
		return HCS_UNICODE_REPLACEMENT;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return HCS_UNICODE_REPLACEMENT;
		r = r << 6 | (p[i] & 0x3f);
	}
	if (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
		return HCS_UNICODE_REPLACEMENT;
	*size = len;
	return r;
}

size_t hcs_unicode_encode_utf8(uint32_t r, uint8_t out[4])
{
	if (r < 0x80) {
		out[0] = (uint8_t)r;
		return 1;
	}
	if (r < 0x800) {
		out[0] = (uint8_t)(0xc0 | r >> 6);
		out[1] = (uint8_t)(0x80 | (r & 0x3f));
		return 2;
	}
	if (r < 0x10000) {
		out[0] = (uint8_t)(0xe0 | r >> 12);
		out[1] = (uint8_t)(0x80 | (r >> 6 & 0x3f));
		out[2] = (uint8_t)(0x80 | (r & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | r >> 18);
	out[1] = (uint8_t)(0x80 | (r >> 12 & 0x3f));
	out[2] = (uint8_t)(0x80 | (r >> 6 & 0x3f));
	out[3] = (uint8_t)(0x80 | (r & 0x3f));
	return 4;
}

uint16_t *hcs_unicode_to_utf16(const char *s, size_t n, size_t *units)
{
	/* at most one unit per input byte (a 4-byte rune gives 2 units), plus the NUL */
	uint16_t *w = xmalloc((n + 1) * sizeof(*w));
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t size;
		uint32_t r = hcs_unicode_decode_utf8((const uint8_t *)s + i, n - i, &size);
		i += size;
		if (r >= 0x10000) {
			r -= 0x10000;
			w[o++] = (uint16_t)(0xd800 | r >> 10);
			w[o++] = (uint16_t)(0xdc00 | (r & 0x3ff));
		} else {
			w[o++] = (uint16_t)r;
		}
	}
	w[o] = 0;
	if (units)
		*units = o;
	return w;
}

int hcs_unicode_from_utf16(const uint16_t *w, size_t max_units, struct buf *out, struct err *e)
{
	if (!w)
		return 0;
	size_t n = 0;
	while (n < max_units && w[n] != 0)
		n++;
	if (n == max_units)
		return err_set(e, -E2BIG, "string longer than %zu UTF-16 units", max_units);
	for (size_t i = 0; i < n; i++) {
		uint32_t r = w[i];
		if (r >= 0xd800 && r <= 0xdbff && i + 1 < n && w[i + 1] >= 0xdc00 &&
		    w[i + 1] <= 0xdfff) {
			r = 0x10000 + ((r - 0xd800) << 10 | (uint32_t)(w[i + 1] - 0xdc00));
			i++;
		} else if (r >= 0xd800 && r <= 0xdfff) {
			r = HCS_UNICODE_REPLACEMENT;
		}
		uint8_t b[4];
		buf_append(out, b, hcs_unicode_encode_utf8(r, b));
	}
	return 0;
}
