/* The Migration service's entry points: one function per RPC that copies its arguments into
 * a call (strings, the options, the PatchResourcePaths request deep-copied into the call's
 * arena) and queues it; migration.c serves the queue.  Contracts: migration.h. */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "host/shim/migration_priv.h"

/* The service's wrapping of each call's errors (hcsshim's service_migration_internal.go). */
static const char *const prefixes[MIG_VERB_COUNT] = {
    [MIG_VERB_PREPARE_EXPORT] = "source: prepare migration",
    [MIG_VERB_PREPARE_SOURCE] = "source: prepare migration",
    [MIG_VERB_EXPORT] = "source: export migration state",
    [MIG_VERB_IMPORT] = "destination: import migration state",
    [MIG_VERB_PATCH] = "patch migrated container",
    [MIG_VERB_PREPARE_DEST] = "destination: prepare migration",
    [MIG_VERB_REGISTER_SOCKET] = "register duplicate migration socket",
    [MIG_VERB_TRANSFER] = "transfer migration state",
    [MIG_VERB_FINALIZE] = "finalize migration session",
    [MIG_VERB_CANCEL] = "cancel migration session",
    [MIG_VERB_CLEANUP] = "cleanup migration session",
    [MIG_VERB_SUBSCRIBE] = "subscribe to migration notifications",
};

static struct mig_call *call_new(enum mig_verb verb, const char *session_id, void *arg)
{
	struct mig_call *c = xcalloc(1, sizeof(*c));
	c->verb = verb;
	c->prefix = prefixes[verb];
	c->session_id = xstrdup(session_id ? session_id : "");
	c->arg = arg;
	return c;
}

/* A call whose completion is a plain status. */
static struct mig_call *plain_call(enum mig_verb verb, const char *session_id,
                                   migration_done_fn done, void *arg)
{
	struct mig_call *c = call_new(verb, session_id, arg);
	c->cb.done = done;
	return c;
}

static void *arena_keep(struct mig_call *c, void *p)
{
	c->arena = xrealloc(c->arena, (c->n_arena + 1) * sizeof(c->arena[0]));
	c->arena[c->n_arena++] = p;
	return p;
}

static const char *arena_dup(struct mig_call *c, const char *s)
{
	return s ? arena_keep(c, xstrdup(s)) : NULL;
}

static void *arena_copy(struct mig_call *c, const void *p, size_t n, size_t size)
{
	if (!p)
		return NULL;
	void *q = arena_keep(c, xcalloc(n ? n : 1, size));
	memcpy(q, p, n * size);
	return q;
}

/* ---- the calls ---- */

void migration_prepare_and_export(struct migration *m, const char *session_id,
                                  const struct vmm_mig_options *opts, migration_export_fn done,
                                  void *arg)
{
	struct mig_call *c = call_new(MIG_VERB_PREPARE_EXPORT, session_id, arg);
	c->cb.export_done = done;
	if (opts)
		c->opts = *opts;
	migration_enqueue(m, c);
}

void migration_prepare_source(struct migration *m, const char *session_id,
                              const struct vmm_mig_options *opts, migration_done_fn done, void *arg)
{
	struct mig_call *c = plain_call(MIG_VERB_PREPARE_SOURCE, session_id, done, arg);
	if (opts)
		c->opts = *opts;
	migration_enqueue(m, c);
}

void migration_export_state(struct migration *m, const char *session_id, migration_export_fn done,
                            void *arg)
{
	struct mig_call *c = call_new(MIG_VERB_EXPORT, session_id, arg);
	c->cb.export_done = done;
	migration_enqueue(m, c);
}

static void keep_bytes(struct mig_call *c, const uint8_t *p, size_t len)
{
	c->has_bytes = p != NULL;
	c->len = p ? len : 0;
	c->bytes = xmalloc(c->len ? c->len : 1);
	if (c->len)
		memcpy(c->bytes, p, c->len);
}

void migration_import(struct migration *m, const char *session_id, const char *sandbox_id,
                      const char *type_url, const uint8_t *value, size_t len,
                      migration_done_fn done, void *arg)
{
	struct mig_call *c = plain_call(MIG_VERB_IMPORT, session_id, done, arg);
	c->sandbox_id = xstrdup(sandbox_id ? sandbox_id : "");
	c->type_url = xstrdup(type_url ? type_url : "");
	keep_bytes(c, value, len);
	migration_enqueue(m, c);
}

static struct migration_patch_req *copy_patch(struct mig_call *c,
                                              const struct migration_patch_req *r)
{
	struct migration_patch_req *p = arena_copy(c, r, 1, sizeof(*r));
	p->id = arena_dup(c, r->id);
	p->bundle = arena_dup(c, r->bundle);
	p->stdin_path = arena_dup(c, r->stdin_path);
	p->stdout_path = arena_dup(c, r->stdout_path);
	p->stderr_path = arena_dup(c, r->stderr_path);
	p->netns = arena_dup(c, r->netns);
	struct migration_kv *kv = arena_copy(c, r->annotations, r->n_annotations, sizeof(*kv));
	for (size_t i = 0; kv && i < r->n_annotations; i++) {
		kv[i].key = arena_dup(c, r->annotations[i].key);
		kv[i].value = arena_dup(c, r->annotations[i].value);
	}
	p->annotations = kv;
	struct migration_mount *mt = arena_copy(c, r->rootfs, r->n_rootfs, sizeof(*mt));
	for (size_t i = 0; mt && i < r->n_rootfs; i++) {
		const struct migration_mount *s = &r->rootfs[i];
		mt[i].type = arena_dup(c, s->type);
		mt[i].source = arena_dup(c, s->source);
		mt[i].target = arena_dup(c, s->target);
		const char **opts = arena_copy(c, s->options, s->n_options, sizeof(*opts));
		for (size_t j = 0; opts && j < s->n_options; j++)
			opts[j] = arena_dup(c, s->options[j]);
		mt[i].options = opts;
	}
	p->rootfs = mt;
	struct migration_repath *rp = arena_copy(c, r->repaths, r->n_repaths, sizeof(*rp));
	for (size_t i = 0; rp && i < r->n_repaths; i++) {
		rp[i].from = arena_dup(c, r->repaths[i].from);
		rp[i].to = arena_dup(c, r->repaths[i].to);
	}
	p->repaths = rp;
	return p;
}

void migration_patch(struct migration *m, const struct migration_patch_req *req,
                     migration_done_fn done, void *arg)
{
	struct mig_call *c = plain_call(MIG_VERB_PATCH, NULL, done, arg);
	if (req) {
		c->patch = copy_patch(c, req);
		char q[MIG_QUOTE_MAX];
		c->prefix_buf =
		    xasprintf("%s %s", c->prefix, migration_quote(q, req->id ? req->id : ""));
		c->prefix = c->prefix_buf;
	}
	migration_enqueue(m, c);
}

void migration_prepare_dest(struct migration *m, const char *session_id,
                            const struct vmm_mig_options *opts, migration_done_fn done, void *arg)
{
	struct mig_call *c = plain_call(MIG_VERB_PREPARE_DEST, session_id, done, arg);
	if (opts)
		c->opts = *opts;
	migration_enqueue(m, c);
}

void migration_register_socket(struct migration *m, const char *session_id,
                               const uint8_t *protocol_info, size_t len, migration_done_fn done,
                               void *arg)
{
	struct mig_call *c = plain_call(MIG_VERB_REGISTER_SOCKET, session_id, done, arg);
	keep_bytes(c, protocol_info, len);
	migration_enqueue(m, c);
}

void migration_transfer(struct migration *m, const char *session_id, int64_t timeout_ns,
                        migration_done_fn done, void *arg)
{
	struct mig_call *c = plain_call(MIG_VERB_TRANSFER, session_id, done, arg);
	c->timeout_ns = timeout_ns > 0 ? timeout_ns : MIGRATION_SOCKET_TIMEOUT_NS;
	migration_enqueue(m, c);
}

void migration_finalize(struct migration *m, const char *session_id, int action,
                        migration_done_fn done, void *arg)
{
	struct mig_call *c = plain_call(MIG_VERB_FINALIZE, session_id, done, arg);
	c->action = action;
	migration_enqueue(m, c);
}

void migration_cancel(struct migration *m, const char *session_id, migration_done_fn done,
                      void *arg)
{
	struct mig_call *c = plain_call(MIG_VERB_CANCEL, session_id, done, arg);
	migration_enqueue(m, c);
}

void migration_cleanup(struct migration *m, const char *session_id, migration_done_fn done,
                       void *arg)
{
	struct mig_call *c = plain_call(MIG_VERB_CLEANUP, session_id, done, arg);
	migration_enqueue(m, c);
}

void migration_subscribe(struct migration *m, const char *session_id,
                         const struct mig_notify_sub_ops *ops, void *ud,
                         migration_subscribe_fn done, void *arg)
{
	struct mig_call *c = call_new(MIG_VERB_SUBSCRIBE, session_id, arg);
	c->cb.subscribe_done = done;
	c->sub_ops = *ops;
	c->sub_ud = ud;
	migration_enqueue(m, c);
}
