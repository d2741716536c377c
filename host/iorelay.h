/* One stdio stream of a guest process, host side: a listener on a vsock port that accepts
 * exactly one connection from the guest (then closes the listener), and a non-blocking copy
 * between that connection and a local endpoint (file, FIFO, pipe, terminal, or callbacks).
 *   FROM_GUEST (stdout/stderr): read the connection to EOF, close it at once (the guest waits
 *     for that before reporting the exit, spec §6.4), finish writing to the sink, report done.
 *   TO_GUEST (stdin): copy the local source (or queued bytes) to the connection; at source
 *     EOF / close_write, drain and shutdown(SHUT_WR).
 * Backpressure: the reader side pauses while more than IORELAY_HIGH_WATER bytes are queued. */
#ifndef FERRY_HOST_IORELAY_H
#define FERRY_HOST_IORELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "common/err.h"

struct iorelay;
struct vsock_addr;

#define IORELAY_HIGH_WATER (256u * 1024u)

enum iorelay_dir { IORELAY_TO_GUEST, IORELAY_FROM_GUEST };

struct iorelay_ops {
	/* FROM_GUEST without a local fd: bytes from the guest (valid during the call). */
	void (*on_data)(struct iorelay *r, const void *data, size_t n, void *ud);
	/* The stream is finished: FROM_GUEST after EOF with every byte delivered to the sink;
	 * TO_GUEST after shutdown or when the guest closed its side.  status < 0 on an I/O
	 * error (e filled).  Called at most once; may free the relay. */
	void (*on_done)(struct iorelay *r, int status, const struct err *e, void *ud);
};

/* Listen on `port` of `addr` now (before the request that makes the guest dial).  local_fd
 * is borrowed (-1: none); it is made non-blocking unless it is a regular file, which is
 * written synchronously.  Returns NULL with `e` filled on listen failure. */
struct iorelay *iorelay_new(struct ev_loop *loop, const struct vsock_addr *addr, uint32_t port,
                            enum iorelay_dir dir, int local_fd, const struct iorelay_ops *ops,
                            void *ud, struct err *e);
/* NULL-safe; safe from inside the relay's callbacks.  Closes the listener and connection. */
void iorelay_free(struct iorelay *r);

/* TO_GUEST only: queue bytes (-EPIPE after close_write or when the guest is gone). */
int iorelay_write(struct iorelay *r, const void *data, size_t n, struct err *e);
/* TO_GUEST only: EOF after the queued bytes. */
int iorelay_close_write(struct iorelay *r, struct err *e);

uint32_t iorelay_port(const struct iorelay *r);
bool iorelay_connected(const struct iorelay *r);
bool iorelay_done(const struct iorelay *r);
/* Bytes moved across the guest connection so far. */
uint64_t iorelay_bytes(const struct iorelay *r);

#endif
