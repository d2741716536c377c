/* Figures for the host GCS client against the real ferry-gcs process (hybrid vsock over unix
 * sockets, local child process, containers through crun in a private cgroup2 namespace):
 * RPC round trips/s and p50/p99 latency (Start of an existing container: a no-op in the
 * Linux GCS), exec-to-exit latency of `true` (UVM process and container exec), stdio relay
 * throughput through the guest as a ratio of the raw transport measured in the same run,
 * the ferry-gcs binary size, and its VmRSS idle and with 50 running containers.  Each figure
 * is the median of 5 runs.  Run from the source tree root (BUILD selects the build dir). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/iorelay.h"
#include "host/process.h"
#include "tests/lib/stats.h"
#include "tests/lib/hostenv.h"
#include "tests/lib/testenv.h"

#define RUNS           5
#define RPC_CALLS      2000
#define EXEC_ITERS     10
#define STREAM_BYTES   (128u << 20)
#define RSS_CONTAINERS 50
#define BENCH_PORT     0x50000000u

struct bench {
	struct hostenv h; /* loop, tmp dir, rootfs, client, the agent */
	int seq;
};

static struct bench B;

static void die(const char *what, const struct err *e)
{
	fprintf(stderr, "bench gcs: %s: %s\n", what, e ? e->msg : strerror(errno));
	exit(1);
}

static void run_until(const bool *flag, double timeout_s, const char *what)
{
	if (!hostenv_run_until(B.h.loop, flag, timeout_s)) {
		fprintf(stderr, "bench gcs: timeout waiting for %s\n", what);
		exit(1);
	}
}

/* ---- client plumbing ---- */

static void on_close(struct gcs_client *c, const struct err *why, void *ud)
{
	(void)c;
	(void)ud;
	die("bridge closed", why);
}

static void must(int rc, struct hostenv_done *d, const char *what, const struct err *e)
{
	if (rc < 0)
		die(what, e);
	run_until(&d->done, 30, what);
	if (d->r.status < 0)
		die(what, &d->r.err);
}

static char *container(const char *const *args)
{
	struct err e;
	char *id = xasprintf("b%d-%d", (int)getpid(), ++B.seq); /* unique: cgroup names */
	json_t *spec = testenv_oci_spec(B.h.rootfs, args, false);
	_cleanup_free_ char *bundle = xasprintf("%s/gcs/c/%s", B.h.tmp, id);
	struct gcs_container_config cc = {.bundle_path = bundle, .oci_spec = spec};
	struct hostenv_done d = {0};
	must(gcs_client_create_container(B.h.c, id, &cc, hostenv_on_done, &d, &e), &d, "create",
	     &e);
	json_decref(spec);
	struct hostenv_done s = {0};
	must(gcs_client_start_container(B.h.c, id, hostenv_on_done, &s, &e), &s, "start", &e);
	return id;
}

static void container_kill_delete(const char *id)
{
	struct err e;
	struct hostenv_done d = {0};
	must(gcs_client_shutdown_container(B.h.c, id, false, hostenv_on_done, &d, &e), &d,
	     "shutdown", &e);
	struct hostenv_done x = {0};
	must(gcs_client_delete_container(B.h.c, id, hostenv_on_done, &x, &e), &x, "delete", &e);
}

struct proc {
	struct gcs_process *p;
	bool started, exited;
	uint32_t code;
	uint64_t bytes;
	long long first_ns, last_ns;
};

static void p_started(struct gcs_process *p, const struct gcs_result *r, void *ud)
{
	struct proc *x = ud;
	(void)p;
	x->started = true;
	if (r->status < 0)
		die("exec", &r->err);
}

static void p_output(struct gcs_process *p, int stream, const void *data, size_t n, void *ud)
{
	struct proc *x = ud;
	(void)p;
	(void)stream;
	(void)data;
	if (!x->bytes)
		x->first_ns = mono_ns();
	x->bytes += n;
	x->last_ns = mono_ns();
}

static void p_exit(struct gcs_process *p, const struct gcs_result *r, uint32_t code, void *ud)
{
	struct proc *x = ud;
	(void)p;
	if (r->status < 0)
		die("wait", &r->err);
	x->exited = true;
	x->code = code;
}

static const struct gcs_process_ops pops = {
    .on_started = p_started, .on_output = p_output, .on_exit = p_exit};

/* Run a process to completion; returns nanoseconds from start request to exit callback. */
static long long run_proc(const struct gcs_process_config *pc, struct proc *x)
{
	struct err e;
	memset(x, 0, sizeof(*x));
	long long t0 = mono_ns();
	x->p = gcs_process_start(B.h.c, pc, &pops, x, &e);
	if (!x->p)
		die("process start", &e);
	run_until(&x->exited, 60, "process exit");
	long long dt = mono_ns() - t0;
	gcs_process_free(x->p);
	x->p = NULL;
	return dt;
}

static json_t *oci_process(const char *const *args)
{
	return testenv_oci_process(args, false);
}

/* ---- figures ---- */

static void bench_rpc(const char *id)
{
	double rate[RUNS], p50[RUNS], p99[RUNS];
	double *lat = xcalloc(RPC_CALLS, sizeof(*lat));
	struct err e;
	for (int r = 0; r < RUNS; r++) {
		long long t0 = mono_ns();
		for (int i = 0; i < RPC_CALLS; i++) {
			struct hostenv_done d = {0};
			long long s = mono_ns();
			if (gcs_client_start_container(B.h.c, id, hostenv_on_done, &d, &e) < 0)
				die("start rpc", &e);
			while (!d.done)
				ev_run(B.h.loop, EVRUN_ONCE);
			if (d.r.status < 0)
				die("start rpc", &d.r.err);
			lat[i] = (double)(mono_ns() - s) / 1e3;
		}
		rate[r] = RPC_CALLS / ((double)(mono_ns() - t0) / 1e9);
		p50[r] = stats_percentile(lat, RPC_CALLS, 0.50);
		p99[r] = stats_percentile(lat, RPC_CALLS, 0.99);
	}
	free(lat);
	printf("rpc round trips (Start, 1 in flight)  %10.0f /s   p50 %6.1f us   p99 %6.1f us\n",
	       stats_median(rate, RUNS), stats_median(p50, RUNS), stats_median(p99, RUNS));
}

static void bench_exec(const char *id)
{
	double uvm[RUNS], ctr[RUNS];
	double v[EXEC_ITERS];
	struct proc x;
	const char *const t_uvm[] = {"/bin/true", NULL};
	const char *const t_ctr[] = {"true", NULL};
	json_t *op = oci_process(t_ctr);
	struct gcs_process_config pu = {
	    .argv = t_uvm, .stdio = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1}};
	struct gcs_process_config pcx = {
	    .container_id = id,
	    .oci_process = op,
	    .stdio = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1}};
	for (int r = 0; r < RUNS; r++) {
		for (int i = 0; i < EXEC_ITERS; i++)
			v[i] = (double)run_proc(&pu, &x) / 1e6;
		uvm[r] = stats_median(v, EXEC_ITERS);
		for (int i = 0; i < EXEC_ITERS; i++)
			v[i] = (double)run_proc(&pcx, &x) / 1e6;
		ctr[r] = stats_median(v, EXEC_ITERS);
	}
	json_decref(op);
	printf("exec-to-exit `true`, UVM process        %10.2f ms\n", stats_median(uvm, RUNS));
	printf("exec-to-exit `true`, container exec     %10.2f ms\n", stats_median(ctr, RUNS));
}

/* Raw transport: a child dials the hybrid port and writes STREAM_BYTES; the host side is the
 * same iorelay the guest path uses. */
struct raw {
	bool done;
	uint64_t bytes;
	long long first_ns, last_ns;
};

static void raw_data(struct iorelay *r, const void *data, size_t n, void *ud)
{
	struct raw *x = ud;
	(void)r;
	(void)data;
	if (!x->bytes)
		x->first_ns = mono_ns();
	x->bytes += n;
	x->last_ns = mono_ns();
}

static void raw_done(struct iorelay *r, int status, const struct err *e, void *ud)
{
	struct raw *x = ud;
	(void)r;
	if (status < 0)
		die("raw relay", e);
	x->done = true;
}

/* The writer of the raw baselines: STREAM_BYTES in 64 KiB writes to fd, then half-close and
 * wait for the host's EOF. */
static void write_stream(int fd)
{
	struct err e;
	static char chunk[64 * 1024];
	for (uint64_t left = STREAM_BYTES; left > 0; left -= sizeof(chunk))
		if (fd_write_all(fd, chunk, sizeof(chunk), &e) < 0)
			_exit(1);
}

/* via_pipe false: a process writes straight into the socket (the raw transport).
 * via_pipe true: the same writer goes through a pipe and a minimal read/write copier (256 KiB
 * reads, 1 MiB pipe, as ferry-gcs sets up), which isolates the relay's own overhead from the
 * cost of the extra pipe hop and process that any guest-side relay has. */
static double raw_throughput(uint32_t port, bool via_pipe)
{
	struct err e;
	struct vsock_addr a;
	if (vsock_addr_parse(B.h.addr, &a, &e) < 0)
		die("addr", &e);
	struct raw x = {0};
	struct iorelay_ops ops = {.on_data = raw_data, .on_done = raw_done};
	struct iorelay *r = iorelay_new(B.h.loop, &a, port, IORELAY_FROM_GUEST, -1, &ops, &x, &e);
	if (!r)
		die("raw listen", &e);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = vsock_dial(&a, port, 5000, &e);
		if (fd < 0)
			_exit(1);
		if (!via_pipe) {
			write_stream(fd);
		} else {
			int pp[2];
			if (pipe(pp) < 0)
				_exit(1);
			fcntl(pp[1], F_SETPIPE_SZ, 1 << 20);
			if (fork() == 0) {
				close(pp[0]);
				write_stream(pp[1]);
				_exit(0);
			}
			close(pp[1]);
			static char big[256 * 1024];
			ssize_t n;
			while ((n = read(pp[0], big, sizeof(big))) > 0)
				if (fd_write_all(fd, big, (size_t)n, &e) < 0)
					_exit(1);
			wait(NULL);
		}
		shutdown(fd, SHUT_WR);
		char c;
		while (read(fd, &c, 1) > 0)
			;
		_exit(0);
	}
	run_until(&x.done, 60, "raw stream");
	iorelay_free(r);
	int st;
	waitpid(pid, &st, 0);
	if (x.bytes != STREAM_BYTES)
		die("raw stream: short", NULL);
	return (double)x.bytes / ((double)(x.last_ns - x.first_ns) / 1e9) / (1 << 20);
}

static void bench_stream(const char *id)
{
	double guest[RUNS], raw[RUNS], piped[RUNS], ratio[RUNS], ratio_p[RUNS];
	_cleanup_free_ char *cnt = xasprintf("count=%u", STREAM_BYTES / 65536);
	const char *const args[] = {"dd", "if=/dev/zero", "bs=65536", cnt, NULL};
	json_t *op = oci_process(args);
	struct gcs_process_config pc = {
	    .container_id = id,
	    .oci_process = op,
	    .stdio = {.want_stdout = true, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1}};
	for (int r = 0; r < RUNS; r++) {
		struct proc x;
		run_proc(&pc, &x);
		if (x.bytes != STREAM_BYTES || x.code != 0)
			die("guest stream: short", NULL);
		guest[r] = (double)x.bytes / ((double)(x.last_ns - x.first_ns) / 1e9) / (1 << 20);
		raw[r] = raw_throughput(BENCH_PORT + 2 * (uint32_t)r, false);
		piped[r] = raw_throughput(BENCH_PORT + 2 * (uint32_t)r + 1, true);
		ratio[r] = guest[r] / raw[r];
		ratio_p[r] = guest[r] / piped[r];
	}
	json_decref(op);
	printf("stdio relay through the guest           %10.0f MiB/s\n", stats_median(guest, RUNS));
	printf("raw hybrid/unix transport (same relay)  %10.0f MiB/s\n", stats_median(raw, RUNS));
	printf("pipe + minimal copier (same relay)      %10.0f MiB/s\n", stats_median(piped, RUNS));
	printf("ratio guest / raw                       %10.2f      (goal >= 0.9)\n",
	       stats_median(ratio, RUNS));
	printf("ratio guest / pipe + minimal copier     %10.2f      (the relay's own overhead)\n",
	       stats_median(ratio_p, RUNS));
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long kib = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void bench_size(const char *gcs)
{
	struct stat st;
	if (stat(gcs, &st) < 0)
		die(gcs, NULL);
	_cleanup_free_ char *stripped = xasprintf("%s/ferry-gcs.stripped", B.h.tmp);
	_cleanup_free_ char *cmd = xasprintf("strip -o %s %s 2>/dev/null", stripped, gcs);
	struct stat ss = {0};
	bool have = system(cmd) == 0 && stat(stripped, &ss) == 0;
	printf("ferry-gcs binary (static)               %10.0f KiB", (double)st.st_size / 1024);
	if (have)
		printf("   stripped %.0f KiB", (double)ss.st_size / 1024);
	printf("   (goal <= 1024 KiB)\n");
}

static void bench_rss(void)
{
	double idle[RUNS];
	for (int r = 0; r < RUNS; r++) {
		idle[r] = (double)rss_kib(B.h.gcs_pid);
		usleep(20000);
	}
	printf("ferry-gcs VmRSS idle                    %10.0f KiB   (goal <= 2048 KiB)\n",
	       stats_median(idle, RUNS));
	const char *const sl[] = {"sleep", "600", NULL};
	char *ids[RSS_CONTAINERS];
	struct proc inits[RSS_CONTAINERS];
	struct err e;
	long long t0 = mono_ns();
	for (int i = 0; i < RSS_CONTAINERS; i++) {
		ids[i] = container(sl);
		struct gcs_process_config pc = {.container_id = ids[i],
		                                .stdio = {.want_stdout = true,
		                                          .want_stderr = true,
		                                          .stdin_fd = -1,
		                                          .stdout_fd = -1,
		                                          .stderr_fd = -1}};
		memset(&inits[i], 0, sizeof(inits[i]));
		inits[i].p = gcs_process_start(B.h.c, &pc, &pops, &inits[i], &e);
		if (!inits[i].p)
			die("init", &e);
		run_until(&inits[i].started, 30, "init start");
	}
	double setup_s = (double)(mono_ns() - t0) / 1e9;
	double busy[RUNS];
	for (int r = 0; r < RUNS; r++) {
		busy[r] = (double)rss_kib(B.h.gcs_pid);
		usleep(20000);
	}
	printf("ferry-gcs VmRSS, %d running containers  %10.0f KiB   (set up in %.1f s)\n",
	       RSS_CONTAINERS, stats_median(busy, RUNS), setup_s);
	for (int i = 0; i < RSS_CONTAINERS; i++) {
		struct hostenv_done d = {0};
		must(gcs_client_shutdown_container(B.h.c, ids[i], false, hostenv_on_done, &d, &e),
		     &d, "shutdown", &e);
	}
	for (int i = 0; i < RSS_CONTAINERS; i++) {
		run_until(&inits[i].exited, 30, "init exit");
		gcs_process_free(inits[i].p);
		struct hostenv_done x = {0};
		must(gcs_client_delete_container(B.h.c, ids[i], hostenv_on_done, &x, &e), &x,
		     "delete", &e);
		free(ids[i]);
	}
}

int main(void)
{
	struct err e;
	long long t_start = mono_ns();
	struct gcs_client_ops ops = {.on_close = on_close};
	struct hostenv_config hc = {
	    .prefix = "ferry-bench-gcs", .containers = true, .gcs_log_level = "error", .ops = &ops};
	int rc = hostenv_start(&B.h, &hc, &e);
	if (rc == -EPERM) {
		printf("gcs bench: skipped (needs root for containers)\n");
		return 0;
	}
	if (rc < 0)
		die("setup", &e);
	const char *build = getenv("BUILD") && *getenv("BUILD") ? getenv("BUILD") : "build";
	_cleanup_free_ char *gcs = xasprintf("%s/ferry-gcs", build);

	printf("host GCS client vs ferry-gcs (%s, median of %d runs)\n", B.h.addr, RUNS);
	bench_size(gcs);
	bench_rss();
	const char *const sl[] = {"sleep", "600", NULL};
	char *id = container(sl);
	struct proc init;
	struct gcs_process_config pc = {
	    .container_id = id, .stdio = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1}};
	memset(&init, 0, sizeof(init));
	init.p = gcs_process_start(B.h.c, &pc, &pops, &init, &e);
	if (!init.p)
		die("init", &e);
	run_until(&init.started, 30, "init start");
	bench_rpc(id);
	bench_exec(id);
	bench_stream(id);
	container_kill_delete(id);
	run_until(&init.exited, 30, "init exit");
	gcs_process_free(init.p);
	free(id);

	hostenv_stop(&B.h);
	printf("total %.1f s\n", (double)(mono_ns() - t_start) / 1e9);
	return 0;
}
