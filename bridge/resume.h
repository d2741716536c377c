/* The stdio resume protocol (capability FerryStdioResume, docs/stdio-resume.md §2), as pure
 * I/O-free building blocks shared by the guest relays and the host process relays: the wire
 * codec of HELLO / READY / ACK, the data sender's retained buffer (struct resume_sender),
 * the data receiver's offset and acknowledgement policy (struct resume_receiver), and a
 * per-connection splitter (struct resume_conn) that cuts the incoming byte stream into the
 * HELLO or READY prefix, then ACKs or data.  Nothing here touches a socket, a clock or a
 * loop: callers pass bytes and times in and get bytes, offsets and decisions out.
 *
 * Roles.  The guest always dials and sends HELLO; the host always answers READY.  The data
 * sender is the guest for stdout/stderr and the host for stdin; the other end is the data
 * receiver.  The same structs serve both directions:
 *   stream   guest                           host
 *   stdout   resume_sender, DIALER conn      resume_receiver, LISTENER conn
 *   stdin    resume_receiver, DIALER conn    resume_sender, LISTENER conn
 * Every stream's offsets count bytes from 0 since the process started, on both sides. */
#ifndef FERRY_BRIDGE_RESUME_H
#define FERRY_BRIDGE_RESUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- wire format (all little-endian) ---------------------------------------------------- */

/* Byte layout (version 2, docs/stdio-resume.md §2):
 *   HELLO  0 "FRYH" | 4 u16 version | 6 u16 flags | 8 u32 port | 12 u32 dial | 16 u64 offset
 *          | 24 u8[32] mac
 *   READY  0 "FRYR" | 4 u16 version | 6 u16 status | 8 u64 offset
 *   ACK    0 u64 offset
 * `dial` numbers the connections of a stream (1 for the first); `mac` proves the session
 * (bridge/session.h: HMAC-SHA256 over bytes 0..23 and the negotiation's challenge), all zeros
 * when the negotiation established no session.  Version 1 (24 bytes, no dial, no mac) is
 * gone: both ends are ours, and a plain hcsshim peer never sees a HELLO at all. */
#define RESUME_VERSION      2
#define RESUME_HELLO_LEN    56
#define RESUME_HELLO_SIGNED 24 /* the HELLO bytes the mac covers */
#define RESUME_READY_LEN    16
#define RESUME_ACK_LEN      8 /* u64 cumulative offset delivered to the sink */
#define RESUME_HELLO_MAGIC  "FRYH"
#define RESUME_READY_MAGIC  "FRYR"

/* HELLO flags.  Strict: a HELLO with any other bit set is rejected (-EPROTO), so a later
 * version that needs new bits must also bump the version. */
#define RESUME_FLAG_INPUT  0x0001u /* the stream is stdin (host -> guest data) */
#define RESUME_FLAG_FIRST  0x0002u /* first dial of this stream (not a re-dial) */
#define RESUME_FLAGS_KNOWN (RESUME_FLAG_INPUT | RESUME_FLAG_FIRST)

/* READY status.  Any other value is rejected by the decoder (-EPROTO). */
enum resume_status {
	RESUME_STATUS_OK = 0,  /* data continues from READY.offset */
	RESUME_STATUS_GAP = 1, /* the requested offset is not available (see resume_conn) */
};

/* Protocol constants of docs/stdio-resume.md. */
#define RESUME_SENDER_CAP    (1024u * 1024u)      /* default retained bytes per stream */
#define RESUME_FALLBACK_TAIL (128u * 1024u)       /* tail kept / replayed without the capability */
#define RESUME_ACK_BYTES     (64u * 1024u)        /* ack at least every this many delivered bytes */
#define RESUME_ACK_DELAY_NS  (5ull * 1000 * 1000) /* ... or this long after unacked data */
/* First size of a sender's ring (it doubles from there while the stream keeps it full): small,
 * so an idle stream costs little, and always granted, so a stream under a spent budget still
 * makes progress. */
#define RESUME_RING_MIN (16u * 1024u)

struct resume_hello {
	uint16_t version;
	uint16_t flags;  /* RESUME_FLAG_* */
	uint32_t port;   /* the stdio port this connection was dialled on */
	uint32_t dial;   /* the stream's connection number (1, 2, ...) */
	uint64_t offset; /* stdout/stderr: the guest's retained floor; stdin: guest delivered */
	uint8_t mac[32]; /* the session proof (resume_hello_sign) */
};

struct session_auth; /* bridge/session.h */

/* Fill h->mac for the session of `a` (zeros when !a->on). */
void resume_hello_sign(struct resume_hello *h, const struct session_auth *a);

struct resume_ready {
	uint16_t version;
	uint16_t status; /* enum resume_status */
	uint64_t offset; /* where the data on this connection continues (see resume_conn) */
};

/* Encoders: write exactly RESUME_*_LEN bytes to `out`.  The encoders write the fields as
 * given (version included), so tests can build malformed messages. */
void resume_hello_encode(const struct resume_hello *h, uint8_t out[RESUME_HELLO_LEN]);
void resume_ready_encode(const struct resume_ready *r, uint8_t out[RESUME_READY_LEN]);
void resume_ack_encode(uint64_t offset, uint8_t out[RESUME_ACK_LEN]);

/* Incremental decoders over the first `n` bytes of `p` (the bytes received so far; p may be
 * NULL when n == 0).  Every field that is already complete is validated, so a bad magic is
 * reported after the first wrong byte, not after the whole header.  Return:
 *   RESUME_*_LEN  a whole message was decoded into *out (bytes past it are not looked at);
 *   0             valid so far, more bytes needed (*out untouched);
 *   -EPROTO       bad magic, version != RESUME_VERSION, unknown HELLO flag bits, READY
 *                 status not 0/1; `e` says which and what was seen.
 * Never read past p[n-1]. */
int resume_hello_decode(const uint8_t *p, size_t n, struct resume_hello *out, struct err *e);
int resume_ready_decode(const uint8_t *p, size_t n, struct resume_ready *out, struct err *e);
/* RESUME_ACK_LEN and *offset when n >= 8, else 0.  Every 8-byte value is a valid ACK on the
 * wire; whether its offset makes sense is for resume_sender_ack to judge. */
int resume_ack_decode(const uint8_t *p, size_t n, uint64_t *offset);

/* ---- data sender: the retained buffer ---------------------------------------------------- */

/* Memory shared by several senders (the guest's retained stdio, guest/relay_hub.h): every ring
 * allocation is charged to `used`; a ring grows past RESUME_RING_MIN only while `used` stays
 * within `limit`.  Not thread-safe; the senders and the budget live on one loop. */
struct resume_budget {
	size_t used;  /* bytes of ring allocated by the senders charged here */
	size_t limit; /* growth stops here (first rings of RESUME_RING_MIN are always granted) */
};

/* Invariants after every call: acked <= produced and floor <= sent <= produced (floor ==
 * acked except in fallback mode, where floor >= acked).  Bytes [floor, produced) are
 * retained (at most `cap` of them); [sent, produced) are the bytes the current connection
 * has not been given.  The fields are public for reading; change them only through the
 * functions below.  Not thread-safe (one loop owns it). */
struct resume_sender {
	uint64_t produced; /* total bytes appended since the stream started */
	uint64_t acked;    /* highest offset the receiver acknowledged (or READY/HELLO implied) */
	uint64_t floor;    /* first retained byte: == acked, or above it in fallback mode */
	uint64_t sent;     /* next byte to give to the connection */
	size_t cap;        /* bound on produced - floor */
	size_t tail;       /* fallback mode: bytes kept below `sent` (RESUME_FALLBACK_TAIL) */
	bool eof;          /* the source ended: nothing more will be appended */
	bool fallback;     /* no capability on this connection: no acks, keep a tail */
	/* private: ring buffer of retained bytes, grown on demand up to cap */
	uint8_t *ring;
	size_t alloc;                 /* ring size (0 until the first append) */
	size_t head;                  /* ring index of `floor` */
	struct resume_budget *budget; /* charged for the ring, or NULL */
};

/* Start a sender whose stream is at offset `start` (0 for a new process; the hand-over's
 * acknowledged offset when a destination host restores stdin, followed by
 * resume_sender_append of the unacknowledged bytes and resume_sender_rewind as the guest's
 * HELLO says).  cap 0 means RESUME_SENDER_CAP.  No allocation happens until the first
 * append.  resume_sender_fini frees the buffer (NULL-safe, idempotent) and gives its size
 * back to the budget. */
void resume_sender_init(struct resume_sender *s, size_t cap, uint64_t start);
void resume_sender_fini(struct resume_sender *s);
/* Charge the ring to `b` from now on (NULL: no budget); the current ring moves over. */
void resume_sender_set_budget(struct resume_sender *s, struct resume_budget *b);

/* Copy up to n bytes from the source into the retained buffer.  Returns how many were
 * taken: fewer than n (possibly 0) when the buffer is full (or its budget keeps it from
 * growing); the caller must then stop reading its source until resume_sender_space() > 0
 * again (after an ack, or in fallback mode after sending).  Returns 0 after
 * resume_sender_set_eof. */
size_t resume_sender_append(struct resume_sender *s, const void *p, size_t n);
/* Bytes the cap allows to append now (the ring may still have to grow for them). */
size_t resume_sender_space(const struct resume_sender *s);
/* Bytes that can be appended now within the cap AND the budget (what the ring holds or may
 * still grow to); 0 means "stop reading the source until an ack or a send frees room". */
size_t resume_sender_free(const struct resume_sender *s);
/* Zero-copy append (a source read straight into the ring): a contiguous free span at the tail
 * for up to `want` bytes, its length in *len (0, and NULL, when nothing can be appended now).
 * An empty ring is allocated at RESUME_RING_MIN; when the span is shorter than `want` and
 * `grow` is set, the ring doubles first (up to cap, within the budget).  Write at most *len
 * bytes there, then resume_sender_commit(s, n).  The pointer is valid until the next call
 * that changes the sender. */
uint8_t *resume_sender_reserve(struct resume_sender *s, size_t want, bool grow, size_t *len);
void resume_sender_commit(struct resume_sender *s, size_t n);
/* Free the ring when nothing is retained (its memory goes back to the budget; the next
 * reserve starts again at RESUME_RING_MIN). */
void resume_sender_trim(struct resume_sender *s);

/* The next contiguous run of unsent bytes: *p and *len (0 when nothing is unsent; the run
 * may be shorter than produced - sent where the ring wraps: peek again after advancing).
 * The pointer is valid until the next append / ack / rewind / fini. */
void resume_sender_peek(const struct resume_sender *s, const uint8_t **p, size_t *len);
/* The connection took n bytes (n <= produced - sent; else -EINVAL and nothing changes).
 * In fallback mode the floor follows to sent - tail. */
int resume_sender_advance(struct resume_sender *s, size_t n, struct err *e);

/* The receiver acknowledged delivering everything before `off`: bytes below it are dropped
 * (and sent is raised to off if it was below: the receiver already has those bytes).
 * Errors (-EPROTO, nothing changes): off < acked ("ack going backwards"), off > produced
 * ("ack beyond produced").  off == acked is a no-op. */
int resume_sender_ack(struct resume_sender *s, uint64_t off, struct err *e);

/* A new connection continues from `off` (sent = off).  -ERANGE "gap" (nothing changes) when
 * off < floor (those bytes were dropped) or off > produced.  off may exceed sent: a restored
 * sender does not know how far its predecessor had sent, the receiver does. */
int resume_sender_rewind(struct resume_sender *s, uint64_t off, struct err *e);

/* The source reached EOF. */
void resume_sender_set_eof(struct resume_sender *s);
/* eof and every byte given to the connection: time to half-close the connection. */
bool resume_sender_all_sent(const struct resume_sender *s);
/* The stream is complete: eof and acked == produced (fallback mode: sent == produced, as
 * nothing is ever acknowledged). */
bool resume_sender_done(const struct resume_sender *s);

/* Fallback mode, for a peer without the capability (plain hcsshim host), and for a stream
 * that is never re-dialled (tail 0: bytes are dropped once sent).  While on, no acks arrive,
 * so the floor advances with `sent` but trails it by `tail` (RESUME_FALLBACK_TAIL unless
 * set): the last bytes given to the connection stay retained for a replay after a re-dial.
 * Turning it on moves the floor at once; turning it off (a host with the capability took
 * over) keeps the floor, which the next HELLO then reports. */
void resume_sender_set_fallback(struct resume_sender *s, bool on);
void resume_sender_set_tail(struct resume_sender *s, size_t tail);
/* hcsshim-compatible replay after a re-dial without the capability: rewind `sent` by up to
 * `max` bytes, to max(sent - max, floor), so the connection is given the last `max` bytes
 * again (duplicates are possible, losses are not while less than that was in flight).  The
 * replay starts below `sent`, not below `produced`: unsent bytes are never skipped.
 * Returns the new sent offset. */
uint64_t resume_sender_replay_tail(struct resume_sender *s, size_t max);

/* Guest side of an output stream: the HELLO to send after dialling `port` (offset = floor,
 * flags = `flags` without RESUME_FLAG_INPUT; the caller sets dial and signs it). */
void resume_sender_hello(const struct resume_sender *s, uint32_t port, uint16_t flags,
                         struct resume_hello *h);
/* Guest side of an output stream: apply the host's READY (already decoded).  Status OK with
 * floor <= offset <= produced: ack(offset) and rewind(offset), return 0.  Status GAP: the
 * host lost bytes we no longer retain: rewind to the floor and return -ERANGE with a message
 * to log (the data continues from the floor, as resume_conn_answer told the host).  Status OK
 * with an offset outside [floor, produced] cannot be honoured (a wrong hand-over offset: data
 * sent from anywhere else would be labelled with the host's offset, and its ACKs would run
 * beyond what was produced): -EPROTO, nothing changes; the caller fails the stream. */
int resume_sender_on_ready(struct resume_sender *s, const struct resume_ready *r, struct err *e);
/* Host side of the input stream: the READY answering the guest's HELLO (offset = bytes the
 * guest wrote into the process's pipe).  floor <= h <= produced: ack(h), rewind(h), status
 * OK, offset h; returns 0.  h < floor: status GAP, offset floor; h > produced: status GAP,
 * offset produced; the sender is rewound to that offset and -ERANGE returned with a message
 * (send the READY anyway: the data continues from READY.offset). */
int resume_sender_answer(struct resume_sender *s, const struct resume_hello *h,
                         struct resume_ready *r, struct err *e);

/* ---- data receiver: delivered offset and ack policy --------------------------------------- */

struct resume_receiver {
	uint64_t delivered;     /* bytes handed to the sink */
	uint64_t acked;         /* offset of the last ACK taken (or implied by HELLO/READY) */
	uint64_t unacked_since; /* now_ns of the first delivery after the last ack (if any) */
	uint64_t gap_bytes;     /* bytes skipped because of GAP answers (lost, for reporting) */
	bool eof;               /* the sender half-closed: ack the final offset at once */
};

/* Start at `delivered` (0 for a new process; on a destination host the source's final
 * delivered offset from the hand-over). */
void resume_receiver_init(struct resume_receiver *r, uint64_t delivered);
/* n more bytes were handed to the sink at time now_ns (any monotonic clock, ns). */
void resume_receiver_deliver(struct resume_receiver *r, size_t n, uint64_t now_ns);
/* The data sender half-closed (EOF on the connection). */
void resume_receiver_set_eof(struct resume_receiver *r);
/* An ACK should be sent now: delivered - acked >= RESUME_ACK_BYTES, or there is unacked
 * data and either RESUME_ACK_DELAY_NS passed since its first byte was delivered or eof. */
bool resume_receiver_ack_due(const struct resume_receiver *r, uint64_t now_ns);
/* When the delay rule will make an ACK due: UINT64_MAX when nothing is unacked.  Arm a
 * timer for it after delivering (the 5 ms timer of the design). */
uint64_t resume_receiver_ack_deadline(const struct resume_receiver *r);
/* If anything is unacked, set *off = delivered, mark it acked and return true (encode with
 * resume_ack_encode and send); else false.  Call when ack_due says so, or at any time. */
bool resume_receiver_take_ack(struct resume_receiver *r, uint64_t *off);

/* Guest side of the input stream: the HELLO to send (offset = delivered, flags = `flags`
 * with RESUME_FLAG_INPUT). */
void resume_receiver_hello(const struct resume_receiver *r, uint32_t port, uint16_t flags,
                           struct resume_hello *h);
/* Guest side of the input stream: apply the host's READY.  The data continues from
 * READY.offset: OK with offset == delivered returns 0.  Anything else (GAP, or another
 * offset) returns -ERANGE with a message to log: an offset above delivered makes delivered
 * jump there (the skipped bytes are counted in gap_bytes); one below leaves delivered as is
 * and the re-sent bytes must be dropped with resume_receiver_overlap.  delivered never moves
 * backwards; acked = delivered afterwards. */
int resume_receiver_on_ready(struct resume_receiver *r, const struct resume_ready *rd,
                             struct err *e);
/* Host side of an output stream: the READY answering the guest's HELLO (h->offset = the
 * guest's retained floor).  delivered >= h->offset: status OK, offset delivered, returns 0.
 * delivered < h->offset (the guest dropped bytes this host never delivered): status GAP,
 * offset delivered; the data will continue from h->offset, so delivered jumps there (the
 * skipped bytes are added to gap_bytes) and -ERANGE is returned with a message to log. */
int resume_receiver_answer(struct resume_receiver *r, const struct resume_hello *h,
                           struct resume_ready *rd, struct err *e);

/* How many leading bytes of a data run at stream offset `off` (length len) were already
 * delivered and must be dropped, not handed to the sink again (after a READY that resends
 * from below `delivered`).  0 in the normal case.  resume_overlap is the same against any
 * offset `have` the receiver already accounts for (delivered plus bytes it buffered). */
size_t resume_receiver_overlap(const struct resume_receiver *r, uint64_t off, size_t len);
size_t resume_overlap(uint64_t have, uint64_t off, size_t len);

/* ---- per-connection splitter ------------------------------------------------------------- */

enum resume_role {
	RESUME_DIALER,   /* guest: sent HELLO, expects READY */
	RESUME_LISTENER, /* host: expects HELLO, answers READY */
};

enum resume_conn_state {
	RESUME_CONN_PREFIX, /* waiting for the HELLO (listener) or READY (dialer) */
	RESUME_CONN_ANSWER, /* listener: HELLO received, READY not sent yet */
	RESUME_CONN_STREAM, /* handshake done: ACKs or data */
	RESUME_CONN_FAILED, /* a protocol error was returned; feed fails from now on */
};

enum resume_event_type {
	RESUME_EV_HELLO, /* listener: ev.hello; answer with resume_conn_answer */
	RESUME_EV_READY, /* dialer: ev.ready; the connection is now streaming */
	RESUME_EV_ACK,   /* data sender: ev.ack, one per complete 8-byte ACK */
	RESUME_EV_DATA,  /* data receiver: ev.data, a run of stream bytes */
};

struct resume_event {
	enum resume_event_type type;
	union {
		struct resume_hello hello;
		struct resume_ready ready;
		uint64_t ack;
		struct {
			const uint8_t *p; /* points into the fed bytes */
			size_t len;
			uint64_t offset; /* stream offset of p[0] */
		} data;
	};
};

/* One connection's handshake and framing state.  Small, no allocation: embed it. */
struct resume_conn {
	enum resume_role role;
	enum resume_conn_state state;
	bool input;                /* the stream is stdin */
	bool sender;               /* this end is the data sender (incoming bytes are ACKs) */
	uint64_t data_off;         /* receiver: stream offset of the next incoming data byte */
	struct resume_hello hello; /* dialer: the HELLO sent; listener: the HELLO received */
	uint8_t stage[RESUME_HELLO_LEN]; /* partial prefix / ACK carried between feeds */
	size_t staged;
};

/* Start a connection.  `input`: the stream is stdin.  From role and input the data
 * direction follows (dialer+output and listener+input are data senders). */
void resume_conn_init(struct resume_conn *c, enum resume_role role, bool input);

/* Dialer: encode the HELLO to send first (h->flags must agree with `input`, else -EINVAL);
 * it is remembered to interpret the READY.  Returns 0. */
int resume_conn_hello(struct resume_conn *c, const struct resume_hello *h,
                      uint8_t out[RESUME_HELLO_LEN], struct err *e);
/* Listener, in state ANSWER: encode the READY (built by resume_receiver_answer or
 * resume_sender_answer, or by hand) and move to STREAM.  The data of a receiving listener
 * then continues from READY.offset (status OK) or HELLO.offset (status GAP: the guest
 * continues from its floor).  -EINVAL in another state or with a bad status. */
int resume_conn_answer(struct resume_conn *c, const struct resume_ready *r,
                       uint8_t out[RESUME_READY_LEN], struct err *e);

/* Feed received bytes p[0..n) (p may be NULL when n == 0).  Returns 1 with *ev filled, 0
 * when every byte was absorbed without completing an event (a partial HELLO/READY/ACK is
 * kept inside the conn, so messages may be split anywhere across feeds), or a negative
 * errno.  *used is the number of bytes taken (all n when 0 is returned); loop with the
 * rest while it returns 1.  A data event points into p and takes the whole rest of
 * p[0..n); the conn then counts those bytes as handed to the caller (data_off advances).
 * Errors, after which the conn is FAILED and the connection should be closed: -EPROTO for
 * a malformed HELLO/READY (decoder message), a HELLO whose INPUT flag contradicts the
 * stream, any byte received in state ANSWER (the peer may not talk before READY), data
 * that would take the stream offset past 2^64 - 1 (a hostile offset); -EINVAL
 * when fed in state FAILED.  Bytes after the prefix in the same feed are kept for the next
 * call, never lost. */
int resume_conn_feed(struct resume_conn *c, const uint8_t *p, size_t n, size_t *used,
                     struct resume_event *ev, struct err *e);

/* ---- one end of one stream: the rules both sides apply ---------------------------------- */

/* Everything the guest relays (guest/relay_hub.c) and the host relays (host/iorelay_resume.c)
 * decide about a resumed connection happens here, so both ends run the same code and the fuzz
 * harness drives exactly it: the listener's check of a HELLO and the READY it answers, and
 * every later event (READY at the dialer, ACKs at the data sender, data at the receiver).
 * The callers only move bytes.  A stream end is a data sender (tx) or a data receiver (rx). */
struct resume_stream {
	struct resume_sender *tx;   /* data sender: guest stdout/stderr, host stdin; else NULL */
	struct resume_receiver *rx; /* data receiver: guest stdin, host stdout/stderr; else NULL */
	uint64_t pending;   /* receiver: bytes taken from connections, not yet in rx->delivered */
	unsigned bad_acks;  /* sender: ACKs refused on the current connection */
	uint32_t last_dial; /* listener: the dial number of the last HELLO taken */
};

/* ACKs a sender refuses on one connection before it drops it: a host (or guest) sending junk
 * there is broken; a few are tolerated so that one corrupted value is a warning, and 1 MiB of
 * junk costs one re-dial, not 131,072 warnings (issue 7). */
#define RESUME_BAD_ACKS_MAX 4

/* resume_stream_event's "the stream cannot continue" (a READY a sender cannot honour). */
#define RESUME_GIVE_UP 1

/* Apply one event (resume_conn_feed) to the stream end.  Returns:
 *   0            continue; for RESUME_EV_DATA, drop the first *skip bytes of the run (the
 *                receiver already has them: a resend from below what it took) and hand the
 *                rest to the sink;
 *   -ERANGE      continue, with a message worth one (rate-limited) log line: READY of a
 *                receiver at another offset than it has (re-sent bytes will be dropped, or
 *                missing bytes counted as lost), READY GAP at a sender (continues from its
 *                floor), an ACK the sender refused (going backwards, beyond produced);
 *   -EPROTO      drop this connection: RESUME_BAD_ACKS_MAX refused ACKs on it;
 *   RESUME_GIVE_UP  a sender got READY OK at an offset outside what it retains (a wrong
 *                hand-over offset): re-dialling would get the same answer, so the stream is
 *                to be given up (log once);
 *   -EINVAL      the event does not belong to this end (HELLO: see resume_stream_hello).
 * *skip is 0 for every event but DATA.  Call resume_stream_new_conn on every new connection. */
int resume_stream_event(struct resume_stream *st, const struct resume_event *ev, size_t *skip,
                        struct err *e);
/* A new connection: the per-connection counters start over. */
void resume_stream_new_conn(struct resume_stream *st);

/* Listener (host): may the HELLO `h`, received on a connection accepted on `port`, take the
 * stream?  It must be for this port and this direction, and with a session (`a` on) carry the
 * session's mac for this negotiation and a dial number above the last one taken (an old HELLO
 * cannot be replayed).  0, or -EACCES with the reason: an impostor or a confused guest, to be
 * refused without touching the stream.  Changes nothing. */
int resume_stream_hello_check(const struct resume_stream *st, const struct resume_hello *h,
                              uint32_t port, const struct session_auth *a, struct err *e);
/* Listener: take the HELLO (resume_stream_hello_check first, then its dial number is
 * remembered) and the READY to answer: a sender (stdin) resumes at the guest's offset
 * (resume_sender_answer); a receiver (stdout/stderr) at what it has, rx->delivered +
 * pending, or GAP when the guest no longer retains that (bytes lost, counted in
 * rx->gap_bytes).  Returns 0, -ERANGE (a gap: log it, send the READY anyway) or -EACCES. */
int resume_stream_hello(struct resume_stream *st, const struct resume_hello *h, uint32_t port,
                        const struct session_auth *a, struct resume_ready *rd, struct err *e);

#endif
