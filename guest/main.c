/* ferry-gcs entry point: parse the command line (ferry's long options plus the Go GCS flags
 * hcsshim passes, `/bin/gcs -v4 -log-format json -loglevel <lvl>`), set up logging and
 * signals, build the daemon context (guest/gcs.h) on the default libev loop and run it.
 * When the host asked for a UVM shutdown and we are allowed to, power off at the end. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ev.h>

#include "common/err.h"
#include "common/log.h"
#include "guest/gcs.h"

static const char usage[] =
    "usage: ferry-gcs [options]\n"
    "\n"
    "ferry's guest agent: dials the host's GCS bridge (vsock port 0x40000000) and serves\n"
    "hcsshim's LCOW GCS protocol (v4).  Options take one or two leading dashes and accept\n"
    "both `-opt value` and `-opt=value`.\n"
    "\n"
    "  --transport ADDR      bridge/stdio transport (default " GCS_DEFAULT_TRANSPORT "):\n"
    "                        vsock:CID, hybrid:PATH (dials PATH_<port>), unix:PATH, "
    "tcp:HOST[:BASE]\n"
    "  --runtime PATH        OCI runtime binary (default " GCS_DEFAULT_RUNTIME ")\n"
    "  --root DIR            GCS root; bundles default to DIR/c/<id> when the host sends no\n"
    "                        OciBundlePath (default " GCS_DEFAULT_ROOT ")\n"
    "  --state-dir DIR       runtime state and bookkeeping (default " GCS_DEFAULT_STATE_DIR ")\n"
    "  --log-level LVL       error|warn|info|debug (default info)\n"
    "  --once                exit after the first bridge connection ends (tests)\n"
    "  --no-poweroff         a UVM shutdown request exits the agent instead of powering off\n"
    "                        (also the behaviour whenever ferry-gcs is not pid 1)\n"
    "  -h, --help            this text\n"
    "\n"
    "Go GCS compatible flags:\n"
    "  -v4                   register the protocol v4 handlers (hcsshim always passes it;\n"
    "                        without it every request but NegotiateProtocol gets E_NOTIMPL)\n"
    "  -loglevel LVL         logrus level: trace|debug|info|warning|error|fatal|panic\n"
    "  -log-format FMT       text|json; accepted, ferry always writes text lines\n"
    "  -logfile PATH         append log lines to PATH instead of stderr\n"
    "  -scrub-logs[=BOOL], -disable-time-sync[=BOOL], -root-mem-reserve-bytes N,\n"
    "  -gcs-mem-limit-bytes N, -initial-policy-stance allow|deny, -core-dump-location PATH\n"
    "                        accepted and ignored (ferry has no log scrubbing, time sync\n"
    "                        daemon, memory monitor or policy enforcer)\n"
    "\n"
    "After a lost connection the agent dials again at once, then backs off to at most\n"
    "100 ms between attempts, until shutdown.  SIGTERM/SIGINT stop it.\n";

enum opt_id {
	OPT_TRANSPORT,
	OPT_RUNTIME,
	OPT_ROOT,
	OPT_STATE_DIR,
	OPT_LOG_LEVEL,
	OPT_ONCE,
	OPT_NO_POWEROFF,
	OPT_HELP,
	OPT_V4,
	OPT_LOGLEVEL_GO,
	OPT_LOG_FORMAT,
	OPT_LOGFILE,
	OPT_IGNORED_BOOL,
	OPT_IGNORED_ARG,
};

static const struct {
	const char *name;
	enum opt_id id;
	bool has_arg;
} opts[] = {
    {"transport", OPT_TRANSPORT, true},
    {"runtime", OPT_RUNTIME, true},
    {"root", OPT_ROOT, true},
    {"state-dir", OPT_STATE_DIR, true},
    {"log-level", OPT_LOG_LEVEL, true},
    {"once", OPT_ONCE, false},
    {"no-poweroff", OPT_NO_POWEROFF, false},
    {"help", OPT_HELP, false},
    {"h", OPT_HELP, false},
    {"v4", OPT_V4, false},
    {"loglevel", OPT_LOGLEVEL_GO, true},
    {"log-format", OPT_LOG_FORMAT, true},
    {"logfile", OPT_LOGFILE, true},
    {"scrub-logs", OPT_IGNORED_BOOL, false},
    {"disable-time-sync", OPT_IGNORED_BOOL, false},
    {"root-mem-reserve-bytes", OPT_IGNORED_ARG, true},
    {"gcs-mem-limit-bytes", OPT_IGNORED_ARG, true},
    {"initial-policy-stance", OPT_IGNORED_ARG, true},
    {"core-dump-location", OPT_IGNORED_ARG, true},
};

/* logrus level names (and ours) to ferry's four levels. */
static int parse_level(const char *s, enum log_level *lvl)
{
	if (strcmp(s, "trace") == 0)
		s = "debug";
	else if (strcmp(s, "warning") == 0)
		s = "warn";
	else if (strcmp(s, "fatal") == 0 || strcmp(s, "panic") == 0)
		s = "error";
	return log_parse_level(s, lvl);
}

struct cmdline {
	struct gcs_options o;
	enum log_level level;
	const char *logfile;
};

/* Returns 0, 1 for --help, or -EINVAL after printing why. */
static int parse_args(int argc, char **argv, struct cmdline *c)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == '\0') {
			fprintf(stderr, "ferry-gcs: unexpected argument `%s`\n", a);
			return -EINVAL;
		}
		a += a[1] == '-' ? 2 : 1;
		const char *eq = strchr(a, '=');
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		size_t k;
		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, a, nlen) == 0)
				break;
		if (k == sizeof(opts) / sizeof(opts[0])) {
			fprintf(stderr, "ferry-gcs: unknown option `%s` (see --help)\n", argv[i]);
			return -EINVAL;
		}
		const char *val = eq ? eq + 1 : NULL;
		if (opts[k].has_arg && !val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "ferry-gcs: option `%s` needs a value\n", argv[i]);
				return -EINVAL;
			}
			val = argv[++i];
		}
		if (!opts[k].has_arg && val && opts[k].id != OPT_IGNORED_BOOL &&
		    strcmp(val, "true") != 0) {
			fprintf(stderr, "ferry-gcs: option `%s` takes no value\n", argv[i]);
			return -EINVAL;
		}
		switch (opts[k].id) {
		case OPT_TRANSPORT:
			c->o.transport = val;
			break;
		case OPT_RUNTIME:
			c->o.runtime_path = val;
			break;
		case OPT_ROOT:
			c->o.root_dir = val;
			break;
		case OPT_STATE_DIR:
			c->o.state_dir = val;
			break;
		case OPT_LOG_LEVEL:
		case OPT_LOGLEVEL_GO:
			if (parse_level(val, &c->level) < 0) {
				fprintf(stderr, "ferry-gcs: bad log level `%s`\n", val);
				return -EINVAL;
			}
			break;
		case OPT_ONCE:
			c->o.once = true;
			break;
		case OPT_NO_POWEROFF:
			c->o.no_poweroff = true;
			break;
		case OPT_HELP:
			return 1;
		case OPT_V4:
			c->o.v4 = true;
			break;
		case OPT_LOG_FORMAT:
			if (strcmp(val, "text") != 0 && strcmp(val, "json") != 0) {
				fprintf(stderr, "ferry-gcs: bad log format `%s`\n", val);
				return -EINVAL;
			}
			break;
		case OPT_LOGFILE:
			c->logfile = val;
			break;
		case OPT_IGNORED_BOOL:
		case OPT_IGNORED_ARG:
			break;
		}
	}
	return 0;
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	log_info("signal %d: stopping", w->signum);
	gcs_stop(w->data);
}

/* Every process costs the agent two to six descriptors (connections, pipe ends): at the
 * usual soft limit of 1024, ExecuteProcess #169 failed with "Too many open files".  Raise the
 * soft limit to the hard one; as root (an agent in its VM), first try the system's maximum
 * (fs.nr_open) for both.  Returns the soft limit we started with, for our children. */
static unsigned long raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	unsigned long was = (unsigned long)rl.rlim_cur;
	/* read + strtoul: no scanf in the static agent (it drags in locale code) */
	char buf[32] = "";
	int fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	unsigned long nr = strtoul(buf, NULL, 10);
	if (nr > rl.rlim_max) {
		struct rlimit up = {.rlim_cur = nr, .rlim_max = nr};
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return was;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	return was;
}

int main(int argc, char **argv)
{
	struct cmdline c = {
	    .o =
	        {
	            .transport = GCS_DEFAULT_TRANSPORT,
	            .runtime_path = GCS_DEFAULT_RUNTIME,
	            .root_dir = GCS_DEFAULT_ROOT,
	            .state_dir = GCS_DEFAULT_STATE_DIR,
	        },
	    .level = LOG_LVL_INFO,
	};
	int r = parse_args(argc, argv, &c);
	if (r == 1) {
		fputs(usage, stdout);
		return 0;
	}
	if (r < 0)
		return 2;
	log_set_ident("ferry-gcs");
	log_set_level(c.level);
	FILE *logf = NULL;
	if (c.logfile) {
		logf = fopen(c.logfile, "ae");
		if (!logf) {
			fprintf(stderr, "ferry-gcs: open log file %s: %s\n", c.logfile,
			        strerror(errno));
			return 1;
		}
		setvbuf(logf, NULL, _IOLBF, 0);
		log_set_file(logf);
	}
	/* Peers vanish mid-write all the time (reconnects); errors come back as EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (getpid() != 1)
		c.o.no_poweroff = true;
	c.o.child_nofile = raise_nofile();

	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	if (!loop) {
		fprintf(stderr, "ferry-gcs: cannot initialise libev\n");
		return 1;
	}
	struct err e;
	err_clear(&e);
	struct gcs *g = gcs_new(loop, &c.o, &e);
	if (!g) {
		log_error("start: %s", e.msg);
		return 1;
	}
	ev_signal sig_term, sig_int;
	ev_signal_init(&sig_term, on_stop_signal, SIGTERM);
	ev_signal_init(&sig_int, on_stop_signal, SIGINT);
	sig_term.data = sig_int.data = g;
	ev_signal_start(loop, &sig_term);
	ev_signal_start(loop, &sig_int);
	ev_unref(loop); /* the signal watchers alone must not keep the loop alive */
	ev_unref(loop);
	if (gcs_start(g, &e) < 0) {
		log_error("start: %s", e.msg);
		gcs_free(g);
		return 1;
	}
	log_info("serving transport=%s v4=%d", c.o.transport, c.o.v4);
	ev_run(loop, 0);
	ev_ref(loop);
	ev_ref(loop);
	ev_signal_stop(loop, &sig_term);
	ev_signal_stop(loop, &sig_int);
	bool poweroff = gcs_poweroff_requested(g);
	gcs_free(g);
	log_info("stopped");
	if (poweroff) {
		sync();
		reboot(RB_POWER_OFF);
		log_error("power off: %s", strerror(errno));
		return 1;
	}
	if (logf) {
		log_set_file(NULL);
		fclose(logf);
	}
	return 0;
}
