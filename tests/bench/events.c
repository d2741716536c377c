/* Benchmark: the task event publisher (host/shim/events.c) forwarding events, one Forward in
 * flight, to (1) ferry's fake Events service (tests/lib/fake_events, in a forked child with
 * its own loop) and (2) Debian's real containerd 1.6 (a private one, tests/lib/containerd; as
 * root only), each next to the same server driven by a bare ttrpc client that sends the same
 * ForwardRequest back to back (one in flight, no queue, no packing): the publisher's overhead
 * is the ratio of the two.  Configurations take turns round after round; the median of the
 * rounds is printed.  Prints numbers; never passes or fails on them. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/services/ttrpc/events/v1/events.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "host/shim/events.h"
#include "tests/lib/containerd.h"
#include "tests/lib/evpub.h"
#include "tests/lib/fake_events.h"
#include "tests/lib/stats.h"
#include "ttrpc/ttrpc.h"

#define ROUNDS 5
#define EVENTS 2000 /* per round: 500 container lives */

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench events: %s: %s\n", what, why);
	exit(1);
}

/* ---- the publisher: EVENTS events published at once, time until all are forwarded ---- */

static double run_publisher(struct ev_loop *loop, const char *addr)
{
	struct events_opts o = {.namespace_ = "bench", .address = addr};
	struct err e;
	struct events_publisher *p = events_publisher_new(loop, &o, &e);
	if (!p)
		die("publisher", e.msg);
	long long t0 = mono_ns();
	if (evpub_lives(p, "bench-", EVENTS / 4, &e) < 0)
		die("publish", e.msg);
	struct events_stats s;
	do {
		ev_run(loop, EVRUN_ONCE);
		events_stats(p, &s);
	} while (s.pending > 0);
	long long t1 = mono_ns();
	if (s.forwarded != EVENTS || s.resent || s.rejected)
		die("publisher", "not every event was forwarded exactly once");
	events_publisher_free(p);
	return (double)(t1 - t0) / 1e3 / EVENTS;
}

/* ---- the bare client: the same ForwardRequest, one in flight, back to back ---- */

struct bare {
	Containerd__Services__Events__Ttrpc__V1__ForwardRequest req;
	int left;
	int failed;
};

static void bare_send(struct ttrpc_client *cl, struct bare *b);

static void bare_reply(struct ttrpc_client *cl, const struct ttrpc_status *st,
                       const ProtobufCMessage *reply, void *ud)
{
	(void)reply;
	struct bare *b = ud;
	if (st->code != TTRPC_OK)
		b->failed++;
	if (--b->left > 0)
		bare_send(cl, b);
}

static void bare_send(struct ttrpc_client *cl, struct bare *b)
{
	struct err e;
	if (ttrpc_client_call(cl, EVENTS_SERVICE, EVENTS_METHOD, &b->req.base,
	                      &google__protobuf__empty__descriptor, NULL, bare_reply, b, NULL,
	                      &e) < 0)
		die("call", e.msg);
}

static double run_bare(struct ev_loop *loop, const char *addr)
{
	struct err e;
	Containerd__Events__TaskExit ex = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ex.container_id = "bench-1";
	ex.id = "bench-1";
	ex.exited_at = &at;
	uint8_t val[128];
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "containerd.events.TaskExit";
	any.value.data = val;
	any.value.len = containerd__events__task_exit__pack(&ex, val);
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts.seconds = 1700000000;
	Containerd__Services__Events__Ttrpc__V1__Envelope env =
	    CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
	env.timestamp = &ts;
	env.namespace_ = "bench";
	env.topic = "/tasks/exit";
	env.event = &any;
	struct bare b = {.req = CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT,
	                 .left = EVENTS};
	b.req.envelope = &env;
	int fd = ttrpc_dial_unix(addr, &e);
	if (fd < 0)
		die("dial", e.msg);
	struct ttrpc_client *cl = ttrpc_client_new(loop, fd, NULL, NULL, &e);
	if (!cl)
		die("client", e.msg);
	long long t0 = mono_ns();
	bare_send(cl, &b);
	while (b.left > 0)
		ev_run(loop, EVRUN_ONCE);
	long long t1 = mono_ns();
	if (b.failed)
		die("bare", "a Forward failed");
	ttrpc_client_free(cl);
	return (double)(t1 - t0) / 1e3 / EVENTS;
}

/* ---- the fake server in a child process ---- */

static pid_t fake_server(const char *path)
{
	int ready[2];
	if (pipe(ready) < 0)
		die("pipe", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		close(ready[0]);
		struct ev_loop *loop = ev_loop_new(0);
		struct fake_events f;
		fake_events_init(&f, loop, path);
		fake_events_start(&f);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;) {
			ev_run(loop, EVRUN_ONCE);
			f.n = 0; /* keep no records: the bench sends many */
		}
	}
	close(ready[1]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		die("fake server", "did not start");
	close(ready[0]);
	return pid;
}

static void report(const char *peer, double *pub, double *bare)
{
	double mp = stats_median(pub, ROUNDS), mb = stats_median(bare, ROUNDS);
	printf("%-34s publisher %7.1f us/event (%6.0f/s)  bare client %7.1f us (%6.0f/s)  "
	       "ratio %.2fx\n",
	       peer, mp, 1e6 / mp, mb, 1e6 / mb, mp / mb);
}

int main(void)
{
	log_set_level(LOG_LVL_ERROR);
	struct ev_loop *loop = ev_loop_new(0);
	char dir[] = "/tmp/ferry-bench-events.XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	char path[128];
	snprintf(path, sizeof(path), "%s/fake.sock", dir);
	pid_t fake = fake_server(path);

	struct ctrd ctrd;
	struct err e;
	bool real = ctrd_init(&ctrd, &e) == 0 && ctrd_start(&ctrd, &e) == 0;
	if (!real)
		printf("(no real containerd: %s)\n", e.msg);

	double pub_f[ROUNDS], bare_f[ROUNDS], pub_c[ROUNDS], bare_c[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		pub_f[r] = run_publisher(loop, path);
		bare_f[r] = run_bare(loop, path);
		if (real) {
			pub_c[r] = run_publisher(loop, ctrd.ttrpc);
			bare_c[r] = run_bare(loop, ctrd.ttrpc);
		}
	}
	printf("task events forwarded, %d per round, one Forward in flight, median of %d rounds\n",
	       EVENTS, ROUNDS);
	report("ferry's fake Events server:", pub_f, bare_f);
	if (real)
		report("containerd 1.6.20 (Debian):", pub_c, bare_c);

	kill(fake, SIGKILL);
	waitpid(fake, NULL, 0);
	ctrd_fini(&ctrd);
	unlink(path);
	rmdir(dir);
	ev_loop_destroy(loop);
	return 0;
}
