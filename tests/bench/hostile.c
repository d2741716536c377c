/* Figures for issue 7: peak resident memory of ferry-gcs under each hostile case of
 * tests/lib/hostile.h (a careless or hostile host against the real agent over hybrid vsock),
 * next to the same agent idle and to what the unbounded agent used (issue 7's measurements).
 * Each case runs on a fresh agent, three times (the minute-long 2,000 processes once); the
 * median is printed; "peak" is the agent's VmHWM at the end of the case, "growth" what the case
 * added to it.  The cases check that
 * the agent serves them correctly (cmocka assertions: a failed check fails the benchmark).
 * Run from the source tree root (BUILD selects the build dir). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "tests/lib/agent.h"
#include "tests/lib/hostile.h"
#include "tests/lib/stats.h"

#define RUNS 3
#include <fcntl.h>
#include <unistd.h>

struct fig {
	const char *name;
	long (*run)(struct agent *f);
	bool low_nofile;
	int runs; /* 0: RUNS (the slow case runs once) */
	const char *before;
	double idle[RUNS], peak[RUNS], grew[RUNS];
	int n;
};

static struct fig figs[] = {
    {.name = "16 MiB request (over the frame cap)",
     .run = hostile_over_frame_cap,
     .low_nofile = false,
     .before = "993 MB peak"},
    {.name = "8 MiB request of 2.8M small values",
     .run = hostile_many_values,
     .low_nofile = false,
     .before = "~650 MB (+)"},
    {.name = "10,000 DumpStacks, host never reads",
     .run = hostile_never_reads,
     .low_nofile = false,
     .before = "301 MiB resident"},
    {.name = "100,000 waits on one process",
     .run = hostile_many_waits,
     .low_nofile = false,
     .before = "35.4 s to register"},
    {.name = "40 streams never acknowledged",
     .run = hostile_unacked_streams,
     .low_nofile = false,
     .before = "42.9 MB"},
    {.name = "2,000 processes, stdin+stdout",
     .run = hostile_many_processes,
     .low_nofile = true,
     .runs = 1,
     .before = "fails at #169-250"},
    {.name = "1 MiB of junk on a stdout conn",
     .run = hostile_junk,
     .low_nofile = false,
     .before = "131,072 log lines"},
    {.name = "2,000 wake-port pokes",
     .run = hostile_wake_pokes,
     .low_nofile = false,
     .before = "2,562 bridge losses"},
};
static struct fig *cur;

static int setup(void **state)
{
	struct rlimit rl, low;
	getrlimit(RLIMIT_NOFILE, &rl);
	low = rl;
	if (cur->low_nofile) { /* as an init would start it */
		low.rlim_cur = rl.rlim_max < 1024 ? rl.rlim_max : 1024;
		setrlimit(RLIMIT_NOFILE, &low);
	}
	struct agent *a = agent_start("ferry-hostile", "--log-level=warn");
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	*state = a;
	return a ? 0 : -1;
}

static int teardown(void **state)
{
	agent_stop(*state);
	return 0;
}

static void run_case(void **state)
{
	struct agent *a = *state;
	long idle = hostile_hwm_kib(a);
	long grew = cur->run(a);
	if (grew == HOSTILE_UNAVAILABLE)
		skip();
	if (grew < 0) /* the kernel's lazily folded RSS counters: no growth */
		grew = 0;
	cur->idle[cur->n] = (double)idle;
	cur->grew[cur->n] = (double)grew;
	cur->peak[cur->n] = (double)hostile_hwm_kib(a);
	cur->n++;
}

int main(void)
{
	/* cmocka only runs the cases here: the figures go to stdout */
	int out = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (out < 0 || null < 0)
		return 1;
	printf("ferry-gcs peak resident memory (VmHWM) under hostile hosts (hybrid vsock, median "
	       "of %d fresh agents each, 1 for 2,000 processes)\n",
	       RUNS);
	printf("%-38s %10s %12s %10s   %s\n", "case", "idle", "peak", "growth", "before (issue 7)");
	int failed = 0;
	for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++) {
		cur = &figs[i];
		for (int r = 0; r < (cur->runs ? cur->runs : RUNS); r++) {
			const struct CMUnitTest t[] = {
			    cmocka_unit_test_setup_teardown(run_case, setup, teardown)};
			/* cmocka's report: stdout to /dev/null, stderr to a scratch file shown
			 * only when the case failed */
			FILE *rep = tmpfile();
			int err = dup(STDERR_FILENO);
			fflush(stdout);
			fflush(stderr);
			dup2(null, STDOUT_FILENO);
			if (rep)
				dup2(fileno(rep), STDERR_FILENO);
			int f = cmocka_run_group_tests_name(cur->name, t, NULL, NULL);
			fflush(stdout);
			fflush(stderr);
			dup2(out, STDOUT_FILENO);
			dup2(err, STDERR_FILENO);
			close(err);
			if (f && rep) {
				char line[512];
				rewind(rep);
				while (fgets(line, sizeof(line), rep))
					fputs(line, stderr);
			}
			if (rep)
				fclose(rep);
			failed += f;
		}
		if (cur->n == 0) {
			printf("%-38s %10s\n", cur->name, failed ? "FAILED" : "skipped");
			continue;
		}
		printf("%-38s %7.0f KiB %9.0f KiB %+7.0f KiB   %s\n", cur->name,
		       stats_median(cur->idle, (size_t)cur->n),
		       stats_median(cur->peak, (size_t)cur->n),
		       stats_median(cur->grew, (size_t)cur->n), cur->before);
		fflush(stdout);
	}
	if (failed)
		fprintf(stderr, "bench hostile: %d case run(s) failed their checks\n", failed);
	return failed ? 1 : 0;
}
