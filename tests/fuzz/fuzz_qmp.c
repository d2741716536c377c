/* Fuzz harness for the QMP client (host/vmm/qemu/qmp): every line of the input goes through
 * the decoder (qmp_msg_parse on an exact-size copy, so ASan sees any read past the end),
 * which must accept it with consistent fields or reject it with -EBADMSG and a message; then
 * the whole input is played as QEMU's side of a socketpair to a live client with two
 * commands outstanding (ids 1 and 2 after the handshake's 0), which must survive: replies,
 * events, garbage, long lines and EOF end in callbacks or a clean close, never a crash or a
 * leak. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "common/err.h"
#include "host/vmm/qemu/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(const char *line, size_t n)
{
	char *copy = malloc(n ? n : 1);
	if (!copy)
		return;
	memcpy(copy, line, n);
	struct qmp_msg m;
	struct err e;
	err_clear(&e);
	int r = qmp_msg_parse(copy, n, &m, &e);
	if (r == 0) {
		assert(m.root);
		switch (m.kind) {
		case QMP_MSG_GREETING:
			assert(m.ver_major >= 0 && m.ver_minor >= 0 && m.ver_micro >= 0);
			break;
		case QMP_MSG_RETURN:
			assert(m.ret);
			break;
		case QMP_MSG_ERROR:
			assert(m.err_class && m.err_desc);
			break;
		case QMP_MSG_EVENT:
			assert(m.event && m.event[0]);
			break;
		default:
			assert(0);
		}
	} else {
		assert(r == -EBADMSG && e.code == r && e.msg[0] && !m.root);
	}
	qmp_msg_fini(&m);
	free(copy);
}

struct state {
	int replies, ready, closed;
	struct qmp *q;
};

static void on_ready(struct qmp *q, int status, const struct err *e, void *ud)
{
	(void)q;
	(void)e;
	struct state *s = ud;
	s->ready = status == 0 ? 1 : -1;
}

static void on_event(struct qmp *q, const char *name, json_t *d, int64_t ts, void *ud)
{
	(void)q;
	(void)d;
	(void)ts;
	(void)ud;
	assert(name && name[0]);
}

static void on_close(struct qmp *q, const struct err *why, void *ud)
{
	(void)q;
	struct state *s = ud;
	assert(why->code < 0);
	s->closed++;
}

static void on_reply(struct qmp *q, int status, json_t *ret, const struct err *e, void *ud)
{
	(void)q;
	struct state *s = ud;
	assert(status == 0 ? ret != NULL : (e && e->code == status));
	s->replies++;
}

static void play(const uint8_t *data, size_t size)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct state s = {0};
	struct err e;
	static const struct qmp_ops ops = {
	    .on_ready = on_ready, .on_event = on_event, .on_close = on_close};
	s.q = qmp_new(loop, sv[0], &ops, &s, &e);
	assert(s.q);
	qmp_command(s.q, "a", NULL, -1, -1, on_reply, &s, &e);
	qmp_command(s.q, "b", NULL, -1, -1, on_reply, &s, &e);
	size_t off = 0;
	for (int i = 0; i < 64 && off < size; i++) {
		ssize_t n = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			off += (size_t)n;
		ev_run(loop, EVRUN_NOWAIT);
	}
	close(sv[1]);
	for (int i = 0; i < 8; i++)
		ev_run(loop, EVRUN_NOWAIT);
	assert(s.closed <= 1 && s.replies <= 2);
	qmp_free(s.q);
	ev_loop_destroy(loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;
	while (left > 0) {
		const char *nl = memchr(p, '\n', left);
		size_t n = nl ? (size_t)(nl - p) : left;
		check_line(p, n);
		if (!nl)
			break;
		left -= n + 1;
		p = nl + 1;
	}
	play(data, size);
	return 0;
}
