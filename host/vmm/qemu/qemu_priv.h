/* Internals shared by the qemu backend's lifecycle half (qemu.c: process, QMP, start, stop,
 * SCSI, events) and its migration half (qemu_mig.c).  Not for other modules. */
#ifndef FERRY_HOST_VMM_QEMU_QEMU_PRIV_H
#define FERRY_HOST_VMM_QEMU_QEMU_PRIV_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/reenter.h"
#include "host/vmm/qemu/compat.h"
#include "host/vmm/qemu/machine.h"
#include "host/vmm/qemu/qemu.h"
#include "host/vmm/qemu/qmp.h"

enum qvm_state {
	QS_CREATED,   /* no QEMU */
	QS_LAUNCHING, /* choosing the accelerator, or QEMU up and QMP not negotiated yet */
	QS_PAUSED,    /* QMP ready, not started (-S) */
	QS_RUNNING,   /* running (a source keeps this state while it migrates) */
	QS_INCOMING,  /* destination: compatibility checked, waiting for the stream */
	QS_RECEIVING, /* destination: migrate-incoming issued */
	QS_RECEIVED,  /* destination: whole state loaded, paused until finalize */
	QS_SENT,      /* source: migration completed, paused (postmigrate) */
	QS_EXITED,    /* QEMU is gone */
};

/* The asynchronous verbs: one slot each (a second one while busy is -EBUSY). */
enum qvm_verb {
	V_START,
	V_STOP,
	V_ATTACH,
	V_DETACH,
	V_MIG_INIT,
	V_MIG_PREPARE,
	V_MIG_START,
	V_MIG_TRANSFER,
	V_MIG_FINALIZE,
	V_MIG_CANCEL,
	V_COUNT
};

struct qvm_slot {
	bool busy;     /* accepted, not completed */
	bool finished; /* completion stored, delivery pending */
	vmm_done_fn fn;
	void *arg;
	int status;
	struct err e;
};

/* A sequence of QMP commands run one after the other (qemu.c chain_run). */
struct qemu_vm;
struct qstep {
	const char *execute;
	json_t *args; /* owned by the chain */
	int fd;       /* borrowed fd to pass, or -1 */
	/* Take what the reply says; < 0 stops the chain with e. May be NULL. */
	int (*on_ret)(struct qemu_vm *vm, json_t *ret, struct err *e);
};
#define QCHAIN_MAX 8
typedef void (*qchain_then)(struct qemu_vm *vm, int status, const struct err *e);

struct qchain {
	struct qchain *next;
	struct qemu_vm *vm;
	struct qstep steps[QCHAIN_MAX];
	size_t n, i;
	qchain_then then;
};

#define MIG_HDR_LEN   16
#define MIG_HDR_MAGIC "FERRYMIG"
#define MIG_FDNAME    "ferry-migration"

struct qvm_mig {
	enum vmm_origin origin; /* of the session in progress, UNSPECIFIED when none */
	struct vmm_mig_options opts;
	bool has_opts;
	struct qemu_compat local; /* this end's answers */
	char *blob;               /* source: the encoded compatibility blob */
	size_t blob_len;
	struct qemu_compat peer; /* destination: the source's blob */
	int sock;                /* our copy of the migration socket, or -1 */
	uint32_t session;
	uint8_t hdr_out[MIG_HDR_LEN];
	size_t hdr_sent;
	uint8_t hdr_in[MIG_HDR_LEN];
	size_t hdr_got;
	ev_io sock_w;
	ev_timer hdr_timer;
	bool migrating;       /* migrate / migrate-incoming issued, no terminal status yet */
	bool cancelling;      /* migrate_cancel sent */
	bool forced;          /* the brownout pass limit raised downtime-limit */
	bool completed;       /* the last transfer completed */
	bool setup_notified;  /* SETUP_DONE sent for this transfer */
	unsigned passes;      /* MIGRATION_PASS events of this transfer */
	int64_t stop_real_ns; /* CLOCK_REALTIME of the source's STOP (blackout start) */
	struct qemu_mig_stats stats;
	ev_timer stats_w; /* query-migrate again (times not computed yet) */
	unsigned stats_tries;
};

struct qemu_vm {
	struct vmm base;
	struct ev_loop *loop;
	struct vmm_events ev;
	struct qemu_machine m;
	char *state_dir, *console_path, *log_path;
	char host_transport[64];
	bool incoming; /* created as a destination and not yet resumed */
	enum qvm_state st;
	enum qemu_accel accel; /* chosen (KVM or TCG), AUTO before */
	/* the QEMU process */
	pid_t pid;
	ev_child child_w;
	bool exit_expected;  /* we asked it to go (quit, kill, power-off) */
	bool exit_silent;    /* a failed launch: reap it without on_exit, back to CREATED */
	ev_timer stop_timer; /* graceful stop: kill when it fires */
	/* the KVM probe child */
	pid_t probe_pid;
	ev_child probe_w;
	ev_timer probe_timer;
	void (*after_launch)(struct qemu_vm *vm, int status, const struct err *e);
	struct qmp *qmp;
	struct qchain *chains;
	/* verbs */
	struct qvm_slot slots[V_COUNT];
	ev_timer defer_w; /* delivers finished slots from the loop */
	/* SCSI */
	struct qemu_disk pending_disk; /* attach in progress (path owned) */
	unsigned det_controller, det_lun;
	bool det_event, det_replied;
	ev_timer det_timer;
	struct qvm_mig mig;
	struct reenter re;
};

static inline struct qemu_vm *qvm(struct vmm *vm)
{
	return (struct qemu_vm *)vm;
}

/* ---- qemu.c, for qemu_mig.c ---- */

/* Release the memory (the deferred end of vmm_free, after reenter_leave said so). */
void qvm_destroy(struct qemu_vm *vm);

/* Accept verb v (-EBUSY when busy) with its callback. */
int qvm_claim(struct qemu_vm *vm, enum qvm_verb v, vmm_done_fn fn, void *arg, struct err *e);
/* Store v's completion (delivered from the loop, never inside the call that started it). */
void qvm_finish(struct qemu_vm *vm, enum qvm_verb v, int status, const struct err *e);
/* Run steps (args owned by the chain from here) then `then`.  -ENOTCONN without QMP. */
int qvm_chain(struct qemu_vm *vm, const struct qstep *steps, size_t n, qchain_then then,
              struct err *e);
/* A single QMP command whose reply only matters for logging. */
void qvm_fire(struct qemu_vm *vm, const char *execute, json_t *args);
/* Choose the accelerator and start QEMU (paused; -incoming defer for a destination);
 * after_launch runs once QMP is negotiated or the launch failed. */
int qvm_launch(struct qemu_vm *vm, void (*after)(struct qemu_vm *, int, const struct err *),
               struct err *e);
/* Make QEMU go: `quit` over QMP when it is up, SIGKILL otherwise (force: always SIGKILL). */
void qvm_terminate(struct qemu_vm *vm, bool force);
/* Deliver a notification (in order, synchronously; the owner may free the VM: check
 * reenter_dying after). */
void qvm_notify(struct qemu_vm *vm, enum vmm_phase phase, enum vmm_phase_state state,
                const struct vmm_notification *extra);
/* The last bytes of qemu.log as one line (for error messages). */
void qvm_log_tail(struct qemu_vm *vm, char *out, size_t n);

/* ---- qemu_mig.c ---- */

void qemu_mig_init(struct qemu_vm *vm);
void qemu_mig_fini(struct qemu_vm *vm);
/* QMP events of the migration: MIGRATION, MIGRATION_PASS, STOP, RESUME. */
void qemu_mig_on_event(struct qemu_vm *vm, const char *name, json_t *data);
/* QEMU exited: release the socket, end what was running. */
void qemu_mig_on_exit(struct qemu_vm *vm);
int qemu_mig_init_source(struct vmm *vm, const struct vmm_mig_options *opts, vmm_done_fn done,
                         void *arg, struct err *e);
int qemu_mig_compat_info(struct vmm *vm, struct buf *out, struct err *e);
int qemu_mig_prepare_dest(struct vmm *vm, const struct vmm_mig_options *opts, const uint8_t *compat,
                          size_t compat_len, vmm_done_fn done, void *arg, struct err *e);
int qemu_mig_start(struct vmm *vm, int sock, uint32_t session, vmm_done_fn done, void *arg,
                   struct err *e);
int qemu_mig_transfer(struct vmm *vm, vmm_done_fn done, void *arg, struct err *e);
int qemu_mig_finalize(struct vmm *vm, bool resume, vmm_done_fn done, void *arg, struct err *e);
int qemu_mig_cancel(struct vmm *vm, vmm_done_fn done, void *arg, struct err *e);

/* Pure pieces, exposed for the unit tests. */
/* The migrate-set-capabilities and migrate-set-parameters arguments for options o (may be
 * NULL) on machine m: source or destination.  -ENOTSUP for a memory transport QEMU cannot
 * use.  New references in *caps and *params. */
int qemu_mig_options_args(const struct qemu_machine *m, const struct vmm_mig_options *o,
                          bool source, bool compress, json_t **caps, json_t **params,
                          struct err *e);
/* Encode / check the session header. */
void qemu_mig_header(uint32_t session, uint8_t out[MIG_HDR_LEN]);
int qemu_mig_header_check(const uint8_t in[MIG_HDR_LEN], uint32_t session, struct err *e);

#endif
