/* Guest storage primitives behind the UVM-level ModifySettings resources: SCSI disk lookup
 * in sysfs (controller GUID list -> SCSI host -> block device), filesystem detection, the
 * mounts themselves (block device, overlayfs for CombinedLayers, 9p over an already-dialled
 * fd for MappedDirectory, VPMem) and SCSI hot-unplug.  Every function here is a short
 * synchronous syscall sequence (no waiting, no polling); the bounded wait for a disk to
 * appear is the caller's job (see guest/settings.c), so nothing here blocks the loop for
 * long.  Paths under sysfs take a `sysfs` root argument so tests can fake the tree. */
#ifndef FERRY_GUEST_MOUNTS_H
#define FERRY_GUEST_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define MOUNTS_SYSFS_DEFAULT "/sys"

/* Number of SCSI controllers the host can address (the GUID list of gcs-bridge.md §4.4). */
#define MOUNTS_SCSI_CONTROLLERS 4

/* The vmbus instance GUID of SCSI controller `index` (0..3), or NULL when out of range. */
const char *mounts_scsi_controller_guid(uint8_t index);

/* On QEMU (ferry's qemu backend, docs/qemu.md) SCSI controller i is a virtio-scsi-pci
 * function at PCI 0000:00:(MOUNTS_VIRTIO_SCSI_SLOT0 + i).0 of the root bus. */
#define MOUNTS_VIRTIO_SCSI_SLOT0 0x10

/* Find the block device of SCSI (controller, lun): the SCSI host number N from
 * `<sysfs>/bus/vmbus/devices/<guid>/host<N>` (Hyper-V) or, when that controller is absent,
 * `<sysfs>/bus/pci/devices/0000:00:<slot>.0/virtio<M>/host<N>` (QEMU), then the single entry of
 * `<sysfs>/bus/scsi/devices/<N>:0:0:<lun>/block/`.  On success writes "/dev/<name>" into
 * `dev` (size n) and returns 0.  Returns -ENOENT (with a message naming what is missing)
 * when the controller or the disk is not there (yet): callers retry within a deadline;
 * -EINVAL for a bad controller index; other negative errnos for real failures. */
int mounts_scsi_find(const char *sysfs, uint8_t controller, uint8_t lun, char *dev, size_t n,
                     struct err *e);

/* Hot-unplug SCSI (controller, lun): write "1\n" to
 * `<sysfs>/bus/scsi/devices/<N>:0:0:<lun>/delete`.  A device (or controller) that is absent
 * already counts as success (returns 0). */
int mounts_scsi_remove(const char *sysfs, uint8_t controller, uint8_t lun, struct err *e);

/* Detect the filesystem on a block device (or image file) from its superblock: writes
 * "ext4" or "xfs" into `fs` (size n) and returns 0; -ENODATA when neither is recognised. */
int mounts_detect_fs(const char *dev, char *fs, size_t n, struct err *e);

/* mkdir -p with `mode` for missing components.  Returns 0 or -errno. */
int mounts_mkdir_p(const char *path, unsigned mode, struct err *e);

struct mounts_disk {
	const char *dev;        /* block device path */
	const char *target;     /* mount point (created 0700) */
	const char *fs;         /* filesystem, or NULL/"" to detect */
	bool read_only;         /* MS_RDONLY + "noload" */
	const char *const *opt; /* extra options ("ro", "rshared", ... ), may be NULL */
	size_t n_opt;
};

/* Mount a disk as described.  Propagation options (shared/rshared/slave/rslave/private/
 * rprivate) are applied after the mount; other options are passed as mount data.
 * Returns 0 or a negative errno with `e` naming the device and target. */
int mounts_disk(const struct mounts_disk *d, struct err *e);

/* Overlay for CombinedLayers: lowerdir = layers joined by ':' in the given order (top-most
 * first).  With a non-empty `scratch`, upperdir/workdir are <scratch>/upper and
 * <scratch>/work (created); without one the overlay is read-only.  `target` is created.
 * When the bundle dir (the parent of `target`) is not an ancestor of `scratch`,
 * <scratch>/bundle is bind-mounted onto the bundle dir first (as the Go GCS does), so the
 * rootfs is mounted inside that bind.
 * Returns 0 or a negative errno (-E2BIG when the option string exceeds a page). */
int mounts_overlay(const char *const *layers, size_t n_layers, const char *scratch,
                   const char *target, struct err *e);

/* Undo mounts_overlay (same arguments): unmount `target`, then the bundle bind if one was
 * made.  Not mounted counts as success. */
int mounts_overlay_remove(const char *scratch, const char *target, struct err *e);

/* Build the overlay mount data string into `out` (size n) without mounting; returns 0 or
 * -E2BIG / -EINVAL (no layers, or a layer path containing ':' or ','). Exposed for tests. */
int mounts_overlay_data(const char *const *layers, size_t n_layers, const char *scratch, char *out,
                        size_t n, struct err *e);

/* 9p mount over an already-connected stream fd (MappedDirectory): trans=fd,rfdno=fd,
 * wfdno=fd,msize=65536[,aname=<share>], read-only when asked.  `target` is created (0700).
 * The caller keeps ownership of fd (the kernel holds its own reference while mounted). */
int mounts_9p(int fd, const char *share, const char *target, bool read_only, struct err *e);

/* Unmount `target` (lazy detach when busy).  Not mounted / absent counts as success. */
int mounts_unmount(const char *target, struct err *e);

#endif
