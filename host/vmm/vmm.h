/* The VMM backend interface: what the VM controller (host/ctrl/vm.c) needs from whatever runs
 * the utility VM — ferry-gcs as a local process (`local`), QEMU driven over QMP (`qemu`, Linux)
 * or the Host Compute Service (`hcs`, Windows).  It is modelled on hcsshim's vmmanager plus its
 * live-migration verbs (spec hcsshim-lm.md §2 and §5.1), so the three backends fit one shape and
 * the controllers never include a backend's header: a backend is a `struct vmm_backend` (a
 * name and a constructor) that the daemon looks up in its table by name.
 *
 * Threading and re-entrancy: everything runs on one libev loop and never blocks.  A verb that
 * takes time completes through its `vmm_done_fn`, called exactly once and never from inside the
 * call that started it; a verb that fails at once returns a negative errno with `e` filled and
 * does not call back.  A callback may free the VM (vmm_free); the backend defers the release
 * until the callback returns (common/reenter.h once it exists).  At most one verb of each kind
 * is outstanding; a second one gives -EBUSY.
 *
 * Migration, source side: mig_init_source → mig_compat_info (the blob the destination checks)
 * → mig_start (with the migration socket) → mig_transfer (done when memory has moved and the
 * source is paused) → mig_finalize(STOP: the source VM goes away; RESUME: roll back, it runs on).
 * Destination side: mig_prepare_dest (create the VM from the saved machine description, ready to
 * receive; the compatibility blob is checked here, before any memory moves) → mig_start →
 * mig_transfer → mig_finalize(RESUME: the VM runs; STOP: discard).  mig_cancel may come at any
 * point of either side and really stops the transfer.  Phase notifications
 * (vmm_events.on_notification) are delivered in order and never dropped.
 *
 * Machine descriptions are JSON objects, one schema per backend (documented in the backend's
 * header): what the source saves (vmm_describe) and the destination re-creates from, after the
 * controller has re-pathed host resources in it.  For hcs it is the HCS ComputeSystem document. */
#ifndef FERRY_HOST_VMM_VMM_H
#define FERRY_HOST_VMM_VMM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

struct ev_loop;
struct vmm;

/* Origin, Phase and PhaseState: numerically equal to the Migration service's enums
 * (hcsshim pkg/migration, spec hcsshim-lm.md §1.4). */
enum vmm_origin {
	VMM_ORIGIN_UNSPECIFIED = 0,
	VMM_ORIGIN_SOURCE = 1,
	VMM_ORIGIN_DESTINATION = 2,
};
enum vmm_phase {
	VMM_PHASE_UNSPECIFIED = 0,
	VMM_PHASE_SETUP_DONE = 1,
	VMM_PHASE_TRANSFER_IN_PROGRESS = 2,
	VMM_PHASE_BLACKOUT_STARTED = 3,
	VMM_PHASE_OFFLINE_DONE = 4,
	VMM_PHASE_BLACKOUT_EXITED = 5,
	VMM_PHASE_DONE = 6,
	VMM_PHASE_RECOVERY_DONE = 7,
	VMM_PHASE_FAILED = 8,
};
enum vmm_phase_state {
	VMM_PHASE_STATE_UNSPECIFIED = 0,
	VMM_PHASE_STATE_SUCCESS = 1,
	VMM_PHASE_STATE_CANCELLED = 2,
	VMM_PHASE_STATE_GUEST_INITIATED_CANCELLATION = 3,
	VMM_PHASE_STATE_SOURCE_FAILED = 4,
	VMM_PHASE_STATE_DESTINATION_FAILED = 5,
	VMM_PHASE_STATE_RECOVERY_FAILED = 6,
};

struct vmm_notification {
	enum vmm_origin origin;
	enum vmm_phase phase;
	enum vmm_phase_state state;
	bool has_blackout;          /* phase BLACKOUT_EXITED with details */
	uint64_t blackout_ms;       /* BlackoutExitedEventDetails.blackout_duration_milliseconds */
	int64_t blackout_stop_ns;   /* its blackout_stop_timestamp, CLOCK_REALTIME ns */
	uint64_t bytes_transferred; /* ferry: memory bytes moved so far (0 when unknown) */
};

/* hcsshim's InitializeOptions (pkg/migration), presence kept: a has_ flag per optional field.
 * The service converts the protobuf message into this; each backend applies what it can
 * (hcs: exactly as hcsshim's parse.go; qemu: bandwidth, downtime, compression, ...). */
struct vmm_mig_options {
	int memory_transport; /* MemoryTransport enum: 0 unspecified, 1 TCP */
	bool has_throttle;
	struct {
		bool has_skip_throttling, skip_throttling;
		bool has_throttling_scale;
		double throttling_scale; /* percent 1-100 */
		bool has_minimum_throttle_percentage;
		uint32_t minimum_throttle_percentage;
		bool has_target_brownout_passes;
		uint32_t target_brownout_passes;
		bool has_starting_brownout_pass_for_throttling;
		uint32_t starting_brownout_pass_for_throttling;
		bool has_maximum_brownout_passes;
		uint32_t maximum_brownout_passes;
		bool has_target_blackout_ms;
		uint32_t target_blackout_ms;
		bool has_blackout_threshold_cancel_ms;
		uint32_t blackout_threshold_cancel_ms;
	} throttle;
	bool has_compression;
	bool has_compression_workers;
	uint32_t compression_workers;
	bool checksum_verification;
	bool perf_tracing_enabled;
	bool cancel_if_blackout_threshold_exceeds;
	bool prepare_memory_transfer_mode;
};

/* A disk for SCSI attach: a host file (or block device) and how to present it. */
struct vmm_disk {
	const char *host_path;
	bool read_only;
	const char
	    *type; /* "VirtualDisk" (default when NULL), "PassThru", "ExtensibleVirtualDisk" */
};

/* Completion of an asynchronous verb: status 0 or a negative errno, e describing it (valid only
 * during the call). */
typedef void (*vmm_done_fn)(struct vmm *vm, int status, const struct err *e, void *arg);

/* What the VM tells its owner; copied at construction. */
struct vmm_events {
	/* The VM is gone (guest powered off, crashed, killed, or stopped by a finalize/stop):
	 * status is its exit status (>= 0) or a negative errno.  Called once. */
	void (*on_exit)(struct vmm *vm, int status, void *arg);
	/* A live-migration phase notification, in order, none dropped. */
	void (*on_notification)(struct vmm *vm, const struct vmm_notification *n, void *arg);
	void *arg;
};

/* The verbs; every backend fills every entry (a verb it cannot do returns -ENOTSUP with a
 * message naming the backend). */
struct vmm_ops {
	/* Boot a created VM (source) — on the destination mig_start starts it instead. */
	int (*start)(struct vmm *vm, vmm_done_fn done, void *arg, struct err *e);
	/* Ask the guest to power off (force: kill at once).  on_exit follows. */
	int (*stop)(struct vmm *vm, bool force, vmm_done_fn done, void *arg, struct err *e);
	/* Hot-add / hot-remove a SCSI disk at (controller, lun); lun < 64. */
	int (*scsi_attach)(struct vmm *vm, unsigned controller, unsigned lun,
	                   const struct vmm_disk *disk, vmm_done_fn done, void *arg, struct err *e);
	int (*scsi_detach)(struct vmm *vm, unsigned controller, unsigned lun, vmm_done_fn done,
	                   void *arg, struct err *e);
	/* The machine description to save (caller-owned reference), or NULL with e filled. */
	json_t *(*describe)(struct vmm *vm, struct err *e);
	/* Where the host listens for the guest's bridge and stdio (a vsock-shim address string,
	 * e.g. "hybrid:/run/ferry/x/v.sock", "tcp:127.0.0.1:40000", "hvsock:<vmid>"). */
	const char *(*guest_transport)(struct vmm *vm);

	/* ---- live migration ---- */
	/* Source: get ready to migrate (apply the options: bandwidth, downtime, compression...). */
	int (*mig_init_source)(struct vmm *vm, const struct vmm_mig_options *opts, vmm_done_fn done,
	                       void *arg, struct err *e);
	/* Source, after mig_init_source: the compatibility blob (machine type, devices, VMM
	 * version...) appended to out.  Synchronous. */
	int (*mig_compat_info)(struct vmm *vm, struct buf *out, struct err *e);
	/* Destination: create the VM ready to receive (not running), after checking the source's
	 * compatibility blob; a mismatch fails here with a message naming what differs. */
	int (*mig_prepare_dest)(struct vmm *vm, const struct vmm_mig_options *opts,
	                        const uint8_t *compat, size_t compat_len, vmm_done_fn done,
	                        void *arg, struct err *e);
	/* Both sides: take the migration socket (a connected stream socket; the backend takes
	 * ownership of sock in every case) and the session id (hcsshim's sessionIDToUint32). */
	int (*mig_start)(struct vmm *vm, int sock, uint32_t session, vmm_done_fn done, void *arg,
	                 struct err *e);
	/* Both sides: move the memory; done when the transfer completed (source paused,
	 * destination holding the whole state) or failed. */
	int (*mig_transfer)(struct vmm *vm, vmm_done_fn done, void *arg, struct err *e);
	/* Both sides: resume (true) or stop (false) — source STOP ends the VM, source RESUME rolls
	 * back; destination RESUME runs the VM, destination STOP discards it. */
	int (*mig_finalize)(struct vmm *vm, bool resume, vmm_done_fn done, void *arg,
	                    struct err *e);
	/* Both sides: abandon the migration in progress and release the socket. */
	int (*mig_cancel)(struct vmm *vm, vmm_done_fn done, void *arg, struct err *e);

	/* Release everything; kills a VM that still runs (no on_exit).  NULL-safe via vmm_free. */
	void (*free)(struct vmm *vm);
};

/* Every backend's object starts with this. */
struct vmm {
	const struct vmm_ops *ops;
	const char *backend; /* "local", "qemu", "hcs" */
};

/* A backend in the daemon's table.  `create` builds the VM described by `machine` (not
 * started); with `incoming` set it is a migration destination, which mig_prepare_dest readies
 * instead of start.  state_dir is a private directory the backend may use for sockets and
 * logs (it exists, caller-owned).  Returns the VM or NULL with e filled. */
struct vmm_backend {
	const char *name;
	struct vmm *(*create)(struct ev_loop *loop, const json_t *machine, const char *state_dir,
	                      bool incoming, const struct vmm_events *ev, struct err *e);
};

static inline void vmm_free(struct vmm *vm)
{
	if (vm)
		vm->ops->free(vm);
}

#endif
