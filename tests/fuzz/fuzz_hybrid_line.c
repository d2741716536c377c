/* Fuzz harness for the hybrid vsock handshake line parsers (CONNECT from a host, OK from a
 * VMM): arbitrary bytes must yield "need more", a parsed line within the input, or a clean
 * error, never a crash or an out-of-bounds read. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/vsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int r, size_t line_len, size_t n, const struct err *e)
{
	if (r == 1)
		assert(line_len > 0 && line_len <= n && line_len <= 32);
	else if (r < 0)
		assert(e->code == r && e->msg[0] != '\0');
	else
		assert(r == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size heap copy so ASan sees any read past the end */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	for (size_t n = 0; n <= size; n += (n < 40 ? 1 : size)) {
		struct err e;
		uint32_t v = 0;
		size_t line = 0;
		err_clear(&e);
		check(vsock_hybrid_parse_connect(buf, n, &v, &line, &e), line, n, &e);
		err_clear(&e);
		line = 0;
		check(vsock_hybrid_parse_ok(buf, n, &v, &line, &e), line, n, &e);
	}
	free(buf);
	return 0;
}
