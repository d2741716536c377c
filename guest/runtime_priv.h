/* Internals shared by the runtime's files (not for other modules): runtime.c holds the
 * tables and the public API, rt_exit.c the process records, waiters and exit-code retention
 * (§5.2-§5.4), rt_oci.c the OCI runtime invocations and the child watcher that completes them.
 * The structures are documented here because all three files walk them. */
#ifndef FERRY_GUEST_RUNTIME_PRIV_H
#define FERRY_GUEST_RUNTIME_PRIV_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "guest/relay.h"
#include "guest/runtime.h"

#define UNCLAIMED_MAX 64
/* retain_exits: exited exec'd processes kept per container, and exited UVM processes kept,
 * beyond which the one that exited first is forgotten */
#define RT_RETAIN_MAX 1024

struct dlink {
	struct dlink *prev, *next;
};

static inline void dl_init(struct dlink *h)
{
	h->prev = h->next = h;
}

static inline bool dl_empty(const struct dlink *h)
{
	return h->next == h;
}

static inline void dl_add_tail(struct dlink *h, struct dlink *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void dl_del(struct dlink *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

#define dl_entry(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

enum cstate { C_CREATING, C_CREATED, C_STARTING, C_RUNNING };

struct rt_container;

struct rt_proc {
	struct dlink link; /* container's procs, or rt->external; unused for an init */
	struct rt *rt;
	struct rt_container *c; /* NULL: external */
	pid_t pid;
	bool is_init;
	bool exited;
	bool relay_done;
	uint32_t code;
	uint64_t exit_seq; /* order of exits (rt->exit_seq), for the retention bound */
	struct relay *relay;
	struct dlink waiters;
};

struct rt_container {
	struct dlink link;
	uint64_t gen;
	char *id;
	char *bundle;
	char *dir; /* bookkeeping: state_dir/id */
	enum cstate state;
	bool terminal;
	int pipes[3]; /* before start: stdin write end, stdout/stderr read ends */
	int pty;      /* before start (terminal): the pty master */
	struct rt_proc *init;
	struct dlink procs;
	enum rt_exit_type exit_type;
	bool notified;
	unsigned seq;
};

enum op_kind { OP_CREATE, OP_START, OP_EXEC, OP_KILL, OP_DELETE };

struct rt_op {
	struct dlink link;
	enum op_kind kind;
	pid_t pid;
	char *id;
	uint64_t gen;
	char *log_path;
	char *pid_path;
	int sock_fd; /* console socket (listening) */
	int pipes[3];
	struct rt_stdio conns;
	bool terminal;
	uint64_t reap_seq;
	char *rm_bundle;
	char *rm_dir;
	rt_done_cb done;
	void *ud;
};

struct rt_wait {
	struct dlink link; /* proc->waiters, rt->loose or a delivery list */
	struct rt *rt;
	struct rt_proc *p; /* NULL: answer fixed in hr/code */
	int32_t hr;
	uint32_t code;
	ev_timer timer;
	rt_wait_cb cb;
	void *ud;
};

struct reaped {
	pid_t pid;
	int status;
	uint64_t seq;
};

struct rt {
	struct ev_loop *loop;
	unsigned long child_nofile;
	char *runtime;
	char *runtime_root;
	char *state_dir;
	bool pivot;
	rt_container_exit_cb on_exit;
	void *ud;
	bool retain;
	struct relay_hub *hub;
	struct dlink containers;
	struct dlink external;
	struct dlink ops;
	struct dlink loose;
	ev_child child;
	uint64_t gen_next;
	uint64_t reap_seq;
	uint64_t exit_seq;
	struct reaped unclaimed[UNCLAIMED_MAX];
	unsigned unclaimed_next;
	int busy;
	bool free_pending;
};

struct rt_argv {
	const char *v[24];
	int n;
};

static inline void rt_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static inline void rt_close_stdio(struct rt_stdio *s)
{
	rt_close_fd(&s->in);
	rt_close_fd(&s->out);
	rt_close_fd(&s->err);
}

/* runtime.c: the busy counter (defers rt_free made inside a callback), error-code hygiene
 * (rt_internal keeps -ENOENT/-ESRCH/-EEXIST for lookups only), tables */
void rt_busy_enter(struct rt *rt);
void rt_busy_leave(struct rt *rt);
int rt_internal(int rc);
int rt_internal_err(struct err *e, int rc);
bool rt_id_is_null(const char *id);
struct rt_container *rt_find_container(struct rt *rt, const char *id);
struct rt_container *rt_find_container_gen(struct rt *rt, const char *id, uint64_t gen);
void rt_container_free(struct rt_container *c);
void rt_container_remove(struct rt_container *c);

/* rt_exit.c */
struct rt_proc *rt_proc_list_find(struct dlink *h, pid_t pid, bool live_only);
struct rt_proc *rt_container_find_proc(struct rt_container *c, pid_t pid);
struct rt_proc *rt_find_live_proc(struct rt *rt, pid_t pid);
void rt_unclaimed_remember(struct rt *rt, pid_t pid, int status);
bool rt_unclaimed_claim(struct rt *rt, pid_t pid, uint64_t since, int *status);
void rt_wait_free(struct rt *rt, struct rt_wait *w);
void rt_proc_free(struct rt_proc *p);
void rt_proc_forget(struct rt_proc *p);
/* Link a new relay's streams to the hub (if any) with the ports of `conns`. */
void rt_relay_link(struct rt *rt, struct relay *r, const struct rt_stdio *conns);
void rt_proc_exited(struct rt_proc *p, int status);
void rt_proc_relay_done(struct relay *r, void *ud);
struct rt_proc *rt_proc_new(struct rt *rt, struct rt_container *c, pid_t pid);

/* rt_oci.c: bookkeeping files, runtime invocations (ops) */
int rt_mkdir_p(const char *path, mode_t mode, struct err *e);
void rt_rm_rf(const char *path);
int rt_write_json(const char *path, json_t *j, struct err *e);
void rt_argv_add(struct rt_argv *a, const char *s);
void rt_argv_base(struct rt *rt, struct rt_argv *a, const char *log_path);
struct rt_op *rt_op_new(enum op_kind kind, const char *id, uint64_t gen);
void rt_op_free(struct rt_op *op);
int rt_op_spawn(struct rt *rt, struct rt_op *op, struct rt_argv *a, const int fds[3],
                struct err *e);
void rt_on_child(struct ev_loop *loop, ev_child *w, int revents);

#endif
