/* Fuzz harness for the host's migration-state decoder (host/gcs_state.h): a saved-state
 * payload handed from one host process to another is outside input.  Arbitrary bytes must
 * decode or fail with a message; whatever decodes must re-encode to text that decodes to
 * the same encoding again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/gcs_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gcs_client_state s, again;
	struct err e;
	err_clear(&e);
	if (gcs_client_state_from_json((const char *)data, size, &s, &e) < 0) {
		if (e.code >= 0 || e.msg[0] == '\0')
			__builtin_trap(); /* a failure must say why */
		return 0;
	}
	char *text = gcs_client_state_to_json(&s);
	err_clear(&e);
	if (gcs_client_state_from_json(text, strlen(text), &again, &e) < 0) {
		fprintf(stderr, "re-decode failed: %s\n%s\n", e.msg, text);
		__builtin_trap();
	}
	char *text2 = gcs_client_state_to_json(&again);
	if (strcmp(text, text2) != 0)
		__builtin_trap();
	free(text);
	free(text2);
	gcs_client_state_fini(&s);
	gcs_client_state_fini(&again);
	return 0;
}
