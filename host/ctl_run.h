/* `ferryctl gcs-run`: run one command through a GCS guest agent and relay its stdio to this
 * terminal.  Listen on the bridge port, optionally spawn a local ferry-gcs dialling it,
 * negotiate, then either create + start a container from a rootfs and run the command as its
 * init, or run it as a UVM process (null container id); relay stdio; return its exit code.
 * The context lives on the stack of ctl_gcs_run; nothing is global but the terminal state
 * restored at exit. */
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
