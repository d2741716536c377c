/* Go-compatible JSON writing and reading (see gojson.h for the rules and why).  The reader is
 * two passes: gojson_validate checks the whole input with an explicit stack (no recursion, so
 * Go's 10000-level limit costs 10000 bytes, not 10000 stack frames); the accessors then walk
 * validated bytes without re-checking them. */
#include "host/vmm/hcs/gojson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "host/vmm/hcs/hcs_unicode.h"

#define RUNE_ERROR HCS_UNICODE_REPLACEMENT

/* ---- writing ---- */

static void put(struct gojson_w *w, const char *s, size_t n)
{
	buf_append(w->out, s, n);
}

static void puts_(struct gojson_w *w, const char *s)
{
	put(w, s, strlen(s));
}

void gojson_w_init(struct gojson_w *w, struct buf *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
}

void gojson_w_obj_begin(struct gojson_w *w)
{
	put(w, "{", 1);
	if (w->depth < GOJSON_W_DEPTH - 1)
		w->depth++;
	w->first[w->depth] = true;
}

void gojson_w_obj_end(struct gojson_w *w)
{
	put(w, "}", 1);
	if (w->depth > 0)
		w->depth--;
}

void gojson_w_key(struct gojson_w *w, const char *k)
{
	if (!w->first[w->depth])
		put(w, ",", 1);
	w->first[w->depth] = false;
	gojson_w_str(w, k);
	put(w, ":", 1);
}

void gojson_w_strn(struct gojson_w *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = (const uint8_t *)s;
	put(w, "\"", 1);
	size_t i = 0;
	while (i < n) {
		uint8_t b = p[i];
		if (b < 0x80) {
			char esc[6] = {'\\', 'u', '0', '0', hex[b >> 4], hex[b & 15]};
			switch (b) {
			case '"':
			case '\\':
				esc[1] = (char)b;
				put(w, esc, 2);
				break;
			case '\b':
				put(w, "\\b", 2);
				break;
			case '\f':
				put(w, "\\f", 2);
				break;
			case '\n':
				put(w, "\\n", 2);
				break;
			case '\r':
				put(w, "\\r", 2);
				break;
			case '\t':
				put(w, "\\t", 2);
				break;
			default:
				if (b < 0x20 || b == '<' || b == '>' || b == '&')
					put(w, esc, 6);
				else
					put(w, (const char *)&p[i], 1);
			}
			i++;
			continue;
		}
		size_t size;
		uint32_t r = hcs_unicode_decode_utf8(p + i, n - i, &size);
		if (r == RUNE_ERROR && size == 1)
			puts_(w, "\\ufffd");
		else if (r == 0x2028 || r == 0x2029)
			puts_(w, r == 0x2028 ? "\\u2028" : "\\u2029");
		else
			put(w, (const char *)p + i, size);
		i += size;
	}
	put(w, "\"", 1);
}

void gojson_w_str(struct gojson_w *w, const char *s)
{
	gojson_w_strn(w, s, strlen(s));
}

void gojson_w_u64(struct gojson_w *w, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
	put(w, b, (size_t)n);
}

void gojson_w_bool(struct gojson_w *w, bool v)
{
	puts_(w, v ? "true" : "false");
}

void gojson_w_null(struct gojson_w *w)
{
	puts_(w, "null");
}

/* The shortest decimal digits that read back as v (v finite, > 0): digits (no dot) and the
 * decimal exponent of the first digit, as strconv's shortest formatting finds them. */
static void shortest_digits(double v, char *digits, int *exp10)
{
	char tmp[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v || prec == 17)
			break;
	}
	/* tmp is "d.ddde[+-]xx" or "de[+-]xx" */
	size_t nd = 0;
	const char *q = tmp;
	for (; *q && *q != 'e'; q++)
		if (*q != '.')
			digits[nd++] = *q;
	while (nd > 1 && digits[nd - 1] == '0') /* %.*e pads; shortest has no trailing zeros */
		nd--;
	digits[nd] = '\0';
	*exp10 = atoi(q + 1);
}

int gojson_w_f64(struct gojson_w *w, double v, struct err *e)
{
	if (isnan(v))
		return err_set(e, -EINVAL, "json: unsupported value: NaN");
	if (isinf(v))
		return err_set(e, -EINVAL, "json: unsupported value: %s", v > 0 ? "+Inf" : "-Inf");
	char out[64];
	size_t o = 0;
	if (signbit(v))
		out[o++] = '-';
	double a = fabs(v);
	if (a == 0) {
		out[o++] = '0';
		put(w, out, o);
		return 0;
	}
	char d[24];
	int x;
	shortest_digits(a, d, &x);
	size_t nd = strlen(d);
	if (a < 1e-6 || a >= 1e21) {
		/* 'e' format: d[.ddd]e(+|-)XX, then Go trims "e-0X" to "e-X" */
		out[o++] = d[0];
		if (nd > 1) {
			out[o++] = '.';
			memcpy(out + o, d + 1, nd - 1);
			o += nd - 1;
		}
		int n = snprintf(out + o, sizeof(out) - o, "e%c%02d", x < 0 ? '-' : '+', abs(x));
		o += (size_t)n;
		if (o >= 4 && out[o - 4] == 'e' && out[o - 3] == '-' && out[o - 2] == '0') {
			out[o - 2] = out[o - 1];
			o--;
		}
	} else if (x >= 0) {
		/* 'f' format: integer part from the digits padded with zeros, then the rest */
		for (int i = 0; i <= x; i++)
			out[o++] = (size_t)i < nd ? d[i] : '0';
		if ((size_t)x + 1 < nd) {
			out[o++] = '.';
			memcpy(out + o, d + x + 1, nd - (size_t)x - 1);
			o += nd - (size_t)x - 1;
		}
	} else {
		out[o++] = '0';
		out[o++] = '.';
		for (int i = 0; i < -x - 1; i++)
			out[o++] = '0';
		memcpy(out + o, d, nd);
		o += nd;
	}
	put(w, out, o);
	return 0;
}

void gojson_w_base64(struct gojson_w *w, const uint8_t *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	put(w, "\"", 1);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = {tab[v >> 18], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=',
		             i + 2 < n ? tab[v & 63] : '='};
		put(w, q, 4);
	}
	put(w, "\"", 1);
}

/* ---- reading: validation ---- */

struct scan {
	const char *p, *end, *start;
	struct err *e;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && is_ws(*s->p))
		s->p++;
}

static int syntax(struct scan *s, const char *what)
{
	if (s->p >= s->end)
		return err_set(s->e, -EINVAL, "unexpected end of JSON input");
	unsigned char c = (unsigned char)*s->p;
	if (c >= 0x20 && c < 0x7f)
		return err_set(s->e, -EINVAL, "invalid character '%c' %s (offset %zu)", c, what,
		               (size_t)(s->p - s->start));
	return err_set(s->e, -EINVAL, "invalid byte 0x%02x %s (offset %zu)", c, what,
	               (size_t)(s->p - s->start));
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int scan_string(struct scan *s)
{
	s->p++; /* opening quote */
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p;
		if (c == '"') {
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return syntax(s, "in string literal");
		if (c == '\\') {
			s->p++;
			if (s->p >= s->end)
				break;
			char x = *s->p;
			if (x == 'u') {
				for (int i = 1; i <= 4; i++) {
					if (s->p + i >= s->end) {
						s->p = s->end;
						return syntax(s, "");
					}
					if (!is_hex(s->p[i])) {
						s->p += i;
						return syntax(
						    s, "in \\u hexadecimal character escape");
					}
				}
				s->p += 5;
				continue;
			}
			if (!strchr("\"\\/bfnrt", x) || x == '\0')
				return syntax(s, "in string escape code");
		}
		s->p++;
	}
	return syntax(s, "");
}

static bool is_digit(const struct scan *s)
{
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static int scan_number(struct scan *s)
{
	if (*s->p == '-')
		s->p++;
	if (!is_digit(s))
		return syntax(s, "in numeric literal");
	if (*s->p == '0')
		s->p++;
	else
		while (is_digit(s))
			s->p++;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!is_digit(s))
			return syntax(s, "after decimal point in numeric literal");
		while (is_digit(s))
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!is_digit(s))
			return syntax(s, "in exponent of numeric literal");
		while (is_digit(s))
			s->p++;
	}
	return 0;
}

static int scan_literal(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);
	for (size_t i = 0; i < n; i++, s->p++)
		if (s->p >= s->end || *s->p != lit[i])
			return syntax(s, "in literal (expecting a literal)");
	return 0;
}

/* A scalar value, or the opening of a container (pushed). */
static int scan_value_start(struct scan *s, uint8_t *stack, size_t *depth)
{
	skip_ws(s);
	if (s->p >= s->end)
		return syntax(s, "");
	switch (*s->p) {
	case '{':
	case '[':
		if (*depth >= GOJSON_MAX_DEPTH)
			return err_set(s->e, -EINVAL, "exceeded max depth (offset %zu)",
			               (size_t)(s->p - s->start));
		stack[(*depth)++] = (uint8_t)*s->p;
		s->p++;
		return 1;
	case '"':
		return scan_string(s);
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return scan_number(s);
		return syntax(s, "looking for beginning of value");
	}
}

/* After '{' or ',' in an object: "key" ws ':' */
static int scan_key(struct scan *s)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return syntax(s, "looking for beginning of object key string");
	int r = scan_string(s);
	if (r < 0)
		return r;
	skip_ws(s);
	if (s->p >= s->end || *s->p != ':')
		return syntax(s, "after object key");
	s->p++;
	return 0;
}

int gojson_validate(const char *p, size_t n, struct err *e)
{
	struct scan s = {p, p + n, p, e};
	uint8_t *stack = xmalloc(GOJSON_MAX_DEPTH);
	size_t depth = 0;
	int r;
	for (;;) {
		r = scan_value_start(&s, stack, &depth);
		if (r < 0)
			goto out;
		if (r == 1) { /* opened a container: empty, or its first member */
			skip_ws(&s);
			char close = stack[depth - 1] == '{' ? '}' : ']';
			if (s.p < s.end && *s.p == close) {
				s.p++;
				depth--;
			} else {
				if (close == '}' && (r = scan_key(&s)) < 0)
					goto out;
				continue;
			}
		}
		/* a value ended: close containers, or move to the next member */
		for (;;) {
			skip_ws(&s);
			if (depth == 0) {
				r = s.p == s.end ? 0 : syntax(&s, "after top-level value");
				goto out;
			}
			char open = (char)stack[depth - 1];
			if (s.p < s.end && *s.p == ',') {
				s.p++;
				if (open == '{' && (r = scan_key(&s)) < 0)
					goto out;
				break;
			}
			if (s.p < s.end && *s.p == (open == '{' ? '}' : ']')) {
				s.p++;
				depth--;
				continue;
			}
			r = syntax(&s, open == '{' ? "after object key:value pair"
			                           : "after array element");
			goto out;
		}
	}
out:
	free(stack);
	return r;
}

/* ---- reading: access to validated input ---- */

static const char *skip_string(const char *p)
{
	for (p++;; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
}

/* The value starting at p (no leading whitespace) in validated input ending at end. */
static void value_at(const char *p, const char *end, struct gojson_val *v)
{
	const char *q = p;
	v->p = p;
	switch (*p) {
	case '"':
		v->kind = GOJSON_STRING;
		q = skip_string(p);
		break;
	case '{':
	case '[': {
		v->kind = *p == '{' ? GOJSON_OBJECT : GOJSON_ARRAY;
		size_t depth = 0;
		for (;;) {
			if (*q == '"') {
				q = skip_string(q);
				continue;
			}
			if (*q == '{' || *q == '[')
				depth++;
			else if ((*q == '}' || *q == ']') && --depth == 0) {
				q++;
				break;
			}
			q++;
		}
		break;
	}
	case 't':
	case 'f':
		v->kind = GOJSON_BOOL;
		q = p + (*p == 't' ? 4 : 5);
		break;
	case 'n':
		v->kind = GOJSON_NULL;
		q = p + 4;
		break;
	default:
		v->kind = GOJSON_NUMBER;
		while (q < end && (*q == '-' || *q == '+' || *q == '.' || *q == 'e' || *q == 'E' ||
		                   (*q >= '0' && *q <= '9')))
			q++;
	}
	v->n = (size_t)(q - p);
}

int gojson_parse(const char *p, size_t n, struct gojson_val *v, struct err *e)
{
	int r = gojson_validate(p, n, e);
	if (r < 0)
		return r;
	const char *end = p + n;
	while (p < end && is_ws(*p))
		p++;
	value_at(p, end, v);
	return 0;
}

void gojson_obj_iter(const struct gojson_val *obj, struct gojson_iter *it)
{
	it->p = obj->p + 1;
	it->end = obj->p + obj->n;
}

static const char *ws(const char *p, const char *end)
{
	while (p < end && is_ws(*p))
		p++;
	return p;
}

int gojson_obj_next(struct gojson_iter *it, struct gojson_val *key, struct gojson_val *val)
{
	const char *p = ws(it->p, it->end);
	if (p >= it->end || *p == '}')
		return 0;
	if (*p == ',')
		p = ws(p + 1, it->end);
	value_at(p, it->end, key);
	p = ws(p + key->n, it->end);
	p = ws(p + 1, it->end); /* ':' */
	value_at(p, it->end, val);
	it->p = p + val->n;
	return 1;
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v = v << 4 | (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* Decode a validated string literal (without its quotes) rune by rune, as Go's unquote does;
 * emit(r) for each rune, where RUNE_ERROR stands for every invalid byte or lone surrogate. */
#define FOR_EACH_RUNE(v, r, body)                                                                  \
	do {                                                                                       \
		const char *p_ = (v)->p + 1, *end_ = (v)->p + (v)->n - 1;                          \
		while (p_ < end_) {                                                                \
			uint32_t r;                                                                \
			if (*p_ == '\\') {                                                         \
				char x_ = p_[1];                                                   \
				p_ += 2;                                                           \
				switch (x_) {                                                      \
				case 'b':                                                          \
					r = '\b';                                                  \
					break;                                                     \
				case 'f':                                                          \
					r = '\f';                                                  \
					break;                                                     \
				case 'n':                                                          \
					r = '\n';                                                  \
					break;                                                     \
				case 'r':                                                          \
					r = '\r';                                                  \
					break;                                                     \
				case 't':                                                          \
					r = '\t';                                                  \
					break;                                                     \
				case 'u':                                                          \
					r = (uint32_t)hex4(p_);                                    \
					p_ += 4;                                                   \
					if (r >= 0xd800 && r <= 0xdfff) {                          \
						if (r < 0xdc00 && end_ - p_ >= 6 &&                \
						    p_[0] == '\\' && p_[1] == 'u') {               \
							uint32_t lo = (uint32_t)hex4(p_ + 2);      \
							if (lo >= 0xdc00 && lo <= 0xdfff) {        \
								r = 0x10000 +                      \
								    ((r - 0xd800) << 10 |          \
								     (lo - 0xdc00));               \
								p_ += 6;                           \
								break;                             \
							}                                          \
						}                                                  \
						r = RUNE_ERROR;                                    \
					}                                                          \
					break;                                                     \
				default:                                                           \
					r = (uint8_t)x_;                                           \
				}                                                                  \
			} else {                                                                   \
				size_t sz_;                                                        \
				r = hcs_unicode_decode_utf8((const uint8_t *)p_,                   \
				                            (size_t)(end_ - p_), &sz_);            \
				p_ += sz_;                                                         \
			}                                                                          \
			body;                                                                      \
		}                                                                                  \
	} while (0)

int gojson_str(const struct gojson_val *v, char *out, size_t cap)
{
	if (v->kind != GOJSON_STRING)
		return -EINVAL;
	size_t o = 0;
	bool full = false;
	FOR_EACH_RUNE(v, r, {
		uint8_t b[4];
		size_t k = hcs_unicode_encode_utf8(r, b);
		if (o + k + 1 > cap) {
			full = true;
			break;
		}
		memcpy(out + o, b, k);
		o += k;
	});
	if (cap > 0)
		out[o] = '\0';
	return full ? -ENOSPC : (int)o;
}

bool gojson_str_is(const struct gojson_val *v, const char *s)
{
	size_t n = strlen(s), o = 0;
	bool same = v->kind == GOJSON_STRING;
	if (!same)
		return false;
	FOR_EACH_RUNE(v, r, {
		uint8_t b[4];
		size_t k = hcs_unicode_encode_utf8(r, b);
		if (o + k > n || memcmp(s + o, b, k) != 0) {
			same = false;
			break;
		}
		o += k;
	});
	return same && o == n;
}

/* Go's foldName for one rune, restricted to what can fold onto ASCII (our field names are
 * ASCII): -1 when r cannot match any ASCII field name. */
static int fold_ascii(uint32_t r)
{
	if (r < 0x80)
		return (r >= 'a' && r <= 'z') ? (int)(r - 'a' + 'A') : (int)r;
	switch (r) {
	case 0x130: /* LATIN CAPITAL LETTER I WITH DOT ABOVE: ToLower is 'i' */
	case 0x131: /* LATIN SMALL LETTER DOTLESS I: ToUpper is 'I' */
		return 'I';
	case 0x17f: /* LATIN SMALL LETTER LONG S: ToUpper is 'S' */
		return 'S';
	case 0x212a: /* KELVIN SIGN: ToLower is 'k' */
		return 'K';
	default:
		return -1;
	}
}

bool gojson_key_is(const struct gojson_val *key, const char *field)
{
	size_t n = strlen(field), o = 0;
	bool same = key->kind == GOJSON_STRING;
	if (!same)
		return false;
	FOR_EACH_RUNE(key, r, {
		int f = fold_ascii(r);
		int want = o < n ? fold_ascii((uint8_t)field[o]) : -2;
		if (f < 0 || f != want) {
			same = false;
			break;
		}
		o++;
	});
	return same && o == n;
}

int gojson_u64(const struct gojson_val *v, uint64_t *out)
{
	if (v->kind != GOJSON_NUMBER || v->n == 0)
		return -EINVAL;
	uint64_t x = 0;
	for (size_t i = 0; i < v->n; i++) {
		char c = v->p[i];
		if (c < '0' || c > '9')
			return -EINVAL;
		uint64_t d = (uint64_t)(c - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

int gojson_i64(const struct gojson_val *v, int64_t *out)
{
	if (v->kind != GOJSON_NUMBER || v->n == 0)
		return -EINVAL;
	bool neg = v->p[0] == '-';
	struct gojson_val mag = {GOJSON_NUMBER, v->p + neg, v->n - neg};
	uint64_t m;
	int r = gojson_u64(&mag, &m);
	if (r < 0)
		return r;
	if (m > (uint64_t)INT64_MAX + neg)
		return -ERANGE;
	*out = neg ? (int64_t)(0 - m) : (int64_t)m;
	return 0;
}
