/* Storage primitives for ferry-gcs's UVM-level ModifySettings handlers: sysfs lookups for
 * SCSI disks (Hyper-V vmbus controllers, or QEMU virtio-scsi ones at fixed PCI slots), superblock-based filesystem detection and the mount(2) sequences for
 * disks, overlay layers, 9p shares and unmounting.  Each call is a few syscalls; waiting
 * and retrying live in the caller so that the event loop is never held up here. */
#include "guest/mounts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xalloc.h"

/* Options strings are bounded by the kernel at one page. */
#define MOUNT_DATA_MAX 4096

static const char *const scsi_guids[MOUNTS_SCSI_CONTROLLERS] = {
    "df6d0690-79e5-55b6-a5ec-c1e2f77f580a",
    "0110f83b-de10-5172-a266-78bca56bf50a",
    "b5d2d8d4-3a75-51bf-945b-3444dc6b8579",
    "305891a9-b251-5dfe-91a2-c25d9212275b",
};

const char *mounts_scsi_controller_guid(uint8_t index)
{
	return index < MOUNTS_SCSI_CONTROLLERS ? scsi_guids[index] : NULL;
}

/* The number N of the single "host<N>" entry of dir: 0, -ENOENT (no such entry, or no dir),
 * or another -errno.  With `prefix` set, the entry is searched one level down, in the first
 * sub-directory whose name starts with it (a virtio device: "virtio<M>/host<N>"). */
static int find_host_entry(const char *dir, const char *prefix, unsigned *host, struct err *e)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return err_set(e, -ENOENT, "%s not present", dir);
		return err_sys(e, -errno, "open %s", dir);
	}
	int r = err_set(e, -ENOENT, "no scsi host entry under %s", dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (prefix) {
			if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
				continue;
			_cleanup_free_ char *sub = xasprintf("%s/%s", dir, de->d_name);
			r = find_host_entry(sub, NULL, host, e);
			break;
		}
		/* exactly "host<decimal>" */
		const char *num = de->d_name + 4;
		char *end;
		if (strncmp(de->d_name, "host", 4) != 0 || *num < '0' || *num > '9')
			continue;
		errno = 0;
		unsigned long n = strtoul(num, &end, 10);
		if (*end == '\0' && errno == 0 && n <= UINT32_MAX) {
			*host = (unsigned)n;
			r = 0;
			break;
		}
	}
	closedir(d);
	return r;
}

static int scsi_host_number(const char *sysfs, uint8_t controller, unsigned *host, struct err *e)
{
	const char *guid = mounts_scsi_controller_guid(controller);
	if (!guid)
		return err_set(e, -EINVAL, "scsi controller %u out of range (0..%d)", controller,
		               MOUNTS_SCSI_CONTROLLERS - 1);
	/* Hyper-V: the controller's vmbus device. */
	_cleanup_free_ char *dir = xasprintf("%s/bus/vmbus/devices/%s", sysfs, guid);
	int r = find_host_entry(dir, NULL, host, e);
	if (r != -ENOENT)
		return r;
	/* QEMU/KVM: a virtio-scsi PCI function at the slot of ferry's convention. */
	_cleanup_free_ char *pci = xasprintf("%s/bus/pci/devices/0000:00:%02x.0", sysfs,
	                                     MOUNTS_VIRTIO_SCSI_SLOT0 + controller);
	if (find_host_entry(pci, "virtio", host, e) == 0)
		return 0;
	return err_set(e, -ENOENT,
	               "scsi controller %u not present (no vmbus device %s, no virtio-scsi at "
	               "pci 00:%02x.0)",
	               controller, guid, MOUNTS_VIRTIO_SCSI_SLOT0 + controller);
}

int mounts_scsi_find(const char *sysfs, uint8_t controller, uint8_t lun, char *dev, size_t n,
                     struct err *e)
{
	unsigned host;
	int r = scsi_host_number(sysfs, controller, &host, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir =
	    xasprintf("%s/bus/scsi/devices/%u:0:0:%u/block", sysfs, host, (unsigned)lun);
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return err_set(e, -ENOENT, "scsi disk %u:0:0:%u not present", host,
			               (unsigned)lun);
		return err_sys(e, -errno, "open %s", dir);
	}
	r = err_set(e, -ENOENT, "scsi disk %u:0:0:%u has no block device yet", host, (unsigned)lun);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(dev, n, "/dev/%s", de->d_name) >= n)
			r = err_set(e, -ENAMETOOLONG, "device name %s too long", de->d_name);
		else
			r = 0;
		break;
	}
	closedir(d);
	return r;
}

int mounts_scsi_remove(const char *sysfs, uint8_t controller, uint8_t lun, struct err *e)
{
	unsigned host;
	struct err tmp;
	int r = scsi_host_number(sysfs, controller, &host, &tmp);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		*e = tmp;
		return r;
	}
	_cleanup_free_ char *path =
	    xasprintf("%s/bus/scsi/devices/%u:0:0:%u/delete", sysfs, host, (unsigned)lun);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return err_sys(e, -errno, "open %s", path);
	}
	if (write(fd, "1\n", 2) != 2)
		return err_sys(e, -errno, "write %s", path);
	return 0;
}

int mounts_detect_fs(const char *dev, char *fs, size_t n, struct err *e)
{
	_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", dev);
	uint8_t sb[2048];
	ssize_t got = pread(fd, sb, sizeof(sb), 0);
	if (got < 0)
		return err_sys(e, -errno, "read superblock of %s", dev);
	if (got >= 4 && memcmp(sb, "XFSB", 4) == 0) {
		snprintf(fs, n, "xfs");
		return 0;
	}
	/* ext2/3/4: s_magic 0xEF53 at 1024 + 56.  ext4 mounts all three. */
	if (got >= 1082 && sb[1080] == 0x53 && sb[1081] == 0xEF) {
		snprintf(fs, n, "ext4");
		return 0;
	}
	return err_set(e, -ENODATA, "%s: unrecognised filesystem (want ext4 or xfs)", dev);
}

int mounts_mkdir_p(const char *path, unsigned mode, struct err *e)
{
	if (!path || !*path)
		return err_set(e, -EINVAL, "mkdir: empty path");
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return err_sys(e, -errno, "mkdir %s", p);
		*s = c;
		if (!c)
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return err_sys(e, -errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, -ENOTDIR, "%s exists and is not a directory", path);
	return 0;
}

static unsigned long propagation_flag(const char *o)
{
	static const struct {
		const char *name;
		unsigned long flags;
	} t[] = {
	    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
	    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
	    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
	    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(o, t[i].name) == 0)
			return t[i].flags;
	return 0;
}

/* Append ",item" (or "item" first) to a bounded data string. */
static int data_add(char *out, size_t n, const char *item, struct err *e)
{
	size_t len = strlen(out);
	int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", item);
	if (w < 0 || (size_t)w >= n - len)
		return err_set(e, -E2BIG, "mount options exceed %zu bytes", n - 1);
	return 0;
}

int mounts_disk(const struct mounts_disk *d, struct err *e)
{
	char fs[16];
	int r;
	if (d->fs && *d->fs) {
		snprintf(fs, sizeof(fs), "%s", d->fs);
	} else if ((r = mounts_detect_fs(d->dev, fs, sizeof(fs), e)) < 0) {
		return r;
	}
	if ((r = mounts_mkdir_p(d->target, 0700, e)) < 0)
		return r;
	char data[MOUNT_DATA_MAX] = "";
	unsigned long flags = 0, prop = 0;
	if (d->read_only) {
		flags |= MS_RDONLY;
		if (strcmp(fs, "ext4") == 0 && (r = data_add(data, sizeof(data), "noload", e)) < 0)
			return r;
	}
	for (size_t i = 0; i < d->n_opt; i++) {
		unsigned long p = propagation_flag(d->opt[i]);
		if (p)
			prop |= p;
		else if (strcmp(d->opt[i], "ro") == 0)
			flags |= MS_RDONLY;
		else if (strcmp(d->opt[i], "rw") != 0 &&
		         (r = data_add(data, sizeof(data), d->opt[i], e)) < 0)
			return r;
	}
	if (mount(d->dev, d->target, fs, flags, data[0] ? data : NULL) < 0)
		return err_sys(e, -errno, "mount %s (%s) on %s", d->dev, fs, d->target);
	if (prop && mount(NULL, d->target, NULL, prop, NULL) < 0) {
		r = err_sys(e, -errno, "set propagation on %s", d->target);
		umount2(d->target, MNT_DETACH);
		return r;
	}
	return 0;
}

int mounts_overlay_data(const char *const *layers, size_t n_layers, const char *scratch, char *out,
                        size_t n, struct err *e)
{
	if (n_layers == 0)
		return err_set(e, -EINVAL, "overlay: no layers");
	if (n < sizeof("lowerdir="))
		return err_set(e, -E2BIG, "overlay: output buffer too small");
	snprintf(out, n, "lowerdir=");
	size_t len = strlen(out);
	for (size_t i = 0; i < n_layers; i++) {
		if (!layers[i] || !*layers[i] || strpbrk(layers[i], ":,"))
			return err_set(e, -EINVAL, "overlay: bad layer path `%s`",
			               layers[i] ? layers[i] : "");
		int w = snprintf(out + len, n - len, "%s%s", i ? ":" : "", layers[i]);
		if (w < 0 || (size_t)w >= n - len)
			return err_set(e, -E2BIG, "overlay: options exceed %zu bytes", n - 1);
		len += (size_t)w;
	}
	if (scratch && *scratch) {
		if (strpbrk(scratch, ":,"))
			return err_set(e, -EINVAL, "overlay: bad scratch path `%s`", scratch);
		int w = snprintf(out + len, n - len, ",upperdir=%s/upper,workdir=%s/work", scratch,
		                 scratch);
		if (w < 0 || (size_t)w >= n - len)
			return err_set(e, -E2BIG, "overlay: options exceed %zu bytes", n - 1);
	}
	return 0;
}

/* True when `dir` is `path` or one of its ancestors. */
static bool is_ancestor(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(dir, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The bundle dir (parent of target) when it must be bound from <scratch>/bundle, else NULL. */
static char *bundle_bind_dir(const char *scratch, const char *target)
{
	if (!scratch || !*scratch)
		return NULL;
	char *bundle = xstrdup(target);
	char *slash = strrchr(bundle, '/');
	if (slash && slash != bundle) {
		*slash = '\0';
		if (!is_ancestor(bundle, scratch))
			return bundle;
	}
	free(bundle);
	return NULL;
}

int mounts_overlay(const char *const *layers, size_t n_layers, const char *scratch,
                   const char *target, struct err *e)
{
	char data[MOUNT_DATA_MAX];
	int r = mounts_overlay_data(layers, n_layers, scratch, data, sizeof(data), e);
	if (r < 0)
		return r;
	if (!target || !*target)
		return err_set(e, -EINVAL, "overlay: empty ContainerRootPath");
	bool rw = scratch && *scratch;
	if (rw) {
		_cleanup_free_ char *up = xasprintf("%s/upper", scratch);
		_cleanup_free_ char *work = xasprintf("%s/work", scratch);
		if ((r = mounts_mkdir_p(up, 0755, e)) < 0 ||
		    (r = mounts_mkdir_p(work, 0755, e)) < 0)
			return err_prefix(e, "overlay scratch");
	}
	/* The bundle bind goes first so that the rootfs is mounted inside it. */
	_cleanup_free_ char *bundle = bundle_bind_dir(scratch, target);
	if (bundle) {
		_cleanup_free_ char *src = xasprintf("%s/bundle", scratch);
		if ((r = mounts_mkdir_p(src, 0700, e)) < 0 ||
		    (r = mounts_mkdir_p(bundle, 0700, e)) < 0)
			return r;
		if (mount(src, bundle, NULL, MS_BIND, NULL) < 0)
			return err_sys(e, -errno, "bind %s on %s", src, bundle);
	}
	if ((r = mounts_mkdir_p(target, 0755, e)) < 0)
		goto fail;
	if (!rw && n_layers == 1) {
		/* overlayfs wants two lower layers without an upper one: a read-only bind of
		 * the single layer is the same view. */
		if (mount(layers[0], target, NULL, MS_BIND, NULL) < 0) {
			r = err_sys(e, -errno, "bind %s on %s", layers[0], target);
			goto fail;
		}
		if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
			r = err_sys(e, -errno, "remount %s read-only", target);
			umount2(target, MNT_DETACH);
			goto fail;
		}
	} else if (mount("overlay", target, "overlay", rw ? 0 : MS_RDONLY, data) < 0) {
		r = err_sys(e, -errno, "mount overlay on %s", target);
		goto fail;
	}
	return 0;
fail:
	if (bundle)
		umount2(bundle, MNT_DETACH);
	return r;
}

int mounts_overlay_remove(const char *scratch, const char *target, struct err *e)
{
	int r = mounts_unmount(target, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *bundle = bundle_bind_dir(scratch, target);
	return bundle ? mounts_unmount(bundle, e) : 0;
}

int mounts_9p(int fd, const char *share, const char *target, bool read_only, struct err *e)
{
	int r = mounts_mkdir_p(target, 0700, e);
	if (r < 0)
		return r;
	int sz = 65536;
	/* Not a socket (tests) is fine: the buffer sizes are an optimisation. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	char data[MOUNT_DATA_MAX];
	int w = snprintf(data, sizeof(data), "trans=fd,rfdno=%d,wfdno=%d,msize=65536%s%s%s", fd, fd,
	                 read_only ? ",noload" : "", share && *share ? ",aname=" : "",
	                 share && *share ? share : "");
	if (w < 0 || (size_t)w >= sizeof(data))
		return err_set(e, -E2BIG, "9p: options too long");
	if (mount(share && *share ? share : "none", target, "9p", read_only ? MS_RDONLY : 0, data) <
	    0)
		return err_sys(e, -errno, "mount 9p on %s", target);
	return 0;
}

int mounts_unmount(const char *target, struct err *e)
{
	if (!target || !*target)
		return err_set(e, -EINVAL, "unmount: empty path");
	if (umount2(target, 0) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOENT)
		return 0; /* not a mount point (any more) */
	if (errno == EBUSY && umount2(target, MNT_DETACH) == 0)
		return 0;
	return err_sys(e, -errno, "unmount %s", target);
}
