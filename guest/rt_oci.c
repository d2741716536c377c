/* OCI runtime (crun) invocations: every call is an "op" spawned with its own log file and
 * completed from the single pid-0 ev_child watcher, which also routes container and UVM
 * process exits to rt_exit.c.  Completion handlers read the pid file / receive the pty master
 * and attach stdio relays; the caller's callback is always the last thing they do.  Also the
 * bookkeeping-file helpers (small files on tmpfs, which do not block). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "guest/pty.h"
#include "guest/runtime_priv.h"
#include "guest/spawn.h"

/* ---- small file helpers (bookkeeping files live on tmpfs: these do not block) ---- */

int rt_mkdir_p(const char *path, mode_t mode, struct err *e)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return err_sys(e, -errno, "mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return err_sys(e, -errno, "mkdir %s", p);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		log_debug("runtime: remove %s: %s", path, strerror(errno));
	return 0;
}

/* rm -rf that never crosses a mount point (a bundle may hold the mounted rootfs). */
void rt_rm_rf(const char *path)
{
	if (!path || access(path, F_OK) < 0)
		return;
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int rt_write_json(const char *path, json_t *j, struct err *e)
{
	if (json_dump_file(j, path, JSON_COMPACT) < 0)
		return err_set(e, -EIO, "write %s", path);
	return 0;
}

static int read_pid_file(const char *path, pid_t *pid, struct err *e)
{
	char buf[32];
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", path);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return err_set(e, -EIO, "empty pid file %s", path);
	buf[n] = 0;
	char *end;
	long v = strtol(buf, &end, 10);
	if (v <= 0 || v > INT_MAX || (*end && *end != '\n'))
		return err_set(e, -EIO, "bad pid file %s", path);
	*pid = (pid_t)v;
	return 0;
}

/* The tail of the runtime's log, on one line, for error messages. */
static void read_log_tail(const char *path, char *out, size_t cap)
{
	out[0] = 0;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t size = lseek(fd, 0, SEEK_END);
	off_t start = size > (off_t)(cap - 1) ? size - (off_t)(cap - 1) : 0;
	ssize_t n = pread(fd, out, cap - 1, start);
	if (n < 0)
		n = 0;
	out[n] = 0;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = 0;
	for (ssize_t i = 0; i < n; i++)
		if (out[i] == '\n')
			out[i] = ' ';
}

/* ---- runtime invocations ---- */

void rt_argv_add(struct rt_argv *a, const char *s)
{
	if (a->n < (int)(sizeof(a->v) / sizeof(a->v[0])) - 1)
		a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

void rt_argv_base(struct rt *rt, struct rt_argv *a, const char *log_path)
{
	a->n = 0;
	rt_argv_add(a, rt->runtime);
	if (rt->runtime_root) {
		rt_argv_add(a, "--root");
		rt_argv_add(a, rt->runtime_root);
	}
	rt_argv_add(a, "--log");
	rt_argv_add(a, log_path);
}

struct rt_op *rt_op_new(enum op_kind kind, const char *id, uint64_t gen)
{
	struct rt_op *op = xcalloc(1, sizeof(*op));
	op->kind = kind;
	op->id = xstrdup(id);
	op->gen = gen;
	op->sock_fd = -1;
	op->pipes[0] = op->pipes[1] = op->pipes[2] = -1;
	op->conns = RT_STDIO_NONE;
	dl_init(&op->link);
	return op;
}

void rt_op_free(struct rt_op *op)
{
	if (!op)
		return;
	dl_del(&op->link);
	rt_close_fd(&op->sock_fd);
	for (int i = 0; i < 3; i++)
		rt_close_fd(&op->pipes[i]);
	rt_close_stdio(&op->conns);
	free(op->id);
	free(op->log_path);
	free(op->pid_path);
	free(op->rm_bundle);
	free(op->rm_dir);
	free(op);
}

/* Spawn the runtime for op (argv ready, child stdio in fds) and track it. */
int rt_op_spawn(struct rt *rt, struct rt_op *op, struct rt_argv *a, const int fds[3], struct err *e)
{
	struct spawn_opts so = {
	    .argv = (char *const *)a->v, .fds = {-1, -1, -1}, .nofile = rt->child_nofile};
	if (fds)
		for (int i = 0; i < 3; i++)
			so.fds[i] = fds[i];
	op->reap_seq = rt->reap_seq;
	pid_t pid = spawn_process(&so, e);
	if (pid < 0)
		return rt_internal_err(e, (int)pid);
	op->pid = pid;
	dl_add_tail(&rt->ops, &op->link);
	return 0;
}

static int op_failure(struct rt_op *op, int status, const char *what, struct err *e)
{
	char tail[400];
	read_log_tail(op->log_path, tail, sizeof(tail));
	if (WIFSIGNALED(status))
		return err_set(e, -EIO, "%s %s: runtime killed by signal %d%s%s", what, op->id,
		               WTERMSIG(status), tail[0] ? ": " : "", tail);
	return err_set(e, -EIO, "%s %s: runtime exit status %d%s%s", what, op->id,
	               WEXITSTATUS(status), tail[0] ? ": " : "", tail);
}

static bool op_ok(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Fire-and-forget `runtime delete -f id` (cleanup after a failed create). */
static void spawn_cleanup_delete(struct rt *rt, const char *id, const char *dir)
{
	struct err e;
	struct rt_op *op = rt_op_new(OP_DELETE, id, 0);
	struct rt_argv a;
	op->log_path = xasprintf("%s/delete.log", dir);
	rt_argv_base(rt, &a, op->log_path);
	rt_argv_add(&a, "delete");
	rt_argv_add(&a, "-f");
	rt_argv_add(&a, id);
	if (rt_op_spawn(rt, op, &a, NULL, &e) < 0) {
		log_warn("runtime: cleanup of id=%s: %s", id, e.msg);
		rt_op_free(op);
	}
}

static void finish_create(struct rt *rt, struct rt_op *op, int status, struct err *e, pid_t *pid)
{
	struct rt_container *c = rt_find_container_gen(rt, op->id, op->gen);
	if (!c) {
		err_set(e, -ENOENT, "create %s: container vanished", op->id);
		return;
	}
	if (!op_ok(status)) {
		op_failure(op, status, "create", e);
		rt_container_remove(c);
		return;
	}
	int rc = read_pid_file(op->pid_path, pid, e);
	if (rc >= 0 && c->terminal) {
		int fd = console_socket_recv(op->sock_fd, e);
		if (fd == IO_AGAIN)
			rc = err_set(e, -EIO, "no pty master received on the console socket");
		else if (fd < 0)
			rc = fd;
		else
			c->pty = fd;
	}
	if (rc < 0) {
		rt_internal_err(e, rc);
		err_prefix(e, "create %s", op->id);
		spawn_cleanup_delete(rt, op->id, c->dir);
		rt_container_remove(c);
		return;
	}
	c->init = rt_proc_new(rt, c, *pid);
	c->init->is_init = true;
	int st;
	if (rt_unclaimed_claim(rt, *pid, op->reap_seq, &st))
		rt_proc_exited(c->init, st);
	c->state = C_CREATED;
	log_debug("runtime: created id=%s init=%d", c->id, (int)*pid);
}

static void finish_start(struct rt *rt, struct rt_op *op, int status, struct err *e, pid_t *pid)
{
	struct rt_container *c = rt_find_container_gen(rt, op->id, op->gen);
	if (!c) {
		err_set(e, -ENOENT, "start %s: container deleted meanwhile", op->id);
		return;
	}
	if (!op_ok(status)) {
		op_failure(op, status, "start", e);
		return;
	}
	c->state = C_RUNNING;
	*pid = c->init->pid;
}

static void finish_exec(struct rt *rt, struct rt_op *op, int status, struct err *e, pid_t *pid)
{
	struct rt_container *c = rt_find_container_gen(rt, op->id, op->gen);
	if (!c) {
		err_set(e, -ENOENT, "exec in %s: container deleted meanwhile", op->id);
		return;
	}
	if (!op_ok(status)) {
		op_failure(op, status, "exec in", e);
		return;
	}
	int rc = read_pid_file(op->pid_path, pid, e);
	int master = -1;
	if (rc >= 0 && op->terminal) {
		master = console_socket_recv(op->sock_fd, e);
		if (master == IO_AGAIN)
			rc = err_set(e, -EIO, "no pty master received on the console socket");
		else if (master < 0)
			rc = master;
	}
	if (rc < 0) {
		rt_internal_err(e, rc);
		err_prefix(e, "exec in %s", op->id);
		if (*pid > 0)
			kill(*pid, SIGKILL);
		*pid = 0;
		return;
	}
	struct rt_proc *p = rt_proc_new(rt, c, *pid);
	struct err re;
	if (op->terminal)
		p->relay = relay_new_pty(rt->loop, master, op->conns.in, op->conns.out,
		                         op->conns.err, rt_proc_relay_done, p, &re);
	else
		p->relay = relay_new_pipes(rt->loop, op->pipes[0], op->pipes[1], op->pipes[2],
		                           op->conns.in, op->conns.out, op->conns.err,
		                           rt_proc_relay_done, p, &re);
	rt_relay_link(rt, p->relay, &op->conns);
	/* the relay owns (or closed) them now */
	op->conns = RT_STDIO_NONE;
	op->pipes[0] = op->pipes[1] = op->pipes[2] = -1;
	if (!p->relay)
		log_warn("runtime: exec id=%s pid=%d: stdio relay: %s", c->id, (int)*pid, re.msg);
	dl_add_tail(&c->procs, &p->link);
	int st;
	if (rt_unclaimed_claim(rt, *pid, op->reap_seq, &st))
		rt_proc_exited(p, st);
}

static void finish_delete(struct rt_op *op, int status, struct err *e)
{
	if (!op_ok(status))
		op_failure(op, status, "delete", e);
	rt_rm_rf(op->rm_bundle);
	rt_rm_rf(op->rm_dir);
}

static void op_finish(struct rt *rt, struct rt_op *op, int status)
{
	struct err e;
	pid_t pid = 0;

	err_clear(&e);
	dl_del(&op->link);
	switch (op->kind) {
	case OP_CREATE:
		finish_create(rt, op, status, &e, &pid);
		break;
	case OP_START:
		finish_start(rt, op, status, &e, &pid);
		break;
	case OP_EXEC:
		finish_exec(rt, op, status, &e, &pid);
		break;
	case OP_KILL:
		if (!op_ok(status))
			op_failure(op, status, "kill", &e);
		break;
	case OP_DELETE:
		finish_delete(op, status, &e);
		break;
	}
	if (e.code < 0)
		pid = 0;
	if (op->done && !rt->free_pending)
		op->done(rt, op->id, e.code, &e, pid, op->ud);
	rt_op_free(op);
}

void rt_on_child(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)loop;
	(void)revents;
	struct rt *rt = w->data;
	pid_t pid = w->rpid;
	int status = w->rstatus;

	if (!WIFEXITED(status) && !WIFSIGNALED(status))
		return;
	rt_busy_enter(rt);
	rt->reap_seq++;
	struct rt_op *op = NULL;
	for (struct dlink *l = rt->ops.next; l != &rt->ops; l = l->next) {
		struct rt_op *o = dl_entry(l, struct rt_op, link);
		if (o->pid == pid) {
			op = o;
			break;
		}
	}
	if (op) {
		op_finish(rt, op, status);
	} else {
		struct rt_proc *p = rt_find_live_proc(rt, pid);
		if (p)
			rt_proc_exited(p, status);
		else
			rt_unclaimed_remember(rt, pid, status);
	}
	rt_busy_leave(rt);
}
