/* A tiny stand-in for the VMM side of hybrid vsock (Firecracker / Cloud Hypervisor muxer), for
 * running host and guest as local processes: it listens on the unix socket PATH, parses
 * "CONNECT <port>\n" (rules of vsock_hybrid_parse_connect; partial lines are buffered up to 32
 * bytes, an unparsable command closes the connection), connects to the unix socket standing
 * for guest port n, "PATH.guest_n" (vsock_unix_guest_path; a guest-side process creates it
 * with vsock_listen_guest on hybrid:PATH), replies "OK <host_port>\n" with host_port counting
 * up from 1073741824 in [2^30, 2^31), then splices the two sockets both ways (bytes after the
 * CONNECT line are forwarded to the guest; half-close is propagated).  When nothing listens
 * for port n the host connection is closed without OK, as the VMM does on RST.
 * Guest->host ("PATH_P") needs no muxer: both sides use it directly.
 * Runs on a caller-provided libev loop; single-threaded like everything on a loop. */
#ifndef FERRY_COMMON_VSOCK_MUXER_H
#define FERRY_COMMON_VSOCK_MUXER_H

#include <stdint.h>

#include "common/err.h"

struct ev_loop;
struct vsock_muxer;

/* Listen on path (unlinking a stale socket there) and serve on loop.  Returns the muxer (owned
 * by the caller) or NULL with e filled.  path is copied. */
struct vsock_muxer *vsock_muxer_new(struct ev_loop *loop, const char *path, struct err *e);
/* Stop every watcher, close the listener and all connections, unlink path.  NULL-safe.  Must
 * be called on the loop's thread (or with the loop not running). */
void vsock_muxer_free(struct vsock_muxer *m);
/* Number of connections accepted so far / currently open (for tests). */
unsigned vsock_muxer_accepted(const struct vsock_muxer *m);
unsigned vsock_muxer_active(const struct vsock_muxer *m);

#endif
