/* `ferryctl gcs-run`: run one command through a GCS guest agent and relay its stdio to this
 * terminal.  Listen on the bridge port, optionally spawn a local ferry-gcs dialling it,
 * negotiate, then either create + start a container from a rootfs and run the command as its
 * init, or run it as a UVM process (null container id); relay stdio; return its exit code.
 * The context lives on the stack of ctl_gcs_run; nothing is global but the terminal state
 * restored at exit.
 *
 * Host hops (hop_every_ms > 0, the demo of issue 4): while the process runs, every
 * hop_every_ms the current host process cuts its connections, exports its migration state and
 * forks a new host process that adopts it (fresh loop + client on the same transport address,
 * the process re-opened with the same stdio fds, the guest woken); the old one exits once the
 * new one reports its stdio re-attached (rolling back with gcs_client_relisten if the new one
 * fails first).  The calling process is the first host; after its first hop it only waits for
 * the chain's final exit code (and stops a spawned ferry-gcs, restores the terminal).  One
 * line per hop goes to stderr: "ferryctl: hop N: host pid A -> B, guest back in X ms" (X from
 * the cut to the new host's bridge renegotiated and every stdio stream re-attached). */
#ifndef FERRY_HOST_CTL_RUN_H
#define FERRY_HOST_CTL_RUN_H

#include <stdbool.h>

#include <jansson.h>

#include "common/err.h"

struct ctl_run_opts {
	const char *transport;     /* required: the address the guest dials (e.g. hybrid:PATH) */
	const char *gcs_path;      /* spawn this ferry-gcs locally (NULL: the guest is external) */
	const char *gcs_root;      /* --root for the spawned ferry-gcs (NULL: its default) */
	const char *gcs_state_dir; /* --state-dir for the spawned ferry-gcs (NULL: default) */
	bool private_cgroup2;      /* spawn it in a private mount ns with a pure cgroup2 mount */
	const char *rootfs;        /* container rootfs (required unless uvm) */
	const char *container_id;  /* NULL: "ferryctl-<pid>" */
	const char *bundle;        /* OciBundlePath (NULL: the client's /run/gcs/c/<id>) */
	bool uvm;                  /* run a UVM process instead of a container */
	bool terminal;             /* allocate a pty in the guest; raw mode here when on a tty */
	bool interactive;          /* attach stdin */
	int accept_timeout_ms;     /* 0: default (2 min) */
	int hop_every_ms;          /* >0: hand the host role to a new process this often */
	char *const *argv;         /* the command, NULL-terminated, at least one entry */
};

/* Run it.  Returns 0 with *exit_code set to the process's exit code (128+N for a container
 * process killed by signal N), or a negative errno with `e` filled (setup, spawn, negotiation
 * or RPC failure). */
int ctl_gcs_run(const struct ctl_run_opts *o, int *exit_code, struct err *e);

/* A minimal OCI runtime spec for a busybox-like rootfs (namespaces pid/ipc/uts/mount, /proc,
 * /dev tmpfs + devpts, read-only /sys).  Returns a new reference. */
json_t *ctl_oci_spec(const char *rootfs, char *const *argv, bool terminal);

#endif
