/* The host-side test environment (hostenv.h): temporary directory, loop, host GCS client,
 * the real ferry-gcs as a child process, and the loop helpers the GCS integration test and
 * the GCS benchmarks share. */
#include "tests/lib/hostenv.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "tests/lib/testenv.h"

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	*(bool *)w->data = true;
	ev_break(loop, EVBREAK_ONE);
}

bool hostenv_run_until(struct ev_loop *loop, const bool *flag, double timeout_s)
{
	bool expired = false;
	ev_timer guard;
	ev_timer_init(&guard, on_guard, timeout_s, 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	while (!*flag && !expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	return *flag;
}

void hostenv_on_done(struct gcs_client *c, const struct gcs_result *r, void *ud)
{
	struct hostenv_done *d = ud;
	(void)c;
	d->done = true;
	d->r = *r;
}

/* ---- client callbacks: note readiness, forward to the caller's ops ---- */

static void env_ready(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	struct hostenv *h = ud;
	h->ready = true;
	h->ready_status = status;
	if (h->ops.on_ready)
		h->ops.on_ready(c, status, e, h->ud);
}

static void env_container_exit(struct gcs_client *c, const char *id, const char *type, void *ud)
{
	struct hostenv *h = ud;
	if (h->ops.on_container_exit)
		h->ops.on_container_exit(c, id, type, h->ud);
}

static void env_close(struct gcs_client *c, const struct err *why, void *ud)
{
	struct hostenv *h = ud;
	if (h->ops.on_close)
		h->ops.on_close(c, why, h->ud);
}

static void env_reconnect(struct gcs_client *c, int status, const struct err *e, void *ud)
{
	struct hostenv *h = ud;
	if (h->ops.on_reconnect)
		h->ops.on_reconnect(c, status, e, h->ud);
}

int hostenv_start(struct hostenv *h, const struct hostenv_config *cfg, struct err *e)
{
	memset(h, 0, sizeof(*h));
	if (cfg->ops)
		h->ops = *cfg->ops;
	h->ud = cfg->ud;
	if (cfg->containers) {
		if (geteuid() != 0)
			return err_set(e, -EPERM, "not root: containers cannot run");
		if (testenv_enter_private_cgroup2(e) < 0)
			return e->code;
		h->rootfs = testenv_rootfs(e);
		if (!h->rootfs)
			return err_prefix(e, "rootfs");
	}
	h->tmp = testenv_mkdtemp(cfg->prefix ? cfg->prefix : "ferry-hostenv", e);
	if (!h->tmp)
		return err_prefix(e, "tmpdir");
	if ((size_t)snprintf(h->addr, sizeof(h->addr), "hybrid:%s/v.sock", h->tmp) >=
	    sizeof(h->addr))
		return err_set(e, -ENAMETOOLONG, "tmpdir %s: path too long", h->tmp);
	h->loop = ev_loop_new(EVFLAG_AUTO);
	if (!h->loop)
		return err_set(e, -ENOMEM, "ev_loop_new failed");
	struct gcs_client_config cc = {
	    .addr = h->addr, .accept_timeout_ms = 10000, .no_session_auth = cfg->no_session_auth};
	struct gcs_client_ops ops = {.on_ready = env_ready,
	                             .on_container_exit = env_container_exit,
	                             .on_close = env_close,
	                             .on_reconnect = env_reconnect};
	h->c = gcs_client_new(h->loop, &cc, &ops, h, e);
	if (!h->c)
		return err_prefix(e, "gcs_client_new");
	const char *build = getenv("BUILD") && *getenv("BUILD") ? getenv("BUILD") : "build";
	_cleanup_free_ char *gcs = xasprintf("%s/ferry-gcs", build);
	_cleanup_free_ char *root = xasprintf("%s/gcs", h->tmp);
	_cleanup_free_ char *state = xasprintf("%s/state", h->tmp);
	const char *lvl = cfg->gcs_log_level ? cfg->gcs_log_level : "warn";
	pid_t pid = fork();
	if (pid < 0)
		return err_sys(e, -errno, "fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
		execl(gcs, gcs, "-v4", "--transport", h->addr, "--root", root, "--state-dir", state,
		      "--no-poweroff", "--log-level", lvl, (char *)NULL);
		perror("exec ferry-gcs");
		_exit(127);
	}
	h->gcs_pid = pid;
	double t = cfg->ready_timeout_s > 0 ? cfg->ready_timeout_s : 15.0;
	if (!hostenv_run_until(h->loop, &h->ready, t))
		return err_set(e, -ETIMEDOUT, "%s did not connect within %.0f s", gcs, t);
	if (h->ready_status < 0)
		return err_set(e, h->ready_status, "%s: negotiation failed", gcs);
	return 0;
}

void hostenv_stop(struct hostenv *h)
{
	gcs_client_free(h->c);
	h->c = NULL;
	if (h->gcs_pid > 0) {
		int st;
		pid_t w = 0;
		kill(h->gcs_pid, SIGTERM);
		for (int i = 0; i < 200 && (w = waitpid(h->gcs_pid, &st, WNOHANG)) == 0; i++)
			usleep(10000);
		if (w == 0) {
			kill(h->gcs_pid, SIGKILL);
			waitpid(h->gcs_pid, &st, 0);
		}
		h->gcs_pid = 0;
	}
	if (h->loop)
		ev_loop_destroy(h->loop);
	h->loop = NULL;
	if (h->tmp)
		testenv_rm_rf(h->tmp);
	free(h->tmp);
	h->tmp = NULL;
}
