/* The private containerd of containerd.h: its directory and config, the process, ctr
 * commands with captured output and a deadline, the busybox image, and the cleanup that
 * leaves no task, shim or mount behind. */
#include "tests/lib/containerd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fdio.h"
#include "common/xalloc.h"
#include "tests/lib/testenv.h"

#define CTR_ARGS_MAX 48
#define OUTPUT_MAX   (1u << 20) /* of one command; the rest is read and dropped */

static int enter_private_mounts(struct err *e)
{
	static bool done;
	if (done)
		return 0;
	if (geteuid() != 0)
		return err_set(e, -EPERM, "not root: containerd needs root");
	if (unshare(CLONE_NEWNS) < 0)
		return err_sys(e, -errno, "unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return err_sys(e, -errno, "make / private");
	done = true;
	return 0;
}

static int write_file(const char *path, const char *text, struct err *e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", path);
	int rc = fd_write_all(fd, text, strlen(text), e);
	close(fd);
	return rc;
}

int ctrd_init(struct ctrd *c, struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->timeout_s = 120;
	int rc = enter_private_mounts(e);
	if (rc < 0)
		return rc;
	c->dir = testenv_mkdtemp("ferry-ctrd.", e);
	if (!c->dir)
		return e->code;
	c->sock = xasprintf("%s/c.sock", c->dir);
	c->ttrpc = xasprintf("%s/c.sock.ttrpc", c->dir);
	c->state = xasprintf("%s/state", c->dir);
	c->log = xasprintf("%s/containerd.log", c->dir);
	_cleanup_free_ char *cfg = xasprintf("version = 2\n"
	                                     "root = \"%s/root\"\n"
	                                     "state = \"%s\"\n"
	                                     "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
	                                     "[grpc]\n  address = \"%s\"\n"
	                                     "[ttrpc]\n  address = \"%s\"\n"
	                                     "[debug]\n  address = \"\"\n  level = \"debug\"\n",
	                                     c->dir, c->state, c->sock, c->ttrpc);
	_cleanup_free_ char *path = xasprintf("%s/config.toml", c->dir);
	return write_file(path, cfg, e);
}

static double now_s(void)
{
	return (double)mono_ns() / 1e9;
}

/* The last `n` bytes of containerd's log, one line, for error messages. */
static void log_tail(const struct ctrd *c, char *out, size_t n)
{
	out[0] = '\0';
	int fd = open(c->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)(n - 1) ? end - (off_t)(n - 1) : 0;
	ssize_t r = pread(fd, out, n - 1, from);
	close(fd);
	out[r > 0 ? r : 0] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

int ctrd_start(struct ctrd *c, struct err *e)
{
	if (c->pid > 0)
		return 0;
	_cleanup_free_ char *cfg = xasprintf("%s/config.toml", c->dir);
	int logfd = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return err_sys(e, -errno, "open %s", c->log);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(logfd);
		return err_sys(e, -errno, "fork");
	}
	if (pid == 0) {
		/* Dies with the test (its shims do not: they are cleaned by ctrd_fini). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(126);
		execlp("containerd", "containerd", "--config", cfg, (char *)NULL);
		_exit(127);
	}
	close(logfd);
	c->pid = pid;
	double deadline = now_s() + c->timeout_s;
	while (now_s() < deadline) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			c->pid = 0;
			char tail[600];
			log_tail(c, tail, sizeof(tail));
			return err_set(e, -EIO, "containerd exited (status %d): %s", st, tail);
		}
		if (access(c->ttrpc, F_OK) == 0) {
			struct ctrd_out out;
			int rc = ctrd_ctr(c, &out, e, "version", (char *)NULL);
			int status = out.status;
			ctrd_out_fini(&out);
			if (rc < 0)
				return rc;
			if (status == 0)
				return 0;
		}
		usleep(50 * 1000);
	}
	return err_set(e, -ETIMEDOUT, "containerd did not come up within %.0f s", c->timeout_s);
}

int ctrd_stop(struct ctrd *c, struct err *e)
{
	if (c->pid <= 0)
		return 0;
	kill(c->pid, SIGTERM);
	double deadline = now_s() + c->timeout_s;
	int st;
	while (waitpid(c->pid, &st, WNOHANG) == 0) {
		if (now_s() > deadline) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &st, 0);
			c->pid = 0;
			return err_set(e, -ETIMEDOUT, "containerd ignored SIGTERM for %.0f s",
			               c->timeout_s);
		}
		usleep(20 * 1000);
	}
	c->pid = 0;
	return 0;
}

int ctrd_restart(struct ctrd *c, struct err *e)
{
	int rc = ctrd_stop(c, e);
	return rc < 0 ? rc : ctrd_start(c, e);
}

/* Fork `ctr -a SOCK argv...` with stdout+stderr on a pipe.  Returns the pid, the read end in
 * *fd. */
static pid_t spawn_ctr(struct ctrd *c, const char *const *args, size_t n, int *fd, struct err *e)
{
	const char *argv[CTR_ARGS_MAX + 4];
	if (n > CTR_ARGS_MAX)
		return err_set(e, -E2BIG, "too many ctr arguments");
	argv[0] = "ctr";
	argv[1] = "-a";
	argv[2] = c->sock;
	memcpy(argv + 3, args, n * sizeof(*args));
	argv[3 + n] = NULL;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_sys(e, -errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return err_sys(e, -errno, "fork");
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
			_exit(126);
		execvp("ctr", (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	*fd = p[0];
	return pid;
}

static size_t collect_args(va_list ap, const char **args)
{
	size_t n = 0;
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < CTR_ARGS_MAX + 1)
		args[n++] = a;
	return n;
}

int ctrd_ctr(struct ctrd *c, struct ctrd_out *out, struct err *e, ...)
{
	memset(out, 0, sizeof(*out));
	out->status = -1;
	const char *args[CTR_ARGS_MAX + 1];
	va_list ap;
	va_start(ap, e);
	size_t n = collect_args(ap, args);
	va_end(ap);
	int fd;
	pid_t pid = spawn_ctr(c, args, n, &fd, e);
	if (pid < 0)
		return pid;
	struct buf b;
	buf_init(&b);
	double deadline = now_s() + c->timeout_s;
	bool timed_out = false;
	for (;;) {
		double left = deadline - now_s();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		char chunk[4096];
		ssize_t got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		if (buf_avail(&b) < OUTPUT_MAX)
			buf_append(&b, chunk, (size_t)got);
	}
	close(fd);
	if (timed_out)
		kill(pid, SIGKILL);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	out->len = buf_avail(&b);
	out->text = xmalloc(out->len + 1);
	if (out->len)
		memcpy(out->text, buf_head(&b), out->len);
	out->text[out->len] = '\0';
	buf_fini(&b);
	out->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (timed_out)
		return err_set(e, -ETIMEDOUT, "ctr %s: no end within %.0f s; output: %.300s",
		               n ? args[0] : "", c->timeout_s, out->text);
	return 0;
}

void ctrd_out_fini(struct ctrd_out *out)
{
	free(out->text);
	out->text = NULL;
	out->len = 0;
}

pid_t ctrd_ctr_spawn(struct ctrd *c, int *fd_out, struct err *e, ...)
{
	const char *args[CTR_ARGS_MAX + 1];
	va_list ap;
	va_start(ap, e);
	size_t n = collect_args(ap, args);
	va_end(ap);
	return spawn_ctr(c, args, n, fd_out, e);
}

void ctrd_reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Each line of `ctr ARGS` output, for a cleanup loop; NULL on failure. */
static char *ctr_lines(struct ctrd *c, const char *ns, const char *what)
{
	struct ctrd_out out;
	struct err e;
	if (ctrd_ctr(c, &out, &e, "-n", ns, what, "ls", "-q", (char *)NULL) < 0 ||
	    out.status != 0) {
		ctrd_out_fini(&out);
		return NULL;
	}
	return out.text;
}

/* Ask containerd to kill and delete every task and container of every namespace. */
static void remove_everything(struct ctrd *c)
{
	struct ctrd_out out;
	struct err e;
	if (ctrd_ctr(c, &out, &e, "namespaces", "ls", "-q", (char *)NULL) < 0 || out.status != 0) {
		ctrd_out_fini(&out);
		return;
	}
	char *save_ns = NULL;
	for (char *ns = strtok_r(out.text, "\n", &save_ns); ns;
	     ns = strtok_r(NULL, "\n", &save_ns)) {
		_cleanup_free_ char *tasks = ctr_lines(c, ns, "tasks");
		char *save = NULL;
		for (char *id = tasks ? strtok_r(tasks, "\n", &save) : NULL; id;
		     id = strtok_r(NULL, "\n", &save)) {
			struct ctrd_out o;
			ctrd_ctr(c, &o, &e, "-n", ns, "tasks", "delete", "-f", id, (char *)NULL);
			ctrd_out_fini(&o);
		}
		_cleanup_free_ char *ctrs = ctr_lines(c, ns, "containers");
		for (char *id = ctrs ? strtok_r(ctrs, "\n", &save) : NULL; id;
		     id = strtok_r(NULL, "\n", &save)) {
			struct ctrd_out o;
			ctrd_ctr(c, &o, &e, "-n", ns, "containers", "delete", id, (char *)NULL);
			ctrd_out_fini(&o);
		}
	}
	ctrd_out_fini(&out);
}

/* SIGKILL the shims whose bundles are still in the state directory (containerd was gone). */
static void kill_leftover_shims(struct ctrd *c)
{
	_cleanup_free_ char *root = xasprintf("%s/io.containerd.runtime.v2.task", c->state);
	DIR *nsd = opendir(root);
	if (!nsd)
		return;
	struct dirent *ns;
	while ((ns = readdir(nsd))) {
		if (ns->d_name[0] == '.')
			continue;
		_cleanup_free_ char *nsdir = xasprintf("%s/%s", root, ns->d_name);
		DIR *td = opendir(nsdir);
		struct dirent *t;
		while (td && (t = readdir(td))) {
			if (t->d_name[0] == '.')
				continue;
			_cleanup_free_ char *pf = xasprintf("%s/%s/shim.pid", nsdir, t->d_name);
			FILE *f = fopen(pf, "re");
			int pid = 0;
			if (f && fscanf(f, "%d", &pid) == 1 && pid > 1)
				kill(pid, SIGKILL);
			if (f)
				fclose(f);
		}
		if (td)
			closedir(td);
	}
	closedir(nsd);
}

void ctrd_fini(struct ctrd *c)
{
	if (!c || !c->dir)
		return;
	struct err e;
	if (c->pid > 0)
		remove_everything(c);
	ctrd_stop(c, &e);
	kill_leftover_shims(c);
	testenv_rm_rf(c->dir);
	free(c->dir);
	free(c->sock);
	free(c->ttrpc);
	free(c->state);
	free(c->log);
	memset(c, 0, sizeof(*c));
}

int ctrd_import_busybox(struct ctrd *c, const char *name, struct err *e)
{
	const char *rootfs = testenv_rootfs(e);
	if (!rootfs)
		return e->code;
	const char *build = getenv("BUILD");
	char build_abs[PATH_MAX];
	if (!realpath(build && *build ? build : "build", build_abs))
		return err_sys(e, -errno, "realpath of the build directory");
	/* One archive per image name (the name is inside, in the index's annotations). */
	uint32_t h = 2166136261u;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	_cleanup_free_ char *tar = xasprintf("%s/ctrd-image-%08x.tar", build_abs, h);
	if (access(tar, R_OK) < 0) {
		_cleanup_free_ char *cmd =
		    xasprintf("sh tests/scripts/mkimage.sh '%s' '%s' '%s'", tar, name, rootfs);
		int st = system(cmd);
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return err_set(e, -EIO, "mkimage.sh %s failed (status %d)", tar, st);
	}
	_cleanup_free_ char *base = xstrdup(name);
	char *colon = strrchr(base, ':');
	if (colon && !strchr(colon, '/'))
		*colon = '\0';
	struct ctrd_out out;
	int rc = ctrd_ctr(c, &out, e, "images", "import", "--base-name", base, tar, (char *)NULL);
	if (rc == 0 && out.status != 0)
		rc = err_set(e, -EIO, "ctr images import %s: status %d: %.300s", tar, out.status,
		             out.text);
	ctrd_out_fini(&out);
	return rc;
}
