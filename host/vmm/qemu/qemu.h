/* The qemu VMM backend (host/vmm/vmm.h): a utility VM as a QEMU process driven over QMP
 * (host/vmm/qemu/qmp.h).  The daemon finds it as `qemu_backend` in its backend table; the
 * controllers use only vmm.h.  Details, the QMP sequences and the notification mapping are
 * in docs/qemu.md.
 *
 * Machine description (the `machine` JSON of vmm_backend.create, and what describe returns;
 * unknown keys are refused):
 *
 *   {
 *     "qemu": "qemu-system-x86_64",   binary (PATH lookup without '/'); default as shown
 *     "machine": "q35",               q35 or pc-q35-X.Y; default q35
 *     "accel": "auto",                auto (KVM when a probe guest runs, else TCG), kvm, tcg
 *     "cpu": "qemu64",                optional; default host (KVM) / qemu64 (TCG)
 *     "cpus": 1,                      1..64
 *     "memory_mib": 256,              16..1048576
 *     "kernel": "/abs/vmlinux",       an ELF vmlinux (PVH) or a bzImage; absent: firmware
 *                                     only, nothing boots (tests of the VMM alone)
 *     "initrd": "/abs/initrd.cpio",   optional
 *     "append": "console=ttyS0 quiet panic=-1",   kernel command line; the backend appends
 *                                     ferry.transport=<the guest's side of "transport">
 *     "transport": {"kind": "tcp", "base": 40000}   QEMU user networking: the guest dials
 *                                     tcp:10.0.2.2:BASE, the host listens on
 *                                     tcp:127.0.0.1:BASE, and the wake port (BASE-1025) is
 *                                     forwarded from 127.0.0.1 to the guest; or
 *                  {"kind": "vsock", "cid": 3}      vhost-vsock-pci with that guest CID
 *     "scsi_controllers": 1,          0..4 virtio-scsi-pci controllers (scsi0..scsi3)
 *     "scsi": [{"controller": 0, "lun": 1, "path": "/abs/layer.img", "read_only": true,
 *               "type": "VirtualDisk"}],   disks present at boot (what describe lists:
 *                                     every disk attached now, for the destination)
 *     "migration": {"max_bandwidth": 10737418240, "downtime_limit_ms": 300},
 *                                     bytes/s and ms; absent: QEMU's defaults
 *     "stop_timeout_ms": 5000         graceful stop: ACPI power-off, then kill after this
 *   }
 *
 * Lifecycle: create spawns nothing.  start (or, on a destination, mig_prepare_dest) picks the
 * accelerator (logged: "accel=tcg" and why), runs QEMU paused with its QMP monitor on one
 * end of a socketpair (no listening socket exists), negotiates QMP, then `cont` (start).  The
 * serial console goes to <state_dir>/console.log, QEMU's own messages to
 * <state_dir>/qemu.log.  QEMU dies with the daemon (PR_SET_PDEATHSIG).  The child is reaped
 * with an ev_child watcher, so the loop must be libev's default loop (create refuses any
 * other).  on_exit reports QEMU's exit status (128 + signal when killed).
 *
 * Migration (vmm.h): the source's QEMU stays running until mig_finalize(STOP) quits it (or
 * RESUME rolls it back with `cont`); the destination runs `-incoming defer` with -S and stays
 * paused after the transfer until mig_finalize(RESUME) sends `cont`, so a rollback can never
 * leave two running copies.  mig_start writes a 16-byte header ("FERRYMIG", version, the
 * session id) on the migration socket; mig_transfer reads the peer's and refuses a different
 * session before QEMU touches the stream. */
#ifndef FERRY_HOST_VMM_QEMU_QEMU_H
#define FERRY_HOST_VMM_QEMU_QEMU_H

#include <stdint.h>
#include <sys/types.h>

#include "host/vmm/vmm.h"

extern const struct vmm_backend qemu_backend;

/* ---- qemu-specific views, for tests, benchmarks and the demo (vm must be a qemu VM) ---- */

/* What QEMU reported about the last migration of this VM (source side: from query-migrate
 * at completion; zero before). */
struct qemu_mig_stats {
	uint64_t total_ms;    /* "total-time" */
	uint64_t downtime_ms; /* "downtime": the stop-and-copy blackout */
	uint64_t setup_ms;    /* "setup-time" */
	uint64_t bytes;       /* "ram"."transferred" */
	unsigned passes;      /* MIGRATION_PASS events seen */
};
void qemu_vm_mig_stats(struct vmm *vm, struct qemu_mig_stats *out);
/* QEMU's pid (0 when not running). */
pid_t qemu_vm_pid(struct vmm *vm);
/* "kvm", "tcg", or "" before the accelerator was chosen. */
const char *qemu_vm_accel(struct vmm *vm);

#endif
