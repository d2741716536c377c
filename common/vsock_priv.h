/* Internal helpers shared by the vsock shim's source files (vsock.c, vsock_dialer.c,
 * vsock_muxer.c).  Not part of the public API: other modules use common/vsock.h. */
#ifndef FERRY_COMMON_VSOCK_PRIV_H
#define FERRY_COMMON_VSOCK_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/vsock.h"

/* Where a dial goes: one socket address (the first resolved one for tcp) and whether the
 * hybrid CONNECT handshake must follow the connect. */
struct vsock_target {
	struct sockaddr_storage ss;
	socklen_t len;
	bool handshake;
	bool tcp;
	char desc[VSOCK_ADDR_STR_MAX + 32]; /* "hybrid:/x port=5" for messages */
};

/* Fill t for a dial of port on a, guest->host (to_guest false) or host->guest.  Returns 0 or
 * -errno (-EAFNOSUPPORT for hvsock, -ERANGE unmappable tcp port, -ENXIO unresolvable host). */
int vsock_priv_target(const struct vsock_addr *a, uint32_t port, bool to_guest,
                      struct vsock_target *t, struct err *e);
/* socket(family, SOCK_STREAM | NONBLOCK | CLOEXEC). */
int vsock_priv_socket(int family, struct err *e);
/* connect(2) of a non-blocking socket: 0 connected, 1 in progress (wait for POLLOUT then
 * vsock_priv_connect_result), 2 "try again later" (unix backlog full), or -errno. */
int vsock_priv_connect(int fd, const struct vsock_target *t, struct err *e);
/* SO_ERROR after an in-progress connect: 0 or -errno with a message. */
int vsock_priv_connect_result(int fd, const struct vsock_target *t, struct err *e);
/* Bind + listen a unix socket at path, unlinking a stale socket first. */
int vsock_priv_listen_unix(const char *path, struct err *e);
/* Setsockopt TCP_NODELAY (best effort). */
void vsock_priv_nodelay(int fd);

#endif
