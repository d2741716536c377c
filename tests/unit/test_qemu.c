/* Unit tests for the qemu backend's pure parts: the machine description (defaults, refusals,
 * the command line with ferry's device layout, the round trip through describe), the
 * compatibility blob (qom-list parsing, encode/decode, hostile blobs, every difference the
 * check names), InitializeOptions to QMP arguments, the session header, and the KVM
 * pre-check against a fake sysfs. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/xalloc.h"
#include "host/vmm/qemu/compat.h"
#include "host/vmm/qemu/kvm.h"
#include "host/vmm/qemu/machine.h"
#include "host/vmm/qemu/qemu_priv.h"
#include "tests/lib/testenv.h"

static json_t *load(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	if (!j)
		fail_msg("bad test json: %s: %s", je.text, s);
	return j;
}

static int parse(const char *s, struct qemu_machine *m, struct err *e)
{
	json_t *j = load(s);
	int r = qemu_machine_parse(j, m, e);
	json_decref(j);
	return r;
}

/* The argument after `opt` in argv, or NULL; `nth` picks among repeats. */
static const char *arg_after(char **argv, const char *opt, int nth)
{
	for (char **p = argv; *p; p++)
		if (strcmp(*p, opt) == 0 && p[1] && nth-- == 0)
			return p[1];
	return NULL;
}

static bool has_arg(char **argv, const char *a)
{
	for (char **p = argv; *p; p++)
		if (strcmp(*p, a) == 0)
			return true;
	return false;
}

static void test_machine_defaults_and_argv(void **state)
{
	(void)state;
	struct qemu_machine m;
	struct err e;
	assert_int_equal(parse("{\"kernel\":\"/k/vmlinux\",\"initrd\":\"/k/initrd.cpio\","
	                       "\"transport\":{\"kind\":\"tcp\",\"base\":40000},"
	                       "\"scsi_controllers\":2,\"scsi\":[{\"controller\":1,\"lun\":5,"
	                       "\"path\":\"/d/l.img\",\"read_only\":true}]}",
	                       &m, &e),
	                 0);
	assert_string_equal(m.qemu, "qemu-system-x86_64");
	assert_string_equal(m.machine, "q35");
	assert_int_equal(m.accel, QEMU_ACCEL_AUTO);
	assert_int_equal(m.cpus, 1);
	assert_int_equal(m.memory_mib, 256);
	assert_int_equal(qemu_machine_wake_port(&m), 40000 - 1025);
	char t[64];
	qemu_machine_guest_transport(&m, t, sizeof(t));
	assert_string_equal(t, "tcp:10.0.2.2:40000");
	qemu_machine_host_transport(&m, t, sizeof(t));
	assert_string_equal(t, "tcp:127.0.0.1:40000");
	assert_string_equal(qemu_machine_cpu(&m, QEMU_ACCEL_TCG), "qemu64");
	assert_string_equal(qemu_machine_cpu(&m, QEMU_ACCEL_KVM), "host");

	char **argv = qemu_machine_argv(&m, QEMU_ACCEL_TCG, 3, "/run/x,y/console.log", true);
	assert_string_equal(argv[0], "qemu-system-x86_64");
	assert_string_equal(arg_after(argv, "-machine", 0), "q35,accel=tcg");
	assert_string_equal(arg_after(argv, "-m", 0), "256");
	assert_string_equal(arg_after(argv, "-append", 0),
	                    "console=ttyS0 quiet panic=-1 ferry.transport=tcp:10.0.2.2:40000");
	assert_string_equal(arg_after(argv, "-kernel", 0), "/k/vmlinux");
	assert_string_equal(arg_after(argv, "-initrd", 0), "/k/initrd.cpio");
	/* the QMP monitor on the inherited fd; the console path's comma escaped */
	assert_string_equal(arg_after(argv, "-chardev", 0), "socket,id=qmp,fd=3");
	assert_string_equal(arg_after(argv, "-chardev", 1),
	                    "file,id=con0,path=/run/x,,y/console.log,append=on");
	assert_string_equal(arg_after(argv, "-netdev", 0),
	                    "user,id=net0,hostfwd=tcp:127.0.0.1:38975-10.0.2.15:38975");
	assert_string_equal(arg_after(argv, "-device", 0),
	                    "virtio-net-pci,netdev=net0,id=nic0,bus=pcie.0,addr=0x2,romfile=");
	assert_string_equal(arg_after(argv, "-device", 1),
	                    "virtio-scsi-pci,id=scsi0,bus=pcie.0,addr=0x10");
	assert_string_equal(arg_after(argv, "-device", 2),
	                    "virtio-scsi-pci,id=scsi1,bus=pcie.0,addr=0x11");
	assert_string_equal(arg_after(argv, "-blockdev", 0),
	                    "{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":"
	                    "\"/d/l.img\"},\"node-name\":\"disk-1-5\",\"read-only\":true}");
	assert_string_equal(arg_after(argv, "-device", 3),
	                    "{\"bus\":\"scsi1.0\",\"channel\":0,\"drive\":\"disk-1-5\",\"driver\":"
	                    "\"scsi-hd\",\"id\":\"sd-1-5\",\"lun\":5,\"scsi-id\":0}");
	assert_string_equal(arg_after(argv, "-incoming", 0), "defer");
	assert_true(has_arg(argv, "-S"));
	assert_true(has_arg(argv, "-nodefaults"));
	assert_true(has_arg(argv, "-sandbox"));
	qemu_argv_free(argv);

	/* not incoming, KVM, no kernel args without a kernel */
	free(m.kernel);
	free(m.initrd);
	m.kernel = m.initrd = NULL;
	argv = qemu_machine_argv(&m, QEMU_ACCEL_KVM, 3, "/c", false);
	assert_false(has_arg(argv, "-incoming"));
	assert_false(has_arg(argv, "-kernel"));
	assert_false(has_arg(argv, "-append"));
	assert_string_equal(arg_after(argv, "-cpu", 0), "host");
	qemu_argv_free(argv);
	qemu_machine_fini(&m);
}

static void test_machine_vsock_and_roundtrip(void **state)
{
	(void)state;
	struct qemu_machine m, m2;
	struct err e;
	assert_int_equal(parse("{\"kernel\":\"/k\",\"accel\":\"tcg\",\"cpu\":\"max,-pdpe1gb\","
	                       "\"cpus\":2,\"memory_mib\":512,\"transport\":{\"kind\":\"vsock\","
	                       "\"cid\":7},\"scsi_controllers\":4,\"migration\":{\"max_bandwidth\":"
	                       "1000000,\"downtime_limit_ms\":20},\"scsi\":[{\"controller\":3,"
	                       "\"lun\":63,\"path\":\"/dev/sdz\",\"type\":\"PassThru\"}]}",
	                       &m, &e),
	                 0);
	char t[64];
	qemu_machine_guest_transport(&m, t, sizeof(t));
	assert_string_equal(t, "vsock:2");
	qemu_machine_host_transport(&m, t, sizeof(t));
	assert_string_equal(t, "vsock:7");
	assert_int_equal(qemu_machine_wake_port(&m), -1);
	char **argv = qemu_machine_argv(&m, QEMU_ACCEL_TCG, 3, "/c", false);
	assert_string_equal(arg_after(argv, "-device", 0),
	                    "vhost-vsock-pci,id=vsock0,guest-cid=7,bus=pcie.0,addr=0x3");
	assert_null(arg_after(argv, "-netdev", 0));
	assert_string_equal(arg_after(argv, "-cpu", 0), "max,-pdpe1gb");
	assert_non_null(strstr(arg_after(argv, "-blockdev", 0), "\"host_device\""));
	assert_non_null(strstr(arg_after(argv, "-device", 5), "\"scsi-block\""));
	qemu_argv_free(argv);
	/* describe -> parse gives the same machine */
	json_t *j = qemu_machine_to_json(&m);
	assert_int_equal(qemu_machine_parse(j, &m2, &e), 0);
	json_t *j2 = qemu_machine_to_json(&m2);
	assert_true(json_equal(j, j2));
	json_decref(j);
	json_decref(j2);
	assert_int_equal(m2.max_bandwidth, 1000000);
	assert_int_equal(m2.downtime_limit_ms, 20);
	assert_true(m2.disks[0].passthru);
	/* disk bookkeeping */
	struct qemu_disk d = {.controller = 0, .lun = 1, .path = "/x"};
	assert_int_equal(qemu_machine_find_disk(&m2, 0, 1), -1);
	qemu_machine_add_disk(&m2, &d);
	assert_int_equal(qemu_machine_find_disk(&m2, 0, 1), 1);
	qemu_machine_remove_disk(&m2, 0);
	assert_int_equal(qemu_machine_find_disk(&m2, 0, 1), 0);
	assert_int_equal(m2.n_disks, 1);
	qemu_machine_fini(&m);
	qemu_machine_fini(&m2);
}

static void test_machine_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *json, *needle;
	} bad[] = {
	    {"[]", "JSON object"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"x\":1}", "unknown key `x`"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"kernel\":\"k\"}", "absolute"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"initrd\":\"/i\"}", "without `kernel`"},
	    {"{}", "transport"},
	    {"{\"transport\":{\"kind\":\"tcp\",\"base\":70000}}", "base"},
	    {"{\"transport\":{\"kind\":\"tcp\",\"cid\":3}}", "not `cid`"},
	    {"{\"transport\":{\"kind\":\"vsock\"}}", "cid"},
	    {"{\"transport\":{\"kind\":\"vsock\",\"cid\":2}}", "cid"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"cpus\":0}", "cpus"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"memory_mib\":\"256\"}", "memory_mib"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"accel\":\"hvf\"}", "accel"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"machine\":\"pc-i440fx-7.2\"}", "q35"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"cpu\":\"max;rm\"}", "cpu"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"append\":\"a\\nb\"}", "one line"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"scsi_controllers\":5}", "scsi_controllers"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"scsi\":{}}", "array"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"scsi\":[{\"controller\":0,\"lun\":64,"
	     "\"path\":\"/a\"}]}",
	     "lun"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"scsi\":[{\"controller\":0,\"path\":\"/a\"}]}",
	     "required"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"scsi\":[{\"controller\":0,\"lun\":1,\"path\":"
	     "\"/a\"},{\"controller\":0,\"lun\":1,\"path\":\"/b\"}]}",
	     "used twice"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"scsi\":[{\"controller\":0,\"lun\":1,\"path\":"
	     "\"/a\",\"type\":\"ExtensibleVirtualDisk\"}]}",
	     "PassThru"},
	    {"{\"transport\":{\"kind\":\"tcp\"},\"migration\":{\"downtime_limit_ms\":0}}",
	     "downtime_limit_ms"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct qemu_machine m;
		struct err e;
		int rc = parse(bad[i].json, &m, &e);
		if (rc != -EINVAL)
			fail_msg("%s: %d (%s)", bad[i].json, rc, e.msg);
		if (!strstr(e.msg, bad[i].needle))
			fail_msg("%s: message `%s` lacks `%s`", bad[i].json, e.msg, bad[i].needle);
		assert_null(m.qemu);
	}
}

/* ---- compatibility blob ---- */

static void sample(struct qemu_compat *c)
{
	struct err e;
	memset(c, 0, sizeof(*c));
	c->ver[0] = 7;
	c->ver[1] = 2;
	c->ver[2] = 22;
	strcpy(c->machine, "pc-q35-7.2-machine");
	strcpy(c->accel, "tcg");
	strcpy(c->cpu, "qemu64");
	c->cpus = 1;
	c->memory = 256u << 20;
	json_t *q = load("[{\"name\":\"type\",\"type\":\"string\"},"
	                 "{\"name\":\"scsi0\",\"type\":\"child<virtio-scsi-pci>\"},"
	                 "{\"name\":\"sd-0-1\",\"type\":\"child<scsi-hd>\"},"
	                 "{\"name\":\"nic0\",\"type\":\"child<virtio-net-pci>\"}]");
	assert_int_equal(qemu_compat_set_devices(c, q, &e), 0);
	json_decref(q);
}

static void test_compat_roundtrip_and_check(void **state)
{
	(void)state;
	struct qemu_compat a, b;
	struct err e;
	sample(&a);
	assert_int_equal(a.n_devs, 3);
	assert_string_equal(a.devs[0].id, "nic0"); /* sorted */
	assert_string_equal(a.devs[2].type, "scsi-hd");
	size_t len;
	_cleanup_free_ char *blob = qemu_compat_encode(&a, &len);
	assert_int_equal(qemu_compat_decode((const uint8_t *)blob, len, &b, &e), 0);
	assert_int_equal(qemu_compat_check(&a, &b, &e), 0);
	/* every difference, named */
	b.ver[1] = 1;
	assert_int_equal(qemu_compat_check(&a, &b, &e), -EPROTONOSUPPORT);
	assert_non_null(strstr(e.msg, "7.1.22 is older than the source's 7.2.22"));
	b.ver[0] = 8; /* newer destination: fine */
	assert_int_equal(qemu_compat_check(&a, &b, &e), 0);
	strcpy(b.machine, "pc-q35-8.0-machine");
	assert_int_equal(qemu_compat_check(&a, &b, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "machine type differs"));
	strcpy(b.machine, a.machine);
	strcpy(b.accel, "kvm");
	assert_int_equal(qemu_compat_check(&a, &b, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "accelerator"));
	strcpy(b.accel, "tcg");
	b.cpus = 2;
	assert_int_equal(qemu_compat_check(&a, &b, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "cpu count"));
	b.cpus = 1;
	b.memory = 128u << 20;
	assert_int_equal(qemu_compat_check(&a, &b, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "memory differs"));
	b.memory = a.memory;
	b.compress = true;
	assert_int_equal(qemu_compat_check(&a, &b, &e), -EPROTO);
	b.compress = false;
	b.ver[0] = 7;
	b.ver[1] = 2;
	/* devices: missing, extra, different type */
	b.n_devs = 2; /* drops sd-0-1 */
	assert_int_equal(qemu_compat_check(&a, &b, &e), -EPROTO);
	assert_string_equal(e.msg, "destination lacks device sd-0-1 (scsi-hd) that the source has");
	assert_int_equal(qemu_compat_check(&b, &a, &e), -EPROTO);
	assert_string_equal(e.msg, "destination has device sd-0-1 (scsi-hd) that the source lacks");
	b.n_devs = 3;
	strcpy(b.devs[0].type, "e1000");
	assert_int_equal(qemu_compat_check(&a, &b, &e), -EPROTO);
	assert_string_equal(e.msg, "device nic0 is virtio-net-pci on the source, e1000 here");
	qemu_compat_fini(&a);
	qemu_compat_fini(&b);
}

static void test_compat_hostile(void **state)
{
	(void)state;
	struct qemu_compat a, c;
	struct err e;
	sample(&a);
	size_t len;
	_cleanup_free_ char *good = qemu_compat_encode(&a, &len);
	qemu_compat_fini(&a);
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{}",
	    "not json",
	    /* unsorted / duplicate devices */
	    "{\"accel\":\"tcg\",\"compress\":false,\"cpu\":\"qemu64\",\"cpus\":1,\"devices\":[{"
	    "\"id\":\"b\",\"type\":\"x\"},{\"id\":\"a\",\"type\":\"x\"}],\"ferry_qemu_compat\":1,"
	    "\"machine\":\"m\",\"memory\":1,\"qemu\":[7,2,0]}",
	    "{\"accel\":\"tcg\",\"compress\":false,\"cpu\":\"qemu64\",\"cpus\":1,\"devices\":[{"
	    "\"id\":\"a\",\"type\":\"x\"},{\"id\":\"a\",\"type\":\"x\"}],\"ferry_qemu_compat\":1,"
	    "\"machine\":\"m\",\"memory\":1,\"qemu\":[7,2,0]}",
	    /* wrong version, extra key, bad accel, bad names, bad numbers */
	    "{\"accel\":\"tcg\",\"compress\":false,\"cpu\":\"qemu64\",\"cpus\":1,\"devices\":[],"
	    "\"ferry_qemu_compat\":2,\"machine\":\"m\",\"memory\":1,\"qemu\":[7,2,0]}",
	    "{\"accel\":\"tcg\",\"compress\":false,\"cpu\":\"qemu64\",\"cpus\":1,\"devices\":[],"
	    "\"ferry_qemu_compat\":1,\"machine\":\"m\",\"memory\":1,\"qemu\":[7,2,0],\"x\":1}",
	    "{\"accel\":\"hvf\",\"compress\":false,\"cpu\":\"qemu64\",\"cpus\":1,\"devices\":[],"
	    "\"ferry_qemu_compat\":1,\"machine\":\"m\",\"memory\":1,\"qemu\":[7,2,0]}",
	    "{\"accel\":\"tcg\",\"compress\":false,\"cpu\":\"qemu 64\",\"cpus\":1,\"devices\":[],"
	    "\"ferry_qemu_compat\":1,\"machine\":\"m\",\"memory\":1,\"qemu\":[7,2,0]}",
	    "{\"accel\":\"tcg\",\"compress\":0,\"cpu\":\"qemu64\",\"cpus\":1,\"devices\":[],"
	    "\"ferry_qemu_compat\":1,\"machine\":\"m\",\"memory\":1,\"qemu\":[7,2,0]}",
	    "{\"accel\":\"tcg\",\"compress\":false,\"cpu\":\"qemu64\",\"cpus\":0,\"devices\":[],"
	    "\"ferry_qemu_compat\":1,\"machine\":\"m\",\"memory\":1,\"qemu\":[7,2,0]}",
	    "{\"accel\":\"tcg\",\"compress\":false,\"cpu\":\"qemu64\",\"cpus\":1,\"devices\":[],"
	    "\"ferry_qemu_compat\":1,\"machine\":\"m\",\"memory\":-1,\"qemu\":[7,2,0]}",
	    "{\"accel\":\"tcg\",\"compress\":false,\"cpu\":\"qemu64\",\"cpus\":1,\"devices\":[],"
	    "\"ferry_qemu_compat\":1,\"machine\":\"m\",\"memory\":1,\"qemu\":[7,2]}",
	    "{\"accel\":\"tcg\",\"compress\":false,\"cpu\":\"qemu64\",\"cpus\":1,\"devices\":[{"
	    "\"id\":\"a\",\"type\":\"x\",\"z\":1}],\"ferry_qemu_compat\":1,\"machine\":\"m\","
	    "\"memory\":1,\"qemu\":[7,2,0]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (qemu_compat_decode((const uint8_t *)bad[i], strlen(bad[i]), &c, &e) != -EBADMSG)
			fail_msg("accepted bad blob %zu: %s", i, bad[i]);
		assert_null(c.devs);
	}
	/* too big, before any parsing */
	char *big = xcalloc(1, QEMU_COMPAT_MAX + 2);
	memset(big, ' ', QEMU_COMPAT_MAX + 1);
	memcpy(big, good, len);
	assert_int_equal(qemu_compat_decode((const uint8_t *)big, QEMU_COMPAT_MAX + 1, &c, &e),
	                 -EBADMSG);
	assert_non_null(strstr(e.msg, "bytes"));
	free(big);
	/* qom-list replies from QEMU are checked too */
	json_t *q = load("[{\"name\":\"x\"}]");
	assert_int_equal(qemu_compat_set_devices(&c, q, &e), -EBADMSG);
	json_decref(q);
	q = load("[{\"name\":\"a b\",\"type\":\"child<x>\"}]");
	assert_int_equal(qemu_compat_set_devices(&c, q, &e), -EBADMSG);
	json_decref(q);
	q = load("{}");
	assert_int_equal(qemu_compat_set_devices(&c, q, &e), -EBADMSG);
	json_decref(q);
	qemu_compat_fini(&c);
}

/* ---- InitializeOptions ---- */

static json_t *find_cap(json_t *caps, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(caps, "capabilities"), i, c)
	{
		if (strcmp(json_string_value(json_object_get(c, "capability")), name) == 0)
			return json_object_get(c, "state");
	}
	return NULL;
}

static void test_options_mapping(void **state)
{
	(void)state;
	struct qemu_machine m;
	struct err e;
	json_t *caps, *params;
	assert_int_equal(parse("{\"transport\":{\"kind\":\"tcp\"},\"migration\":{\"max_bandwidth\":"
	                       "10737418240,\"downtime_limit_ms\":300}}",
	                       &m, &e),
	                 0);
	/* no options: events on, no compression, no auto-converge; the machine's defaults */
	assert_int_equal(qemu_mig_options_args(&m, NULL, true, false, &caps, &params, &e), 0);
	assert_true(json_is_true(find_cap(caps, "events")));
	assert_true(json_is_false(find_cap(caps, "compress")));
	assert_true(json_is_false(find_cap(caps, "auto-converge")));
	assert_int_equal(json_integer_value(json_object_get(params, "max-bandwidth")), 10737418240);
	assert_int_equal(json_integer_value(json_object_get(params, "downtime-limit")), 300);
	json_decref(caps);
	json_decref(params);
	/* hcsshim's options */
	struct vmm_mig_options o = {.memory_transport = 1, .has_throttle = true};
	o.throttle.has_target_blackout_ms = true;
	o.throttle.target_blackout_ms = 40;
	o.throttle.has_minimum_throttle_percentage = true;
	o.throttle.minimum_throttle_percentage = 300; /* hcsshim would narrow it: clamp */
	o.throttle.has_throttling_scale = true;
	o.throttle.throttling_scale = 12.6;
	o.has_compression = true;
	o.has_compression_workers = true;
	o.compression_workers = 3;
	assert_int_equal(qemu_mig_options_args(&m, &o, true, true, &caps, &params, &e), 0);
	assert_true(json_is_true(find_cap(caps, "compress")));
	assert_true(json_is_true(find_cap(caps, "auto-converge")));
	assert_int_equal(json_integer_value(json_object_get(params, "downtime-limit")), 40);
	assert_int_equal(json_integer_value(json_object_get(params, "cpu-throttle-initial")), 99);
	assert_int_equal(json_integer_value(json_object_get(params, "cpu-throttle-increment")), 13);
	assert_int_equal(json_integer_value(json_object_get(params, "compress-threads")), 3);
	json_decref(caps);
	json_decref(params);
	/* destination: decompression threads, no bandwidth, no auto-converge */
	assert_int_equal(qemu_mig_options_args(&m, &o, false, true, &caps, &params, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(params, "decompress-threads")), 3);
	assert_null(json_object_get(params, "max-bandwidth"));
	assert_true(json_is_false(find_cap(caps, "auto-converge")));
	json_decref(caps);
	json_decref(params);
	/* SkipThrottling turns auto-converge off */
	o.throttle.has_skip_throttling = o.throttle.skip_throttling = true;
	assert_int_equal(qemu_mig_options_args(&m, &o, true, false, &caps, &params, &e), 0);
	assert_true(json_is_false(find_cap(caps, "auto-converge")));
	assert_null(json_object_get(params, "cpu-throttle-initial"));
	json_decref(caps);
	json_decref(params);
	/* refusals */
	o.memory_transport = 2;
	assert_int_equal(qemu_mig_options_args(&m, &o, true, false, &caps, &params, &e), -ENOTSUP);
	o.memory_transport = 1;
	o.compression_workers = 1000;
	assert_int_equal(qemu_mig_options_args(&m, &o, true, true, &caps, &params, &e), -EINVAL);
	assert_null(caps);
	qemu_machine_fini(&m);
}

static void test_session_header(void **state)
{
	(void)state;
	uint8_t h[MIG_HDR_LEN];
	struct err e;
	qemu_mig_header(0x2629ea69, h);
	assert_memory_equal(h, "FERRYMIG\0\0\0\1\x26\x29\xea\x69", MIG_HDR_LEN);
	assert_int_equal(qemu_mig_header_check(h, 0x2629ea69, &e), 0);
	assert_int_equal(qemu_mig_header_check(h, 1, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "session mismatch"));
	h[11] = 2;
	assert_int_equal(qemu_mig_header_check(h, 0x2629ea69, &e), -EPROTONOSUPPORT);
	h[0] = 'Q';
	assert_int_equal(qemu_mig_header_check(h, 0x2629ea69, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "magic"));
}

static void test_kvm_precheck(void **state)
{
	(void)state;
	struct err e;
	_cleanup_free_ char *dir = testenv_mkdtemp("ferry-kvm", &e);
	assert_non_null(dir);
	_cleanup_free_ char *dev = xasprintf("%s/kvm", dir);
	/* no device */
	assert_true(qemu_kvm_precheck(dev, dir, &e) < 0);
	assert_non_null(strstr(e.msg, "open"));
	assert_true(qemu_kvm_run_tiny_guest(dev, &e) < 0);
	/* a device node that opens, on a kvm_pvm host: refused by name */
	int fd = open(dev, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(qemu_kvm_precheck(dev, dir, &e), 0);
	assert_true(qemu_kvm_run_tiny_guest(dev, &e) < 0); /* not a kvm device: ioctl fails */
	_cleanup_free_ char *mod = xasprintf("%s/module", dir);
	_cleanup_free_ char *pvm = xasprintf("%s/module/kvm_pvm", dir);
	assert_int_equal(mkdir(mod, 0755), 0);
	assert_int_equal(mkdir(pvm, 0755), 0);
	assert_int_equal(qemu_kvm_precheck(dev, dir, &e), -ENOTSUP);
	assert_non_null(strstr(e.msg, "kvm_pvm"));
	testenv_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_machine_defaults_and_argv),
	    cmocka_unit_test(test_machine_vsock_and_roundtrip),
	    cmocka_unit_test(test_machine_refusals),
	    cmocka_unit_test(test_compat_roundtrip_and_check),
	    cmocka_unit_test(test_compat_hostile),
	    cmocka_unit_test(test_options_mapping),
	    cmocka_unit_test(test_session_header),
	    cmocka_unit_test(test_kvm_precheck),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
