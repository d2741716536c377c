/* The source side of the migration controller: PrepareSource (the VMM's mig_init_source; on
 * failure nothing is recorded) and ExportState (every controller saved and frozen into the
 * sandbox envelope; from here any failure poisons the session, state Failed), and the two in
 * one turn for PrepareAndExportSandbox.  hcsshim controller_source.go, spec §4.2. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "host/shim/migration_priv.h"

static void exported(struct migration *m, struct mig_call *c, int status, const struct err *e,
                     const char *type_url, const uint8_t *value, size_t len)
{
	if (status < 0) {
		m->state = MIG_STATE_FAILED;
		log_error("migration source export failed, session failed: session=%s: %s",
		          m->session_id, e && e->msg[0] ? e->msg : "");
		migration_call_fail_sb(m, c, status, e, "save sandbox");
		return;
	}
	if (!type_url || strcmp(type_url, MIGRATION_ENVELOPE_TYPE_URL) != 0) {
		m->state = MIG_STATE_FAILED;
		char q[MIG_QUOTE_MAX];
		migration_call_fail(
		    m, c, MIG_CODE_INTERNAL, "sandbox saved state has type %s, want %s",
		    migration_quote(q, type_url ? type_url : ""), MIGRATION_ENVELOPE_TYPE_URL);
		return;
	}
	c->out_type_url = xstrdup(type_url);
	c->out_len = len;
	c->out_value = xmalloc(len ? len : 1);
	if (len)
		memcpy(c->out_value, value, len);
	m->state = MIG_STATE_SOURCE_EXPORTED;
	log_info("migration source state exported: session=%s bytes=%zu", m->session_id, len);
	migration_call_ok(m, c);
}

void mig_source_export(struct migration *m, struct mig_call *c)
{
	c->prefix = "source: export migration state";
	if (!migration_session_check(m, c))
		return;
	if (m->state != MIG_STATE_SOURCE_PREPARED) {
		migration_call_fail(
		    m, c, MIG_CODE_FAILED_PRECONDITION, "export requires state %s (current: %s)",
		    mig_state_name(MIG_STATE_SOURCE_PREPARED), mig_state_name(m->state));
		return;
	}
	struct mig_ticket *t = migration_ticket_save(m, c, exported);
	struct err e;
	err_clear(&e);
	int r = m->cfg.ops->save(m->cfg.sb, migration_sb_save, t, &e);
	if (r < 0)
		migration_ticket_now(t, r, &e);
}

static void prepared(struct migration *m, struct mig_call *c, int status, const struct err *e)
{
	if (status < 0) {
		migration_call_fail_sb(m, c, status, e, "initialize live migration on source vm");
		return;
	}
	migration_session_begin(m, c->session_id, VMM_ORIGIN_SOURCE);
	m->state = MIG_STATE_SOURCE_PREPARED;
	log_info("migration source prepared: session=%s", m->session_id);
	if (c->verb == MIG_VERB_PREPARE_EXPORT)
		mig_source_export(m, c);
	else
		migration_call_ok(m, c);
}

void mig_source_prepare(struct migration *m, struct mig_call *c)
{
	if (c->session_id[0] == '\0') {
		migration_call_fail(m, c, MIG_CODE_INVALID_ARGUMENT, "session id is required");
		return;
	}
	if (m->state != MIG_STATE_IDLE) {
		char q[MIG_QUOTE_MAX];
		migration_call_fail(m, c, MIG_CODE_FAILED_PRECONDITION,
		                    "controller is in state %s for session %s",
		                    mig_state_name(m->state), migration_quote(q, m->session_id));
		return;
	}
	/* no options is hcsshim's empty MigrationInitializeOptions; the origin is the verb */
	MIG_SB_CALL(m, c, prepared, init_source, &c->opts);
}
