/* Non-blocking guest->host dial for ferry-gcs: the bridge (port 0x40000000) and every stdio
 * stream are dialled by the guest, and the agent's loop also runs stdio relays, so a dial
 * must never hold the loop.  This starts a non-blocking connect(2) for the vsock:, hybrid:,
 * unix: and numeric tcp: forms of common/vsock.h (same port rules: hybrid/unix "PATH_P",
 * tcp vsock_tcp_port) and completes on the loop.  Forms it cannot do without blocking (a
 * tcp host name that needs DNS) fall back to vsock_dial with the timeout, documented here
 * so callers know. */
#ifndef FERRY_GUEST_DIAL_H
#define FERRY_GUEST_DIAL_H

#include <stdint.h>

#include "common/err.h"
#include "common/vsock.h"

struct ev_loop;
struct gcs_dial;

/* Completion: fd >= 0 (connected, NONBLOCK|CLOEXEC, ownership passes to the callee) or a
 * negative errno with `e` describing it (-ENOENT / -ECONNREFUSED: nobody listens yet;
 * -ETIMEDOUT).  Called exactly once, from the loop (never from inside gcs_dial_new), unless
 * the dial is freed first.  The callback may free the dial. */
typedef void (*gcs_dial_cb)(struct gcs_dial *d, int fd, const struct err *e, void *ud);

/* Start dialling `port` on `a` (copied).  timeout_ms <= 0: no limit.  Returns the dial
 * (caller-owned; free it after the callback or to cancel) or NULL with `e` filled when the
 * address cannot be dialled at all (hvsock on Linux, unmappable tcp port). */
struct gcs_dial *gcs_dial_new(struct ev_loop *loop, const struct vsock_addr *a, uint32_t port,
                              int timeout_ms, gcs_dial_cb cb, void *ud, struct err *e);

/* Cancel / release; closes a half-open socket; the callback is then never called.
 * NULL-safe; may be called from the callback. */
void gcs_dial_free(struct gcs_dial *d);

#endif
