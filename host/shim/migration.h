/* The migration session controller behind the Migration ttrpc service: hcsshim's
 * internal/controller/migration (spec hcsshim-lm.md §4) in C, with ferry's fixes.  One
 * controller per shim, so at most one session at a time; it owns the session's state (the 13
 * states of §4.1), its socket, its notification log (mig_notify.h) and the bookkeeping of
 * imported containers, and drives the rest of the daemon through the sandbox interface below.
 *
 * Calls.  Every Migration RPC maps to one call taking plain C arguments and a completion
 * callback that receives a gRPC status (code + message as hcsshim words them, prefixed the way
 * hcsshim's service wraps it, with errdefs' ": <class>" suffix), so an RPC handler is only
 * protobuf request -> call -> response/status.  Calls are served one at a time in arrival order,
 * as hcsshim's controller mutex serialises them, except that Cancel gives up its turn while
 * the sandbox cancels (hcsshim releases the lock around HcsCancelLiveMigration) and the memory
 * transfer runs in the background (TransferSandbox returns at once).  Every completion comes
 * from the loop, exactly once, never from inside the call that started it; the controller
 * copies every argument it keeps.  A completion callback may call anything here, including
 * migration_free.
 *
 * What ferry does beyond hcsshim (docs/migration-service.md has the whole list):
 *   - the notification log exists from the session's start and keeps everything, so a
 *     transfer's outcome reaches a subscriber that arrives after the failure;
 *   - Cancel really cancels: it closes a registered socket that the transfer has not taken,
 *     asks the sandbox (the VMM's mig_cancel) to stop a transfer that has, and answers only
 *     once that transfer has ended;
 *   - a destination that ends stopped or cancelled aborts: the sandbox releases its imported
 *     containers with synthetic exits (Finalize STOP, or Cleanup of a cancelled destination);
 *   - CreateDuplicateSocket takes a (pid, fd) on Linux (dupsock.h);
 *   - State of a task answers from cached state during a session (migration_task_guard). */
#ifndef FERRY_HOST_SHIM_MIGRATION_H
#define FERRY_HOST_SHIM_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "host/shim/dupsock.h"
#include "host/shim/mig_notify.h"
#include "host/vmm/vmm.h"

struct ev_loop;
struct migration;

/* The sandbox envelope's Any type URL (hcsshim migration/save constants.go). */
#define MIGRATION_ENVELOPE_TYPE_URL                                                                \
	"type.microsoft.com/hcsshim.controller.migration.save.v1.Payload"
/* Annotations read from a destination CreateTask (hcsshim pkg/annotations). */
#define MIGRATION_ANN_SOURCE_CONTAINER_ID "io.microsoft.migration.source-container-id"
#define MIGRATION_ANN_CONTAINER_TYPE      "io.kubernetes.cri.container-type"
/* TransferSandbox's wait for the socket when the request gives no timeout (hcsshim). */
#define MIGRATION_SOCKET_TIMEOUT_NS (10LL * 60 * 1000000000)

/* ---- status: gRPC codes (numerically google.rpc.Code) and messages ---- */

enum mig_code {
	MIG_CODE_OK = 0,
	MIG_CODE_CANCELLED = 1,
	MIG_CODE_UNKNOWN = 2,
	MIG_CODE_INVALID_ARGUMENT = 3,
	MIG_CODE_DEADLINE_EXCEEDED = 4,
	MIG_CODE_NOT_FOUND = 5,
	MIG_CODE_ALREADY_EXISTS = 6,
	MIG_CODE_PERMISSION_DENIED = 7,
	MIG_CODE_RESOURCE_EXHAUSTED = 8,
	MIG_CODE_FAILED_PRECONDITION = 9,
	MIG_CODE_ABORTED = 10,
	MIG_CODE_OUT_OF_RANGE = 11,
	MIG_CODE_UNIMPLEMENTED = 12,
	MIG_CODE_INTERNAL = 13,
	MIG_CODE_UNAVAILABLE = 14,
	MIG_CODE_DATA_LOSS = 15,
	MIG_CODE_UNAUTHENTICATED = 16,
};

struct mig_status {
	enum mig_code code;
	char msg[ERR_MSG_MAX]; /* "" when OK */
};

/* "InvalidArgument", "FailedPrecondition", ... (grpc-go's names); "Code(N)" otherwise. */
const char *mig_code_name(enum mig_code c);

/* The gRPC code for a sandbox error (a negative errno), the one rule by which sandbox and
 * VMM failures reach the orchestrator:
 *   -EINVAL -EBADMSG -EPROTO -EILSEQ -EOVERFLOW -EDOM   InvalidArgument
 *   -ENOENT -ESRCH                                      NotFound
 *   -EEXIST                                             AlreadyExists
 *   -EBUSY -ENOTSUP (-EOPNOTSUPP) -EALREADY -ESTALE     FailedPrecondition (e.g. a vPCI
 *                                                       device that cannot migrate)
 *   -EPERM -EACCES                                      PermissionDenied
 *   -ENOMEM -ENOSPC -EMFILE -ENFILE -E2BIG -EMSGSIZE    ResourceExhausted
 *   -ETIMEDOUT                                          DeadlineExceeded
 *   -ECANCELED                                          Cancelled
 *   -ENOSYS                                             Unimplemented
 *   -EPIPE -ECONNRESET -ECONNREFUSED -ENOTCONN          Unavailable
 *   anything else                                       Unknown (hcsshim's untagged errors) */
enum mig_code mig_code_from_errno(int neg_errno);

/* ---- session states (hcsshim state.go, same numbers and names) ---- */

enum mig_state {
	MIG_STATE_IDLE = 0,
	MIG_STATE_SOURCE_PREPARED = 1,
	MIG_STATE_SOURCE_EXPORTED = 2,
	MIG_STATE_DESTINATION_IMPORTED = 3,
	MIG_STATE_DESTINATION_PREPARED = 4,
	MIG_STATE_SOCKET_WAITING = 5,
	MIG_STATE_SOCKET_READY = 6,
	MIG_STATE_TRANSFERRING = 7,
	MIG_STATE_TRANSFER_COMPLETED = 8,
	MIG_STATE_FINALIZED = 9,
	MIG_STATE_CANCELLED = 10,
	MIG_STATE_CANCELLING = 11,
	MIG_STATE_FAILED = 12,
};
#define MIG_STATE_COUNT 13

/* "Idle", "SourcePrepared", ... ; "Unknown" out of range. */
const char *mig_state_name(enum mig_state s);

/* FinalizeAction (pkg/migration). */
enum mig_finalize_action {
	MIG_FINALIZE_UNSPECIFIED = 0,
	MIG_FINALIZE_STOP = 1,
	MIG_FINALIZE_RESUME = 2,
};

/* ---- the sandbox interface: what the controller needs from the VM and pod controllers ----
 *
 * Implemented by the daemon over its controllers (host/ctrl/) and the VMM (host/vmm/vmm.h).
 * Every verb but vm_state is asynchronous with vmm.h's contract: it either returns a negative
 * errno with e filled and never calls back, or returns 0 and later calls `done` exactly once,
 * from the loop, never from inside the call that started it.  Errors are negative errnos
 * mapped by mig_code_from_errno, with a message that names what failed ("pod `p1`: vPCI device
 * `x` cannot migrate").  At most one verb is outstanding at a time, except that `cancel` may
 * come while `mig_start` or `mig_transfer` runs and must make it finish (with an error) soon.
 * The controller never frees the sandbox.  When the sandbox goes away it completes every verb
 * still outstanding (with -ECANCELED), so nothing the controller handed it is left waiting; a
 * completion that arrives after migration_free is ignored. */

/* Completions; e describes a failure and is valid only during the call. */
typedef void (*migration_sb_done_fn)(void *cookie, int status, const struct err *e);
/* save: the envelope Any (type URL and bytes, valid during the call). */
typedef void (*migration_sb_save_fn)(void *cookie, int status, const struct err *e,
                                     const char *type_url, const uint8_t *value, size_t len);

/* One imported container: its id on the source and the id of its pod (a pod's sandbox
 * container has the pod's id). */
struct migration_container {
	const char *id;
	const char *pod_id;
};
/* import: the containers now held frozen, waiting for their patch (valid during the call). */
typedef void (*migration_sb_import_fn)(void *cookie, int status, const struct err *e,
                                       const struct migration_container *containers, size_t n);

/* What the sandbox's VM is, for Finalize's reconciliation (hcsshim §4.2). */
enum migration_vm_state {
	MIGRATION_VM_NOT_CREATED = 0, /* no VM yet: a fresh destination */
	MIGRATION_VM_ACTIVE,          /* created, running or migrating */
	MIGRATION_VM_FINALIZED,       /* a RESUME finalize has been applied to the VMM */
	MIGRATION_VM_TERMINATED,      /* gone (a STOP finalize, a terminate, or an exit) */
};

/* ---- a destination CreateTask, as the Task service hands it to migration_patch ---- */
struct migration_kv {
	const char *key, *value;
};
/* One containerd rootfs mount (CreateTaskRequest.rootfs). */
struct migration_mount {
	const char *type, *source, *target;
	const char *const *options;
	size_t n_options;
};
/* An explicit host-path mapping: a path the source used -> the path to use here (ferry). */
struct migration_repath {
	const char *from, *to;
};
struct migration_patch_req {
	const char *id;     /* the new container id (CreateTaskRequest.id); required */
	const char *bundle; /* its bundle on this host */
	/* the OCI spec's annotations; NULL means the spec has none ("annotations are
	 * required"), an empty non-NULL array is an empty map */
	const struct migration_kv *annotations;
	size_t n_annotations;
	const struct migration_mount *rootfs;
	size_t n_rootfs;
	const char *stdin_path, *stdout_path, *stderr_path;
	bool terminal;
	const char *netns; /* the network namespace in the spec (the sandbox container's) */
	const struct migration_repath *repaths;
	size_t n_repaths;
};
/* What the sandbox's patch verb gets for one container. */
struct migration_patch {
	const struct migration_patch_req *req;
	const char *source_id; /* the container's id on the source */
	const char *pod_id;    /* its pod's current id here */
	bool is_sandbox;       /* the pod's sandbox container: the pod takes req->id as its id */
};

struct migration_sandbox_ops {
	/* Synchronous. */
	enum migration_vm_state (*vm_state)(void *sb);

	/* Source.  init_source: the VMM's mig_init_source (opts never NULL).  On failure
	 * nothing changed. */
	int (*init_source)(void *sb, const struct vmm_mig_options *opts, migration_sb_done_fn done,
	                   void *cookie, struct err *e);
	/* save: freeze and save every controller and return the sandbox envelope (an Any of
	 * MIGRATION_ENVELOPE_TYPE_URL).  Contract: on failure every controller this call froze
	 * is unfrozen again before `done` (hcsshim leaves a partial export frozen, §10). */
	int (*save)(void *sb, migration_sb_save_fn done, void *cookie, struct err *e);

	/* Destination.  import: decode the envelope Any (type_url is always
	 * MIGRATION_ENVELOPE_TYPE_URL; value/len its bytes, e.g. for envelope_save_decode) and
	 * import every controller, frozen, atomically (on failure nothing was applied); report
	 * the containers.  Bad bytes are -EBADMSG or -EINVAL (InvalidArgument) naming payload,
	 * field and value; a size limit is -E2BIG (ResourceExhausted). */
	int (*import)(void *sb, const char *sandbox_id, const char *type_url, const uint8_t *value,
	              size_t len, migration_sb_import_fn done, void *cookie, struct err *e);
	/* patch: rebind one imported container's host resources (bundle, stdio, every SCSI
	 * disk from the rootfs mounts or the explicit repaths, the network namespace of a
	 * sandbox container) and re-key it to req->id.  On failure nothing changed. */
	int (*patch)(void *sb, const struct migration_patch *p, migration_sb_done_fn done,
	             void *cookie, struct err *e);
	/* prepare_dest: create the VM ready to receive (vmm mig_prepare_dest with the source's
	 * compatibility blob), named vm_id ("<sandbox id>@vm"); on failure nothing was created,
	 * so it can be retried. */
	int (*prepare_dest)(void *sb, const char *vm_id, const struct vmm_mig_options *opts,
	                    migration_sb_done_fn done, void *cookie, struct err *e);
	/* patch_vm: grant the created VM access to its disks (hcsshim's vm.Patch).  May be
	 * NULL (nothing to do); a failure poisons the session. */
	int (*patch_vm)(void *sb, migration_sb_done_fn done, void *cookie, struct err *e);

	/* Both sides.  mig_start: take the connected migration socket (ownership passes in
	 * every case, even on failure) and the session's uint32 (migration_session_u32); the
	 * source starts the migration, the destination starts its VM to receive.  mig_transfer:
	 * move the memory; done when it completed or failed (or was cancelled). */
	int (*mig_start)(void *sb, int sock, uint32_t session, migration_sb_done_fn done,
	                 void *cookie, struct err *e);
	int (*mig_transfer)(void *sb, migration_sb_done_fn done, void *cookie, struct err *e);
	/* finalize: the VMM's mig_finalize (resume or stop). */
	int (*finalize)(void *sb, bool resume, migration_sb_done_fn done, void *cookie,
	                struct err *e);
	/* resume: after a RESUME finalize, bring the VM and every pod back (destination: accept
	 * the guest, re-listen stdio, republish TaskCreate; source: rebuild the bridge and
	 * unfreeze).  Idempotent per controller (a controller that is not frozen is a no-op), so
	 * a failed resume can be retried. */
	int (*resume)(void *sb, bool destination, migration_sb_done_fn done, void *cookie,
	              struct err *e);
	/* terminate: stop a VM that a RESUME finalize already let run (STOP after RESUME). */
	int (*terminate)(void *sb, migration_sb_done_fn done, void *cookie, struct err *e);
	/* cancel: the VMM's mig_cancel: stop a transfer in progress and release the socket.
	 * -EALREADY when there is nothing left to cancel (the transfer already ended). */
	int (*cancel)(void *sb, migration_sb_done_fn done, void *cookie, struct err *e);
	/* abort (destination): the migration will not complete here: discard the VM if one was
	 * created, and release every imported container with a synthetic exit (TaskExit
	 * published for those a CreateTask patched) so Delete works. */
	int (*abort)(void *sb, migration_sb_done_fn done, void *cookie, struct err *e);
};

/* How RegisterDuplicateSocket turns protocol_info into a socket.  `check` validates the bytes
 * alone (before the session check, as hcsshim's size check); `take` makes the socket (after
 * the state checks).  Both return a negative errno with e filled on failure (reported as
 * InvalidArgument); take returns the new fd.  The Linux default is dupsock.h; the Windows half
 * (WSASocketW over a WSAPROTOCOL_INFOW blob) plugs in here. */
struct migration_socket_ops {
	int (*check)(const uint8_t *info, size_t len, void *ud, struct err *e);
	int (*take)(const uint8_t *info, size_t len, void *ud, struct err *e);
	void *ud;
};

struct migration_config {
	const struct migration_sandbox_ops *ops;   /* required, every verb but patch_vm */
	void *sb;                                  /* the sandbox, borrowed */
	const struct migration_socket_ops *socket; /* NULL: dupsock with socket_policy */
	struct dupsock_policy socket_policy;       /* borrowed; zero: own euid and root */
	size_t notify_cap;                         /* log entries per session; 0: default */
};

/* A new idle controller on `loop`; cfg is copied.  NULL with e filled (-EINVAL) when an
 * operation is missing. */
struct migration *migration_new(struct ev_loop *loop, const struct migration_config *cfg,
                                struct err *e);

/* Free the controller: calls still queued are dropped without completion, a registered
 * socket is closed, the notification log is closed (subscribers drain and end).  NULL-safe,
 * safe from inside a completion callback. */
void migration_free(struct migration *m);

/* ---- the calls (one per RPC; strings may be NULL, meaning "") ---- */

typedef void (*migration_done_fn)(struct migration *m, const struct mig_status *st, void *arg);
/* PrepareAndExportSandbox / ExportState: the envelope Any on success (valid during the call). */
typedef void (*migration_export_fn)(struct migration *m, const struct mig_status *st,
                                    const char *type_url, const uint8_t *value, size_t len,
                                    void *arg);
/* Notifications: the subscription on success (owned by the caller's stream: detach it with
 * mig_notify_unsubscribe when the stream goes away). */
typedef void (*migration_subscribe_fn)(struct migration *m, const struct mig_status *st,
                                       struct mig_notify_sub *sub, void *arg);

/* PrepareAndExportSandbox: PrepareSource then ExportState in one turn.  opts NULL means
 * default options. */
void migration_prepare_and_export(struct migration *m, const char *session_id,
                                  const struct vmm_mig_options *opts, migration_export_fn done,
                                  void *arg);
/* Its two halves, for callers that want them apart (hcsshim's PrepareSource/ExportState). */
void migration_prepare_source(struct migration *m, const char *session_id,
                              const struct vmm_mig_options *opts, migration_done_fn done,
                              void *arg);
void migration_export_state(struct migration *m, const char *session_id, migration_export_fn done,
                            void *arg);
/* ImportSandbox: type_url/value are the request's config Any (value NULL: no config). */
void migration_import(struct migration *m, const char *session_id, const char *sandbox_id,
                      const char *type_url, const uint8_t *value, size_t len,
                      migration_done_fn done, void *arg);
/* PatchResourcePaths: from the Task service's Create when the spec carries
 * MIGRATION_ANN_SOURCE_CONTAINER_ID; req NULL is "request is required".  No session id (the
 * request comes from the task API).  Deep-copied. */
void migration_patch(struct migration *m, const struct migration_patch_req *req,
                     migration_done_fn done, void *arg);
/* PrepareSandbox. */
void migration_prepare_dest(struct migration *m, const char *session_id,
                            const struct vmm_mig_options *opts, migration_done_fn done, void *arg);
/* CreateDuplicateSocket. */
void migration_register_socket(struct migration *m, const char *session_id,
                               const uint8_t *protocol_info, size_t len, migration_done_fn done,
                               void *arg);
/* TransferSandbox: returns once the transfer is claimed; timeout_ns <= 0 means
 * MIGRATION_SOCKET_TIMEOUT_NS and bounds only the wait for the socket. */
void migration_transfer(struct migration *m, const char *session_id, int64_t timeout_ns,
                        migration_done_fn done, void *arg);
/* FinalizeSandbox (action as on the wire: values other than 1 and 2 are refused). */
void migration_finalize(struct migration *m, const char *session_id, int action,
                        migration_done_fn done, void *arg);
/* Cancel. */
void migration_cancel(struct migration *m, const char *session_id, migration_done_fn done,
                      void *arg);
/* Cleanup. */
void migration_cleanup(struct migration *m, const char *session_id, migration_done_fn done,
                       void *arg);
/* Notifications: subscribe to the session's log.  ops (required, copied) and ud as
 * mig_notify_subscribe; deliveries start after `done` has returned. */
void migration_subscribe(struct migration *m, const char *session_id,
                         const struct mig_notify_sub_ops *ops, void *ud,
                         migration_subscribe_fn done, void *arg);

/* ---- from the rest of the daemon ---- */

/* A VMM notification (vmm_events.on_notification, forwarded by the VM controller): appended to
 * the session's log; dropped (not kept for a later session) when no session is active. */
void migration_notify(struct migration *m, const struct vmm_notification *n);

/* Task service guard (called synchronously before Kill, Delete and State). */
enum migration_task_op {
	MIGRATION_TASK_KILL,
	MIGRATION_TASK_DELETE,
	MIGRATION_TASK_STATE,
};
enum migration_guard {
	MIGRATION_GUARD_ALLOW = 0, /* no session: go ahead */
	MIGRATION_GUARD_CACHED,    /* a session is active: answer State from cached state */
	MIGRATION_GUARD_REFUSE,    /* a session is active: fail with *st (FailedPrecondition,
	                              naming the session and its state) */
};
enum migration_guard migration_task_guard(const struct migration *m, enum migration_task_op op,
                                          struct mig_status *st);

/* ---- queries ---- */
enum mig_state migration_state(const struct migration *m);
const char *migration_session_id(const struct migration *m); /* "" when idle */
enum vmm_origin migration_origin(const struct migration *m); /* UNSPECIFIED when idle */
/* The session's log (NULL when idle): for introspection, e.g. ferryctl and tests. */
struct mig_notify *migration_log(const struct migration *m);

/* hcsshim's sessionIDToUint32 (§2.4): a session id in the exact 36-character GUID form is
 * lower-cased first; then the first 4 bytes of SHA-256 of the UTF-8 bytes, big-endian. */
uint32_t migration_session_u32(const char *session_id);

#endif
