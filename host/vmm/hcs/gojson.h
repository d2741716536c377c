/* JSON as Go's encoding/json writes and reads it, for the documents the HCS backend exchanges
 * with computecore.dll (hcsshim-lm.md §2).  hcsshim marshals its HCS documents with
 * encoding/json and unmarshals HCS's replies and notifications with it, so ferry matches it
 * byte for byte on the way out and rule for rule on the way in:
 *
 * Writing (gojson_w_*): compact, members in call order, strings escaped as Go does (HTML-safe
 * \u003c \u003e \u0026, \u2028 \u2029, invalid UTF-8 as \ufffd, \b \f \n \r \t), float64 in
 * Go's shortest form ('f' between 1e-6 and 1e21, else 'e' with e-7 not e-07), NaN and Inf
 * refused as Go refuses them.
 *
 * Reading (gojson_validate, gojson_value, gojson_obj_*): a validating scanner with Go's grammar
 * and nesting limit, then zero-copy access to the values (kind + raw span).  Object keys match
 * struct fields as Go matches them: after unquoting, ASCII case folded, and the four non-ASCII
 * runes that fold onto ASCII letters (U+0130 U+0131 -> I, U+017F -> S, U+212A -> K).  Strings
 * decode as Go decodes them (invalid UTF-8 and lone surrogates become U+FFFD).  Numbers are
 * read with Go's ParseUint rules.  Nothing allocates: the caller bounds the input size and the
 * decoded strings go into caller buffers.
 *
 * All functions are pure and thread-safe. */
#ifndef FERRY_HOST_VMM_HCS_GOJSON_H
#define FERRY_HOST_VMM_HCS_GOJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* ---- writing ---- */

#define GOJSON_W_DEPTH 16 /* nesting our documents need, with room */

struct gojson_w {
	struct buf *out; /* appended to; caller-owned */
	int depth;
	bool first[GOJSON_W_DEPTH]; /* no member written yet at this level */
};

void gojson_w_init(struct gojson_w *w, struct buf *out);
void gojson_w_obj_begin(struct gojson_w *w);
void gojson_w_obj_end(struct gojson_w *w);
/* A member name; the value call follows. */
void gojson_w_key(struct gojson_w *w, const char *k);
void gojson_w_str(struct gojson_w *w, const char *s);
void gojson_w_strn(struct gojson_w *w, const char *s, size_t n);
void gojson_w_u64(struct gojson_w *w, uint64_t v);
void gojson_w_bool(struct gojson_w *w, bool v);
void gojson_w_null(struct gojson_w *w);
/* Go's float64 encoding.  NaN or +-Inf: -EINVAL, "json: unsupported value: NaN" (as Go's
 * Marshal fails), nothing written. */
int gojson_w_f64(struct gojson_w *w, double v, struct err *e);
/* []byte: standard base64 with padding, as a string. */
void gojson_w_base64(struct gojson_w *w, const uint8_t *p, size_t n);

/* ---- reading ---- */

#define GOJSON_MAX_DEPTH 10000 /* Go's scanner limit ("exceeded max depth") */

enum gojson_kind {
	GOJSON_NULL,
	GOJSON_BOOL,
	GOJSON_NUMBER,
	GOJSON_STRING,
	GOJSON_ARRAY,
	GOJSON_OBJECT,
};

/* A value inside validated input: its kind and raw bytes (quotes and brackets included). */
struct gojson_val {
	enum gojson_kind kind;
	const char *p;
	size_t n;
};

/* Check that p[0..n) is exactly one JSON value (surrounding whitespace allowed), by Go's
 * scanner rules.  0, or -EINVAL with a message naming the offset and what was expected.  n == 0
 * is "unexpected end of JSON input", as in Go. */
int gojson_validate(const char *p, size_t n, struct err *e);
/* Validate, then locate the top-level value. */
int gojson_parse(const char *p, size_t n, struct gojson_val *v, struct err *e);

/* Object members, in document order, of a value from validated input. */
struct gojson_iter {
	const char *p, *end;
};
void gojson_obj_iter(const struct gojson_val *obj, struct gojson_iter *it);
/* 1 with key (a STRING value) and val set, 0 after the last member. */
int gojson_obj_next(struct gojson_iter *it, struct gojson_val *key, struct gojson_val *val);
/* Does this key select the struct field named `field` (ASCII) under Go's matching rules? */
bool gojson_key_is(const struct gojson_val *key, const char *field);

/* Decode a STRING value into out (cap bytes, NUL-terminated).  Returns the decoded length, or
 * -ENOSPC when it does not fit (out then holds a truncated prefix), -EINVAL for a non-string. */
int gojson_str(const struct gojson_val *v, char *out, size_t cap);
/* Does a STRING value decode to exactly s? */
bool gojson_str_is(const struct gojson_val *v, const char *s);
/* A NUMBER value as Go's strconv.ParseUint(raw, 10, 64) reads it (no sign, fraction or
 * exponent; no overflow).  0 or -EINVAL / -ERANGE. */
int gojson_u64(const struct gojson_val *v, uint64_t *out);
/* A NUMBER value as int64 (Go's ParseInt rules); 0 or -EINVAL / -ERANGE. */
int gojson_i64(const struct gojson_val *v, int64_t *out);

#endif
