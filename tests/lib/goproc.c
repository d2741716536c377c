/* The Go peer processes of goproc.h: fork + exec with two pipes, and waits that poll the
 * child's stdout and exit while turning the caller's loop. */
#include "tests/lib/goproc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdio.h"

const char *goproc_bin(const char *name)
{
	static char path[256];
	const char *b = getenv("BUILD");
	snprintf(path, sizeof(path), "%s/go/%s", b && *b ? b : "build", name);
	return path;
}

int goproc_start(struct goproc *p, char *const argv[])
{
	memset(p, 0, sizeof(*p));
	p->in = p->out = -1;
	buf_init(&p->buf);
	if (access(argv[0], X_OK) < 0)
		return -errno;
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(in[0]), close(in[1]), close(out[0]), close(out[1]);
		return r;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	p->pid = pid;
	p->in = in[1];
	p->out = out[0];
	return 0;
}

/* Read what is there; false at EOF. */
static bool pump(struct goproc *p)
{
	if (p->out < 0)
		return false;
	for (;;) {
		struct err e;
		ssize_t r = fd_read(p->out, buf_reserve(&p->buf, 4096), 4096, &e);
		if (r > 0) {
			buf_commit(&p->buf, (size_t)r);
			continue;
		}
		if (r == IO_AGAIN)
			return true;
		close(p->out);
		p->out = -1;
		return false;
	}
}

static void turn(struct ev_loop *loop)
{
	if (loop)
		ev_run(loop, EVRUN_NOWAIT);
	usleep(200);
}

bool goproc_line(struct goproc *p, struct ev_loop *loop, double timeout_s, char *line, size_t n)
{
	long long end = mono_ns() + (long long)(timeout_s * 1e9);
	for (;;) {
		bool open = pump(p);
		const char *h = (const char *)buf_head(&p->buf);
		const char *nl = memchr(h, '\n', buf_avail(&p->buf));
		if (nl) {
			size_t k = (size_t)(nl - h);
			snprintf(line, n, "%.*s", (int)k, h);
			buf_consume(&p->buf, k + 1);
			return true;
		}
		if (!open || mono_ns() > end)
			return false;
		turn(loop);
	}
}

int goproc_wait(struct goproc *p, struct ev_loop *loop, double timeout_s)
{
	long long end = mono_ns() + (long long)(timeout_s * 1e9);
	while (p->pid) {
		pump(p);
		pid_t w = waitpid(p->pid, &p->status, WNOHANG);
		if (w == p->pid) {
			p->pid = 0;
			break;
		}
		if (mono_ns() > end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &p->status, 0);
			p->pid = 0;
			return -1;
		}
		turn(loop);
	}
	while (pump(p))
		; /* the rest of its output (the write end is closed now) */
	return WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
}

void goproc_stop(struct goproc *p)
{
	if (p->in >= 0) {
		close(p->in);
		p->in = -1;
	}
	if (p->pid)
		goproc_wait(p, NULL, 5.0);
	if (p->out >= 0) {
		close(p->out);
		p->out = -1;
	}
	buf_fini(&p->buf);
}
