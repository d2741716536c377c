/* Publishing whole task lives through the event publisher, for the tests and benchmarks of
 * host/shim/events: TaskCreate, TaskStart, TaskExit (of the init process, with an exit
 * code) and TaskDelete of one container, in the order containerd requires. */
#ifndef FERRY_TESTS_EVPUB_H
#define FERRY_TESTS_EVPUB_H

#include <stdint.h>

#include "common/err.h"
#include "host/shim/events.h"

/* The four events of container `cid` exiting with `code` (TaskCreate carries pid 100).
 * 0, or the first events_publish error. */
int evpub_life(struct events_publisher *p, const char *cid, uint32_t code, struct err *e);

/* The lives of containers PREFIX0 .. PREFIX(n-1), container i exiting with code i. */
int evpub_lives(struct events_publisher *p, const char *prefix, int n, struct err *e);

#endif
