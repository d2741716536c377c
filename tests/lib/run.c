/* run_cmd of run.h. */
#include "tests/lib/run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ARGS_MAX   32
#define OUTPUT_MAX 300

int run_cmd(struct err *e, const char *argv0, ...)
{
	const char *argv[ARGS_MAX + 1];
	size_t n = 0;
	va_list ap;
	va_start(ap, argv0);
	argv[n++] = argv0;
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < ARGS_MAX)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
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
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	char out[OUTPUT_MAX + 1];
	size_t got = 0;
	char sink[4096];
	ssize_t r;
	while ((r = read(p[0], sink, sizeof(sink))) > 0 || (r < 0 && errno == EINTR)) {
		size_t take = r > 0 && got < OUTPUT_MAX ? (size_t)r : 0;
		if (take > OUTPUT_MAX - got)
			take = OUTPUT_MAX - got;
		memcpy(out + got, sink, take);
		got += take;
	}
	close(p[0]);
	out[got] = '\0';
	for (size_t i = 0; i < got; i++)
		if (out[i] == '\n')
			out[i] = ' ';
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return err_sys(e, -errno, "waitpid %s", argv0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	char cmd[256] = "";
	size_t len = 0;
	for (size_t i = 0; argv[i] && len < sizeof(cmd) - 1; i++)
		len +=
		    (size_t)snprintf(cmd + len, sizeof(cmd) - len, "%s%s", i ? " " : "", argv[i]);
	return err_set(e, WIFEXITED(st) && WEXITSTATUS(st) == 127 ? -ENOENT : -EIO,
	               "`%s` failed (status %d): %s", cmd, st, out);
}
