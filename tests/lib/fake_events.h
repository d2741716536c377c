/* A stand-in for containerd's ttrpc Events service (containerd.services.events.ttrpc.v1.Events
 * /Forward) on a unix socket, built with ferry's ttrpc server, for tests of the event
 * publisher and of shims: it decodes every envelope and its event (by type URL, with the
 * publisher's table), records them in arrival order, and can answer late, fail a number of
 * calls with a code, or hold calls unanswered, to play a slow or broken containerd.  It also
 * records how many Forward calls were in flight at once.  Helpers assert with cmocka. */
#ifndef FERRY_TESTS_FAKE_EVENTS_H
#define FERRY_TESTS_FAKE_EVENTS_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ttrpc_server;
struct fake_call;

/* One Forward as received. */
struct fake_events_rec {
	char ns[80];
	char topic[40];
	char type_url[64];
	char cid[80]; /* the event's container_id */
	char id[80];  /* its id or exec_id, "" when it has none */
	uint32_t pid, exit_status;
	int64_t sec; /* the envelope's timestamp */
	int32_t nsec;
};

struct fake_events {
	struct ev_loop *loop;
	char path[108];
	struct ttrpc_server *s; /* NULL while stopped */
	struct fake_events_rec *recs;
	size_t n, cap;
	/* Behaviour, changeable at any time: */
	unsigned fail_count; /* answer the next fail_count calls with fail_code (not recorded) */
	int fail_code;
	double delay_s; /* answer (record, then respond) after this long */
	bool hold;      /* record nothing and never answer, until the connection goes */
	/* Counters: */
	unsigned calls;       /* Forward calls received */
	size_t in_flight;     /* unanswered calls now */
	size_t max_in_flight; /* most at once */
	struct fake_call *waiting;
};

void fake_events_init(struct fake_events *f, struct ev_loop *loop, const char *path);
/* Listen on f->path (asserted). */
void fake_events_start(struct fake_events *f);
/* Close the socket and every connection at once, like a containerd that dies: held and
 * delayed calls are dropped unanswered. */
void fake_events_stop(struct fake_events *f);
/* Stop and free the records. */
void fake_events_fini(struct fake_events *f);

#endif
