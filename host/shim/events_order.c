/* The per-container and per-exec order rules of the task events (events_order.h): a hash
 * table of live containers, each with its init process state and a list of its execs. */
#include "host/shim/events_order.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* One process's place in its life cycle.  An exec's ADDED is the init's CREATED. */
enum pstate { P_NONE, P_CREATED, P_STARTED, P_EXITED };

static const char *const pstate_name[] = {"none", "created", "started", "exited"};

struct exec_state {
	char *id;
	enum pstate st;
	struct exec_state *next;
};

struct ctr_state {
	char *id;
	enum pstate init;
	struct exec_state *execs;
	struct ctr_state *next; /* hash chain */
};

struct events_order {
	struct ctr_state **slots;
	size_t n_slots; /* a power of two */
	size_t count;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

struct events_order *events_order_new(void)
{
	struct events_order *o = xcalloc(1, sizeof(*o));
	o->n_slots = 64;
	o->slots = xcalloc(o->n_slots, sizeof(*o->slots));
	return o;
}

static void exec_free_all(struct exec_state *x)
{
	while (x) {
		struct exec_state *next = x->next;
		free(x->id);
		free(x);
		x = next;
	}
}

static void ctr_free(struct ctr_state *c)
{
	exec_free_all(c->execs);
	free(c->id);
	free(c);
}

void events_order_free(struct events_order *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n_slots; i++) {
		while (o->slots[i]) {
			struct ctr_state *c = o->slots[i];
			o->slots[i] = c->next;
			ctr_free(c);
		}
	}
	free(o->slots);
	free(o);
}

/* The link that points at container `cid` (or the chain's end). */
static struct ctr_state **ctr_link(struct events_order *o, const char *cid)
{
	struct ctr_state **l = &o->slots[hash_str(cid) & (o->n_slots - 1)];
	while (*l && strcmp((*l)->id, cid) != 0)
		l = &(*l)->next;
	return l;
}

static void grow(struct events_order *o)
{
	size_t n = o->n_slots * 2;
	struct ctr_state **slots = xcalloc(n, sizeof(*slots));
	for (size_t i = 0; i < o->n_slots; i++) {
		while (o->slots[i]) {
			struct ctr_state *c = o->slots[i];
			o->slots[i] = c->next;
			size_t k = hash_str(c->id) & (n - 1);
			c->next = slots[k];
			slots[k] = c;
		}
	}
	free(o->slots);
	o->slots = slots;
	o->n_slots = n;
}

static struct ctr_state *ctr_add(struct events_order *o, const char *cid)
{
	if (o->count + 1 > o->n_slots)
		grow(o);
	struct ctr_state *c = xcalloc(1, sizeof(*c));
	c->id = xstrdup(cid);
	struct ctr_state **l = &o->slots[hash_str(cid) & (o->n_slots - 1)];
	c->next = *l;
	*l = c;
	o->count++;
	return c;
}

static void ctr_remove(struct events_order *o, struct ctr_state **l)
{
	struct ctr_state *c = *l;
	*l = c->next;
	ctr_free(c);
	o->count--;
}

static struct exec_state **exec_link(struct ctr_state *c, const char *id)
{
	struct exec_state **l = &c->execs;
	while (*l && strcmp((*l)->id, id) != 0)
		l = &(*l)->next;
	return l;
}

static const char *const type_name[EVENTS_N_TYPES] = {
    [EVENTS_TASK_CREATE] = "TaskCreate",
    [EVENTS_TASK_START] = "TaskStart",
    [EVENTS_TASK_DELETE] = "TaskDelete",
    [EVENTS_TASK_EXIT] = "TaskExit",
    [EVENTS_TASK_OOM] = "TaskOOM",
    [EVENTS_TASK_EXEC_ADDED] = "TaskExecAdded",
    [EVENTS_TASK_EXEC_STARTED] = "TaskExecStarted",
    [EVENTS_TASK_PAUSED] = "TaskPaused",
    [EVENTS_TASK_RESUMED] = "TaskResumed",
    [EVENTS_TASK_CHECKPOINTED] = "TaskCheckpointed",
};

/* The init process's transitions: from which states each event may come, where it leads.
 * Bit i of `from` allows state i. */
struct rule {
	unsigned from;
	enum pstate to; /* P_NONE: the process is forgotten (deleted) */
};
#define B(s) (1u << (s))
static const struct rule init_rule[EVENTS_N_TYPES] = {
    [EVENTS_TASK_CREATE] = {B(P_NONE), P_CREATED},
    [EVENTS_TASK_START] = {B(P_CREATED), P_STARTED},
    [EVENTS_TASK_EXIT] = {B(P_CREATED) | B(P_STARTED), P_EXITED},
    [EVENTS_TASK_DELETE] = {B(P_CREATED) | B(P_EXITED), P_NONE},
};
static const struct rule exec_rule[EVENTS_N_TYPES] = {
    [EVENTS_TASK_EXEC_ADDED] = {B(P_NONE), P_CREATED},
    [EVENTS_TASK_EXEC_STARTED] = {B(P_CREATED), P_STARTED},
    [EVENTS_TASK_EXIT] = {B(P_CREATED) | B(P_STARTED), P_EXITED},
    [EVENTS_TASK_DELETE] = {B(P_CREATED) | B(P_EXITED), P_NONE},
};

static bool is_init(const char *cid, const char *id)
{
	return !id || !*id || strcmp(id, cid) == 0;
}

static int broken(struct err *e, const char *cid, const char *exec, enum events_type t,
                  enum pstate st)
{
	return err_set(e, -EPROTO, "container %s%s%s: %s while the %s is %s", cid,
	               exec ? " exec " : "", exec ? exec : "", type_name[t], exec ? "exec" : "task",
	               pstate_name[st]);
}

/* An exec event: TaskExecAdded/Started, or TaskExit/TaskDelete of an exec. */
static int apply_exec(struct ctr_state *c, enum events_type t, const char *id, struct err *e)
{
	int rc = 0;
	struct exec_state **l = exec_link(c, id);
	enum pstate st = *l ? (*l)->st : P_NONE;
	if (t == EVENTS_TASK_EXEC_ADDED && c->init != P_CREATED && c->init != P_STARTED)
		rc = broken(e, c->id, NULL, t, c->init);
	else if (!(exec_rule[t].from & B(st)))
		rc = broken(e, c->id, id, t, st);
	if (exec_rule[t].to == P_NONE) {
		if (*l) {
			struct exec_state *x = *l;
			*l = x->next;
			free(x->id);
			free(x);
		}
		return rc;
	}
	if (!*l) {
		struct exec_state *x = xcalloc(1, sizeof(*x));
		x->id = xstrdup(id);
		*l = x;
	}
	(*l)->st = exec_rule[t].to;
	return rc;
}

int events_order_apply(struct events_order *o, enum events_type type, const char *cid,
                       const char *id, struct err *e)
{
	if ((unsigned)type >= EVENTS_N_TYPES || !cid || !*cid)
		return err_set(e, -EINVAL, "events order: bad event");
	struct ctr_state **l = ctr_link(o, cid);
	struct ctr_state *c = *l;
	enum pstate init = c ? c->init : P_NONE;

	switch (type) {
	case EVENTS_TASK_EXEC_ADDED:
	case EVENTS_TASK_EXEC_STARTED:
		if (!id || !*id)
			return err_set(e, -EPROTO, "container %s: %s without an exec id", cid,
			               type_name[type]);
		if (!c)
			c = ctr_add(o, cid); /* the violation is reported by apply_exec */
		return apply_exec(c, type, id, e);
	case EVENTS_TASK_EXIT:
	case EVENTS_TASK_DELETE:
		if (!is_init(cid, id)) {
			if (!c) {
				/* Nothing to keep for an exec of an unknown container. */
				return broken(e, cid, id, type, P_NONE);
			}
			return apply_exec(c, type, id, e);
		}
		__attribute__((fallthrough)); /* the init process */
	case EVENTS_TASK_CREATE:
	case EVENTS_TASK_START: {
		int rc = init_rule[type].from & B(init) ? 0 : broken(e, cid, NULL, type, init);
		if (init_rule[type].to == P_NONE) {
			if (c)
				ctr_remove(o, l);
			return rc;
		}
		if (!c)
			c = ctr_add(o, cid);
		if (type == EVENTS_TASK_CREATE) {
			exec_free_all(c->execs);
			c->execs = NULL;
		}
		c->init = init_rule[type].to;
		return rc;
	}
	case EVENTS_TASK_OOM:
	case EVENTS_TASK_PAUSED:
	case EVENTS_TASK_RESUMED:
	case EVENTS_TASK_CHECKPOINTED:
		return c ? 0 : broken(e, cid, NULL, type, P_NONE);
	case EVENTS_N_TYPES:
		break;
	}
	return err_set(e, -EINVAL, "events order: bad event");
}

void events_order_forget(struct events_order *o, const char *cid)
{
	struct ctr_state **l = ctr_link(o, cid);
	if (*l)
		ctr_remove(o, l);
}

size_t events_order_tracked(const struct events_order *o)
{
	return o->count;
}
