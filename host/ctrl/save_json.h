/* A JSON syntax check that allocates nothing, for the JSON documents inside saved-state
 * payloads (the HCS document, OCI process specs, machine descriptions): they arrive in
 * hostile bytes, and parsing them with jansson at decode time would cost memory that no
 * limit bounds (jansson's allocations are process-global).  The check accepts exactly the
 * texts jansson's json_loadb(..., JSON_DECODE_ANY) accepts (RFC 8259; no NUL character,
 * no lone surrogate, integers within int64, reals without overflow; duplicate keys
 * allowed), except that it refuses a number longer than SAVE_JSON_MAX_NUMBER characters
 * and any raw NUL byte (jansson skips one after a number or a literal, so that it loads
 * {"a":0<NUL>}; Go's encoding/json refuses it); nesting is limited to SAVE_JSON_MAX_DEPTH,
 * as jansson's.  The controller that applies
 * the state parses the document later. */
#ifndef FERRY_HOST_CTRL_SAVE_JSON_H
#define FERRY_HOST_CTRL_SAVE_JSON_H

#include <stddef.h>
#include <stdint.h>

#define SAVE_JSON_MAX_DEPTH  2048
#define SAVE_JSON_MAX_NUMBER 256

enum save_json_type {
	SAVE_JSON_OBJECT,
	SAVE_JSON_ARRAY,
	SAVE_JSON_STRING,
	SAVE_JSON_NUMBER,
	SAVE_JSON_TRUE,
	SAVE_JSON_FALSE,
	SAVE_JSON_NULL,
};

struct save_json_error {
	size_t offset;      /* of the offending byte */
	const char *reason; /* static text */
};

/* The type of the top-level value of the JSON text p[0..n), or -1 with *err filled. */
int save_json_scan(const uint8_t *p, size_t n, struct save_json_error *err);
/* "object", "array", ... */
const char *save_json_type_name(int type);

#endif
