/* Test environment for container tests (see testenv.h): namespace setup, the cached busybox
 * rootfs, OCI spec construction and temp directories.  Test helpers may block; they run
 * outside the event loop. */
#include "tests/lib/testenv.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/xalloc.h"

int testenv_enter_private_cgroup2(struct err *e)
{
	static int done;

	if (done)
		return 0;
	if (geteuid() != 0)
		return err_set(e, -EPERM, "not root: cannot create a mount namespace for crun");
	if (unshare(CLONE_NEWNS) < 0)
		return err_sys(e, -errno, "unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return err_sys(e, -errno, "make / rprivate");
	/* may be unmounted already; EINVAL (not a mount point) is fine */
	if (umount2("/sys/fs/cgroup", MNT_DETACH) < 0 && errno != EINVAL)
		return err_sys(e, -errno, "umount /sys/fs/cgroup");
	if (mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL) < 0)
		return err_sys(e, -errno, "mount cgroup2 on /sys/fs/cgroup");
	done = 1;
	return 0;
}

const char *testenv_rootfs(struct err *e)
{
	static char path[PATH_MAX];
	char build_abs[PATH_MAX];
	const char *build = getenv("BUILD");

	if (path[0])
		return path;
	if (!build || !*build)
		build = "build";
	if (mkdir(build, 0755) < 0 && errno != EEXIST) {
		err_sys(e, -errno, "mkdir %s", build);
		return NULL;
	}
	if (!realpath(build, build_abs)) {
		err_sys(e, -errno, "realpath %s", build);
		return NULL;
	}
	if (access("tests/scripts/mkrootfs.sh", R_OK) < 0) {
		err_set(e, -ENOENT,
		        "tests/scripts/mkrootfs.sh not found: run from the source tree");
		return NULL;
	}
	_cleanup_free_ char *dir = xasprintf("%s/rootfs", build_abs);
	_cleanup_free_ char *cmd = xasprintf("sh tests/scripts/mkrootfs.sh '%s'", dir);
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		err_set(e, -EIO, "mkrootfs.sh %s failed (status %d)", dir, st);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s", dir);
	return path;
}

static json_t *str_array(const char *const v[])
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *testenv_oci_process(const char *const args[], bool terminal)
{
	static const char *const env[] = {
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm",
	    NULL};
	static const char *const caps[] = {
	    "CAP_CHOWN",       "CAP_DAC_OVERRIDE",     "CAP_FSETID", "CAP_FOWNER",
	    "CAP_MKNOD",       "CAP_NET_RAW",          "CAP_SETGID", "CAP_SETUID",
	    "CAP_SETFCAP",     "CAP_SETPCAP",          "CAP_KILL",   "CAP_SYS_CHROOT",
	    "CAP_AUDIT_WRITE", "CAP_NET_BIND_SERVICE", NULL};
	return json_pack("{s:b, s:{s:i, s:i}, s:o, s:o, s:s, s:{s:o, s:o, s:o}, s:b}", "terminal",
	                 terminal, "user", "uid", 0, "gid", 0, "args", str_array(args), "env",
	                 str_array(env), "cwd", "/", "capabilities", "bounding", str_array(caps),
	                 "effective", str_array(caps), "permitted", str_array(caps),
	                 "noNewPrivileges", 1);
}

static json_t *mount_entry(const char *dst, const char *type, const char *src,
                           const char *const opts[])
{
	return json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type", type, "source", src,
	                 "options", str_array(opts));
}

json_t *testenv_oci_spec(const char *rootfs, const char *const args[], bool terminal)
{
	static const char *const proc_o[] = {"nosuid", "noexec", "nodev", NULL};
	static const char *const dev_o[] = {"nosuid", "strictatime", "mode=755", "size=65536k",
	                                    NULL};
	static const char *const pts_o[] = {"nosuid",        "noexec",    "newinstance",
	                                    "ptmxmode=0666", "mode=0620", NULL};
	static const char *const shm_o[] = {"nosuid",    "noexec",      "nodev",
	                                    "mode=1777", "size=65536k", NULL};
	static const char *const sys_o[] = {"nosuid", "noexec", "nodev", "ro", NULL};

	json_t *mounts = json_array();
	json_array_append_new(mounts, mount_entry("/proc", "proc", "proc", proc_o));
	json_array_append_new(mounts, mount_entry("/dev", "tmpfs", "tmpfs", dev_o));
	json_array_append_new(mounts, mount_entry("/dev/pts", "devpts", "devpts", pts_o));
	json_array_append_new(mounts, mount_entry("/dev/shm", "tmpfs", "shm", shm_o));
	json_array_append_new(mounts, mount_entry("/sys", "sysfs", "sysfs", sys_o));
	return json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:{s:[{s:s},{s:s},{s:s},{s:s}]}}",
	                 "ociVersion", "1.0.2", "process", testenv_oci_process(args, terminal),
	                 "root", "path", rootfs, "readonly", 0, "hostname", "ferry", "mounts",
	                 mounts, "linux", "namespaces", "type", "pid", "type", "ipc", "type", "uts",
	                 "type", "mount");
}

char *testenv_mkdtemp(const char *prefix, struct err *e)
{
	const char *tmp = getenv("TMPDIR");
	char *p = xasprintf("%s/%sXXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	if (!mkdtemp(p)) {
		err_sys(e, -errno, "mkdtemp %s", p);
		free(p);
		return NULL;
	}
	return p;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void testenv_rm_rf(const char *path)
{
	if (path && access(path, F_OK) == 0)
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

char *testenv_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0, r;
	char *t = xmalloc(cap);
	while ((r = fread(t + n, 1, cap - n - 1, f)) > 0)
		if ((n += r) + 1 >= cap)
			t = xrealloc(t, cap *= 2);
	fclose(f);
	t[n] = '\0';
	if (len)
		*len = n;
	return t;
}
