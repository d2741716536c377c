/* Simulated hosts for the VM end-to-end tests: one network namespace per host (QEMU's user
 * networking maps the guest's 10.0.2.2 to the loopback of the namespace it runs in, so each
 * host has its own 127.0.0.1:BASE listener on the same port), joined by a veth pair for the
 * migration stream.  Needs root and iproute2.
 *
 * Names are "ferry-<tag>-<pid>-<n>"; every namespace this process creates is deleted by
 * netns_destroy or, whatever happened to the test, at process exit (atexit); stale ones of
 * dead processes are removed by netns_reap_stale.  Processes are put into a namespace with
 * netns_enter (setns) after fork. */
#ifndef FERRY_TESTS_LIB_NETNS_H
#define FERRY_TESTS_LIB_NETNS_H

#include <stdbool.h>

#include "common/err.h"

#define NETNS_NAME_MAX 48

struct netns {
	char name[NETNS_NAME_MAX];
};

/* Create a namespace with its loopback up.  0 or -errno (-EPERM when not root). */
int netns_create(struct netns *ns, const char *tag, struct err *e);
/* Delete it (processes still inside keep it alive until they exit).  Idempotent. */
void netns_destroy(struct netns *ns);
/* A veth pair between a and b with addresses ("10.99.0.1/24"), both ends up. */
int netns_link(struct netns *a, const char *addr_a, struct netns *b, const char *addr_b,
               struct err *e);
/* Move the calling process (single-threaded) into ns. */
int netns_enter(const struct netns *ns, struct err *e);
/* Remove "ferry-*-<pid>-*" namespaces whose pid is gone (left by a killed run). */
void netns_reap_stale(void);

#endif
