/* Hexadecimal encode/decode (common/hex.h). */
#include "common/hex.h"

#include <errno.h>

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int hex_decode(const char *s, size_t len, uint8_t *out, struct err *e)
{
	if (len % 2)
		return err_set(e, -EINVAL, "odd hex length %zu", len);
	for (size_t i = 0; i < len; i += 2) {
		int a = hex_digit(s[i]), b = hex_digit(s[i + 1]);
		if (a < 0 || b < 0)
			return err_set(e, -EINVAL, "bad hex digit at %zu", a < 0 ? i : i + 1);
		out[i / 2] = (uint8_t)(a << 4 | b);
	}
	return 0;
}
