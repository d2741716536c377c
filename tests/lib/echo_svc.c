/* The C Echo service: every handler is asynchronous when asked (a per-call timer), and
 * releases its call from the cancel callback when the library ends it first. */
#include "tests/lib/echo_svc.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* One call waiting on its delay timer (Echo) or collecting a client stream. */
struct pend {
	struct pend *prev, *next; /* svc->pends */
	struct echo_svc *svc;
	struct ttrpc_call *call;
	const Ttrpc__Echo__EchoRequest *req;
	ev_timer t;
	char *text; /* Collect: texts so far */
	uint32_t seq;
};

void echo_svc_init(struct echo_svc *svc, struct ev_loop *loop)
{
	memset(svc, 0, sizeof(*svc));
	svc->loop = loop;
}

/* Answer an Echo request now. */
static void answer(struct ttrpc_call *call, const Ttrpc__Echo__EchoRequest *req)
{
	if (req->reply_bytes > ECHO_MAX_REPLY_BYTES) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "reply_bytes over %u",
		                ECHO_MAX_REPLY_BYTES);
		return;
	}
	if (req->fail_code) {
		ttrpc_call_fail(call, req->fail_code, "%s", req->fail_message);
		return;
	}
	Ttrpc__Echo__EchoReply rep = TTRPC__ECHO__ECHO_REPLY__INIT;
	rep.text = req->text;
	uint8_t *blob = NULL;
	if (req->reply_bytes) {
		blob = xmalloc(req->reply_bytes);
		for (size_t i = 0; i < req->reply_bytes; i++)
			blob[i] = echo_pattern(i);
		rep.data.data = blob;
		rep.data.len = req->reply_bytes;
	} else {
		rep.data = req->data;
	}
	size_t n;
	const struct ttrpc_kv *md = ttrpc_call_metadata(call, &n);
	/* "key=value" sorted by key, values of one key in arrival order (stable sort). */
	size_t *ord = xcalloc(n ? n : 1, sizeof(*ord));
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		while (j > 0 && strcmp(md[ord[j - 1]].key, md[i].key) > 0) {
			ord[j] = ord[j - 1];
			j--;
		}
		ord[j] = i;
	}
	char **lines = xcalloc(n ? n : 1, sizeof(*lines));
	for (size_t i = 0; i < n; i++)
		lines[i] = xasprintf("%s=%s", md[ord[i]].key, md[ord[i]].value);
	free(ord);
	rep.n_metadata = n;
	rep.metadata = lines;
	rep.timeout_nano = ttrpc_call_timeout_ns(call);
	ttrpc_call_respond(call, &rep.base);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	free(blob);
}

static void pend_free(struct pend *p)
{
	ev_timer_stop(p->svc->loop, &p->t);
	p->svc->pending--;
	if (p->prev)
		p->prev->next = p->next;
	else
		p->svc->pends = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p->text);
	free(p);
}

void echo_svc_fini(struct echo_svc *svc)
{
	while (svc->pends) {
		struct pend *p = svc->pends;
		struct ttrpc_call *call = p->call;
		pend_free(p);
		ttrpc_call_fail(call, TTRPC_CANCELLED, "service stopped");
	}
}

static void on_delay(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct pend *p = w->data;
	struct ttrpc_call *call = p->call;
	const Ttrpc__Echo__EchoRequest *req = p->req;
	pend_free(p);
	answer(call, req);
}

static void on_cancel(struct ttrpc_call *call, int code, void *ud)
{
	struct echo_svc *svc = ud;
	svc->cancelled++;
	svc->last_cancel_code = code;
	(void)call;
}

static void on_pend_cancel(struct ttrpc_call *call, int code, void *ud)
{
	struct pend *p = ud;
	on_cancel(call, code, p->svc);
	pend_free(p);
	ttrpc_call_fail(call, TTRPC_CANCELLED, "released"); /* frees the detached call */
}

static struct pend *pend_new(struct echo_svc *svc, struct ttrpc_call *call,
                             const Ttrpc__Echo__EchoRequest *req)
{
	struct pend *p = xcalloc(1, sizeof(*p));
	p->svc = svc;
	p->call = call;
	p->req = req;
	svc->pending++;
	p->next = svc->pends;
	if (svc->pends)
		svc->pends->prev = p;
	svc->pends = p;
	ev_init(&p->t, on_delay);
	p->t.data = p;
	ttrpc_call_set_cancel(call, on_pend_cancel, p);
	return p;
}

static void h_echo(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	struct echo_svc *svc = ud;
	const Ttrpc__Echo__EchoRequest *req = (const Ttrpc__Echo__EchoRequest *)msg;
	svc->started++;
	if (!req->delay_ms) {
		answer(call, req);
		return;
	}
	struct pend *p = pend_new(svc, call, req);
	ev_timer_set(&p->t, req->delay_ms / 1000.0, 0.);
	ev_timer_start(svc->loop, &p->t);
}

static void h_stream(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	struct echo_svc *svc = ud;
	const Ttrpc__Echo__EchoRequest *req = (const Ttrpc__Echo__EchoRequest *)msg;
	svc->started++;
	ttrpc_call_set_cancel(call, on_cancel, svc);
	if (req->count > ECHO_MAX_COUNT) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "count over %u", ECHO_MAX_COUNT);
		return;
	}
	for (uint32_t i = 0; i < req->count; i++) {
		Ttrpc__Echo__EchoReply rep = TTRPC__ECHO__ECHO_REPLY__INIT;
		rep.text = req->text;
		rep.seq = i;
		struct err e;
		if (ttrpc_call_send(call, &rep.base, &e) < 0) {
			ttrpc_call_fail_err(call, &e);
			return;
		}
	}
	if (req->fail_code)
		ttrpc_call_fail(call, req->fail_code, "%s", req->fail_message);
	else
		ttrpc_call_respond(call, NULL);
}

/* ---- Collect and Chat: client streams ---- */

static void collect_msg(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	struct pend *p = ud;
	const Ttrpc__Echo__EchoRequest *req = (const Ttrpc__Echo__EchoRequest *)msg;
	(void)call;
	p->svc->stream_msgs++;
	char *t = xasprintf("%s%s", p->text ? p->text : "", req->text);
	free(p->text);
	p->text = t;
	p->seq++;
}

static void collect_end(struct ttrpc_call *call, void *ud)
{
	struct pend *p = ud;
	Ttrpc__Echo__EchoReply rep = TTRPC__ECHO__ECHO_REPLY__INIT;
	rep.text = p->text ? p->text : "";
	rep.seq = p->seq;
	ttrpc_call_respond(call, &rep.base);
	pend_free(p);
}

static void h_collect(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	(void)msg; /* NULL: client stream */
	struct echo_svc *svc = ud;
	svc->started++;
	struct pend *p = pend_new(svc, call, NULL);
	static const struct ttrpc_call_recv cbs = {.on_msg = collect_msg, .on_end = collect_end};
	ttrpc_call_set_recv(call, &cbs, p);
}

static void chat_msg(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	struct pend *p = ud;
	const Ttrpc__Echo__EchoRequest *req = (const Ttrpc__Echo__EchoRequest *)msg;
	p->svc->stream_msgs++;
	if (req->fail_code) {
		pend_free(p);
		ttrpc_call_fail(call, req->fail_code, "%s", req->fail_message);
		return;
	}
	Ttrpc__Echo__EchoReply rep = TTRPC__ECHO__ECHO_REPLY__INIT;
	rep.text = req->text;
	rep.seq = p->seq++;
	struct err e;
	if (ttrpc_call_send(call, &rep.base, &e) < 0) {
		pend_free(p);
		ttrpc_call_fail_err(call, &e);
	}
}

static void chat_end(struct ttrpc_call *call, void *ud)
{
	pend_free(ud);
	ttrpc_call_respond(call, NULL);
}

static void h_chat(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	(void)msg;
	struct echo_svc *svc = ud;
	svc->started++;
	struct pend *p = pend_new(svc, call, NULL);
	static const struct ttrpc_call_recv cbs = {.on_msg = chat_msg, .on_end = chat_end};
	ttrpc_call_set_recv(call, &cbs, p);
}

static const struct ttrpc_method methods[] = {
    {"Echo", &ttrpc__echo__echo_request__descriptor, &ttrpc__echo__echo_reply__descriptor, h_echo,
     0},
    {"Stream", &ttrpc__echo__echo_request__descriptor, &ttrpc__echo__echo_reply__descriptor,
     h_stream, TTRPC_STREAMING_SERVER},
    {"Collect", &ttrpc__echo__echo_request__descriptor, &ttrpc__echo__echo_reply__descriptor,
     h_collect, TTRPC_STREAMING_CLIENT},
    {"Chat", &ttrpc__echo__echo_request__descriptor, &ttrpc__echo__echo_reply__descriptor, h_chat,
     TTRPC_STREAMING_CLIENT | TTRPC_STREAMING_SERVER},
};

const struct ttrpc_service echo_service = {
    .name = ECHO_SERVICE,
    .methods = methods,
    .n_methods = sizeof(methods) / sizeof(methods[0]),
};
