/* Fuzz harness for the saved-state envelope decoder (host/ctrl/envelope_save.h) and the
 * `ferryctl payload` printer (host/ctl/payload.h): the bytes of an envelope file, or of
 * ImportSandbox's config, come from another host.  Whatever the input: no crash, a failure
 * says why (an "import" error with a negative code); the keep-going mode of `payload check`
 * agrees with the plain decode; what decodes re-encodes to an envelope that decodes again
 * and re-encodes to the same bytes; show prints without crashing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "host/ctl/payload.h"
#include "host/ctrl/envelope_save.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void count_error(const struct err *e, void *arg)
{
	if (e->code >= 0 || strncmp(e->msg, "import", 6) != 0)
		__builtin_trap();
	(*(int *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope_save s, again;
	struct err e;
	int rc = envelope_save_decode_bytes(data, size, NULL, &s, &e);
	if (rc < 0 && (e.code >= 0 || rc != e.code || strncmp(e.msg, "import", 6) != 0))
		__builtin_trap(); /* a failure must say why */

	int reported = 0;
	struct envelope_save s2;
	struct save_decode_opts o = {.on_error = count_error, .arg = &reported};
	int rc2 = envelope_save_decode_bytes(data, size, &o, &s2, &e);
	if ((rc < 0) != (rc2 < 0))
		__builtin_trap();
	if (rc2 == 0)
		envelope_save_fini(&s2);

	if (rc == 0) {
		struct buf b1, b2;
		buf_init(&b1);
		buf_init(&b2);
		if (envelope_save_encode_bytes(&s, &b1, &e) < 0)
			__builtin_trap();
		if (envelope_save_decode_bytes(buf_head(&b1), buf_avail(&b1), NULL, &again, &e) <
		    0) {
			fprintf(stderr, "re-decode failed: %s\n", e.msg);
			__builtin_trap();
		}
		if (envelope_save_encode_bytes(&again, &b2, &e) < 0 ||
		    buf_avail(&b1) != buf_avail(&b2) ||
		    memcmp(buf_head(&b1), buf_head(&b2), buf_avail(&b1)) != 0)
			__builtin_trap();
		envelope_save_fini(&again);
		envelope_save_fini(&s);
		buf_fini(&b1);
		buf_fini(&b2);
	}

	FILE *null = fopen("/dev/null", "w");
	if (null) {
		ctl_payload_show(data, size, null, &e);
		ctl_payload_check(data, size, null, null);
		fclose(null);
	}
	return 0;
}
