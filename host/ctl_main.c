/* ferryctl entry point: argument parsing only; each subcommand's work lives in a host/
 * module (gcs-run: host/ctl_run.c).  The full operator CLI (sandboxes, migrate) comes later. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "host/ctl/payload.h"
#include "host/ctl_run.h"

static const char usage[] =
    "usage: ferryctl COMMAND [options]\n"
    "\n"
    "Commands:\n"
    "  gcs-run     run one command through a GCS guest agent and relay its stdio\n"
    "  payload     show or check a saved-state envelope (ferryctl payload --help)\n"
    "  help        this text\n"
    "\n"
    "ferryctl gcs-run --transport ADDR [options] [--] CMD [ARGS...]\n"
    "\n"
    "  Listens on the GCS bridge port (0x40000000) of ADDR, waits for the guest agent to\n"
    "  dial in, negotiates protocol v4, then creates and starts a container from --rootfs\n"
    "  whose init is CMD (or, with --uvm, runs CMD directly in the utility VM), relays its\n"
    "  stdout/stderr (and stdin with -i) to this terminal and exits with its exit code\n"
    "  (128+N when a container process is killed by signal N).  SIGINT/SIGTERM are\n"
    "  forwarded to the process; a second one aborts.\n"
    "\n"
    "  --transport ADDR    where the guest dials: hybrid:PATH (host listens on PATH_<port>),\n"
    "                      unix:PATH, vsock:CID, tcp:HOST[:BASE]\n"
    "  --gcs PATH          spawn this ferry-gcs locally, dialling ADDR (stopped at the end)\n"
    "  --gcs-root DIR      --root for the spawned ferry-gcs\n"
    "  --gcs-state-dir DIR --state-dir for the spawned ferry-gcs\n"
    "  --private-cgroup2   spawn ferry-gcs in a private mount namespace with a pure cgroup2\n"
    "                      /sys/fs/cgroup (needed for crun on hybrid-cgroup hosts; root)\n"
    "  --rootfs DIR        container root filesystem (path as the guest sees it)\n"
    "  --id ID             container id (default ferryctl-<pid>)\n"
    "  --bundle DIR        OciBundlePath in the guest (default /run/gcs/c/<id>)\n"
    "  --uvm               run CMD as a UVM process (null container id), no container\n"
    "  -t, --tty           allocate a terminal in the guest (raw mode here with -i)\n"
    "  -i, --interactive   attach stdin\n"
    "  --timeout MS        how long to wait for the guest to connect (default 120000)\n"
    "  --hop-every MS      while CMD runs, every MS ms hand the host role to a NEW host\n"
    "                      process: the current one cuts its connections and exports its\n"
    "                      state, a forked process adopts it (same transport address, the\n"
    "                      same terminal fds for stdio), wakes the guest and takes over;\n"
    "                      the old one exits once the new one has every stream back.  The\n"
    "                      output reaches this terminal exactly once, stdin keeps working,\n"
    "                      and the exit code is the last host's.  One line per hop on\n"
    "                      stderr: \"ferryctl: hop N: host pid A -> B, guest back in X ms\"\n"
    "                      (X: from the cut until the bridge is renegotiated and every\n"
    "                      stream re-attached).  This first process stays, waits for the\n"
    "                      final code and forwards SIGTERM to the current host (a terminal's\n"
    "                      SIGINT reaches it directly).  Needs a guest with stdio resume\n"
    "                      (ferry-gcs).\n"
    "  -v, --verbose       debug logging\n"
    "  -h, --help          this text\n";

enum {
	O_TRANSPORT = 256,
	O_GCS,
	O_GCS_ROOT,
	O_GCS_STATE,
	O_PRIV,
	O_ROOTFS,
	O_ID,
	O_BUNDLE,
	O_UVM,
	O_TIMEOUT,
	O_HOP
};

static int cmd_gcs_run(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"transport", required_argument, NULL, O_TRANSPORT},
	    {"gcs", required_argument, NULL, O_GCS},
	    {"gcs-root", required_argument, NULL, O_GCS_ROOT},
	    {"gcs-state-dir", required_argument, NULL, O_GCS_STATE},
	    {"private-cgroup2", no_argument, NULL, O_PRIV},
	    {"rootfs", required_argument, NULL, O_ROOTFS},
	    {"id", required_argument, NULL, O_ID},
	    {"bundle", required_argument, NULL, O_BUNDLE},
	    {"uvm", no_argument, NULL, O_UVM},
	    {"tty", no_argument, NULL, 't'},
	    {"interactive", no_argument, NULL, 'i'},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"hop-every", required_argument, NULL, O_HOP},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct ctl_run_opts o = {0};
	int c;
	/* '+': stop at the first non-option, so CMD's own options are left alone. */
	while ((c = getopt_long(argc, argv, "+tivh", lopts, NULL)) != -1) {
		switch (c) {
		case O_TRANSPORT:
			o.transport = optarg;
			break;
		case O_GCS:
			o.gcs_path = optarg;
			break;
		case O_GCS_ROOT:
			o.gcs_root = optarg;
			break;
		case O_GCS_STATE:
			o.gcs_state_dir = optarg;
			break;
		case O_PRIV:
			o.private_cgroup2 = true;
			break;
		case O_ROOTFS:
			o.rootfs = optarg;
			break;
		case O_ID:
			o.container_id = optarg;
			break;
		case O_BUNDLE:
			o.bundle = optarg;
			break;
		case O_UVM:
			o.uvm = true;
			break;
		case 't':
			o.terminal = true;
			break;
		case 'i':
			o.interactive = true;
			break;
		case O_TIMEOUT:
			o.accept_timeout_ms = atoi(optarg);
			break;
		case O_HOP:
			o.hop_every_ms = atoi(optarg);
			if (o.hop_every_ms <= 0) {
				fprintf(stderr,
				        "ferryctl gcs-run: --hop-every needs a positive MS\n");
				return 2;
			}
			break;
		case 'v':
			log_set_level(LOG_LVL_DEBUG);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind >= argc || !o.transport) {
		fprintf(stderr, "ferryctl gcs-run: need --transport and a command (see --help)\n");
		return 2;
	}
	o.argv = argv + optind;
	struct err e;
	int code = 0;
	if (ctl_gcs_run(&o, &code, &e) < 0) {
		log_error("gcs-run: %s", e.msg);
		return 125;
	}
	return code & 0xff;
}

int main(int argc, char **argv)
{
	log_set_ident("ferryctl");
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(cmd, "gcs-run") == 0)
		return cmd_gcs_run(argc - 1, argv + 1);
	if (strcmp(cmd, "payload") == 0)
		return ctl_payload_main(argc - 1, argv + 1);
	fprintf(stderr, "ferryctl: unknown command \"%s\" (see --help)\n", cmd);
	return 2;
}
