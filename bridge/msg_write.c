/* The Go encoding/json text writer used by the bridge encoders (bridge/msg_schema.h):
 * strings escaped exactly as Go does (optional HTML escaping, U+2028/U+2029, lower-case
 * \u00XX control escapes, invalid UTF-8 replaced by U+FFFD) and jansson values written in
 * insertion order with Go-like number formatting. */
#include "bridge/msg_schema.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct buf *b, const void *s, size_t n)
{
	buf_append(b, s, n);
}

void msg_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void msg_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

/* A ',' unless this is the first member/element of the enclosing object/array. */
void msg_sep(struct buf *b)
{
	if (b->len > b->off) {
		char last = (char)b->data[b->len - 1];
		if (last != '{' && last != '[')
			msg_putc(b, ',');
	}
}

/* Length of the valid UTF-8 sequence at s (n bytes available) and its code point; 0 when
 * invalid (overlong, surrogate, beyond U+10FFFF or truncated), like Go's utf8.DecodeRune. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned c = s[0];
	unsigned lo = 0x80, hi = 0xBF;
	size_t len = 0;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		len = 2;
		*cp = c & 0x1F;
	} else if (c < 0xF0) {
		len = 3;
		*cp = c & 0x0F;
		lo = c == 0xE0 ? 0xA0 : 0x80;
		hi = c == 0xED ? 0x9F : 0xBF;
	} else if (c < 0xF5) {
		len = 4;
		*cp = c & 0x07;
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (i > 1 && (s[i] < 0x80 || s[i] > 0xBF))
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3F);
	}
	return len;
}

void msg_put_string(struct buf *b, const char *str, size_t n, bool html)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	msg_putc(b, '"');
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' &&
		    !(html && (c == '<' || c == '>' || c == '&'))) {
			size_t j = i + 1;
			while (j < n && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' &&
			       s[j] != '\\' &&
			       !(html && (s[j] == '<' || s[j] == '>' || s[j] == '&')))
				j++;
			put(b, s + i, j - i);
			i = j;
			continue;
		}
		if (c < 0x80) {
			char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF], 0};
			switch (c) {
			case '"':
				msg_puts(b, "\\\"");
				break;
			case '\\':
				msg_puts(b, "\\\\");
				break;
			case '\n':
				msg_puts(b, "\\n");
				break;
			case '\r':
				msg_puts(b, "\\r");
				break;
			case '\t':
				msg_puts(b, "\\t");
				break;
			case '\b':
				msg_puts(b, "\\b");
				break;
			case '\f':
				msg_puts(b, "\\f");
				break;
			default:
				msg_puts(b, esc);
			}
			i++;
			continue;
		}
		uint32_t cp;
		size_t len = utf8_seq(s + i, n - i, &cp);
		if (len == 0) {
			msg_puts(b, "\\ufffd");
			i++;
		} else if (cp == 0x2028 || cp == 0x2029) {
			msg_puts(b, cp == 0x2028 ? "\\u2028" : "\\u2029");
			i += len;
		} else {
			put(b, s + i, len);
			i += len;
		}
	}
	msg_putc(b, '"');
}

static void put_real(struct buf *b, double d)
{
	char tmp[40];
	if (d == 0) { /* also -0: jansson would read "-0" back as the integer 0 */
		msg_putc(b, '0');
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	msg_puts(b, tmp);
}

void msg_write_json(const json_t *v, bool html, struct buf *b)
{
	char tmp[32];
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		const json_t *val;
		msg_putc(b, '{');
		json_object_foreach((json_t *)v, key, val)
		{
			msg_sep(b);
			msg_put_string(b, key, strlen(key), html);
			msg_putc(b, ':');
			msg_write_json(val, html, b);
		}
		msg_putc(b, '}');
		break;
	}
	case JSON_ARRAY:
		msg_putc(b, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			msg_sep(b);
			msg_write_json(json_array_get(v, i), html, b);
		}
		msg_putc(b, ']');
		break;
	case JSON_STRING:
		msg_put_string(b, json_string_value(v), json_string_length(v), html);
		break;
	case JSON_INTEGER:
		snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		msg_puts(b, tmp);
		break;
	case JSON_REAL:
		put_real(b, json_real_value(v));
		break;
	case JSON_TRUE:
		msg_puts(b, "true");
		break;
	case JSON_FALSE:
		msg_puts(b, "false");
		break;
	case JSON_NULL:
		msg_puts(b, "null");
		break;
	}
}
