/* The hostile cases of issue 7 against a real ferry-gcs, played as a careless or hostile host
 * with raw frames (tests/lib/agent.h), shared by tests/integration/test_gcs_limits.c (which
 * asserts bounds on what they return) and tests/bench/hostile.c (which prints it).  Each case
 * checks with cmocka assertions that the agent serves it correctly (every answer, every byte
 * exactly once, the session intact), so it runs inside a cmocka test, and returns the growth
 * of the agent's peak resident memory (VmHWM) during the case, in KiB (-1: skipped). */
#include "tests/lib/hostile.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bridge/proto.h"
#include "bridge/resume.h"
#include "common/buf.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/vsock.h"
#include "guest/gcs.h"
#include "tests/lib/agent.h"

#define MIB (1024l * 1024l)

long hostile_hwm_kib(const struct agent *a)
{
	long v = agent_status_kib(a->pid, "VmHWM:");
	assert_true(v > 0);
	return v;
}

/* ---- non-blocking traffic: send a queue of frames while counting what comes back ---- */

struct traffic {
	int fd;
	struct buf out;
	struct buf in;
	unsigned responses;        /* frames received */
	unsigned failed;           /* ... with Result != 0 */
	unsigned failed_in_flight; /* ... whose message says too many requests are in flight */
	uint64_t watch_id;         /* a response id to look for */
	bool watch_seen;
	char watch_text[256]; /* DumpStacks text of the watched response (prefix) */
};

static void traffic_init(struct traffic *t, int fd)
{
	memset(t, 0, sizeof(*t));
	t->fd = fd;
	t->watch_id = UINT64_MAX;
	buf_init(&t->out);
	buf_init(&t->in);
}

static void traffic_fini(struct traffic *t)
{
	buf_fini(&t->out);
	buf_fini(&t->in);
}

static void queue_frame(struct traffic *t, uint32_t rpc, uint64_t id, const char *json)
{
	uint8_t h[16];
	struct bridge_hdr hd = {
	    .type = bridge_request_type(rpc), .size = (uint32_t)(16 + strlen(json)), .id = id};
	bridge_hdr_encode(&hd, h);
	buf_append(&t->out, h, 16);
	buf_append(&t->out, json, strlen(json));
}

static void take_frames(struct traffic *t)
{
	while (buf_avail(&t->in) >= 16) {
		struct bridge_hdr h;
		bridge_hdr_decode(buf_head(&t->in), &h);
		assert_true(h.size >= 16 && h.size <= BRIDGE_MAX_MSG);
		if (buf_avail(&t->in) < h.size)
			return;
		json_t *j = json_loadb((const char *)buf_head(&t->in) + 16, h.size - 16, 0, NULL);
		assert_non_null(j);
		t->responses++;
		if (agent_result(j) != 0) {
			t->failed++;
			const char *m = json_string_value(json_object_get(j, "ErrorMessage"));
			if (m && strstr(m, "in flight"))
				t->failed_in_flight++;
		}
		if (h.id == t->watch_id) {
			t->watch_seen = true;
			const char *g = json_string_value(json_object_get(j, "GuestStacks"));
			snprintf(t->watch_text, sizeof(t->watch_text), "%s", g ? g : "");
		}
		json_decref(j);
		buf_consume(&t->in, h.size);
	}
}

/* Move bytes both ways (reading only when `read`) until the queue is sent and `until` holds,
 * or nothing moved for idle_ms.  Returns whether `until` (or, with NULL, an empty queue) was
 * reached. */
static bool traffic_run(struct traffic *t, bool read, const bool *until, int idle_ms)
{
	for (;;) {
		bool done = buf_avail(&t->out) == 0 && (!until || *until);
		if (done)
			return true;
		struct pollfd p = {
		    .fd = t->fd,
		    .events = (short)((read ? POLLIN : 0) | (buf_avail(&t->out) ? POLLOUT : 0))};
		if (poll(&p, 1, idle_ms) <= 0)
			return false;
		if (p.revents & POLLOUT) {
			ssize_t n = send(t->fd, buf_head(&t->out), buf_avail(&t->out),
			                 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				buf_consume(&t->out, (size_t)n);
		}
		if (read && (p.revents & (POLLIN | POLLHUP))) {
			uint8_t *w = buf_reserve(&t->in, 256 * 1024);
			ssize_t n = recv(t->fd, w, 256 * 1024, MSG_DONTWAIT);
			if (n > 0) {
				buf_commit(&t->in, (size_t)n);
				take_frames(t);
			} else if (n == 0) {
				return false;
			}
		}
	}
}

/* ---- one request of many small values ---- */

/* A whole Create frame of exactly `total` bytes (header included) whose body is
 * {"ContainerId":"big","X":[{},{},...]}. */
static char *many_values(size_t total, uint64_t id)
{
	char *f = malloc(total);
	assert_non_null(f);
	struct bridge_hdr hd = {
	    .type = bridge_request_type(RPC_CREATE), .size = (uint32_t)total, .id = id};
	bridge_hdr_encode(&hd, (uint8_t *)f);
	char *p = f + 16;
	size_t n = total - 16;
	static const char head[] = "{\"ContainerId\":\"big\",\"X\":[";
	memcpy(p, head, sizeof(head) - 1);
	size_t w = sizeof(head) - 1;
	while (w + 5 < n) {
		memcpy(p + w, "{},", 3);
		w += 3;
	}
	p[w - 1] = ']'; /* replaces the last comma */
	p[w++] = '}';
	while (w < n)
		p[w++] = ' '; /* trailing whitespace is allowed */
	return f;
}

/* 16 MiB: over the frame cap (the largest request hcsshim sends, with room), so the agent
 * ends the connection at the header, dials again and the session carries on; before, it
 * parsed the whole body into a jansson tree (993 MB peak). */
long hostile_over_frame_cap(struct agent *f)
{
	agent_negotiate(f->fd);
	long base = hostile_hwm_kib(f);
	size_t len = 16u << 20;
	char *body = many_values(len, 1);
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(f->fd, body + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the agent closed the connection */
		off += (size_t)n;
	}
	free(body);
	close(f->fd);
	f->fd = agent_accept(f);
	assert_true(f->fd >= 0);
	agent_negotiate(f->fd);
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 2, AGENT_BASE(""), 0);
	long grew = hostile_hwm_kib(f) - base;
	return grew;
}

/* 8 MiB of `{},` (2.8 million JSON objects) fits the frame cap: the value count rejects it
 * before a tree is built (Invalid JSON), the connection stays. */
long hostile_many_values(struct agent *f)
{
	agent_negotiate(f->fd);
	long base = hostile_hwm_kib(f);
	size_t len = 8u << 20;
	char *frame = many_values(len, 7);
	struct traffic t;
	traffic_init(&t, f->fd);
	buf_append(&t.out, frame, len);
	free(frame);
	t.watch_id = 7;
	assert_true(traffic_run(&t, true, &t.watch_seen, AGENT_IO_TIMEOUT_MS));
	assert_int_equal(t.failed, 1);
	traffic_fini(&t);
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 8, AGENT_BASE(""), 0);
	long grew = hostile_hwm_kib(f) - base;
	return grew;
}

/* ---- a host that never reads ---- */

/* Keep draining until `want` frames came back (or nothing for AGENT_IO_TIMEOUT_MS). */
static void traffic_drain(struct traffic *t, unsigned want)
{
	while (t->responses < want) {
		struct pollfd p = {.fd = t->fd, .events = POLLIN};
		if (poll(&p, 1, AGENT_IO_TIMEOUT_MS) <= 0)
			return;
		uint8_t *w = buf_reserve(&t->in, 256 * 1024);
		ssize_t n = recv(t->fd, w, 256 * 1024, 0);
		if (n <= 0)
			return;
		buf_commit(&t->in, (size_t)n);
		take_frames(t);
	}
}

#define PORT_IN  (GCS_FIRST_STDIO_PORT + 20)
#define PORT_OUT (GCS_FIRST_STDIO_PORT + 21)

/* Start `read x` as a UVM process with stdin on PORT_IN (plain mode); *in gets the host's end
 * of its stdin (a newline ends it).  Returns the pid. */
static long long start_reader(struct agent *f, int *lin, int *in)
{
	struct err e;
	*lin = vsock_listen(&f->addr, PORT_IN, &e);
	assert_true(*lin >= 0);
	agent_exec_uvm(f->fd, 1, "read x", PORT_IN, 0);
	*in = agent_accept_on(*lin);
	assert_true(*in >= 0);
	return agent_exec_result(f->fd, 1);
}

/* 10,000 DumpStacks from a host that does not read them: with 1,000 waits in flight each answer
 * is near its 32 KiB cap (the dump lists the requests in flight).  The agent stops reading
 * requests while its output queue is over its bound (before: 301 MiB resident).  Once the host
 * reads, every answer arrives. */
long hostile_never_reads(struct agent *f)
{
	agent_negotiate(f->fd);
	int lin, in;
	long long pid = start_reader(f, &lin, &in);
	struct traffic t;
	traffic_init(&t, f->fd);
	enum { WAITS = 1000, N = 10000 };
	char wait[200];
	agent_wait_body(wait, sizeof(wait), pid);
	for (unsigned i = 0; i < WAITS; i++)
		queue_frame(&t, RPC_WAIT_FOR_PROCESS, 20000 + i, wait);
	assert_true(traffic_run(&t, true, NULL, AGENT_IO_TIMEOUT_MS));
	long base = hostile_hwm_kib(f);
	for (unsigned i = 0; i < N; i++)
		queue_frame(&t, RPC_DUMP_STACKS, 100 + i, AGENT_BASE(""));
	/* send without reading until the agent stops taking requests */
	traffic_run(&t, false, NULL, 1000);
	long grew = hostile_hwm_kib(f) - base;
	assert_true(buf_avail(&t.out) > 0); /* it did stop reading */
	/* now read: everything is answered */
	t.watch_id = 100 + N - 1;
	assert_true(traffic_run(&t, true, &t.watch_seen, AGENT_IO_TIMEOUT_MS));
	assert_int_equal(t.responses, N);
	struct err e;
	assert_int_equal(fd_write_all(in, "\n", 1, &e), 0);
	traffic_drain(&t, N + WAITS);
	assert_int_equal(t.responses, N + WAITS);
	assert_int_equal(t.failed, 0);
	traffic_fini(&t);
	close(in);
	vsock_unlisten(&f->addr, PORT_IN, lin);
	return grew;
}

/* ---- 100,000 waits ---- */

/* 100,000 infinite waits on one process with resume negotiated (before: 35 s to register,
 * every stream stalled meanwhile).  Registration is O(1) and capped: the waits over the cap
 * are answered at once ("too many requests in flight"), a DumpStacks sent after them is
 * answered promptly, and when the process exits every registered wait gets its code. */
long hostile_many_waits(struct agent *f)
{
	struct err e;
	agent_negotiate_resume(f->fd);
	int lin = vsock_listen(&f->addr, PORT_IN, &e);
	assert_true(lin >= 0);
	agent_exec_uvm(f->fd, 1, "read x", PORT_IN, 0);
	int in = agent_accept_on(lin);
	assert_true(in >= 0);
	long long pid = agent_exec_result(f->fd, 1);
	agent_expect_hello(in, RESUME_FLAG_INPUT | RESUME_FLAG_FIRST, PORT_IN, 0);
	agent_send_ready(in, 0);
	long base = hostile_hwm_kib(f);

	struct traffic t;
	traffic_init(&t, f->fd);
	enum { N = 100000 };
	char wait[200];
	agent_wait_body(wait, sizeof(wait), pid);
	for (unsigned i = 0; i < N; i++)
		queue_frame(&t, RPC_WAIT_FOR_PROCESS, 10 + i, wait);
	queue_frame(&t, RPC_DUMP_STACKS, 5, AGENT_BASE(""));
	t.watch_id = 5;
	long long t0 = mono_ns();
	assert_true(traffic_run(&t, true, &t.watch_seen, AGENT_IO_TIMEOUT_MS));
	double secs = (double)(mono_ns() - t0) / 1e9;
	(void)secs;
	/* the waits over the cap are refused, and so is the DumpStacks behind them (answered at
	 * once all the same): at most GCS_MAX_REQUESTS are kept */
	assert_true(t.failed_in_flight >= N - GCS_MAX_REQUESTS + 1);
	assert_true(t.failed_in_flight < N);
	/* the process exits: every registered wait is answered with its code */
	struct err we;
	assert_int_equal(fd_write_all(in, "\n", 1, &we), 0);
	unsigned want = N + 1;
	traffic_drain(&t, want);
	assert_int_equal(t.responses, want);
	assert_int_equal(t.failed, t.failed_in_flight);
	long grew = hostile_hwm_kib(f) - base;
	traffic_fini(&t);
	close(in);
	vsock_unlisten(&f->addr, PORT_IN, lin);
	return grew;
}

/* ---- many unacknowledged streams ---- */

#define NSTREAMS 40
#define SEQ_N    300000 /* `seq 1 300000`: 2,088,895 bytes */

struct seqout {
	int fd;
	char *got;
	size_t n, cap;
	bool eof;
};

/* Read what the streams have now (never acknowledging) until all are quiet for idle_ms, or
 * every one is at EOF.  Returns the bytes read. */
static size_t read_streams(struct seqout *s, int n, int idle_ms)
{
	size_t total = 0;
	for (;;) {
		struct pollfd p[NSTREAMS];
		int k = 0;
		for (int i = 0; i < n; i++) {
			p[i].fd = s[i].eof ? -1 : s[i].fd;
			p[i].events = POLLIN;
			k += !s[i].eof;
		}
		if (k == 0 || poll(p, (nfds_t)n, idle_ms) <= 0)
			return total;
		for (int i = 0; i < n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			if (s[i].cap - s[i].n < 65536) {
				s[i].cap = s[i].cap * 2 + 65536;
				s[i].got = realloc(s[i].got, s[i].cap);
				assert_non_null(s[i].got);
			}
			ssize_t r = read(s[i].fd, s[i].got + s[i].n, s[i].cap - s[i].n);
			if (r <= 0)
				s[i].eof = true;
			else {
				s[i].n += (size_t)r;
				total += (size_t)r;
			}
		}
	}
}

/* 40 processes print 2 MB each; the host reads but never acknowledges (before: 42.9 MB
 * retained).  The retained bytes stay within the hub's budget (the processes are
 * back-pressured), and once the host acknowledges, every byte arrives exactly once. */
long hostile_unacked_streams(struct agent *f)
{
	struct err e;
	agent_negotiate_resume(f->fd);
	long base = hostile_hwm_kib(f);
	struct seqout s[NSTREAMS];
	int lfd[NSTREAMS];
	long long pid[NSTREAMS];
	memset(s, 0, sizeof(s));
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "seq 1 %d", SEQ_N);
	for (int i = 0; i < NSTREAMS; i++) {
		uint32_t port = GCS_FIRST_STDIO_PORT + 100 + (uint32_t)i;
		lfd[i] = vsock_listen(&f->addr, port, &e);
		assert_true(lfd[i] >= 0);
		agent_exec_uvm(f->fd, 1 + (uint64_t)i, cmd, 0, port);
		s[i].fd = agent_accept_on(lfd[i]);
		assert_true(s[i].fd >= 0);
		pid[i] = agent_exec_result(f->fd, 1 + (uint64_t)i);
		agent_expect_hello(s[i].fd, RESUME_FLAG_FIRST, port, 0);
		agent_send_ready(s[i].fd, 0);
	}
	size_t first = read_streams(s, NSTREAMS, 500);
	long grew = hostile_hwm_kib(f) - base;
	assert_true(first > 0);
	/* acknowledge as the host delivers, to the end */
	for (;;) {
		bool all = true;
		for (int i = 0; i < NSTREAMS; i++) {
			if (!s[i].eof)
				agent_send_ack(s[i].fd, s[i].n);
			all = all && s[i].eof;
		}
		if (all)
			break;
		read_streams(s, NSTREAMS, 20);
	}
	/* the expected bytes */
	size_t want_n = 0;
	char *want = malloc(SEQ_N * 8);
	assert_non_null(want);
	for (int k = 1; k <= SEQ_N; k++)
		want_n += (size_t)sprintf(want + want_n, "%d\n", k);
	for (int i = 0; i < NSTREAMS; i++) {
		agent_send_ack(s[i].fd, s[i].n); /* the final ack */
		close(s[i].fd);
		assert_int_equal(s[i].n, want_n);
		assert_memory_equal(s[i].got, want, want_n);
		free(s[i].got);
	}
	free(want);
	for (int i = 0; i < NSTREAMS; i++) {
		assert_int_equal(agent_wait_code(f->fd, 1000 + (uint64_t)i, pid[i]), 0);
		vsock_unlisten(&f->addr, GCS_FIRST_STDIO_PORT + 100 + (uint32_t)i, lfd[i]);
	}
	return grew;
}

/* ---- 2,000 processes ---- */

/* Each UVM process with stdin and stdout costs the agent four descriptors (two connections,
 * two pipe ends): at the default limit of 1024 the 250th failed ("Too many open files").  The
 * agent raises its limit to the hard one at start-up. */
long hostile_many_processes(struct agent *f)
{
	struct err e;
	enum { N = 2000 };
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < 5 * N + 64)
		return HOSTILE_UNAVAILABLE; /* not enough descriptors for the agent or the test */
	agent_negotiate(f->fd);
	long base = hostile_hwm_kib(f);
	int *fds = calloc(4 * N, sizeof(int));
	assert_non_null(fds);
	for (int i = 0; i < N; i++) {
		uint32_t pin = GCS_FIRST_STDIO_PORT + 1000 + 2 * (uint32_t)i, pout = pin + 1;
		int *l = &fds[4 * i];
		l[0] = vsock_listen(&f->addr, pin, &e);
		l[1] = vsock_listen(&f->addr, pout, &e);
		assert_true(l[0] >= 0 && l[1] >= 0);
		agent_exec_uvm(f->fd, 1 + (uint64_t)i, "cat", pin, pout);
		l[2] = agent_accept_on(l[0]);
		l[3] = agent_accept_on(l[1]);
		assert_true(l[2] >= 0 && l[3] >= 0);
		agent_exec_result(f->fd, 1 + (uint64_t)i);
	}
	/* every stdin closes: the processes end */
	for (int i = 0; i < N; i++)
		close(fds[4 * i + 2]);
	for (int i = 0; i < N; i++) {
		char c;
		struct pollfd p = {.fd = fds[4 * i + 3], .events = POLLIN};
		assert_true(poll(&p, 1, AGENT_IO_TIMEOUT_MS) > 0);
		assert_true(read(fds[4 * i + 3], &c, 1) <= 0);
		close(fds[4 * i + 3]);
		uint32_t pin = GCS_FIRST_STDIO_PORT + 1000 + 2 * (uint32_t)i;
		vsock_unlisten(&f->addr, pin, fds[4 * i]);
		vsock_unlisten(&f->addr, pin + 1, fds[4 * i + 1]);
	}
	free(fds);
	assert_int_equal(agent_log_count(f, "Too many open files"), 0);
	return hostile_hwm_kib(f) - base; /* started, ran and ended */
}

/* ---- junk ---- */

/* 1 MiB of junk on a stdout connection in resume mode is read as ACKs the guest cannot accept:
 * a few warnings (rate-limited), the connection is closed and re-dialled, the stream goes on
 * (before: 131,072 warning lines, 14.1 MiB of log, and the connection kept). */
long hostile_junk(struct agent *f)
{
	struct err e;
	agent_negotiate_resume(f->fd);
	long base = hostile_hwm_kib(f);
	int lout = vsock_listen(&f->addr, PORT_OUT, &e);
	assert_true(lout >= 0);
	agent_exec_uvm(f->fd, 1, "echo hi; sleep 1", 0, PORT_OUT);
	int out = agent_accept_on(lout);
	assert_true(out >= 0);
	long long pid = agent_exec_result(f->fd, 1);
	agent_expect_hello(out, RESUME_FLAG_FIRST, PORT_OUT, 0);
	agent_send_ready(out, 0);
	agent_expect_data(out, "hi\n");
	uint8_t *junk = malloc(MIB);
	assert_non_null(junk);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (long i = 0; i < MIB; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		junk[i] = (uint8_t)(x >> 24);
	}
	for (long off = 0; off < MIB;) {
		ssize_t n = send(out, junk + off, (size_t)(MIB - off), MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += n;
	}
	free(junk);
	agent_expect_disconnect(out);
	close(out);
	/* the re-dial: nothing was acknowledged, the host delivered 3 bytes */
	out = agent_accept_on(lout);
	assert_true(out >= 0);
	agent_expect_hello(out, 0, PORT_OUT, 0);
	agent_send_ready(out, 3);
	char buf[16];
	struct pollfd q = {.fd = out, .events = POLLIN};
	assert_true(poll(&q, 1, AGENT_IO_TIMEOUT_MS) > 0);
	assert_int_equal(read(out, buf, sizeof(buf)), 0); /* nothing re-sent, then the end */
	agent_send_ack(out, 3);
	close(out);
	assert_int_equal(agent_wait_code(f->fd, 2, pid), 0);
	/* a few warnings, rate-limited */
	assert_true(agent_log_count(f, "port=") <= LOG_LIMIT_BURST + 1);
	vsock_unlisten(&f->addr, PORT_OUT, lout);
	return hostile_hwm_kib(f) - base;
}

/* ---- the wake port ---- */

long hostile_wake_pokes(struct agent *f)
{
	agent_negotiate_resume(f->fd);
	long base = hostile_hwm_kib(f);
	uint8_t wrong[32];
	memset(wrong, 0x42, sizeof(wrong));
	for (int i = 0; i < 2000; i++) {
		int w;
		if (i % 100 == 0) {
			w = agent_wake(f, wrong); /* a proof of the wrong secret */
		} else {
			struct sockaddr_un un = {.sun_family = AF_UNIX};
			struct err e;
			assert_int_equal(vsock_unix_guest_path(f->addr.path, 0x3FFFFFFFu,
			                                       un.sun_path, sizeof(un.sun_path),
			                                       &e),
			                 0);
			w = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (connect(w, (struct sockaddr *)&un, sizeof(un)) == 0 && i % 2)
				(void)send(w, "junk", 4, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		if (w >= 0)
			close(w);
	}
	/* the session is untouched: the same bridge connection still answers */
	agent_call_expect(f->fd, RPC_DUMP_STACKS, 9, AGENT_BASE(""), 0);
	agent_expect_silence(f->fd, 100);
	return hostile_hwm_kib(f) - base;
}
