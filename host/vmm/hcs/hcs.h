/* The hcs VMM backend: the utility VM as an HCS compute system on a Windows host, driven
 * through computecore.dll (hcsshim-lm.md §2, §5.1), behind host/vmm/vmm.h like local and qemu.
 *
 * Machine description: {"Id": "<compute system id>", "ComputeSystem": {HCS v2 document}}
 * (host/vmm/hcs/hcs_machine.h has the rules).  What each verb does at HCS:
 *
 *   start            HcsGrantVmAccess for each VirtualDisk/PassThru attachment,
 *                    HcsCreateComputeSystem, HcsGetComputeSystemProperties (RuntimeId),
 *                    HcsSetComputeSystemCallback(live-migration events), HcsStartComputeSystem
 *   stop             HcsShutDownComputeSystem (force: HcsTerminateComputeSystem); done and
 *                    on_exit once the SystemExited event came; a destination that was never
 *                    started is only closed (hcsshim's TerminateVM)
 *   scsi_attach/     HcsModifyComputeSystem with a ModifySettingRequest; the description
 *   scsi_detach      follows
 *   guest_transport  "hvsock:<RuntimeId>", known once the compute system exists (after start
 *                    or mig_prepare_dest completed; NULL before): ferry-gcs redials until the
 *                    host listens, so the owner arms its listeners then
 *   mig_init_source  HcsInitializeLiveMigrationOnSource(MigrationInitializeOptions, Origin
 *                    Source, converted as parse.go), then the CompatibilityInfo properties
 *                    query, cached for mig_compat_info (a failed query fails
 *                    mig_compat_info, not the init, as in hcsshim)
 *   mig_prepare_dest HcsCreateComputeSystem of the description with
 *                    VirtualMachine.MigrationOptions (Origin Destination + CompatibilityData)
 *                    and the same properties / callback steps as start
 *   mig_start        HcsAddResourceToOperation(socket, "hcs:/VirtualMachine/LiveMigrationSocket")
 *                    then HcsStartLiveMigrationOnSource (source) or HcsStartComputeSystem with
 *                    DestinationMigrationOptions (destination), SessionId = session
 *   mig_transfer     HcsStartLiveMigrationTransfer({"Origin"}): done when memory has moved
 *   mig_finalize     HcsFinalizeLiveMigration({"Origin","FinalizedOperation"}); STOP completes
 *                    once the VM has exited; reconciled as hcsshim's Finalize (a retry after a
 *                    partial finalize is safe: hcs_vmstate.h)
 *   mig_cancel       HcsCancelLiveMigration({"Origin"}) when computecore.dll exports it, else
 *                    HcsCancelOperation on the migration operation in flight; completes with
 *                    -EALREADY when there was nothing left to cancel (HCS_E_INVALID_STATE, which
 *                    hcsshim's Cancel treats as done).  Releases the socket either way.
 *
 * Every HCS call is asynchronous (an operation waited on by a thread, host/vmm/hcs/win/
 * hcs_link.h); completions, exits and notifications reach the loop in order.  The migration
 * socket passed to mig_start (a SOCKET, as an int) is owned by the backend and closed at
 * finalize, cancel or free.  Windows only: the Linux build compiles the portable parts of this
 * folder (documents, notifications, states) but not the backend. */
#ifndef FERRY_HOST_VMM_HCS_HCS_H
#define FERRY_HOST_VMM_HCS_HCS_H

#include "host/vmm/vmm.h"

#ifdef _WIN32
struct hcs_api;

/* The daemon's table entry: name "hcs"; create loads computecore.dll from System32 (a missing
 * DLL or entry fails create with a message naming it). */
extern const struct vmm_backend hcs_backend;

/* create with an explicit computecore.dll entry table (copied, with a module reference of its
 * own): tests hand it a table without HcsCancelLiveMigration to exercise the fallback. */
struct vmm *hcs_vm_create(struct ev_loop *loop, const struct hcs_api *api, const json_t *machine,
                          bool incoming, const struct vmm_events *ev, struct err *e);
#endif

#endif
