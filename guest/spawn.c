/* fork + exec with an fd map and an exec-error pipe (see spawn.h).  Between fork and exec the
 * child only makes async-signal-safe calls. */
#include "guest/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/xalloc.h"

#ifndef CLOSE_RANGE_UNSHARE
#include <linux/close_range.h>
#endif

extern char **environ;

static void child_fail(int pipe_w, int err)
{
	ssize_t n = write(pipe_w, &err, sizeof(err));
	(void)n;
	_exit(127);
}

static void child_run(const struct spawn_opts *o, int pipe_w, int devnull)
{
	sigset_t none;
	int hi[3];

	sigemptyset(&none);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* move the sources out of the 0..2 range first, so dup2 cannot clobber one of them */
	for (int i = 0; i < 3; i++) {
		int src = o->fds[i] >= 0 ? o->fds[i] : devnull;
		hi[i] = fcntl(src, F_DUPFD_CLOEXEC, 10);
		if (hi[i] < 0)
			child_fail(pipe_w, errno);
	}
	for (int i = 0; i < 3; i++)
		if (dup2(hi[i], i) < 0)
			child_fail(pipe_w, errno);
	if (o->setsid_ctty) {
		if (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0)
			child_fail(pipe_w, errno);
	}
	if (o->cwd && chdir(o->cwd) < 0)
		child_fail(pipe_w, errno);
	struct rlimit rl;
	if (o->nofile && getrlimit(RLIMIT_NOFILE, &rl) == 0 && o->nofile < rl.rlim_cur) {
		rl.rlim_cur = o->nofile;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* everything above 2 except the error pipe goes (our fds are CLOEXEC anyway; this also
	 * catches fds other code forgot to mark) */
	if (pipe_w > 3)
		close_range(3, (unsigned)pipe_w - 1, 0);
	close_range((unsigned)pipe_w + 1, ~0U, 0);
	if (o->env)
		execvpe(o->argv[0], o->argv, o->env);
	else
		execvp(o->argv[0], o->argv);
	child_fail(pipe_w, errno);
}

pid_t spawn_process(const struct spawn_opts *o, struct err *e)
{
	int p[2];
	_cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (!o->argv || !o->argv[0])
		return err_set(e, -EINVAL, "spawn: empty argv");
	if (devnull < 0)
		return err_sys(e, -errno, "open /dev/null");
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_sys(e, -errno, "spawn: pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int rc = -errno;
		close(p[0]);
		close(p[1]);
		return err_sys(e, rc, "fork");
	}
	if (pid == 0) {
		close(p[0]);
		child_run(o, p[1], devnull);
	}
	close(p[1]);
	/* blocks only until the child's exec (which closes the pipe) or its failure report */
	int child_errno = 0;
	ssize_t n;
	do {
		n = read(p[0], &child_errno, sizeof(child_errno));
	} while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == (ssize_t)sizeof(child_errno)) {
		/* the child _exit()s at once; the caller's SIGCHLD handling reaps it */
		return err_sys(e, -child_errno, "exec %s", o->argv[0]);
	}
	return pid;
}
