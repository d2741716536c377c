/* Network namespaces for the e2e tests (netns.h), created and deleted with iproute2. */
#include "tests/lib/netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "tests/lib/run.h"

#define NETNS_MAX 16

/* The namespaces of this process, for the atexit cleanup (test-process state). */
static char created[NETNS_MAX][NETNS_NAME_MAX];
static int n_created;
static pid_t owner;

static void delete_name(const char *name)
{
	struct err e;
	(void)run_cmd(&e, "ip", "netns", "delete", name, (char *)NULL);
}

static void cleanup_at_exit(void)
{
	if (getpid() != owner)
		return; /* a forked child exiting: not its namespaces */
	for (int i = 0; i < n_created; i++)
		if (created[i][0])
			delete_name(created[i]);
}

int netns_create(struct netns *ns, const char *tag, struct err *e)
{
	static int seq;
	if (geteuid() != 0)
		return err_set(e, -EPERM, "network namespaces need root");
	if (n_created == NETNS_MAX)
		return err_set(e, -ENOSPC, "too many namespaces");
	if (!owner) {
		owner = getpid();
		atexit(cleanup_at_exit);
	}
	snprintf(ns->name, sizeof(ns->name), "ferry-%.12s-%d-%d", tag, (int)getpid(), seq++);
	if (run_cmd(e, "ip", "netns", "add", ns->name, (char *)NULL) < 0)
		return e->code;
	snprintf(created[n_created++], NETNS_NAME_MAX, "%s", ns->name);
	if (run_cmd(e, "ip", "-n", ns->name, "link", "set", "lo", "up", (char *)NULL) < 0) {
		netns_destroy(ns);
		return e->code;
	}
	return 0;
}

void netns_destroy(struct netns *ns)
{
	if (!ns->name[0])
		return;
	delete_name(ns->name);
	for (int i = 0; i < n_created; i++)
		if (strcmp(created[i], ns->name) == 0)
			created[i][0] = '\0';
	ns->name[0] = '\0';
}

int netns_link(struct netns *a, const char *addr_a, struct netns *b, const char *addr_b,
               struct err *e)
{
	/* Created straight inside the namespaces: no name is ever visible in the root one. */
	if (run_cmd(e, "ip", "-n", a->name, "link", "add", "veth0", "type", "veth", "peer", "name",
	            "veth1", "netns", b->name, (char *)NULL) < 0 ||
	    run_cmd(e, "ip", "-n", a->name, "addr", "add", addr_a, "dev", "veth0", (char *)NULL) <
	        0 ||
	    run_cmd(e, "ip", "-n", b->name, "addr", "add", addr_b, "dev", "veth1", (char *)NULL) <
	        0 ||
	    run_cmd(e, "ip", "-n", a->name, "link", "set", "veth0", "up", (char *)NULL) < 0 ||
	    run_cmd(e, "ip", "-n", b->name, "link", "set", "veth1", "up", (char *)NULL) < 0)
		return e->code;
	return 0;
}

int netns_enter(const struct netns *ns, struct err *e)
{
	_cleanup_free_ char *path = xasprintf("/run/netns/%s", ns->name);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", path);
	if (setns(fd, CLONE_NEWNET) < 0)
		return err_sys(e, -errno, "setns %s", ns->name);
	return 0;
}

void netns_reap_stale(void)
{
	DIR *d = opendir("/run/netns");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		char tag[32];
		int pid, n;
		if (sscanf(de->d_name, "ferry-%31[^-]-%d-%d", tag, &pid, &n) != 3)
			continue;
		if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH)
			delete_name(de->d_name);
	}
	closedir(d);
}
