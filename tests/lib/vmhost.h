/* A simulated host for the VM end-to-end tests: a forked process inside a network namespace
 * (tests/lib/netns.h) running libev's default loop with the qemu backend (host/vmm/qemu) and
 * a host GCS client (host/gcs_client.h), driven by the test over two pipes, one line each way.
 * It is what ferry-shim will be, reduced to the verbs a VM-level test needs; the shim-level
 * tests replace it with real ferry-shim processes and keep netns.h and vmimage.h.
 *
 * Protocol: the test writes one command line; the host answers exactly one line, "ok ..." or
 * "err <message>", when the command has completed (a boot answers once the guest's bridge is
 * negotiated, a transfer once it is over).  Commands are answered in order, one at a time.
 * Asynchronous events come as "ev ..." lines at any moment; vmhost_call queues them for
 * vmhost_event.
 *
 * Commands (paths are relative to the host's directory unless absolute):
 *   boot DESC             create the VM from the machine description file, a GCS client on
 *                         its transport, start it; ok <ms from start to bridge negotiated>
 *   attach C L PATH ro|rw scsi_attach; ok <ms>          detach C L   scsi_detach; ok <ms>
 *   modify JSON           ModifySettings for the UVM (null container id); ok <ms>
 *   container CID SCRIPT  Create + Start a container whose rootfs is /run/gcs/c/CID/rootfs
 *                         (combined layers), running sh -c SCRIPT; ok
 *   init CID              start the container's init, stdout appended to out.CID; ok <pid>
 *   uvm FILE SCRIPT       a UVM process sh -c SCRIPT, stdout to FILE; ok <exit code> at exit
 *   shutdown CID          ShutdownForced; ok
 *   mig_init BLOB DESC    mig_init_source; the compatibility blob and describe() to files; ok
 *   mig_prepare DESC BLOB create the VM as a destination from DESC and prepare it with BLOB
 *   mig_listen PORT       listen on TCP PORT (all addresses) for the migration connection
 *   mig_recv SESSION      accept it, mig_start, mig_transfer; ok at once, the outcome is
 *                         the event `transfer` (so mig_cancel can come meanwhile)
 *   mig_send IP PORT SESSION  connect, mig_start, mig_transfer; ok at once, then the event
 *                         `transfer ok <total ms> <downtime ms> <bytes> <passes>` (QEMU's
 *                         figures, on the source) or `transfer err <message>`
 *   mig_cancel            mig_cancel; ok       mig_finalize stop|resume; ok <ms>
 *   cut STATE             cut the GCS client and export its state to STATE; ok
 *   release               free the GCS client (after a cut, on the host that gave it up); ok
 *   adopt STATE           a GCS client on the VM's transport adopting STATE, every process
 *                         re-opened (stdout appended to out.CID); ok
 *   wake                  gcs_client_wake_guest; ok
 *   stop                  stop the VM (force); ok after it exited
 *   quit                  exit the host process (kills the VM)
 * Events: ev vmexit STATUS | ev note ORIGIN PHASE STATE BLACKOUT_MS | ev exit CID PID CODE |
 *   ev cexit CID TYPE | ev reconnect STATUS MS (MS since the last finalize resume / wake) |
 *   ev attached MS (every adopted stream re-attached) | ev close MESSAGE |
 *   ev transfer ok ... / ev transfer err MESSAGE */
#ifndef FERRY_TESTS_LIB_VMHOST_H
#define FERRY_TESTS_LIB_VMHOST_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"
#include "tests/lib/netns.h"

#define VMHOST_LINE_MAX 4096
#define VMHOST_EVENTS   256

struct vmhost {
	char name[16];
	char dir[512]; /* the host's directory (shared with the test: same file system) */
	pid_t pid;
	int cmd, evt;
	char buf[4 * VMHOST_LINE_MAX];
	size_t n;
	char *events[VMHOST_EVENTS]; /* queued "ev ..." lines (without "ev ") */
	size_t n_events;
};

/* Fork a host named `name` inside ns (NULL: the current namespace), working in dir (which
 * exists), logging to <dir>/host-<name>.log.  It dies with the test process. */
int vmhost_spawn(struct vmhost *h, const char *name, const struct netns *ns, const char *dir,
                 struct err *e);
/* Send one command (no wait). */
int vmhost_send(struct vmhost *h, struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Wait up to timeout_ms for the next answer: 0 with the text after "ok " in out, -EREMOTEIO
 * with the text after "err ", -ETIMEDOUT, or -EPIPE when the host died. */
int vmhost_reply(struct vmhost *h, char *out, size_t n, int timeout_ms);
/* vmhost_send + vmhost_reply. */
int vmhost_call(struct vmhost *h, char *out, size_t n, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The first queued or next arriving event starting with `prefix` (consumed; other events stay
 * queued): 0 with the event text in out, or -ETIMEDOUT / -EPIPE. */
int vmhost_event(struct vmhost *h, const char *prefix, char *out, size_t n, int timeout_ms);
/* How many queued events start with prefix (answers and events read so far). */
size_t vmhost_count_events(struct vmhost *h, const char *prefix);
/* Ask it to quit, then SIGKILL after a moment; reap; close the pipes.  Idempotent. */
void vmhost_stop(struct vmhost *h);

#endif
