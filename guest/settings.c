/* ferry-gcs ModifySettings: routes by ContainerId (null id -> UVM resources, a container id ->
 * ContainerConstraints only) and ResourceType, decodes the typed Settings (bridge/msg.h) and
 * performs the change: SCSI disks (found through sysfs with a bounded, timer-driven wait,
 * never a blocking poll), SCSI hot-unplug, overlay layers, 9p shares dialled over the
 * configured transport, VPMem layers, the /pods memory limit and `<runtime> update
 * --resources -`.  Types the Linux GCS rejects get HR_FAIL "invalid ResourceType"; Linux types
 * ferry does not implement yet get a clear HR_FAIL. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "bridge/msg.h"
#include "bridge/proto.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/vsock.h"
#include "common/xalloc.h"
#include "guest/gcs_priv.h"
#include "guest/mounts.h"
#include "guest/runtime.h"
#include "guest/spawn.h"

/* How long a SCSI disk may take to show up in sysfs, and the poll step. */
#define SCSI_WAIT_MS      10000
#define SCSI_POLL_MS      10
#define PLAN9_DIAL_MS     5000
#define ROOT_MEM_RESERVE  (75ll << 20)
#define UPDATE_STDIN_MAX  60000 /* fits a pipe buffer: written before the child starts */
#define UPDATE_STDERR_MAX 1024

enum req_kind { REQ_ADD, REQ_REMOVE, REQ_UPDATE };

/* State of an asynchronous ModifySettings. */
struct modify_state {
	enum bridge_resource res;
	union {
		struct bridge_mapped_virtual_disk mvd;
		struct bridge_mapped_directory dir;
	} u;
	ev_timer timer; /* SCSI wait */
	long long deadline_ns;
	struct vsock_dialer *dial; /* 9p */
	ev_child child;            /* runtime update */
	int err_fd;                /* its stderr */
	bool child_active;
	char *container_id;
};

static void modify_cleanup(struct gcs_req *r)
{
	struct modify_state *s = r->state;
	ev_timer_stop(r->g->loop, &s->timer);
	vsock_dialer_free(s->dial);
	if (s->child_active)
		ev_child_stop(r->g->loop, &s->child);
	if (s->err_fd >= 0)
		close(s->err_fd);
	bridge_settings_fini(s->res, &s->u);
	free(s->container_id);
	free(s);
}

static struct modify_state *state_new(struct gcs_req *r, enum bridge_resource res)
{
	struct modify_state *s = xcalloc(1, sizeof(*s));
	s->res = res;
	s->err_fd = -1;
	r->state = s;
	r->cleanup = modify_cleanup;
	return s;
}

static void answer(struct gcs_req *r, int rc, const struct err *e, const char *what)
{
	if (rc == 0)
		gcs_req_ok(r);
	else
		gcs_req_fail(r, HR_FAIL, "%s: %s", what, e->msg);
}

/* ---- MappedVirtualDisk ---- */

static int mvd_mount(struct gcs *g, const struct bridge_mapped_virtual_disk *d, const char *dev,
                     struct err *e)
{
	(void)g;
	if (d->block_dev) {
		_cleanup_free_ char *dir = xstrdup(d->mount_path);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			int r = mounts_mkdir_p(dir, 0700, e);
			if (r < 0)
				return r;
		}
		if (symlink(dev, d->mount_path) < 0)
			return err_sys(e, -errno, "symlink %s -> %s", d->mount_path, dev);
		return 0;
	}
	char fs[16] = "";
	if (d->ensure_filesystem || !d->filesystem || !*d->filesystem) {
		int r = mounts_detect_fs(dev, fs, sizeof(fs), e);
		if (r < 0 && !d->ensure_filesystem)
			return r;
		if (d->ensure_filesystem && d->filesystem && *d->filesystem &&
		    strcmp(fs, d->filesystem) != 0)
			return err_set(e, -ENOTSUP,
			               "%s holds %s, EnsureFilesystem wants %s: formatting is not "
			               "supported by ferry-gcs",
			               dev, *fs ? fs : "no filesystem", d->filesystem);
	}
	struct mounts_disk md = {
	    .dev = dev,
	    .target = d->mount_path,
	    .fs = d->filesystem && *d->filesystem ? d->filesystem : fs,
	    .read_only = d->read_only,
	    .opt = (const char *const *)d->options,
	    .n_opt = d->n_options,
	};
	return mounts_disk(&md, e);
}

static void scsi_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct gcs_req *r = w->data;
	struct modify_state *s = r->state;
	const struct bridge_mapped_virtual_disk *d = &s->u.mvd;
	char dev[128];
	struct err e;
	int rc =
	    mounts_scsi_find(MOUNTS_SYSFS_DEFAULT, d->controller, d->lun, dev, sizeof(dev), &e);
	if (rc == -ENOENT && mono_ns() < s->deadline_ns) {
		ev_timer_set(&s->timer, SCSI_POLL_MS / 1000.0, 0.0);
		ev_timer_start(r->g->loop, &s->timer);
		return;
	}
	if (rc < 0) {
		gcs_req_fail(r, HR_FAIL, "MappedVirtualDisk controller=%u lun=%u: %s%s",
		             d->controller, d->lun, e.msg,
		             rc == -ENOENT ? " (gave up after 10 s)" : "");
		return;
	}
	if (d->partition) {
		size_t n = strlen(dev);
		snprintf(dev + n, sizeof(dev) - n, "%llu", (unsigned long long)d->partition);
	}
	/* sysfs shows a hot-added disk before devtmpfs has made its node (ENOENT) and before
	 * the disk driver finished with it (ENXIO): wait for both, within the same deadline. */
	int probe = open(dev, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (probe >= 0)
		close(probe);
	else if ((errno == ENOENT || errno == ENXIO) && mono_ns() < s->deadline_ns) {
		ev_timer_set(&s->timer, SCSI_POLL_MS / 1000.0, 0.0);
		ev_timer_start(r->g->loop, &s->timer);
		return;
	}
	rc = mvd_mount(r->g, d, dev, &e);
	if (rc == 0)
		log_info("scsi disk controller=%u lun=%u dev=%s at %s", d->controller, d->lun, dev,
		         d->mount_path);
	answer(r, rc, &e, "MappedVirtualDisk");
}

static void mapped_virtual_disk(struct gcs_req *r, enum req_kind kind,
                                const struct bridge_modify_req *m)
{
	struct modify_state *s = state_new(r, BRES_MAPPED_VIRTUAL_DISK);
	struct err e;
	if (bridge_modify_req_settings(m, &s->u.mvd, &e) < 0) {
		gcs_req_fail(r, HR_VMCOMPUTE_INVALID_JSON, "%s", e.msg);
		return;
	}
	const struct bridge_mapped_virtual_disk *d = &s->u.mvd;
	if (kind == REQ_UPDATE) {
		gcs_req_fail(r, HR_FAIL, "MappedVirtualDisk: RequestType Update not supported");
		return;
	}
	if (!d->mount_path || !*d->mount_path) {
		gcs_req_ok(r); /* nothing to mount or unmount, as the Go GCS */
		return;
	}
	if (kind == REQ_REMOVE) {
		int rc = 0;
		if (d->block_dev) {
			if (unlink(d->mount_path) < 0 && errno != ENOENT)
				rc = err_sys(&e, -errno, "remove %s", d->mount_path);
		} else if ((rc = mounts_unmount(d->mount_path, &e)) == 0) {
			(void)rmdir(d->mount_path);
		}
		answer(r, rc, &e, "MappedVirtualDisk remove");
		return;
	}
	if (d->encrypted) {
		gcs_req_fail(r, HR_FAIL, "MappedVirtualDisk: encrypted disks are not supported");
		return;
	}
	if (!mounts_scsi_controller_guid(d->controller)) {
		gcs_req_fail(r, HR_FAIL, "MappedVirtualDisk: controller %u out of range",
		             d->controller);
		return;
	}
	s->deadline_ns = mono_ns() + SCSI_WAIT_MS * 1000000ll;
	ev_timer_init(&s->timer, scsi_poll, 0.0, 0.0);
	s->timer.data = r;
	ev_timer_start(r->g->loop, &s->timer);
}

static void scsi_device(struct gcs_req *r, enum req_kind kind, const struct bridge_modify_req *m)
{
	struct bridge_scsi_device d;
	struct err e;
	if (bridge_modify_req_settings(m, &d, &e) < 0) {
		gcs_req_fail(r, HR_VMCOMPUTE_INVALID_JSON, "%s", e.msg);
		return;
	}
	if (kind != REQ_REMOVE) {
		gcs_req_fail(r, HR_FAIL, "SCSIDevice: only Remove is supported");
		return;
	}
	int rc = mounts_scsi_remove(MOUNTS_SYSFS_DEFAULT, d.controller, d.lun, &e);
	answer(r, rc, &e, "SCSIDevice remove");
}

/* ---- MappedDirectory (9p) ---- */

static void on_plan9_dialled(struct vsock_dialer *dl, int fd, const struct err *de, void *ud)
{
	struct gcs_req *r = ud;
	struct modify_state *s = r->state;
	if (fd < 0) {
		/* de is only valid during the callback; the request cleanup frees the dial. */
		gcs_req_fail(r, HR_FAIL, "MappedDirectory %s: dial 9p port: %s",
		             s->u.dir.mount_path, de->msg);
		return;
	}
	vsock_dialer_free(dl);
	s->dial = NULL;
	struct err e;
	/* The kernel's 9p fd transport wants a blocking file. */
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	int rc = mounts_9p(fd, s->u.dir.share_name, s->u.dir.mount_path, s->u.dir.read_only, &e);
	close(fd); /* the mount holds its own reference */
	answer(r, rc, &e, "MappedDirectory");
}

static void mapped_directory(struct gcs_req *r, enum req_kind kind,
                             const struct bridge_modify_req *m)
{
	struct modify_state *s = state_new(r, BRES_MAPPED_DIRECTORY);
	struct err e;
	if (bridge_modify_req_settings(m, &s->u.dir, &e) < 0) {
		gcs_req_fail(r, HR_VMCOMPUTE_INVALID_JSON, "%s", e.msg);
		return;
	}
	const struct bridge_mapped_directory *d = &s->u.dir;
	if (!d->mount_path || !*d->mount_path) {
		gcs_req_fail(r, HR_FAIL, "MappedDirectory: MountPath missing");
		return;
	}
	if (kind == REQ_REMOVE) {
		int rc = mounts_unmount(d->mount_path, &e);
		answer(r, rc, &e, "MappedDirectory remove");
		return;
	}
	if (kind != REQ_ADD) {
		gcs_req_fail(r, HR_FAIL, "MappedDirectory: RequestType Update not supported");
		return;
	}
	uint32_t port = d->port > 0 ? (uint32_t)d->port : GCS_PLAN9_PORT;
	s->dial = vsock_dialer_new_host(r->g->loop, &r->g->addr, port, PLAN9_DIAL_MS,
	                                on_plan9_dialled, r, &e);
	if (!s->dial)
		gcs_req_fail(r, HR_FAIL, "MappedDirectory: dial 9p port %u: %s", port, e.msg);
}

/* ---- VPMemDevice, CombinedLayers ---- */

static void vpmem_device(struct gcs_req *r, enum req_kind kind, const struct bridge_modify_req *m)
{
	struct bridge_vpmem_device d;
	struct err e;
	if (bridge_modify_req_settings(m, &d, &e) < 0) {
		gcs_req_fail(r, HR_VMCOMPUTE_INVALID_JSON, "%s", e.msg);
		return;
	}
	int rc;
	if (!d.mount_path || !*d.mount_path) {
		rc = err_set(&e, -EINVAL, "MountPath missing");
	} else if (kind == REQ_REMOVE) {
		rc = mounts_unmount(d.mount_path, &e);
	} else if (kind != REQ_ADD) {
		rc = err_set(&e, -ENOTSUP, "RequestType Update not supported");
	} else if (d.has_mapping_info) {
		rc = err_set(&e, -ENOTSUP,
		             "MappingInfo (packed layers via dm-linear) is not supported");
	} else {
		char dev[32];
		snprintf(dev, sizeof(dev), "/dev/pmem%u", d.device_number);
		struct mounts_disk md = {.dev = dev, .target = d.mount_path, .read_only = true};
		rc = mounts_disk(&md, &e);
	}
	bridge_settings_fini(BRES_VPMEM_DEVICE, &d);
	answer(r, rc, &e, "VPMemDevice");
}

static void combined_layers(struct gcs_req *r, enum req_kind kind,
                            const struct bridge_modify_req *m)
{
	struct bridge_combined_layers d;
	struct err e;
	if (bridge_modify_req_settings(m, &d, &e) < 0) {
		gcs_req_fail(r, HR_VMCOMPUTE_INVALID_JSON, "%s", e.msg);
		return;
	}
	int rc;
	if (!d.container_root_path || !*d.container_root_path) {
		rc = err_set(&e, -EINVAL, "ContainerRootPath missing");
	} else if (kind == REQ_REMOVE) {
		rc = mounts_overlay_remove(d.scratch_path, d.container_root_path, &e);
	} else if (kind != REQ_ADD) {
		rc = err_set(&e, -ENOTSUP, "RequestType Update not supported");
	} else {
		const char **paths = xcalloc(d.n_layers ? d.n_layers : 1, sizeof(*paths));
		for (size_t i = 0; i < d.n_layers; i++)
			paths[i] = d.layers[i].path;
		rc = mounts_overlay(paths, d.n_layers, d.scratch_path, d.container_root_path, &e);
		free(paths);
		if (rc == 0)
			log_info("layers mounted container=%s root=%s layers=%zu",
			         d.container_id ? d.container_id : "", d.container_root_path,
			         d.n_layers);
	}
	bridge_settings_fini(BRES_COMBINED_LAYERS, &d);
	answer(r, rc, &e, "CombinedLayers");
}

/* ---- PodCgroupMemoryLimit ---- */

static long long mem_total(struct err *e)
{
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return err_sys(e, -errno, "open /proc/meminfo");
	char line[128];
	long long kb = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "MemTotal:", 9) == 0) {
			char *end;
			kb = strtoll(line + 9, &end, 10);
			if (end == line + 9 || strncmp(end, " kB", 3) != 0)
				kb = -1;
			break;
		}
	}
	fclose(f);
	if (kb < 0)
		return err_set(e, -ENODATA, "/proc/meminfo: no MemTotal");
	return kb * 1024;
}

static int write_file(const char *path, const char *s, struct err *e)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", path);
	size_t n = strlen(s);
	if (write(fd, s, n) != (ssize_t)n)
		return err_sys(e, -errno, "write %s", path);
	return 0;
}

static void pod_memory_limit(struct gcs_req *r, enum req_kind kind)
{
	struct err e;
	if (kind != REQ_UPDATE) {
		gcs_req_fail(r, HR_FAIL, "PodCgroupMemoryLimit: only Update is supported");
		return;
	}
	long long total = mem_total(&e);
	int rc = total < 0 ? (int)total : 0;
	if (rc == 0) {
		long long limit = total > ROOT_MEM_RESERVE ? total - ROOT_MEM_RESERVE : total;
		char val[32];
		snprintf(val, sizeof(val), "%lld", limit);
		struct stat st;
		bool v2 = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
		const char *dir = v2 ? "/sys/fs/cgroup/pods" : "/sys/fs/cgroup/memory/pods";
		_cleanup_free_ char *file =
		    xasprintf("%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
		if ((rc = mounts_mkdir_p(dir, 0755, &e)) == 0)
			rc = write_file(file, val, &e);
		if (rc == 0)
			log_info("pods cgroup memory limit=%s", val);
	}
	answer(r, rc, &e, "PodCgroupMemoryLimit");
}

/* ---- ContainerConstraints: <runtime> update --resources - ID ---- */

static void update_exited(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	struct gcs_req *r = w->data;
	struct modify_state *s = r->state;
	ev_child_stop(loop, w);
	s->child_active = false;
	int status = w->rstatus;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		log_info("container constraints updated id=%s", s->container_id);
		gcs_req_ok(r);
		return;
	}
	char msg[UPDATE_STDERR_MAX + 1];
	ssize_t n = s->err_fd >= 0 ? read(s->err_fd, msg, UPDATE_STDERR_MAX) : -1;
	msg[n > 0 ? n : 0] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if (msg[i] == '\n')
			msg[i] = ' ';
	gcs_req_fail(r, HR_FAIL, "ContainerConstraints: %s update %s: exit status 0x%x: %s",
	             r->g->opt.runtime_path, s->container_id, (unsigned)status, msg);
}

static void container_constraints(struct gcs_req *r, const struct bridge_modify_req *m)
{
	struct gcs *g = r->g;
	const char *id = m->base.container_id;
	struct err e;
	pid_t init;
	int rc = rt_container_pid(g->rt, id, &init, &e);
	if (rc < 0) {
		gcs_req_fail(r, rt_err_hresult(rc), "ContainerConstraints: %s", e.msg);
		return;
	}
	struct bridge_container_constraints c;
	if (bridge_modify_req_settings(m, &c, &e) < 0) {
		gcs_req_fail(r, HR_VMCOMPUTE_INVALID_JSON, "%s", e.msg);
		return;
	}
	_cleanup_free_ char *res =
	    c.linux_resources ? json_dumps(c.linux_resources, JSON_COMPACT) : xstrdup("{}");
	bridge_settings_fini(BRES_CONTAINER_CONSTRAINTS, &c);
	if (!res || strlen(res) > UPDATE_STDIN_MAX) {
		gcs_req_fail(r, HR_FAIL, "ContainerConstraints: Linux resources too large");
		return;
	}
	_cleanup_free_ char *root = xasprintf("%s/runtime", g->opt.state_dir);
	int in[2] = {-1, -1}, errp[2] = {-1, -1};
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = err_sys(&e, -errno, "pipe");
		goto fail;
	}
	if (fd_write_all(in[1], res, strlen(res), &e) < 0) {
		rc = e.code;
		goto fail;
	}
	close(in[1]);
	in[1] = -1;
	char *argv[] = {(char *)g->opt.runtime_path,
	                "--root",
	                root,
	                "update",
	                "--resources",
	                "-",
	                (char *)id,
	                NULL};
	struct spawn_opts so = {
	    .argv = argv, .fds = {in[0], -1, errp[1]}, .nofile = r->g->opt.child_nofile};
	pid_t pid = spawn_process(&so, &e);
	if (pid < 0) {
		rc = (int)pid;
		goto fail;
	}
	close(in[0]);
	close(errp[1]);
	struct modify_state *s = state_new(r, BRES_UNKNOWN);
	s->container_id = xstrdup(id);
	s->err_fd = errp[0];
	ev_child_init(&s->child, update_exited, pid, 0);
	s->child.data = r;
	ev_child_start(g->loop, &s->child);
	s->child_active = true;
	return;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	gcs_req_fail(r, HR_FAIL, "ContainerConstraints: %s", e.msg);
}

/* ---- dispatch ---- */

void gcs_handle_modify(struct gcs_req *r, const char *json, size_t len)
{
	struct bridge_modify_req m;
	struct err e;
	int rc = bridge_modify_req_decode(json, len, &m, &e);
	if (rc < 0) {
		gcs_req_fail(r, bridge_msg_hresult(rc), "%s", e.msg);
		return;
	}
	enum bridge_resource res = bridge_resource_parse(m.resource_type);
	const char *rtype = m.request_type;
	enum req_kind kind = strcmp(rtype, "Remove") == 0   ? REQ_REMOVE
	                     : strcmp(rtype, "Update") == 0 ? REQ_UPDATE
	                                                    : REQ_ADD;
	bool null_id = gcs_is_null_id(m.base.container_id);
	if (strcmp(rtype, "Add") != 0 && kind == REQ_ADD) {
		gcs_req_fail(r, HR_FAIL, "ModifySettings: unsupported RequestType `%s`", rtype);
	} else if (res == BRES_CONTAINER_CONSTRAINTS) {
		if (null_id)
			gcs_req_fail(r, HR_VMCOMPUTE_SYSTEM_NOT_FOUND,
			             "ContainerConstraints: the UVM is not a container");
		else
			container_constraints(r, &m);
	} else if (!null_id || !bridge_resource_linux_supported(res)) {
		gcs_req_fail(r, HR_FAIL, "invalid ResourceType `%s`",
		             m.resource_type ? m.resource_type : "");
	} else {
		switch (res) {
		case BRES_MAPPED_VIRTUAL_DISK:
			mapped_virtual_disk(r, kind, &m);
			break;
		case BRES_SCSI_DEVICE:
			scsi_device(r, kind, &m);
			break;
		case BRES_MAPPED_DIRECTORY:
			mapped_directory(r, kind, &m);
			break;
		case BRES_VPMEM_DEVICE:
			vpmem_device(r, kind, &m);
			break;
		case BRES_COMBINED_LAYERS:
			combined_layers(r, kind, &m);
			break;
		case BRES_POD_CGROUP_MEMORY_LIMIT:
			pod_memory_limit(r, kind);
			break;
		case BRES_NETWORK:
		case BRES_VPCI_DEVICE:
		case BRES_SECURITY_POLICY:
		case BRES_SECURITY_POLICY_FRAGMENT:
		default:
			gcs_req_fail(r, HR_FAIL,
			             "ModifySettings: ResourceType %s is not supported "
			             "by ferry-gcs yet",
			             bridge_resource_name(res));
			break;
		}
	}
	bridge_modify_req_fini(&m);
}
