/* Interoperability of the saved-state payloads with protobuf's reference implementation:
 * protoc encodes the envelope written by hand in text format (tests/data/payload/, every
 * payload in its own file, children packed into their parents' Any values) and ferry decodes
 * it into the values it was written with; ferry encodes the same tree, built in C
 * (tests/lib/payload_sample.c), and protoc decodes it, every Any expanded, into exactly the
 * text protoc decodes from its own encoding.  The Migration service's options, written as
 * proto2 here, are byte for byte hcsshim's proto3 `optional` ones.  Run from the source tree root (make test);
 * needs protoc (protobuf-compiler) and the well-known types (libprotobuf-dev, $PROTO_INC). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bridge/proto.h"
#include "common/buf.h"
#include "common/xalloc.h"
#include "host/ctrl/envelope_save.h"
#include "migration/migration_options.pb-c.h"
#include "tests/lib/payload_sample.h"

#define DATA "tests/data/payload/"

static char tmp_in[64], tmp_out[64];

static void slurp(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
}

static void spill(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

#define PAYLOAD_PROTOS "-Iproto $(cd proto && find hcsshim ferry -name '*.proto' | sort)"

/* protoc --encode/--decode=TYPE of in[0..n) against `files` (protoc arguments). */
static void protoc_with(const char *files, const char *mode, const char *type, const void *in,
                        size_t n, struct buf *out)
{
	const char *inc = getenv("PROTO_INC") ? getenv("PROTO_INC") : "/usr/include";
	spill(tmp_in, in, n);
	char *cmd =
	    xasprintf("protoc -I%s %s --%s=%s <%s >%s", inc, files, mode, type, tmp_in, tmp_out);
	int rc = system(cmd);
	free(cmd);
	if (rc != 0)
		fail_msg("protoc --%s=%s failed (%d)", mode, type, rc);
	buf_reset(out);
	slurp(tmp_out, out);
}

/* The same against our saved-state .proto files. */
static void protoc(const char *mode, const char *type, const void *in, size_t n, struct buf *out)
{
	protoc_with(PAYLOAD_PROTOS, mode, type, in, n, out);
}

/* A text-format string literal of p[0..n). */
static void quote(const uint8_t *p, size_t n, struct buf *out)
{
	buf_append(out, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		char esc[8];
		snprintf(esc, sizeof(esc), "\\%03o", p[i]);
		buf_append(out, esc, 4);
	}
	buf_append(out, "\"", 1);
}

/* The packed payload of DATA<name>.txt, its @child@ references replaced by the packed
 * children, encoded by protoc. */
static void compose(const char *name, struct buf *out, char *type, size_t type_len)
{
	struct buf txt, text, child;
	buf_init(&txt);
	buf_init(&text);
	buf_init(&child);
	char *path = xasprintf(DATA "%s.txt", name);
	slurp(path, &txt);
	free(path);
	buf_append(&txt, "", 1);
	const char *s = (const char *)buf_head(&txt);
	const char *t = strstr(s, "# type: ");
	assert_non_null(t);
	size_t tl = strcspn(t + 8, "\n");
	assert_true(tl < type_len);
	memcpy(type, t + 8, tl);
	type[tl] = '\0';
	for (const char *p = s; *p;) {
		const char *at = strchr(p, '@');
		const char *end = at ? strchr(at + 1, '@') : NULL;
		/* "@vm" in vm_id "sb1@vm" is text, a reference is @word@ after "value: ". */
		if (!at || !end || at - s < 7 || strncmp(at - 7, "value: ", 7) != 0) {
			size_t k = at ? (size_t)(at - p) + 1 : strlen(p);
			buf_append(&text, p, k);
			p += k;
			continue;
		}
		buf_append(&text, p, (size_t)(at - p));
		char *ref = xstrndup(at + 1, (size_t)(end - at - 1));
		char ctype[256];
		compose(ref, &child, ctype, sizeof(ctype));
		free(ref);
		quote(buf_head(&child), buf_avail(&child), &text);
		p = end + 1;
	}
	protoc("encode", type, buf_head(&text), buf_avail(&text), out);
	buf_fini(&txt);
	buf_fini(&text);
	buf_fini(&child);
}

/* Undo protoc's C escaping of a bytes value. */
static void unescape(const char *s, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c == '\\' && i + 1 < n) {
			char e = s[++i];
			if (e >= '0' && e <= '7') {
				unsigned v = 0;
				for (int k = 0; k < 3 && i < n && s[i] >= '0' && s[i] <= '7'; k++)
					v = v * 8 + (unsigned)(s[i++] - '0');
				i--;
				c = (uint8_t)v;
			} else {
				c = e == 'n'   ? '\n'
				    : e == 'r' ? '\r'
				    : e == 't' ? '\t'
				               : (uint8_t)e;
			}
		}
		buf_append(out, &c, 1);
	}
}

/* protoc's text of payload p of `type`, every Any's value replaced by the text of the
 * payload it holds (recursively), indented under it. */
static void expand(const uint8_t *p, size_t n, const char *type, int indent, struct buf *out)
{
	struct buf dec;
	buf_init(&dec);
	protoc("decode", type, p, n, &dec);
	buf_append(&dec, "", 1);
	char *save = NULL, *url = NULL;
	for (char *line = strtok_r((char *)buf_head(&dec), "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *v = line + strspn(line, " ");
		if (strncmp(v, "type_url: \"", 11) == 0) {
			free(url);
			url = xstrndup(v + 11, strcspn(v + 11, "\""));
		} else if (url && strncmp(v, "value: \"", 8) == 0) {
			const struct save_type *t = save_type_by_url(url);
			if (!t)
				fail_msg("unknown type URL %s", url);
			struct buf raw;
			buf_init(&raw);
			unescape(v + 8, strlen(v + 8) - 1, &raw);
			int ind = indent + (int)(v - line);
			char head[64];
			snprintf(head, sizeof(head), "%*svalue {\n", ind, "");
			buf_append(out, head, strlen(head));
			expand(buf_head(&raw), buf_avail(&raw), t->desc->name, ind + 2, out);
			snprintf(head, sizeof(head), "%*s}\n", ind, "");
			buf_append(out, head, strlen(head));
			buf_fini(&raw);
			free(url);
			url = NULL;
			continue;
		}
		char pad[64];
		snprintf(pad, sizeof(pad), "%*s", indent, "");
		buf_append(out, pad, strlen(pad));
		buf_append(out, line, strlen(line));
		buf_append(out, "\n", 1);
	}
	free(url);
	buf_fini(&dec);
}

static void expand_any(const Google__Protobuf__Any *a, struct buf *out)
{
	const struct save_type *t = save_type_by_url(a->type_url);
	assert_non_null(t);
	expand(a->value.data, a->value.len, t->desc->name, 0, out);
	buf_append(out, "", 1);
}

static int setup(void **state)
{
	(void)state;
	if (access("proto/hcsshim", F_OK) != 0)
		fail_msg("run from the source tree root (proto/ not found)");
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmp_in, sizeof(tmp_in), "%.40s/ferry-pb-XXXXXX", dir);
	int fd = mkstemp(tmp_in);
	assert_true(fd >= 0);
	close(fd);
	snprintf(tmp_out, sizeof(tmp_out), "%.40s/ferry-pb-XXXXXX", dir);
	fd = mkstemp(tmp_out);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(tmp_in);
	unlink(tmp_out);
	return 0;
}

/* protoc's envelope decodes in ferry to the values the text gives. */
static void test_protoc_to_ferry(void **state)
{
	(void)state;
	struct buf packed;
	buf_init(&packed);
	char type[256];
	compose("envelope", &packed, type, sizeof(type));
	assert_string_equal(type, save_types[SAVE_ENVELOPE].desc->name);
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
	a.type_url = (char *)save_types[SAVE_ENVELOPE].type_url;
	a.value.data = (uint8_t *)buf_head(&packed);
	a.value.len = buf_avail(&packed);
	struct envelope_save s;
	struct err e;
	if (envelope_save_decode(&a, NULL, &s, &e) != 0)
		fail_msg("%s", e.msg);
	assert_string_equal(s.vm.vm_id, "sb1@vm");
	assert_string_equal(s.vm.backend, "qemu");
	assert_int_equal(s.vm.gcs_next_port, GCS_FIRST_STDIO_PORT + 15);
	assert_int_equal(s.vm.bridge_next_id, 110);
	assert_int_equal(s.vm.compat_len, 8);
	assert_int_equal(s.vm.compat_info[0], 0xc0);
	assert_int_equal(s.vm.session_secret[31], 218);
	assert_int_equal(s.vm.scsi.n_disks, 4);
	assert_int_equal(s.vm.scsi.disks[3].slot, 3);
	assert_int_equal(s.vm.scsi.n_reservations, 6);
	assert_int_equal(s.vm.scsi.reservations[0].slot, 0);
	assert_int_equal(s.vm.vpci.devices[0].stage, VPCI_STAGE_READY);
	assert_int_equal(s.vm.plan9.shares[0].mount_stage, PLAN9_MOUNT_MOUNTED);
	assert_int_equal(s.n_pods, 2);
	const struct container_save *c1 = &s.pods[1].containers[0];
	assert_string_equal(c1->container_id, "c1");
	assert_int_equal(c1->n_procs, 2);
	assert_string_equal(c1->procs[0].exec_id, "");
	assert_int_equal(c1->procs[0].stdio[PROCESS_STDOUT].offset, 3000);
	assert_false(c1->procs[0].stdio[PROCESS_STDERR].offset_known);
	assert_string_equal(c1->procs[1].spec_json, payload_sample_spec);
	assert_int_equal(c1->procs[1].stdio[PROCESS_STDIN].n_unacked, 6);
	assert_true(c1->procs[1].exited);
	assert_int_equal(c1->procs[1].exited_at_ns, 1700000000500000000);

	/* And the same tree built in C encodes to the same bytes as ferry re-encoding this. */
	struct envelope_save built;
	payload_sample_build(&built, 2, 1);
	struct buf b1, b2;
	buf_init(&b1);
	buf_init(&b2);
	assert_int_equal(envelope_save_encode_bytes(&s, &b1, &e), 0);
	assert_int_equal(envelope_save_encode_bytes(&built, &b2, &e), 0);
	assert_int_equal(buf_avail(&b1), buf_avail(&b2));
	assert_memory_equal(buf_head(&b1), buf_head(&b2), buf_avail(&b1));
	envelope_save_fini(&s);
	envelope_save_fini(&built);
	buf_fini(&b1);
	buf_fini(&b2);
	buf_fini(&packed);
}

/* ferry's envelope, decoded by protoc with every Any expanded, is the text of protoc's own. */
static void test_ferry_to_protoc(void **state)
{
	(void)state;
	struct buf packed, want, got;
	buf_init(&packed);
	buf_init(&want);
	buf_init(&got);
	char type[256];
	compose("envelope", &packed, type, sizeof(type));
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
	a.type_url = (char *)save_types[SAVE_ENVELOPE].type_url;
	a.value.data = (uint8_t *)buf_head(&packed);
	a.value.len = buf_avail(&packed);
	expand_any(&a, &want);

	struct envelope_save built;
	payload_sample_build(&built, 2, 1);
	Google__Protobuf__Any mine;
	struct err e;
	assert_int_equal(envelope_save_encode(&built, &mine, &e), 0);
	expand_any(&mine, &got);
	const char *w = (const char *)buf_head(&want), *g = (const char *)buf_head(&got);
	if (strcmp(w, g) != 0) {
		size_t i = 0;
		while (w[i] && w[i] == g[i])
			i++;
		size_t from = i > 200 ? i - 200 : 0;
		fail_msg("texts differ at %zu:\nprotoc: ...%.300s\nferry:  ...%.300s", i, w + from,
		         g + from);
	}
	/* The expansion went all the way down. */
	assert_non_null(strstr(w, "unacked: \"hello\\n\""));
	assert_non_null(strstr(w, "stage: MOUNT_STAGE_MOUNTED"));
	assert_non_null(strstr(w, "guest_path: \"/run/mounts/scsi/m3\""));
	save_any_fini(&mine);
	envelope_save_fini(&built);
	buf_fini(&packed);
	buf_fini(&want);
	buf_fini(&got);
}

/* hcsshim's proto3 `optional` options and ferry's proto2 rewrite are the same bytes, and
 * an explicit false or 0 keeps its presence. */
static void test_options_proto2_rewrite(void **state)
{
	(void)state;
	static const char text[] =
	    "memory_transport: MEMORY_TRANSPORT_TCP\n"
	    "memory_transfer_throttle_params { skip_throttling: false throttling_scale: 0 "
	    "minimum_throttle_percentage: 300 target_blackout_transfer_time: 500 }\n"
	    "compression_settings { throttle_worker_count: 0 }\n"
	    "checksum_verification: true\n";
	struct buf go, mine;
	buf_init(&go);
	buf_init(&mine);
	protoc_with("-Itests/data/migration options_proto3.proto", "encode", "InitializeOptions",
	            text, strlen(text), &go);
	InitializeOptions *o = initialize_options__unpack(NULL, buf_avail(&go), buf_head(&go));
	assert_non_null(o);
	assert_true(o->has_memory_transport);
	assert_int_equal(o->memory_transport, MEMORY_TRANSPORT__MEMORY_TRANSPORT_TCP);
	MemoryTransferThrottleParams *t = o->memory_transfer_throttle_params;
	assert_non_null(t);
	assert_true(t->has_skip_throttling);
	assert_false(t->skip_throttling);
	assert_true(t->has_throttling_scale);
	assert_true(t->throttling_scale == 0.0);
	assert_int_equal(t->minimum_throttle_percentage, 300);
	assert_false(t->has_maximum_number_of_brownout_transfer_passes);
	assert_true(o->compression_settings->has_throttle_worker_count);
	assert_int_equal(o->compression_settings->throttle_worker_count, 0);
	assert_true(o->has_checksum_verification && o->checksum_verification);
	assert_false(o->has_perf_tracing_enabled);
	size_t n = initialize_options__get_packed_size(o);
	initialize_options__pack(o, buf_reserve(&mine, n));
	buf_commit(&mine, n);
	assert_int_equal(n, buf_avail(&go));
	assert_memory_equal(buf_head(&mine), buf_head(&go), n);
	initialize_options__free_unpacked(o, NULL);
	buf_fini(&go);
	buf_fini(&mine);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_protoc_to_ferry),
	    cmocka_unit_test(test_ferry_to_protoc),
	    cmocka_unit_test(test_options_proto2_rewrite),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
