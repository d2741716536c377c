/* Unit tests for common/err, common/buf, common/fdio and common/log. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"

static void test_err_context(void **state)
{
	(void)state;
	struct err e;
	err_clear(&e);
	assert_int_equal(err_set(&e, EINVAL, "bad schema_version %d", 7), -EINVAL);
	assert_int_equal(err_prefix(&e, "container `%s`", "c2"), -EINVAL);
	assert_int_equal(err_prefix(&e, "import pod `%s`", "p1"), -EINVAL);
	assert_string_equal(e.msg, "import pod `p1`: container `c2`: bad schema_version 7");
	assert_int_equal(err_sys(&e, -ENOENT, "open %s", "x"), -ENOENT);
	assert_string_equal(e.msg, "open x: No such file or directory");
	assert_int_equal(err_set(NULL, -EPERM, "ignored"), -EPERM);
}

static void test_err_truncates(void **state)
{
	(void)state;
	struct err e;
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	err_set(&e, -E2BIG, "%s", big);
	assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
	err_prefix(&e, "ctx");
	assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
	assert_memory_equal(e.msg, "ctx: aaa", 8);
}

static void test_buf(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 1000; i++)
		buf_append(&b, &i, sizeof(i));
	assert_int_equal(buf_avail(&b), 4000);
	buf_consume(&b, 4 * 990);
	int v;
	memcpy(&v, buf_head(&b), sizeof(v));
	assert_int_equal(v, 990);
	buf_append(&b, "x", 1); /* may compact */
	memcpy(&v, buf_head(&b), sizeof(v));
	assert_int_equal(v, 990);
	assert_int_equal(buf_avail(&b), 41);
	buf_consume(&b, 41);
	assert_int_equal(buf_avail(&b), 0);
	buf_fini(&b);
	uint8_t le[8];
	le64_put(le, 0x0102030405060708ULL);
	assert_int_equal(le[0], 8);
	assert_int_equal(le64_get(le), 0x0102030405060708ULL);
}

static void test_fdio_outcomes(void **state)
{
	(void)state;
	int sv[2];
	struct err e;
	char c;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fd_set_flags(sv[0], true, &e), 0);
	assert_int_equal(fd_read(sv[0], &c, 1, &e), IO_AGAIN);
	assert_int_equal(fd_write_all(sv[1], "hi", 2, &e), 0);
	char two[2];
	assert_int_equal(fd_read_all(sv[0], two, 2, &e), 0);
	assert_memory_equal(two, "hi", 2);
	close(sv[1]);
	assert_int_equal(fd_read(sv[0], &c, 1, &e), IO_EOF);
	assert_int_equal(fd_read_all(sv[0], &c, 1, &e), -EPIPE);
	assert_int_equal(fd_write(sv[0], "x", 1, &e), -EPIPE);
	close(sv[0]);
	assert_true(fd_read(sv[0], &c, 1, &e) < 0);
	assert_int_equal(e.code, -EBADF);
}

static void test_log_level(void **state)
{
	(void)state;
	enum log_level l;
	assert_int_equal(log_parse_level("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	assert_int_equal(log_parse_level("loud", &l), -EINVAL);
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);
	log_set_file(f);
	log_set_level(LOG_LVL_WARN);
	log_info("hidden %d", 1);
	log_warn("shown id=%d", 2);
	log_set_file(NULL);
	fclose(f);
	assert_null(strstr(p, "hidden"));
	assert_non_null(strstr(p, "warn: shown id=2"));
	free(p);
	char *s = xasprintf("%s-%d", "a", 3);
	assert_string_equal(s, "a-3");
	free(s);
}

/* The rate limit lets LOG_LIMIT_BURST lines through per window, counts the rest and reports
 * the count with the next line let through. */
static void test_log_limit(void **state)
{
	(void)state;
	struct log_limit l = {0};
	unsigned sup = 99;
	long long t = 1000;
	for (int i = 0; i < LOG_LIMIT_BURST; i++) {
		assert_true(log_limit_allow(&l, t + i, &sup));
		assert_int_equal(sup, 0);
	}
	for (int i = 0; i < 1000; i++)
		assert_false(log_limit_allow(&l, t + 100 + i, &sup));
	t += LOG_LIMIT_WINDOW_NS;
	assert_true(log_limit_allow(&l, t, &sup));
	assert_int_equal(sup, 1000);
	assert_true(log_limit_allow(&l, t + 1, &sup));
	assert_int_equal(sup, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_err_context), cmocka_unit_test(test_err_truncates),
	    cmocka_unit_test(test_buf),         cmocka_unit_test(test_fdio_outcomes),
	    cmocka_unit_test(test_log_level),   cmocka_unit_test(test_log_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
