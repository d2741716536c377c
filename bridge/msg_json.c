/* The table-driven JSON engine behind bridge/msg.h: decodes a jansson object into a C struct
 * described by a msg_schema (Go encoding/json rules: case-insensitive keys, last duplicate
 * wins, null = absent, strict types and ranges), writes a struct back as compact JSON the
 * way Go does (struct order, omitempty, Go's string escaping), and frees what a decoded
 * struct owns.  Everything here treats its input as hostile and bounds every size. */
#include "bridge/msg_schema.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge/msg.h"
#include "common/guid.h"
#include "common/xalloc.h"

static const char zero_guid[] = "00000000-0000-0000-0000-000000000000";

/* ---------------------------------------------------------------------------------------
 * Field access helpers */

static void *at(void *p, size_t off)
{
	return (char *)p + off;
}

static const void *cat(const void *p, size_t off)
{
	return (const char *)p + off;
}

static size_t count_of(const void *p, const struct msg_field *f)
{
	return *(const size_t *)cat(p, f->aux);
}

/* Find the member named `key`: an exact match first, then a case-insensitive one (Go's
 * rule), looking through embedded structs.  *off receives the offset of the struct that
 * holds the field, relative to the outer struct. */
static const struct msg_field *find_field(const struct msg_schema *s, const char *key, bool fold,
                                          size_t *off)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct msg_field *f = &s->fields[i];
		if (f->type == FT_EMBED) {
			size_t sub_off = 0;
			const struct msg_field *g = find_field(f->sub, key, fold, &sub_off);
			if (g) {
				*off = f->off + sub_off;
				return g;
			}
			continue;
		}
		if (fold ? strcasecmp(f->name, key) == 0 : strcmp(f->name, key) == 0) {
			*off = 0;
			return f;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Freeing */

static void fini_field(const struct msg_field *f, void *p)
{
	void *q = at(p, f->off);
	switch (f->type) {
	case FT_STR:
		free(*(char **)q);
		*(char **)q = NULL;
		break;
	case FT_GUID:
		*(char *)q = '\0';
		break;
	case FT_BOOL:
		*(bool *)q = false;
		break;
	case FT_U8:
		*(uint8_t *)q = 0;
		break;
	case FT_U16:
		*(uint16_t *)q = 0;
		break;
	case FT_U32:
		*(uint32_t *)q = 0;
		break;
	case FT_U64:
		*(uint64_t *)q = 0;
		break;
	case FT_I32:
		*(int32_t *)q = 0;
		break;
	case FT_JSON:
	case FT_ANYJSON:
		json_decref(*(json_t **)q);
		*(json_t **)q = NULL;
		break;
	case FT_STRV: {
		char **v = *(char ***)q;
		for (size_t i = 0; v && i < count_of(p, f); i++)
			free(v[i]);
		free(v);
		*(char ***)q = NULL;
		*(size_t *)at(p, f->aux) = 0;
		break;
	}
	case FT_STRMAP: {
		struct bridge_kv *kv = *(struct bridge_kv **)q;
		for (size_t i = 0; kv && i < count_of(p, f); i++) {
			free(kv[i].key);
			free(kv[i].value);
		}
		free(kv);
		*(struct bridge_kv **)q = NULL;
		*(size_t *)at(p, f->aux) = 0;
		break;
	}
	case FT_OBJV: {
		char *v = *(char **)q;
		for (size_t i = 0; v && i < count_of(p, f); i++)
			msg_fini(f->sub, v + i * f->sub->size);
		free(v);
		*(char **)q = NULL;
		*(size_t *)at(p, f->aux) = 0;
		break;
	}
	case FT_OBJ:
		if (f->flags & (F_HAS | F_SEEN))
			*(bool *)at(p, f->aux) = false;
		msg_fini(f->sub, q);
		break;
	case FT_ANYSTR:
	case FT_EMBED:
		msg_fini(f->sub, q);
		break;
	}
}

void msg_fini(const struct msg_schema *s, void *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < s->n_fields; i++)
		fini_field(&s->fields[i], p);
}

/* ---------------------------------------------------------------------------------------
 * Decoding */

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

static int want(struct err *e, const char *what, const json_t *v)
{
	return err_set(e, -EBADMSG, "want %s, got %s", what, json_type_name(v));
}

static int get_string(const json_t *v, size_t max, const char **s, size_t *len, struct err *e)
{
	if (!json_is_string(v))
		return want(e, "string", v);
	*s = json_string_value(v);
	*len = json_string_length(v);
	if (*len > max)
		return err_set(e, -EBADMSG, "string of %zu bytes over the limit of %zu", *len, max);
	return 0;
}

static int get_int(const json_t *v, long long lo, long long hi, const char *tname, long long *out,
                   struct err *e)
{
	if (!json_is_integer(v))
		return want(e, "integer", v);
	long long x = json_integer_value(v);
	if (x < lo || x > hi)
		return err_set(e, -EBADMSG, "value %lld out of range for %s", x, tname);
	*out = x;
	return 0;
}

/* Check n against the item limit, then allocate n elements of `size` and store the array at
 * f->off and n at f->aux: the struct owns them from here, even if a later element fails to
 * decode.  NULL with e filled (-EBADMSG) when n is over the limit. */
static void *alloc_items(const struct msg_field *f, void *p, size_t n, size_t size, struct err *e)
{
	if (n > BRIDGE_MSG_MAX_ITEMS) {
		err_set(e, -EBADMSG, "%zu entries over the limit of %u", n, BRIDGE_MSG_MAX_ITEMS);
		return NULL;
	}
	void *arr = xcalloc(n ? n : 1, size);
	*(void **)at(p, f->off) = arr;
	*(size_t *)at(p, f->aux) = n;
	return arr;
}

static int dec_int(const struct msg_field *f, const json_t *v, void *q, struct err *e)
{
	long long x = 0;
	int r;
	switch (f->type) {
	case FT_U8:
		r = get_int(v, 0, UINT8_MAX, "u8", &x, e);
		if (r == 0)
			*(uint8_t *)q = (uint8_t)x;
		return r;
	case FT_U16:
		r = get_int(v, 0, UINT16_MAX, "u16", &x, e);
		if (r == 0)
			*(uint16_t *)q = (uint16_t)x;
		return r;
	case FT_U32:
		r = get_int(v, 0, UINT32_MAX, "u32", &x, e);
		if (r == 0)
			*(uint32_t *)q = (uint32_t)x;
		return r;
	case FT_U64:
		r = get_int(v, 0, INT64_MAX, "u64", &x, e);
		if (r == 0)
			*(uint64_t *)q = (uint64_t)x;
		return r;
	default:
		r = get_int(v, INT32_MIN, INT32_MAX, "i32", &x, e);
		if (r == 0)
			*(int32_t *)q = (int32_t)x;
		return r;
	}
}

static int dec_strv(const struct msg_field *f, const json_t *v, void *p, struct err *e)
{
	if (!json_is_array(v))
		return want(e, "array", v);
	size_t n = json_array_size(v);
	char **arr = alloc_items(f, p, n, sizeof(char *), e);
	if (!arr)
		return -EBADMSG; /* over the item limit */
	int r;
	for (size_t i = 0; i < n; i++) {
		const char *s = NULL;
		size_t len = 0;
		r = get_string(json_array_get(v, i), BRIDGE_MSG_MAX_STRING, &s, &len, e);
		if (r < 0)
			return err_prefix(e, "[%zu]", i);
		arr[i] = xstrndup(s, len);
	}
	return 0;
}

static int dec_strmap(const struct msg_field *f, const json_t *v, void *p, struct err *e)
{
	if (!json_is_object(v))
		return want(e, "object", v);
	size_t n = json_object_size(v);
	struct bridge_kv *kv = alloc_items(f, p, n, sizeof(*kv), e);
	if (!kv)
		return -EBADMSG; /* over the item limit */
	int r;
	const char *key;
	const json_t *val;
	size_t i = 0;
	json_object_foreach((json_t *)v, key, val)
	{
		const char *s = NULL;
		size_t len = 0;
		if (strlen(key) > BRIDGE_MSG_MAX_STRING)
			return err_set(e, -EBADMSG, "key over the limit of %u bytes",
			               BRIDGE_MSG_MAX_STRING);
		r = get_string(val, BRIDGE_MSG_MAX_STRING, &s, &len, e);
		if (r < 0)
			return err_prefix(e, "%s", key);
		kv[i].key = xstrdup(key);
		kv[i].value = xstrndup(s, len);
		i++;
	}
	return 0;
}

static int dec_objv(const struct msg_field *f, const json_t *v, void *p, struct err *e)
{
	if (!json_is_array(v))
		return want(e, "array", v);
	size_t n = json_array_size(v);
	char *arr = alloc_items(f, p, n, f->sub->size, e);
	if (!arr)
		return -EBADMSG; /* over the item limit */
	int r;
	for (size_t i = 0; i < n; i++) {
		r = msg_decode_object(f->sub, json_array_get(v, i), arr + i * f->sub->size, e);
		if (r < 0)
			return err_prefix(e, "[%zu]", i);
	}
	return 0;
}

long bridge_json_check(const void *json, size_t len, struct err *e)
{
	const unsigned char *p = json;
	unsigned long units = 0;
	bool in_str = false, esc = false, in_word = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		bool word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		            (c >= 'A' && c <= 'Z') || c == '-' || c == '+' || c == '.';
		if (word && !in_word)
			units++; /* a number or a literal */
		in_word = word;
		if (c == '"') {
			in_str = true;
			units++;
		} else if (c == '{') {
			units += 4;
		} else if (c == '[') {
			units += 2;
		}
		if (units > BRIDGE_MSG_MAX_VALUES)
			return err_set(e, -EBADMSG,
			               "JSON of %zu bytes holds %lu+ values over the limit of %u "
			               "(at byte %zu)",
			               len, units, BRIDGE_MSG_MAX_VALUES, i);
	}
	return (long)units;
}

/* A JSON document carried in a string: parse it, any type unless `object_only`. */
static int parse_inner(const json_t *v, bool object_only, json_t **doc, struct err *e)
{
	const char *s = NULL;
	size_t len = 0;
	int r = get_string(v, BRIDGE_MSG_MAX_DOCUMENT, &s, &len, e);
	if (r < 0)
		return r;
	*doc = NULL;
	if (len == 0)
		return 0;
	if (bridge_json_check(s, len, e) < 0)
		return -EBADMSG;
	json_error_t jerr;
	*doc = json_loadb(s, len, object_only ? 0 : JSON_DECODE_ANY, &jerr);
	if (!*doc)
		return err_set(e, -EBADMSG, "invalid JSON in string: %s (column %d)", jerr.text,
		               jerr.column);
	return 0;
}

static int dec_anystr(const struct msg_field *f, const json_t *v, void *p, struct err *e)
{
	json_t *doc = NULL;
	int r = parse_inner(v, true, &doc, e);
	if (r < 0)
		return r;
	if (!doc)
		return (f->flags & F_REQUIRED) ? err_set(e, -EBADMSG, "empty JSON document") : 0;
	r = msg_decode_object(f->sub, doc, at(p, f->off), e);
	json_decref(doc);
	return r;
}

static int dec_guid(const json_t *v, char *out, struct err *e)
{
	const char *s = NULL;
	size_t len = 0;
	int r = get_string(v, 64, &s, &len, e);
	if (r < 0)
		return r;
	struct guid g;
	struct err ge;
	if (guid_parse(s, &g, &ge) < 0)
		return err_set(e, -EINVAL, "invalid GUID \"%.40s\"", s);
	guid_format(&g, out);
	return 0;
}

/* Decode one member value into the struct at p.  The previous value (a repeated key) is
 * released first, so the last occurrence wins without leaking. */
static int dec_field(const struct msg_field *f, const json_t *v, void *p, struct err *e)
{
	void *q = at(p, f->off);
	const char *s = NULL;
	size_t len = 0;
	int r;

	fini_field(f, p);
	switch (f->type) {
	case FT_STR:
		r = get_string(v, BRIDGE_MSG_MAX_STRING, &s, &len, e);
		if (r == 0)
			*(char **)q = xstrndup(s, len);
		return r;
	case FT_GUID:
		return dec_guid(v, q, e);
	case FT_BOOL:
		if (!json_is_boolean(v))
			return want(e, "bool", v);
		*(bool *)q = json_is_true(v);
		return 0;
	case FT_U8:
	case FT_U16:
	case FT_U32:
	case FT_U64:
	case FT_I32:
		return dec_int(f, v, q, e);
	case FT_JSON:
		if (!(f->flags & F_ANYTYPE) && !json_is_object(v))
			return want(e, "object", v);
		*(json_t **)q = json_incref((json_t *)v);
		return 0;
	case FT_ANYJSON:
		return parse_inner(v, false, (json_t **)q, e);
	case FT_STRV:
		return dec_strv(f, v, p, e);
	case FT_STRMAP:
		return dec_strmap(f, v, p, e);
	case FT_OBJV:
		return dec_objv(f, v, p, e);
	case FT_OBJ:
		r = msg_decode_object(f->sub, v, q, e);
		if (r == 0 && (f->flags & (F_HAS | F_SEEN)))
			*(bool *)at(p, f->aux) = true;
		return r;
	case FT_ANYSTR:
		return dec_anystr(f, v, p, e);
	case FT_EMBED:
		break;
	}
	return err_set(e, -EINVAL, "internal: bad field type");
}

static bool has_member_ci(const json_t *obj, const char *name)
{
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)obj, key, val)
	{
		if (strcasecmp(key, name) == 0 && !json_is_null(val))
			return true;
	}
	return false;
}

/* After the members are read: documents that must be present. */
static int check_required(const struct msg_schema *s, const json_t *obj, void *p, struct err *e)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct msg_field *f = &s->fields[i];
		if (f->type == FT_EMBED) {
			int r = check_required(f->sub, obj, at(p, f->off), e);
			if (r < 0)
				return r;
		} else if ((f->flags & F_REQUIRED) && !has_member_ci(obj, f->name)) {
			return err_set(e, -EBADMSG, "%s: missing", f->name);
		}
	}
	return 0;
}

/* String defaults, applied after a whole decode so that they also reach members of absent
 * objects (ModifySettings' RequestType when "Request" is missing). */
static void apply_defaults(const struct msg_schema *s, void *p)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct msg_field *f = &s->fields[i];
		void *q = at(p, f->off);
		if (f->type == FT_STR && f->def) {
			char **str = q;
			if (!*str || !**str) {
				free(*str);
				*str = xstrdup(f->def);
			}
		} else if (f->type == FT_EMBED || f->type == FT_OBJ || f->type == FT_ANYSTR) {
			apply_defaults(f->sub, q);
		} else if (f->type == FT_OBJV) {
			char *v = *(char **)q;
			for (size_t j = 0; v && j < count_of(p, f); j++)
				apply_defaults(f->sub, v + j * f->sub->size);
		}
	}
}

int msg_decode_object(const struct msg_schema *s, const json_t *obj, void *p, struct err *e)
{
	if (!json_is_object(obj))
		return want(e, "object", obj);
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)obj, key, val)
	{
		size_t off = 0;
		const struct msg_field *f = find_field(s, key, false, &off);
		if (!f)
			f = find_field(s, key, true, &off);
		if (!f || json_is_null(val))
			continue;
		int r = dec_field(f, val, at(p, off), e);
		if (r < 0)
			return err_prefix(e, "%s", f->name);
	}
	return check_required(s, obj, p, e);
}

int msg_decode_bytes(const struct msg_schema *s, const void *json, size_t len, void *p,
                     struct err *e)
{
	memset(p, 0, s->size);
	if (bridge_json_check(json, len, e) < 0)
		return err_prefix(e, "%s", s->name);
	json_error_t jerr;
	json_t *root = json_loadb(json, len, 0, &jerr);
	if (!root)
		return err_set(e, -EBADMSG, "%s: invalid JSON: %s (line %d column %d)", s->name,
		               jerr.text, jerr.line, jerr.column);
	int r = msg_decode_json(s, root, p, e); /* root is an object or an array */
	json_decref(root);
	return r;
}

int msg_decode_json(const struct msg_schema *s, const json_t *obj, void *p, struct err *e)
{
	memset(p, 0, s->size);
	if (!obj || json_is_null(obj))
		return 0;
	int r = msg_decode_object(s, obj, p, e);
	if (r < 0) {
		msg_fini(s, p);
		memset(p, 0, s->size);
		return err_prefix(e, "%s", s->name);
	}
	apply_defaults(s, p);
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Encoding: Go's encoding/json output */

static bool is_zero_schema(const struct msg_schema *s, const void *p);

static bool is_zero_field(const struct msg_field *f, const void *p)
{
	const void *q = cat(p, f->off);
	switch (f->type) {
	case FT_STR:
		return !*(char *const *)q || !**(char *const *)q;
	case FT_GUID:
		return !*(const char *)q;
	case FT_BOOL:
		return !*(const bool *)q;
	case FT_U8:
		return !*(const uint8_t *)q;
	case FT_U16:
		return !*(const uint16_t *)q;
	case FT_U32:
		return !*(const uint32_t *)q;
	case FT_U64:
		return !*(const uint64_t *)q;
	case FT_I32:
		return !*(const int32_t *)q;
	case FT_JSON:
	case FT_ANYJSON:
		return !*(json_t *const *)q;
	case FT_STRV:
	case FT_STRMAP:
	case FT_OBJV:
		return count_of(p, f) == 0;
	case FT_OBJ:
		if (f->flags & F_HAS)
			return !*(const bool *)cat(p, f->aux);
		return is_zero_schema(f->sub, q);
	case FT_ANYSTR:
	case FT_EMBED:
		return is_zero_schema(f->sub, q);
	}
	return true;
}

static bool is_zero_schema(const struct msg_schema *s, const void *p)
{
	for (size_t i = 0; i < s->n_fields; i++)
		if (!is_zero_field(&s->fields[i], p))
			return false;
	return true;
}

static int kv_cmp(const void *a, const void *b)
{
	const struct bridge_kv *x = *(const struct bridge_kv *const *)a;
	const struct bridge_kv *y = *(const struct bridge_kv *const *)b;
	return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static void put_cstr(struct buf *b, const char *s, bool html)
{
	msg_put_string(b, s ? s : "", s ? strlen(s) : 0, html);
}

static void enc_strmap(const struct msg_field *f, const void *p, bool html, struct buf *b)
{
	size_t n = count_of(p, f);
	const struct bridge_kv *kv = *(struct bridge_kv *const *)cat(p, f->off);
	const struct bridge_kv **sorted = xcalloc(n ? n : 1, sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[i] = &kv[i];
	qsort(sorted, n, sizeof(*sorted), kv_cmp);
	msg_putc(b, '{');
	for (size_t i = 0; i < n; i++) {
		msg_sep(b);
		put_cstr(b, sorted[i]->key, html);
		msg_putc(b, ':');
		put_cstr(b, sorted[i]->value, html);
	}
	msg_putc(b, '}');
	free(sorted);
}

static void enc_members(const struct msg_schema *s, const void *p, bool html, struct buf *b);

static void enc_value(const struct msg_field *f, const void *p, bool html, struct buf *b)
{
	const void *q = cat(p, f->off);
	char tmp[32];
	switch (f->type) {
	case FT_STR:
		put_cstr(b, *(char *const *)q, html);
		return;
	case FT_GUID:
		put_cstr(b,
		         *(const char *)q       ? (const char *)q
		         : (f->flags & F_ZGUID) ? zero_guid
		                                : "",
		         html);
		return;
	case FT_BOOL:
		msg_puts(b, *(const bool *)q ? "true" : "false");
		return;
	case FT_U8:
		snprintf(tmp, sizeof(tmp), "%u", (unsigned)*(const uint8_t *)q);
		break;
	case FT_U16:
		snprintf(tmp, sizeof(tmp), "%u", (unsigned)*(const uint16_t *)q);
		break;
	case FT_U32:
		snprintf(tmp, sizeof(tmp), "%" PRIu32, *(const uint32_t *)q);
		break;
	case FT_U64:
		snprintf(tmp, sizeof(tmp), "%" PRIu64, *(const uint64_t *)q);
		break;
	case FT_I32:
		snprintf(tmp, sizeof(tmp), "%" PRId32, *(const int32_t *)q);
		break;
	case FT_JSON: {
		const json_t *v = *(json_t *const *)q;
		if (v)
			msg_write_json(v, html, b);
		else
			msg_puts(b, (f->flags & F_EMPTYOBJ) ? "{}" : "null");
		return;
	}
	case FT_STRV: {
		char *const *v = *(char **const *)q;
		msg_putc(b, '[');
		for (size_t i = 0; i < count_of(p, f); i++) {
			msg_sep(b);
			put_cstr(b, v[i], html);
		}
		msg_putc(b, ']');
		return;
	}
	case FT_STRMAP:
		enc_strmap(f, p, html, b);
		return;
	case FT_OBJV: {
		const char *v = *(char *const *)q;
		msg_putc(b, '[');
		for (size_t i = 0; i < count_of(p, f); i++) {
			msg_sep(b);
			msg_encode(f->sub, v + i * f->sub->size, html, b);
		}
		msg_putc(b, ']');
		return;
	}
	case FT_OBJ:
		msg_encode(f->sub, q, html, b);
		return;
	case FT_ANYSTR:
	case FT_ANYJSON: {
		/* The inner document is always json.Marshal output (HTML-escaped). */
		struct buf inner;
		buf_init(&inner);
		if (f->type == FT_ANYSTR)
			msg_encode(f->sub, q, true, &inner);
		else
			msg_write_json(*(json_t *const *)q, true, &inner);
		msg_put_string(b, (const char *)buf_head(&inner), buf_avail(&inner), html);
		buf_fini(&inner);
		return;
	}
	case FT_EMBED:
		return;
	}
	msg_puts(b, tmp);
}

static void enc_members(const struct msg_schema *s, const void *p, bool html, struct buf *b)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct msg_field *f = &s->fields[i];
		if (f->type == FT_EMBED) {
			enc_members(f->sub, cat(p, f->off), html, b);
			continue;
		}
		if ((f->flags & (F_OMIT | F_HAS)) && is_zero_field(f, p))
			continue;
		if (f->type == FT_ANYJSON && !*(json_t *const *)cat(p, f->off))
			continue; /* never an empty AnyInString */
		msg_sep(b);
		msg_put_string(b, f->name, strlen(f->name), html);
		msg_putc(b, ':');
		enc_value(f, p, html, b);
	}
}

void msg_encode(const struct msg_schema *s, const void *p, bool html, struct buf *b)
{
	msg_putc(b, '{');
	enc_members(s, p, html, b);
	msg_putc(b, '}');
}
