/* The wake port (guest/gcs_wake.h): a listener, a small table of open challenges (each a
 * connection, its challenge, the proof received so far and a timer) and a token bucket. */
#include "guest/gcs_wake.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "bridge/session.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/xalloc.h"

#define WAKE_PORT 0x3FFFFFFFu /* GCS_WAKE_PORT (guest/gcs.h) */

struct pending {
	struct gcs_wake *w;
	int fd; /* -1: free */
	ev_io io;
	ev_timer tmo;
	uint8_t challenge[SESSION_WAKE_LEN];
	uint8_t proof[SESSION_WAKE_LEN];
	size_t n;
};

struct gcs_wake {
	struct ev_loop *loop;
	struct vsock_addr addr;
	gcs_wake_cb cb;
	void *ud;
	int lfd;
	ev_io accept_io;
	bool has_secret;
	uint8_t secret[SESSION_SECRET_LEN];
	struct pending pend[GCS_WAKE_PENDING];
	double tokens; /* connections that may still be looked at */
	long long refill_ns;
	struct log_limit refused_log;
	struct gcs_wake_stats st;
};

static void pend_close(struct pending *p)
{
	if (p->fd < 0)
		return;
	ev_io_stop(p->w->loop, &p->io);
	ev_timer_stop(p->w->loop, &p->tmo);
	close(p->fd);
	p->fd = -1;
	p->n = 0;
}

static void refuse(struct gcs_wake *w, const char *why)
{
	w->st.refused++;
	log_limited(&w->refused_log, LOG_LVL_WARN, "wake port: refused a connection: %s", why);
}

static void on_pend_read(struct ev_loop *loop, ev_io *io, int revents)
{
	struct pending *p = io->data;
	struct gcs_wake *w = p->w;
	struct err e;
	(void)loop;
	(void)revents;
	ssize_t n = fd_read(p->fd, p->proof + p->n, sizeof(p->proof) - p->n, &e);
	if (n == IO_AGAIN)
		return;
	if (n <= 0) {
		pend_close(p);
		refuse(w, "closed without a proof");
		return;
	}
	p->n += (size_t)n;
	if (p->n < sizeof(p->proof))
		return;
	bool ok = w->has_secret && session_wake_verify(w->secret, p->challenge, p->proof);
	pend_close(p);
	if (!ok) {
		refuse(w, "wrong proof");
		return;
	}
	w->st.wakes++;
	w->cb(w->ud);
}

static void on_pend_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct pending *p = t->data;
	(void)loop;
	(void)revents;
	pend_close(p);
	refuse(p->w, "no proof in time");
}

/* May one more connection be looked at now?  A token bucket of GCS_WAKE_RATE a second. */
static bool take_token(struct gcs_wake *w)
{
	long long now = mono_ns();
	w->tokens += (double)(now - w->refill_ns) * GCS_WAKE_RATE / 1e9;
	if (w->tokens > GCS_WAKE_RATE)
		w->tokens = GCS_WAKE_RATE;
	w->refill_ns = now;
	if (w->tokens < 1)
		return false;
	w->tokens -= 1;
	return true;
}

/* tcp: only the host's address may wake us (what the bridge dials). */
static bool tcp_peer_is_host(const struct gcs_wake *w, int fd)
{
	if (w->addr.kind != VSOCK_KIND_TCP)
		return true;
	struct sockaddr_storage ss;
	socklen_t n = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &n) < 0)
		return false;
	char ip[INET6_ADDRSTRLEN] = "";
	const char *host = strcmp(w->addr.host, "localhost") == 0 ? "127.0.0.1" : w->addr.host;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
	return strcmp(ip, host) == 0;
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	struct gcs_wake *w = io->data;
	(void)loop;
	(void)revents;
	for (int k = 0; k < 64; k++) {
		struct err e;
		int fd = vsock_accept_peer(&w->addr, w->lfd, &e);
		if (fd == IO_AGAIN)
			return;
		if (fd < 0) {
			refuse(w, e.msg);
			if (fd != -EACCES)
				return;
			continue;
		}
		struct pending *p = NULL;
		for (int i = 0; i < GCS_WAKE_PENDING && !p; i++)
			if (w->pend[i].fd < 0)
				p = &w->pend[i];
		if (!take_token(w) || !p || !tcp_peer_is_host(w, fd)) {
			close(fd);
			refuse(w,
			       !p ? "too many open challenges" : "not the host, or over the rate");
			continue;
		}
		if (session_wake_challenge(p->challenge, &e) < 0 ||
		    fd_write(fd, p->challenge, sizeof(p->challenge), &e) !=
		        (ssize_t)sizeof(p->challenge)) {
			close(fd);
			refuse(w, "challenge not written");
			continue;
		}
		p->fd = fd;
		p->n = 0;
		ev_io_init(&p->io, on_pend_read, fd, EV_READ);
		p->io.data = p;
		ev_io_start(w->loop, &p->io);
		ev_timer_init(&p->tmo, on_pend_timeout, GCS_WAKE_PROOF_TIMEOUT_MS / 1000.0, 0.);
		p->tmo.data = p;
		ev_timer_start(w->loop, &p->tmo);
	}
}

struct gcs_wake *gcs_wake_new(struct ev_loop *loop, const struct vsock_addr *a, gcs_wake_cb cb,
                              void *ud)
{
	struct gcs_wake *w = xcalloc(1, sizeof(*w));
	w->loop = loop;
	w->addr = *a;
	w->cb = cb;
	w->ud = ud;
	w->lfd = -1;
	w->tokens = GCS_WAKE_RATE;
	w->refill_ns = mono_ns();
	for (int i = 0; i < GCS_WAKE_PENDING; i++) {
		w->pend[i].w = w;
		w->pend[i].fd = -1;
	}
	ev_io_init(&w->accept_io, on_accept, -1, EV_READ);
	w->accept_io.data = w;
	return w;
}

void gcs_wake_free(struct gcs_wake *w)
{
	if (!w)
		return;
	for (int i = 0; i < GCS_WAKE_PENDING; i++)
		pend_close(&w->pend[i]);
	ev_io_stop(w->loop, &w->accept_io);
	if (w->lfd >= 0) {
		if (w->addr.kind == VSOCK_KIND_HYBRID || w->addr.kind == VSOCK_KIND_UNIX)
			vsock_unlisten_guest(&w->addr, WAKE_PORT, w->lfd);
		else
			close(w->lfd);
	}
	memset(w->secret, 0, sizeof(w->secret));
	free(w);
}

void gcs_wake_set_secret(struct gcs_wake *w, const uint8_t secret[32])
{
	memcpy(w->secret, secret, sizeof(w->secret));
	w->has_secret = true;
}

/* tcp: the wake port's mapping, on the local address of the bridge connection (the
 * interface the host reaches us through), never on every interface. */
static int tcp_listen(const struct gcs_wake *w, const struct sockaddr_storage *local, struct err *e)
{
	int port = vsock_tcp_port(w->addr.tcp_base, WAKE_PORT, e);
	if (port < 0)
		return port;
	if (!local || (local->ss_family != AF_INET && local->ss_family != AF_INET6))
		return err_set(e, -EADDRNOTAVAIL, "wake: no local address to bind to");
	struct sockaddr_storage ss = *local;
	socklen_t len;
	if (ss.ss_family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, -errno, "wake: socket");
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
		int rc = err_sys(e, -errno, "wake: listen on tcp port %d", port);
		close(fd);
		return rc;
	}
	return fd;
}

int gcs_wake_listen(struct gcs_wake *w, const struct sockaddr_storage *local, struct err *e)
{
	if (w->lfd >= 0)
		return 0;
	int fd = w->addr.kind == VSOCK_KIND_TCP ? tcp_listen(w, local, e)
	                                        : vsock_listen_guest(&w->addr, WAKE_PORT, e);
	if (fd < 0)
		return fd;
	w->lfd = fd;
	ev_io_set(&w->accept_io, fd, EV_READ);
	ev_io_start(w->loop, &w->accept_io);
	return 0;
}

void gcs_wake_stats(const struct gcs_wake *w, struct gcs_wake_stats *st)
{
	*st = w->st;
}
