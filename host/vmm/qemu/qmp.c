/* QMP client: line framing with a cap, the message decoder (counted, then parsed, then every
 * field type-checked), the greeting / qmp_capabilities handshake, a send queue with an fd
 * barrier for commands that pass a descriptor, replies matched by id, per-command timers and
 * the event fan-out.  Failure anywhere closes the connection once, completes every
 * outstanding command with -ECONNRESET, then tells the owner (on_ready before negotiation,
 * on_close after).  See qmp.h for the contract. */
#include "host/vmm/qemu/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "common/buf.h"
#include "common/fdio.h"
#include "common/reenter.h"
#include "common/xalloc.h"

#define READ_CHUNK     (64u * 1024u)
#define EVENT_NAME_MAX 128

/* ======================= decoder ======================= */

size_t qmp_count_values(const char *s, size_t n, size_t limit)
{
	size_t count = 1;
	bool in_str = false, esc = false;
	for (size_t i = 0; i < n && count <= limit; i++) {
		char c = s[i];
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == '{' || c == '[' || c == ',' || c == ':')
			count++;
	}
	return count;
}

static int bad(struct err *e, const char *fmt, const char *detail)
{
	return err_set(e, -EBADMSG, fmt, detail);
}

/* An integer member in [lo, hi]; absent is an error. */
static int get_int(json_t *obj, const char *key, long long lo, long long hi, long long *out,
                   struct err *e)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_integer(v))
		return bad(e, "qmp: `%s` is missing or not an integer", key);
	long long x = json_integer_value(v);
	if (x < lo || x > hi)
		return bad(e, "qmp: `%s` out of range", key);
	*out = x;
	return 0;
}

static int parse_greeting(struct qmp_msg *m, json_t *g, struct err *e)
{
	long long v[3];
	static const char *const names[3] = {"major", "minor", "micro"};
	if (!json_is_object(g))
		return bad(e, "qmp: greeting `%s` is not an object", "QMP");
	json_t *ver = json_object_get(g, "version");
	json_t *qemu = json_is_object(ver) ? json_object_get(ver, "qemu") : NULL;
	if (!json_is_object(qemu))
		return bad(e, "qmp: greeting without `%s`", "version.qemu");
	for (int i = 0; i < 3; i++)
		if (get_int(qemu, names[i], 0, INT_MAX, &v[i], e) < 0)
			return err_prefix(e, "greeting version");
	if (!json_is_array(json_object_get(g, "capabilities")))
		return bad(e, "qmp: greeting without a `%s` array", "capabilities");
	m->kind = QMP_MSG_GREETING;
	m->ver_major = (int)v[0];
	m->ver_minor = (int)v[1];
	m->ver_micro = (int)v[2];
	return 0;
}

static int parse_id(struct qmp_msg *m, json_t *root, struct err *e)
{
	json_t *id = json_object_get(root, "id");
	if (!id)
		return 0;
	if (!json_is_integer(id) || json_integer_value(id) < 0)
		return bad(e, "qmp: `%s` is not a non-negative integer (ferry sends integer ids)",
		           "id");
	m->has_id = true;
	m->id = (uint64_t)json_integer_value(id);
	return 0;
}

static int parse_error(struct qmp_msg *m, json_t *err, struct err *e)
{
	if (!json_is_object(err))
		return bad(e, "qmp: `%s` is not an object", "error");
	json_t *cls = json_object_get(err, "class");
	json_t *desc = json_object_get(err, "desc");
	if (!json_is_string(cls) || !json_is_string(desc))
		return bad(e, "qmp: `%s` needs string members class and desc", "error");
	m->kind = QMP_MSG_ERROR;
	m->err_class = json_string_value(cls);
	m->err_desc = json_string_value(desc);
	return 0;
}

static int parse_event(struct qmp_msg *m, json_t *root, json_t *ev, struct err *e)
{
	if (!json_is_string(ev) || json_string_length(ev) == 0 ||
	    json_string_length(ev) > EVENT_NAME_MAX)
		return bad(e, "qmp: `%s` is not a name", "event");
	const char *name = json_string_value(ev);
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-' || (*p >= 'a' && *p <= 'z')))
			return bad(e, "qmp: event name `%.40s` has a bad character", name);
	json_t *data = json_object_get(root, "data");
	if (data && !json_is_object(data))
		return bad(e, "qmp: event `%s` is not an object", "data");
	json_t *ts = json_object_get(root, "timestamp");
	m->ts_us = -1;
	if (ts) {
		long long s, us;
		if (!json_is_object(ts))
			return bad(e, "qmp: event `%s` is not an object", "timestamp");
		/* QEMU writes -1/-1 when it has no clock; keep that as "unknown". */
		if (get_int(ts, "seconds", -1, INT64_MAX / 1000000 - 1, &s, e) < 0 ||
		    get_int(ts, "microseconds", -1, 999999, &us, e) < 0)
			return err_prefix(e, "event timestamp");
		if (s >= 0 && us >= 0)
			m->ts_us = (int64_t)s * 1000000 + us;
	}
	m->kind = QMP_MSG_EVENT;
	m->event = name;
	m->data = data;
	return 0;
}

int qmp_msg_parse(const char *line, size_t n, struct qmp_msg *m, struct err *e)
{
	memset(m, 0, sizeof(*m));
	m->ts_us = -1;
	if (n > QMP_LINE_MAX)
		return err_set(e, -EBADMSG, "qmp: message of %zu bytes exceeds %u", n,
		               QMP_LINE_MAX);
	if (qmp_count_values(line, n, QMP_MAX_VALUES) > QMP_MAX_VALUES)
		return err_set(e, -EBADMSG, "qmp: message holds more than %u JSON values",
		               QMP_MAX_VALUES);
	json_error_t je;
	json_t *root = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return err_set(e, -EBADMSG, "qmp: not JSON (%s at byte %d)", je.text, je.position);
	int rc;
	if (!json_is_object(root)) {
		rc = bad(e, "qmp: message is not a JSON %s", "object");
		goto out;
	}
	json_t *greet = json_object_get(root, "QMP");
	json_t *ret = json_object_get(root, "return");
	json_t *err = json_object_get(root, "error");
	json_t *ev = json_object_get(root, "event");
	if (!!greet + !!ret + !!err + !!ev != 1) {
		rc = bad(e, "qmp: message needs exactly one of %s", "QMP, return, error or event");
		goto out;
	}
	if (greet)
		rc = parse_greeting(m, greet, e);
	else if (ev)
		rc = parse_event(m, root, ev, e);
	else if ((rc = parse_id(m, root, e)) == 0) {
		if (err) {
			rc = parse_error(m, err, e);
		} else {
			m->kind = QMP_MSG_RETURN;
			m->ret = ret;
		}
	}
out:
	if (rc < 0) {
		json_decref(root);
		memset(m, 0, sizeof(*m));
		m->ts_us = -1;
		return rc;
	}
	m->root = root;
	return 0;
}

void qmp_msg_fini(struct qmp_msg *m)
{
	if (!m)
		return;
	json_decref(m->root);
	memset(m, 0, sizeof(*m));
	m->ts_us = -1;
}

/* ======================= client ======================= */

enum qmp_state { ST_GREETING, ST_NEGOTIATING, ST_READY, ST_CLOSED };

struct qmp_cmd {
	struct qmp_cmd *next;
	struct qmp *q;
	uint64_t id;
	char *text; /* the command line, "\n" included */
	size_t len;
	int fd;          /* our duplicate to pass, or -1 (closed once it went out) */
	bool carries_fd; /* sent alone, and nothing passes it until its reply */
	bool internal;
	bool orphan; /* timed out: its reply is dropped */
	qmp_reply_fn done;
	void *ud;
	ev_timer timer;
};

struct cmd_list {
	struct qmp_cmd *head, *tail;
};

struct qmp {
	struct ev_loop *loop;
	int fd;
	ev_io rio, wio;
	ev_timer ready_timer;
	struct qmp_ops ops;
	void *ud;
	enum qmp_state st;
	struct buf in, out;
	struct cmd_list queue; /* not sent yet */
	struct cmd_list sent;  /* sent, reply outstanding (orphans included) */
	uint64_t next_id;
	int ver[3];
	bool werr_pending; /* a write failed outside the loop: fail from on_write */
	struct err werr;
	struct reenter re;
};

static void list_push(struct cmd_list *l, struct qmp_cmd *c)
{
	c->next = NULL;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
}

static void list_push_front(struct cmd_list *l, struct qmp_cmd *c)
{
	c->next = l->head;
	l->head = c;
	if (!l->tail)
		l->tail = c;
}

static struct qmp_cmd *list_pop(struct cmd_list *l)
{
	struct qmp_cmd *c = l->head;
	if (c) {
		l->head = c->next;
		if (!l->head)
			l->tail = NULL;
		c->next = NULL;
	}
	return c;
}

static struct qmp_cmd *list_take_id(struct cmd_list *l, uint64_t id)
{
	struct qmp_cmd *prev = NULL;
	for (struct qmp_cmd *c = l->head; c; prev = c, c = c->next) {
		if (c->id != id)
			continue;
		if (prev)
			prev->next = c->next;
		else
			l->head = c->next;
		if (l->tail == c)
			l->tail = prev;
		c->next = NULL;
		return c;
	}
	return NULL;
}

static void cmd_free(struct qmp_cmd *c)
{
	ev_timer_stop(c->q->loop, &c->timer);
	if (c->fd >= 0)
		close(c->fd);
	free(c->text);
	free(c);
}

static void destroy(struct qmp *q)
{
	buf_fini(&q->in);
	buf_fini(&q->out);
	free(q);
}

static void stop_io(struct qmp *q)
{
	ev_io_stop(q->loop, &q->rio);
	ev_io_stop(q->loop, &q->wio);
	ev_timer_stop(q->loop, &q->ready_timer);
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

/* Complete c (already unlinked) and free it.  The callback may free q. */
static void complete(struct qmp *q, struct qmp_cmd *c, int status, json_t *ret, const struct err *e)
{
	qmp_reply_fn done = c->orphan ? NULL : c->done;
	void *ud = c->ud;
	cmd_free(c);
	if (done)
		done(q, status, ret, e, ud);
}

/* Close once: every outstanding command completes, then the owner hears about it. */
static void fail(struct qmp *q, const struct err *why)
{
	if (q->st == ST_CLOSED)
		return;
	enum qmp_state was = q->st;
	q->st = ST_CLOSED;
	stop_io(q);
	struct err e;
	err_set(&e, -ECONNRESET, "qmp connection closed: %s", why->msg);
	struct qmp_cmd *c;
	while (!reenter_dying(&q->re) && ((c = list_pop(&q->sent)) || (c = list_pop(&q->queue))))
		complete(q, c, -ECONNRESET, NULL, &e);
	if (reenter_dying(&q->re))
		return;
	if (was == ST_READY) {
		if (q->ops.on_close)
			q->ops.on_close(q, why, q->ud);
	} else if (q->ops.on_ready) {
		q->ops.on_ready(q, why->code ? why->code : -EPROTO, why, q->ud);
	}
}

static void fail_msg(struct qmp *q, int code, const char *fmt, const char *detail)
{
	struct err e;
	err_set(&e, code, fmt, detail);
	fail(q, &e);
}

/* Can the head of the queue go out now?  User commands wait for the negotiation; a command
 * with an fd waits until nothing else is in flight, and nothing passes it while it is. */
static bool sendable(const struct qmp *q, const struct qmp_cmd *c)
{
	if (q->st == ST_CLOSED || (!c->internal && q->st != ST_READY))
		return false;
	for (const struct qmp_cmd *s = q->sent.head; s; s = s->next)
		if (s->carries_fd)
			return false;
	if (c->carries_fd)
		return q->sent.head == NULL && buf_avail(&q->out) == 0;
	return true;
}

/* Send the first bytes of an fd-carrying command with SCM_RIGHTS.  Returns 1 when sent (the
 * rest, if any, is queued), 0 on EAGAIN, < 0 on error. */
static int send_fd_cmd(struct qmp *q, struct qmp_cmd *c, struct err *e)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = c->text, .iov_len = c->len};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = u.buf,
	                    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &c->fd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(q->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return err_sys(e, -errno, "qmp: send %s with its fd", "command");
	}
	buf_append(&q->out, c->text + n, c->len - (size_t)n);
	close(c->fd);
	c->fd = -1;
	return 1;
}

static void update_write(struct qmp *q)
{
	bool want = q->fd >= 0 &&
	            (buf_avail(&q->out) > 0 ||
	             (q->queue.head && q->queue.head->carries_fd && sendable(q, q->queue.head)));
	if (want)
		ev_io_start(q->loop, &q->wio);
	else
		ev_io_stop(q->loop, &q->wio);
}

/* Move sendable commands from the queue to the wire (as far as the socket takes them). */
static int pump(struct qmp *q, struct err *e)
{
	while (q->queue.head && sendable(q, q->queue.head)) {
		struct qmp_cmd *c = q->queue.head;
		if (c->carries_fd) {
			int r = send_fd_cmd(q, c, e);
			if (r <= 0) {
				if (r < 0)
					return r;
				break;
			}
		} else {
			buf_append(&q->out, c->text, c->len);
		}
		list_push(&q->sent, list_pop(&q->queue));
	}
	while (buf_avail(&q->out) > 0) {
		ssize_t n = fd_write(q->fd, buf_head(&q->out), buf_avail(&q->out), e);
		if (n == IO_AGAIN)
			break;
		if (n < 0)
			return (int)n;
		buf_consume(&q->out, (size_t)n);
	}
	update_write(q);
	return 0;
}

static void on_cmd_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qmp_cmd *c = w->data;
	struct qmp *q = c->q;
	if (c->orphan)
		return;
	reenter_enter(&q->re);
	struct err e;
	err_set(&e, -ETIMEDOUT, "qmp: no reply to command id=%" PRIu64 " in time", c->id);
	/* A queued command is dropped; a sent one stays as an orphan so its reply is known. */
	qmp_reply_fn done = c->done;
	void *ud = c->ud;
	if (list_take_id(&q->queue, c->id)) {
		cmd_free(c);
	} else {
		c->orphan = true;
		ev_timer_stop(q->loop, &c->timer);
	}
	if (done)
		done(q, -ETIMEDOUT, NULL, &e, ud);
	if (reenter_leave(&q->re))
		destroy(q);
}

static struct qmp_cmd *cmd_new(struct qmp *q, const char *execute, json_t *args, int timeout_ms)
{
	struct qmp_cmd *c = xcalloc(1, sizeof(*c));
	c->q = q;
	c->fd = -1;
	c->id = q->next_id++;
	json_t *o = json_pack("{s:s, s:I}", "execute", execute, "id", (json_int_t)c->id);
	if (args)
		json_object_set(o, "arguments", args);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	c->len = strlen(s) + 1;
	c->text = xmalloc(c->len + 1);
	memcpy(c->text, s, c->len - 1);
	c->text[c->len - 1] = '\n';
	c->text[c->len] = '\0';
	free(s);
	ev_timer_init(&c->timer, on_cmd_timeout, 0., 0.);
	c->timer.data = c;
	if (timeout_ms >= 0) {
		ev_timer_set(&c->timer, (timeout_ms ? timeout_ms : QMP_COMMAND_TIMEOUT_MS) / 1e3,
		             0.);
		ev_timer_start(q->loop, &c->timer);
	}
	return c;
}

static void on_caps(struct qmp *q, int status, json_t *ret, const struct err *e, void *ud)
{
	(void)ret;
	(void)ud;
	if (status < 0) {
		struct err f;
		err_set(&f, status == -EREMOTEIO ? -EPROTO : status,
		        "qmp: qmp_capabilities refused: %s", e->msg);
		fail(q, &f);
		return;
	}
	q->st = ST_READY;
	ev_timer_stop(q->loop, &q->ready_timer);
	if (q->ops.on_ready)
		q->ops.on_ready(q, 0, NULL, q->ud);
	if (reenter_dying(&q->re) || q->st != ST_READY)
		return;
	struct err pe;
	if (pump(q, &pe) < 0)
		fail(q, &pe);
}

static void handle_reply(struct qmp *q, struct qmp_msg *m)
{
	if (!m->has_id) {
		/* QEMU answers without an id only input it could not take at all. */
		fail_msg(q, -EPROTO, "qmp: qemu rejected our input: %s",
		         m->kind == QMP_MSG_ERROR ? m->err_desc : "(unexpected id-less reply)");
		return;
	}
	struct qmp_cmd *c = list_take_id(&q->sent, m->id);
	if (!c) {
		fail_msg(q, -EPROTO, "qmp: reply to a command %s", "never sent");
		return;
	}
	if (m->kind == QMP_MSG_RETURN) {
		complete(q, c, 0, m->ret, NULL);
	} else {
		struct err e;
		err_set(&e, -EREMOTEIO, "%s: %s", m->err_class, m->err_desc);
		complete(q, c, -EREMOTEIO, NULL, &e);
	}
	/* A reply may lift the fd barrier. */
	if (!reenter_dying(&q->re) && q->st != ST_CLOSED) {
		struct err pe;
		if (pump(q, &pe) < 0)
			fail(q, &pe);
	}
}

static void handle_line(struct qmp *q, const char *line, size_t n)
{
	struct qmp_msg m;
	struct err e;
	if (qmp_msg_parse(line, n, &m, &e) < 0) {
		fail(q, &e);
		return;
	}
	switch (m.kind) {
	case QMP_MSG_GREETING:
		if (q->st != ST_GREETING) {
			fail_msg(q, -EPROTO, "qmp: %s after the handshake", "greeting");
			break;
		}
		q->ver[0] = m.ver_major;
		q->ver[1] = m.ver_minor;
		q->ver[2] = m.ver_micro;
		q->st = ST_NEGOTIATING;
		{
			struct qmp_cmd *c = cmd_new(q, "qmp_capabilities", NULL, -1);
			c->internal = true;
			c->done = on_caps;
			list_push_front(&q->queue, c);
			if (pump(q, &e) < 0)
				fail(q, &e);
		}
		break;
	case QMP_MSG_RETURN:
	case QMP_MSG_ERROR:
		if (q->st == ST_GREETING)
			fail_msg(q, -EPROTO, "qmp: %s before the greeting", "reply");
		else
			handle_reply(q, &m);
		break;
	case QMP_MSG_EVENT:
		/* QEMU sends none before the negotiation; one that comes anyway is ignored. */
		if (q->st == ST_READY && q->ops.on_event)
			q->ops.on_event(q, m.event, m.data, m.ts_us, q->ud);
		break;
	}
	qmp_msg_fini(&m);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qmp *q = w->data;
	struct err e;
	reenter_enter(&q->re);
	uint8_t *p = buf_reserve(&q->in, READ_CHUNK);
	ssize_t n = fd_read(q->fd, p, READ_CHUNK, &e);
	if (n == IO_AGAIN)
		goto out;
	if (n == IO_EOF) {
		fail_msg(q, -ECONNRESET, "qmp: %s", "qemu closed the connection");
		goto out;
	}
	if (n < 0) {
		fail(q, &e);
		goto out;
	}
	buf_commit(&q->in, (size_t)n);
	while (q->st != ST_CLOSED && !reenter_dying(&q->re)) {
		const char *s = (const char *)buf_head(&q->in);
		size_t avail = buf_avail(&q->in);
		const char *nl = memchr(s, '\n', avail);
		if (!nl) {
			if (avail > QMP_LINE_MAX)
				fail_msg(q, -EBADMSG, "qmp: %s", "line exceeds the length limit");
			break;
		}
		size_t len = (size_t)(nl - s);
		size_t used = len + 1;
		if (len > 0 && s[len - 1] == '\r')
			len--;
		if (len > QMP_LINE_MAX) {
			fail_msg(q, -EBADMSG, "qmp: %s", "line exceeds the length limit");
			break;
		}
		/* Copy out (the line must outlive buf_consume); byte for byte, since it may hold
		 * NULs, which the decoder rejects. */
		_cleanup_free_ char *line = xmalloc(len + 1);
		memcpy(line, s, len);
		line[len] = '\0';
		buf_consume(&q->in, used);
		if (len > 0)
			handle_line(q, line, len);
	}
out:
	if (reenter_leave(&q->re))
		destroy(q);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qmp *q = w->data;
	struct err e;
	reenter_enter(&q->re);
	if (q->werr_pending) {
		q->werr_pending = false;
		fail(q, &q->werr);
	} else if (pump(q, &e) < 0) {
		fail(q, &e);
	}
	if (reenter_leave(&q->re))
		destroy(q);
}

static void on_ready_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct qmp *q = w->data;
	reenter_enter(&q->re);
	fail_msg(q, -ETIMEDOUT, "qmp: no %s in time", "greeting and negotiation");
	if (reenter_leave(&q->re))
		destroy(q);
}

struct qmp *qmp_new(struct ev_loop *loop, int fd, const struct qmp_ops *ops, void *ud,
                    struct err *e)
{
	if (fd < 0) {
		err_set(e, -EBADF, "qmp: no socket");
		return NULL;
	}
	if (fd_set_flags(fd, true, e) < 0) {
		close(fd);
		return NULL;
	}
	struct qmp *q = xcalloc(1, sizeof(*q));
	q->loop = loop;
	q->fd = fd;
	q->ops = *ops;
	q->ud = ud;
	q->st = ST_GREETING;
	buf_init(&q->in);
	buf_init(&q->out);
	ev_io_init(&q->rio, on_read, fd, EV_READ);
	q->rio.data = q;
	ev_io_init(&q->wio, on_write, fd, EV_WRITE);
	q->wio.data = q;
	ev_timer_init(&q->ready_timer, on_ready_timeout, QMP_READY_TIMEOUT_MS / 1e3, 0.);
	q->ready_timer.data = q;
	ev_io_start(loop, &q->rio);
	ev_timer_start(loop, &q->ready_timer);
	return q;
}

void qmp_free(struct qmp *q)
{
	if (!q)
		return;
	q->st = ST_CLOSED;
	stop_io(q);
	struct qmp_cmd *c;
	while ((c = list_pop(&q->sent)) || (c = list_pop(&q->queue)))
		cmd_free(c);
	if (reenter_defer_free(&q->re))
		return;
	destroy(q);
}

int qmp_command(struct qmp *q, const char *execute, json_t *args, int fd, int timeout_ms,
                qmp_reply_fn done, void *ud, struct err *e)
{
	if (!execute || !*execute || (args && !json_is_object(args)))
		return err_set(e, -EINVAL, "qmp: bad command");
	if (q->st == ST_CLOSED)
		return err_set(e, -ENOTCONN, "qmp: `%s`: connection closed", execute);
	if (buf_avail(&q->out) > QMP_SENDQ_MAX)
		return err_set(e, -ENOBUFS, "qmp: `%s`: qemu is not reading its commands", execute);
	int dup_fd = -1;
	if (fd >= 0 && (dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return err_sys(e, -errno, "qmp: `%s`: dup fd", execute);
	struct qmp_cmd *c = cmd_new(q, execute, args, timeout_ms);
	c->fd = dup_fd;
	c->carries_fd = dup_fd >= 0;
	c->done = done;
	c->ud = ud;
	list_push(&q->queue, c);
	/* Never call back from here: a failed write is reported from the loop. */
	if (q->st == ST_READY && !q->werr_pending && pump(q, &q->werr) < 0) {
		q->werr_pending = true;
		ev_feed_event(q->loop, &q->wio, EV_WRITE);
	}
	return 0;
}

bool qmp_ready(const struct qmp *q)
{
	return q && q->st == ST_READY;
}

void qmp_version(const struct qmp *q, int *major, int *minor, int *micro)
{
	*major = q->ver[0];
	*minor = q->ver[1];
	*micro = q->ver[2];
}

size_t qmp_outstanding(const struct qmp *q)
{
	size_t n = 0;
	for (struct qmp_cmd *c = q->sent.head; c; c = c->next)
		n += !c->orphan;
	for (struct qmp_cmd *c = q->queue.head; c; c = c->next)
		n++;
	return n;
}
