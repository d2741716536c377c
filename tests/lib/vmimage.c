/* The guest image's paths, its machine description and disk images (vmimage.h). */
#include "tests/lib/vmimage.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "tests/lib/run.h"

int vmimage_paths(const char **kernel, const char **initrd, struct err *e)
{
	static char k[PATH_MAX], i[PATH_MAX];
	const char *build = getenv("BUILD");
	char dir[PATH_MAX];
	if (!build || !*build)
		build = "build";
	snprintf(dir, sizeof(dir), "%s/vm-image", build);
	char tk[PATH_MAX + 16], ti[PATH_MAX + 16];
	snprintf(tk, sizeof(tk), "%s/vmlinux", dir);
	snprintf(ti, sizeof(ti), "%s/initrd.cpio", dir);
	if (!realpath(tk, k) || !realpath(ti, i))
		return err_set(e, -ENOENT, "no guest image in %s: run `make vm-image`", dir);
	*kernel = k;
	*initrd = i;
	return 0;
}

json_t *vmimage_machine(const struct vmimage_opts *o, struct err *e)
{
	const char *k, *i;
	if (vmimage_paths(&k, &i, e) < 0)
		return NULL;
	struct vmimage_opts d = o ? *o : (struct vmimage_opts){0};
	_cleanup_free_ char *append = xasprintf("console=ttyS0 quiet panic=-1 ferry.loglevel=%s",
	                                        d.loglevel ? d.loglevel : "info");
	return json_pack(
	    "{s:s, s:s, s:s, s:I, s:{s:s, s:i}, s:i, s:{s:I}, s:i}", "kernel", k, "initrd", i,
	    "append", append, "memory_mib", (json_int_t)(d.memory_mib ? d.memory_mib : 256),
	    "transport", "kind", "tcp", "base", d.tcp_base ? d.tcp_base : 40000, "scsi_controllers",
	    1, "migration", "max_bandwidth",
	    (json_int_t)(d.max_bandwidth ? d.max_bandwidth : 10ull << 30), "stop_timeout_ms", 2000);
}

static unsigned long long tree_bytes;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	tree_bytes += (unsigned long long)st->st_size + 4096;
	return 0;
}

int vmimage_layer_disk(const char *dir, const char *out, struct err *e)
{
	tree_bytes = 0;
	if (nftw(dir, add_size, 32, FTW_PHYS) < 0)
		return err_sys(e, -errno, "walk %s", dir);
	/* room for the file system's own structures */
	unsigned long long mib = tree_bytes / (1 << 20) * 2 + 16;
	_cleanup_free_ char *size = xasprintf("%lluM", mib);
	return run_cmd(e, "mkfs.ext4", "-q", "-F", "-L", "layer", "-d", dir, out, size,
	               (char *)NULL);
}

int vmimage_scratch_disk(const char *out, unsigned mib, struct err *e)
{
	_cleanup_free_ char *size = xasprintf("%uM", mib);
	return run_cmd(e, "mkfs.ext4", "-q", "-F", "-L", "scratch", out, size, (char *)NULL);
}
