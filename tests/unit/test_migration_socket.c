/* Unit tests for CreateDuplicateSocket in the migration controller (hcsshim socket_test.go:
 * TooSmall, SessionMismatch, RejectsAlreadyRegistered, InvalidState, EndToEnd) with Linux's
 * (pid, fd) protocol_info over real sockets, plus ferry's rules: a refused socket leaves the
 * session as it was, the socket wakes a waiting transfer, and the socket hook (the Windows
 * half) replaces dupsock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/lib/fake_sandbox.h"

static void test_register_too_small(void **state)
{
	struct mt *t = *state;
	static const uint8_t one[1] = {0};
	/* checked before the session: idle with "" would otherwise be FailedPrecondition */
	assert_int_equal(mt_register(t, "", one, 1), MIG_CODE_INVALID_ARGUMENT);
	assert_string_equal(t->st.msg, "register duplicate migration socket: protocol info is 1 "
	                               "bytes, want 16 (\"FRYS\", version, pid, fd): invalid "
	                               "argument");
	assert_int_equal(mt_register(t, "", NULL, 0), MIG_CODE_INVALID_ARGUMENT);
}

static void test_register_session_mismatch(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_EXPORTED);
	uint8_t info[DUPSOCK_INFO_LEN];
	mt_socket_info(t, info);
	assert_int_equal(mt_register(t, "other", info, sizeof(info)), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "session id \"other\" does not match active session \"sess-1\"");
	assert_int_equal(migration_state(t->m), MIG_STATE_SOURCE_EXPORTED);
}

static void test_register_rejects_already_registered(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOCKET_READY);
	assert_int_equal(mt_register_pair(t, "sess-1"), MIG_CODE_ALREADY_EXISTS);
	assert_string_equal(t->st.msg, "register duplicate migration socket: duplicate socket "
	                               "already registered for session \"sess-1\": already exists");
	assert_int_equal(migration_state(t->m), MIG_STATE_SOCKET_READY);
}

static void test_register_invalid_state(void **state)
{
	struct mt *t = *state;
	assert_int_equal(mt_register_pair(t, ""), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "invalid register duplicate socket state (current: Idle)");
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_PREPARED);
	assert_int_equal(mt_register_pair(t, "sess-1"), MIG_CODE_FAILED_PRECONDITION);
	mt_expect_msg(t, "(current: SourcePrepared)");
}

static void end_to_end(struct mt *t, int side)
{
	enum mig_state before =
	    side == VMM_ORIGIN_SOURCE ? MIG_STATE_SOURCE_EXPORTED : MIG_STATE_DESTINATION_PREPARED;
	mt_drive(t, (enum vmm_origin)side, before);
	assert_int_equal(mt_register_pair(t, "sess-1"), MIG_CODE_OK);
	assert_int_equal(migration_state(t->m), MIG_STATE_SOCKET_READY);
	assert_int_equal(mt_transfer(t, "sess-1", 0), MIG_CODE_OK);
	mt_wait_state(t, MIG_STATE_TRANSFER_COMPLETED);
	/* the shim's copy is the connected socket the orchestrator made */
	assert_int_equal(write(t->peer, "hello", 5), 5);
	char buf[8];
	assert_int_equal(read(t->sb.sock, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
}

static void test_register_end_to_end_source(void **state)
{
	end_to_end(*state, VMM_ORIGIN_SOURCE);
}

static void test_register_end_to_end_destination(void **state)
{
	end_to_end(*state, VMM_ORIGIN_DESTINATION);
}

/* ferry: hcsshim fails the session on any socket problem past the state check; ferry refuses
 * the argument and keeps the session, so a good socket can still come */
static void test_register_refused_socket_keeps_session(void **state)
{
	struct mt *t = *state;
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOCKET_WAITING);
	int p[2];
	assert_int_equal(pipe(p), 0);
	uint8_t info[DUPSOCK_INFO_LEN];
	struct dupsock_info di = {.pid = (uint32_t)getpid(), .fd = (uint32_t)p[0]};
	dupsock_info_encode(&di, info);
	assert_int_equal(mt_register(t, "sess-1", info, sizeof(info)), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "is not a socket: invalid argument");
	assert_int_equal(migration_state(t->m), MIG_STATE_SOCKET_WAITING);
	close(p[0]);
	close(p[1]);
	/* a dead owner */
	di.pid = 0x7ffffff0;
	dupsock_info_encode(&di, info);
	assert_int_equal(mt_register(t, "sess-1", info, sizeof(info)), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "does not exist");
	/* the good one wakes the waiting transfer */
	assert_int_equal(mt_register_pair(t, "sess-1"), MIG_CODE_OK);
	mt_wait_state(t, MIG_STATE_TRANSFER_COMPLETED);
	assert_int_equal(t->sb.verb[FAKE_MIG_START].calls, 1);
}

/* ---- the socket hook ---- */

struct hook {
	unsigned checks, takes;
	int fd; /* what take returns */
	size_t len;
};

static int hook_check(const uint8_t *info, size_t len, void *ud, struct err *e)
{
	struct hook *h = ud;
	h->checks++;
	h->len = len;
	if (len < 4 || memcmp(info, "WSA!", 4) != 0)
		return err_set(e, -EINVAL, "protocol info is %zu bytes, want at least 628", len);
	return 0;
}

static int hook_take(const uint8_t *info, size_t len, void *ud, struct err *e)
{
	(void)info;
	(void)len;
	struct hook *h = ud;
	h->takes++;
	if (h->fd < 0)
		return err_set(e, -EINVAL, "duplicated socket is not connected");
	return h->fd;
}

static void test_register_with_socket_hook(void **state)
{
	struct mt *t = *state;
	migration_free(t->m);
	struct hook h = {.fd = -1};
	struct migration_socket_ops sock = {hook_check, hook_take, &h};
	struct migration_config cfg = {.ops = &fake_sb_ops, .sb = &t->sb, .socket = &sock};
	struct err e;
	err_clear(&e);
	t->m = migration_new(t->ev.loop, &cfg, &e);
	assert_non_null(t->m);
	mt_drive(t, VMM_ORIGIN_SOURCE, MIG_STATE_SOURCE_EXPORTED);
	static const uint8_t bad[4] = {1, 2, 3, 4}, good[8] = {'W', 'S', 'A', '!'};
	assert_int_equal(mt_register(t, "sess-1", bad, 4), MIG_CODE_INVALID_ARGUMENT);
	assert_int_equal(h.takes, 0);
	assert_int_equal(mt_register(t, "sess-1", good, 8), MIG_CODE_INVALID_ARGUMENT);
	mt_expect_msg(t, "duplicated socket is not connected");
	assert_int_equal(h.len, 8);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	h.fd = sv[0];
	t->peer = sv[1];
	assert_int_equal(mt_register(t, "sess-1", good, 8), MIG_CODE_OK);
	assert_int_equal(h.checks, 3);
	assert_int_equal(h.takes, 2);
	assert_int_equal(mt_transfer(t, "sess-1", 0), MIG_CODE_OK);
	mt_wait_state(t, MIG_STATE_TRANSFER_COMPLETED);
	assert_int_equal(t->sb.sock, sv[0]); /* handed to the sandbox as taken */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, mt_setup, mt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_register_too_small),
	    T(test_register_session_mismatch),
	    T(test_register_rejects_already_registered),
	    T(test_register_invalid_state),
	    T(test_register_end_to_end_source),
	    T(test_register_end_to_end_destination),
	    T(test_register_refused_socket_keeps_session),
	    T(test_register_with_socket_hook),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
