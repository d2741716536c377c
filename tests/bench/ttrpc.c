/* Benchmark: ttrpc unary round trips (Echo{text: "x"}, one call in flight) over unix sockets,
 * ferry client <-> ferry server, Go client <-> ferry server, Go client <-> Go server (Go's
 * containerd/ttrpc 1.1.1 from Debian, tests/interop/ttrpc-peer) and ferry client <-> Go
 * server, next to a raw unix-socket round trip of the same frame sizes (blocking write/read
 * ping-pong between two processes) measured in the same run.  Every server is its own process
 * (ferry's in a forked child with its own loop).  The configurations take turns, round after
 * round, so that load from elsewhere on the machine spreads over all of them; the median of
 * the rounds is printed, and the ratios come from those medians.  Prints numbers; never
 * passes or fails on them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "common/fdio.h"
#include "common/xalloc.h"
#include "tests/lib/echo_svc.h"
#include "tests/lib/goproc.h"
#include "tests/lib/stats.h"

#define ROUNDS   7
#define C_CALLS  20000 /* per round, C clients and the raw ping-pong */
#define GO_CALLS 5000  /* per round, Go clients (slower) */

enum { RAW, FERRY_FERRY, GO_FERRY, GO_GO, FERRY_GO, NCONF };
static const char *const names[NCONF] = {
    "raw unix socket ping-pong", "ferry client <-> ferry server", "Go client    <-> ferry server",
    "Go client    <-> Go server", "ferry client <-> Go server"};

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench ttrpc: %s: %s\n", what, why);
	exit(1);
}

/* ---- the sizes of one call on the wire ---- */

static size_t req_size, rep_size;

static void frame_sizes(void)
{
	struct buf b;
	buf_init(&b);
	struct err e;
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = "x";
	const struct ttrpc_request_out rq = {
	    .service = ECHO_SERVICE, .method = "Echo", .payload = &req.base};
	ttrpc_wire_put_request(&b, 1, 0, &rq, &e);
	req_size = buf_avail(&b);
	buf_reset(&b);
	Ttrpc__Echo__EchoReply rep = TTRPC__ECHO__ECHO_REPLY__INIT;
	rep.text = "x";
	ttrpc_wire_put_response(&b, 1, 0, "", 0, NULL, &rep.base, &e);
	rep_size = buf_avail(&b);
	buf_fini(&b);
}

/* ---- raw ping-pong ---- */

static pid_t raw_child(int *fd_out)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", strerror(errno));
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		uint8_t in[256], out[256] = {0};
		struct err e;
		while (fd_read_all(sv[1], in, req_size, &e) == 0)
			if (fd_write_all(sv[1], out, rep_size, &e) < 0)
				break;
		_exit(0);
	}
	close(sv[1]);
	*fd_out = sv[0];
	return pid;
}

static double raw_round(int fd)
{
	uint8_t out[256] = {0}, in[256];
	struct err e;
	long long t0 = mono_ns();
	for (int i = 0; i < C_CALLS; i++)
		if (fd_write_all(fd, out, req_size, &e) < 0 ||
		    fd_read_all(fd, in, rep_size, &e) < 0)
			die("raw", e.msg);
	return (double)(mono_ns() - t0) / C_CALLS;
}

/* ---- ferry's server in a child ---- */

static void on_parent_gone(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Serve Echo on `path` until the pipe `ctl` closes. */
static pid_t ferry_server(const char *path)
{
	int p[2], ready[2];
	if (pipe2(p, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
		die("pipe", strerror(errno));
	pid_t pid = fork();
	if (pid == 0) {
		close(p[1]);
		close(ready[0]);
		struct ev_loop *loop = ev_loop_new(0);
		struct echo_svc svc;
		echo_svc_init(&svc, loop);
		struct ttrpc_server *s = ttrpc_server_new(loop, NULL);
		struct err e;
		if (ttrpc_server_register(s, &echo_service, &svc, &e) < 0 ||
		    ttrpc_server_listen_unix(s, path, &e) < 0)
			die("ferry server", e.msg);
		ev_io w;
		ev_io_init(&w, on_parent_gone, p[0], EV_READ);
		ev_io_start(loop, &w);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		ev_run(loop, 0);
		ttrpc_server_free(s);
		_exit(0);
	}
	close(p[0]);
	close(ready[1]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		die("ferry server", "did not start");
	close(ready[0]);
	/* p[1] stays open (close-on-exec, so the Go peers do not hold it) until we exit */
	return pid;
}

/* ---- ferry's client ---- */

struct crun {
	struct ev_loop *loop;
	struct ttrpc_client *cl;
	int left;
	int failed;
};

static void issue(struct crun *r);

static void on_reply(struct ttrpc_client *cl, const struct ttrpc_status *st,
                     const ProtobufCMessage *reply, void *ud)
{
	(void)cl;
	(void)reply;
	struct crun *r = ud;
	if (st->code != TTRPC_OK) {
		fprintf(stderr, "bench ttrpc: call failed: %s\n", st->message);
		r->failed = 1;
		ev_break(r->loop, EVBREAK_ALL);
	} else if (--r->left == 0) {
		ev_break(r->loop, EVBREAK_ALL);
	} else {
		issue(r);
	}
}

static void issue(struct crun *r)
{
	Ttrpc__Echo__EchoRequest req = TTRPC__ECHO__ECHO_REQUEST__INIT;
	req.text = "x";
	struct err e;
	if (ttrpc_client_call(r->cl, ECHO_SERVICE, "Echo", &req.base,
	                      &ttrpc__echo__echo_reply__descriptor, NULL, on_reply, r, NULL,
	                      &e) < 0)
		die("call", e.msg);
}

static double client_round(struct crun *r, int calls)
{
	r->left = calls;
	long long t0 = mono_ns();
	issue(r);
	ev_run(r->loop, 0);
	if (r->failed || r->left)
		die("ferry client", "round did not complete");
	return (double)(mono_ns() - t0) / calls;
}

static void client_open(struct crun *r, struct ev_loop *loop, const char *path)
{
	struct err e;
	int fd = ttrpc_dial_unix(path, &e);
	if (fd < 0)
		die("dial", e.msg);
	r->loop = loop;
	r->cl = ttrpc_client_new(loop, fd, NULL, NULL, &e);
	if (!r->cl)
		die("client", e.msg);
	client_round(r, C_CALLS / 10); /* warm up */
}

/* ---- Go's client ---- */

static double go_round(const char *path)
{
	struct goproc g;
	char calls[16];
	snprintf(calls, sizeof(calls), "%d", GO_CALLS);
	char *argv[] = {(char *)goproc_bin("ttrpc-peer"), "bench", (char *)path, "1", calls, NULL};
	if (goproc_start(&g, argv) < 0)
		die(goproc_bin("ttrpc-peer"), "cannot start (make go-peers)");
	char line[128];
	long long ns = -1;
	if (!goproc_line(&g, NULL, 300.0, line, sizeof(line)) ||
	    sscanf(line, "round=0 ns_per_call=%lld", &ns) != 1)
		die("go bench client", "no result");
	goproc_stop(&g);
	return (double)ns;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	frame_sizes();
	char dir[] = "/tmp/ferry-bench-ttrpc.XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	char ferry_path[64], go_path[64];
	snprintf(ferry_path, sizeof(ferry_path), "%s/ferry.sock", dir);
	snprintf(go_path, sizeof(go_path), "%s/go.sock", dir);

	int raw_fd;
	pid_t raw_pid = raw_child(&raw_fd);
	pid_t srv_pid = ferry_server(ferry_path);
	struct goproc gosrv;
	char *argv[] = {(char *)goproc_bin("ttrpc-peer"), "server", go_path, NULL};
	char line[64];
	if (goproc_start(&gosrv, argv) < 0 || !goproc_line(&gosrv, NULL, 30.0, line, sizeof(line)))
		die(goproc_bin("ttrpc-peer"), "Go server did not start (make go-peers)");

	struct ev_loop *loop = ev_loop_new(0);
	struct crun to_ferry = {0}, to_go = {0};
	client_open(&to_ferry, loop, ferry_path);
	client_open(&to_go, loop, go_path);

	double ns[NCONF][ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		ns[RAW][r] = raw_round(raw_fd);
		ns[FERRY_FERRY][r] = client_round(&to_ferry, C_CALLS);
		ns[GO_FERRY][r] = go_round(ferry_path);
		ns[GO_GO][r] = go_round(go_path);
		ns[FERRY_GO][r] = client_round(&to_go, C_CALLS);
	}
	double med[NCONF];
	for (int i = 0; i < NCONF; i++)
		med[i] = stats_median(ns[i], ROUNDS);

	printf("ttrpc unary round trip over unix sockets: Echo{text:\"x\"} (request %zu B, reply "
	       "%zu B on the wire), one call in flight; median of %d rounds (%d calls per round, "
	       "%d for Go clients)\n",
	       req_size, rep_size, ROUNDS, C_CALLS, GO_CALLS);
	printf("%-32s %12s %10s %12s\n", "", "round trip", "calls/s", "vs raw");
	for (int i = 0; i < NCONF; i++)
		printf("%-32s %9.1f us %10.0f %11.2fx\n", names[i], med[i] / 1e3, 1e9 / med[i],
		       med[i] / med[RAW]);
	printf("goal: ferry <-> ferry <= 1.50x raw: %.2fx (%s)\n", med[FERRY_FERRY] / med[RAW],
	       med[FERRY_FERRY] <= 1.5 * med[RAW] ? "met" : "missed");
	printf("goal: ferry's server at least as fast as Go's for Go's client: %.2fx the Go "
	       "server's time (%s)\n",
	       med[GO_FERRY] / med[GO_GO], med[GO_FERRY] <= med[GO_GO] ? "met" : "missed");

	ttrpc_client_free(to_ferry.cl);
	ttrpc_client_free(to_go.cl);
	ev_loop_destroy(loop);
	goproc_stop(&gosrv);
	close(raw_fd);
	kill(srv_pid, SIGTERM);
	waitpid(srv_pid, NULL, 0);
	waitpid(raw_pid, NULL, 0);
	unlink(ferry_path);
	unlink(go_path);
	rmdir(dir);
	return 0;
}
