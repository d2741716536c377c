/* The private containerd harness (tests/lib/containerd) and ferry's containerd wire pieces
 * against Debian's real containerd 1.6 and runc shim:
 *   - `ctr run --rm` of the locally built busybox image with containerd-shim-runc-v2: output
 *     and exit code, and the task events the runc shim publishes (the order ferry's
 *     publisher must reproduce);
 *   - ferry's event publisher forwarding all ten task event types for a container containerd
 *     does not know into its TTRPC_ADDRESS: containerd 1.6 (no CRI) republishes them on its
 *     event bus unchanged, and `ctr events` decodes each (type URL and fields) into the values
 *     published;
 *   - containerd stopped while events are queued and started again: none lost, order kept;
 *     containerd frozen (SIGSTOP) while events are published: all arrive once, in order;
 *   - ferry's Task service protos against the runc shim's real ttrpc server: Connect, State,
 *     Pids, Kill and Wait on a running task.
 * Needs root (containerd, runc); skipped otherwise.  Run from the source tree root. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "host/shim/events.h"
#include "tests/lib/containerd.h"
#include "tests/lib/evpub.h"
#include "tests/lib/evtest.h"
#include "ttrpc/ttrpc.h"

#define IMAGE "ferry.test/busybox:latest"

static struct ctrd ctrd;
static char skip_why[ERR_MSG_MAX];
static FILE *devnull;

static int group_setup(void **state)
{
	(void)state;
	struct err e;
	err_clear(&e);
	devnull = fopen("/dev/null", "w");
	log_set_file(devnull); /* the publisher's expected retry warnings */
	int rc = ctrd_init(&ctrd, &e);
	if (rc == -EPERM) {
		snprintf(skip_why, sizeof(skip_why), "%s", e.msg);
		return 0;
	}
	if (rc < 0 || ctrd_start(&ctrd, &e) < 0 || ctrd_import_busybox(&ctrd, IMAGE, &e) < 0) {
		fprintf(stderr, "containerd setup: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	ctrd_fini(&ctrd);
	log_set_file(NULL);
	if (devnull)
		fclose(devnull);
	return 0;
}

#define NEED_CONTAINERD()                                                                          \
	do {                                                                                       \
		if (skip_why[0]) {                                                                 \
			fprintf(stderr, "skipped: %s\n", skip_why);                                \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* ---- `ctr events`, read on the loop ---- */

struct ev_line {
	char ns[80];
	char topic[40];
	json_t *event; /* the event as ctr prints it (JSON of the Go struct) */
};

struct ev_reader {
	struct ev_loop *loop;
	pid_t pid;
	int fd;
	ev_io w;
	struct buf in;
	struct ev_line lines[256];
	size_t n;
	bool eof;
	const char *only_ns; /* keep only this namespace's /tasks/ events; NULL: all /tasks/ */
};

static void parse_line(struct ev_reader *r, char *line)
{
	/* "2026-12-03 23:01:40.286607208 +0000 UTC NS TOPIC JSON" */
	char *tok[6];
	char *save = NULL, *p = line;
	for (int i = 0; i < 6; i++) {
		tok[i] = strtok_r(p, " ", &save);
		p = NULL;
		if (!tok[i])
			return; /* not an event line (a warning) */
	}
	const char *json = save;
	if (strncmp(tok[5], "/tasks/", 7) != 0 || (r->only_ns && strcmp(tok[4], r->only_ns) != 0))
		return;
	assert_true(r->n < sizeof(r->lines) / sizeof(r->lines[0]));
	struct ev_line *l = &r->lines[r->n++];
	snprintf(l->ns, sizeof(l->ns), "%s", tok[4]);
	snprintf(l->topic, sizeof(l->topic), "%s", tok[5]);
	json_error_t je;
	l->event = json ? json_loads(json, 0, &je) : NULL;
	if (!l->event)
		fail_msg("ctr events printed no JSON event: %s %s %s", tok[4], tok[5],
		         json ? json : "");
}

static void on_ctr_output(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct ev_reader *r = w->data;
	char chunk[4096];
	ssize_t got = read(r->fd, chunk, sizeof(chunk));
	if (got <= 0) {
		if (got < 0 && errno == EINTR)
			return;
		ev_io_stop(loop, w);
		r->eof = true;
		return;
	}
	buf_append(&r->in, chunk, (size_t)got);
	for (;;) {
		const char *h = (const char *)buf_head(&r->in);
		const char *nl = memchr(h, '\n', buf_avail(&r->in));
		if (!nl)
			break;
		char *line = xstrndup(h, (size_t)(nl - h));
		buf_consume(&r->in, (size_t)(nl - h) + 1);
		parse_line(r, line);
		free(line);
	}
}

static void reader_start(struct ev_reader *r, struct ev_loop *loop, const char *only_ns)
{
	memset(r, 0, sizeof(*r));
	r->loop = loop;
	r->only_ns = only_ns;
	buf_init(&r->in);
	struct err e;
	r->pid = ctrd_ctr_spawn(&ctrd, &r->fd, &e, "events", (char *)NULL);
	if (r->pid < 0)
		fail_msg("ctr events: %s", e.msg);
	ev_io_init(&r->w, on_ctr_output, r->fd, EV_READ);
	r->w.data = r;
	ev_io_start(loop, &r->w);
}

static void reader_stop(struct ev_reader *r)
{
	if (r->pid > 0) {
		ev_io_stop(r->loop, &r->w);
		ctrd_reap(r->pid);
		close(r->fd);
		r->pid = 0;
	}
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->lines[i].event);
	r->n = 0;
	buf_fini(&r->in);
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static json_int_t jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* ---- tests ---- */

static void test_run_output_and_exit_code(void **state)
{
	(void)state;
	NEED_CONTAINERD();
	char id[64];
	snprintf(id, sizeof(id), "ferry-run-%d", (int)getpid());
	struct ctrd_out out;
	struct err e;
	if (ctrd_ctr(&ctrd, &out, &e, "run", "--rm", IMAGE, id, "sh", "-c",
	             "echo hello from busybox; echo \"uid=$(id -u) pid=$$\"; exit 7",
	             (char *)NULL) < 0)
		fail_msg("%s", e.msg);
	assert_string_equal(out.text, "hello from busybox\nuid=0 pid=1\n"); /* its own pid ns */
	assert_int_equal(out.status, 7);
	ctrd_out_fini(&out);
	/* --rm: nothing left behind. */
	assert_int_equal(ctrd_ctr(&ctrd, &out, &e, "containers", "ls", "-q", (char *)NULL), 0);
	assert_null(strstr(out.text, id));
	ctrd_out_fini(&out);
}

/* What the runc shim publishes for one `ctr run --rm`: the order ferry must produce. */
static void test_runc_shim_event_order(void **state)
{
	(void)state;
	NEED_CONTAINERD();
	struct evtest ev;
	evtest_init(&ev, 120);
	struct ev_reader r;
	reader_start(&r, ev.loop, "default");
	char id[64];
	snprintf(id, sizeof(id), "ferry-order-%d", (int)getpid());
	/* ctr events subscribes asynchronously: run until one container's events were seen. */
	struct ctrd_out out;
	struct err e;
	for (int attempt = 0; attempt < 20 && r.n == 0; attempt++) {
		char rid[80];
		snprintf(rid, sizeof(rid), "%s-%d", id, attempt);
		assert_int_equal(ctrd_ctr(&ctrd, &out, &e, "run", "--rm", IMAGE, rid, "sh", "-c",
		                          "exit 3", (char *)NULL),
		                 0);
		assert_int_equal(out.status, 3);
		ctrd_out_fini(&out);
		evtest_run_for(&ev, 0.2);
		/* Keep only complete lives: drop a partial one seen while subscribing. */
		if (r.n != 4) {
			for (size_t i = 0; i < r.n; i++)
				json_decref(r.lines[i].event);
			r.n = 0;
		}
	}
	assert_int_equal(r.n, 4);
	const char *topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"};
	for (int i = 0; i < 4; i++)
		assert_string_equal(r.lines[i].topic, topics[i]);
	const char *cid = jstr(r.lines[0].event, "container_id");
	assert_int_equal(strncmp(cid, id, strlen(id)), 0);
	assert_string_equal(jstr(r.lines[2].event, "id"), cid); /* init exit: id = container id */
	assert_int_equal(jint(r.lines[2].event, "exit_status"), 3);
	assert_int_equal(jint(r.lines[3].event, "exit_status"), 3);
	assert_string_equal(jstr(r.lines[3].event, "id"), ""); /* init delete: no id */
	assert_int_equal(jint(r.lines[0].event, "pid"), jint(r.lines[1].event, "pid"));
	reader_stop(&r);
	evtest_fini(&ev);
}

static struct events_publisher *publisher(struct ev_loop *loop, const char *ns, const char *addr)
{
	struct events_opts o = {
	    .namespace_ = ns, .address = addr, .backoff_min_s = 0.01, .backoff_max_s = 0.2};
	struct err e;
	struct events_publisher *p = events_publisher_new(loop, &o, &e);
	if (!p)
		fail_msg("%s", e.msg);
	return p;
}

static void publish(struct events_publisher *p, const ProtobufCMessage *m)
{
	struct err e;
	if (events_publish(p, m, NULL, &e) < 0)
		fail_msg("%s", e.msg);
}

static size_t pending(const struct events_publisher *p)
{
	struct events_stats st;
	events_stats(p, &st);
	return st.pending;
}

/* Wait until `r` got a first event of `ns`: publish TaskCreate of probe-N containers through
 * `p` every 100 ms until one shows (ctr events subscribes asynchronously). */
static void await_subscribed(struct evtest *ev, struct ev_reader *r, struct events_publisher *p)
{
	for (int i = 0; r->n == 0; i++) {
		assert_true(i < 300);
		char id[32];
		snprintf(id, sizeof(id), "probe-%d", i);
		Containerd__Events__TaskCreate m = CONTAINERD__EVENTS__TASK_CREATE__INIT;
		m.container_id = id;
		publish(p, &m.base);
		evtest_run_for(ev, 0.1);
	}
	EVTEST_SPIN(ev, pending(p) == 0);
	evtest_run_for(ev, 0.1);
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->lines[i].event);
	r->n = 0;
}

/* Every task event type, forwarded for a container containerd never heard of, comes out of
 * `ctr events` with the values published. */
static void test_forward_every_event_type(void **state)
{
	(void)state;
	NEED_CONTAINERD();
	struct evtest ev;
	evtest_init(&ev, 120);
	struct ev_reader r;
	reader_start(&r, ev.loop, "ferry-fwd");
	struct events_publisher *p = publisher(ev.loop, "ferry-fwd", ctrd.ttrpc);
	await_subscribed(&ev, &r, p);

	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	at.seconds = 1700000000;
	Containerd__Types__Mount mnt = CONTAINERD__TYPES__MOUNT__INIT;
	char *opts[] = {"ro", "lowerdir=/l"};
	mnt.type = "overlay";
	mnt.source = "overlay";
	mnt.n_options = 2;
	mnt.options = opts;
	Containerd__Types__Mount *mounts[] = {&mnt};
	Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;
	io.stdout = "/fifo/out";
	io.terminal = 1;
	Containerd__Events__TaskCreate cr = CONTAINERD__EVENTS__TASK_CREATE__INIT;
	cr.container_id = "ghost";
	cr.bundle = "/run/ferry/ghost";
	cr.n_rootfs = 1;
	cr.rootfs = mounts;
	cr.io = &io;
	cr.pid = 4242;
	publish(p, &cr.base);
	Containerd__Events__TaskStart st = CONTAINERD__EVENTS__TASK_START__INIT;
	st.container_id = "ghost";
	st.pid = 4242;
	publish(p, &st.base);
	Containerd__Events__TaskExecAdded ea = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
	ea.container_id = "ghost";
	ea.exec_id = "sh1";
	publish(p, &ea.base);
	Containerd__Events__TaskExecStarted es = CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
	es.container_id = "ghost";
	es.exec_id = "sh1";
	es.pid = 4343;
	publish(p, &es.base);
	Containerd__Events__TaskPaused pa = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
	pa.container_id = "ghost";
	publish(p, &pa.base);
	Containerd__Events__TaskResumed re = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
	re.container_id = "ghost";
	publish(p, &re.base);
	Containerd__Events__TaskCheckpointed ck = CONTAINERD__EVENTS__TASK_CHECKPOINTED__INIT;
	ck.container_id = "ghost";
	ck.checkpoint = "sha256:feed";
	publish(p, &ck.base);
	Containerd__Events__TaskOOM oom = CONTAINERD__EVENTS__TASK_OOM__INIT;
	oom.container_id = "ghost";
	publish(p, &oom.base);
	Containerd__Events__TaskExit ex = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	ex.container_id = "ghost";
	ex.id = "sh1";
	ex.pid = 4343;
	ex.exit_status = 5;
	ex.exited_at = &at;
	publish(p, &ex.base);
	ex.id = "ghost";
	ex.pid = 4242;
	ex.exit_status = 42;
	publish(p, &ex.base);
	Containerd__Events__TaskDelete de = CONTAINERD__EVENTS__TASK_DELETE__INIT;
	de.container_id = "ghost";
	de.pid = 4242;
	de.exit_status = 42;
	de.exited_at = &at;
	publish(p, &de.base);

	EVTEST_SPIN(&ev, r.n == 11);
	static const char *const topics[] = {
	    "/tasks/create", "/tasks/start",   "/tasks/exec-added",   "/tasks/exec-started",
	    "/tasks/paused", "/tasks/resumed", "/tasks/checkpointed", "/tasks/oom",
	    "/tasks/exit",   "/tasks/exit",    "/tasks/delete"};
	for (int i = 0; i < 11; i++) {
		assert_string_equal(r.lines[i].topic, topics[i]);
		assert_string_equal(r.lines[i].ns, "ferry-fwd");
		assert_string_equal(jstr(r.lines[i].event, "container_id"), "ghost");
	}
	const json_t *c = r.lines[0].event;
	assert_string_equal(jstr(c, "bundle"), "/run/ferry/ghost");
	assert_int_equal(jint(c, "pid"), 4242);
	assert_string_equal(jstr(json_object_get(c, "io"), "stdout"), "/fifo/out");
	assert_true(json_is_true(json_object_get(json_object_get(c, "io"), "terminal")));
	const json_t *m0 = json_array_get(json_object_get(c, "rootfs"), 0);
	assert_string_equal(jstr(m0, "type"), "overlay");
	assert_string_equal(json_string_value(json_array_get(json_object_get(m0, "options"), 1)),
	                    "lowerdir=/l");
	assert_int_equal(jint(r.lines[1].event, "pid"), 4242);
	assert_string_equal(jstr(r.lines[2].event, "exec_id"), "sh1");
	assert_int_equal(jint(r.lines[3].event, "pid"), 4343);
	assert_string_equal(jstr(r.lines[6].event, "checkpoint"), "sha256:feed");
	assert_string_equal(jstr(r.lines[8].event, "id"), "sh1");
	assert_int_equal(jint(r.lines[8].event, "exit_status"), 5);
	assert_string_equal(jstr(r.lines[8].event, "exited_at"), "2023-11-14T22:13:20Z");
	assert_int_equal(jint(r.lines[9].event, "exit_status"), 42);
	assert_int_equal(jint(r.lines[10].event, "exit_status"), 42);
	struct events_stats s;
	events_stats(p, &s);
	assert_int_equal(s.order_violations, 0);
	assert_int_equal(s.rejected, 0);
	assert_int_equal(s.pending, 0);
	events_publisher_free(p);
	reader_stop(&r);
	evtest_fini(&ev);
}

static void publish_lives(struct events_publisher *p, const char *prefix, int n)
{
	struct err e;
	if (evpub_lives(p, prefix, n, &e) < 0)
		fail_msg("%s", e.msg);
}

/* r->lines[from..] are exactly the lives prefix0..prefix(n-1), in order. */
static void assert_lives(const struct ev_reader *r, size_t from, const char *prefix, int n)
{
	static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit",
	                                     "/tasks/delete"};
	assert_int_equal(r->n, from + 4 * (size_t)n);
	for (int i = 0; i < n; i++) {
		char cid[32];
		snprintf(cid, sizeof(cid), "%s%d", prefix, i);
		for (int k = 0; k < 4; k++) {
			const struct ev_line *l = &r->lines[from + 4 * (size_t)i + (size_t)k];
			if (strcmp(l->topic, topics[k]) != 0 ||
			    strcmp(jstr(l->event, "container_id"), cid) != 0)
				fail_msg("event %zu: %s %s, want %s %s",
				         from + 4 * (size_t)i + (size_t)k, l->topic,
				         jstr(l->event, "container_id"), topics[k], cid);
		}
		assert_int_equal(jint(r->lines[from + 4 * (size_t)i + 2].event, "exit_status"), i);
	}
}

/* containerd stops while the shim has events to send, and comes back: the queued events
 * reach the new containerd, none lost, in order.  The publisher reaches containerd through a
 * symlink that the test removes while containerd is down and puts back only once the second
 * `ctr events` is subscribed, so that what the new containerd receives can be observed. */
static void test_restart_with_queued_events(void **state)
{
	(void)state;
	NEED_CONTAINERD();
	struct evtest ev;
	evtest_init(&ev, 240);
	_cleanup_free_ char *link = xasprintf("%s/events-link.sock", ctrd.dir);
	unlink(link);
	assert_int_equal(symlink(ctrd.ttrpc, link), 0);
	struct ev_reader r1, r2;
	reader_start(&r1, ev.loop, "ferry-restart");
	struct events_publisher *p = publisher(ev.loop, "ferry-restart", link);
	await_subscribed(&ev, &r1, p);
	publish_lives(p, "before", 3);
	EVTEST_SPIN(&ev, r1.n == 12);
	assert_lives(&r1, 0, "before", 3);

	struct err e;
	assert_int_equal(unlink(link), 0);
	if (ctrd_stop(&ctrd, &e) < 0)
		fail_msg("%s", e.msg);
	EVTEST_SPIN(&ev, r1.eof);
	publish_lives(p, "queued", 5);
	evtest_run_for(&ev, 0.5);
	struct events_stats s;
	events_stats(p, &s);
	assert_int_equal(s.pending, 20);
	assert_true(s.connect_failures >= 1);
	assert_false(s.connected);

	if (ctrd_start(&ctrd, &e) < 0)
		fail_msg("%s", e.msg);
	reader_start(&r2, ev.loop, "ferry-restart");
	struct events_publisher *probe = publisher(ev.loop, "ferry-restart", ctrd.ttrpc);
	await_subscribed(&ev, &r2, probe);
	events_publisher_free(probe);
	assert_int_equal(pending(p), 20); /* still held back by the missing link */
	assert_int_equal(symlink(ctrd.ttrpc, link), 0);
	EVTEST_SPIN(&ev, pending(p) == 0);
	evtest_run_for(&ev, 0.2);
	assert_lives(&r2, 0, "queued", 5);
	events_stats(p, &s);
	assert_int_equal(s.order_violations, 0);
	assert_int_equal(s.rejected, 0);
	assert_int_equal(s.connects, 2);
	events_publisher_free(p);
	reader_stop(&r1);
	reader_stop(&r2);
	unlink(link);
	evtest_fini(&ev);
}

/* containerd frozen (SIGSTOP) for a second while events are published: the Forward in
 * flight waits, nothing is resent or lost, and everything arrives in order once it thaws. */
static void test_frozen_containerd(void **state)
{
	(void)state;
	NEED_CONTAINERD();
	struct evtest ev;
	evtest_init(&ev, 240);
	struct ev_reader r;
	reader_start(&r, ev.loop, "ferry-slow");
	struct events_publisher *p = publisher(ev.loop, "ferry-slow", ctrd.ttrpc);
	await_subscribed(&ev, &r, p);
	assert_int_equal(kill(ctrd.pid, SIGSTOP), 0);
	publish_lives(p, "slow", 10);
	evtest_run_for(&ev, 1.0);
	struct events_stats s;
	events_stats(p, &s);
	assert_int_equal(kill(ctrd.pid, SIGCONT), 0);
	assert_true(s.pending >= 39); /* at most the first went through before the freeze */
	EVTEST_SPIN(&ev, pending(p) == 0);
	evtest_run_for(&ev, 0.2);
	assert_lives(&r, 0, "slow", 10);
	events_stats(p, &s);
	assert_int_equal(s.resent, 0);
	events_publisher_free(p);
	reader_stop(&r);
	evtest_fini(&ev);
}

/* ---- the Task service protos against the runc shim's own ttrpc server ---- */

struct reply {
	int n;
	int code;
	char msg[256];
	ProtobufCMessage *msgp; /* a copy of the reply (packed and unpacked again) */
};

static void on_reply(struct ttrpc_client *cl, const struct ttrpc_status *st,
                     const ProtobufCMessage *reply, void *ud)
{
	(void)cl;
	struct reply *r = ud;
	r->n++;
	r->code = st->code;
	snprintf(r->msg, sizeof(r->msg), "%s", st->message);
	if (reply) {
		size_t len = protobuf_c_message_get_packed_size(reply);
		uint8_t *b = xmalloc(len + 1);
		protobuf_c_message_pack(reply, b);
		r->msgp = protobuf_c_message_unpack(reply->descriptor, NULL, len, b);
		free(b);
	}
}

static ProtobufCMessage *task_call(struct evtest *ev, struct ttrpc_client *cl, const char *method,
                                   const ProtobufCMessage *req,
                                   const ProtobufCMessageDescriptor *out)
{
	struct reply r = {0};
	struct err e;
	if (ttrpc_client_call(cl, "containerd.task.v2.Task", method, req, out, NULL, on_reply, &r,
	                      NULL, &e) < 0)
		fail_msg("%s: %s", method, e.msg);
	EVTEST_SPIN(ev, r.n == 1);
	if (r.code != TTRPC_OK)
		fail_msg("%s: %s: %s", method, ttrpc_code_name(r.code), r.msg);
	assert_non_null(r.msgp);
	return r.msgp;
}

static void test_runc_shim_task_service(void **state)
{
	(void)state;
	NEED_CONTAINERD();
	char id[64];
	snprintf(id, sizeof(id), "ferry-task-%d", (int)getpid());
	struct ctrd_out out;
	struct err e;
	assert_int_equal(
	    ctrd_ctr(&ctrd, &out, &e, "run", "-d", IMAGE, id, "sleep", "1000", (char *)NULL), 0);
	assert_int_equal(out.status, 0);
	ctrd_out_fini(&out);
	/* `ctr task ls`: "TASK PID STATUS" */
	assert_int_equal(ctrd_ctr(&ctrd, &out, &e, "tasks", "ls", (char *)NULL), 0);
	char *line = strstr(out.text, id);
	assert_non_null(line);
	unsigned ctr_pid = 0;
	char status[32] = "";
	assert_int_equal(sscanf(line + strlen(id), "%u %31s", &ctr_pid, status), 2);
	assert_string_equal(status, "RUNNING");
	ctrd_out_fini(&out);

	/* The shim's address, as containerd keeps it in the bundle. */
	_cleanup_free_ char *bundle =
	    xasprintf("%s/io.containerd.runtime.v2.task/default/%s", ctrd.state, id);
	_cleanup_free_ char *af = xasprintf("%s/address", bundle);
	FILE *f = fopen(af, "re");
	assert_non_null(f);
	char addr[256] = "";
	assert_non_null(fgets(addr, sizeof(addr), f));
	fclose(f);
	addr[strcspn(addr, "\n")] = '\0';
	const char *path = strncmp(addr, "unix://", 7) == 0 ? addr + 7 : addr;

	struct evtest ev;
	evtest_init(&ev, 120);
	int fd = ttrpc_dial_unix(path, &e);
	if (fd < 0)
		fail_msg("%s", e.msg);
	struct ttrpc_client *cl = ttrpc_client_new(ev.loop, fd, NULL, NULL, &e);
	assert_non_null(cl);

	Containerd__Task__V2__ConnectRequest cr = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
	cr.id = id;
	Containerd__Task__V2__ConnectResponse *co =
	    (Containerd__Task__V2__ConnectResponse *)task_call(
	        &ev, cl, "Connect", &cr.base, &containerd__task__v2__connect_response__descriptor);
	assert_int_equal(co->task_pid, ctr_pid);
	assert_true(co->shim_pid > 1 && co->shim_pid != ctr_pid);
	protobuf_c_message_free_unpacked(&co->base, NULL);

	Containerd__Task__V2__StateRequest sr = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
	sr.id = id;
	Containerd__Task__V2__StateResponse *st = (Containerd__Task__V2__StateResponse *)task_call(
	    &ev, cl, "State", &sr.base, &containerd__task__v2__state_response__descriptor);
	assert_string_equal(st->id, id);
	assert_string_equal(st->bundle, bundle);
	assert_int_equal(st->pid, ctr_pid);
	assert_int_equal(st->status, CONTAINERD__V1__TYPES__STATUS__RUNNING);
	assert_false(st->terminal);
	assert_true(strlen(st->stdout) > 0); /* the FIFO ctr made */
	protobuf_c_message_free_unpacked(&st->base, NULL);

	Containerd__Task__V2__PidsRequest pr = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
	pr.id = id;
	Containerd__Task__V2__PidsResponse *pids = (Containerd__Task__V2__PidsResponse *)task_call(
	    &ev, cl, "Pids", &pr.base, &containerd__task__v2__pids_response__descriptor);
	assert_int_equal(pids->n_processes, 1);
	assert_int_equal(pids->processes[0]->pid, ctr_pid);
	protobuf_c_message_free_unpacked(&pids->base, NULL);

	Containerd__Task__V2__KillRequest kr = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
	kr.id = id;
	kr.signal = 9;
	ProtobufCMessage *empty =
	    task_call(&ev, cl, "Kill", &kr.base, &google__protobuf__empty__descriptor);
	protobuf_c_message_free_unpacked(empty, NULL);
	Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
	wr.id = id;
	Containerd__Task__V2__WaitResponse *wt = (Containerd__Task__V2__WaitResponse *)task_call(
	    &ev, cl, "Wait", &wr.base, &containerd__task__v2__wait_response__descriptor);
	assert_int_equal(wt->exit_status, 137);
	assert_non_null(wt->exited_at);
	assert_true(wt->exited_at->seconds > 1700000000);
	protobuf_c_message_free_unpacked(&wt->base, NULL);
	st = (Containerd__Task__V2__StateResponse *)task_call(
	    &ev, cl, "State", &sr.base, &containerd__task__v2__state_response__descriptor);
	assert_int_equal(st->status, CONTAINERD__V1__TYPES__STATUS__STOPPED);
	assert_int_equal(st->exit_status, 137);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	ttrpc_client_free(cl);
	evtest_fini(&ev);

	/* containerd saw the exit the shim published. */
	assert_int_equal(ctrd_ctr(&ctrd, &out, &e, "tasks", "delete", id, (char *)NULL), 0);
	assert_int_equal(out.status, 0);
	ctrd_out_fini(&out);
	assert_int_equal(ctrd_ctr(&ctrd, &out, &e, "containers", "delete", id, (char *)NULL), 0);
	assert_int_equal(out.status, 0);
	ctrd_out_fini(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_run_output_and_exit_code),
	    cmocka_unit_test(test_runc_shim_event_order),
	    cmocka_unit_test(test_forward_every_event_type),
	    cmocka_unit_test(test_runc_shim_task_service),
	    cmocka_unit_test(test_frozen_containerd),
	    cmocka_unit_test(test_restart_with_queued_events),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
