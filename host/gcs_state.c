/* Whole-client migration state (host/gcs_state.h): snapshot a live client, serialise it as a
 * JSON document (a stand-in for the versioned protobuf payloads of a later issue), decode
 * such a document with strict checks (the file comes from another process: hostile), and
 * adopt it on a new client.  Unacknowledged stdin bytes travel as lower-case hex. */
#include "host/gcs_state.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "bridge/proto.h"
#include "bridge/session.h"
#include "common/hex.h"
#include "common/xalloc.h"
#include "host/gcs_client.h"
#include "host/process.h"

static const char *const stream_names[3] = {"stdin", "stdout", "stderr"};

void gcs_client_export_state(struct gcs_client *c, struct gcs_client_state *out)
{
	memset(out, 0, sizeof(*out));
	out->next_port = gcs_client_next_stdio_port(c);
	out->next_id = gcs_client_next_bridge_id(c);
	out->has_session_secret = gcs_client_session_secret(c, out->session_secret);
	size_t cap = 16, count;
	struct gcs_process **ps = NULL;
	for (;;) {
		ps = xrealloc(ps, cap * sizeof(*ps));
		count = gcs_client_processes(c, ps, cap);
		if (count < cap)
			break;
		cap *= 2;
	}
	out->procs = xcalloc(count + 1, sizeof(*out->procs));
	for (size_t i = 0; i < count; i++) {
		if (gcs_process_finished(ps[i]) || gcs_process_pid(ps[i]) == 0)
			continue;
		gcs_process_export(ps[i], &out->procs[out->n_procs]);
		if (!out->procs[out->n_procs].wait_pending) {
			gcs_process_mstate_fini(&out->procs[out->n_procs]);
			continue;
		}
		out->n_procs++;
	}
	free(ps);
	out->containers = gcs_client_registered_containers(c, &out->n_containers);
	size_t nids;
	uint64_t *ids = gcs_client_outstanding_ids(c, &nids);
	out->orphans = xcalloc(nids + 1, sizeof(*out->orphans));
	for (size_t i = 0; i < nids; i++) {
		bool wait = false;
		for (size_t j = 0; j < out->n_procs; j++)
			if (out->procs[j].wait_id == ids[i])
				wait = true;
		if (!wait)
			out->orphans[out->n_orphans++] = ids[i];
	}
	free(ids);
}

void gcs_client_state_fini(struct gcs_client_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_containers; i++)
		free(s->containers[i]);
	free(s->containers);
	for (size_t i = 0; i < s->n_procs; i++)
		gcs_process_mstate_fini(&s->procs[i]);
	free(s->procs);
	free(s->orphans);
	memset(s, 0, sizeof(*s));
}

char *gcs_client_state_to_json(const struct gcs_client_state *s)
{
	json_t *root = json_object();
	json_object_set_new(root, "Version", json_integer(GCS_STATE_VERSION));
	json_object_set_new(root, "NextPort", json_integer(s->next_port));
	json_object_set_new(root, "NextId", json_integer((json_int_t)s->next_id));
	if (s->has_session_secret) {
		char hex[SESSION_HEX_LEN + 1];
		session_hex32_encode(s->session_secret, hex);
		json_object_set_new(root, "SessionSecret", json_string(hex));
	}
	json_t *cs = json_array();
	for (size_t i = 0; i < s->n_containers; i++)
		json_array_append_new(cs, json_string(s->containers[i]));
	json_object_set_new(root, "Containers", cs);
	json_t *ps = json_array();
	for (size_t i = 0; i < s->n_procs; i++) {
		const struct gcs_process_mstate *p = &s->procs[i];
		json_t *o = json_object();
		json_object_set_new(o, "ContainerId", json_string(p->container_id));
		json_object_set_new(o, "Pid", json_integer(p->pid));
		json_object_set_new(o, "WaitId", json_integer((json_int_t)p->wait_id));
		for (int k = 0; k < 3; k++) {
			const struct gcs_stream_state *st = &p->stdio[k];
			if (!st->port)
				continue;
			json_t *so = json_object();
			json_object_set_new(so, "Port", json_integer(st->port));
			if (st->offset_known)
				json_object_set_new(so, "Offset",
				                    json_integer((json_int_t)st->offset));
			json_object_set_new(so, "Eof", json_boolean(st->eof));
			if (k == 0) {
				char *h = xmalloc(2 * st->n_unacked + 1);
				hex_encode(st->unacked, st->n_unacked, h);
				json_object_set_new(so, "Unacked", json_string(h));
				free(h);
			}
			json_object_set_new(o, stream_names[k], so);
		}
		json_array_append_new(ps, o);
	}
	json_object_set_new(root, "Processes", ps);
	json_t *os = json_array();
	for (size_t i = 0; i < s->n_orphans; i++)
		json_array_append_new(os, json_integer((json_int_t)s->orphans[i]));
	json_object_set_new(root, "Orphans", os);
	char *text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!text)
		abort(); /* only on out-of-memory */
	return text;
}

/* ---- decoding ---- */

static int get_uint(json_t *o, const char *key, uint64_t max, bool required, uint64_t *out,
                    const char *where, struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v) {
		*out = 0;
		if (required)
			return err_set(e, -EBADMSG, "%s: %s missing", where, key);
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return err_set(e, -EBADMSG, "%s: %s must be an integer in 0..%llu", where, key,
		               (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_port(json_t *o, const char *key, uint32_t *out, const char *where, struct err *e)
{
	uint64_t v = 0;
	if (get_uint(o, key, UINT32_MAX, true, &v, where, e) < 0)
		return e->code;
	if (v < GCS_FIRST_STDIO_PORT)
		return err_set(e, -EBADMSG, "%s: %s %#llx is below the first stdio port", where,
		               key, (unsigned long long)v);
	*out = (uint32_t)v;
	return 0;
}

static int decode_stream(json_t *so, int k, struct gcs_stream_state *st, const char *where,
                         struct err *e)
{
	char w[160];
	snprintf(w, sizeof(w), "%s: %s", where, stream_names[k]);
	if (!json_is_object(so))
		return err_set(e, -EBADMSG, "%s: not an object", w);
	if (get_port(so, "Port", &st->port, w, e) < 0)
		return e->code;
	json_t *off = json_object_get(so, "Offset");
	st->offset_known = off != NULL;
	if (get_uint(so, "Offset", INT64_MAX, false, &st->offset, w, e) < 0)
		return e->code;
	json_t *eof = json_object_get(so, "Eof");
	if (eof && !json_is_boolean(eof))
		return err_set(e, -EBADMSG, "%s: Eof must be a boolean", w);
	st->eof = json_is_true(eof);
	json_t *un = json_object_get(so, "Unacked");
	if (k != 0) {
		if (un)
			return err_set(e, -EBADMSG, "%s: Unacked is for stdin only", w);
		return 0;
	}
	if (!st->offset_known)
		return err_set(e, -EBADMSG, "%s: Offset missing", w);
	if (!un)
		return 0;
	if (!json_is_string(un))
		return err_set(e, -EBADMSG, "%s: Unacked must be a hex string", w);
	size_t len = json_string_length(un);
	if (len % 2 || len / 2 > GCS_STATE_MAX_UNACKED)
		return err_set(e, -EBADMSG, "%s: Unacked has a bad length %zu (max %u bytes)", w,
		               len, GCS_STATE_MAX_UNACKED);
	const char *h = json_string_value(un);
	st->n_unacked = len / 2;
	st->unacked = xmalloc(st->n_unacked + 1);
	if (hex_decode(h, len, st->unacked, e) < 0) {
		err_prefix(e, "%s: Unacked", w);
		return e->code = -EBADMSG;
	}
	if (st->offset + st->n_unacked < st->offset || st->offset + st->n_unacked > INT64_MAX)
		return err_set(e, -EBADMSG, "%s: offset overflow", w);
	return 0;
}

static int decode_proc(json_t *o, size_t idx, struct gcs_process_mstate *p, struct err *e)
{
	char w[64];
	snprintf(w, sizeof(w), "Processes[%zu]", idx);
	if (!json_is_object(o))
		return err_set(e, -EBADMSG, "%s: not an object", w);
	json_t *cid = json_object_get(o, "ContainerId");
	if (!json_is_string(cid) || json_string_length(cid) == 0 || json_string_length(cid) > 256 ||
	    strlen(json_string_value(cid)) != json_string_length(cid))
		return err_set(e, -EBADMSG, "%s: ContainerId must be a string of 1..256 bytes", w);
	p->container_id = xstrdup(json_string_value(cid));
	uint64_t v = 0;
	if (get_uint(o, "Pid", UINT32_MAX, true, &v, w, e) < 0)
		return e->code;
	if (v == 0)
		return err_set(e, -EBADMSG, "%s: Pid 0", w);
	p->pid = (uint32_t)v;
	if (get_uint(o, "WaitId", INT64_MAX, true, &p->wait_id, w, e) < 0)
		return e->code;
	p->wait_pending = true;
	for (int k = 0; k < 3; k++) {
		json_t *so = json_object_get(o, stream_names[k]);
		if (so && decode_stream(so, k, &p->stdio[k], w, e) < 0)
			return e->code;
	}
	return 0;
}

static int decode_root(json_t *root, struct gcs_client_state *s, struct err *e)
{
	if (!json_is_object(root))
		return err_set(e, -EBADMSG, "not a JSON object");
	uint64_t v = 0;
	if (get_uint(root, "Version", UINT32_MAX, true, &v, "state", e) < 0)
		return e->code;
	if (v != GCS_STATE_VERSION)
		return err_set(e, -EBADMSG, "unsupported state version %llu (want %d)",
		               (unsigned long long)v, GCS_STATE_VERSION);
	if (get_port(root, "NextPort", &s->next_port, "state", e) < 0)
		return e->code;
	if (get_uint(root, "NextId", INT64_MAX, true, &s->next_id, "state", e) < 0)
		return e->code;
	json_t *sec = json_object_get(root, "SessionSecret");
	if (sec) {
		if (!json_is_string(sec) ||
		    session_hex32(json_string_value(sec), s->session_secret, e) < 0)
			return err_set(e, -EBADMSG, "SessionSecret must be %d hex digits",
			               SESSION_HEX_LEN);
		s->has_session_secret = true;
	}
	json_t *cs = json_object_get(root, "Containers");
	if (cs && !json_is_array(cs))
		return err_set(e, -EBADMSG, "Containers must be an array");
	if (json_array_size(cs) > GCS_STATE_MAX_PROCS)
		return err_set(e, -EBADMSG, "too many containers (%zu)", json_array_size(cs));
	s->containers = xcalloc(json_array_size(cs) + 1, sizeof(char *));
	size_t i;
	json_t *x;
	json_array_foreach(cs, i, x)
	{
		if (!json_is_string(x) || json_string_length(x) == 0 ||
		    json_string_length(x) > 256 ||
		    strlen(json_string_value(x)) != json_string_length(x))
			return err_set(e, -EBADMSG, "Containers[%zu]: bad id", i);
		for (size_t j = 0; j < s->n_containers; j++)
			if (strcmp(s->containers[j], json_string_value(x)) == 0)
				return err_set(e, -EBADMSG, "Containers[%zu]: duplicate id %.80s",
				               i, json_string_value(x));
		s->containers[s->n_containers++] = xstrdup(json_string_value(x));
	}
	json_t *ps = json_object_get(root, "Processes");
	if (ps && !json_is_array(ps))
		return err_set(e, -EBADMSG, "Processes must be an array");
	if (json_array_size(ps) > GCS_STATE_MAX_PROCS)
		return err_set(e, -EBADMSG, "too many processes (%zu)", json_array_size(ps));
	s->procs = xcalloc(json_array_size(ps) + 1, sizeof(*s->procs));
	json_array_foreach(ps, i, x)
	{
		struct gcs_process_mstate *p = &s->procs[s->n_procs++];
		if (decode_proc(x, i, p, e) < 0)
			return e->code;
		if (p->wait_id >= s->next_id)
			return err_set(e, -EBADMSG, "Processes[%zu]: WaitId %llu not below NextId",
			               i, (unsigned long long)p->wait_id);
		for (int k = 0; k < 3; k++)
			if (p->stdio[k].port >= s->next_port)
				return err_set(e, -EBADMSG,
				               "Processes[%zu]: port %#x not below NextPort", i,
				               p->stdio[k].port);
		for (size_t j = 0; j + 1 < s->n_procs; j++) {
			const struct gcs_process_mstate *q = &s->procs[j];
			if (q->wait_id == p->wait_id)
				return err_set(e, -EBADMSG, "Processes[%zu]: duplicate WaitId", i);
			for (int a = 0; a < 3; a++)
				for (int b = 0; b < 3; b++)
					if (p->stdio[a].port &&
					    p->stdio[a].port == q->stdio[b].port)
						return err_set(
						    e, -EBADMSG,
						    "Processes[%zu]: port %#x used twice", i,
						    p->stdio[a].port);
		}
	}
	json_t *os = json_object_get(root, "Orphans");
	if (os && !json_is_array(os))
		return err_set(e, -EBADMSG, "Orphans must be an array");
	if (json_array_size(os) > GCS_STATE_MAX_PROCS)
		return err_set(e, -EBADMSG, "too many orphans (%zu)", json_array_size(os));
	s->orphans = xcalloc(json_array_size(os) + 1, sizeof(*s->orphans));
	json_array_foreach(os, i, x)
	{
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    (uint64_t)json_integer_value(x) >= s->next_id)
			return err_set(e, -EBADMSG, "Orphans[%zu]: not an id below NextId", i);
		uint64_t id = (uint64_t)json_integer_value(x);
		for (size_t j = 0; j < s->n_procs; j++)
			if (s->procs[j].wait_id == id)
				return err_set(e, -EBADMSG, "Orphans[%zu]: id %llu is a wait id", i,
				               (unsigned long long)id);
		s->orphans[s->n_orphans++] = id;
	}
	return 0;
}

int gcs_client_state_from_json(const char *text, size_t len, struct gcs_client_state *out,
                               struct err *e)
{
	memset(out, 0, sizeof(*out));
	if (len > GCS_STATE_MAX_TEXT)
		return err_set(e, -EBADMSG, "client state: %zu bytes is too big", len);
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return err_set(e, -EBADMSG, "client state: bad JSON at %d:%d: %s", je.line,
		               je.column, je.text);
	int rc = decode_root(root, out, e);
	json_decref(root);
	if (rc < 0) {
		gcs_client_state_fini(out);
		return err_prefix(e, "client state");
	}
	return 0;
}
