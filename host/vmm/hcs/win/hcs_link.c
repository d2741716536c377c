/* The HCS-thread-to-loop bridge (see hcs_link.h).  One SRW lock guards the queue and the
 * closed flag; ev_async_send is called under it so that a thread never signals an async watcher
 * that hcs_link_close has stopped.  An operation handle stays open until its message has been
 * delivered (the loop closes it) or dropped (whoever drops it closes it), so the loop may call
 * HcsCancelOperation on any operation of its in-flight list without a lock, and never calls
 * into computecore.dll while holding the lock (HCS holds its own locks while it calls us). */
#include "host/vmm/hcs/win/hcs_link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/win/wsa.h"
#include "common/xalloc.h"
#include "host/vmm/hcs/hcs_doc.h"
#include "host/vmm/hcs/hcs_notify.h"
#include "host/vmm/hcs/hcs_unicode.h"

struct hcs_link {
	volatile LONG refs;
	SRWLOCK lock;
	bool closed;
	struct ev_loop *loop;
	ev_async async;
	struct hcs_msg *head, *tail; /* posted, not delivered */
	struct hcs_msg *inflight;    /* operations not delivered yet (loop thread only) */
	struct hcs_api api;
	hcs_link_deliver_fn deliver;
	void *arg;
};

void hcs_link_msg_free(struct hcs_msg *m)
{
	if (!m)
		return;
	if (m->op)
		m->link->api.HcsCloseOperation(m->op);
	buf_fini(&m->data);
	free(m);
}

void hcs_link_ref(struct hcs_link *l)
{
	InterlockedIncrement(&l->refs);
}

void hcs_link_unref(struct hcs_link *l)
{
	if (!l || InterlockedDecrement(&l->refs) != 0)
		return;
	for (struct hcs_msg *m = l->head, *n; m; m = n) {
		n = m->next;
		hcs_link_msg_free(m);
	}
	hcs_api_release(&l->api);
	free(l);
}

/* Queue m for the loop, or drop it once the link is closed.  Any thread. */
static void post(struct hcs_link *l, struct hcs_msg *m)
{
	m->next = NULL;
	AcquireSRWLockExclusive(&l->lock);
	if (l->closed) {
		ReleaseSRWLockExclusive(&l->lock);
		hcs_link_msg_free(m);
		return;
	}
	if (l->tail)
		l->tail->next = m;
	else
		l->head = m;
	l->tail = m;
	ev_async_send(l->loop, &l->async);
	ReleaseSRWLockExclusive(&l->lock);
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	struct hcs_link *l = w->data;
	hcs_link_ref(l); /* deliver may close the link */
	for (;;) {
		AcquireSRWLockExclusive(&l->lock);
		struct hcs_msg *m = l->closed ? NULL : l->head;
		if (m) {
			l->head = m->next;
			if (!l->head)
				l->tail = NULL;
		}
		ReleaseSRWLockExclusive(&l->lock);
		if (!m)
			break;
		for (struct hcs_msg **pp = &l->inflight; *pp; pp = &(*pp)->inflight_next)
			if (*pp == m) {
				*pp = m->inflight_next;
				break;
			}
		l->deliver(m, l->arg);
	}
	hcs_link_unref(l);
}

struct hcs_link *hcs_link_new(struct ev_loop *loop, const struct hcs_api *api,
                              hcs_link_deliver_fn deliver, void *arg, struct err *e)
{
	if (wsa_start(e) < 0) /* libev's async wake-up is a socket pair */
		return NULL;
	struct hcs_link *l = xcalloc(1, sizeof(*l));
	if (hcs_api_copy(&l->api, api, e) < 0) {
		free(l);
		return NULL;
	}
	l->refs = 1;
	InitializeSRWLock(&l->lock);
	l->loop = loop;
	l->deliver = deliver;
	l->arg = arg;
	ev_async_init(&l->async, on_async);
	l->async.data = l;
	ev_async_start(loop, &l->async);
	return l;
}

const struct hcs_api *hcs_link_api(const struct hcs_link *l)
{
	return &l->api;
}

bool hcs_link_closed(const struct hcs_link *l)
{
	return l->closed;
}

void hcs_link_close(struct hcs_link *l)
{
	if (!l)
		return;
	/* wake every waiter thread (its post will then be dropped): the handles are all still
	 * open, since no waiter closes its operation before it sees the link closed */
	for (struct hcs_msg *m = l->inflight; m; m = m->inflight_next)
		l->api.HcsCancelOperation(m->op);
	l->inflight = NULL;
	AcquireSRWLockExclusive(&l->lock);
	l->closed = true;
	struct hcs_msg *q = l->head;
	l->head = l->tail = NULL;
	ReleaseSRWLockExclusive(&l->lock);
	ev_async_stop(l->loop, &l->async);
	for (struct hcs_msg *n; q; q = n) {
		n = q->next;
		hcs_link_msg_free(q);
	}
	hcs_link_unref(l);
}

struct hcs_msg *hcs_link_op_new(struct hcs_link *l, int verb, int step, struct err *e)
{
	HCS_OPERATION op = l->api.HcsCreateOperation(NULL, NULL);
	if (!op) {
		err_set(e, -ENOMEM, "HcsCreateOperation failed (Windows error %lu)",
		        (unsigned long)GetLastError());
		return NULL;
	}
	struct hcs_msg *m = xcalloc(1, sizeof(*m));
	m->verb = verb;
	m->step = step;
	m->link = l;
	m->op = op;
	buf_init(&m->data);
	return m;
}

void hcs_link_op_abandon(struct hcs_msg *m)
{
	hcs_link_msg_free(m); /* closes the operation */
}

static DWORD WINAPI waiter(void *arg)
{
	struct hcs_msg *m = arg;
	struct hcs_link *l = m->link;
	PWSTR doc = NULL;
	HRESULT hr = l->api.HcsWaitForOperationResult(m->op, INFINITE, &doc);
	m->hr = (uint32_t)hr;
	if (doc) {
		if (hcs_unicode_from_utf16((const uint16_t *)doc, HCS_REPLY_MAX, &m->data, NULL) <
		    0)
			m->oversize = true;
		LocalFree(doc);
	}
	post(l, m); /* the operation is closed when m is delivered or dropped */
	hcs_link_unref(l);
	return 0;
}

int hcs_link_op_wait(struct hcs_msg *m, struct err *e)
{
	struct hcs_link *l = m->link;
	hcs_link_ref(l);
	if (!l->closed) { /* a closed link still runs an owner's last call (terminate at free) */
		m->inflight_next = l->inflight;
		l->inflight = m;
	}
	HANDLE t = CreateThread(NULL, 0, waiter, m, 0, NULL);
	if (!t) {
		if (l->inflight == m)
			l->inflight = m->inflight_next;
		int r = err_set(e, -EAGAIN, "cannot start an HCS waiter thread (Windows error %lu)",
		                (unsigned long)GetLastError());
		hcs_link_op_abandon(m);
		hcs_link_unref(l);
		return r;
	}
	CloseHandle(t);
	return 0;
}

int hcs_link_op_cancel(struct hcs_link *l, int verb)
{
	int n = 0;
	for (struct hcs_msg *m = l->inflight; m; m = m->inflight_next)
		if (m->verb == verb && SUCCEEDED(l->api.HcsCancelOperation(m->op)))
			n++;
	return n;
}

void hcs_link_post_local(struct hcs_link *l, int verb, int step, uint32_t status)
{
	struct hcs_msg *m = xcalloc(1, sizeof(*m));
	m->event = HCS_LINK_EVENT_LOCAL;
	m->verb = verb;
	m->step = step;
	m->hr = status;
	m->link = l;
	buf_init(&m->data);
	post(l, m);
}

void CALLBACK hcs_link_on_event(HCS_EVENT *event, void *context)
{
	struct hcs_link *l = context;
	if (!event || !l)
		return;
	uint32_t type = (uint32_t)event->Type;
	if (type != HCS_EVENT_SYSTEM_EXITED && type != HCS_EVENT_SERVICE_DISCONNECT &&
	    type != HCS_EVENT_GROUP_LIVE_MIGRATION)
		return;
	struct hcs_msg *m = xcalloc(1, sizeof(*m));
	m->event = type;
	m->link = l;
	buf_init(&m->data);
	if (hcs_unicode_from_utf16((const uint16_t *)event->EventData, HCS_NOTIFY_MAX, &m->data,
	                           NULL) < 0 ||
	    buf_avail(&m->data) > HCS_NOTIFY_MAX) {
		buf_reset(&m->data);
		m->oversize = true;
	}
	post(l, m);
}
