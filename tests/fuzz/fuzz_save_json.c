/* Fuzz harness for the allocation-free JSON check of saved-state payloads
 * (host/ctrl/save_json.h), differentially against jansson, which the controllers parse the
 * same documents with later: both must accept and refuse the same texts and agree on the
 * top-level type, except where the scan is stricter on purpose: numbers longer than it
 * allows, and raw NUL bytes (jansson skips one after a number or literal: "{\"a\":0<NUL>}"
 * loads). */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "host/ctrl/save_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int jansson_type(const uint8_t *p, size_t n)
{
	json_error_t je;
	json_t *v = json_loadb((const char *)p, n, JSON_DECODE_ANY, &je);
	if (!v)
		return -1;
	int t;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		t = SAVE_JSON_OBJECT;
		break;
	case JSON_ARRAY:
		t = SAVE_JSON_ARRAY;
		break;
	case JSON_STRING:
		t = SAVE_JSON_STRING;
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		t = SAVE_JSON_NUMBER;
		break;
	case JSON_TRUE:
		t = SAVE_JSON_TRUE;
		break;
	case JSON_FALSE:
		t = SAVE_JSON_FALSE;
		break;
	default:
		t = SAVE_JSON_NULL;
		break;
	}
	json_decref(v);
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct save_json_error err = {0};
	int mine = save_json_scan(data, size, &err);
	if (mine < 0 && (!err.reason || err.offset > size))
		__builtin_trap();
	int theirs = jansson_type(data, size);
	bool stricter = mine < 0 && (strcmp(err.reason, "number too long") == 0 ||
	                             memchr(data, 0, size) != NULL);
	if (mine != theirs && !stricter)
		__builtin_trap();
	return 0;
}
