/* The state table of the HCS backend (see hcs_vmstate.h). */
#include "host/vmm/hcs/hcs_vmstate.h"

#include <errno.h>

#define BIT(s) (1u << (s))
#define MIGRATING                                                                                  \
	(BIT(HCS_VM_SRC_INITIALIZED) | BIT(HCS_VM_SRC_STARTED) | BIT(HCS_VM_DST_CREATED) |         \
	 BIT(HCS_VM_DST_STARTED) | BIT(HCS_VM_TRANSFER_COMPLETED))
#define RUNS (BIT(HCS_VM_RUNNING) | BIT(HCS_VM_FINALIZED))

static const char *const state_names[HCS_VM_STATES] = {
    [HCS_VM_NOT_CREATED] = "NotCreated",
    [HCS_VM_RUNNING] = "Running",
    [HCS_VM_SRC_INITIALIZED] = "SourceMigrationInitialized",
    [HCS_VM_SRC_STARTED] = "SourceMigrationStarted",
    [HCS_VM_DST_CREATED] = "DestinationMigrationCreated",
    [HCS_VM_DST_STARTED] = "DestinationMigrationStarted",
    [HCS_VM_TRANSFER_COMPLETED] = "MigrationTransferCompleted",
    [HCS_VM_FINALIZED] = "MigrationFinalized",
    [HCS_VM_TERMINATED] = "Terminated",
};

/* Per verb: the states where it calls HCS, the states where it is a no-op. */
static const struct {
	const char *name;
	unsigned call, noop;
} rules[HCS_VERBS] = {
    [HCS_VERB_START] = {"start", BIT(HCS_VM_NOT_CREATED), 0},
    [HCS_VERB_STOP] = {"stop", RUNS | MIGRATING, BIT(HCS_VM_NOT_CREATED) | BIT(HCS_VM_TERMINATED)},
    [HCS_VERB_SCSI] = {"scsi", RUNS, 0},
    [HCS_VERB_MIG_INIT_SOURCE] = {"mig_init_source", RUNS, 0},
    [HCS_VERB_MIG_COMPAT_INFO] = {"mig_compat_info",
                                  BIT(HCS_VM_SRC_INITIALIZED) | BIT(HCS_VM_SRC_STARTED), 0},
    [HCS_VERB_MIG_PREPARE_DEST] = {"mig_prepare_dest", BIT(HCS_VM_NOT_CREATED), 0},
    [HCS_VERB_MIG_START] = {"mig_start", BIT(HCS_VM_SRC_INITIALIZED) | BIT(HCS_VM_DST_CREATED), 0},
    [HCS_VERB_MIG_TRANSFER] = {"mig_transfer", BIT(HCS_VM_SRC_STARTED) | BIT(HCS_VM_DST_STARTED),
                               0},
    [HCS_VERB_MIG_FINALIZE] = {"mig_finalize", MIGRATING, 0},
    [HCS_VERB_MIG_CANCEL] = {"mig_cancel", RUNS | MIGRATING, 0},
};

const char *hcs_vmstate_name(enum hcs_vm_state s)
{
	return (unsigned)s < HCS_VM_STATES ? state_names[s] : "?";
}

const char *hcs_vmstate_verb_name(enum hcs_vm_verb v)
{
	return (unsigned)v < HCS_VERBS ? rules[v].name : "?";
}

enum hcs_vm_action hcs_vmstate_action(enum hcs_vm_state s, enum hcs_vm_verb v, bool incoming,
                                      bool resume, struct err *e)
{
	if ((unsigned)v >= HCS_VERBS || (unsigned)s >= HCS_VM_STATES) {
		err_set(e, -EINVAL, "unknown verb %d or state %d", (int)v, (int)s);
		return HCS_ACT_REFUSE;
	}
	if (v == HCS_VERB_START && incoming) {
		err_set(e, -EINVAL, "start: a migration destination is started by mig_start");
		return HCS_ACT_REFUSE;
	}
	if (v == HCS_VERB_MIG_PREPARE_DEST && !incoming) {
		err_set(e, -EINVAL, "mig_prepare_dest: the VM was not created as a destination");
		return HCS_ACT_REFUSE;
	}
	if (v == HCS_VERB_MIG_FINALIZE) {
		/* hcsshim's Finalize reconciles against the VM state (§4.2) */
		if (s == HCS_VM_TERMINATED && !resume)
			return HCS_ACT_NOOP;
		if (s == HCS_VM_TERMINATED) {
			err_set(e, -EINVAL,
			        "mig_finalize: VM already terminated by a stop finalize");
			return HCS_ACT_REFUSE;
		}
		if (s == HCS_VM_FINALIZED)
			return resume ? HCS_ACT_NOOP : HCS_ACT_CALL;
	}
	if (rules[v].noop & BIT(s))
		return HCS_ACT_NOOP;
	if (rules[v].call & BIT(s))
		return HCS_ACT_CALL;
	err_set(e, -EINVAL, "%s: not valid in VM state %s", rules[v].name, state_names[s]);
	return HCS_ACT_REFUSE;
}

enum hcs_vm_state hcs_vmstate_next(enum hcs_vm_state s, enum hcs_vm_verb v, bool resume)
{
	switch (v) {
	case HCS_VERB_START:
		return HCS_VM_RUNNING;
	case HCS_VERB_STOP:
		return HCS_VM_TERMINATED;
	case HCS_VERB_MIG_INIT_SOURCE:
		return HCS_VM_SRC_INITIALIZED;
	case HCS_VERB_MIG_PREPARE_DEST:
		return HCS_VM_DST_CREATED;
	case HCS_VERB_MIG_START:
		return s == HCS_VM_DST_CREATED ? HCS_VM_DST_STARTED : HCS_VM_SRC_STARTED;
	case HCS_VERB_MIG_TRANSFER:
		return HCS_VM_TRANSFER_COMPLETED;
	case HCS_VERB_MIG_FINALIZE:
		return resume ? HCS_VM_FINALIZED : HCS_VM_TERMINATED;
	default: /* scsi, compat info, cancel: the state does not move */
		return s;
	}
}
