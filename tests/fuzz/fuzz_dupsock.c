/* Fuzz harness for CreateDuplicateSocket's protocol_info (host/shim/dupsock) and the session
 * id rule (migration_session_u32), the two things the Migration service reads from an
 * orchestrator's bytes before any state check.  Invariants: the decoder accepts exactly the
 * 16-byte "FRYS" v1 layout with pid and fd in range, and re-encoding what it accepted gives
 * the input back; a refusal is -EINVAL with a message; taking the described socket either
 * gives a new fd or -EINVAL with a message; a session id in GUID form hashes like its
 * lower-case form. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "host/shim/dupsock.h"
#include "host/shim/migration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_info(const uint8_t *p, size_t n)
{
	struct dupsock_info info;
	struct err e;
	err_clear(&e);
	int r = dupsock_info_decode(p, n, &info, &e);
	bool valid = n == DUPSOCK_INFO_LEN && memcmp(p, DUPSOCK_MAGIC, 4) == 0 &&
	             le32_get(p + 4) == DUPSOCK_VERSION && le32_get(p + 8) != 0 &&
	             le32_get(p + 8) <= INT32_MAX && le32_get(p + 12) <= INT32_MAX;
	if (r < 0) {
		assert(!valid);
		assert(r == -EINVAL && e.code == -EINVAL && e.msg[0] != '\0');
		return;
	}
	assert(valid && r == 0);
	uint8_t back[DUPSOCK_INFO_LEN];
	dupsock_info_encode(&info, back);
	assert(memcmp(back, p, DUPSOCK_INFO_LEN) == 0);
	/* aim at this process now and then, so the socket checks run on real fds */
	if (p[8] & 1)
		info.pid = (uint32_t)getpid();
	info.fd %= 64;
	err_clear(&e);
	int fd = dupsock_take(&info, NULL, &e);
	if (fd >= 0)
		close(fd);
	else
		assert(fd == -EINVAL && e.code == -EINVAL && e.msg[0] != '\0');
}

static void fuzz_session_id(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		return;
	memcpy(s, p, n);
	s[n] = '\0';
	uint32_t u = migration_session_u32(s);
	bool guid = strlen(s) == 36;
	for (size_t i = 0; guid && i < 36; i++) {
		char ch = s[i];
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		           (ch >= 'A' && ch <= 'F');
		guid = dash ? ch == '-' : hex;
	}
	if (guid) {
		for (size_t i = 0; i < 36; i++)
			if (s[i] >= 'A' && s[i] <= 'F')
				s[i] = (char)(s[i] - 'A' + 'a');
		assert(migration_session_u32(s) == u);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size heap copy so ASan sees any read past the end */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	fuzz_info(buf, size);
	fuzz_session_id(buf, size);
	free(buf);
	return 0;
}
