/* Whole task lives for the publisher's tests (evpub.h). */
#include "tests/lib/evpub.h"

#include <stdio.h>

#include "containerd/events/task.pb-c.h"

int evpub_life(struct events_publisher *p, const char *cid, uint32_t code, struct err *e)
{
	Containerd__Events__TaskCreate cr = CONTAINERD__EVENTS__TASK_CREATE__INIT;
	cr.container_id = (char *)cid;
	cr.bundle = "/run/ferry/test";
	cr.pid = 100;
	Containerd__Events__TaskStart st = CONTAINERD__EVENTS__TASK_START__INIT;
	st.container_id = (char *)cid;
	st.pid = 100;
	Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	Containerd__Events__TaskExit ex = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	ex.container_id = (char *)cid;
	ex.id = (char *)cid;
	ex.pid = 100;
	ex.exit_status = code;
	ex.exited_at = &at;
	Containerd__Events__TaskDelete de = CONTAINERD__EVENTS__TASK_DELETE__INIT;
	de.container_id = (char *)cid;
	de.pid = 100;
	de.exit_status = code;
	de.exited_at = &at;
	const ProtobufCMessage *evs[] = {&cr.base, &st.base, &ex.base, &de.base};
	for (int k = 0; k < 4; k++) {
		int rc = events_publish(p, evs[k], NULL, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int evpub_lives(struct events_publisher *p, const char *prefix, int n, struct err *e)
{
	for (int i = 0; i < n; i++) {
		char cid[80];
		snprintf(cid, sizeof(cid), "%.60s%d", prefix, i);
		int rc = evpub_life(p, cid, (uint32_t)i, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}
