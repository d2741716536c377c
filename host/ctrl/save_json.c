/* The allocation-free JSON check of host/ctrl/save_json.h: one pass over the text with the
 * open containers kept as a bit stack (object or array), so hostile nesting costs 256 bytes
 * of stack at most.  Mirrors jansson 2.14's lexer and parser rules where RFC 8259 leaves
 * room (see the header). */
#include "host/ctrl/save_json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "host/ctrl/save.h"

struct scan {
	const uint8_t *p;
	size_t n, i;
	struct save_json_error *err;
};

static int fail(struct scan *s, const char *reason)
{
	s->err->offset = s->i;
	s->err->reason = reason;
	return -1;
}

static void skip_ws(struct scan *s)
{
	while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' || s->p[s->i] == '\n' ||
	                       s->p[s->i] == '\r'))
		s->i++;
}

static int hex4(struct scan *s, unsigned *out)
{
	if (s->n - s->i < 4)
		return fail(s, "truncated \\u escape");
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		uint8_t c = s->p[s->i + k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return fail(s, "bad \\u escape");
	}
	s->i += 4;
	*out = v;
	return 0;
}

/* A string; s->i at the opening quote. */
static int scan_string(struct scan *s)
{
	s->i++;
	for (;;) {
		if (s->i >= s->n)
			return fail(s, "unterminated string");
		uint8_t c = s->p[s->i];
		if (c == '"') {
			s->i++;
			return 0;
		}
		if (c < 0x20)
			return fail(s, "control character in string");
		if (c >= 0x80) {
			/* One UTF-8 sequence: its length from the lead byte, then the shared check. */
			size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2, bad;
			if (s->n - s->i < len || !save_utf8_ok(s->p + s->i, len, &bad))
				return fail(s, "invalid UTF-8");
			s->i += len;
			continue;
		}
		if (c != '\\') {
			s->i++;
			continue;
		}
		if (++s->i >= s->n)
			return fail(s, "unterminated string");
		c = s->p[s->i++];
		if (strchr("\"\\/bfnrt", c) && c)
			continue;
		if (c != 'u')
			return fail(s, "bad escape");
		unsigned u, lo;
		if (hex4(s, &u) < 0)
			return -1;
		if (u == 0)
			return fail(s, "\\u0000 is not allowed");
		if (u >= 0xdc00 && u <= 0xdfff)
			return fail(s, "lone low surrogate");
		if (u >= 0xd800 && u <= 0xdbff) {
			if (s->n - s->i < 2 || s->p[s->i] != '\\' || s->p[s->i + 1] != 'u')
				return fail(s, "lone high surrogate");
			s->i += 2;
			if (hex4(s, &lo) < 0)
				return -1;
			if (lo < 0xdc00 || lo > 0xdfff)
				return fail(s, "bad low surrogate");
		}
	}
}

static bool is_digit(const struct scan *s)
{
	return s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9';
}

static void skip_digits(struct scan *s)
{
	while (is_digit(s))
		s->i++;
}

/* A number; s->i at its first character ('-' or a digit). */
static int scan_number(struct scan *s)
{
	size_t start = s->i;
	bool real = false;
	if (s->p[s->i] == '-')
		s->i++;
	if (!is_digit(s))
		return fail(s, "bad number");
	if (s->p[s->i] == '0') {
		s->i++;
		if (is_digit(s))
			return fail(s, "leading zero");
	} else {
		skip_digits(s);
	}
	if (s->i < s->n && s->p[s->i] == '.') {
		real = true;
		s->i++;
		if (!is_digit(s))
			return fail(s, "bad fraction");
		skip_digits(s);
	}
	if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
		real = true;
		s->i++;
		if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-'))
			s->i++;
		if (!is_digit(s))
			return fail(s, "bad exponent");
		skip_digits(s);
	}
	size_t len = s->i - start;
	if (len > SAVE_JSON_MAX_NUMBER) {
		s->i = start;
		return fail(s, "number too long");
	}
	/* jansson refuses integers beyond int64 and reals that overflow a double. */
	char text[SAVE_JSON_MAX_NUMBER + 1];
	memcpy(text, s->p + start, len);
	text[len] = '\0';
	errno = 0;
	if (real) {
		double v = strtod(text, NULL);
		if (errno == ERANGE && (v > 1 || v < -1)) {
			s->i = start;
			return fail(s, "real number overflow");
		}
	} else {
		(void)strtoll(text, NULL, 10);
		if (errno == ERANGE) {
			s->i = start;
			return fail(s, "integer out of range");
		}
	}
	return 0;
}

static int scan_literal(struct scan *s, const char *word)
{
	size_t len = strlen(word);
	if (s->n - s->i < len || memcmp(s->p + s->i, word, len) != 0)
		return fail(s, "invalid token");
	s->i += len;
	return 0;
}

/* The open containers: bit set = object. */
struct nest {
	uint8_t bits[SAVE_JSON_MAX_DEPTH / 8];
	size_t depth;
};

static bool top_is_object(const struct nest *st)
{
	size_t k = st->depth - 1;
	return st->bits[k / 8] >> (k % 8) & 1;
}

static void push(struct nest *st, bool object)
{
	size_t k = st->depth++;
	if (object)
		st->bits[k / 8] |= (uint8_t)(1u << (k % 8));
	else
		st->bits[k / 8] &= (uint8_t) ~(1u << (k % 8));
}

int save_json_scan(const uint8_t *p, size_t n, struct save_json_error *err)
{
	struct scan s = {.p = p, .n = n, .i = 0, .err = err};
	struct nest st = {.depth = 0};
	int top = -1;
	skip_ws(&s);
value:
	/* jansson counts every value's depth, containers included, up to 2048. */
	if (st.depth + 1 > SAVE_JSON_MAX_DEPTH)
		return fail(&s, "nested too deep");
	if (s.i >= s.n)
		return fail(&s, "value expected");
	int type;
	switch (s.p[s.i]) {
	case '{':
	case '[': {
		bool obj = s.p[s.i] == '{';
		if (top < 0)
			top = obj ? SAVE_JSON_OBJECT : SAVE_JSON_ARRAY;
		push(&st, obj);
		s.i++;
		skip_ws(&s);
		if (s.i < s.n && s.p[s.i] == (obj ? '}' : ']')) {
			s.i++;
			st.depth--;
			goto after;
		}
		if (obj)
			goto key;
		goto value;
	}
	case '"':
		type = SAVE_JSON_STRING;
		if (scan_string(&s) < 0)
			return -1;
		break;
	case 't':
		type = SAVE_JSON_TRUE;
		if (scan_literal(&s, "true") < 0)
			return -1;
		break;
	case 'f':
		type = SAVE_JSON_FALSE;
		if (scan_literal(&s, "false") < 0)
			return -1;
		break;
	case 'n':
		type = SAVE_JSON_NULL;
		if (scan_literal(&s, "null") < 0)
			return -1;
		break;
	default:
		if (s.p[s.i] != '-' && (s.p[s.i] < '0' || s.p[s.i] > '9'))
			return fail(&s, "invalid token");
		type = SAVE_JSON_NUMBER;
		if (scan_number(&s) < 0)
			return -1;
		break;
	}
	if (top < 0)
		top = type;
after:
	skip_ws(&s);
	if (st.depth == 0) {
		if (s.i != s.n)
			return fail(&s, "end of text expected");
		return top;
	}
	if (s.i >= s.n)
		return fail(&s, "unterminated object or array");
	if (s.p[s.i] == ',') {
		s.i++;
		skip_ws(&s);
		if (top_is_object(&st))
			goto key;
		goto value;
	}
	if (s.p[s.i] != (top_is_object(&st) ? '}' : ']'))
		return fail(&s, "',' or closing bracket expected");
	s.i++;
	st.depth--;
	goto after;
key:
	if (s.i >= s.n || s.p[s.i] != '"')
		return fail(&s, "string key expected");
	if (scan_string(&s) < 0)
		return -1;
	skip_ws(&s);
	if (s.i >= s.n || s.p[s.i] != ':')
		return fail(&s, "':' expected");
	s.i++;
	skip_ws(&s);
	goto value;
}

const char *save_json_type_name(int type)
{
	static const char *const names[] = {"object", "array", "string", "number",
	                                    "true",   "false", "null"};
	if (type < 0 || type > SAVE_JSON_NULL)
		return "?";
	return names[type];
}
