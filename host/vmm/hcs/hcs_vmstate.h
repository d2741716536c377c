/* The HCS backend's VM states and which verb each allows: hcsshim's VM controller states that
 * concern the compute system (hcsshim-lm.md §5.1), as one table.  The backend (win/) checks
 * every verb here before it calls HCS and moves to the table's next state when HCS says the
 * call succeeded; a failed call leaves the state as it was, so the caller may retry or roll
 * back (§4: a failed transfer stays Source/DestinationMigrationStarted, which finalize then
 * accepts).  Portable and pure, so the rules are unit-tested on Linux. */
#ifndef FERRY_HOST_VMM_HCS_VMSTATE_H
#define FERRY_HOST_VMM_HCS_VMSTATE_H

#include <stdbool.h>

#include "common/err.h"

enum hcs_vm_state {
	HCS_VM_NOT_CREATED = 0,    /* described, no compute system yet (hcsshim: NotCreated) */
	HCS_VM_RUNNING,            /* started (Running) */
	HCS_VM_SRC_INITIALIZED,    /* SourceMigrationInitialized */
	HCS_VM_SRC_STARTED,        /* SourceMigrationStarted */
	HCS_VM_DST_CREATED,        /* DestinationMigrationCreated (created to receive) */
	HCS_VM_DST_STARTED,        /* DestinationMigrationStarted */
	HCS_VM_TRANSFER_COMPLETED, /* MigrationTransferCompleted */
	HCS_VM_FINALIZED,          /* MigrationFinalized by a RESUME: runs; behaves as Running */
	HCS_VM_TERMINATED,         /* exited, stopped or discarded */
	HCS_VM_STATES
};

enum hcs_vm_verb {
	HCS_VERB_START,
	HCS_VERB_STOP,
	HCS_VERB_SCSI,
	HCS_VERB_MIG_INIT_SOURCE,
	HCS_VERB_MIG_COMPAT_INFO,
	HCS_VERB_MIG_PREPARE_DEST,
	HCS_VERB_MIG_START,
	HCS_VERB_MIG_TRANSFER,
	HCS_VERB_MIG_FINALIZE,
	HCS_VERB_MIG_CANCEL,
	HCS_VERBS
};

/* What a verb does in a state. */
enum hcs_vm_action {
	HCS_ACT_REFUSE, /* not valid here: -EINVAL with a message naming verb and state */
	HCS_ACT_CALL,   /* make the HCS call(s) */
	HCS_ACT_NOOP,   /* already done: complete with success, no HCS call */
};

const char *hcs_vmstate_name(enum hcs_vm_state s);
const char *hcs_vmstate_verb_name(enum hcs_vm_verb v);

/* The action for verb v in state s.  incoming: the VM was created as a migration destination
 * (start is refused, mig_prepare_dest allowed); resume: mig_finalize's direction.  Finalize
 * reconciles as hcsshim's Finalize does, so a finalize applied in part can be retried:
 * Terminated + STOP is a no-op and Terminated + RESUME refused ("VM already terminated by a stop
 * finalize"); Finalized + RESUME is a no-op, Finalized + STOP stops the VM.  Stop on a VM that
 * never ran, or has exited, is a no-op.  REFUSE fills e. */
enum hcs_vm_action hcs_vmstate_action(enum hcs_vm_state s, enum hcs_vm_verb v, bool incoming,
                                      bool resume, struct err *e);
/* The state after a successful HCS call for verb v from s. */
enum hcs_vm_state hcs_vmstate_next(enum hcs_vm_state s, enum hcs_vm_verb v, bool resume);

#endif
