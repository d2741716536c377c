/* The process payload (host/ctrl/process_save.h): hcsshim's fields 1-10 and ferry's resume
 * state and exit status (fields 1000-1003), with the conversion to and from the GCS
 * client's per-process migration state. */
#include "host/ctrl/process_save.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/proto.h"
#include "common/xalloc.h"
#include "hcsshim/controller/process/save/v1/payload.pb-c.h"
#include "host/ctrl/save.h"

typedef Hcsshim__Controller__Process__Save__V1__Payload pb_process;
typedef Ferry__Save__V1__StreamResume pb_stream;

static const char *const stream_names[3] = {"stdin", "stdout", "stderr"};

void process_save_fini(struct process_save *s)
{
	if (!s)
		return;
	free(s->exec_id);
	free(s->bundle);
	free(s->spec_json);
	for (int k = 0; k < 3; k++)
		free(s->stdio[k].unacked);
	memset(s, 0, sizeof(*s));
}

/* ---- encoding ---- */

int process_save_encode(const struct process_save *s, Google__Protobuf__Any *out, struct err *e)
{
	pb_process m;
	pb_stream st[3];
	Google__Protobuf__Duration retry;
	Ferry__Save__V1__ExitStatus ex;
	Google__Protobuf__Timestamp at;
	hcsshim__controller__process__save__v1__payload__init(&m);
	m.schema_version = SAVE_SCHEMA_VERSION;
	m.exec_id = s->exec_id;
	m.pid = s->pid;
	m.bundle = s->bundle;
	m.oci_process_spec_json.data = (uint8_t *)s->spec_json;
	m.oci_process_spec_json.len = s->spec_json ? s->spec_len : 0;
	save_duration_set(&retry, s->io_retry_timeout_ns);
	m.io_retry_timeout = &retry;
	m.stdin_port = s->stdio[PROCESS_STDIN].port;
	m.stdout_port = s->stdio[PROCESS_STDOUT].port;
	m.stderr_port = s->stdio[PROCESS_STDERR].port;
	m.wait_call_id = s->wait_call_id;
	pb_stream **slots[3] = {&m.ferry_stdin, &m.ferry_stdout, &m.ferry_stderr};
	for (int k = 0; k < 3; k++) {
		const struct process_stream_save *ss = &s->stdio[k];
		if (!ss->has_resume)
			continue;
		ferry__save__v1__stream_resume__init(&st[k]);
		st[k].offset = ss->offset;
		st[k].offset_known = ss->offset_known;
		st[k].eof = ss->eof;
		st[k].unacked.data = ss->unacked;
		st[k].unacked.len = ss->n_unacked;
		*slots[k] = &st[k];
	}
	if (s->exited) {
		ferry__save__v1__exit_status__init(&ex);
		ex.exit_code = s->exit_code;
		save_timestamp_set(&at, s->exited_at_ns);
		ex.exited_at = &at;
		m.ferry_exit = &ex;
	}
	return save_pack(SAVE_PROCESS, &m.base, out, e);
}

/* ---- decoding ---- */

static int decode_stream(struct save_dec *d, int k, uint32_t port, const pb_stream *src,
                         struct process_stream_save *ss)
{
	ss->port = port;
	if (port && port < GCS_FIRST_STDIO_PORT)
		return err_set(d->e, -EINVAL, "%s_port %#" PRIx32 " is below the first stdio port",
		               stream_names[k], port);
	if (!src)
		return 0;
	if (!port)
		return err_set(d->e, -EINVAL, "ferry_%s without %s_port", stream_names[k],
		               stream_names[k]);
	ss->has_resume = true;
	ss->offset = src->offset;
	ss->offset_known = src->offset_known;
	ss->eof = src->eof;
	if (k != PROCESS_STDIN) {
		if (src->unacked.len)
			return err_set(d->e, -EINVAL, "ferry_%s: unacked is for stdin only",
			               stream_names[k]);
		return 0;
	}
	if (!src->offset_known)
		return err_set(d->e, -EINVAL, "ferry_stdin: offset_known is false");
	if (src->unacked.len > PROCESS_SAVE_MAX_UNACKED)
		return err_set(d->e, -E2BIG, "ferry_stdin: %zu unacknowledged bytes, limit %u",
		               src->unacked.len, PROCESS_SAVE_MAX_UNACKED);
	if (src->offset > (uint64_t)INT64_MAX - src->unacked.len)
		return err_set(d->e, -EINVAL, "ferry_stdin: offset %" PRIu64 " overflows",
		               src->offset);
	size_t n = 0;
	ss->unacked = (uint8_t *)save_memdup(d, &src->unacked, &n);
	ss->n_unacked = n;
	if (n && !ss->unacked)
		return d->e->code;
	return 0;
}

static int decode_fields(struct save_dec *d, const pb_process *m, struct process_save *out)
{
	if (save_check_schema(d, m->schema_version) < 0)
		return d->e->code;
	if (m->pid <= 0)
		return err_set(d->e, -EINVAL, "pid %" PRId32 ", want > 0", m->pid);
	out->pid = m->pid;
	if (save_check_json(d, "oci_process_spec_json", &m->oci_process_spec_json, true) < 0 ||
	    save_duration_ns(d, "io_retry_timeout", m->io_retry_timeout,
	                     &out->io_retry_timeout_ns) < 0)
		return d->e->code;
	if (m->wait_call_id < 0)
		return err_set(d->e, -EINVAL, "wait_call_id %" PRId64 " is negative",
		               m->wait_call_id);
	out->wait_call_id = m->wait_call_id;
	const uint32_t ports[3] = {m->stdin_port, m->stdout_port, m->stderr_port};
	const pb_stream *res[3] = {m->ferry_stdin, m->ferry_stdout, m->ferry_stderr};
	for (int k = 0; k < 3; k++) {
		if (decode_stream(d, k, ports[k], res[k], &out->stdio[k]) < 0)
			return d->e->code;
		for (int j = 0; j < k; j++)
			if (ports[k] && ports[k] == ports[j])
				return err_set(d->e, -EINVAL,
				               "%s_port %#" PRIx32 " is also %s_port",
				               stream_names[k], ports[k], stream_names[j]);
	}
	if (m->ferry_exit) {
		out->exited = true;
		out->exit_code = m->ferry_exit->exit_code;
		if (save_timestamp_ns(d, "ferry_exit.exited_at", m->ferry_exit->exited_at,
		                      &out->exited_at_ns) < 0)
			return d->e->code;
	}
	out->bundle = save_strdup(d, m->bundle);
	out->spec_json = save_memdup(d, &m->oci_process_spec_json, &out->spec_len);
	if (!out->bundle || (out->spec_len && !out->spec_json))
		return d->e->code;
	return 0;
}

/* Name a process in an error: by its exec id once known, else by its map key. */
static int name_process(struct save_dec *d, const char *id)
{
	if (!id)
		return err_prefix(d->e, "process");
	if (!*id)
		return err_prefix(d->e, "init process");
	return err_prefix(d->e, "process `%.200s`", id);
}

int process_save_from_any(struct save_dec *d, const Google__Protobuf__Any *any, const char *key,
                          struct process_save *out)
{
	memset(out, 0, sizeof(*out));
	if (d->n_processes >= d->lim->max_processes) {
		save_check_count(d, "processes in the envelope", d->n_processes + 1,
		                 d->lim->max_processes);
		return name_process(d, key);
	}
	d->n_processes++;
	pb_process *m = (pb_process *)save_unpack(d, SAVE_PROCESS, any, NULL);
	if (!m)
		return name_process(d, key);
	int rc = 0;
	const char *id = m->exec_id ? m->exec_id : "";
	if (key && strcmp(key, id) != 0)
		rc = err_set(d->e, -EINVAL, "key `%.200s` holds exec_id `%.200s`", key, id);
	else if (!(out->exec_id = save_strdup(d, id)))
		rc = d->e->code;
	else
		rc = decode_fields(d, m, out);
	if (rc < 0) {
		name_process(d, id);
		process_save_fini(out);
	}
	save_msg_free(d, m);
	return rc;
}

int process_save_decode(const Google__Protobuf__Any *any, struct process_save *out, struct err *e)
{
	return SAVE_DECODE_TOP(process_save_from_any, any, NULL, out, e);
}

/* ---- the GCS client's half ---- */

int process_save_from_gcs(struct process_save *p, const struct gcs_process_mstate *m, struct err *e)
{
	if (m->pid == 0 || m->pid > INT32_MAX)
		return err_set(e, -EINVAL, "pid %" PRIu32 " does not fit a process payload",
		               m->pid);
	if (m->wait_pending && (m->wait_id == 0 || m->wait_id > INT64_MAX))
		return err_set(e, -EINVAL, "wait id %" PRIu64 " does not fit a process payload",
		               m->wait_id);
	p->pid = (int32_t)m->pid;
	p->wait_call_id = m->wait_pending ? (int64_t)m->wait_id : 0;
	for (int k = 0; k < 3; k++) {
		const struct gcs_stream_state *g = &m->stdio[k];
		struct process_stream_save *ss = &p->stdio[k];
		free(ss->unacked);
		memset(ss, 0, sizeof(*ss));
		ss->port = g->port;
		if (!g->port)
			continue;
		ss->has_resume = true;
		ss->offset = g->offset;
		ss->offset_known = k == PROCESS_STDIN || g->offset_known;
		ss->eof = g->eof;
		if (k == PROCESS_STDIN && g->n_unacked) {
			ss->unacked = xmalloc(g->n_unacked);
			memcpy(ss->unacked, g->unacked, g->n_unacked);
			ss->n_unacked = g->n_unacked;
		}
	}
	return 0;
}

void process_save_to_gcs(const struct process_save *p, const char *gcs_container_id,
                         struct gcs_process_mstate *out)
{
	memset(out, 0, sizeof(*out));
	out->container_id = xstrdup(gcs_container_id);
	out->pid = (uint32_t)p->pid;
	out->wait_pending = p->wait_call_id != 0;
	out->wait_id = (uint64_t)p->wait_call_id;
	for (int k = 0; k < 3; k++) {
		const struct process_stream_save *ss = &p->stdio[k];
		struct gcs_stream_state *g = &out->stdio[k];
		g->port = ss->port;
		if (!ss->port)
			continue;
		g->offset = ss->has_resume ? ss->offset : 0;
		g->offset_known = k == PROCESS_STDIN || (ss->has_resume && ss->offset_known);
		g->eof = ss->has_resume && ss->eof;
		if (ss->n_unacked) {
			g->unacked = xmalloc(ss->n_unacked);
			memcpy(g->unacked, ss->unacked, ss->n_unacked);
			g->n_unacked = ss->n_unacked;
		}
	}
}
