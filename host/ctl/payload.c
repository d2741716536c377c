/* ferryctl payload show / check (host/ctl/payload.h).  The tree is printed generically from
 * the protobuf-c descriptors, so a field added to a .proto shows up without code here;
 * Any values are expanded through the payload type table of host/ctrl/save.h with the same
 * wire checks and memory budget as an import. */
#include "host/ctl/payload.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "host/ctrl/envelope_save.h"
#include "host/ctrl/save.h"

/* Any values nest at most envelope -> pod -> container -> process; a file that nests
 * deeper (an envelope inside a process slot, again and again) is shown only this far. */
#define MAX_ANY_DEPTH 8
/* Bytes of a binary field shown in hex. */
#define HEX_SHOWN 64

struct printer {
	FILE *out;
	struct save_dec *d;
	size_t fields; /* fields printed so far, to mark an empty message */
};

static void indent(struct printer *pr, int level)
{
	fprintf(pr->out, "%*s", 2 * level, "");
}

/* A string or printable bytes, quoted with C escapes. */
static void put_quoted(FILE *out, const uint8_t *p, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void put_bytes(FILE *out, const char *field, const ProtobufCBinaryData *b)
{
	size_t bad;
	if (strstr(field, "secret")) {
		fprintf(out, "<%zu bytes, not shown>", b->len);
	} else if (b->len && save_utf8_ok(b->data, b->len, &bad)) {
		put_quoted(out, b->data, b->len);
	} else {
		fprintf(out, "%zu bytes:", b->len);
		for (size_t i = 0; i < b->len && i < HEX_SHOWN; i++)
			fprintf(out, " %02x", b->data[i]);
		if (b->len > HEX_SHOWN)
			fputs(" ...", out);
	}
}

static void print_message(struct printer *pr, const ProtobufCMessage *m, int level, int depth);

static void print_any(struct printer *pr, const Google__Protobuf__Any *a, int level, int depth)
{
	const char *url = a->type_url ? a->type_url : "";
	const struct save_type *t = save_type_by_url(url);
	if (!t) {
		fprintf(pr->out, " (%.200s, %zu bytes: unknown type)\n", url, a->value.len);
		return;
	}
	fprintf(pr->out, " %s payload (%s, %zu bytes)\n", t->name, url, a->value.len);
	if (depth >= MAX_ANY_DEPTH) {
		indent(pr, level);
		fputs("(nested too deep: not shown)\n", pr->out);
		return;
	}
	ProtobufCMessage *m = save_unpack(pr->d, (enum save_kind)(t - save_types), a, t->name);
	if (!m) {
		indent(pr, level);
		fprintf(pr->out, "cannot decode: %s\n", pr->d->e->msg);
		return;
	}
	print_message(pr, m, level, depth + 1);
	save_msg_free(pr->d, m);
}

static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
	size_t n = strlen(d->name);
	return n > 5 && strcmp(d->name + n - 5, "Entry") == 0 && d->n_fields == 2 &&
	       strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

/* A scalar (number, bool, enum) of field f at p. */
static void put_scalar(FILE *out, const ProtobufCFieldDescriptor *f, const void *p)
{
	char text[64];
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		snprintf(text, sizeof(text), "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: {
		uint32_t v = *(const uint32_t *)p;
		const char *name = f->name;
		size_t n = strlen(name);
		if (n > 5 && strcmp(name + n - 5, "_port") == 0)
			snprintf(text, sizeof(text), "%" PRIu32 " (%#" PRIx32 ")", v, v);
		else
			snprintf(text, sizeof(text), "%" PRIu32, v);
		break;
	}
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(text, sizeof(text), "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(text, sizeof(text), "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		snprintf(text, sizeof(text), "%g", (double)*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		snprintf(text, sizeof(text), "%g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		snprintf(text, sizeof(text), "%s",
		         *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		if (ev)
			snprintf(text, sizeof(text), "%s", ev->name);
		else
			snprintf(text, sizeof(text), "%d (unknown)", v);
		break;
	}
	default:
		snprintf(text, sizeof(text), "?");
		break;
	}
	fputs(text, out);
}

static size_t scalar_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

/* Well-known types in one line. */
static bool put_wkt(FILE *out, const ProtobufCMessage *m)
{
	if (m->descriptor == &google__protobuf__duration__descriptor) {
		const Google__Protobuf__Duration *d = (const void *)m;
		fprintf(out, ": %" PRId64 ".%09" PRId32 "s\n", d->seconds, d->nanos);
		return true;
	}
	if (m->descriptor == &google__protobuf__timestamp__descriptor) {
		const Google__Protobuf__Timestamp *t = (const void *)m;
		time_t s = (time_t)t->seconds;
		struct tm tm;
		char when[64] = "?";
		if (gmtime_r(&s, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(out, ": %s.%09" PRId32 "Z\n", when, t->nanos);
		return true;
	}
	return false;
}

/* One value of field f (p points at it) after "name" or "name[i]" or "name[key]". */
static void print_value(struct printer *pr, const ProtobufCFieldDescriptor *f, const void *p,
                        int level, int depth)
{
	pr->fields++;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
		if (!sub) {
			fputs(": (none)\n", pr->out);
		} else if (sub->descriptor == &google__protobuf__any__descriptor) {
			fputc(':', pr->out);
			print_any(pr, (const Google__Protobuf__Any *)sub, level + 1, depth);
		} else if (!put_wkt(pr->out, sub)) {
			fputs(":\n", pr->out);
			size_t before = pr->fields;
			print_message(pr, sub, level + 1, depth);
			if (pr->fields == before) {
				indent(pr, level + 1);
				fputs("(every field zero)\n", pr->out);
			}
		}
		return;
	}
	fputs(": ", pr->out);
	if (f->type == PROTOBUF_C_TYPE_STRING) {
		const char *s = *(const char *const *)p;
		put_quoted(pr->out, (const uint8_t *)(s ? s : ""), s ? strlen(s) : 0);
	} else if (f->type == PROTOBUF_C_TYPE_BYTES) {
		put_bytes(pr->out, f->name, p);
	} else {
		put_scalar(pr->out, f, p);
	}
	fputc('\n', pr->out);
}

/* A map entry as name[key]: value. */
static void print_entry(struct printer *pr, const ProtobufCFieldDescriptor *f,
                        const ProtobufCMessage *entry, int level, int depth)
{
	const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
	const ProtobufCFieldDescriptor *vf = &entry->descriptor->fields[1];
	const char *base = (const char *)entry;
	indent(pr, level);
	fprintf(pr->out, "%s[", f->name);
	if (kf->type == PROTOBUF_C_TYPE_STRING) {
		const char *k = *(const char *const *)(base + kf->offset);
		put_quoted(pr->out, (const uint8_t *)(k ? k : ""), k ? strlen(k) : 0);
	} else {
		put_scalar(pr->out, kf, base + kf->offset);
	}
	fputc(']', pr->out);
	print_value(pr, vf, base + vf->offset, level, depth);
}

static void print_field(struct printer *pr, const ProtobufCMessage *m,
                        const ProtobufCFieldDescriptor *f, int level, int depth)
{
	const char *base = (const char *)m;
	const void *p = base + f->offset;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n = *(const size_t *)(base + f->quantifier_offset);
		const char *arr = *(const char *const *)p;
		for (size_t i = 0; i < n; i++) {
			const void *elem = arr + i * scalar_size(f->type);
			if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    is_map_entry(((const ProtobufCMessage *const *)arr)[i]->descriptor)) {
				print_entry(pr, f, ((const ProtobufCMessage *const *)arr)[i], level,
				            depth);
				continue;
			}
			indent(pr, level);
			fprintf(pr->out, "%s[%zu]", f->name, i);
			print_value(pr, f, elem, level, depth);
		}
		return;
	}
	/* Presence: has_ flag (proto2), oneof case, or a non-zero value (proto3). */
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
			return;
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
		if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
			return;
	} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		if (!*(const void *const *)p)
			return;
	} else if (f->type == PROTOBUF_C_TYPE_STRING) {
		const char *s = *(const char *const *)p;
		if (!s || !*s)
			return;
	} else if (f->type == PROTOBUF_C_TYPE_BYTES) {
		if (((const ProtobufCBinaryData *)p)->len == 0)
			return;
	} else {
		static const uint8_t zero[8];
		if (memcmp(p, zero, scalar_size(f->type)) == 0)
			return; /* the zero value is not shown, as protoc's text format */
	}
	indent(pr, level);
	fputs(f->name, pr->out);
	print_value(pr, f, p, level, depth);
}

static void print_message(struct printer *pr, const ProtobufCMessage *m, int level, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++)
		print_field(pr, m, &d->fields[i], level, depth);
	for (unsigned i = 0; i < m->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
		indent(pr, level);
		fprintf(pr->out, "field %" PRIu32 ": unknown to ferry (wire type %d, %zu bytes)\n",
		        u->tag, (int)u->wire_type, u->len);
	}
}

int ctl_payload_show(const uint8_t *p, size_t n, FILE *out, struct err *e)
{
	struct save_dec d;
	save_dec_init(&d, NULL, e);
	Google__Protobuf__Any *any = save_any_unpack(&d, p, n);
	if (!any) {
		save_dec_fini(&d);
		return e->code;
	}
	struct printer pr = {.out = out, .d = &d};
	fputs("envelope:", out);
	print_any(&pr, any, 1, 0);
	save_msg_free(&d, any);
	save_dec_fini(&d);
	err_clear(e);
	return 0;
}

struct check_sink {
	FILE *errs;
	int n;
};

static void print_error(const struct err *e, void *arg)
{
	struct check_sink *sink = arg;
	fprintf(sink->errs, "error: %s\n", e->msg);
	sink->n++;
}

int ctl_payload_check(const uint8_t *p, size_t n, FILE *out, FILE *errs)
{
	struct err e;
	struct check_sink sink = {.errs = errs};
	struct envelope_save s;
	struct save_decode_opts o = {.on_error = print_error, .arg = &sink};
	if (envelope_save_decode_bytes(p, n, &o, &s, &e) < 0) {
		/* A failing vm or pod was printed as it came; an envelope-wide error was not. */
		if (sink.n == 0)
			print_error(&e, &sink);
		return sink.n;
	}
	fprintf(out,
	        "ok: %zu bytes, vm `%s` (backend %s), %zu pods, %zu containers, %zu processes; "
	        "decoding held at most %zu bytes\n",
	        n, s.vm.vm_id, s.vm.backend, s.n_pods, envelope_save_containers(&s),
	        envelope_save_processes(&s), o.peak_memory);
	envelope_save_fini(&s);
	return 0;
}

/* The file, at most what an import accepts plus the Any's own bytes. */
static int read_file(const char *path, struct buf *b, struct err *e)
{
	size_t cap = save_default_limits.max_bytes + 4096;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", path);
	for (;;) {
		uint8_t *w = buf_reserve(b, 65536);
		ssize_t r = read(fd, w, 65536);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int code = -errno;
			close(fd);
			return err_sys(e, code, "read %s", path);
		}
		if (r == 0)
			break;
		buf_commit(b, (size_t)r);
		if (buf_avail(b) > cap) {
			close(fd);
			return err_set(e, -E2BIG,
			               "%s: more than %zu bytes, larger than any envelope", path,
			               cap);
		}
	}
	close(fd);
	return 0;
}

static const char usage[] =
    "usage: ferryctl payload show FILE\n"
    "       ferryctl payload check FILE\n"
    "\n"
    "FILE holds a saved-state envelope (a packed google.protobuf.Any of type\n"
    "type.microsoft.com/hcsshim.controller.migration.save.v1.Payload, as\n"
    "PrepareAndExportSandbox returns it; ferry's or hcsshim's).\n"
    "\n"
    "  show    print it as a tree, every Any expanded, then run every import check\n"
    "  check   run every import check; print each failing payload's error\n"
    "\n"
    "Exit status: 0 every check passed, 1 a check failed, 2 usage, 3 unreadable file.\n";

int ctl_payload_main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(usage, stdout);
		return CTL_PAYLOAD_OK;
	}
	if (argc != 3 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "check") != 0)) {
		fputs(usage, stderr);
		return CTL_PAYLOAD_USAGE;
	}
	struct buf b;
	struct err e;
	buf_init(&b);
	if (read_file(argv[2], &b, &e) < 0) {
		fprintf(stderr, "ferryctl payload: %s\n", e.msg);
		buf_fini(&b);
		return CTL_PAYLOAD_UNREAD;
	}
	int code = CTL_PAYLOAD_OK;
	if (strcmp(argv[1], "show") == 0 &&
	    ctl_payload_show(buf_head(&b), buf_avail(&b), stdout, &e) < 0) {
		fprintf(stderr, "ferryctl payload: %s: %s\n", argv[2], e.msg);
		code = CTL_PAYLOAD_UNREAD;
	} else {
		fflush(stdout);
		if (ctl_payload_check(buf_head(&b), buf_avail(&b), stdout, stderr) > 0)
			code = CTL_PAYLOAD_BAD;
	}
	buf_fini(&b);
	return code;
}
