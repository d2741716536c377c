/* A stand-in for the hybrid vsock muxer of Firecracker / Cloud Hypervisor (see
 * common/vsock_muxer.h): accepts on PATH, parses "CONNECT n\n", connects to "PATH.guest_n",
 * answers "OK <host_port>\n" and splices the two sockets with a 64 KiB buffer per direction.
 * Each connection is freed from inside its own callbacks; callbacks return right after. */
#include "common/vsock_muxer.h"

#include <errno.h>
#include <ev.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/vsock.h"
#include "common/vsock_priv.h"
#include "common/xalloc.h"

#define SPLICE_BUF      (64 * 1024)
#define HOST_PORT_FIRST 0x40000000u /* 2^30; wraps below 2^31 as FC/CH do */

struct mux_conn;

struct mux_dir {
	struct mux_conn *c;
	int src, dst;
	ev_io rd, wr;
	char *buf;
	size_t off, len;
	bool eof, done;
};

struct mux_conn {
	struct vsock_muxer *m;
	struct mux_conn *prev, *next;
	int hfd, gfd;
	bool splicing;
	char cmd[VSOCK_HYBRID_LINE_MAX];
	size_t have;
	ev_io cmd_io;
	struct mux_dir h2g, g2h;
};

struct vsock_muxer {
	struct ev_loop *loop;
	char *path;
	int lfd;
	ev_io lio;
	uint32_t next_port;
	unsigned accepted, active;
	struct mux_conn *conns;
};

static void conn_close(struct mux_conn *c)
{
	struct vsock_muxer *m = c->m;
	ev_io_stop(m->loop, &c->cmd_io);
	struct mux_dir *dirs[2] = {&c->h2g, &c->g2h};
	for (int i = 0; i < 2; i++) {
		ev_io_stop(m->loop, &dirs[i]->rd);
		ev_io_stop(m->loop, &dirs[i]->wr);
		free(dirs[i]->buf);
	}
	if (c->hfd >= 0)
		close(c->hfd);
	if (c->gfd >= 0)
		close(c->gfd);
	if (c->prev)
		c->prev->next = c->next;
	else
		m->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->active--;
	free(c);
}

/* Arm the watchers of one direction for its state; closes the connection when both are done.
 * Returns false when c was freed. */
static bool dir_update(struct mux_dir *d)
{
	struct mux_conn *c = d->c;
	struct ev_loop *loop = c->m->loop;
	if (d->off < d->len) {
		ev_io_stop(loop, &d->rd);
		ev_io_start(loop, &d->wr);
		return true;
	}
	ev_io_stop(loop, &d->wr);
	if (!d->eof) {
		ev_io_start(loop, &d->rd);
		return true;
	}
	ev_io_stop(loop, &d->rd);
	if (!d->done) {
		d->done = true;
		shutdown(d->dst, SHUT_WR); /* propagate the half-close */
	}
	if (c->h2g.done && c->g2h.done) {
		conn_close(c);
		return false;
	}
	return true;
}

/* Write what is buffered; returns false when c was freed. */
static bool dir_flush(struct mux_dir *d)
{
	while (d->off < d->len) {
		ssize_t w = fd_write(d->dst, d->buf + d->off, d->len - d->off, NULL);
		if (w == IO_AGAIN)
			break;
		if (w < 0) {
			conn_close(d->c);
			return false;
		}
		d->off += (size_t)w;
	}
	if (d->off == d->len)
		d->off = d->len = 0;
	return dir_update(d);
}

static void dir_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct mux_dir *d = w->data;
	ssize_t r = fd_read(d->src, d->buf + d->len, SPLICE_BUF - d->len, NULL);
	if (r == IO_AGAIN)
		return;
	if (r < 0) {
		conn_close(d->c);
		return;
	}
	if (r == IO_EOF)
		d->eof = true;
	else
		d->len += (size_t)r;
	dir_flush(d);
}

static void dir_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	dir_flush(w->data);
}

static void dir_init(struct mux_conn *c, struct mux_dir *d, int src, int dst)
{
	d->c = c;
	d->src = src;
	d->dst = dst;
	d->buf = xmalloc(SPLICE_BUF);
	ev_io_init(&d->rd, dir_rd_cb, src, EV_READ);
	ev_io_init(&d->wr, dir_wr_cb, dst, EV_WRITE);
	d->rd.data = d->wr.data = d;
}

/* A complete CONNECT line for port: connect to the guest's socket and start splicing, or
 * close (the host then sees EOF without OK, as with a guest RST). */
static void conn_start(struct mux_conn *c, uint32_t port, size_t line_len)
{
	struct vsock_muxer *m = c->m;
	struct vsock_target t;
	struct err e;
	char p[sizeof(((struct sockaddr_un *)0)->sun_path)];
	memset(&t, 0, sizeof(t));
	if (vsock_unix_guest_path(m->path, port, p, sizeof(p), &e) < 0) {
		conn_close(c);
		return;
	}
	struct sockaddr_un *sun = (struct sockaddr_un *)&t.ss;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, p, strlen(p) + 1);
	t.len = (socklen_t)sizeof(*sun);
	snprintf(t.desc, sizeof(t.desc), "%s", p);
	c->gfd = vsock_priv_socket(AF_UNIX, &e);
	/* Only an immediate success counts: a unix connect never stays in progress. */
	if (c->gfd < 0 || vsock_priv_connect(c->gfd, &t, &e) != 0) {
		conn_close(c);
		return;
	}
	char ok[VSOCK_HYBRID_LINE_MAX];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", m->next_port);
	m->next_port = m->next_port + 1 >= 0x80000000u ? HOST_PORT_FIRST : m->next_port + 1;
	if (fd_write(c->hfd, ok, (size_t)n, &e) != n) {
		conn_close(c);
		return;
	}
	ev_io_stop(m->loop, &c->cmd_io);
	c->splicing = true;
	dir_init(c, &c->h2g, c->hfd, c->gfd);
	dir_init(c, &c->g2h, c->gfd, c->hfd);
	/* Bytes after the CONNECT line are the first payload for the guest. */
	c->h2g.len = c->have - line_len;
	memcpy(c->h2g.buf, c->cmd + line_len, c->h2g.len);
	if (!dir_flush(&c->h2g))
		return;
	dir_update(&c->g2h);
}

static void cmd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct mux_conn *c = w->data;
	ssize_t r = fd_read(c->hfd, c->cmd + c->have, sizeof(c->cmd) - c->have, NULL);
	if (r == IO_AGAIN)
		return;
	if (r <= 0) { /* EOF or error before a full command */
		conn_close(c);
		return;
	}
	c->have += (size_t)r;
	uint32_t port;
	size_t ll;
	struct err e;
	int p = vsock_hybrid_parse_connect(c->cmd, c->have, &port, &ll, &e);
	if (p < 0) {
		conn_close(c);
		return;
	}
	if (p == 1)
		conn_start(c, port, ll);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct vsock_muxer *m = w->data;
	struct err e;
	for (;;) {
		int fd = vsock_accept(m->lfd, &e);
		if (fd < 0)
			return; /* IO_AGAIN, or an error such as EMFILE: try again on the next event */
		struct mux_conn *c = xcalloc(1, sizeof(*c));
		c->m = m;
		c->hfd = fd;
		c->gfd = -1;
		c->next = m->conns;
		if (m->conns)
			m->conns->prev = c;
		m->conns = c;
		m->accepted++;
		m->active++;
		ev_io_init(&c->cmd_io, cmd_cb, fd, EV_READ);
		c->cmd_io.data = c;
		ev_io_start(loop, &c->cmd_io);
	}
}

struct vsock_muxer *vsock_muxer_new(struct ev_loop *loop, const char *path, struct err *e)
{
	int lfd = vsock_priv_listen_unix(path, e);
	if (lfd < 0) {
		err_prefix(e, "hybrid vsock muxer");
		return NULL;
	}
	struct vsock_muxer *m = xcalloc(1, sizeof(*m));
	m->loop = loop;
	m->path = xstrdup(path);
	m->lfd = lfd;
	m->next_port = HOST_PORT_FIRST;
	ev_io_init(&m->lio, accept_cb, lfd, EV_READ);
	m->lio.data = m;
	ev_io_start(loop, &m->lio);
	return m;
}

void vsock_muxer_free(struct vsock_muxer *m)
{
	if (!m)
		return;
	while (m->conns)
		conn_close(m->conns);
	ev_io_stop(m->loop, &m->lio);
	close(m->lfd);
	unlink(m->path);
	free(m->path);
	free(m);
}

unsigned vsock_muxer_accepted(const struct vsock_muxer *m)
{
	return m->accepted;
}

unsigned vsock_muxer_active(const struct vsock_muxer *m)
{
	return m->active;
}
