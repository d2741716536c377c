/* The guest image and its disks, for tests that boot real VMs (tests/e2e): where `make
 * vm-image` put the kernel and initramfs ($BUILD/vm-image), the qemu backend's machine
 * description for it (host/vmm/qemu/qemu.h), and disk images built with Debian's tools: a
 * read-only container layer made from a directory (mkfs.ext4 -d, ext4 being what ferry-gcs
 * detects) and an empty ext4 scratch disk.  Blocking helpers for test setup. */
#ifndef FERRY_TESTS_LIB_VMIMAGE_H
#define FERRY_TESTS_LIB_VMIMAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* Absolute paths of the image's vmlinux and initrd.cpio (static storage), or -ENOENT with
 * "run make vm-image" when they are missing. */
int vmimage_paths(const char **kernel, const char **initrd, struct err *e);

struct vmimage_opts {
	unsigned memory_mib;              /* 0: 256 */
	int tcp_base;                     /* 0: 40000 */
	unsigned long long max_bandwidth; /* bytes/s; 0: 10 GiB/s (a ~150 ms transfer) */
	const char *loglevel;             /* ferry-gcs's (ferry.loglevel=); NULL: info */
};
/* The machine description of a VM booting the image over the tcp transport, one virtio-scsi
 * controller (new reference), or NULL with e (image missing). */
json_t *vmimage_machine(const struct vmimage_opts *o, struct err *e);

/* An ext4 image at `out` holding the tree `dir` (mkfs.ext4 -d), sized to fit. */
int vmimage_layer_disk(const char *dir, const char *out, struct err *e);
/* An empty ext4 image of `mib` MiB at `out`. */
int vmimage_scratch_disk(const char *out, unsigned mib, struct err *e);

#endif
