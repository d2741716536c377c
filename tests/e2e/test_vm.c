/* VM-level end-to-end tests (issue 11): real QEMU guests booting the image of `make vm-image`
 * (TCG), each "host" a process in its own network namespace (tests/lib/vmhost.h) running the
 * qemu backend and the host GCS client, the guest's ferry-gcs reaching its current host over
 * QEMU user networking (tcp:10.0.2.2:BASE -> the namespace's 127.0.0.1:BASE).
 *
 *  - boot: a container whose rootfs is a read-only ext4 layer disk plus an ext4 scratch disk,
 *    both SCSI hot-added and combined with overlay in the guest through ModifySettings, and a
 *    UVM process;
 *  - scsi: a disk hot-added, mounted and read by the guest, then removed and gone from it;
 *  - migrate: A -> B -> A -> B across a veth pair, with the mig_* verbs over a TCP connection
 *    and the GCS client's state handed over (cut, export, adopt, wake): a container printing
 *    a numbered line every 10 ms keeps running, every line arrives exactly once, the guest's
 *    boot id never changes, and the container's exit code reaches the host running the VM;
 *  - cancel during the transfer: the VM runs on, on A, and its output keeps flowing;
 *  - a destination missing a device the source has: refused before any memory moves.
 * Figures (medians) go to stderr and $BUILD/e2e-figures.txt.  Root only.  KEEP_TMP=1 keeps
 * the directories (host logs, VM consoles). */
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
#include "tests/lib/netns.h"
#include "tests/lib/stats.h"
#include "tests/lib/testenv.h"
#include "tests/lib/vmhost.h"
#include "tests/lib/vmimage.h"

#define BOOT_TIMEOUT_MS 180000
#define STEP_TIMEOUT_MS 60000
#define MIG_PORT        7000
#define HOPS            3
#define CID             "work"
#define COUNTER         "i=0; while :; do echo $i; i=$((i+1)); usleep 10000; done"
#define FIG_MAX         32

struct fx {
	char *dir;
	struct netns a, b;
	struct vmhost ha, hb;
	bool have_b;
};

/* Samples for the figures, kept across tests. */
static struct {
	double v[FIG_MAX];
	size_t n;
	const char *name;
} figs[] = {{.name = "boot to bridge negotiated (ms)"},
            {.name = "scsi hot-add, qmp (ms)"},
            {.name = "scsi hot-add + mount in the guest (ms)"},
            {.name = "migration total, qemu (ms)"},
            {.name = "migration downtime, qemu (ms)"},
            {.name = "resume to bridge renegotiated (ms)"},
            {.name = "resume to every stream re-attached (ms)"}};
enum { F_BOOT, F_ATTACH, F_MOUNT, F_TOTAL, F_DOWNTIME, F_RECONNECT, F_ATTACHED };

static void fig(int i, double v)
{
	if (figs[i].n < FIG_MAX)
		figs[i].v[figs[i].n++] = v;
}

/* ---------------- helpers ---------------- */

static void tail_file(const char *path, size_t max)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, sz > (long)max ? sz - (long)max : 0, SEEK_SET);
	char buf[4096];
	size_t r;
	fprintf(stderr, "---- %s (last %zu bytes)\n", path, max);
	while ((r = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, r, stderr);
	fclose(f);
}

static void dump(struct vmhost *h)
{
	char p[700];
	snprintf(p, sizeof(p), "%s/host-%s.log", h->dir, h->name);
	tail_file(p, 3000);
	for (int i = 0; i < 8; i++) {
		snprintf(p, sizeof(p), "%s/vm-%s-%d/console.log", h->dir, h->name, i);
		tail_file(p, 2000);
	}
}

/* A command that must succeed; its answer in out (may be NULL). */
static void call(struct vmhost *h, char *out, size_t n, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void call(struct vmhost *h, char *out, size_t n, int timeout_ms, const char *fmt, ...)
{
	char cmd[VMHOST_LINE_MAX], ans[VMHOST_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = vmhost_call(h, ans, sizeof(ans), timeout_ms, "%s", cmd);
	if (r < 0) {
		dump(h);
		fail_msg("host %s: `%.120s` failed: %s", h->name, cmd, ans);
	}
	if (out) {
		size_t l = strnlen(ans, n - 1);
		memcpy(out, ans, l);
		out[l] = '\0';
	}
}

static double call_ms(struct vmhost *h, int timeout_ms, const char *cmd)
{
	char ans[64];
	call(h, ans, sizeof(ans), timeout_ms, "%s", cmd);
	return atof(ans);
}

static void event(struct vmhost *h, const char *prefix, char *out, size_t n, int timeout_ms)
{
	if (vmhost_event(h, prefix, out, n, timeout_ms) < 0) {
		dump(h);
		fail_msg("host %s: no `%s` event", h->name, prefix);
	}
}

static char *write_json(struct fx *f, const char *name, json_t *j)
{
	char *path = xasprintf("%s/%s", f->dir, name);
	assert_int_equal(json_dump_file(j, path, JSON_INDENT(1)), 0);
	json_decref(j);
	return path;
}

static int setup(void **state)
{
	struct err e;
	const char *k, *i;
	if (geteuid() != 0) {
		fprintf(stderr, "test_vm: needs root (network namespaces)\n");
		return -1;
	}
	if (vmimage_paths(&k, &i, &e) < 0) {
		fprintf(stderr, "test_vm: %s\n", e.msg);
		return -1;
	}
	struct fx *f = xcalloc(1, sizeof(*f));
	f->dir = testenv_mkdtemp("ferry-e2e", &e);
	assert_non_null(f->dir);
	chmod(f->dir, 0755);
	assert_int_equal(netns_create(&f->a, "e2eA", &e), 0);
	assert_int_equal(vmhost_spawn(&f->ha, "A", &f->a, f->dir, &e), 0);
	*state = f;
	return 0;
}

static void add_b(struct fx *f)
{
	struct err e;
	assert_int_equal(netns_create(&f->b, "e2eB", &e), 0);
	if (netns_link(&f->a, "10.99.0.1/24", &f->b, "10.99.0.2/24", &e) < 0)
		fail_msg("veth: %s", e.msg);
	assert_int_equal(vmhost_spawn(&f->hb, "B", &f->b, f->dir, &e), 0);
	f->have_b = true;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vmhost_stop(&f->ha);
	if (f->have_b)
		vmhost_stop(&f->hb);
	netns_destroy(&f->a);
	netns_destroy(&f->b);
	if (getenv("KEEP_TMP"))
		fprintf(stderr, "test_vm: kept %s\n", f->dir);
	else
		testenv_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void boot_vm(struct fx *f, struct vmhost *h, unsigned long long max_bandwidth)
{
	struct err e;
	struct vmimage_opts o = {.max_bandwidth = max_bandwidth};
	json_t *m = vmimage_machine(&o, &e);
	assert_non_null(m);
	_cleanup_free_ char *desc = write_json(f, "machine.json", m);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "boot %s", desc);
	fig(F_BOOT, call_ms(h, BOOT_TIMEOUT_MS, cmd));
}

/* Attach a disk and mount it in the guest through ModifySettings; returns nothing, records
 * the figures. */
static void disk_up(struct vmhost *h, unsigned lun, const char *image, bool ro, const char *mount)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "attach 0 %u %s %s", lun, image, ro ? "ro" : "rw");
	double qmp = call_ms(h, STEP_TIMEOUT_MS, cmd);
	snprintf(cmd, sizeof(cmd),
	         "modify {\"RequestType\":\"Add\",\"ResourceType\":\"MappedVirtualDisk\","
	         "\"Settings\":{\"MountPath\":\"%s\",\"Lun\":%u,\"Controller\":0,"
	         "\"ReadOnly\":%s}}",
	         mount, lun, ro ? "true" : "false");
	double mnt = call_ms(h, STEP_TIMEOUT_MS, cmd);
	fig(F_ATTACH, qmp);
	fig(F_MOUNT, qmp + mnt);
}

/* The busybox layer (ro, lun 0) and a scratch disk (lun 1) combined into the container's
 * rootfs, the container created and its init (the counter) started; returns its pid. */
static unsigned container_up(struct fx *f, struct vmhost *h)
{
	struct err e;
	const char *rootfs = testenv_rootfs(&e);
	assert_non_null(rootfs);
	_cleanup_free_ char *layer = xasprintf("%s/layer.img", f->dir);
	_cleanup_free_ char *scratch = xasprintf("%s/scratch.img", f->dir);
	if (vmimage_layer_disk(rootfs, layer, &e) < 0 || vmimage_scratch_disk(scratch, 64, &e) < 0)
		fail_msg("disk images: %s", e.msg);
	disk_up(h, 0, layer, true, "/run/layers/p0");
	disk_up(h, 1, scratch, false, "/run/gcs/c/" CID);
	call(h, NULL, 0, STEP_TIMEOUT_MS,
	     "modify {\"RequestType\":\"Add\",\"ResourceType\":\"CombinedLayers\",\"Settings\":{"
	     "\"ContainerID\":\"" CID "\",\"ContainerRootPath\":\"/run/gcs/c/" CID "/rootfs\","
	     "\"Layers\":[{\"Path\":\"/run/layers/p0\"}],\"ScratchPath\":\"/run/gcs/c/" CID
	     "/scratch/" CID "\"}}");
	call(h, NULL, 0, STEP_TIMEOUT_MS, "container " CID " " COUNTER);
	char pid[32];
	call(h, pid, sizeof(pid), STEP_TIMEOUT_MS, "init " CID);
	return (unsigned)atoi(pid);
}

static char *slurp(struct fx *f, const char *name, size_t *len)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", f->dir, name);
	char *t = testenv_read_file(path, len);
	if (!t)
		fail_msg("cannot read %s", path);
	return t;
}

/* Every number 0..n-1 exactly once, in order, one per line (a partial last line, still being
 * written, is ignored); returns n. */
static long check_lines(struct fx *f)
{
	size_t len;
	_cleanup_free_ char *b = slurp(f, "out." CID, &len);
	long want = 0;
	char *p = b;
	char *nl;
	while ((nl = strchr(p, '\n'))) {
		*nl = '\0';
		char *end;
		long v = strtol(p, &end, 10);
		if (*end || end == p || v != want)
			fail_msg("out.%s: line %ld is \"%.40s\" (gap, duplicate or restart)", CID,
			         want, p);
		want++;
		p = nl + 1;
	}
	return want;
}

static void wait_lines(struct fx *f, long at_least)
{
	for (int i = 0; i < 3000 && check_lines(f) < at_least; i++)
		usleep(10000);
	assert_true(check_lines(f) >= at_least);
}

static void boot_id(struct vmhost *h, struct fx *f, char *out, size_t n)
{
	call(h, NULL, 0, STEP_TIMEOUT_MS, "uvm bootid cat /proc/sys/kernel/random/boot_id");
	_cleanup_free_ char *t = slurp(f, "bootid", NULL);
	assert_int_equal(strlen(t), 37);
	snprintf(out, n, "%s", t);
}

/* ---------------- tests ---------------- */

static void test_boot_container(void **state)
{
	struct fx *f = *state;
	char ans[256];
	boot_vm(f, &f->ha, 0);
	unsigned pid = container_up(f, &f->ha);
	assert_true(pid > 0);
	wait_lines(f, 50);
	/* a UVM process sees the overlay: the layer read-only below, the scratch writable */
	call(&f->ha, ans, sizeof(ans), STEP_TIMEOUT_MS,
	     "uvm mounts grep -c -e ' /run/layers/p0 ext4 ro' -e ' /run/gcs/c/" CID
	     " ext4 rw' -e ' /run/gcs/c/" CID "/rootfs overlay' /proc/mounts");
	assert_string_equal(ans, "0");
	_cleanup_free_ char *m = slurp(f, "mounts", NULL);
	assert_string_equal(m, "3\n");
	/* the guest runs on the tcp transport it was given */
	call(&f->ha, ans, sizeof(ans), STEP_TIMEOUT_MS, "uvm cmdline cat /proc/cmdline");
	_cleanup_free_ char *c = slurp(f, "cmdline", NULL);
	assert_non_null(strstr(c, "ferry.transport=tcp:10.0.2.2:40000"));
	/* the container's exit code comes back */
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "shutdown " CID);
	char ev[256], want[64];
	snprintf(want, sizeof(want), "exit %s %u", CID, pid);
	event(&f->ha, want, ev, sizeof(ev), STEP_TIMEOUT_MS);
	assert_string_equal(ev + strlen(want), " 137");
	check_lines(f);
}

static void test_scsi_seen_by_guest(void **state)
{
	struct fx *f = *state;
	struct err e;
	char ans[256];
	boot_vm(f, &f->ha, 0);
	/* a disk holding one marker file */
	_cleanup_free_ char *tree = xasprintf("%s/marker-tree", f->dir);
	_cleanup_free_ char *file = xasprintf("%s/marker", tree);
	_cleanup_free_ char *img = xasprintf("%s/marker.img", f->dir);
	assert_int_equal(mkdir(tree, 0755), 0);
	FILE *fp = fopen(file, "we");
	fprintf(fp, "ferry-marker-%d\n", (int)getpid());
	fclose(fp);
	assert_int_equal(vmimage_layer_disk(tree, img, &e), 0);
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "uvm parts.0 grep -c ' sd[a-z]*$' /proc/partitions");
	_cleanup_free_ char *before = slurp(f, "parts.0", NULL);
	disk_up(&f->ha, 5, img, true, "/run/marker");
	call(&f->ha, ans, sizeof(ans), STEP_TIMEOUT_MS, "uvm marker.out cat /run/marker/marker");
	assert_string_equal(ans, "0");
	_cleanup_free_ char *got = slurp(f, "marker.out", NULL);
	char want[64];
	snprintf(want, sizeof(want), "ferry-marker-%d\n", (int)getpid());
	assert_string_equal(got, want);
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "uvm parts.1 grep -c ' sd[a-z]*$' /proc/partitions");
	_cleanup_free_ char *with = slurp(f, "parts.1", NULL);
	assert_int_equal(atoi(with), atoi(before) + 1);
	/* remove: the guest lets go, the host unplugs, the disk is gone from the guest */
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS,
	     "modify {\"RequestType\":\"Remove\",\"ResourceType\":\"MappedVirtualDisk\","
	     "\"Settings\":{\"MountPath\":\"/run/marker\",\"Lun\":5,\"Controller\":0}}");
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS,
	     "modify {\"RequestType\":\"Remove\",\"ResourceType\":\"SCSIDevice\","
	     "\"Settings\":{\"Controller\":0,\"Lun\":5}}");
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "detach 0 5");
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "uvm parts.2 grep -c ' sd[a-z]*$' /proc/partitions");
	_cleanup_free_ char *after = slurp(f, "parts.2", NULL);
	assert_int_equal(atoi(after), atoi(before));
	/* and the slot takes a disk again */
	disk_up(&f->ha, 5, img, true, "/run/marker2");
}

/* One move of the running VM from `from` to `to`; k numbers the files of this hop. */
static void hop(struct vmhost *from, struct vmhost *to, const char *to_ip, int k)
{
	char ans[512], ev[512];
	unsigned session = 1000 + (unsigned)k;
	call(from, NULL, 0, STEP_TIMEOUT_MS, "mig_init blob.%d desc.%d", k, k);
	call(to, NULL, 0, BOOT_TIMEOUT_MS, "mig_prepare desc.%d blob.%d", k, k);
	call(to, NULL, 0, STEP_TIMEOUT_MS, "mig_listen %d", MIG_PORT + k);
	call(to, NULL, 0, STEP_TIMEOUT_MS, "mig_recv %u", session);
	call(from, NULL, 0, STEP_TIMEOUT_MS, "mig_send %s %d %u", to_ip, MIG_PORT + k, session);
	event(from, "transfer ", ev, sizeof(ev), STEP_TIMEOUT_MS);
	unsigned long long total, down, bytes;
	unsigned passes;
	if (sscanf(ev, "transfer ok %llu %llu %llu %u", &total, &down, &bytes, &passes) != 4) {
		dump(from);
		fail_msg("hop %d: %s", k, ev);
	}
	event(to, "transfer ", ev, sizeof(ev), STEP_TIMEOUT_MS);
	if (strncmp(ev, "transfer ok", 11) != 0) {
		dump(to);
		fail_msg("hop %d: destination: %s", k, ev);
	}
	fprintf(stderr, "hop %d %s->%s: total %llu ms, downtime %llu ms, %llu bytes, %u passes\n",
	        k, from->name, to->name, total, down, bytes, passes);
	fig(F_TOTAL, (double)total);
	fig(F_DOWNTIME, (double)down);
	assert_true(bytes > 0);
	/* hand the GCS client over; the source's VM goes, the destination's runs */
	call(from, NULL, 0, STEP_TIMEOUT_MS, "cut state.%d", k);
	call(from, NULL, 0, STEP_TIMEOUT_MS, "mig_finalize stop");
	event(from, "vmexit ", ev, sizeof(ev), STEP_TIMEOUT_MS);
	call(from, NULL, 0, STEP_TIMEOUT_MS, "release");
	call(to, NULL, 0, STEP_TIMEOUT_MS, "adopt state.%d", k);
	call(to, NULL, 0, STEP_TIMEOUT_MS, "mig_finalize resume");
	call(to, ans, sizeof(ans), STEP_TIMEOUT_MS, "wake");
	event(to, "reconnect ", ev, sizeof(ev), STEP_TIMEOUT_MS);
	int st;
	double ms;
	assert_int_equal(sscanf(ev, "reconnect %d %lf", &st, &ms), 2);
	assert_int_equal(st, 0);
	fig(F_RECONNECT, ms);
	event(to, "attached ", ev, sizeof(ev), STEP_TIMEOUT_MS);
	fig(F_ATTACHED, atof(ev + 9));
	/* phases on both sides: the source saw its blackout start and end */
	assert_true(vmhost_count_events(from, "note 1 3 1") >= 1);
	assert_true(vmhost_count_events(from, "note 1 6 1") == 1);
	assert_true(vmhost_count_events(to, "note 2 5 1") == 1);
	assert_int_equal(
	    vmhost_count_events(from, "note 1 8") + vmhost_count_events(to, "note 2 8"), 0);
	/* clear this hop's notes so the next hop counts its own */
	while (vmhost_event(from, "note ", ev, sizeof(ev), 0) == 0)
		;
	while (vmhost_event(to, "note ", ev, sizeof(ev), 0) == 0)
		;
}

static void test_migrate(void **state)
{
	struct fx *f = *state;
	char id0[64], id[64], ev[256], want[64];
	add_b(f);
	boot_vm(f, &f->ha, 0);
	unsigned pid = container_up(f, &f->ha);
	boot_id(&f->ha, f, id0, sizeof(id0));
	wait_lines(f, 30);
	struct vmhost *hosts[2] = {&f->ha, &f->hb};
	const char *ips[2] = {"10.99.0.1", "10.99.0.2"};
	for (int k = 0; k < HOPS; k++) {
		int from = k % 2, to = 1 - from;
		long before = check_lines(f);
		hop(hosts[from], hosts[to], ips[to], k);
		/* the workload goes on where it was: more lines, none twice, none lost */
		wait_lines(f, before + 30);
		boot_id(hosts[to], f, id, sizeof(id));
		assert_string_equal(id, id0);
	}
	/* the exit code reaches the host that runs the VM now */
	struct vmhost *last = hosts[HOPS % 2];
	call(last, NULL, 0, STEP_TIMEOUT_MS, "shutdown " CID);
	snprintf(want, sizeof(want), "exit %s %u", CID, pid);
	event(last, want, ev, sizeof(ev), STEP_TIMEOUT_MS);
	assert_string_equal(ev + strlen(want), " 137");
	long n = check_lines(f);
	fprintf(stderr, "test_migrate: %ld lines, %d moves, each line exactly once\n", n, HOPS);
}

static void test_cancel_during_transfer(void **state)
{
	struct fx *f = *state;
	char ev[512];
	add_b(f);
	/* 4 MiB/s: the ~40 MB the guest has written take seconds to move */
	boot_vm(f, &f->ha, 4ull << 20);
	container_up(f, &f->ha);
	wait_lines(f, 30);
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "mig_init blob.c desc.c");
	call(&f->hb, NULL, 0, BOOT_TIMEOUT_MS, "mig_prepare desc.c blob.c");
	call(&f->hb, NULL, 0, STEP_TIMEOUT_MS, "mig_listen %d", MIG_PORT);
	call(&f->hb, NULL, 0, STEP_TIMEOUT_MS, "mig_recv 9");
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "mig_send 10.99.0.2 %d 9", MIG_PORT);
	event(&f->ha, "note 1 2 1", ev, sizeof(ev), STEP_TIMEOUT_MS); /* transfer in progress */
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "mig_cancel");
	event(&f->ha, "transfer ", ev, sizeof(ev), STEP_TIMEOUT_MS);
	assert_non_null(strstr(ev, "transfer err"));
	assert_non_null(strstr(ev, "cancelled"));
	assert_int_equal(vmhost_count_events(&f->ha, "note 1 8 2"), 1); /* FAILED, CANCELLED */
	assert_int_equal(vmhost_count_events(&f->ha, "note 1 4"), 0);   /* never offline */
	/* the destination lost its stream and is cleaned up */
	event(&f->hb, "transfer ", ev, sizeof(ev), STEP_TIMEOUT_MS);
	assert_non_null(strstr(ev, "transfer err"));
	call(&f->hb, NULL, 0, STEP_TIMEOUT_MS, "mig_cancel");
	call(&f->hb, NULL, 0, STEP_TIMEOUT_MS, "mig_finalize stop");
	/* A rolls back and runs on: the output keeps coming, exactly once */
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "mig_finalize resume");
	long n = check_lines(f);
	wait_lines(f, n + 50);
	assert_int_equal(vmhost_count_events(&f->ha, "vmexit"), 0);
}

static void test_missing_device_refused(void **state)
{
	struct fx *f = *state;
	char ans[512];
	add_b(f);
	boot_vm(f, &f->ha, 0);
	container_up(f, &f->ha);
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "mig_init blob.m desc.m");
	/* the destination's description lacks the scratch disk (lun 1) */
	_cleanup_free_ char *path = xasprintf("%s/desc.m", f->dir);
	json_t *d = json_load_file(path, 0, NULL);
	assert_non_null(d);
	json_t *scsi = json_object_get(d, "scsi");
	for (size_t i = 0; i < json_array_size(scsi); i++)
		if (json_integer_value(json_object_get(json_array_get(scsi, i), "lun")) == 1)
			json_array_remove(scsi, i--);
	assert_int_equal(json_array_size(scsi), 1);
	_cleanup_free_ char *dm = write_json(f, "desc.m2", d);
	int r =
	    vmhost_call(&f->hb, ans, sizeof(ans), BOOT_TIMEOUT_MS, "mig_prepare desc.m2 blob.m");
	assert_int_equal(r, -EREMOTEIO);
	if (!strstr(ans, "destination lacks device sd-0-1 (scsi-hd)"))
		fail_msg("refusal: %s", ans);
	/* nothing moved: no phase on either side, no QEMU left on B, A's workload runs on */
	assert_int_equal(vmhost_count_events(&f->ha, "note"), 0);
	assert_int_equal(vmhost_count_events(&f->hb, "note"), 0);
	assert_int_equal(vmhost_count_events(&f->hb, "vmexit"), 0);
	long n = check_lines(f);
	wait_lines(f, n + 30);
	call(&f->ha, NULL, 0, STEP_TIMEOUT_MS, "mig_finalize resume");
}

static int group_teardown(void **state)
{
	(void)state;
	const char *build = getenv("BUILD");
	_cleanup_free_ char *path =
	    xasprintf("%s/e2e-figures.txt", build && *build ? build : "build");
	FILE *out = fopen(path, "we");
	for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++) {
		if (figs[i].n == 0)
			continue;
		double v[FIG_MAX];
		memcpy(v, figs[i].v, figs[i].n * sizeof(double));
		double med = stats_median(v, figs[i].n);
		double worst = v[figs[i].n - 1]; /* sorted by stats_median */
		char line[256];
		snprintf(line, sizeof(line), "%-42s median %8.1f  worst %8.1f  (n=%zu)\n",
		         figs[i].name, med, worst, figs[i].n);
		fputs(line, stderr);
		if (out)
			fputs(line, out);
	}
	if (out)
		fclose(out);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	netns_reap_stale();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_boot_container, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scsi_seen_by_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_during_transfer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_device_refused, setup, teardown),
	};
	if (getenv("TEST_FILTER")) /* e.g. TEST_FILTER=test_migrate */
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
