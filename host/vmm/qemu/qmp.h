/* A QMP (QEMU Machine Protocol) client on a libev loop: the greeting and capability
 * negotiation, commands with numeric ids matched to their replies, and asynchronous events.
 * Every byte QEMU sends is outside input (a guest that broke out of its emulator owns that
 * process): lines are capped at QMP_LINE_MAX, each one is checked to be one JSON object of
 * one of the four shapes below with the right types before anything acts on it, the number
 * of JSON values per message is bounded (QMP_MAX_VALUES) before jansson builds a tree, and
 * anything else closes the connection with a message saying what was wrong.
 *
 * Wire facts (QEMU docs/interop/qmp-spec): every message is one JSON object ending in "\r\n"
 * (the client accepts a bare "\n" too).  Greeting {"QMP":{"version":{"qemu":{"major":M,
 * "minor":m,"micro":u},"package":S},"capabilities":[...]}}; then {"execute":
 * "qmp_capabilities"} must succeed before any other command.  Success {"return":V,"id":I},
 * failure {"error":{"class":C,"desc":D},"id":I}, event {"event":NAME,"data":{...},
 * "timestamp":{"seconds":S,"microseconds":U}}.  In-band commands are executed in order.
 *
 * File descriptors: a command may carry one fd (QMP `getfd`, `add-fd`), sent with SCM_RIGHTS
 * on the first byte of that command.  QEMU keeps only the fds of the last read that carried
 * any, so such a command is sent alone: after every earlier reply arrived and before any
 * later command goes out.
 *
 * Threading and re-entrancy: one loop, nothing blocks.  Every callback may call qmp_free on
 * its client (the release is deferred until the callback returns, common/reenter.h) and may
 * queue new commands. */
#ifndef FERRY_HOST_VMM_QEMU_QMP_H
#define FERRY_HOST_VMM_QEMU_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct ev_loop;
struct qmp;

/* Longest message accepted from QEMU, "\r\n" included.  The largest reply ferry asks for is
 * qom-list of /machine/peripheral or query-migrate (a few KiB); query-qmp-schema, which
 * ferry never sends, is the only common reply near 200 KiB.  1 MiB leaves room for both. */
#define QMP_LINE_MAX (1024u * 1024u)
/* Most JSON values (objects, arrays, scalars) in one message, counted before parsing: bounds
 * the memory of the tree jansson builds (roughly 100 bytes per value) to a few MiB per line. */
#define QMP_MAX_VALUES 65536u
/* Bytes queued for QEMU before qmp_command refuses more (-ENOBUFS): QEMU stopped reading. */
#define QMP_SENDQ_MAX (4u * 1024u * 1024u)
/* Default time limits (ms): the greeting and capability negotiation, and each command. */
#define QMP_READY_TIMEOUT_MS   30000
#define QMP_COMMAND_TIMEOUT_MS 30000

/* ---- the decoder (pure; also the fuzz harness's entry point) ---- */

enum qmp_msg_kind {
	QMP_MSG_GREETING = 1,
	QMP_MSG_RETURN,
	QMP_MSG_ERROR,
	QMP_MSG_EVENT,
};

/* A decoded message.  Pointers point into `root` (owned; qmp_msg_fini releases it). */
struct qmp_msg {
	enum qmp_msg_kind kind;
	json_t *root;
	/* GREETING */
	int ver_major, ver_minor, ver_micro;
	/* RETURN / ERROR: the id we sent (has_id false when QEMU answered without one, which it
	 * does only for input it could not parse) */
	bool has_id;
	uint64_t id;
	json_t *ret;                      /* RETURN: any JSON value */
	const char *err_class, *err_desc; /* ERROR */
	/* EVENT */
	const char *event;
	json_t *data;  /* object or NULL when absent */
	int64_t ts_us; /* timestamp, microseconds since the epoch; -1 when QEMU had none */
};

/* Decode one line (without its "\r\n"; n bytes, need not be NUL-terminated).  Rules: at most
 * QMP_LINE_MAX bytes and QMP_MAX_VALUES values, valid JSON, an object with exactly one of the
 * keys "QMP", "return", "error", "event" (other keys are ignored, as the spec allows new
 * ones), and for each shape the types above; "id" must be a non-negative integer.
 * Returns 0 with *m filled (release with qmp_msg_fini), or -EBADMSG with e naming the fault
 * (*m is then empty). */
int qmp_msg_parse(const char *line, size_t n, struct qmp_msg *m, struct err *e);
void qmp_msg_fini(struct qmp_msg *m);

/* Count the JSON values in text the way qmp_msg_parse bounds them: an upper bound (commas,
 * colons and openers outside strings, plus one); stops counting at limit + 1. */
size_t qmp_count_values(const char *s, size_t n, size_t limit);

/* ---- the client ---- */

struct qmp_ops {
	/* The greeting arrived and qmp_capabilities succeeded (status 0), or setup failed
	 * (timeout, EOF, a bad greeting or refusal): then the connection is closed and on_close
	 * does not follow.  Called once. */
	void (*on_ready)(struct qmp *q, int status, const struct err *e, void *ud);
	/* An event (name and data borrowed, valid during the call; data NULL when absent). */
	void (*on_event)(struct qmp *q, const char *name, json_t *data, int64_t ts_us, void *ud);
	/* The connection ended after on_ready(0): EOF (QEMU exited), an I/O error or a protocol
	 * violation.  Every command still outstanding has completed (with -ECONNRESET) before.
	 * Called at most once. */
	void (*on_close)(struct qmp *q, const struct err *why, void *ud);
};

/* Completion of a command.  status 0: `ret` is the "return" value (borrowed, valid during the
 * call).  -EREMOTEIO: QEMU refused; e->msg is "<class>: <desc>", ret NULL.  -ETIMEDOUT: no
 * reply within the command's time limit (a late reply is dropped).  -ECONNRESET: the
 * connection ended first.  Called exactly once unless the client is freed first. */
typedef void (*qmp_reply_fn)(struct qmp *q, int status, json_t *ret, const struct err *e, void *ud);

/* Take ownership of fd (a connected stream socket to QEMU's QMP monitor, e.g. one end of a
 * socketpair whose other end QEMU got as `-chardev socket,fd=N`), make it non-blocking and
 * wait for the greeting.  ops is copied.  Returns the client or NULL with e filled (fd is
 * closed then too). */
struct qmp *qmp_new(struct ev_loop *loop, int fd, const struct qmp_ops *ops, void *ud,
                    struct err *e);
/* Close and release.  Outstanding commands are dropped without their callbacks.  NULL-safe;
 * safe inside any callback of this client. */
void qmp_free(struct qmp *q);

/* Queue `execute` with arguments `args` (borrowed; NULL or an object) and, when fd >= 0, a
 * file descriptor to pass with it (borrowed: the client sends a duplicate it owns).
 * timeout_ms: 0 for QMP_COMMAND_TIMEOUT_MS, < 0 for none.  Commands queued before the
 * negotiation are sent after it.  Returns 0 (done will be called) or a negative errno with e
 * filled (done will not be called): -ENOTCONN after the connection ended, -ENOBUFS when
 * QMP_SENDQ_MAX bytes are already queued, -EINVAL for bad arguments, -errno from dup. */
int qmp_command(struct qmp *q, const char *execute, json_t *args, int fd, int timeout_ms,
                qmp_reply_fn done, void *ud, struct err *e);

/* Ready (negotiated and not closed). */
bool qmp_ready(const struct qmp *q);
/* QEMU's version from the greeting (0.0.0 before it). */
void qmp_version(const struct qmp *q, int *major, int *minor, int *micro);
/* Commands sent and not yet answered, plus those still queued. */
size_t qmp_outstanding(const struct qmp *q);

#endif
