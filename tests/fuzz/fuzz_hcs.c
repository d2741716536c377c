/* Fuzz harness for what the HCS backend reads from computecore.dll: the live-migration
 * notification payload (hcs_notify_parse, then hcsshim's mapping), the compatibility-info,
 * basic-properties and system-exit replies (hcs_doc), the Go-rules JSON scanner under them
 * (gojson: every member of every object walked and decoded) and the UTF-16 -> UTF-8 reading
 * of HCS strings.  Arbitrary bytes must give a result or a clean error, never a crash, an
 * out-of-bounds read or unbounded memory. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/vmm/hcs/gojson.h"
#include "host/vmm/hcs/hcs_doc.h"
#include "host/vmm/hcs/hcs_notify.h"
#include "host/vmm/hcs/hcs_unicode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walk every member of every object, decoding keys and strings, to a bounded depth. */
static void walk(const struct gojson_val *v, int depth)
{
	char s[64];
	if (v->kind == GOJSON_STRING) {
		int n = gojson_str(v, s, sizeof(s));
		assert(n == -ENOSPC || (n >= 0 && (size_t)n < sizeof(s)));
	}
	if (v->kind != GOJSON_OBJECT || depth > 8)
		return;
	struct gojson_iter it;
	struct gojson_val k, val;
	gojson_obj_iter(v, &it);
	while (gojson_obj_next(&it, &k, &val)) {
		assert(k.kind == GOJSON_STRING);
		assert(val.p >= v->p && val.p + val.n <= v->p + v->n);
		(void)gojson_key_is(&k, "Event");
		walk(&val, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size heap copy so ASan sees any read past the end */
	char *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	struct err e;

	struct hcs_mig_info info;
	err_clear(&e);
	if (hcs_notify_parse(p, size, &info, &e) == 0) {
		struct vmm_notification n;
		hcs_to_notification(&info, VMM_ORIGIN_SOURCE, &n);
		assert(n.phase <= VMM_PHASE_FAILED && n.state <= VMM_PHASE_STATE_RECOVERY_FAILED);
		assert(strlen(info.origin) < HCS_NOTIFY_STR_MAX);
	} else {
		assert(e.code < 0 && e.msg[0]);
	}

	struct buf blob;
	buf_init(&blob);
	err_clear(&e);
	if (hcs_doc_compat_reply(p, size, &blob, &e) == 0)
		assert(buf_avail(&blob) > 0 && buf_avail(&blob) <= HCS_COMPAT_MAX);
	else
		assert(e.code < 0 && e.msg[0] && buf_avail(&blob) == 0);
	buf_fini(&blob);

	struct guid g;
	uint32_t st;
	(void)hcs_doc_runtime_id(p, size, &g, &e);
	(void)hcs_doc_exit_status(p, size, &st, &e);

	struct gojson_val top;
	if (gojson_parse(p, size, &top, &e) == 0)
		walk(&top, 0);

	/* the same bytes as UTF-16 code units, with and without a terminator in reach */
	size_t units = size / 2;
	uint16_t *w = malloc((units + 1) * sizeof(*w));
	if (w) {
		memcpy(w, data, units * 2);
		struct buf out;
		buf_init(&out);
		int r = hcs_unicode_from_utf16(w, units, &out, &e);
		assert(r == 0 || buf_avail(&out) == 0);
		assert(buf_avail(&out) <= 3 * units);
		w[units] = 0;
		buf_reset(&out);
		assert(hcs_unicode_from_utf16(w, units + 1, &out, &e) == 0);
		buf_fini(&out);
		free(w);
	}
	free(p);
	return 0;
}
