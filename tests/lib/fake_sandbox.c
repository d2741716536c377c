/* The fake sandbox and the migration test fixture of fake_sandbox.h. */
#include "tests/lib/fake_sandbox.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"

static const char *const verb_names[FAKE_VERB_COUNT] = {
    "init_source",  "save",     "import", "patch",     "prepare_dest", "patch_vm", "mig_start",
    "mig_transfer", "finalize", "resume", "terminate", "cancel",       "abort",
};

struct fake_pending {
	struct fake_pending *next;
	enum fake_verb v;
	bool held;
	int status;
	union {
		migration_sb_done_fn done;
		migration_sb_save_fn save;
		migration_sb_import_fn import;
	} cb;
	void *cookie;
};

static void arm(struct fake_sb *f)
{
	if (!ev_is_active(&f->timer)) {
		ev_timer_set(&f->timer, 0., 0.);
		ev_timer_start(f->loop, &f->timer);
	}
}

/* What a successful verb does to the VM, at completion (as the VM controller would). */
static void apply(struct fake_sb *f, enum fake_verb v)
{
	switch (v) {
	case FAKE_IMPORT:
	case FAKE_PREPARE_DEST:
		f->vm_state = MIGRATION_VM_ACTIVE;
		break;
	case FAKE_FINALIZE:
		f->vm_state = f->finalize_resume ? MIGRATION_VM_FINALIZED : MIGRATION_VM_TERMINATED;
		break;
	case FAKE_TERMINATE:
		f->vm_state = MIGRATION_VM_TERMINATED;
		break;
	case FAKE_RESUME:
		f->vm_state = MIGRATION_VM_ACTIVE;
		break;
	case FAKE_ABORT:
		f->vm_state = MIGRATION_VM_NOT_CREATED;
		break;
	default:
		break;
	}
}

static void complete(struct fake_sb *f, struct fake_pending *p)
{
	struct err e;
	err_clear(&e);
	if (p->status < 0)
		err_set(&e, p->status, "fake %s failed", verb_names[p->v]);
	else
		apply(f, p->v);
	const struct err *ep = p->status < 0 ? &e : NULL;
	switch (p->v) {
	case FAKE_SAVE:
		p->cb.save(p->cookie, p->status, ep, p->status < 0 ? NULL : f->save_type_url,
		           f->save_value, f->save_len);
		break;
	case FAKE_IMPORT:
		p->cb.import(p->cookie, p->status, ep, p->status < 0 ? NULL : f->conts,
		             p->status < 0 ? 0 : f->n_conts);
		break;
	default:
		p->cb.done(p->cookie, p->status, ep);
		break;
	}
	free(p);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct fake_sb *f = w->data;
	for (;;) {
		struct fake_pending **pp = &f->pending;
		while (*pp && (*pp)->held)
			pp = &(*pp)->next;
		if (!*pp)
			return;
		struct fake_pending *p = *pp;
		*pp = p->next;
		complete(f, p);
	}
}

void fake_sb_init(struct fake_sb *f, struct ev_loop *loop)
{
	memset(f, 0, sizeof(*f));
	f->loop = loop;
	f->sock = -1;
	f->vm_state = MIGRATION_VM_ACTIVE;
	snprintf(f->save_type_url, sizeof(f->save_type_url), "%s", MIGRATION_ENVELOPE_TYPE_URL);
	memcpy(f->save_value, "\x08\x01", 2); /* schema_version = 1 */
	f->save_len = 2;
	ev_timer_init(&f->timer, on_timer, 0., 0.);
	f->timer.data = f;
}

void fake_sb_fini(struct fake_sb *f)
{
	ev_timer_stop(f->loop, &f->timer);
	/* the sandbox contract: going away completes what is outstanding with -ECANCELED */
	while (f->pending) {
		struct fake_pending *p = f->pending;
		f->pending = p->next;
		p->status = -ECANCELED;
		complete(f, p);
	}
	if (f->sock >= 0)
		close(f->sock);
	f->sock = -1;
	free(f->conts);
	f->conts = NULL;
	f->n_conts = 0;
}

void fake_sb_release(struct fake_sb *f, enum fake_verb v)
{
	for (struct fake_pending *p = f->pending; p; p = p->next)
		if (p->v == v && p->held) {
			p->held = false;
			p->status = f->verb[v].fail; /* as configured now */
		}
	f->verb[v].hold = false;
	arm(f);
}

bool fake_sb_waiting(const struct fake_sb *f, enum fake_verb v)
{
	for (const struct fake_pending *p = f->pending; p; p = p->next)
		if (p->v == v && p->held)
			return true;
	return false;
}

void fake_sb_containers(struct fake_sb *f, const char *const *ids, const char *const *pods,
                        size_t n)
{
	free(f->conts);
	f->conts = calloc(n ? n : 1, sizeof(f->conts[0]));
	assert_non_null(f->conts);
	for (size_t i = 0; i < n; i++) {
		f->conts[i].id = ids[i];
		f->conts[i].pod_id = pods[i];
	}
	f->n_conts = n;
}

/* Record the call; a failure configured "now" is returned at once. */
static int begin(struct fake_sb *f, enum fake_verb v, struct err *e)
{
	f->verb[v].calls++;
	size_t used = strlen(f->log);
	snprintf(f->log + used, sizeof(f->log) - used, "%s%s", used ? " " : "", verb_names[v]);
	if (f->verb[v].fail && f->verb[v].now)
		return err_set(e, f->verb[v].fail, "fake %s refused", verb_names[v]);
	return 0;
}

static struct fake_pending *queue(struct fake_sb *f, enum fake_verb v, void *cookie)
{
	struct fake_pending *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->v = v;
	p->held = f->verb[v].hold;
	p->status = f->verb[v].fail;
	p->cookie = cookie;
	struct fake_pending **pp = &f->pending;
	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
	arm(f);
	return p;
}

static int plain(struct fake_sb *f, enum fake_verb v, migration_sb_done_fn done, void *cookie,
                 struct err *e)
{
	int r = begin(f, v, e);
	if (r < 0)
		return r;
	queue(f, v, cookie)->cb.done = done;
	return 0;
}

static enum migration_vm_state f_vm_state(void *sb)
{
	return ((struct fake_sb *)sb)->vm_state;
}

static int f_init_source(void *sb, const struct vmm_mig_options *opts, migration_sb_done_fn done,
                         void *cookie, struct err *e)
{
	struct fake_sb *f = sb;
	f->opts = *opts;
	return plain(f, FAKE_INIT_SOURCE, done, cookie, e);
}

static int f_save(void *sb, migration_sb_save_fn done, void *cookie, struct err *e)
{
	struct fake_sb *f = sb;
	int r = begin(f, FAKE_SAVE, e);
	if (r < 0)
		return r;
	queue(f, FAKE_SAVE, cookie)->cb.save = done;
	return 0;
}

static int f_import(void *sb, const char *sandbox_id, const char *type_url, const uint8_t *value,
                    size_t len, migration_sb_import_fn done, void *cookie, struct err *e)
{
	struct fake_sb *f = sb;
	(void)value;
	assert_string_equal(type_url, MIGRATION_ENVELOPE_TYPE_URL);
	snprintf(f->import_sandbox, sizeof(f->import_sandbox), "%s", sandbox_id);
	f->import_len = len;
	int r = begin(f, FAKE_IMPORT, e);
	if (r < 0)
		return r;
	queue(f, FAKE_IMPORT, cookie)->cb.import = done;
	return 0;
}

static int f_patch(void *sb, const struct migration_patch *p, migration_sb_done_fn done,
                   void *cookie, struct err *e)
{
	struct fake_sb *f = sb;
	snprintf(f->patch_source, sizeof(f->patch_source), "%s", p->source_id);
	snprintf(f->patch_pod, sizeof(f->patch_pod), "%s", p->pod_id);
	snprintf(f->patch_id, sizeof(f->patch_id), "%s", p->req->id);
	snprintf(f->patch_bundle, sizeof(f->patch_bundle), "%s",
	         p->req->bundle ? p->req->bundle : "");
	snprintf(f->patch_netns, sizeof(f->patch_netns), "%s", p->req->netns ? p->req->netns : "");
	f->patch_sandbox = p->is_sandbox;
	f->patch_repaths = p->req->n_repaths;
	return plain(f, FAKE_PATCH, done, cookie, e);
}

static int f_prepare_dest(void *sb, const char *vm_id, const struct vmm_mig_options *opts,
                          migration_sb_done_fn done, void *cookie, struct err *e)
{
	struct fake_sb *f = sb;
	snprintf(f->vm_id, sizeof(f->vm_id), "%s", vm_id);
	f->opts = *opts;
	return plain(f, FAKE_PREPARE_DEST, done, cookie, e);
}

static int f_patch_vm(void *sb, migration_sb_done_fn done, void *cookie, struct err *e)
{
	return plain(sb, FAKE_PATCH_VM, done, cookie, e);
}

static int f_mig_start(void *sb, int sock, uint32_t session, migration_sb_done_fn done,
                       void *cookie, struct err *e)
{
	struct fake_sb *f = sb;
	if (f->sock >= 0)
		close(f->sock);
	f->sock = sock; /* ours in every case, like a VMM's */
	f->session = session;
	return plain(f, FAKE_MIG_START, done, cookie, e);
}

static int f_mig_transfer(void *sb, migration_sb_done_fn done, void *cookie, struct err *e)
{
	return plain(sb, FAKE_MIG_TRANSFER, done, cookie, e);
}

static int f_finalize(void *sb, bool resume, migration_sb_done_fn done, void *cookie, struct err *e)
{
	struct fake_sb *f = sb;
	f->finalize_resume = resume;
	return plain(f, FAKE_FINALIZE, done, cookie, e);
}

static int f_resume(void *sb, bool destination, migration_sb_done_fn done, void *cookie,
                    struct err *e)
{
	struct fake_sb *f = sb;
	f->resume_destination = destination;
	return plain(f, FAKE_RESUME, done, cookie, e);
}

static int f_terminate(void *sb, migration_sb_done_fn done, void *cookie, struct err *e)
{
	return plain(sb, FAKE_TERMINATE, done, cookie, e);
}

static int f_cancel(void *sb, migration_sb_done_fn done, void *cookie, struct err *e)
{
	struct fake_sb *f = sb;
	int r = plain(f, FAKE_CANCEL, done, cookie, e);
	if (r < 0)
		return r;
	/* a VMM's cancel stops the transfer and lets go of the socket */
	if (f->cancel_ends_transfer)
		for (struct fake_pending *p = f->pending; p; p = p->next)
			if ((p->v == FAKE_MIG_TRANSFER || p->v == FAKE_MIG_START) && p->held) {
				p->held = false;
				p->status = -ECANCELED;
			}
	if (f->sock >= 0)
		close(f->sock);
	f->sock = -1;
	return 0;
}

static int f_abort(void *sb, migration_sb_done_fn done, void *cookie, struct err *e)
{
	return plain(sb, FAKE_ABORT, done, cookie, e);
}

const struct migration_sandbox_ops fake_sb_ops = {
    .vm_state = f_vm_state,
    .init_source = f_init_source,
    .save = f_save,
    .import = f_import,
    .patch = f_patch,
    .prepare_dest = f_prepare_dest,
    .patch_vm = f_patch_vm,
    .mig_start = f_mig_start,
    .mig_transfer = f_mig_transfer,
    .finalize = f_finalize,
    .resume = f_resume,
    .terminate = f_terminate,
    .cancel = f_cancel,
    .abort = f_abort,
};

/* ---- the fixture ---- */

int mt_setup(void **state)
{
	struct mt *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	/* silent when passing: the controller logs what it handles (MT_VERBOSE=1 shows it) */
	static FILE *quiet;
	if (getenv("MT_VERBOSE")) {
		log_set_level(LOG_LVL_DEBUG);
	} else {
		if (!quiet)
			quiet = fopen("/dev/null", "w");
		log_set_file(quiet);
	}
	evtest_init(&t->ev, 10.);
	fake_sb_init(&t->sb, t->ev.loop);
	struct migration_config cfg = {.ops = &fake_sb_ops, .sb = &t->sb};
	struct err e;
	err_clear(&e);
	t->m = migration_new(t->ev.loop, &cfg, &e);
	assert_non_null(t->m);
	t->peer = t->local = -1;
	*state = t;
	return 0;
}

int mt_teardown(void **state)
{
	struct mt *t = *state;
	migration_free(t->m);
	fake_sb_fini(&t->sb);
	if (t->peer >= 0)
		close(t->peer);
	if (t->local >= 0)
		close(t->local);
	free(t->export_value);
	evtest_fini(&t->ev);
	free(t);
	return 0;
}

void mt_done_cb(struct migration *m, const struct mig_status *st, void *arg)
{
	(void)m;
	struct mt_async *a = arg;
	a->done = true;
	a->st = *st;
}

static enum mig_code wait_done(struct mt *t, struct mt_async *a)
{
	EVTEST_SPIN(&t->ev, a->done);
	t->st = a->st;
	return a->st.code;
}

enum mig_code mt_prepare_source(struct mt *t, const char *sid)
{
	struct mt_async a = {0};
	migration_prepare_source(t->m, sid, NULL, mt_done_cb, &a);
	return wait_done(t, &a);
}

struct export_async {
	struct mt *t;
	struct mt_async a;
};

static void on_export(struct migration *m, const struct mig_status *st, const char *type_url,
                      const uint8_t *value, size_t len, void *arg)
{
	struct export_async *x = arg;
	mt_done_cb(m, st, &x->a);
	free(x->t->export_value);
	x->t->export_value = NULL;
	x->t->export_len = 0;
	x->t->export_type_url[0] = '\0';
	if (st->code == MIG_CODE_OK) {
		assert_non_null(type_url);
		snprintf(x->t->export_type_url, sizeof(x->t->export_type_url), "%s", type_url);
		x->t->export_value = malloc(len ? len : 1);
		assert_non_null(x->t->export_value);
		memcpy(x->t->export_value, value, len);
		x->t->export_len = len;
	} else {
		assert_null(type_url);
	}
}

enum mig_code mt_export(struct mt *t, const char *sid)
{
	struct export_async x = {.t = t};
	migration_export_state(t->m, sid, on_export, &x);
	return wait_done(t, &x.a);
}

enum mig_code mt_prepare_export(struct mt *t, const char *sid)
{
	struct export_async x = {.t = t};
	migration_prepare_and_export(t->m, sid, NULL, on_export, &x);
	return wait_done(t, &x.a);
}

enum mig_code mt_import(struct mt *t, const char *sid, const char *sandbox, const char *type_url)
{
	struct mt_async a = {0};
	static const uint8_t payload[] = {0x08, 0x01};
	migration_import(t->m, sid, sandbox, type_url, payload, sizeof(payload), mt_done_cb, &a);
	return wait_done(t, &a);
}

enum mig_code mt_patch(struct mt *t, const struct migration_patch_req *req)
{
	struct mt_async a = {0};
	migration_patch(t->m, req, mt_done_cb, &a);
	return wait_done(t, &a);
}

enum mig_code mt_patch_simple(struct mt *t, const char *id, const char *source, const char *type)
{
	struct migration_kv ann[2] = {{MIGRATION_ANN_SOURCE_CONTAINER_ID, source},
	                              {MIGRATION_ANN_CONTAINER_TYPE, type}};
	struct migration_patch_req req = {
	    .id = id, .bundle = "/b", .annotations = ann, .n_annotations = type ? 2 : 1};
	return mt_patch(t, &req);
}

enum mig_code mt_prepare_dest(struct mt *t, const char *sid)
{
	struct mt_async a = {0};
	migration_prepare_dest(t->m, sid, NULL, mt_done_cb, &a);
	return wait_done(t, &a);
}

enum mig_code mt_register(struct mt *t, const char *sid, const uint8_t *info, size_t len)
{
	struct mt_async a = {0};
	migration_register_socket(t->m, sid, info, len, mt_done_cb, &a);
	return wait_done(t, &a);
}

void mt_socket_info(struct mt *t, uint8_t *info)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if (t->local >= 0)
		close(t->local);
	if (t->peer >= 0)
		close(t->peer);
	t->local = sv[0];
	t->peer = sv[1];
	struct dupsock_info di = {.pid = (uint32_t)getpid(), .fd = (uint32_t)sv[0]};
	dupsock_info_encode(&di, info);
}

enum mig_code mt_register_pair(struct mt *t, const char *sid)
{
	uint8_t info[DUPSOCK_INFO_LEN];
	mt_socket_info(t, info);
	enum mig_code c = mt_register(t, sid, info, sizeof(info));
	/* the orchestrator lets go of its own copy, as ferryctl does once the shim has one */
	close(t->local);
	t->local = -1;
	return c;
}

enum mig_code mt_transfer(struct mt *t, const char *sid, int64_t timeout_ns)
{
	struct mt_async a = {0};
	migration_transfer(t->m, sid, timeout_ns, mt_done_cb, &a);
	return wait_done(t, &a);
}

enum mig_code mt_finalize(struct mt *t, const char *sid, int action)
{
	struct mt_async a = {0};
	migration_finalize(t->m, sid, action, mt_done_cb, &a);
	return wait_done(t, &a);
}

enum mig_code mt_cancel(struct mt *t, const char *sid)
{
	struct mt_async a = {0};
	migration_cancel(t->m, sid, mt_done_cb, &a);
	return wait_done(t, &a);
}

enum mig_code mt_cleanup(struct mt *t, const char *sid)
{
	struct mt_async a = {0};
	migration_cleanup(t->m, sid, mt_done_cb, &a);
	return wait_done(t, &a);
}

void mt_expect_msg(const struct mt *t, const char *needle)
{
	if (!strstr(t->st.msg, needle))
		fail_msg("status message \"%s\" lacks \"%s\"", t->st.msg, needle);
}

void mt_wait_state(struct mt *t, enum mig_state state)
{
	EVTEST_SPIN(&t->ev, migration_state(t->m) == state);
}

bool mt_log_has(const struct fake_sb *f, const char *seq)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", seq);
	const char *at = f->log;
	for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		size_t n = strlen(w);
		const char *p = at;
		for (;;) {
			p = strstr(p, w);
			if (!p)
				return false;
			bool starts = p == f->log || p[-1] == ' ';
			bool ends = p[n] == ' ' || p[n] == '\0';
			if (starts && ends)
				break;
			p += n;
		}
		at = p + n;
	}
	return true;
}

/* ---- driving a session to a state ---- */

#define OK(call) assert_int_equal((call), MIG_CODE_OK)

/* The states both sides share, from the one where the socket may come (SourceExported,
 * DestinationPrepared); `finalize` is how the side's happy path ends. */
static void drive_shared(struct mt *t, enum mig_state state, int finalize)
{
	const char *s = "sess-1";
	switch (state) {
	case MIG_STATE_SOCKET_WAITING:
		OK(mt_transfer(t, s, 3600LL * 1000000000));
		return;
	case MIG_STATE_CANCELLED:
		OK(mt_cancel(t, s));
		return;
	case MIG_STATE_CANCELLING: {
		static struct mt_async a;
		memset(&a, 0, sizeof(a));
		t->sb.verb[FAKE_CANCEL].hold = true;
		migration_cancel(t->m, s, mt_done_cb, &a);
		mt_wait_state(t, MIG_STATE_CANCELLING);
		EVTEST_SPIN(&t->ev, fake_sb_waiting(&t->sb, FAKE_CANCEL));
		return;
	}
	default:
		break;
	}
	OK(mt_register_pair(t, s));
	if (state == MIG_STATE_SOCKET_READY)
		return;
	if (state == MIG_STATE_TRANSFERRING)
		t->sb.verb[FAKE_MIG_TRANSFER].hold = true;
	OK(mt_transfer(t, s, 0));
	if (state == MIG_STATE_TRANSFERRING) {
		EVTEST_SPIN(&t->ev, fake_sb_waiting(&t->sb, FAKE_MIG_TRANSFER));
		return;
	}
	mt_wait_state(t, MIG_STATE_TRANSFER_COMPLETED);
	if (state == MIG_STATE_TRANSFER_COMPLETED)
		return;
	assert_int_equal(state, MIG_STATE_FINALIZED);
	OK(mt_finalize(t, s, finalize));
}

static void drive_source(struct mt *t, enum mig_state state)
{
	const char *s = "sess-1";
	switch (state) {
	case MIG_STATE_IDLE:
		return;
	case MIG_STATE_SOURCE_PREPARED:
		OK(mt_prepare_source(t, s));
		return;
	case MIG_STATE_FAILED:
		t->sb.verb[FAKE_SAVE].fail = -EIO;
		OK(mt_prepare_source(t, s));
		assert_int_not_equal(mt_export(t, s), MIG_CODE_OK);
		t->sb.verb[FAKE_SAVE].fail = 0;
		return;
	default:
		break;
	}
	OK(mt_prepare_export(t, s));
	if (state != MIG_STATE_SOURCE_EXPORTED)
		drive_shared(t, state, MIG_FINALIZE_STOP);
}

static void drive_dest(struct mt *t, enum mig_state state)
{
	const char *s = "sess-1";
	if (state == MIG_STATE_IDLE)
		return;
	static const char *const ids[] = {"pod-1", "ctr-1"};
	static const char *const pods[] = {"pod-1", "pod-1"};
	fake_sb_containers(&t->sb, ids, pods, 2);
	t->sb.vm_state = MIGRATION_VM_NOT_CREATED;
	OK(mt_import(t, s, "sandbox-1", MIGRATION_ENVELOPE_TYPE_URL));
	if (state == MIG_STATE_DESTINATION_IMPORTED)
		return;
	OK(mt_patch_simple(t, "dst-pod", "pod-1", "sandbox"));
	OK(mt_patch_simple(t, "dst-1", "ctr-1", "container"));
	if (state == MIG_STATE_FAILED) {
		t->sb.verb[FAKE_PATCH_VM].fail = -EIO;
		assert_int_not_equal(mt_prepare_dest(t, s), MIG_CODE_OK);
		t->sb.verb[FAKE_PATCH_VM].fail = 0;
		return;
	}
	OK(mt_prepare_dest(t, s));
	if (state != MIG_STATE_DESTINATION_PREPARED)
		drive_shared(t, state, MIG_FINALIZE_RESUME);
}

void mt_drive(struct mt *t, enum vmm_origin side, enum mig_state state)
{
	if (side == VMM_ORIGIN_SOURCE)
		drive_source(t, state);
	else
		drive_dest(t, state);
	assert_int_equal(migration_state(t->m), state);
}
