/* The runtime's tables and public API: containers (each with its init and exec'd processes)
 * and UVM processes, keyed by id and pid; create/start/exec/signal/shutdown/resize/ps/delete
 * validate against the table and hand OCI runtime calls to rt_oci.c, while exits, waiters and
 * retention live in rt_exit.c.  A busy counter, raised around every loop callback, defers an
 * rt_free made from inside a user callback until the outermost frame unwinds. */
#include "guest/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "guest/pty.h"
#include "guest/relay.h"
#include "guest/relay_hub.h"
#include "guest/runtime_priv.h"
#include "guest/spawn.h"

#define DEFAULT_STATE_DIR "/var/run/gcsrunc"
#define ID_MAX            128

static void rt_destroy(struct rt *rt);

void rt_busy_enter(struct rt *rt)
{
	rt->busy++;
}

void rt_busy_leave(struct rt *rt)
{
	if (--rt->busy == 0 && rt->free_pending)
		rt_destroy(rt);
}

/* Keep the three codes with a fixed meaning for lookups only. */
int rt_internal(int rc)
{
	if (rc == -ENOENT || rc == -ESRCH || rc == -EEXIST)
		return -EIO;
	return rc;
}

int rt_internal_err(struct err *e, int rc)
{
	rc = rt_internal(rc);
	if (e)
		e->code = rc;
	return rc;
}

const char *rt_exit_type_name(enum rt_exit_type t)
{
	switch (t) {
	case RT_EXIT_GRACEFUL:
		return "GracefulExit";
	case RT_EXIT_FORCED:
		return "ForcedExit";
	case RT_EXIT_UNEXPECTED:
		break;
	}
	return "UnexpectedExit";
}

int32_t rt_err_hresult(int status)
{
	switch (status) {
	case 0:
		return HR_OK;
	case -ENOENT:
		return HR_VMCOMPUTE_SYSTEM_NOT_FOUND;
	case -ESRCH:
		return HR_ERR_NOT_FOUND;
	case -EEXIST:
		return HR_VMCOMPUTE_SYSTEM_ALREADY_EXISTS;
	default:
		return HR_FAIL;
	}
}

/* ---- tables ---- */

bool rt_id_is_null(const char *id)
{
	return !id || !*id || strcmp(id, GCS_NULL_CONTAINER_ID) == 0;
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
			return false;
	}
	return true;
}

struct rt_container *rt_find_container(struct rt *rt, const char *id)
{
	if (!id)
		return NULL;
	for (struct dlink *l = rt->containers.next; l != &rt->containers; l = l->next) {
		struct rt_container *c = dl_entry(l, struct rt_container, link);
		if (strcmp(c->id, id) == 0)
			return c;
	}
	return NULL;
}

struct rt_container *rt_find_container_gen(struct rt *rt, const char *id, uint64_t gen)
{
	struct rt_container *c = rt_find_container(rt, id);
	return c && c->gen == gen ? c : NULL;
}

/* ---- containers ---- */

void rt_container_free(struct rt_container *c)
{
	if (c->init)
		rt_proc_free(c->init);
	while (!dl_empty(&c->procs))
		rt_proc_forget(dl_entry(c->procs.next, struct rt_proc, link));
	for (int i = 0; i < 3; i++)
		rt_close_fd(&c->pipes[i]);
	rt_close_fd(&c->pty);
	free(c->id);
	free(c->bundle);
	free(c->dir);
	free(c);
}

void rt_container_remove(struct rt_container *c)
{
	dl_del(&c->link);
	rt_container_free(c);
}

/* ---- public API ---- */

struct rt *rt_new(struct ev_loop *loop, const struct rt_config *cfg, struct err *e)
{
	struct rt_config def = {0};
	if (!cfg)
		cfg = &def;
	if (!loop || !ev_is_default_loop(loop)) {
		err_set(e, -EINVAL, "runtime: needs the default libev loop (child watchers)");
		return NULL;
	}
	const char *state = cfg->state_dir ? cfg->state_dir : DEFAULT_STATE_DIR;
	if (rt_mkdir_p(state, 0700, e) < 0) {
		err_prefix(e, "runtime: state dir");
		return NULL;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		err_sys(e, -errno, "runtime: PR_SET_CHILD_SUBREAPER");
		return NULL;
	}
	/* relays write to pipes whose reader may be gone: EPIPE, not death (children get the
	 * default disposition back in spawn.c) */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	struct rt *rt = xcalloc(1, sizeof(*rt));
	rt->loop = loop;
	rt->runtime = xstrdup(cfg->runtime ? cfg->runtime : "crun");
	rt->runtime_root = cfg->runtime_root ? xstrdup(cfg->runtime_root) : NULL;
	rt->state_dir = xstrdup(state);
	rt->pivot = cfg->use_pivot_root;
	rt->on_exit = cfg->on_container_exit;
	rt->ud = cfg->ud;
	rt->retain = cfg->retain_exits;
	rt->child_nofile = cfg->child_nofile;
	rt->hub = cfg->hub;
	dl_init(&rt->containers);
	dl_init(&rt->external);
	dl_init(&rt->ops);
	dl_init(&rt->loose);
	ev_child_init(&rt->child, rt_on_child, 0, 0);
	rt->child.data = rt;
	ev_child_start(loop, &rt->child);
	return rt;
}

static void rt_destroy(struct rt *rt)
{
	ev_child_stop(rt->loop, &rt->child);
	while (!dl_empty(&rt->ops))
		rt_op_free(dl_entry(rt->ops.next, struct rt_op, link));
	while (!dl_empty(&rt->containers))
		rt_container_remove(dl_entry(rt->containers.next, struct rt_container, link));
	while (!dl_empty(&rt->external))
		rt_proc_forget(dl_entry(rt->external.next, struct rt_proc, link));
	while (!dl_empty(&rt->loose))
		rt_wait_free(rt, dl_entry(rt->loose.next, struct rt_wait, link));
	free(rt->runtime);
	free(rt->runtime_root);
	free(rt->state_dir);
	free(rt);
}

void rt_free(struct rt *rt)
{
	if (!rt)
		return;
	if (rt->busy > 0) {
		rt->free_pending = true;
		return;
	}
	rt_destroy(rt);
}

/* The stdio of a runtime create/exec: with a console socket path `sock` (terminal), listen
 * there (op->sock_fd); otherwise one pipe per slot i with want[i] >= 0, the child's end in
 * child[i] and ours in ours[i] (stdin: the child reads; stdout/stderr: the child writes).
 * 0 or -errno; what was made stays in op/child/ours for the caller to close. */
static int op_stdio(struct rt_op *op, const char *sock, const int want[3], int child[3],
                    int ours[3], struct err *e)
{
	if (sock)
		return op->sock_fd = console_socket_listen(sock, e);
	for (int i = 0; i < 3; i++) {
		int p[2];
		if (want[i] < 0)
			continue;
		if (pipe2(p, O_CLOEXEC) < 0)
			return err_sys(e, -errno, "pipe");
		child[i] = i == 0 ? p[0] : p[1];
		ours[i] = i == 0 ? p[1] : p[0];
	}
	return 0;
}

/* Finish a create/exec command line (`--pid-file P [opt] [--console-socket S] id`) and spawn
 * it with the child's stdio ends (the caller still closes them). */
static int op_spawn(struct rt *rt, struct rt_op *op, struct rt_argv *a, const char *opt,
                    const char *sock, const char *id, const int child[3], struct err *e)
{
	rt_argv_add(a, "--pid-file");
	rt_argv_add(a, op->pid_path);
	if (opt)
		rt_argv_add(a, opt);
	if (sock) {
		rt_argv_add(a, "--console-socket");
		rt_argv_add(a, sock);
	}
	rt_argv_add(a, id);
	return rt_op_spawn(rt, op, a, child, e);
}

int rt_container_create(struct rt *rt, const char *id, const char *bundle_dir, json_t *spec,
                        rt_done_cb done, void *ud, struct err *e)
{
	if (!id || !valid_id(id))
		return err_set(e, -EINVAL, "create: invalid container id `%s`", id ? id : "");
	if (!bundle_dir || bundle_dir[0] != '/' || !json_is_object(spec))
		return err_set(e, -EINVAL, "create %s: need an absolute bundle path and a spec",
		               id);
	if (rt_find_container(rt, id))
		return err_set(e, -EEXIST, "create: container %s already exists", id);

	json_t *proc = json_object_get(spec, "process");
	bool terminal = json_is_true(json_object_get(proc, "terminal"));
	int rc = rt_mkdir_p(bundle_dir, 0700, e);
	_cleanup_free_ char *cfg_path = xasprintf("%s/config.json", bundle_dir);
	if (rc >= 0)
		rc = rt_write_json(cfg_path, spec, e);
	if (rc < 0) {
		rt_internal_err(e, rc);
		return err_prefix(e, "create %s", id);
	}

	struct rt_container *c = xcalloc(1, sizeof(*c));
	c->gen = ++rt->gen_next;
	c->id = xstrdup(id);
	c->bundle = xstrdup(bundle_dir);
	c->dir = xasprintf("%s/%s", rt->state_dir, id);
	c->state = C_CREATING;
	c->terminal = terminal;
	c->pipes[0] = c->pipes[1] = c->pipes[2] = -1;
	c->pty = -1;
	dl_init(&c->procs);
	dl_init(&c->link);

	struct rt_op *op = rt_op_new(OP_CREATE, id, c->gen);
	op->done = done;
	op->ud = ud;
	op->log_path = xasprintf("%s/create.log", c->dir);
	op->pid_path = xasprintf("%s/initpid", c->dir);
	op->terminal = terminal;
	int child[3] = {-1, -1, -1};
	_cleanup_free_ char *sock = NULL;

	static const int all[3] = {0, 0, 0};

	rt_rm_rf(c->dir);
	if (terminal)
		sock = xasprintf("%s/console.sock", c->dir);
	rc = rt_mkdir_p(c->dir, 0700, e);
	if (rc >= 0)
		rc = op_stdio(op, sock, all, child, c->pipes, e);
	if (rc >= 0) {
		struct rt_argv a;
		rt_argv_base(rt, &a, op->log_path);
		rt_argv_add(&a, "create");
		rt_argv_add(&a, "--bundle");
		rt_argv_add(&a, bundle_dir);
		rc = op_spawn(rt, op, &a, rt->pivot ? NULL : "--no-pivot", sock, id, child, e);
	}
	for (int i = 0; i < 3; i++)
		rt_close_fd(&child[i]);
	if (rc < 0) {
		rt_op_free(op);
		rt_container_free(c);
		rt_internal_err(e, rc);
		return err_prefix(e, "create %s", id);
	}
	dl_add_tail(&rt->containers, &c->link);
	return 0;
}

int rt_container_start(struct rt *rt, const char *id, struct rt_stdio conns, rt_done_cb done,
                       void *ud, struct err *e)
{
	struct rt_container *c = rt_find_container(rt, id);
	if (!c) {
		rt_close_stdio(&conns);
		return err_set(e, -ENOENT, "start: container %s not found", id ? id : "");
	}
	if (c->state != C_CREATED) {
		rt_close_stdio(&conns);
		return err_set(e, -EINVAL, "start %s: container is not in the created state", id);
	}
	struct rt_proc *init = c->init;
	struct err re;
	if (c->terminal)
		init->relay = relay_new_pty(rt->loop, steal_fd(&c->pty), conns.in, conns.out,
		                            conns.err, rt_proc_relay_done, init, &re);
	else
		init->relay =
		    relay_new_pipes(rt->loop, steal_fd(&c->pipes[0]), steal_fd(&c->pipes[1]),
		                    steal_fd(&c->pipes[2]), conns.in, conns.out, conns.err,
		                    rt_proc_relay_done, init, &re);
	if (!init->relay)
		log_warn("runtime: start id=%s: stdio relay: %s", id, re.msg);
	rt_relay_link(rt, init->relay, &conns);
	if (init->exited && init->relay)
		relay_close_input(init->relay);

	struct rt_op *op = rt_op_new(OP_START, id, c->gen);
	op->done = done;
	op->ud = ud;
	op->log_path = xasprintf("%s/start.log", c->dir);
	struct rt_argv a;
	rt_argv_base(rt, &a, op->log_path);
	rt_argv_add(&a, "start");
	rt_argv_add(&a, id);
	int rc = rt_op_spawn(rt, op, &a, NULL, e);
	if (rc < 0) {
		rt_op_free(op);
		return err_prefix(e, "start %s", id);
	}
	c->state = C_STARTING;
	return 0;
}

int rt_exec(struct rt *rt, const char *id, json_t *process, struct rt_stdio conns, rt_done_cb done,
            void *ud, struct err *e)
{
	struct rt_container *c = rt_find_container(rt, id);
	if (!c) {
		rt_close_stdio(&conns);
		return err_set(e, -ENOENT, "exec: container %s not found", id ? id : "");
	}
	if (c->state != C_RUNNING || c->init->exited || !json_is_object(process)) {
		rt_close_stdio(&conns);
		return err_set(e, -EINVAL, "exec in %s: %s", id,
		               json_is_object(process) ? "container is not running"
		                                       : "process must be an object");
	}
	unsigned n = ++c->seq;
	struct rt_op *op = rt_op_new(OP_EXEC, id, c->gen);
	op->done = done;
	op->ud = ud;
	op->conns = conns;
	op->terminal = json_is_true(json_object_get(process, "terminal"));
	op->log_path = xasprintf("%s/exec-%u.log", c->dir, n);
	op->pid_path = xasprintf("%s/exec-%u.pid", c->dir, n);
	_cleanup_free_ char *json_path = xasprintf("%s/exec-%u.json", c->dir, n);
	_cleanup_free_ char *sock = NULL;
	int child[3] = {-1, -1, -1};
	int want[3] = {conns.in, conns.out, conns.err};

	if (op->terminal)
		sock = xasprintf("%s/exec-%u.sock", c->dir, n);
	int rc = rt_write_json(json_path, process, e);
	if (rc >= 0)
		rc = op_stdio(op, sock, want, child, op->pipes, e);
	if (rc >= 0) {
		struct rt_argv a;
		rt_argv_base(rt, &a, op->log_path);
		rt_argv_add(&a, "exec");
		rt_argv_add(&a, "-d");
		rt_argv_add(&a, "--process");
		rt_argv_add(&a, json_path);
		rc = op_spawn(rt, op, &a, NULL, sock, id, child, e);
	}
	for (int i = 0; i < 3; i++)
		rt_close_fd(&child[i]);
	if (rc < 0) {
		rt_op_free(op);
		rt_internal_err(e, rc);
		return err_prefix(e, "exec in %s", id);
	}
	return 0;
}

int rt_exec_external(struct rt *rt, char *const argv[], char *const env[], const char *cwd,
                     bool emulate_console, struct rt_stdio conns, pid_t *pid, struct err *e)
{
	struct spawn_opts so = {.argv = argv, .env = env, .cwd = cwd, .nofile = rt->child_nofile};
	int master = -1, slave = -1;
	int pipes[3] = {-1, -1, -1};

	if (!argv || !argv[0]) {
		rt_close_stdio(&conns);
		return err_set(e, -EINVAL, "external process: empty command line");
	}
	if (emulate_console) {
		int rc = pty_open(&master, &slave, e);
		if (rc < 0) {
			rt_close_stdio(&conns);
			return rt_internal_err(e, rc);
		}
		so.fds[0] = so.fds[1] = so.fds[2] = slave;
		so.setsid_ctty = true;
	} else {
		/* pipes, relayed: the connections must stay in the agent to be re-dialled */
		int want[3] = {conns.in, conns.out, conns.err};
		so.fds[0] = so.fds[1] = so.fds[2] = -1;
		for (int i = 0; i < 3; i++) {
			if (want[i] < 0)
				continue;
			int p[2];
			if (pipe2(p, O_CLOEXEC) < 0) {
				int rc = err_sys(e, rt_internal(-errno), "external process: pipe");
				for (int k = 0; k < 3; k++) {
					rt_close_fd(&pipes[k]);
					if (so.fds[k] >= 0)
						close(so.fds[k]);
				}
				rt_close_stdio(&conns);
				return rc;
			}
			so.fds[i] = i == 0 ? p[0] : p[1];
			pipes[i] = i == 0 ? p[1] : p[0];
		}
	}
	pid_t child = spawn_process(&so, e);
	rt_close_fd(&slave);
	if (!emulate_console)
		for (int i = 0; i < 3; i++)
			if (so.fds[i] >= 0)
				close(so.fds[i]);
	if (child < 0) {
		rt_close_fd(&master);
		for (int i = 0; i < 3; i++)
			rt_close_fd(&pipes[i]);
		rt_close_stdio(&conns);
		rt_internal_err(e, (int)child);
		return err_prefix(e, "external process %s", argv[0]);
	}
	struct rt_proc *p = rt_proc_new(rt, NULL, child);
	struct err re;
	if (emulate_console) {
		p->relay = relay_new_pty(rt->loop, master, conns.in, conns.out, conns.err,
		                         rt_proc_relay_done, p, &re);
	} else {
		p->relay = relay_new_pipes(rt->loop, pipes[0], pipes[1], pipes[2], conns.in,
		                           conns.out, conns.err, rt_proc_relay_done, p, &re);
	}
	if (!p->relay)
		log_warn("runtime: external pid=%d: stdio relay: %s", (int)child, re.msg);
	rt_relay_link(rt, p->relay, &conns);
	dl_add_tail(&rt->external, &p->link);
	*pid = child;
	return 0;
}

static int lookup_proc(struct rt *rt, const char *id, pid_t pid, struct rt_container **cp,
                       struct rt_proc **pp, struct err *e)
{
	if (rt_id_is_null(id))
		return err_set(e, -ENOENT, "container %s not found", GCS_NULL_CONTAINER_ID);
	struct rt_container *c = rt_find_container(rt, id);
	if (!c)
		return err_set(e, -ENOENT, "container %s not found", id);
	if (c->state == C_CREATING)
		return err_set(e, -EBUSY, "container %s is still being created", id);
	struct rt_proc *p = rt_container_find_proc(c, pid);
	if (!p)
		return err_set(e, -ESRCH, "process %d not found in container %s", (int)pid, id);
	*cp = c;
	*pp = p;
	return 0;
}

int rt_signal(struct rt *rt, const char *id, pid_t pid, int sig, struct err *e)
{
	struct rt_container *c;
	struct rt_proc *p;
	int rc = lookup_proc(rt, id, pid, &c, &p, e);
	if (rc < 0)
		return rc;
	if (p->exited)
		return err_set(e, -ESRCH, "process %d in container %s has exited", (int)pid, id);
	if (sig == 0)
		sig = SIGKILL;
	enum rt_exit_type old = c->exit_type;
	if (p->is_init && sig == SIGTERM)
		c->exit_type = RT_EXIT_GRACEFUL;
	else if (p->is_init && sig == SIGKILL)
		c->exit_type = RT_EXIT_FORCED;
	if (kill(pid, sig) < 0) {
		c->exit_type = old;
		if (errno == ESRCH)
			return err_set(e, -ESRCH, "process %d not found", (int)pid);
		return err_sys(e, rt_internal(-errno), "signal %d to process %d", sig, (int)pid);
	}
	return 0;
}

int rt_shutdown(struct rt *rt, const char *id, bool graceful, rt_done_cb done, void *ud,
                struct err *e)
{
	struct rt_container *c = rt_id_is_null(id) ? NULL : rt_find_container(rt, id);
	if (!c)
		return err_set(e, -ENOENT, "shutdown: container %s not found", id ? id : "");
	if (c->state == C_CREATING)
		return err_set(e, -EBUSY, "shutdown %s: container is still being created", id);
	struct rt_op *op = rt_op_new(OP_KILL, id, c->gen);
	op->done = done;
	op->ud = ud;
	op->log_path = xasprintf("%s/kill.log", c->dir);
	struct rt_argv a;
	rt_argv_base(rt, &a, op->log_path);
	rt_argv_add(&a, "kill");
	rt_argv_add(&a, id);
	rt_argv_add(&a, graceful ? "15" : "9");
	/* set before the signal can arrive: the init's exit may be reaped before crun's */
	enum rt_exit_type old = c->exit_type;
	c->exit_type = graceful ? RT_EXIT_GRACEFUL : RT_EXIT_FORCED;
	/* as the Go GCS: a container being shut down stops re-dialling its stdio */
	if (c->init)
		relay_stop_redial(c->init->relay);
	for (struct dlink *l = c->procs.next; l != &c->procs; l = l->next)
		relay_stop_redial(dl_entry(l, struct rt_proc, link)->relay);
	int rc = rt_op_spawn(rt, op, &a, NULL, e);
	if (rc < 0) {
		c->exit_type = old;
		rt_op_free(op);
		return err_prefix(e, "shutdown %s", id);
	}
	return 0;
}

int rt_resize(struct rt *rt, const char *id, pid_t pid, uint16_t height, uint16_t width,
              struct err *e)
{
	struct rt_container *c;
	struct rt_proc *p;
	int rc = lookup_proc(rt, id, pid, &c, &p, e);
	if (rc < 0)
		return rc;
	int fd = p->relay ? relay_pty_fd(p->relay) : (p->is_init ? c->pty : -1);
	if (fd < 0)
		return err_set(e, -ENOTTY, "process %d in container %s has no terminal", (int)pid,
		               id);
	rc = pty_set_winsize(fd, height, width, e);
	return rc < 0 ? rt_internal_err(e, rc) : 0;
}

int rt_ps(struct rt *rt, const char *id, pid_t *pids, size_t max, struct err *e)
{
	struct rt_container *c = rt_id_is_null(id) ? NULL : rt_find_container(rt, id);
	if (!c)
		return err_set(e, -ENOENT, "container %s not found", id ? id : "");
	if (!c->init || c->init->exited)
		return 0;
	char line[4096], cg[4096];
	_cleanup_free_ char *path = xasprintf("/proc/%d/cgroup", (int)c->init->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return err_sys(e, rt_internal(-errno), "open %s", path);
	cg[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(cg, sizeof(cg), "%s", line + 3);
			break;
		}
	}
	fclose(f);
	if (!cg[0])
		return err_set(e, -EIO, "container %s: no cgroup v2 path in %s", id, path);
	_cleanup_free_ char *procs = xasprintf("/sys/fs/cgroup%s/cgroup.procs", cg);
	f = fopen(procs, "re");
	if (!f)
		return err_sys(e, rt_internal(-errno), "open %s", procs);
	size_t n = 0;
	char num[32];
	while (fgets(num, sizeof(num), f)) {
		char *end;
		long v = strtol(num, &end, 10);
		if (end == num)
			break;
		if (n < max)
			pids[n] = (pid_t)v;
		n++;
	}
	fclose(f);
	return n > INT_MAX ? INT_MAX : (int)n;
}

int rt_delete(struct rt *rt, const char *id, rt_done_cb done, void *ud, struct err *e)
{
	struct rt_container *c = rt_id_is_null(id) ? NULL : rt_find_container(rt, id);
	if (!c)
		return err_set(e, -ENOENT, "delete: container %s not found", id ? id : "");
	if (c->state == C_CREATING)
		return err_set(e, -EBUSY, "delete %s: container is still being created", id);
	struct rt_op *op = rt_op_new(OP_DELETE, id, c->gen);
	op->done = done;
	op->ud = ud;
	op->log_path = xasprintf("%s/delete.log", c->dir);
	op->rm_bundle = xstrdup(c->bundle);
	op->rm_dir = xstrdup(c->dir);
	rt_container_remove(c);
	struct rt_argv a;
	rt_argv_base(rt, &a, op->log_path);
	rt_argv_add(&a, "delete");
	rt_argv_add(&a, "-f");
	rt_argv_add(&a, id);
	int rc = rt_op_spawn(rt, op, &a, NULL, e);
	if (rc < 0) {
		rt_rm_rf(op->rm_bundle);
		rt_rm_rf(op->rm_dir);
		rt_op_free(op);
		return err_prefix(e, "delete %s", id);
	}
	return 0;
}

int rt_container_pid(struct rt *rt, const char *id, pid_t *pid, struct err *e)
{
	struct rt_container *c = rt_id_is_null(id) ? NULL : rt_find_container(rt, id);
	if (!c)
		return err_set(e, -ENOENT, "container %s not found", id ? id : "");
	*pid = c->state >= C_RUNNING && c->init ? c->init->pid : 0;
	return 0;
}

struct relay_stream *rt_process_stream(struct rt *rt, const char *id, pid_t pid, int which)
{
	struct rt_proc *p = NULL;
	if (rt_id_is_null(id)) {
		p = rt_proc_list_find(&rt->external, pid, false);
	} else {
		struct rt_container *c = rt_find_container(rt, id);
		if (c && c->state != C_CREATING)
			p = rt_container_find_proc(c, pid);
	}
	if (!p || !p->relay || which < 0 || which > 2)
		return NULL;
	return relay_get_stream(p->relay, (enum relay_which)which);
}

void rt_relay_link(struct rt *rt, struct relay *r, const struct rt_stdio *conns)
{
	if (rt->hub && r)
		relay_link(r, rt->hub, conns->ports);
}

int rt_release(struct rt *rt, const char *id, pid_t pid, struct err *e)
{
	struct dlink *list;
	if (rt_id_is_null(id)) {
		list = &rt->external;
	} else {
		struct rt_container *c = rt_find_container(rt, id);
		if (!c)
			return err_set(e, -ENOENT, "container %s not found", id);
		list = &c->procs;
	}
	for (struct dlink *l = list->next; l != list; l = l->next) {
		struct rt_proc *p = dl_entry(l, struct rt_proc, link);
		if (p->pid == pid && p->exited && (!p->relay || p->relay_done)) {
			rt_proc_forget(p);
			return 0;
		}
	}
	return err_set(e, -ESRCH, "no exited process %d to release", (int)pid);
}
