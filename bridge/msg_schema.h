/* Private to bridge/msg*.c: the field-table engine behind the bridge JSON codecs.  A
 * `struct msg_schema` lists the JSON members of one C struct in Go struct order; one engine
 * (msg_json.c) decodes, encodes, zero-tests and frees any struct from its table, so the
 * message and settings modules only hold tables.  Not part of the public API. */
#ifndef FERRY_BRIDGE_MSG_SCHEMA_H
#define FERRY_BRIDGE_MSG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"

enum msg_ftype {
	FT_STR,     /* char * */
	FT_GUID,    /* char[GUID_STR_LEN + 1], validated and normalized on decode */
	FT_BOOL,    /* bool */
	FT_U8,      /* uint8_t */
	FT_U16,     /* uint16_t */
	FT_U32,     /* uint32_t */
	FT_U64,     /* uint64_t (decode limited to INT64_MAX by jansson) */
	FT_I32,     /* int32_t */
	FT_JSON,    /* json_t * reference, an object (any type with F_ANYTYPE) */
	FT_STRV,    /* char ** + size_t count at aux */
	FT_STRMAP,  /* struct bridge_kv * + size_t count at aux; encoded with sorted keys */
	FT_OBJ,     /* nested object described by sub, stored at off (may be a view, off 0) */
	FT_OBJV,    /* array of sub structs (sub->size each) + size_t count at aux */
	FT_ANYSTR,  /* JSON document in a string, described by sub, stored at off */
	FT_ANYJSON, /* JSON document in a string, kept as json_t * */
	FT_EMBED,   /* Go embedded struct: sub's members inline in this object */
};

#define F_OMIT     0x01u /* omitempty */
#define F_REQUIRED 0x02u /* FT_ANYSTR: absent or "" fails decode */
#define F_ZGUID    0x04u /* FT_GUID: encode "" as the zero GUID */
#define F_EMPTYOBJ 0x08u /* FT_JSON: encode NULL as {} */
#define F_HAS      0x10u /* FT_OBJ: presence bool at aux; encoded iff true */
#define F_ANYTYPE  0x20u /* FT_JSON: any JSON type, not only an object */
#define F_SEEN     0x40u /* FT_OBJ: presence bool at aux, set on decode; encoding ignores it */

struct msg_schema;

struct msg_field {
	const char *name; /* exact JSON spelling; NULL for FT_EMBED */
	enum msg_ftype type;
	unsigned flags;
	size_t off; /* offset of the value in the containing struct */
	size_t aux; /* count (arrays, maps) or presence bool (F_HAS, F_SEEN) offset */
	const struct msg_schema *sub; /* FT_OBJ, FT_OBJV, FT_ANYSTR, FT_EMBED */
	const char *def;              /* FT_STR: value when absent or "" */
};

struct msg_schema {
	const char *name; /* for error messages ("ExecuteProcess") */
	size_t size;      /* struct size (used for FT_OBJV elements and top-level decode) */
	const struct msg_field *fields;
	size_t n_fields;
};

#define MSG_SCHEMA(var, label, type, table)                                                        \
	static const struct msg_schema var = {label, sizeof(type), table,                          \
	                                      sizeof(table) / sizeof((table)[0])}

/* Field constructors: F(struct, member, "Name", FT_X, flags) and friends. */
#define MF(T, m, nm, ty, fl)                                                                       \
	{                                                                                          \
		.name = nm, .type = ty, .flags = fl, .off = offsetof(T, m)                         \
	}
#define MF_DEF(T, m, nm, fl, d)                                                                    \
	{                                                                                          \
		.name = nm, .type = FT_STR, .flags = fl, .off = offsetof(T, m), .def = d           \
	}
#define MF_N(T, m, nm, ty, fl, s)                                                                  \
	{                                                                                          \
		.name = nm, .type = ty, .flags = fl, .off = offsetof(T, m),                        \
		.aux = offsetof(T, n_##m), .sub = s                                                \
	}
#define MF_SUB(T, m, nm, ty, fl, s)                                                                \
	{                                                                                          \
		.name = nm, .type = ty, .flags = fl, .off = offsetof(T, m), .sub = s               \
	}
#define MF_VIEW(nm, ty, fl, s)                                                                     \
	{                                                                                          \
		.name = nm, .type = ty, .flags = fl, .off = 0, .sub = s                            \
	}
#define MF_HAS(T, has, nm, fl, s)                                                                  \
	{                                                                                          \
		.name = nm, .type = FT_OBJ, .flags = (fl) | F_HAS, .off = 0,                       \
		.aux = offsetof(T, has), .sub = s                                                  \
	}
#define MF_SEEN(T, m, seen, nm, fl, s)                                                             \
	{                                                                                          \
		.name = nm, .type = FT_OBJ, .flags = (fl) | F_SEEN, .off = offsetof(T, m),         \
		.aux = offsetof(T, seen), .sub = s                                                 \
	}
#define MF_EMBED(T, m, s)                                                                          \
	{                                                                                          \
		.name = NULL, .type = FT_EMBED, .off = offsetof(T, m), .sub = s                    \
	}

/* Decode a JSON object into the struct at p (already zeroed by the caller).  On failure the
 * struct may hold partial data: the caller runs msg_fini.  Errors are prefixed with the
 * member path, not with s->name.  String defaults are not applied (msg_decode_json does). */
int msg_decode_object(const struct msg_schema *s, const json_t *obj, void *p, struct err *e);

/* Zero p and decode `obj` (NULL or null = all absent) into it, then apply defaults; on
 * failure p is freed and zeroed and the error is prefixed with s->name. */
int msg_decode_json(const struct msg_schema *s, const json_t *obj, void *p, struct err *e);

/* Parse `len` bytes as one JSON object and decode it into p (zeroed here); on failure p is
 * freed and zeroed and the error is prefixed with s->name. */
int msg_decode_bytes(const struct msg_schema *s, const void *json, size_t len, void *p,
                     struct err *e);

/* Append the JSON object for p to out.  html: escape < > & (json.Marshal style). */
void msg_encode(const struct msg_schema *s, const void *p, bool html, struct buf *out);

/* Free what the struct at p owns and zero its members. */
void msg_fini(const struct msg_schema *s, void *p);

/* msg_write.c: Go-style JSON text output. */
/* Append a json_t value, Go style (see msg.h). */
void msg_write_json(const json_t *v, bool html, struct buf *out);
/* Append `n` bytes of `str` as a quoted JSON string, escaped as Go does. */
void msg_put_string(struct buf *b, const char *str, size_t n, bool html);
/* Append a ',' unless the last byte opens an object or array. */
void msg_sep(struct buf *b);
void msg_puts(struct buf *b, const char *s);
void msg_putc(struct buf *b, char c);

#endif
