/* The qemu backend's machine description: the JSON object a VM is created from (and that
 * vmm_describe returns for the destination to re-create it, after the controller re-pathed
 * its disks), parsed strictly into struct qemu_machine, and the QEMU command line built from
 * it.  The schema is documented in host/vmm/qemu/qemu.h and docs/qemu.md.
 *
 * Device layout (fixed, so source and destination agree and the guest can find things):
 * q35 machine; virtio-net-pci `nic0` at PCI 00:02.0 (tcp transport, QEMU user networking)
 * or vhost-vsock-pci `vsock0` at 00:03.0 (vsock transport); virtio-scsi-pci `scsi<i>` at
 * 00:(0x10+i).0 (guest/mounts.h MOUNTS_VIRTIO_SCSI_SLOT0); disk (c, l) is scsi-hd `sd-c-l` on
 * bus scsi<c>.0, scsi-id 0, lun l, over the raw blockdev node `disk-c-l`. */
#ifndef FERRY_HOST_VMM_QEMU_MACHINE_H
#define FERRY_HOST_VMM_QEMU_MACHINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define QEMU_SCSI_CONTROLLERS_MAX 4
#define QEMU_SCSI_LUNS            64 /* per controller, as LCOW */
#define QEMU_PATH_MAX             4096
#define QEMU_PCI_SLOT_NIC         0x02
#define QEMU_PCI_SLOT_VSOCK       0x03
#define QEMU_PCI_SLOT_SCSI0       0x10
/* The guest's address as QEMU user networking gives it, and the host as the guest sees it. */
#define QEMU_GUEST_IP "10.0.2.15"
#define QEMU_HOST_IP  "10.0.2.2"

enum qemu_accel { QEMU_ACCEL_AUTO = 0, QEMU_ACCEL_KVM, QEMU_ACCEL_TCG };
enum qemu_transport { QEMU_TRANSPORT_TCP = 1, QEMU_TRANSPORT_VSOCK };

struct qemu_disk {
	unsigned controller, lun;
	char *path;
	bool read_only;
	bool passthru; /* type "PassThru": a host block device as scsi-block */
};

struct qemu_machine {
	char *qemu;    /* binary, looked up in PATH when it has no '/' */
	char *machine; /* "q35" or a versioned "pc-q35-X.Y" */
	enum qemu_accel accel;
	char *cpu; /* NULL: "host" under KVM, "qemu64" under TCG */
	unsigned cpus;
	uint64_t memory_mib;
	char *kernel, *initrd, *append; /* kernel, initrd: NULL when absent */
	enum qemu_transport transport;
	uint16_t tcp_base;  /* tcp: the vsock-shim BASE (docs/transports.md) */
	uint32_t vsock_cid; /* vsock: the guest's CID */
	unsigned scsi_controllers;
	struct qemu_disk *disks;
	size_t n_disks;
	uint64_t max_bandwidth;     /* bytes/s, 0: QEMU's default */
	uint32_t downtime_limit_ms; /* 0: QEMU's default */
	uint32_t stop_timeout_ms;
};

/* Parse and check a description (borrowed).  Unknown keys, wrong types, relative paths,
 * out-of-range numbers, duplicate or out-of-range disks are -EINVAL with e naming the field.
 * On failure *m is left empty. */
int qemu_machine_parse(const json_t *j, struct qemu_machine *m, struct err *e);
void qemu_machine_fini(struct qemu_machine *m);
/* The description back as JSON (new reference), every default spelt out: what
 * vmm_describe returns. */
json_t *qemu_machine_to_json(const struct qemu_machine *m);

/* The guest's view of the transport ("tcp:10.0.2.2:BASE", "vsock:2") and the host's
 * ("tcp:127.0.0.1:BASE", "vsock:CID"), into out (n bytes). */
void qemu_machine_guest_transport(const struct qemu_machine *m, char *out, size_t n);
void qemu_machine_host_transport(const struct qemu_machine *m, char *out, size_t n);
/* The wake port of the tcp transport (BASE - 1025, the vsock shim's rule for port
 * 0x3fffffff), forwarded from the host's 127.0.0.1 to the guest's 10.0.2.15. */
int qemu_machine_wake_port(const struct qemu_machine *m);
/* The CPU model used under accel (m->cpu or the default). */
const char *qemu_machine_cpu(const struct qemu_machine *m, enum qemu_accel accel);

/* The command line (NULL-terminated array of malloc'd strings; qemu_argv_free): the machine
 * under `accel` (KVM or TCG, not AUTO), paused (-S), the QMP monitor on the inherited fd
 * qmp_fd, the serial console appended to console_path, and -incoming defer when incoming. */
char **qemu_machine_argv(const struct qemu_machine *m, enum qemu_accel accel, int qmp_fd,
                         const char *console_path, bool incoming);
void qemu_argv_free(char **argv);

/* Disks: the node and device names of (controller, lun), and the QMP arguments of
 * blockdev-add and device_add (new references) for d. */
void qemu_disk_names(unsigned controller, unsigned lun, char *node, size_t nn, char *dev,
                     size_t nd);
json_t *qemu_disk_blockdev(const struct qemu_disk *d);
json_t *qemu_disk_device(const struct qemu_disk *d);
/* Find the disk at (controller, lun): its index, or -1. */
int qemu_machine_find_disk(const struct qemu_machine *m, unsigned controller, unsigned lun);
/* Add a copy of d (the slot must be free); remove the one at index i. */
void qemu_machine_add_disk(struct qemu_machine *m, const struct qemu_disk *d);
void qemu_machine_remove_disk(struct qemu_machine *m, size_t i);

#endif
