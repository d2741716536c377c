/* The fake containerd Events service of fake_events.h. */
#include "tests/lib/fake_events.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "containerd/services/ttrpc/events/v1/events.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "host/shim/events.h"
#include "ttrpc/ttrpc.h"

/* A call answered later (delay) or never (hold). */
struct fake_call {
	struct fake_events *f;
	struct ttrpc_call *call;
	ev_timer t;
	struct fake_events_rec rec;
	bool record;
	struct fake_call *next;
};

static void copy_str(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

static const char *field_str(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *fd =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	return fd && fd->type == PROTOBUF_C_TYPE_STRING
	           ? *(const char *const *)((const char *)m + fd->offset)
	           : NULL;
}

static uint32_t field_u32(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *fd =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	return fd && fd->type == PROTOBUF_C_TYPE_UINT32
	           ? *(const uint32_t *)((const char *)m + fd->offset)
	           : 0;
}

static void decode(const Containerd__Services__Events__Ttrpc__V1__ForwardRequest *req,
                   struct fake_events_rec *r)
{
	memset(r, 0, sizeof(*r));
	const Containerd__Services__Events__Ttrpc__V1__Envelope *env = req->envelope;
	assert_non_null(env);
	copy_str(r->ns, sizeof(r->ns), env->namespace_);
	copy_str(r->topic, sizeof(r->topic), env->topic);
	if (env->timestamp) {
		r->sec = env->timestamp->seconds;
		r->nsec = env->timestamp->nanos;
	}
	if (!env->event)
		return;
	copy_str(r->type_url, sizeof(r->type_url), env->event->type_url);
	for (int t = 0; t < EVENTS_N_TYPES; t++) {
		if (strcmp(events_type_url((enum events_type)t), r->type_url) != 0)
			continue;
		ProtobufCMessage *m =
		    protobuf_c_message_unpack(events_descriptor((enum events_type)t), NULL,
		                              env->event->value.len, env->event->value.data);
		assert_non_null(m);
		copy_str(r->cid, sizeof(r->cid), field_str(m, "container_id"));
		const char *id = field_str(m, "exec_id");
		copy_str(r->id, sizeof(r->id), id ? id : field_str(m, "id"));
		r->pid = field_u32(m, "pid");
		r->exit_status = field_u32(m, "exit_status");
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

static void record(struct fake_events *f, const struct fake_events_rec *r)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		f->recs = xrealloc(f->recs, f->cap * sizeof(*f->recs));
	}
	f->recs[f->n++] = *r;
}

static void unlink_call(struct fake_call *c)
{
	for (struct fake_call **l = &c->f->waiting; *l; l = &(*l)->next) {
		if (*l == c) {
			*l = c->next;
			break;
		}
	}
	ev_timer_stop(c->f->loop, &c->t);
	c->f->in_flight--;
}

static void answer(struct fake_call *c)
{
	struct fake_events *f = c->f;
	unlink_call(c);
	if (c->record)
		record(f, &c->rec);
	Google__Protobuf__Empty out = GOOGLE__PROTOBUF__EMPTY__INIT;
	ttrpc_call_respond(c->call, &out.base);
	free(c);
}

static void on_delay(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	answer(w->data);
}

static void on_cancel(struct ttrpc_call *call, int code, void *ud)
{
	(void)code;
	struct fake_call *c = ud;
	unlink_call(c);
	ttrpc_call_fail(call, TTRPC_CANCELLED, "gone");
	free(c);
}

static void forward(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	struct fake_events *f = ud;
	f->calls++;
	if (f->fail_count > 0) {
		f->fail_count--;
		ttrpc_call_fail(call, f->fail_code, "fake failure");
		return;
	}
	f->in_flight++;
	if (f->in_flight > f->max_in_flight)
		f->max_in_flight = f->in_flight;
	struct fake_call *c = xcalloc(1, sizeof(*c));
	c->f = f;
	c->call = call;
	c->record = !f->hold;
	decode((const Containerd__Services__Events__Ttrpc__V1__ForwardRequest *)req, &c->rec);
	c->next = f->waiting;
	f->waiting = c;
	ttrpc_call_set_cancel(call, on_cancel, c);
	ev_timer_init(&c->t, on_delay, f->delay_s, 0.);
	c->t.data = c;
	if (!f->hold)
		ev_timer_start(f->loop, &c->t); /* a zero delay answers on the next loop turn */
}

static const struct ttrpc_method methods[] = {
    {"Forward", &containerd__services__events__ttrpc__v1__forward_request__descriptor,
     &google__protobuf__empty__descriptor, forward, 0},
};
static const struct ttrpc_service service = {EVENTS_SERVICE, methods, 1};

void fake_events_init(struct fake_events *f, struct ev_loop *loop, const char *path)
{
	memset(f, 0, sizeof(*f));
	f->loop = loop;
	copy_str(f->path, sizeof(f->path), path);
}

void fake_events_start(struct fake_events *f)
{
	struct err e;
	assert_null(f->s);
	f->s = ttrpc_server_new(f->loop, NULL);
	assert_int_equal(ttrpc_server_register(f->s, &service, f, &e), 0);
	if (ttrpc_server_listen_unix(f->s, f->path, &e) < 0)
		fail_msg("%s", e.msg);
}

void fake_events_stop(struct fake_events *f)
{
	ttrpc_server_free(f->s); /* detaches the calls: their ends below send nothing */
	f->s = NULL;
	while (f->waiting) {
		struct fake_call *c = f->waiting;
		unlink_call(c);
		ttrpc_call_fail(c->call, TTRPC_UNAVAILABLE, "stopped");
		free(c);
	}
	unlink(f->path);
}

void fake_events_fini(struct fake_events *f)
{
	fake_events_stop(f);
	free(f->recs);
	f->recs = NULL;
	f->n = f->cap = 0;
}
