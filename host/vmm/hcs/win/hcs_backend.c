/* The hcs VMM backend (host/vmm/hcs/hcs.h): vmm.h's verbs as chains of HCS calls.  Each verb
 * checks the state table (hcs_vmstate.h), issues its first HCS call at once (a call HCS refuses
 * fails the verb synchronously, without a callback), and continues from deliver() as each
 * operation completes on the loop (hcs_link.h).  The user's callbacks are always the last thing
 * a handler does, or are followed only by a check of the link (the VM may have been freed by
 * the callback; the link outlives it while a delivery is running). */
#include "host/vmm/hcs/hcs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "host/vmm/hcs/hcs_doc.h"
#include "host/vmm/hcs/hcs_hresult.h"
#include "host/vmm/hcs/hcs_machine.h"
#include "host/vmm/hcs/hcs_notify.h"
#include "host/vmm/hcs/hcs_unicode.h"
#include "host/vmm/hcs/hcs_vmstate.h"
#include "host/vmm/hcs/win/hcs_api.h"
#include "host/vmm/hcs/win/hcs_link.h"

/* Messages are bounded on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

enum step {
	STEP_CALL = 1, /* the verb's one HCS call */
	STEP_CREATE,   /* start / prepare_dest: HcsCreateComputeSystem */
	STEP_PROPS,    /* ... the basic properties (RuntimeId) */
	STEP_START,    /* start: HcsStartComputeSystem */
	STEP_COMPAT,   /* mig_init_source: the compatibility-info query */
	STEP_NOOP,     /* local: complete with success, nothing to do at HCS */
	STEP_EXIT,     /* local: a VM that never ran is gone (stop of a created-only VM) */
	STEP_FALLBACK, /* local: mig_cancel through HcsCancelOperation; hr = -errno or 0 */
};

/* The operation-based HCS calls, one table: name, and how the call is made (issue()). */
enum call {
	CALL_CREATE,
	CALL_START,
	CALL_SHUTDOWN,
	CALL_TERMINATE,
	CALL_MODIFY,
	CALL_PROPS,
	CALL_LM_INIT,
	CALL_LM_START,
	CALL_LM_TRANSFER,
	CALL_LM_FINALIZE,
	CALL_LM_CANCEL,
};

static const char *const call_names[] = {
    [CALL_CREATE] = "HcsCreateComputeSystem",
    [CALL_START] = "HcsStartComputeSystem",
    [CALL_SHUTDOWN] = "HcsShutDownComputeSystem",
    [CALL_TERMINATE] = "HcsTerminateComputeSystem",
    [CALL_MODIFY] = "HcsModifyComputeSystem",
    [CALL_PROPS] = "HcsGetComputeSystemProperties",
    [CALL_LM_INIT] = "HcsInitializeLiveMigrationOnSource",
    [CALL_LM_START] = "HcsStartLiveMigrationOnSource",
    [CALL_LM_TRANSFER] = "HcsStartLiveMigrationTransfer",
    [CALL_LM_FINALIZE] = "HcsFinalizeLiveMigration",
    [CALL_LM_CANCEL] = "HcsCancelLiveMigration",
};

struct pending {
	bool busy;
	vmm_done_fn done;
	void *arg;
	enum call call; /* the HCS call in flight, for messages */
	bool resume;    /* mig_finalize */
	bool op_done;   /* stop / finalize STOP: HCS accepted, waiting for the exit */
	unsigned ctrl, lun;
	struct vmm_disk disk; /* scsi_attach (strings owned) */
	bool detach;
	json_t
	    *doc; /* mig_prepare_dest: the document with MigrationOptions, the VM's once created */
};

struct hcs_vm {
	struct vmm base;
	struct ev_loop *loop;
	struct hcs_link *link;
	struct vmm_events ev;
	char *id;
	json_t *doc; /* the ComputeSystem document as it is now */
	bool incoming;
	enum vmm_origin origin;
	enum hcs_vm_state state;
	HCS_SYSTEM sys;
	bool callback_ref; /* a link reference held for HcsSetComputeSystemCallback */
	bool exited;
	char transport[VSOCK_ADDR_STR_MAX];
	struct buf compat;
	struct err compat_err; /* code != 0: the compatibility query failed */
	SOCKET sock;
	struct pending pend[HCS_VERBS];
};

static const struct vmm_ops hcs_ops;

static const struct hcs_api *api(const struct hcs_vm *vm)
{
	return hcs_link_api(vm->link);
}

static enum vmm_origin own_origin(const struct hcs_vm *vm)
{
	return vm->origin ? vm->origin : vm->incoming ? VMM_ORIGIN_DESTINATION : VMM_ORIGIN_SOURCE;
}

static void close_socket(struct hcs_vm *vm)
{
	if (vm->sock != INVALID_SOCKET) {
		closesocket(vm->sock);
		vm->sock = INVALID_SOCKET;
	}
}

static void free_disk(struct vmm_disk *d)
{
	free((char *)d->host_path);
	free((char *)d->type);
	memset(d, 0, sizeof(*d));
}

/* Release what a verb slot owns and clear it. */
static void clear_pending(struct pending *p)
{
	free_disk(&p->disk);
	json_decref(p->doc);
	memset(p, 0, sizeof(*p));
}

/* Complete verb v: clear its slot first (the callback may start the next one), then call
 * back.  The VM may be gone when this returns. */
static void finish(struct hcs_vm *vm, enum hcs_vm_verb v, int status, const struct err *e)
{
	struct pending p = vm->pend[v];
	clear_pending(&vm->pend[v]);
	if (p.done)
		p.done(&vm->base, status, e, p.arg);
}

/* Issue one operation-based call for (verb, step) with options (UTF-8, may be NULL) and, for
 * the live-migration start calls, the socket resource.  0 when HCS accepted it (deliver()
 * continues), or -errno with e filled. */
static int issue(struct hcs_vm *vm, enum hcs_vm_verb verb, int step, enum call c,
                 const struct buf *opts, struct err *e)
{
	const struct hcs_api *a = api(vm);
	struct hcs_msg *m = hcs_link_op_new(vm->link, verb, step, e);
	if (!m)
		return e->code;
	wchar_t *w = opts ? (wchar_t *)hcs_unicode_to_utf16((const char *)buf_head(opts),
	                                                    buf_avail(opts), NULL)
	                  : NULL;
	HRESULT hr = S_OK;
	const char *what = call_names[c];
	bool socket = c == CALL_LM_START || (c == CALL_START && verb == HCS_VERB_MIG_START);
	if (socket) {
		hr = a->HcsAddResourceToOperation(m->op, HCS_RESOURCE_TYPE_SOCKET,
		                                  L"" HCS_LIVE_MIGRATION_SOCKET_URI,
		                                  (HANDLE)vm->sock);
		if (FAILED(hr))
			what = "HcsAddResourceToOperation";
	}
	if (SUCCEEDED(hr)) {
		switch (c) {
		case CALL_CREATE: {
			wchar_t *id = (wchar_t *)hcs_unicode_to_utf16(vm->id, strlen(vm->id), NULL);
			hr = a->HcsCreateComputeSystem(id, w, m->op, NULL, &vm->sys);
			free(id);
			break;
		}
		case CALL_START:
			hr = a->HcsStartComputeSystem(vm->sys, m->op, w);
			break;
		case CALL_SHUTDOWN:
			hr = a->HcsShutDownComputeSystem(vm->sys, m->op, w);
			break;
		case CALL_TERMINATE:
			hr = a->HcsTerminateComputeSystem(vm->sys, m->op, w);
			break;
		case CALL_MODIFY:
			hr = a->HcsModifyComputeSystem(vm->sys, m->op, w, NULL);
			break;
		case CALL_PROPS:
			hr = a->HcsGetComputeSystemProperties(vm->sys, m->op, w);
			break;
		case CALL_LM_INIT:
			hr = a->HcsInitializeLiveMigrationOnSource(vm->sys, m->op, w);
			break;
		case CALL_LM_START:
			hr = a->HcsStartLiveMigrationOnSource(vm->sys, m->op, w);
			break;
		case CALL_LM_TRANSFER:
			hr = a->HcsStartLiveMigrationTransfer(vm->sys, m->op, w);
			break;
		case CALL_LM_FINALIZE:
			hr = a->HcsFinalizeLiveMigration(vm->sys, m->op, w);
			break;
		case CALL_LM_CANCEL:
			hr = a->HcsCancelLiveMigration(vm->sys, m->op, w);
			break;
		}
	}
	free(w);
	if (FAILED(hr)) {
		hcs_link_op_abandon(m);
		return hcs_hresult_err(e, (uint32_t)hr, NULL, 0, what);
	}
	vm->pend[verb].call = c;
	return hcs_link_op_wait(m, e);
}

/* Claim verb v: -EBUSY when one is outstanding, -EINVAL when the state refuses it (e filled);
 * otherwise the action, with the callback recorded. */
static int begin(struct hcs_vm *vm, enum hcs_vm_verb v, bool resume, vmm_done_fn done, void *arg,
                 struct err *e)
{
	if (vm->pend[v].busy)
		return err_set(e, -EBUSY, "%s: already in progress", hcs_vmstate_verb_name(v));
	enum hcs_vm_action a = hcs_vmstate_action(vm->state, v, vm->incoming, resume, e);
	if (a == HCS_ACT_REFUSE)
		return e->code;
	vm->pend[v].busy = true;
	vm->pend[v].done = done;
	vm->pend[v].arg = arg;
	vm->pend[v].resume = resume;
	return a;
}

/* A verb that failed synchronously: free its slot, hand the error back. */
static int refuse(struct hcs_vm *vm, enum hcs_vm_verb v, int r)
{
	clear_pending(&vm->pend[v]);
	return r;
}

static int need_migration(struct hcs_vm *vm, const char *verb, struct err *e)
{
	if (hcs_api_has_migration(api(vm)))
		return 0;
	return err_set(e, -ENOSYS,
	               "%s: computecore.dll lacks the live-migration functions (this Windows "
	               "build cannot live-migrate)",
	               verb);
}

/* ---- creating the compute system (start, mig_prepare_dest) ---- */

static int grant(const char *path, void *arg)
{
	struct hcs_vm *vm = ((void **)arg)[0];
	struct err *e = ((void **)arg)[1];
	wchar_t *id = (wchar_t *)hcs_unicode_to_utf16(vm->id, strlen(vm->id), NULL);
	wchar_t *p = (wchar_t *)hcs_unicode_to_utf16(path, strlen(path), NULL);
	HRESULT hr = api(vm)->HcsGrantVmAccess(id, p);
	free(id);
	free(p);
	if (FAILED(hr)) {
		char what[300];
		snprintf(what, sizeof(what), "HcsGrantVmAccess `%.200s`", path);
		return hcs_hresult_err(e, (uint32_t)hr, NULL, 0, what);
	}
	return 0;
}

/* Grant the VM its disk files, then HcsCreateComputeSystem(doc). */
static int create_system(struct hcs_vm *vm, enum hcs_vm_verb v, const json_t *doc, struct err *e)
{
	void *ctx[2] = {vm, e};
	int r = hcs_machine_each_disk(doc, grant, ctx);
	if (r < 0)
		return r;
	char *text = json_dumps(doc, JSON_COMPACT);
	struct buf b;
	buf_init(&b);
	buf_append(&b, text, strlen(text));
	free(text);
	r = issue(vm, v, STEP_CREATE, CALL_CREATE, &b, e);
	buf_fini(&b);
	return r;
}

/* A creation that failed after HcsCreateComputeSystem: close the system, stay NotCreated so
 * the caller may retry (hcsshim's CreateVM). */
static void undo_create(struct hcs_vm *vm)
{
	if (vm->sys) {
		api(vm)->HcsCloseComputeSystem(vm->sys);
		vm->sys = NULL;
	}
	if (vm->callback_ref) {
		vm->callback_ref = false;
		hcs_link_unref(vm->link);
	}
	vm->transport[0] = '\0';
}

/* The basic properties arrived: RuntimeId -> transport, register for events. */
static int after_props(struct hcs_vm *vm, const struct hcs_msg *m, struct err *e)
{
	struct guid rid;
	int r = hcs_doc_runtime_id((const char *)buf_head(&m->data), buf_avail(&m->data), &rid, e);
	if (r < 0)
		return r;
	struct vsock_addr a = {.kind = VSOCK_KIND_HVSOCK, .vmid = rid};
	vsock_addr_format(&a, vm->transport, sizeof(vm->transport));
	hcs_link_ref(vm->link); /* the callback's context */
	vm->callback_ref = true;
	HRESULT hr = api(vm)->HcsSetComputeSystemCallback(
	    vm->sys, HCS_EVENT_OPTION_ENABLE_LIVE_MIGRATION_EVENTS, vm->link, hcs_link_on_event);
	if (FAILED(hr))
		return hcs_hresult_err(e, (uint32_t)hr, NULL, 0, "HcsSetComputeSystemCallback");
	return 0;
}

/* ---- the verbs ---- */

static int hcs_start(struct vmm *base, vmm_done_fn done, void *arg, struct err *e)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	int r = begin(vm, HCS_VERB_START, false, done, arg, e);
	if (r < 0)
		return r;
	r = create_system(vm, HCS_VERB_START, vm->doc, e);
	return r < 0 ? refuse(vm, HCS_VERB_START, r) : 0;
}

static int hcs_stop(struct vmm *base, bool force, vmm_done_fn done, void *arg, struct err *e)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	int r = begin(vm, HCS_VERB_STOP, false, done, arg, e);
	if (r < 0)
		return r;
	if (r == HCS_ACT_NOOP || vm->state == HCS_VM_DST_CREATED) {
		/* never started (hcsshim's TerminateVM skips HCS), or already gone */
		bool gone = vm->exited || vm->state == HCS_VM_TERMINATED;
		undo_create(vm);
		vm->state = HCS_VM_TERMINATED;
		hcs_link_post_local(vm->link, HCS_VERB_STOP, gone ? STEP_NOOP : STEP_EXIT, 0);
		return 0;
	}
	r = issue(vm, HCS_VERB_STOP, STEP_CALL, force ? CALL_TERMINATE : CALL_SHUTDOWN, NULL, e);
	return r < 0 ? refuse(vm, HCS_VERB_STOP, r) : 0;
}

static int scsi(struct hcs_vm *vm, unsigned controller, unsigned lun, const struct vmm_disk *d,
                vmm_done_fn done, void *arg, struct err *e)
{
	struct buf b;
	buf_init(&b);
	int r = hcs_doc_scsi_modify(&b, controller, lun, d, e);
	if (r == 0)
		r = begin(vm, HCS_VERB_SCSI, false, done, arg, e);
	if (r < 0) {
		buf_fini(&b);
		return r;
	}
	struct pending *p = &vm->pend[HCS_VERB_SCSI];
	p->ctrl = controller;
	p->lun = lun;
	p->detach = d == NULL;
	if (d) {
		p->disk.host_path = xstrdup(d->host_path);
		p->disk.type = d->type ? xstrdup(d->type) : NULL;
		p->disk.read_only = d->read_only;
		bool grant_it = !d->type || strcmp(d->type, "PassThru") == 0 ||
		                strcmp(d->type, "VirtualDisk") == 0;
		void *ctx[2] = {vm, e};
		if (grant_it && (r = grant(d->host_path, ctx)) < 0) {
			buf_fini(&b);
			return refuse(vm, HCS_VERB_SCSI, r);
		}
	}
	r = issue(vm, HCS_VERB_SCSI, STEP_CALL, CALL_MODIFY, &b, e);
	buf_fini(&b);
	return r < 0 ? refuse(vm, HCS_VERB_SCSI, r) : 0;
}

static int hcs_scsi_attach(struct vmm *base, unsigned controller, unsigned lun,
                           const struct vmm_disk *disk, vmm_done_fn done, void *arg, struct err *e)
{
	if (!disk)
		return err_set(e, -EINVAL, "scsi_attach: no disk");
	return scsi((struct hcs_vm *)base, controller, lun, disk, done, arg, e);
}

static int hcs_scsi_detach(struct vmm *base, unsigned controller, unsigned lun, vmm_done_fn done,
                           void *arg, struct err *e)
{
	return scsi((struct hcs_vm *)base, controller, lun, NULL, done, arg, e);
}

static json_t *hcs_describe(struct vmm *base, struct err *e)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	json_t *m = hcs_machine_new(vm->id, vm->doc);
	if (!m)
		err_set(e, -ENOMEM, "describe: cannot build the machine description");
	return m;
}

static const char *hcs_guest_transport(struct vmm *base)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	return vm->transport[0] ? vm->transport : NULL;
}

static int hcs_mig_init_source(struct vmm *base, const struct vmm_mig_options *opts,
                               vmm_done_fn done, void *arg, struct err *e)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	int r = need_migration(vm, "mig_init_source", e);
	if (r < 0)
		return r;
	struct buf b;
	buf_init(&b);
	r = hcs_doc_init_options(&b, opts, VMM_ORIGIN_SOURCE, NULL, 0, e);
	if (r < 0) {
		buf_fini(&b);
		return err_prefix(e, "mig_init_source: convert migration initialize options");
	}
	r = begin(vm, HCS_VERB_MIG_INIT_SOURCE, false, done, arg, e);
	if (r >= 0)
		r = issue(vm, HCS_VERB_MIG_INIT_SOURCE, STEP_CALL, CALL_LM_INIT, &b, e);
	buf_fini(&b);
	return r < 0 ? refuse(vm, HCS_VERB_MIG_INIT_SOURCE, r) : 0;
}

static int hcs_mig_compat_info(struct vmm *base, struct buf *out, struct err *e)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	if (hcs_vmstate_action(vm->state, HCS_VERB_MIG_COMPAT_INFO, vm->incoming, false, e) ==
	    HCS_ACT_REFUSE)
		return e->code;
	if (vm->compat_err.code) {
		if (e)
			*e = vm->compat_err;
		return vm->compat_err.code;
	}
	buf_append(out, buf_head(&vm->compat), buf_avail(&vm->compat));
	return 0;
}

static int hcs_mig_prepare_dest(struct vmm *base, const struct vmm_mig_options *opts,
                                const uint8_t *compat, size_t compat_len, vmm_done_fn done,
                                void *arg, struct err *e)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	int r = need_migration(vm, "mig_prepare_dest", e);
	if (r < 0)
		return r;
	struct buf b;
	buf_init(&b);
	r = hcs_doc_init_options(&b, opts, VMM_ORIGIN_DESTINATION, compat, compat_len, e);
	if (r < 0) {
		buf_fini(&b);
		return err_prefix(e, "mig_prepare_dest: convert migration initialize options");
	}
	json_t *doc = hcs_machine_dest_doc(vm->doc, (const char *)buf_head(&b), buf_avail(&b), e);
	buf_fini(&b);
	if (!doc)
		return e->code;
	r = begin(vm, HCS_VERB_MIG_PREPARE_DEST, false, done, arg, e);
	if (r < 0) {
		json_decref(doc);
		return r;
	}
	vm->pend[HCS_VERB_MIG_PREPARE_DEST].doc = doc; /* the VM's once HCS has created it */
	vm->origin = VMM_ORIGIN_DESTINATION;
	r = create_system(vm, HCS_VERB_MIG_PREPARE_DEST, doc, e);
	return r < 0 ? refuse(vm, HCS_VERB_MIG_PREPARE_DEST, r) : 0;
}

static int hcs_mig_start(struct vmm *base, int sock, uint32_t session, vmm_done_fn done, void *arg,
                         struct err *e)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	SOCKET s = (SOCKET)(intptr_t)sock;
	int r = need_migration(vm, "mig_start", e);
	if (r >= 0 && vm->sock != INVALID_SOCKET)
		r = err_set(e, -EBUSY, "mig_start: a migration socket is already attached");
	if (r >= 0)
		r = begin(vm, HCS_VERB_MIG_START, false, done, arg, e);
	if (r < 0) {
		closesocket(s); /* ours in every case */
		return r;
	}
	vm->sock = s;
	struct buf b;
	buf_init(&b);
	bool dest = vm->state == HCS_VM_DST_CREATED;
	hcs_doc_start_options(&b, session, dest);
	r = issue(vm, HCS_VERB_MIG_START, STEP_CALL, dest ? CALL_START : CALL_LM_START, &b, e);
	buf_fini(&b);
	if (r < 0) {
		close_socket(vm);
		return refuse(vm, HCS_VERB_MIG_START, r);
	}
	return 0;
}

static int origin_call(struct hcs_vm *vm, enum hcs_vm_verb v, enum call c, vmm_done_fn done,
                       void *arg, struct err *e)
{
	int r = need_migration(vm, hcs_vmstate_verb_name(v), e);
	if (r >= 0)
		r = begin(vm, v, false, done, arg, e);
	if (r < 0)
		return r;
	struct buf b;
	buf_init(&b);
	hcs_doc_origin_options(&b, own_origin(vm));
	r = issue(vm, v, STEP_CALL, c, &b, e);
	buf_fini(&b);
	return r < 0 ? refuse(vm, v, r) : 0;
}

static int hcs_mig_transfer(struct vmm *base, vmm_done_fn done, void *arg, struct err *e)
{
	return origin_call((struct hcs_vm *)base, HCS_VERB_MIG_TRANSFER, CALL_LM_TRANSFER, done,
	                   arg, e);
}

static int hcs_mig_finalize(struct vmm *base, bool resume, vmm_done_fn done, void *arg,
                            struct err *e)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	int r = need_migration(vm, "mig_finalize", e);
	if (r >= 0)
		r = begin(vm, HCS_VERB_MIG_FINALIZE, resume, done, arg, e);
	if (r < 0)
		return r;
	if (r == HCS_ACT_NOOP) {
		hcs_link_post_local(vm->link, HCS_VERB_MIG_FINALIZE, STEP_NOOP, 0);
		return 0;
	}
	if (vm->state == HCS_VM_FINALIZED) {
		/* a stop after a resume finalize: hcsshim terminates the VM */
		r = issue(vm, HCS_VERB_MIG_FINALIZE, STEP_CALL, CALL_TERMINATE, NULL, e);
		return r < 0 ? refuse(vm, HCS_VERB_MIG_FINALIZE, r) : 0;
	}
	struct buf b;
	buf_init(&b);
	hcs_doc_finalize_options(&b, own_origin(vm), resume);
	r = issue(vm, HCS_VERB_MIG_FINALIZE, STEP_CALL, CALL_LM_FINALIZE, &b, e);
	buf_fini(&b);
	return r < 0 ? refuse(vm, HCS_VERB_MIG_FINALIZE, r) : 0;
}

static int hcs_mig_cancel(struct vmm *base, vmm_done_fn done, void *arg, struct err *e)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	if (api(vm)->HcsCancelLiveMigration)
		return origin_call(vm, HCS_VERB_MIG_CANCEL, CALL_LM_CANCEL, done, arg, e);
	/* no HcsCancelLiveMigration in this computecore.dll: cancel the operation in flight */
	int r = begin(vm, HCS_VERB_MIG_CANCEL, false, done, arg, e);
	if (r < 0)
		return r;
	int n = hcs_link_op_cancel(vm->link, HCS_VERB_MIG_TRANSFER) +
	        hcs_link_op_cancel(vm->link, HCS_VERB_MIG_START);
	hcs_link_post_local(vm->link, HCS_VERB_MIG_CANCEL, STEP_FALLBACK,
	                    n > 0 ? 0 : (uint32_t)-EALREADY);
	return 0;
}

/* ---- completions ---- */

/* The VM is gone (SystemExited, ServiceDisconnect, or a created-only VM closed): complete a
 * stop or finalize STOP waiting for it, then on_exit, once. */
static void exited(struct hcs_vm *vm, int status)
{
	if (vm->exited)
		return;
	vm->exited = true;
	vm->state = HCS_VM_TERMINATED;
	vm->transport[0] = '\0';
	close_socket(vm);
	struct hcs_link *l = vm->link;
	hcs_link_ref(l);
	if (vm->ev.on_exit)
		vm->ev.on_exit(&vm->base, status, vm->ev.arg);
	static const enum hcs_vm_verb waiting[] = {HCS_VERB_STOP, HCS_VERB_MIG_FINALIZE};
	for (size_t i = 0; i < 2 && !hcs_link_closed(l); i++)
		if (vm->pend[waiting[i]].busy && vm->pend[waiting[i]].op_done)
			finish(vm, waiting[i], 0, NULL);
	hcs_link_unref(l);
}

static void on_local(struct hcs_vm *vm, const struct hcs_msg *m)
{
	struct err e;
	err_clear(&e);
	switch (m->step) {
	case STEP_EXIT: {
		struct hcs_link *l = vm->link;
		hcs_link_ref(l);
		exited(vm, 0);
		if (!hcs_link_closed(l))
			finish(vm, (enum hcs_vm_verb)m->verb, 0, NULL);
		hcs_link_unref(l);
		return;
	}
	case STEP_FALLBACK: {
		int status = (int)m->hr;
		close_socket(vm);
		if (status < 0)
			err_set(&e, status,
			        "mig_cancel: nothing in flight to cancel (computecore.dll has no "
			        "HcsCancelLiveMigration)");
		finish(vm, (enum hcs_vm_verb)m->verb, status, status < 0 ? &e : NULL);
		return;
	}
	default:
		finish(vm, (enum hcs_vm_verb)m->verb, 0, NULL);
	}
}

/* A failed operation: clean up what the verb had started, report. */
static void op_failed(struct hcs_vm *vm, const struct hcs_msg *m)
{
	enum hcs_vm_verb v = (enum hcs_vm_verb)m->verb;
	struct err e;
	char what[120];
	snprintf(what, sizeof(what), "%s: %s", hcs_vmstate_verb_name(v),
	         call_names[vm->pend[v].call]);
	int r =
	    hcs_hresult_err(&e, m->hr, (const char *)buf_head(&m->data), buf_avail(&m->data), what);
	if (m->step == STEP_COMPAT) {
		/* the init succeeded; the export that needs the blob will fail (hcsshim: vm.Save) */
		err_prefix(&e, "mig_compat_info");
		vm->compat_err = e;
		finish(vm, v, 0, NULL);
		return;
	}
	if (v == HCS_VERB_START || v == HCS_VERB_MIG_PREPARE_DEST)
		undo_create(vm); /* stay NotCreated: the caller may retry */
	if (v == HCS_VERB_MIG_START || v == HCS_VERB_MIG_CANCEL)
		close_socket(vm);
	if (v == HCS_VERB_STOP && (m->hr & 0x3fffffffu) == (0x80370110u & 0x3fffffffu)) {
		/* HCS_E_SYSTEM_ALREADY_STOPPED: what stop wanted */
		vm->pend[v].op_done = true;
		if (vm->exited)
			finish(vm, v, 0, NULL);
		return;
	}
	finish(vm, v, r, &e);
}

static void on_op(struct hcs_vm *vm, const struct hcs_msg *m)
{
	enum hcs_vm_verb v = (enum hcs_vm_verb)m->verb;
	struct pending *p = &vm->pend[v];
	struct err e;
	err_clear(&e);
	if (FAILED((HRESULT)m->hr)) {
		op_failed(vm, m);
		return;
	}
	int r = 0;
	switch (m->step) {
	case STEP_CREATE: {
		struct buf q;
		buf_init(&q);
		hcs_doc_basic_query(&q);
		r = issue(vm, v, STEP_PROPS, CALL_PROPS, &q, &e);
		buf_fini(&q);
		break;
	}
	case STEP_PROPS:
		r = after_props(vm, m, &e);
		if (r == 0 && v == HCS_VERB_START) {
			r = issue(vm, v, STEP_START, CALL_START, NULL, &e);
			break;
		}
		if (r == 0) { /* mig_prepare_dest: the VM now is what HCS was given */
			json_decref(vm->doc);
			vm->doc = p->doc;
			p->doc = NULL;
			vm->state = hcs_vmstate_next(vm->state, v, false);
			finish(vm, v, 0, NULL);
			return;
		}
		break;
	case STEP_START:
		vm->state = HCS_VM_RUNNING;
		finish(vm, v, 0, NULL);
		return;
	case STEP_COMPAT:
		buf_reset(&vm->compat);
		if (hcs_doc_compat_reply((const char *)buf_head(&m->data), buf_avail(&m->data),
		                         &vm->compat, &vm->compat_err) < 0)
			err_prefix(&vm->compat_err, "mig_compat_info");
		finish(vm, v, 0, NULL);
		return;
	default: /* STEP_CALL */
		switch (v) {
		case HCS_VERB_STOP:
			p->op_done = true;
			if (vm->exited)
				finish(vm, v, 0, NULL);
			return;
		case HCS_VERB_SCSI:
			(void)hcs_machine_scsi_set(vm->doc, p->ctrl, p->lun,
			                           p->detach ? NULL : &p->disk, NULL);
			finish(vm, v, 0, NULL);
			return;
		case HCS_VERB_MIG_INIT_SOURCE: {
			vm->state = HCS_VM_SRC_INITIALIZED;
			vm->origin = VMM_ORIGIN_SOURCE;
			err_clear(&vm->compat_err);
			buf_reset(&vm->compat);
			struct buf q;
			buf_init(&q);
			hcs_doc_compat_query(&q);
			if (issue(vm, v, STEP_COMPAT, CALL_PROPS, &q, &vm->compat_err) < 0) {
				err_prefix(&vm->compat_err, "mig_compat_info");
				buf_fini(&q);
				finish(vm, v, 0, NULL);
				return;
			}
			buf_fini(&q);
			return;
		}
		case HCS_VERB_MIG_FINALIZE:
			close_socket(vm);
			if (p->resume) {
				vm->state = HCS_VM_FINALIZED;
				finish(vm, v, 0, NULL);
				return;
			}
			p->op_done = true; /* STOP: done once the VM has exited */
			if (vm->exited)
				finish(vm, v, 0, NULL);
			return;
		case HCS_VERB_MIG_CANCEL:
			close_socket(vm);
			finish(vm, v, 0, NULL);
			return;
		default: /* mig_start, mig_transfer */
			vm->state = hcs_vmstate_next(vm->state, v, false);
			finish(vm, v, 0, NULL);
			return;
		}
	}
	if (r < 0) {
		if (v == HCS_VERB_START || v == HCS_VERB_MIG_PREPARE_DEST)
			undo_create(vm);
		finish(vm, v, r, &e);
	}
}

static void on_event(struct hcs_vm *vm, const struct hcs_msg *m)
{
	if (m->event == HCS_EVENT_SYSTEM_EXITED) {
		uint32_t hr = 0;
		struct err e;
		if (hcs_doc_exit_status((const char *)buf_head(&m->data), buf_avail(&m->data), &hr,
		                        &e) < 0)
			log_warn("hcs id=%s: exit status unreadable: %s", vm->id, e.msg);
		exited(vm, hr ? hcs_hresult_errno(hr) : 0);
		return;
	}
	if (m->event == HCS_EVENT_SERVICE_DISCONNECT) {
		log_warn("hcs id=%s: lost communication with the compute service", vm->id);
		exited(vm, -ECONNABORTED);
		return;
	}
	/* a live-migration event: dropped as hcsshim drops it when it does not decode */
	struct hcs_mig_info info;
	struct err e;
	if (m->oversize) {
		log_warn("hcs id=%s: migration notification larger than %d bytes dropped", vm->id,
		         HCS_NOTIFY_MAX);
		return;
	}
	if (hcs_notify_parse((const char *)buf_head(&m->data), buf_avail(&m->data), &info, &e) <
	    0) {
		log_warn("hcs id=%s: %s; event dropped", vm->id, e.msg);
		return;
	}
	struct vmm_notification n;
	hcs_to_notification(&info, own_origin(vm), &n);
	if (vm->ev.on_notification)
		vm->ev.on_notification(&vm->base, &n, vm->ev.arg);
}

static void deliver(struct hcs_msg *m, void *arg)
{
	struct hcs_vm *vm = arg;
	if (m->event == HCS_LINK_EVENT_LOCAL)
		on_local(vm, m);
	else if (m->event == 0)
		on_op(vm, m);
	else
		on_event(vm, m);
	hcs_link_msg_free(m);
}

/* ---- life cycle ---- */

static void hcs_free(struct vmm *base)
{
	struct hcs_vm *vm = (struct hcs_vm *)base;
	struct hcs_link *l = vm->link;
	hcs_link_ref(l);
	hcs_link_close(l); /* no more deliveries; operations in flight cancelled */
	const struct hcs_api *a = hcs_link_api(l);
	if (vm->sys) {
		bool ran = vm->state != HCS_VM_NOT_CREATED && vm->state != HCS_VM_DST_CREATED;
		if (ran && !vm->exited) {
			/* kill it, without waiting here: the waiter thread closes the operation */
			struct err e;
			struct hcs_msg *m = hcs_link_op_new(l, -1, 0, &e);
			if (m && SUCCEEDED(a->HcsTerminateComputeSystem(vm->sys, m->op, NULL)))
				(void)hcs_link_op_wait(m, &e);
			else
				hcs_link_op_abandon(m);
		}
		a->HcsCloseComputeSystem(vm->sys); /* no callback after this returns */
	}
	if (vm->callback_ref)
		hcs_link_unref(l);
	close_socket(vm);
	for (int v = 0; v < HCS_VERBS; v++)
		clear_pending(&vm->pend[v]);
	json_decref(vm->doc);
	buf_fini(&vm->compat);
	free(vm->id);
	free(vm);
	hcs_link_unref(l);
}

struct vmm *hcs_vm_create(struct ev_loop *loop, const struct hcs_api *a, const json_t *machine,
                          bool incoming, const struct vmm_events *ev, struct err *e)
{
	const char *id;
	const json_t *doc;
	if (hcs_machine_parse(machine, &id, &doc, e) < 0)
		return NULL;
	struct hcs_vm *vm = xcalloc(1, sizeof(*vm));
	vm->link = hcs_link_new(loop, a, deliver, vm, e);
	if (!vm->link) {
		free(vm);
		return NULL;
	}
	vm->base.ops = &hcs_ops;
	vm->base.backend = "hcs";
	vm->loop = loop;
	if (ev)
		vm->ev = *ev;
	vm->id = xstrdup(id);
	vm->doc = json_deep_copy(doc);
	vm->incoming = incoming;
	vm->state = HCS_VM_NOT_CREATED;
	vm->sock = INVALID_SOCKET;
	buf_init(&vm->compat);
	return &vm->base;
}

static struct vmm *hcs_create(struct ev_loop *loop, const json_t *machine, const char *state_dir,
                              bool incoming, const struct vmm_events *ev, struct err *e)
{
	(void)state_dir;
	struct hcs_api a;
	if (hcs_api_load(&a, NULL, e) < 0)
		return NULL;
	struct vmm *vm = hcs_vm_create(loop, &a, machine, incoming, ev, e);
	hcs_api_release(&a); /* the VM holds its own reference */
	return vm;
}

static const struct vmm_ops hcs_ops = {
    .start = hcs_start,
    .stop = hcs_stop,
    .scsi_attach = hcs_scsi_attach,
    .scsi_detach = hcs_scsi_detach,
    .describe = hcs_describe,
    .guest_transport = hcs_guest_transport,
    .mig_init_source = hcs_mig_init_source,
    .mig_compat_info = hcs_mig_compat_info,
    .mig_prepare_dest = hcs_mig_prepare_dest,
    .mig_start = hcs_mig_start,
    .mig_transfer = hcs_mig_transfer,
    .mig_finalize = hcs_mig_finalize,
    .mig_cancel = hcs_mig_cancel,
    .free = hcs_free,
};

const struct vmm_backend hcs_backend = {"hcs", hcs_create};
