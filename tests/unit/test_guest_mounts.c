/* Unit tests for guest/mounts: SCSI lookup and hot-unplug against a fake sysfs tree,
 * filesystem detection from superblock bytes, overlay option strings, and (as root, in a
 * private mount namespace) real overlay mounts for CombinedLayers. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/mounts.h"

struct fx {
	char dir[64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/gmounts.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed: %s\n", cmd);
	free(f);
	return 0;
}

static void mkpath(const char *base, const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	struct err e;
	assert_int_equal(mounts_mkdir_p(p, 0755, &e), 0);
}

static void write_at(const char *path, const void *data, size_t n, off_t off)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, n, off), (ssize_t)n);
	close(fd);
}

static void test_scsi_find(void **state)
{
	struct fx *f = *state;
	char dev[64];
	struct err e;
	/* no controller at all */
	assert_int_equal(mounts_scsi_find(f->dir, 0, 1, dev, sizeof(dev), &e), -ENOENT);
	assert_non_null(strstr(e.msg, "not present"));
	/* controller 1 is host 5; lun 3 not there yet */
	mkpath(f->dir, "bus/vmbus/devices/0110f83b-de10-5172-a266-78bca56bf50a/host5");
	assert_int_equal(mounts_scsi_find(f->dir, 1, 3, dev, sizeof(dev), &e), -ENOENT);
	mkpath(f->dir, "bus/scsi/devices/5:0:0:3/block");
	assert_int_equal(mounts_scsi_find(f->dir, 1, 3, dev, sizeof(dev), &e), -ENOENT);
	mkpath(f->dir, "bus/scsi/devices/5:0:0:3/block/sdc");
	assert_int_equal(mounts_scsi_find(f->dir, 1, 3, dev, sizeof(dev), &e), 0);
	assert_string_equal(dev, "/dev/sdc");
	/* other controllers map to other hosts */
	assert_int_equal(mounts_scsi_find(f->dir, 0, 3, dev, sizeof(dev), &e), -ENOENT);
	assert_int_equal(mounts_scsi_find(f->dir, 4, 3, dev, sizeof(dev), &e), -EINVAL);
	assert_null(mounts_scsi_controller_guid(4));
	assert_string_equal(mounts_scsi_controller_guid(3), "305891a9-b251-5dfe-91a2-c25d9212275b");
}

/* QEMU: controller i is the virtio-scsi function at PCI 00:(0x10+i).0 (docs/qemu.md). */
static void test_scsi_find_virtio(void **state)
{
	struct fx *f = *state;
	char dev[64];
	struct err e;
	/* the PCI function exists but its virtio device has no host yet */
	mkpath(f->dir, "bus/pci/devices/0000:00:11.0/virtio2");
	assert_int_equal(mounts_scsi_find(f->dir, 1, 0, dev, sizeof(dev), &e), -ENOENT);
	assert_non_null(strstr(e.msg, "pci 00:11.0"));
	mkpath(f->dir, "bus/pci/devices/0000:00:11.0/virtio2/host3");
	mkpath(f->dir, "bus/scsi/devices/3:0:0:0/block/sdb");
	assert_int_equal(mounts_scsi_find(f->dir, 1, 0, dev, sizeof(dev), &e), 0);
	assert_string_equal(dev, "/dev/sdb");
	/* controller 0 would be slot 0x10: absent */
	assert_int_equal(mounts_scsi_find(f->dir, 0, 0, dev, sizeof(dev), &e), -ENOENT);
	/* a vmbus controller of the same index wins (Hyper-V) */
	mkpath(f->dir, "bus/vmbus/devices/0110f83b-de10-5172-a266-78bca56bf50a/host7");
	mkpath(f->dir, "bus/scsi/devices/7:0:0:0/block/sdh");
	assert_int_equal(mounts_scsi_find(f->dir, 1, 0, dev, sizeof(dev), &e), 0);
	assert_string_equal(dev, "/dev/sdh");
	/* remove goes through the same lookup */
	char del[256];
	mkpath(f->dir, "bus/scsi/devices/3:0:0:0");
	mkpath(f->dir, "bus/pci/devices/0000:00:10.0/virtio0/host3");
	snprintf(del, sizeof(del), "%s/bus/scsi/devices/3:0:0:0/delete", f->dir);
	write_at(del, "", 0, 0);
	assert_int_equal(mounts_scsi_remove(f->dir, 0, 0, &e), 0);
	char buf[8] = "";
	int fd = open(del, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 2);
	close(fd);
}

static void test_scsi_remove(void **state)
{
	struct fx *f = *state;
	struct err e;
	/* absent controller / device: success */
	assert_int_equal(mounts_scsi_remove(f->dir, 0, 2, &e), 0);
	mkpath(f->dir, "bus/vmbus/devices/df6d0690-79e5-55b6-a5ec-c1e2f77f580a/host0");
	assert_int_equal(mounts_scsi_remove(f->dir, 0, 2, &e), 0);
	mkpath(f->dir, "bus/scsi/devices/0:0:0:2");
	char del[256];
	snprintf(del, sizeof(del), "%s/bus/scsi/devices/0:0:0:2/delete", f->dir);
	write_at(del, "", 0, 0);
	assert_int_equal(mounts_scsi_remove(f->dir, 0, 2, &e), 0);
	char buf[8] = "";
	int fd = open(del, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 2);
	close(fd);
	assert_memory_equal(buf, "1\n", 2);
}

static void test_detect_fs(void **state)
{
	struct fx *f = *state;
	char p[128], fs[16];
	struct err e;
	snprintf(p, sizeof(p), "%s/img", f->dir);
	write_at(p, "\x53\xef", 2, 1080);
	assert_int_equal(mounts_detect_fs(p, fs, sizeof(fs), &e), 0);
	assert_string_equal(fs, "ext4");
	write_at(p, "XFSB", 4, 0);
	assert_int_equal(mounts_detect_fs(p, fs, sizeof(fs), &e), 0);
	assert_string_equal(fs, "xfs");
	write_at(p, "nothing", 7, 0);
	assert_int_equal(mounts_detect_fs(p, fs, sizeof(fs), &e), -ENODATA);
	snprintf(p, sizeof(p), "%s/missing", f->dir);
	assert_int_equal(mounts_detect_fs(p, fs, sizeof(fs), &e), -ENOENT);
}

static void test_overlay_data(void **state)
{
	(void)state;
	char out[256];
	struct err e;
	const char *l[] = {"/run/layers/p1", "/run/layers/p0"};
	assert_int_equal(mounts_overlay_data(l, 2, "/s", out, sizeof(out), &e), 0);
	assert_string_equal(out, "lowerdir=/run/layers/p1:/run/layers/p0,upperdir=/s/upper,"
	                         "workdir=/s/work");
	assert_int_equal(mounts_overlay_data(l, 2, NULL, out, sizeof(out), &e), 0);
	assert_string_equal(out, "lowerdir=/run/layers/p1:/run/layers/p0");
	assert_int_equal(mounts_overlay_data(l, 0, NULL, out, sizeof(out), &e), -EINVAL);
	const char *bad[] = {"/a:b"};
	assert_int_equal(mounts_overlay_data(bad, 1, NULL, out, sizeof(out), &e), -EINVAL);
	assert_int_equal(mounts_overlay_data(l, 2, "/s", out, 30, &e), -E2BIG);
}

/* Real mounts need root and a private mount namespace (so nothing leaks to the machine). */
static bool enter_private_ns(void)
{
	if (geteuid() != 0)
		return false;
	if (unshare(CLONE_NEWNS) < 0)
		return false;
	return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

static void read_file(const char *path, char *buf, size_t n)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t got = fread(buf, 1, n - 1, fp);
	buf[got] = '\0';
	fclose(fp);
}

static void test_overlay_mount(void **state)
{
	struct fx *f = *state;
	if (!enter_private_ns()) {
		skip();
		return;
	}
	char p[256], buf[64];
	struct err e;
	mkpath(f->dir, "l0");
	mkpath(f->dir, "l1");
	snprintf(p, sizeof(p), "%s/l0/a", f->dir);
	write_at(p, "lower0", 6, 0);
	snprintf(p, sizeof(p), "%s/l1/a", f->dir);
	write_at(p, "lower1", 6, 0);
	snprintf(p, sizeof(p), "%s/l0/b", f->dir);
	write_at(p, "only0", 5, 0);
	char l0[128], l1[128], scratch[128], target[128];
	snprintf(l0, sizeof(l0), "%s/l0", f->dir);
	snprintf(l1, sizeof(l1), "%s/l1", f->dir);
	snprintf(scratch, sizeof(scratch), "%s/c/scratch", f->dir);
	snprintf(target, sizeof(target), "%s/c/rootfs", f->dir);
	const char *layers[] = {l1, l0}; /* top-most first */
	int rc = mounts_overlay(layers, 2, scratch, target, &e);
	if (rc == -ENODEV || rc == -EPERM) {
		skip(); /* no overlayfs here */
		return;
	}
	assert_int_equal(rc, 0);
	snprintf(p, sizeof(p), "%s/a", target);
	read_file(p, buf, sizeof(buf));
	assert_string_equal(buf, "lower1");
	snprintf(p, sizeof(p), "%s/b", target);
	read_file(p, buf, sizeof(buf));
	assert_string_equal(buf, "only0");
	/* writes land in the scratch upper dir */
	snprintf(p, sizeof(p), "%s/new", target);
	write_at(p, "w", 1, 0);
	snprintf(p, sizeof(p), "%s/upper/new", scratch);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(mounts_unmount(target, &e), 0);
	snprintf(p, sizeof(p), "%s/a", target);
	assert_int_equal(access(p, F_OK), -1);
	/* unmounting again is fine */
	assert_int_equal(mounts_unmount(target, &e), 0);

	/* read-only, single layer (bind) and two layers (overlay without upper) */
	rc = mounts_overlay(layers, 1, NULL, target, &e);
	assert_int_equal(rc, 0);
	snprintf(p, sizeof(p), "%s/x", target);
	assert_true(open(p, O_WRONLY | O_CREAT, 0644) < 0);
	assert_int_equal(errno, EROFS);
	assert_int_equal(mounts_unmount(target, &e), 0);
	rc = mounts_overlay(layers, 2, "", target, &e);
	assert_int_equal(rc, 0);
	assert_true(open(p, O_WRONLY | O_CREAT, 0644) < 0);
	assert_int_equal(errno, EROFS);
	assert_int_equal(mounts_unmount(target, &e), 0);
}

static void test_overlay_bundle_bind(void **state)
{
	struct fx *f = *state;
	if (!enter_private_ns()) {
		skip();
		return;
	}
	/* scratch outside the bundle dir: <scratch>/bundle is bound onto the bundle dir */
	char l0[128], scratch[128], target[128], p[256];
	struct err e;
	mkpath(f->dir, "l0");
	mkpath(f->dir, "bundle");
	snprintf(l0, sizeof(l0), "%s/l0", f->dir);
	snprintf(scratch, sizeof(scratch), "%s/elsewhere/scratch", f->dir);
	snprintf(target, sizeof(target), "%s/bundle/rootfs", f->dir);
	const char *layers[] = {l0};
	int rc = mounts_overlay(layers, 1, scratch, target, &e);
	if (rc == -ENODEV || rc == -EPERM) {
		skip();
		return;
	}
	assert_int_equal(rc, 0);
	snprintf(p, sizeof(p), "%s/bundle/config.json", f->dir);
	write_at(p, "{}", 2, 0);
	snprintf(p, sizeof(p), "%s/bundle/config.json", scratch);
	assert_int_equal(access(p, F_OK), 0);
	/* the rootfs lives inside the bind */
	snprintf(p, sizeof(p), "%s/bundle/rootfs/upper-visible", f->dir);
	write_at(p, "x", 1, 0);
	snprintf(p, sizeof(p), "%s/upper/upper-visible", scratch);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(mounts_overlay_remove(scratch, target, &e), 0);
	snprintf(p, sizeof(p), "%s/bundle/config.json", f->dir);
	assert_int_equal(access(p, F_OK), -1);
	/* nothing is left mounted under the fixture dir */
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	assert_non_null(mi);
	char line[1024];
	while (fgets(line, sizeof(line), mi))
		assert_null(strstr(line, f->dir));
	fclose(mi);
}

static void test_mkdir_p(void **state)
{
	struct fx *f = *state;
	char p[256];
	struct err e;
	snprintf(p, sizeof(p), "%s/a/b/c/", f->dir);
	assert_int_equal(mounts_mkdir_p(p, 0700, &e), 0);
	assert_int_equal(mounts_mkdir_p(p, 0700, &e), 0);
	snprintf(p, sizeof(p), "%s/file", f->dir);
	write_at(p, "x", 1, 0);
	assert_int_equal(mounts_mkdir_p(p, 0700, &e), -ENOTDIR);
	snprintf(p, sizeof(p), "%s/file/sub", f->dir);
	assert_true(mounts_mkdir_p(p, 0700, &e) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_scsi_find, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scsi_find_virtio, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scsi_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_detect_fs, setup, teardown),
	    cmocka_unit_test(test_overlay_data),
	    cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overlay_mount, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overlay_bundle_bind, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
