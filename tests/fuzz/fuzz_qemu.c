/* Fuzz harness for the qemu backend's decoders of outside input: the migration
 * compatibility blob (it comes from the source host through the orchestrator) and the
 * machine description (on a destination it is the source's saved state).  The first byte
 * selects the decoder; the rest is the input.  A blob that decodes must encode to a blob that
 * decodes to the same thing and passes the check against itself; a description that parses
 * must survive describe -> parse unchanged and give a command line.  Never a crash, a leak
 * or an accepted-then-inconsistent value. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "host/vmm/qemu/compat.h"
#include "host/vmm/qemu/machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void blob(const uint8_t *p, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);
	if (!copy)
		return;
	memcpy(copy, p, n);
	struct qemu_compat c, c2;
	struct err e;
	int r = qemu_compat_decode(copy, n, &c, &e);
	free(copy);
	if (r < 0) {
		assert(r == -EBADMSG && e.msg[0] && !c.devs && c.n_devs == 0);
		return;
	}
	size_t len;
	char *enc = qemu_compat_encode(&c, &len);
	assert(qemu_compat_decode((const uint8_t *)enc, len, &c2, &e) == 0);
	assert(qemu_compat_check(&c, &c2, &e) == 0);
	assert(c.n_devs == c2.n_devs);
	free(enc);
	qemu_compat_fini(&c);
	qemu_compat_fini(&c2);
}

static void desc(const uint8_t *p, size_t n)
{
	json_t *j = json_loadb((const char *)p, n, 0, NULL);
	if (!j)
		return;
	struct qemu_machine m, m2;
	struct err e;
	if (qemu_machine_parse(j, &m, &e) < 0) {
		assert(e.code == -EINVAL && e.msg[0] && !m.qemu);
		json_decref(j);
		return;
	}
	json_t *d = qemu_machine_to_json(&m);
	assert(qemu_machine_parse(d, &m2, &e) == 0);
	json_t *d2 = qemu_machine_to_json(&m2);
	assert(json_equal(d, d2));
	char **argv = qemu_machine_argv(&m, QEMU_ACCEL_TCG, 3, "/run/c,d", true);
	assert(argv && argv[0]);
	qemu_argv_free(argv);
	json_decref(d);
	json_decref(d2);
	json_decref(j);
	qemu_machine_fini(&m);
	qemu_machine_fini(&m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		blob(data + 1, size - 1);
	else
		desc(data + 1, size - 1);
	return 0;
}
