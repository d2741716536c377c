/* The qemu backend's migration compatibility blob: what the source's QEMU is (version,
 * concrete machine type, accelerator, CPU model and count, memory, every device with its id
 * and type, the migration capabilities both ends must share), produced on the source by
 * mig_init_source and checked by the destination in mig_prepare_dest before any memory
 * moves, so a destination that lacks a device fails with a message naming it instead of
 * QEMU failing half-way through the stream.
 *
 * Wire form: compact JSON (docs/qemu.md),
 *   {"ferry_qemu_compat":1,"qemu":[7,2,22],"machine":"pc-q35-7.2-machine","accel":"tcg",
 *    "cpu":"qemu64","cpus":1,"memory":268435456,"compress":false,
 *    "devices":[{"id":"nic0","type":"virtio-net-pci"},...]}
 * The blob travels through the orchestrator: it is outside input, decoded strictly and with
 * bounds (QEMU_COMPAT_MAX bytes, QEMU_COMPAT_DEVICES_MAX devices), and fuzzed. */
#ifndef FERRY_HOST_VMM_QEMU_COMPAT_H
#define FERRY_HOST_VMM_QEMU_COMPAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define QEMU_COMPAT_VERSION     1
#define QEMU_COMPAT_MAX         (64u * 1024u)
#define QEMU_COMPAT_DEVICES_MAX 512
#define QEMU_COMPAT_NAME_MAX    127

struct qemu_compat_dev {
	char id[QEMU_COMPAT_NAME_MAX + 1];
	char type[QEMU_COMPAT_NAME_MAX + 1];
};

struct qemu_compat {
	int ver[3];                             /* QEMU major, minor, micro */
	char machine[QEMU_COMPAT_NAME_MAX + 1]; /* the concrete type, e.g. pc-q35-7.2-machine */
	char accel[8];                          /* "kvm" or "tcg" */
	char cpu[QEMU_COMPAT_NAME_MAX + 1];
	unsigned cpus;
	uint64_t memory; /* bytes */
	bool compress;   /* the "compress" migration capability (both ends must agree) */
	struct qemu_compat_dev *devs; /* sorted by id, unique */
	size_t n_devs;
};

void qemu_compat_fini(struct qemu_compat *c);

/* Record the user-created devices from QEMU's `qom-list /machine/peripheral` reply (an
 * array of {"name","type":"child<TYPE>"}; other entries, e.g. "type", are skipped).  -EBADMSG
 * on a malformed reply or too many devices. */
int qemu_compat_set_devices(struct qemu_compat *c, json_t *qom_list, struct err *e);

/* Encode (malloc'd, NUL-terminated JSON; *len excludes the NUL). */
char *qemu_compat_encode(const struct qemu_compat *c, size_t *len);
/* Decode a blob from the source: -EBADMSG with e naming the fault (size, JSON, a field,
 * unsorted or duplicate devices); *c is then empty. */
int qemu_compat_decode(const uint8_t *blob, size_t len, struct qemu_compat *c, struct err *e);

/* Can this destination receive that source's state?  The machine type, accelerator, CPU
 * model and count, memory, the compress capability and the device set (ids and types) must
 * be equal, and the destination's QEMU must not be older than the source's.  0, or -EPROTO
 * (-EPROTONOSUPPORT for an older QEMU) with e naming the first difference. */
int qemu_compat_check(const struct qemu_compat *src, const struct qemu_compat *dst, struct err *e);

#endif
