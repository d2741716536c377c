/* Fuzz harness for the migration controller (host/shim/migration): the input is a script of
 * Migration RPCs (with session ids, actions, socket descriptors and timeouts taken from it),
 * VMM notifications, Notifications subscribers that come, stall and go, and a fake sandbox
 * told by the script which verb fails (at once or later), which one hangs until released and
 * what state its VM is in; the controller may be freed at any point.  Invariants: every call
 * completes exactly once and never inside the call that made it (unless the controller was
 * freed first), a status is OK with no message or an error with one, the state is one of the
 * 13, a subscriber is never called after it was detached or ended, and nothing leaks. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "common/log.h"
#include "host/shim/migration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- a scriptable sandbox ---- */

enum { V_PLAIN, V_SAVE, V_IMPORT };

struct pend {
	struct pend *next;
	int kind;
	int status;
	bool held;
	void *cb;
	void *cookie;
};

struct sb {
	struct ev_loop *loop;
	ev_idle idle;
	enum migration_vm_state vm;
	int fail;      /* the next verb's result */
	bool fail_now; /* ... returned at once */
	bool hold;     /* the next verb waits for a release */
	struct pend *pend;
	int sock;
};

static const char *const ids[] = {"", "s", "t", "pod", "c1"};
static const struct migration_container conts[] = {{"pod", "pod"}, {"c1", "pod"}, {"c1", "x"}};

static void finish(struct sb *f, struct pend *p)
{
	struct err e;
	err_clear(&e);
	const struct err *ep = NULL;
	if (p->status < 0) {
		err_set(&e, p->status, "scripted failure");
		ep = &e;
	}
	if (p->kind == V_SAVE)
		((migration_sb_save_fn)p->cb)(p->cookie, p->status, ep,
		                              p->status ? NULL : MIGRATION_ENVELOPE_TYPE_URL,
		                              (const uint8_t *)"\x08\x01", 2);
	else if (p->kind == V_IMPORT)
		((migration_sb_import_fn)p->cb)(p->cookie, p->status, ep, conts,
		                                p->status ? 0 : (size_t)(f->vm % 4));
	else
		((migration_sb_done_fn)p->cb)(p->cookie, p->status, ep);
	free(p);
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	struct sb *f = w->data;
	struct pend **pp = &f->pend;
	while (*pp && (*pp)->held)
		pp = &(*pp)->next;
	if (!*pp) {
		ev_idle_stop(loop, w);
		return;
	}
	struct pend *p = *pp;
	*pp = p->next;
	finish(f, p);
}

static int verb(struct sb *f, int kind, void *cb, void *cookie, struct err *e)
{
	int fail = f->fail;
	bool now = f->fail_now, hold = f->hold;
	f->fail = 0;
	f->fail_now = f->hold = false;
	if (fail && now)
		return err_set(e, fail, "scripted refusal");
	struct pend *p = calloc(1, sizeof(*p));
	assert(p);
	*p = (struct pend){f->pend, kind, fail, hold, cb, cookie};
	f->pend = p;
	ev_idle_start(f->loop, &f->idle);
	return 0;
}

#define PLAIN(name, ...)                                                                           \
	static int name(void *sb, ##__VA_ARGS__, migration_sb_done_fn done, void *cookie,          \
	                struct err *e)                                                             \
	{                                                                                          \
		return verb(sb, V_PLAIN, (void *)done, cookie, e);                                 \
	}

static enum migration_vm_state vm_state(void *sb)
{
	return ((struct sb *)sb)->vm;
}
#pragma GCC diagnostic ignored "-Wunused-parameter"
PLAIN(init_source, const struct vmm_mig_options *o)
PLAIN(patch, const struct migration_patch *p)
PLAIN(prepare_dest, const char *id, const struct vmm_mig_options *o)
PLAIN(patch_vm)
PLAIN(mig_transfer)
PLAIN(finalize, bool resume)
PLAIN(resume, bool dest)
PLAIN(terminate)
PLAIN(cancel)
PLAIN(abort_)

static int save(void *sb, migration_sb_save_fn done, void *cookie, struct err *e)
{
	return verb(sb, V_SAVE, (void *)done, cookie, e);
}

static int import(void *sb, const char *id, const char *type_url, const uint8_t *v, size_t n,
                  migration_sb_import_fn done, void *cookie, struct err *e)
{
	return verb(sb, V_IMPORT, (void *)done, cookie, e);
}

static int mig_start(void *sb, int sock, uint32_t session, migration_sb_done_fn done, void *cookie,
                     struct err *e)
{
	struct sb *f = sb;
	if (f->sock >= 0)
		close(f->sock);
	f->sock = sock;
	return verb(sb, V_PLAIN, (void *)done, cookie, e);
}

static const struct migration_sandbox_ops ops = {
    vm_state,  init_source,  save,     import, patch,     prepare_dest, patch_vm,
    mig_start, mig_transfer, finalize, resume, terminate, cancel,       abort_,
};

/* ---- calls and subscribers ---- */

struct rec {
	int done;
	int sync; /* set while the call that made it runs */
};

static void check_status(const struct mig_status *st)
{
	assert((unsigned)st->code <= MIG_CODE_UNAUTHENTICATED);
	assert((st->code == MIG_CODE_OK) == (st->msg[0] == '\0'));
}

static void on_done(struct migration *m, const struct mig_status *st, void *arg)
{
	(void)m;
	struct rec *r = arg;
	assert(!r->sync && r->done == 0);
	r->done++;
	check_status(st);
}

static void on_export(struct migration *m, const struct mig_status *st, const char *type_url,
                      const uint8_t *value, size_t len, void *arg)
{
	assert((st->code == MIG_CODE_OK) == (type_url != NULL));
	assert(!type_url || (value && len == 2));
	on_done(m, st, arg);
}

struct sub {
	struct mig_notify_sub *s;
	bool gone;
	uint32_t last;
	int busy; /* answer BUSY this many times */
	bool used;
	struct rec r;
};

static int deliver(struct mig_notify_sub *s, const struct mig_notify_msg *m, void *ud)
{
	struct sub *x = ud;
	assert(!x->gone && s == x->s && m->message_id > x->last);
	if (x->busy > 0) {
		x->busy--;
		return MIG_NOTIFY_BUSY;
	}
	x->last = m->message_id;
	return 0;
}

static void end(struct mig_notify_sub *s, void *ud)
{
	struct sub *x = ud;
	assert(!x->gone && s == x->s);
	x->gone = true;
}

static const struct mig_notify_sub_ops sub_ops = {deliver, end};

static void on_sub(struct migration *m, const struct mig_status *st, struct mig_notify_sub *s,
                   void *arg)
{
	struct sub *x = arg;
	on_done(m, st, &x->r);
	assert((st->code == MIG_CODE_OK) == (s != NULL));
	x->s = s;
	x->gone = s == NULL;
}

#define MAX_CALLS 64
#define MAX_SUBS  4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *quiet;
	if (!quiet)
		quiet = fopen("/dev/null", "w");
	log_set_file(quiet);
	struct ev_loop *loop = ev_loop_new(0);
	struct sb f = {.loop = loop, .vm = MIGRATION_VM_NOT_CREATED, .sock = -1};
	ev_idle_init(&f.idle, on_idle);
	f.idle.data = &f;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	struct migration_config cfg = {.ops = &ops, .sb = &f, .notify_cap = 8};
	struct err e;
	err_clear(&e);
	struct migration *m = migration_new(loop, &cfg, &e);
	assert(m);
	static struct rec calls[MAX_CALLS];
	static struct sub subs[MAX_SUBS];
	memset(calls, 0, sizeof(calls));
	memset(subs, 0, sizeof(subs));
	size_t nc = 0;
	for (size_t i = 0; i + 1 < size && nc < MAX_CALLS; i += 2) {
		uint8_t op = data[i], arg = data[i + 1];
		const char *sid = ids[arg % 5];
		struct rec *r = &calls[nc];
		r->sync = 1;
		switch (m ? op % 20 : 100) {
		case 0:
			migration_prepare_and_export(m, sid, NULL, on_export, r), nc++;
			break;
		case 1:
			migration_prepare_source(m, sid, NULL, on_done, r), nc++;
			break;
		case 2:
			migration_export_state(m, sid, on_export, r), nc++;
			break;
		case 3:
			migration_import(m, sid, "sb",
			                 (arg & 8) ? "x" : MIGRATION_ENVELOPE_TYPE_URL,
			                 (arg & 16) ? NULL : data, i, on_done, r),
			    nc++;
			break;
		case 4: {
			struct migration_kv ann[2] = {
			    {MIGRATION_ANN_SOURCE_CONTAINER_ID, ids[arg % 5]},
			    {MIGRATION_ANN_CONTAINER_TYPE, (arg & 32) ? "sandbox" : "container"}};
			struct migration_patch_req req = {.id = ids[(arg >> 3) % 5],
			                                  .annotations = (arg & 128) ? NULL : ann,
			                                  .n_annotations = (arg & 64) ? 2 : 1};
			migration_patch(m, (arg & 0xe7) == 0xe7 ? NULL : &req, on_done, r), nc++;
			break;
		}
		case 5:
			migration_prepare_dest(m, sid, NULL, on_done, r), nc++;
			break;
		case 6: {
			uint8_t info[DUPSOCK_INFO_LEN];
			struct dupsock_info di = {.pid = (uint32_t)getpid(),
			                          .fd = (uint32_t)((arg & 8) ? sv[1] : sv[0])};
			dupsock_info_encode(&di, info);
			migration_register_socket(m, sid, info, (arg & 16) ? 3 : sizeof(info),
			                          on_done, r),
			    nc++;
			break;
		}
		case 7:
			migration_transfer(m, sid, (arg & 8) ? 1000 : 0, on_done, r), nc++;
			break;
		case 8:
			migration_finalize(m, sid, (arg >> 3) % 4, on_done, r), nc++;
			break;
		case 9:
			migration_cancel(m, sid, on_done, r), nc++;
			break;
		case 10:
			migration_cleanup(m, sid, on_done, r), nc++;
			break;
		case 11: {
			struct sub *x = &subs[arg % MAX_SUBS];
			if (x->used && (!x->r.done || !x->gone))
				break; /* its subscription is on its way or still attached */
			memset(x, 0, sizeof(*x));
			x->used = true;
			x->busy = arg >> 5;
			x->r.sync = 1;
			migration_subscribe(m, sid, &sub_ops, x, on_sub, x);
			x->r.sync = 0;
			break;
		}
		case 12: {
			struct sub *x = &subs[arg % MAX_SUBS];
			if (x->s && !x->gone) {
				if (arg & 4) {
					mig_notify_unsubscribe(x->s);
					x->gone = true;
				} else {
					mig_notify_sub_resume(x->s);
				}
			}
			break;
		}
		case 13: {
			struct vmm_notification n = {
			    .origin = arg % 3, .phase = (arg >> 2) % 9, .state = (arg >> 5) % 7};
			migration_notify(m, &n);
			break;
		}
		case 14:
			f.fail = -(int)(1 + arg % 40);
			f.fail_now = arg & 64;
			break;
		case 15:
			f.hold = true;
			break;
		case 16:
			for (struct pend *p = f.pend; p; p = p->next)
				p->held = false;
			ev_idle_start(loop, &f.idle);
			break;
		case 17:
			f.vm = (enum migration_vm_state)(arg % 4);
			break;
		case 18: {
			struct mig_status st;
			enum migration_guard g = migration_task_guard(m, arg % 3, &st);
			assert(g ==
			       (migration_state(m) == MIG_STATE_IDLE ? MIGRATION_GUARD_ALLOW : g));
			if (g == MIGRATION_GUARD_REFUSE)
				check_status(&st);
			break;
		}
		case 19:
			if (arg == 0xff) {
				migration_free(m);
				m = NULL;
			}
			break;
		default:
			break;
		}
		r->sync = 0;
		for (int k = 0; k < 1 + (arg & 3); k++)
			ev_run(loop, EVRUN_NOWAIT);
		if (m)
			assert((unsigned)migration_state(m) < MIG_STATE_COUNT);
	}
	/* wind down: nothing fails or hangs any more; a live controller answers every call */
	f.fail = 0;
	f.fail_now = f.hold = false;
	for (struct pend *p = f.pend; p; p = p->next)
		p->held = false;
	ev_idle_start(loop, &f.idle);
	bool all = false;
	for (int k = 0; k < 5000 && !all; k++) {
		ev_run(loop, EVRUN_NOWAIT);
		all = true;
		for (size_t c = 0; c < nc; c++)
			all = all && calls[c].done == 1;
	}
	assert(all || !m);
	migration_free(m);
	while (f.pend) { /* the sandbox goes away: what is outstanding completes cancelled */
		struct pend *p = f.pend;
		f.pend = p->next;
		p->status = -ECANCELED;
		finish(&f, p);
	}
	for (int k = 0; k < MAX_SUBS; k++)
		if (subs[k].s && !subs[k].gone)
			mig_notify_unsubscribe(subs[k].s);
	ev_run(loop, EVRUN_NOWAIT);
	ev_idle_stop(loop, &f.idle);
	if (f.sock >= 0)
		close(f.sock);
	close(sv[0]);
	close(sv[1]);
	ev_loop_destroy(loop);
	return 0;
}
