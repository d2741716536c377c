/* The hcs backend's machine description (vmm.h: "one schema per backend"):
 *
 *   {"Id": "<compute system id, e.g. <sandbox-id>@vm>",
 *    "ComputeSystem": { ...the HCS v2 ComputeSystem document (hcsshim's hcs_document)... }}
 *
 * The ComputeSystem document is what HcsCreateComputeSystem receives; it must hold a
 * VirtualMachine object (LCOW utility VMs).  Its VirtualMachine.Devices.Scsi map (keyed by the
 * controller GUIDs of hcs_doc.h, then Attachments keyed by the LUN in decimal) is kept in step
 * with scsi_attach / scsi_detach, so describe() returns the machine as it is, which is what the
 * destination re-creates (after the controllers re-path host files in it).  On the destination
 * the backend adds VirtualMachine.MigrationOptions to a copy of the document, as hcsshim's
 * CreateVM does.  The id is outside the document because HCS takes it as a separate argument
 * and hcsshim saves it separately (vm_id); the destination uses its own id.
 *
 * Helpers over jansson values; portable, unit-tested on Linux. */
#ifndef FERRY_HOST_VMM_HCS_MACHINE_H
#define FERRY_HOST_VMM_HCS_MACHINE_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"
#include "host/vmm/vmm.h"

#define HCS_MACHINE_ID_MAX 256

/* Check machine and return borrowed pointers to its id and document (valid while machine
 * lives).  -EINVAL with a message naming what is wrong. */
int hcs_machine_parse(const json_t *machine, const char **id, const json_t **doc, struct err *e);
/* A new description {"Id": id, "ComputeSystem": doc (copied)}; caller owns it. */
json_t *hcs_machine_new(const char *id, const json_t *doc);
/* A deep copy of doc with VirtualMachine.MigrationOptions set to the JSON text opts[0..n)
 * (a MigrationInitializeOptions from hcs_doc_init_options).  Caller owns it; NULL with e. */
json_t *hcs_machine_dest_doc(const json_t *doc, const char *opts, size_t n, struct err *e);
/* Record disk at (controller, lun) in doc's Devices.Scsi, or remove it (disk NULL). */
int hcs_machine_scsi_set(json_t *doc, unsigned controller, unsigned lun,
                         const struct vmm_disk *disk, struct err *e);
/* Call fn for the host path of every VirtualDisk or PassThru attachment in doc (the files
 * HcsGrantVmAccess must open to the VM, as hcsshim's Patch does); stops at and returns the
 * first negative result of fn. */
int hcs_machine_each_disk(const json_t *doc, int (*fn)(const char *path, void *arg), void *arg);

#endif
