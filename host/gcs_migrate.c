/* The host GCS client's migration half (docs/stdio-resume.md, shared/spec/hcsshim-lm.md §7):
 * adopting another host's outstanding WaitForProcess ids, the next stdio port and bridge id
 * (saved, then seeded on the destination; only ever raised), migrating mode, cut, relisten,
 * waking the guest and adopting a whole client state.  The connection and call path are in
 * gcs_client.c; see host/gcs_client.h and host/gcs_state.h for the contract. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bridge/client.h"
#include "bridge/proto.h"
#include "bridge/session.h"
#include "common/fdio.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/gcs_client_priv.h"

/* ---- adopted waits ---- */

int gcs_client_preregister_wait(struct gcs_client *c, uint64_t id, gcs_msg_fn done, void *ud,
                                struct err *e)
{
	if (id > (uint64_t)INT64_MAX)
		return err_set(e, -EINVAL, "preregister: bad wait id %llu", (unsigned long long)id);
	if (!c->bc || c->state == ST_CLOSED || c->state == ST_FAILED)
		return err_set(e, -ECONNRESET, "preregister: gcs bridge is closed");
	struct call *k = xcalloc(1, sizeof(*k));
	k->c = c;
	k->rpc = RPC_WAIT_FOR_PROCESS;
	k->resp_kind = BMSG_WAIT_RESP;
	k->mdone = done;
	k->ud = ud;
	k->id = (int64_t)id;
	if (bridge_client_preregister(c->bc, (int64_t)id, gcs_client_on_call_done, k, e) < 0) {
		free(k);
		return err_prefix(e, "adopt wait id=%llu", (unsigned long long)id);
	}
	gcs_client_call_link(c, k);
	return 0;
}

int gcs_client_orphan_call(struct gcs_client *c, uint64_t id)
{
	for (struct call *k = c->calls; k; k = k->next) {
		if ((uint64_t)k->id == id) {
			k->mdone = NULL;
			k->rdone = NULL;
			k->ud = NULL;
			k->resp_kind = BMSG_RESP_BASE; /* as adopted orphans */
			return 0;
		}
	}
	return -ENOENT;
}

bool gcs_client_resumable(const struct gcs_client *c)
{
	return c->bc && !bridge_client_closed(c->bc) && c->state != ST_FAILED &&
	       c->state != ST_CLOSED;
}

uint64_t *gcs_client_outstanding_ids(struct gcs_client *c, size_t *n)
{
	size_t k = 0;
	for (struct call *q = c->calls; q; q = q->next)
		k++;
	uint64_t *v = xcalloc(k + 1, sizeof(*v));
	k = 0;
	for (struct call *q = c->calls; q; q = q->next)
		v[k++] = (uint64_t)q->id;
	*n = k;
	return v;
}
/* ---- migration counters ---- */

uint32_t gcs_client_next_stdio_port(const struct gcs_client *c)
{
	return c->next_port;
}

int gcs_client_set_next_stdio_port(struct gcs_client *c, uint32_t port, struct err *e)
{
	if (port < c->next_port)
		return err_set(e, -EINVAL, "next stdio port %#x is below the current %#x", port,
		               c->next_port);
	c->next_port = port;
	return 0;
}

uint32_t gcs_client_alloc_stdio_port(struct gcs_client *c)
{
	return c->next_port++;
}

uint64_t gcs_client_next_bridge_id(const struct gcs_client *c)
{
	return (uint64_t)bridge_client_next_id(c->bc);
}

int gcs_client_set_next_bridge_id(struct gcs_client *c, uint64_t id, struct err *e)
{
	if (id < gcs_client_next_bridge_id(c) || id > (uint64_t)INT64_MAX)
		return err_set(e, -EINVAL, "next bridge id %llu is below the current %llu",
		               (unsigned long long)id,
		               (unsigned long long)gcs_client_next_bridge_id(c));
	bridge_client_seed_next_id(c->bc, (int64_t)id);
	return 0;
}

/* ---- migration ---- */

void gcs_client_set_migrating(struct gcs_client *c, bool on)
{
	bridge_client_set_migrating(c->bc, on);
}

bool gcs_client_stdio_resume(const struct gcs_client *c)
{
	return c->state == ST_READY && c->caps.ferry_stdio_resume;
}

bool gcs_client_session_secret(const struct gcs_client *c, uint8_t out[32])
{
	if (!c->session)
		return false;
	memcpy(out, c->secret, sizeof(c->secret));
	return true;
}

void gcs_client_stdio_auth(const struct gcs_client *c, struct session_auth *auth)
{
	memset(auth, 0, sizeof(*auth));
	if (!c->auth_on)
		return;
	auth->on = true;
	memcpy(auth->secret, c->secret, sizeof(auth->secret));
	memcpy(auth->challenge, c->challenge, sizeof(auth->challenge));
}

int gcs_client_cut(struct gcs_client *c, struct err *e)
{
	if (!c->bc || bridge_client_closed(c->bc) || c->state == ST_FAILED)
		return err_set(e, -ENOTCONN, "cut: gcs bridge is closed");
	bridge_client_set_migrating(c->bc, true);
	if (c->lfd >= 0) {
		ev_io_stop(c->loop, &c->accept_w);
		vsock_unlisten(&c->addr, GCS_BRIDGE_PORT, c->lfd);
		c->lfd = -1;
	}
	ev_timer_stop(c->loop, &c->accept_timer);
	/* The bridge first, so the guest learns the host changed before its stdio is cut. */
	gcs_client_enter(c);
	bridge_client_detach(c->bc);
	if (c->state != ST_CLOSED)
		c->state = ST_CUT;
	for (struct gcs_client_link *l = c->links.next; l != &c->links && !c->free_pending;) {
		struct gcs_client_link *next = l->next;
		if (l->on_cut)
			l->on_cut(l);
		l = next;
	}
	gcs_client_leave(c);
	return 0;
}

int gcs_client_relisten(struct gcs_client *c, struct err *e)
{
	if (c->state != ST_CUT)
		return err_set(e, -EINVAL, "relisten: the client was not cut");
	if (gcs_client_listen_bridge(c, e) < 0) {
		c->state = ST_CUT;
		return e->code;
	}
	for (struct gcs_client_link *l = c->links.next; l != &c->links; l = l->next)
		if (l->on_relisten && l->on_relisten(l, e) < 0)
			return e->code;
	return 0;
}

/* Read exactly n bytes from a non-blocking fd before the deadline (mono ns). */
static int read_before(int fd, uint8_t *p, size_t n, long long deadline, struct err *e)
{
	size_t got = 0;
	while (got < n) {
		long long left = (deadline - mono_ns()) / 1000000;
		struct pollfd q = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&q, 1, (int)left) <= 0)
			return err_set(e, -ETIMEDOUT,
			               "wake: no challenge from the guest within %d ms",
			               GCS_WAKE_TIMEOUT_MS);
		ssize_t r = fd_read(fd, p + got, n - got, e);
		if (r == IO_EOF)
			return err_set(e, -ECONNRESET,
			               "wake: the guest closed without a challenge");
		if (r < 0 && r != IO_AGAIN)
			return (int)r;
		if (r > 0)
			got += (size_t)r;
	}
	return 0;
}

int gcs_client_wake_guest(struct gcs_client *c, struct err *e)
{
	if (!c->session)
		return err_set(e, -ENOTSUP,
		               "wake: no ferry session with this guest (no wake port)");
	long long deadline = mono_ns() + GCS_WAKE_TIMEOUT_MS * 1000000ll;
	_cleanup_close_ int fd = -1;
	if (c->addr.kind == VSOCK_KIND_HYBRID) {
		/* The guest's own listener of a hybrid address is PATH.guest_<port>. */
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		if (vsock_unix_guest_path(c->addr.path, GCS_WAKE_PORT, un.sun_path,
		                          sizeof(un.sun_path), e) < 0)
			return e->code;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return err_sys(e, -errno, "wake: socket");
		if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0)
			return err_sys(e, -errno, "wake: connect %s", un.sun_path);
	} else {
		fd = vsock_dial_guest(&c->addr, GCS_WAKE_PORT, GCS_WAKE_TIMEOUT_MS, NULL, e);
		if (fd < 0)
			return err_prefix(e, "wake");
	}
	uint8_t ch[SESSION_WAKE_LEN], proof[SESSION_WAKE_LEN];
	int r = read_before(fd, ch, sizeof(ch), deadline, e);
	if (r < 0)
		return r;
	if (session_wake_challenge_check(ch, sizeof(ch), e) < 0)
		return err_prefix(e, "wake");
	session_wake_proof(c->secret, ch, proof);
	if (fd_write_all(fd, proof, sizeof(proof), e) < 0)
		return err_prefix(e, "wake: proof");
	return 0;
}

int gcs_client_adopt(struct gcs_client *c, const struct gcs_client_state *s, struct err *e)
{
	if (c->state != ST_LISTENING || c->negotiated_once)
		return err_set(e, -EINVAL, "adopt: only before the guest's re-dial is accepted");
	if (s->next_port > c->next_port)
		c->next_port = s->next_port;
	if (s->next_id > (uint64_t)INT64_MAX)
		return err_set(e, -EINVAL, "adopt: next id out of range");
	if (s->has_session_secret) {
		/* the guest holds this secret: its re-dial must prove it */
		memcpy(c->secret, s->session_secret, sizeof(c->secret));
		c->has_secret = true;
		c->session = true;
	}
	bridge_client_seed_next_id(c->bc, (int64_t)s->next_id);
	for (size_t i = 0; i < s->n_containers; i++) {
		int rc = gcs_client_register_container(c, s->containers[i], e);
		if (rc < 0 && rc != -EEXIST)
			return err_prefix(e, "adopt");
	}
	for (size_t i = 0; i < s->n_orphans; i++) {
		/* Another host's call: its late response is dropped here. */
		struct call *k = xcalloc(1, sizeof(*k));
		k->c = c;
		k->rpc = RPC_WAIT_FOR_PROCESS;
		k->resp_kind = BMSG_RESP_BASE;
		k->id = (int64_t)s->orphans[i];
		if (s->orphans[i] > (uint64_t)INT64_MAX ||
		    bridge_client_preregister(c->bc, k->id, gcs_client_on_call_done, k, e) < 0) {
			free(k);
			return err_set(e, -EINVAL, "adopt: bad orphan id %llu",
			               (unsigned long long)s->orphans[i]);
		}
		gcs_client_call_link(c, k);
	}
	/* Late responses and notifications of the blackout must not kill the bridge. */
	bridge_client_set_migrating(c->bc, true);
	c->adopted = true;
	return 0;
}
