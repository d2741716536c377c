/* The destination side of the migration controller: ImportState (the sandbox imports the
 * envelope atomically; the controller records the session and which source containers still
 * wait for their CreateTask), PatchResourcePaths (one container per destination CreateTask,
 * with hcsshim's sandbox-container detection and pod re-keying), PrepareDestination (the VM
 * created ready to receive) and ferry's Abort of a destination that will not run.  hcsshim
 * controller_destination.go, spec §4.2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "host/shim/migration_priv.h"

/* Messages are bounded on purpose: truncation is the documented behaviour. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static const char *vm_state_name(enum migration_vm_state s)
{
	switch (s) {
	case MIGRATION_VM_NOT_CREATED:
		return "NotCreated";
	case MIGRATION_VM_ACTIVE:
		return "Active";
	case MIGRATION_VM_FINALIZED:
		return "MigrationFinalized";
	case MIGRATION_VM_TERMINATED:
		return "Terminated";
	}
	return "Unknown";
}

/* ---- abort ---- */

static void aborted(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	mig_k_fn k = c->abort_k;
	c->abort_k = NULL;
	if (status == 0) {
		m->aborted = true;
		log_info("migration destination aborted: session=%s", m->session_id);
	}
	k(m, c, status, e);
}

void mig_dest_abort(struct migration *m, struct mig_call *c, mig_k_fn k)
{
	if (m->aborted) {
		k(m, c, 0, NULL);
		return;
	}
	c->abort_k = k;
	MIG_SB_CALL(m, c, aborted, abort);
}

/* ---- ImportState ---- */

static struct mig_cont *find_cont(struct migration *m, const char *source_id)
{
	for (size_t i = 0; i < m->n_conts; i++)
		if (strcmp(m->conts[i].source_id, source_id) == 0)
			return &m->conts[i];
	return NULL;
}

static void import_undone(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	/* the import was refused after the sandbox applied it; c->st holds why */
	char why[ERR_MSG_MAX];
	snprintf(why, sizeof(why), "%s", c->st.msg);
	if (status < 0)
		log_error("migration import rollback failed: %s", e && e->msg[0] ? e->msg : "");
	migration_call_fail(m, c, MIG_CODE_INVALID_ARGUMENT, "%s", why);
}

/* The containers a sandbox reports must have ids, each once (hcsshim checks for duplicates
 * across pods).  Returns NULL or what is wrong, in buf. */
static const char *bad_containers(const struct migration_container *cs, size_t n, char *buf,
                                  size_t size)
{
	char q[MIG_QUOTE_MAX];
	for (size_t i = 0; i < n; i++) {
		if (!cs[i].id || !cs[i].id[0] || !cs[i].pod_id || !cs[i].pod_id[0]) {
			snprintf(buf, size, "imported container %zu has no id or no pod id", i);
			return buf;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(cs[i].id, cs[j].id) == 0) {
				snprintf(buf, size,
				         "duplicate source container id %s across imported pods",
				         migration_quote(q, cs[i].id));
				return buf;
			}
	}
	return NULL;
}

static void imported(struct migration *m, struct mig_call *c, int status, const struct err *e,
                     const struct migration_container *cs, size_t n)
{
	if (status < 0) {
		migration_call_fail_sb(m, c, status, e, "import sandbox");
		return;
	}
	char why[ERR_MSG_MAX];
	if (bad_containers(cs, n, why, sizeof(why))) {
		snprintf(c->st.msg, sizeof(c->st.msg), "%s", why);
		MIG_SB_CALL(m, c, import_undone, abort);
		return;
	}
	migration_session_begin(m, c->session_id, VMM_ORIGIN_DESTINATION);
	m->sandbox_id = xstrdup(c->sandbox_id);
	m->conts = xcalloc(n ? n : 1, sizeof(m->conts[0]));
	for (size_t i = 0; i < n; i++) {
		m->conts[i].source_id = xstrdup(cs[i].id);
		m->conts[i].pod_id = xstrdup(cs[i].pod_id);
	}
	m->n_conts = n;
	m->state = MIG_STATE_DESTINATION_IMPORTED;
	log_info("migration destination state imported: session=%s sandbox=%s containers=%zu",
	         m->session_id, m->sandbox_id, n);
	migration_call_ok(m, c);
}

void mig_dest_import(struct migration *m, struct mig_call *c)
{
	char q[MIG_QUOTE_MAX];
	enum mig_code bad = MIG_CODE_INVALID_ARGUMENT;
	enum migration_vm_state vs;
	if (c->session_id[0] == '\0')
		migration_call_fail(m, c, bad, "session id is required");
	else if (c->sandbox_id[0] == '\0')
		migration_call_fail(m, c, bad, "sandbox id is required");
	else if (!c->has_bytes)
		migration_call_fail(m, c, bad, "sandbox saved state is required");
	else if (strcmp(c->type_url, MIGRATION_ENVELOPE_TYPE_URL) != 0)
		migration_call_fail(m, c, bad, "unsupported sandbox saved-state type %s",
		                    migration_quote(q, c->type_url));
	else if ((vs = m->cfg.ops->vm_state(m->cfg.sb)) != MIGRATION_VM_NOT_CREATED)
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "vm controller is in invalid state %s", vm_state_name(vs));
	else if (m->state != MIG_STATE_IDLE)
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "controller is in state %s for session %s",
		                    mig_state_name(m->state), migration_quote(q, m->session_id));
	else {
		struct mig_ticket *t = migration_ticket_import(m, c, imported);
		struct err e;
		err_clear(&e);
		int r = m->cfg.ops->import(m->cfg.sb, c->sandbox_id, c->type_url, c->bytes, c->len,
		                           migration_sb_import, t, &e);
		if (r < 0)
			migration_ticket_now(t, r, &e);
	}
}

/* ---- PatchResourcePaths ---- */

static const char *annotation(const struct migration_patch_req *r, const char *key)
{
	for (size_t i = 0; i < r->n_annotations; i++)
		if (r->annotations[i].key && strcmp(r->annotations[i].key, key) == 0)
			return r->annotations[i].value ? r->annotations[i].value : "";
	return NULL;
}

static void patched(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	struct mig_cont *ct = &m->conts[c->cont];
	if (status < 0) {
		char a[MIG_QUOTE_MAX], b[MIG_QUOTE_MAX], what[2 * MIG_QUOTE_MAX + 40];
		snprintf(what, sizeof(what), "patch source container %s in pod %s",
		         migration_quote(a, ct->source_id), migration_quote(b, ct->pod_id));
		migration_call_fail_sb(m, c, status, e, what);
		return;
	}
	const char *id = c->patch->id;
	if (strcmp(ct->source_id, ct->pod_id) == 0) {
		/* the sandbox container: its pod takes the new id, for every member */
		char *old = xstrdup(ct->pod_id);
		for (size_t i = 0; i < m->n_conts; i++)
			if (strcmp(m->conts[i].pod_id, old) == 0) {
				free(m->conts[i].pod_id);
				m->conts[i].pod_id = xstrdup(id);
			}
		free(old);
	}
	free(ct->id);
	ct->id = xstrdup(id);
	ct->patched = true;
	log_info("migration container resource paths patched: source=%s destination=%s",
	         ct->source_id, id);
	migration_call_ok(m, c);
}

/* The id a container answers to here: its new id once patched, its source id before. */
static const char *current_id(const struct mig_cont *ct)
{
	return ct->patched ? ct->id : ct->source_id;
}

void mig_dest_patch(struct migration *m, struct mig_call *c)
{
	const struct migration_patch_req *r = c->patch;
	enum mig_code bad = MIG_CODE_INVALID_ARGUMENT;
	char a[MIG_QUOTE_MAX], b[MIG_QUOTE_MAX], d[MIG_QUOTE_MAX], f[MIG_QUOTE_MAX];
	if (!r) {
		migration_call_fail(m, c, bad, "request is required");
		return;
	}
	if (!r->id || !r->id[0]) {
		migration_call_fail(m, c, bad, "destination container id is required");
		return;
	}
	if (!r->annotations) {
		migration_call_fail(m, c, bad, "annotations are required");
		return;
	}
	const char *src = annotation(r, MIGRATION_ANN_SOURCE_CONTAINER_ID);
	if (!src || !src[0]) {
		migration_call_fail(m, c, bad, "annotation %s is required",
		                    migration_quote(a, MIGRATION_ANN_SOURCE_CONTAINER_ID));
		return;
	}
	if (m->state != MIG_STATE_DESTINATION_IMPORTED) {
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "patch not valid in state %s", mig_state_name(m->state));
		return;
	}
	struct mig_cont *ct = find_cont(m, src);
	if (!ct) {
		migration_call_fail(m, c, MIG_CODE_NOT_FOUND, "source container %s not found",
		                    migration_quote(a, src));
		return;
	}
	if (ct->patched) {
		migration_call_fail(m, c, MIG_CODE_ALREADY_EXISTS,
		                    "source container %s is not pending a patch (patched as %s)",
		                    migration_quote(a, src), migration_quote(b, ct->id));
		return;
	}
	for (size_t i = 0; i < m->n_conts; i++)
		if (&m->conts[i] != ct && strcmp(current_id(&m->conts[i]), r->id) == 0) {
			migration_call_fail(m, c, MIG_CODE_ALREADY_EXISTS,
			                    "container %s already exists",
			                    migration_quote(a, r->id));
			return;
		}
	bool is_sandbox = strcmp(ct->source_id, ct->pod_id) == 0;
	const char *type = annotation(r, MIGRATION_ANN_CONTAINER_TYPE);
	if (type && type[0] && (strcmp(type, "sandbox") == 0) != is_sandbox) {
		migration_call_fail(m, c, bad,
		                    "annotation %s=%s disagrees with structural sandbox detection "
		                    "(sourceContainerID=%s, sourcePodID=%s)",
		                    migration_quote(a, MIGRATION_ANN_CONTAINER_TYPE),
		                    migration_quote(b, type), migration_quote(d, ct->source_id),
		                    migration_quote(f, ct->pod_id));
		return;
	}
	c->cont = (size_t)(ct - m->conts);
	struct migration_patch p = {
	    .req = r, .source_id = ct->source_id, .pod_id = ct->pod_id, .is_sandbox = is_sandbox};
	MIG_SB_CALL(m, c, patched, patch, &p);
}

/* ---- PrepareDestination ---- */

static void vm_patched(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	if (status < 0) {
		m->state = MIG_STATE_FAILED;
		migration_call_fail_sb(m, c, status, e, "patch destination vm");
		return;
	}
	m->state = MIG_STATE_DESTINATION_PREPARED;
	log_info("migration destination prepared: session=%s", m->session_id);
	migration_call_ok(m, c);
}

static void vm_created(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	if (status < 0) {
		migration_call_fail_sb(m, c, status, e, "create destination vm");
		return;
	}
	if (!m->cfg.ops->patch_vm) {
		vm_patched(m, c, 0, NULL);
		return;
	}
	MIG_SB_CALL(m, c, vm_patched, patch_vm);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a, b, c": the source ids still waiting for their CreateTask, sorted. */
static size_t pending_list(const struct migration *m, char *buf, size_t size)
{
	const char **ids = xcalloc(m->n_conts ? m->n_conts : 1, sizeof(*ids));
	size_t n = 0;
	for (size_t i = 0; i < m->n_conts; i++)
		if (!m->conts[i].patched)
			ids[n++] = m->conts[i].source_id;
	qsort(ids, n, sizeof(*ids), cmp_str);
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", ids[i]);
	free(ids);
	return n;
}

void mig_dest_prepare(struct migration *m, struct mig_call *c)
{
	if (!migration_session_check(m, c))
		return;
	if (m->state != MIG_STATE_DESTINATION_IMPORTED) {
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "prepare destination not valid in state %s",
		                    mig_state_name(m->state));
		return;
	}
	char list[ERR_MSG_MAX];
	size_t pending = pending_list(m, list, sizeof(list));
	if (pending > 0) {
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "%zu container patches still pending [%s]", pending, list);
		return;
	}
	free(c->sandbox_id);
	c->sandbox_id = xasprintf("%s@vm", m->sandbox_id);
	MIG_SB_CALL(m, c, vm_created, prepare_dest, c->sandbox_id, &c->opts);
}
