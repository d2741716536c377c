/* `ferryctl payload show|check FILE` as an operator runs it: the real binary ($BUILD/ferryctl,
 * BUILD defaults to "build") on a good ferry envelope, an hcsshim-shaped one (no ferry
 * fields, the HCS document), a bad one with two broken pods, and a file that is not an
 * envelope: exit codes, what stdout and stderr say. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "hcsshim/controller/linuxcontainer/save/v1/payload.pb-c.h"
#include "hcsshim/controller/migration/save/v1/payload.pb-c.h"
#include "hcsshim/controller/network/save/v1/payload.pb-c.h"
#include "hcsshim/controller/pod/save/v1/payload.pb-c.h"
#include "host/ctrl/envelope_save.h"
#include "tests/lib/payload_sample.h"

struct run {
	int code;
	char *out, *err;
};

static char dir[64];

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	struct buf b;
	buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	buf_append(&b, "", 1);
	char *s = xstrdup((const char *)buf_head(&b));
	buf_fini(&b);
	return s;
}

static void write_any(const char *name, const Google__Protobuf__Any *a)
{
	struct buf b;
	buf_init(&b);
	save_any_to_bytes(a, &b);
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf_head(&b), 1, buf_avail(&b), f), buf_avail(&b));
	assert_int_equal(fclose(f), 0);
	free(path);
	buf_fini(&b);
}

static struct run ferryctl(const char *verb, const char *file)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char *cmd = xasprintf("%s/ferryctl payload %s %s/%s >%s/out 2>%s/err", build, verb, dir,
	                      file, dir, dir);
	int st = system(cmd);
	free(cmd);
	assert_true(WIFEXITED(st));
	struct run r = {.code = WEXITSTATUS(st)};
	char *p = xasprintf("%s/out", dir);
	r.out = slurp(p);
	free(p);
	p = xasprintf("%s/err", dir);
	r.err = slurp(p);
	free(p);
	if (r.code == 127)
		fail_msg("%s/ferryctl did not run: %s", build, r.err);
	return r;
}

static void run_fini(struct run *r)
{
	free(r->out);
	free(r->err);
}

static void has(const char *text, const char *want)
{
	if (!strstr(text, want))
		fail_msg("missing `%s` in:\n%.3000s", want, text);
}

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, sizeof(dir), "%.40s/ferry-cli-XXXXXX", t);
	assert_non_null(mkdtemp(dir));
	struct envelope_save s;
	struct err e;
	Google__Protobuf__Any a;
	payload_sample_build(&s, 2, 2);
	assert_int_equal(envelope_save_encode(&s, &a, &e), 0);
	write_any("good", &a);

	/* Two broken pods: a container with schema_version 99, an empty NIC key. */
	Hcsshim__Controller__Migration__Save__V1__Payload *env =
	    payload_sample_unpack(&a, SAVE_ENVELOPE);
	Hcsshim__Controller__Pod__Save__V1__Payload *pod =
	    payload_sample_unpack(env->pods[1], SAVE_POD);
	Hcsshim__Controller__Linuxcontainer__Save__V1__Payload *c =
	    payload_sample_unpack(pod->containers[0], SAVE_CONTAINER);
	c->schema_version = 99;
	payload_sample_repack(pod->containers[0], c);
	payload_sample_repack(env->pods[1], pod);
	pod = payload_sample_unpack(env->pods[0], SAVE_POD);
	Hcsshim__Controller__Network__Save__V1__Payload *n =
	    payload_sample_unpack(pod->network, SAVE_NETWORK);
	free(n->vm_endpoints[0]->key);
	n->vm_endpoints[0]->key = xstrdup("");
	payload_sample_repack(pod->network, n);
	payload_sample_repack(env->pods[0], pod);
	payload_sample_repack(&a, env);
	write_any("bad", &a);
	save_any_fini(&a);

	/* hcsshim's shape: no ferry field at all, the HCS document for the machine. */
	struct envelope_save h = {0};
	h.vm.vm_id = xstrdup("sandbox@vm");
	h.vm.architecture = xstrdup("amd64");
	h.vm.machine_json = xstrdup("{\"Owner\":\"containerd-shim-lcow-v2\",\"SchemaVersion\":"
	                            "{\"Major\":2,\"Minor\":1}}");
	h.vm.machine_len = strlen(h.vm.machine_json);
	h.vm.gcs_next_port = 0x40000003;
	h.vm.bridge_next_id = 9;
	h.pods = xcalloc(1, sizeof(*h.pods));
	h.n_pods = 1;
	h.pods[0].pod_id = xstrdup("sandbox");
	h.pods[0].gcs_pod_id = xstrdup("sandbox");
	h.pods[0].network.namespace_id = xstrdup("2fd3a3a8-35b9-4b45-8b7d-5bc2e7a2a9f0");
	h.pods[0].containers = xcalloc(1, sizeof(struct container_save));
	h.pods[0].n_containers = 1;
	struct container_save *hc = &h.pods[0].containers[0];
	hc->container_id = xstrdup("sandbox");
	hc->gcs_container_id = xstrdup("sandbox");
	hc->procs = xcalloc(1, sizeof(*hc->procs));
	hc->n_procs = 1;
	hc->procs[0].exec_id = xstrdup("");
	hc->procs[0].pid = 55;
	hc->procs[0].bundle = xstrdup("C:\\state\\sandbox");
	hc->procs[0].stdio[PROCESS_STDOUT].port = 0x40000001;
	hc->procs[0].stdio[PROCESS_STDERR].port = 0x40000002;
	hc->procs[0].wait_call_id = 7;
	assert_int_equal(envelope_save_encode(&h, &a, &e), 0);
	write_any("hcsshim", &a);
	save_any_fini(&a);
	envelope_save_fini(&h);

	char *p = xasprintf("%s/junk", dir);
	FILE *f = fopen(p, "wb");
	fputs("this is not an envelope\n", f);
	fclose(f);
	free(p);
	envelope_save_fini(&s);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	static const char *const files[] = {"good", "bad", "hcsshim", "junk", "out", "err"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *p = xasprintf("%s/%s", dir, files[i]);
		unlink(p);
		free(p);
	}
	rmdir(dir);
	return 0;
}

static void test_show_good(void **state)
{
	(void)state;
	struct run r = ferryctl("show", "good");
	assert_int_equal(r.code, 0);
	has(r.out, "envelope: envelope payload (type.microsoft.com/hcsshim.controller.migration."
	           "save.v1.Payload, ");
	has(r.out, "\n    vm_id: \"sb1@vm\"\n");
	has(r.out, "    scsi: scsi payload (type.microsoft.com/hcsshim.controller.scsi.save.v1.");
	has(r.out, "      disks[5]:\n");
	has(r.out, "    ferry_plan9: plan9 payload (type.googleapis.com/ferry.controller.plan9");
	has(r.out, "  pods[1]: pod payload (");
	has(r.out, "      processes[\"e3\"]: process payload (");
	has(r.out, "        stdin_port: 1073741834 (0x4000000a)\n");
	has(r.out, "          unacked: \"hello\\n\"\n");
	has(r.out, "          exited_at: 2023-11-14T22:13:20.500000000Z\n");
	has(r.out, "ferry_gcs_session_secret: <32 bytes, not shown>");
	/* The secret itself (bytes 1, 8, 15, ...) appears nowhere. */
	assert_null(strstr(r.out, "01 08 0f"));
	has(r.out, "\nok: ");
	has(r.out, " 2 pods, 4 containers, 9 processes;");
	assert_string_equal(r.err, "");
	run_fini(&r);
	r = ferryctl("check", "good");
	assert_int_equal(r.code, 0);
	assert_int_equal(strncmp(r.out, "ok: ", 4), 0);
	assert_string_equal(r.err, "");
	run_fini(&r);
}

static void test_show_hcsshim(void **state)
{
	(void)state;
	struct run r = ferryctl("show", "hcsshim");
	assert_int_equal(r.code, 0);
	has(r.out, "    hcs_document: \"{\\\"Owner\\\":\\\"containerd-shim-lcow-v2\\\",");
	assert_null(strstr(r.out, "ferry_"));
	has(r.out, "      processes[\"\"]: process payload (");
	has(r.out, "ok: ");
	has(r.out, "vm `sandbox@vm` (backend hcs), 1 pods, 1 containers, 1 processes");
	run_fini(&r);
}

static void test_bad(void **state)
{
	(void)state;
	struct run r = ferryctl("check", "bad");
	assert_int_equal(r.code, 1);
	assert_string_equal(r.out, "");
	assert_string_equal(
	    r.err, "error: import pod `pod0`: network: vm_endpoints: empty NIC key\n"
	           "error: import pod `pod1`: container `c2`: schema_version 99, want 1\n");
	run_fini(&r);
	/* show still shows the tree, then the same errors. */
	r = ferryctl("show", "bad");
	assert_int_equal(r.code, 1);
	has(r.out, "      vm_endpoints[\"\"]:\n");
	has(r.out, "      schema_version: 99\n");
	assert_null(strstr(r.out, "ok: "));
	has(r.err, "schema_version 99, want 1");
	has(r.err, "empty NIC key");
	run_fini(&r);
}

static void test_unreadable(void **state)
{
	(void)state;
	struct run r = ferryctl("check", "junk");
	assert_int_equal(r.code, 1);
	has(r.err, "error: import: google.protobuf.Any: ");
	run_fini(&r);
	r = ferryctl("show", "junk");
	assert_int_equal(r.code, 3);
	has(r.err, "ferryctl payload: ");
	has(r.err, "/junk: google.protobuf.Any: ");
	run_fini(&r);
	r = ferryctl("show", "missing");
	assert_int_equal(r.code, 3);
	has(r.err, "No such file or directory");
	run_fini(&r);
	r = ferryctl("frobnicate", "good");
	assert_int_equal(r.code, 2);
	has(r.err, "usage: ferryctl payload show FILE");
	run_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_show_good),
	    cmocka_unit_test(test_show_hcsshim),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_unreadable),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
