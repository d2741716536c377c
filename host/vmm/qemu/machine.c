/* The qemu machine description: strict JSON decoding (every key known, every value typed and
 * bounded, paths absolute), its re-encoding with defaults spelt out, and the QEMU command
 * line with ferry's fixed device layout (machine.h).  Option values that QEMU's key=value
 * parser would split (commas) are escaped by doubling; the blockdev of a disk is given in
 * QEMU's JSON syntax, which needs no escaping. */
#include "host/vmm/qemu/machine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/xalloc.h"

#define APPEND_MAX      2048
#define CPU_MAX         128
#define MACHINE_NAME_MX 64

static const char *const accel_names[] = {"auto", "kvm", "tcg"};

/* ---- decoding helpers ---- */

static int check_keys(const json_t *o, const char *what, const char *const *known, size_t n,
                      struct err *e)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v)
	{
		bool ok = false;
		for (size_t i = 0; i < n && !ok; i++)
			ok = strcmp(k, known[i]) == 0;
		if (!ok)
			return err_set(e, -EINVAL, "%s: unknown key `%.64s`", what, k);
	}
	return 0;
}

/* An optional unsigned integer in [lo, hi]; *out keeps its default when absent. */
static int get_uint(const json_t *o, const char *key, uint64_t lo, uint64_t hi, uint64_t *out,
                    struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < lo || (uint64_t)json_integer_value(v) > hi)
		return err_set(e, -EINVAL, "`%s` must be an integer in %llu..%llu", key,
		               (unsigned long long)lo, (unsigned long long)hi);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* An optional string (no NUL, at most max bytes); *out = NULL when absent, else a copy. */
static int get_str(const json_t *o, const char *key, size_t max, char **out, struct err *e)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return err_set(e, -EINVAL, "`%s` must be a non-empty string of at most %zu bytes",
		               key, max);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int get_path(const json_t *o, const char *key, bool required, char **out, struct err *e)
{
	int r = get_str(o, key, QEMU_PATH_MAX, out, e);
	if (r < 0)
		return r;
	if (!*out)
		return required ? err_set(e, -EINVAL, "`%s` is required", key) : 0;
	if ((*out)[0] != '/')
		return err_set(e, -EINVAL, "`%s` must be an absolute path", key);
	return 0;
}

static bool charset_ok(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s)))
			return false;
	return true;
}

static int parse_transport(const json_t *t, struct qemu_machine *m, struct err *e)
{
	static const char *const keys[] = {"kind", "base", "cid"};
	if (!json_is_object(t))
		return err_set(e, -EINVAL, "`transport` is required and must be an object");
	if (check_keys(t, "transport", keys, 3, e) < 0)
		return e->code;
	const char *kind = json_string_value(json_object_get(t, "kind"));
	uint64_t v = 0;
	if (kind && strcmp(kind, "tcp") == 0) {
		/* BASE - 1025 (the wake port) must still be a port: base >= 1026. */
		v = 40000;
		if (json_object_get(t, "cid"))
			return err_set(e, -EINVAL, "transport tcp takes `base`, not `cid`");
		if (get_uint(t, "base", 1026, 65535, &v, e) < 0)
			return err_prefix(e, "transport tcp");
		m->transport = QEMU_TRANSPORT_TCP;
		m->tcp_base = (uint16_t)v;
	} else if (kind && strcmp(kind, "vsock") == 0) {
		if (!json_object_get(t, "cid") || json_object_get(t, "base") ||
		    get_uint(t, "cid", 3, 0xfffffffeu, &v, e) < 0)
			return err_set(e, -EINVAL, "transport vsock needs `cid` in 3..4294967294");
		m->transport = QEMU_TRANSPORT_VSOCK;
		m->vsock_cid = (uint32_t)v;
	} else {
		return err_set(e, -EINVAL, "transport `kind` must be \"tcp\" or \"vsock\"");
	}
	return 0;
}

static int parse_disk(const json_t *d, size_t i, struct qemu_machine *m, struct err *e)
{
	static const char *const keys[] = {"controller", "lun", "path", "read_only", "type"};
	struct qemu_disk disk = {0};
	uint64_t c = 0, l = 0;
	if (!json_is_object(d))
		return err_set(e, -EINVAL, "scsi[%zu] must be an object", i);
	if (check_keys(d, "scsi disk", keys, 5, e) < 0 ||
	    get_uint(d, "controller", 0, QEMU_SCSI_CONTROLLERS_MAX - 1, &c, e) < 0 ||
	    get_uint(d, "lun", 0, QEMU_SCSI_LUNS - 1, &l, e) < 0)
		return err_prefix(e, "scsi[%zu]", i);
	if (!json_object_get(d, "controller") || !json_object_get(d, "lun"))
		return err_set(e, -EINVAL, "scsi[%zu]: `controller` and `lun` are required", i);
	if (c >= m->scsi_controllers)
		return err_set(e, -EINVAL, "scsi[%zu]: controller %llu but only %u controllers", i,
		               (unsigned long long)c, m->scsi_controllers);
	json_t *ro = json_object_get(d, "read_only");
	if (ro && !json_is_boolean(ro))
		return err_set(e, -EINVAL, "scsi[%zu]: `read_only` must be a boolean", i);
	const char *type = json_string_value(json_object_get(d, "type"));
	if (json_object_get(d, "type") &&
	    (!type || (strcmp(type, "VirtualDisk") != 0 && strcmp(type, "PassThru") != 0)))
		return err_set(e, -EINVAL,
		               "scsi[%zu]: `type` must be VirtualDisk or PassThru (qemu has no "
		               "ExtensibleVirtualDisk)",
		               i);
	if (qemu_machine_find_disk(m, (unsigned)c, (unsigned)l) >= 0)
		return err_set(e, -EINVAL, "scsi[%zu]: controller %llu lun %llu used twice", i,
		               (unsigned long long)c, (unsigned long long)l);
	_cleanup_free_ char *path = NULL;
	if (get_path(d, "path", true, &path, e) < 0)
		return err_prefix(e, "scsi[%zu]", i);
	disk.controller = (unsigned)c;
	disk.lun = (unsigned)l;
	disk.path = path;
	disk.read_only = json_is_true(ro);
	disk.passthru = type && strcmp(type, "PassThru") == 0;
	qemu_machine_add_disk(m, &disk);
	return 0;
}

static int parse_migration(const json_t *o, struct qemu_machine *m, struct err *e)
{
	static const char *const keys[] = {"max_bandwidth", "downtime_limit_ms"};
	uint64_t bw = 0, dl = 0;
	if (!json_is_object(o))
		return err_set(e, -EINVAL, "`migration` must be an object");
	/* QEMU's own bounds: downtime-limit at most 2000 s. */
	if (check_keys(o, "migration", keys, 2, e) < 0 ||
	    get_uint(o, "max_bandwidth", 1, INT64_MAX, &bw, e) < 0 ||
	    get_uint(o, "downtime_limit_ms", 1, 2000000, &dl, e) < 0)
		return err_prefix(e, "migration");
	m->max_bandwidth = bw;
	m->downtime_limit_ms = (uint32_t)dl;
	return 0;
}

static int parse_body(const json_t *j, struct qemu_machine *m, struct err *e)
{
	static const char *const keys[] = {
	    "qemu",      "machine",        "accel",  "cpu",  "cpus",      "memory_mib",
	    "kernel",    "initrd",         "append", "scsi", "transport", "scsi_controllers",
	    "migration", "stop_timeout_ms"};
	uint64_t v;
	if (!json_is_object(j))
		return err_set(e, -EINVAL, "the machine description must be a JSON object");
	if (check_keys(j, "machine", keys, sizeof(keys) / sizeof(keys[0]), e) < 0)
		return e->code;
	if (get_str(j, "qemu", QEMU_PATH_MAX, &m->qemu, e) < 0 ||
	    get_str(j, "machine", MACHINE_NAME_MX, &m->machine, e) < 0 ||
	    get_str(j, "cpu", CPU_MAX, &m->cpu, e) < 0 ||
	    get_str(j, "append", APPEND_MAX, &m->append, e) < 0)
		return e->code;
	if (!m->qemu)
		m->qemu = xstrdup("qemu-system-x86_64");
	if (!m->machine)
		m->machine = xstrdup("q35");
	if (!m->append)
		m->append = xstrdup("console=ttyS0 quiet panic=-1");
	/* The layout needs the q35 PCIe root bus (pcie.0). */
	if ((strcmp(m->machine, "q35") != 0 && strncmp(m->machine, "pc-q35-", 7) != 0) ||
	    !charset_ok(m->machine, ".-_"))
		return err_set(e, -EINVAL, "`machine` must be q35 or pc-q35-X.Y (got `%.64s`)",
		               m->machine);
	if (m->cpu && !charset_ok(m->cpu, "-_.,=+"))
		return err_set(e, -EINVAL, "`cpu` has characters outside [A-Za-z0-9-_.,=+]");
	if (strchr(m->append, '\n') || strstr(m->append, "ferry.transport="))
		return err_set(e, -EINVAL,
		               "`append` must be one line without ferry.transport= (the backend "
		               "adds it from `transport`)");
	const char *accel = json_string_value(json_object_get(j, "accel"));
	if (json_object_get(j, "accel")) {
		size_t i = 0;
		while (i < 3 && (!accel || strcmp(accel, accel_names[i]) != 0))
			i++;
		if (i == 3)
			return err_set(e, -EINVAL, "`accel` must be auto, kvm or tcg");
		m->accel = (enum qemu_accel)i;
	}
	v = 1;
	if (get_uint(j, "cpus", 1, 64, &v, e) < 0)
		return e->code;
	m->cpus = (unsigned)v;
	v = 256;
	if (get_uint(j, "memory_mib", 16, 1u << 20, &v, e) < 0)
		return e->code;
	m->memory_mib = v;
	v = 5000;
	if (get_uint(j, "stop_timeout_ms", 0, 600000, &v, e) < 0)
		return e->code;
	m->stop_timeout_ms = (uint32_t)v;
	v = 1;
	if (get_uint(j, "scsi_controllers", 0, QEMU_SCSI_CONTROLLERS_MAX, &v, e) < 0)
		return e->code;
	m->scsi_controllers = (unsigned)v;
	if (get_path(j, "kernel", false, &m->kernel, e) < 0 ||
	    get_path(j, "initrd", false, &m->initrd, e) < 0)
		return e->code;
	if (m->initrd && !m->kernel)
		return err_set(e, -EINVAL, "`initrd` without `kernel`");
	if (parse_transport(json_object_get(j, "transport"), m, e) < 0)
		return e->code;
	json_t *mig = json_object_get(j, "migration");
	if (mig && parse_migration(mig, m, e) < 0)
		return e->code;
	json_t *scsi = json_object_get(j, "scsi");
	if (scsi) {
		if (!json_is_array(scsi) ||
		    json_array_size(scsi) > QEMU_SCSI_CONTROLLERS_MAX * QEMU_SCSI_LUNS)
			return err_set(e, -EINVAL, "`scsi` must be an array of at most %d disks",
			               QEMU_SCSI_CONTROLLERS_MAX * QEMU_SCSI_LUNS);
		for (size_t i = 0; i < json_array_size(scsi); i++)
			if (parse_disk(json_array_get(scsi, i), i, m, e) < 0)
				return e->code;
	}
	return 0;
}

int qemu_machine_parse(const json_t *j, struct qemu_machine *m, struct err *e)
{
	memset(m, 0, sizeof(*m));
	int r = parse_body(j, m, e);
	if (r < 0) {
		qemu_machine_fini(m);
		return err_prefix(e, "qemu machine description");
	}
	return 0;
}

void qemu_machine_fini(struct qemu_machine *m)
{
	if (!m)
		return;
	free(m->qemu);
	free(m->machine);
	free(m->cpu);
	free(m->kernel);
	free(m->initrd);
	free(m->append);
	for (size_t i = 0; i < m->n_disks; i++)
		free(m->disks[i].path);
	free(m->disks);
	memset(m, 0, sizeof(*m));
}

json_t *qemu_machine_to_json(const struct qemu_machine *m)
{
	json_t *j = json_pack(
	    "{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I}", "qemu", m->qemu, "machine", m->machine,
	    "accel", accel_names[m->accel], "cpus", (json_int_t)m->cpus, "memory_mib",
	    (json_int_t)m->memory_mib, "append", m->append, "scsi_controllers",
	    (json_int_t)m->scsi_controllers, "stop_timeout_ms", (json_int_t)m->stop_timeout_ms);
	if (m->cpu)
		json_object_set_new(j, "cpu", json_string(m->cpu));
	if (m->kernel)
		json_object_set_new(j, "kernel", json_string(m->kernel));
	if (m->initrd)
		json_object_set_new(j, "initrd", json_string(m->initrd));
	if (m->transport == QEMU_TRANSPORT_TCP)
		json_object_set_new(
		    j, "transport",
		    json_pack("{s:s, s:I}", "kind", "tcp", "base", (json_int_t)m->tcp_base));
	else
		json_object_set_new(
		    j, "transport",
		    json_pack("{s:s, s:I}", "kind", "vsock", "cid", (json_int_t)m->vsock_cid));
	json_t *mig = json_object();
	if (m->max_bandwidth)
		json_object_set_new(mig, "max_bandwidth",
		                    json_integer((json_int_t)m->max_bandwidth));
	if (m->downtime_limit_ms)
		json_object_set_new(mig, "downtime_limit_ms",
		                    json_integer((json_int_t)m->downtime_limit_ms));
	json_object_set_new(j, "migration", mig);
	json_t *scsi = json_array();
	for (size_t i = 0; i < m->n_disks; i++) {
		const struct qemu_disk *d = &m->disks[i];
		json_array_append_new(scsi, json_pack("{s:I, s:I, s:s, s:b, s:s}", "controller",
		                                      (json_int_t)d->controller, "lun",
		                                      (json_int_t)d->lun, "path", d->path,
		                                      "read_only", d->read_only, "type",
		                                      d->passthru ? "PassThru" : "VirtualDisk"));
	}
	json_object_set_new(j, "scsi", scsi);
	return j;
}

void qemu_machine_guest_transport(const struct qemu_machine *m, char *out, size_t n)
{
	if (m->transport == QEMU_TRANSPORT_TCP)
		snprintf(out, n, "tcp:" QEMU_HOST_IP ":%u", (unsigned)m->tcp_base);
	else
		snprintf(out, n, "vsock:2");
}

void qemu_machine_host_transport(const struct qemu_machine *m, char *out, size_t n)
{
	if (m->transport == QEMU_TRANSPORT_TCP)
		snprintf(out, n, "tcp:127.0.0.1:%u", (unsigned)m->tcp_base);
	else
		snprintf(out, n, "vsock:%u", (unsigned)m->vsock_cid);
}

int qemu_machine_wake_port(const struct qemu_machine *m)
{
	return m->transport == QEMU_TRANSPORT_TCP ? (int)m->tcp_base - 1025 : -1;
}

const char *qemu_machine_cpu(const struct qemu_machine *m, enum qemu_accel accel)
{
	if (m->cpu)
		return m->cpu;
	return accel == QEMU_ACCEL_KVM ? "host" : "qemu64";
}

/* ---- command line ---- */

struct argv {
	char **v;
	size_t n, cap;
};

static void push(struct argv *a, char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? 2 * a->cap : 64;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* QEMU's key=value option syntax splits at commas; a literal comma is written twice. */
static char *opt_escape(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += *p == ',' ? 2 : 1;
	char *o = xmalloc(n + 1), *q = o;
	for (const char *p = s; *p; p++) {
		*q++ = *p;
		if (*p == ',')
			*q++ = ',';
	}
	*q = '\0';
	return o;
}

void qemu_disk_names(unsigned controller, unsigned lun, char *node, size_t nn, char *dev, size_t nd)
{
	if (node)
		snprintf(node, nn, "disk-%u-%u", controller, lun);
	if (dev)
		snprintf(dev, nd, "sd-%u-%u", controller, lun);
}

json_t *qemu_disk_blockdev(const struct qemu_disk *d)
{
	char node[32];
	qemu_disk_names(d->controller, d->lun, node, sizeof(node), NULL, 0);
	/* raw over a file (or a host block device for pass-through); images are opened as
	 * they are, never probed for a format (QEMU's own advice for untrusted images). */
	json_t *file = json_pack("{s:s, s:s}", "driver", d->passthru ? "host_device" : "file",
	                         "filename", d->path);
	return json_pack("{s:s, s:s, s:b, s:o}", "driver", "raw", "node-name", node, "read-only",
	                 d->read_only, "file", file);
}

json_t *qemu_disk_device(const struct qemu_disk *d)
{
	char node[32], dev[32], bus[32];
	qemu_disk_names(d->controller, d->lun, node, sizeof(node), dev, sizeof(dev));
	snprintf(bus, sizeof(bus), "scsi%u.0", d->controller);
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i}", "driver",
	                 d->passthru ? "scsi-block" : "scsi-hd", "id", dev, "bus", bus, "drive",
	                 node, "channel", 0, "scsi-id", 0, "lun", (int)d->lun);
}

/* A QMP-style object as a -device/-blockdev argument: JSON syntax needs no escaping. */
static char *json_arg(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

char **qemu_machine_argv(const struct qemu_machine *m, enum qemu_accel accel, int qmp_fd,
                         const char *console_path, bool incoming)
{
	struct argv a = {0};
	_cleanup_free_ char *console = opt_escape(console_path);
	push(&a, xstrdup(m->qemu));
	push(&a, xstrdup("-machine"));
	push(&a, xasprintf("%s,accel=%s", m->machine, accel == QEMU_ACCEL_KVM ? "kvm" : "tcg"));
	push(&a, xstrdup("-cpu")); /* model[,feature...]: its commas are meant */
	push(&a, xstrdup(qemu_machine_cpu(m, accel)));
	push(&a, xstrdup("-smp"));
	push(&a, xasprintf("%u", m->cpus));
	push(&a, xstrdup("-m"));
	push(&a, xasprintf("%llu", (unsigned long long)m->memory_mib));
	static const char *const fixed[] = {
	    "-nodefaults",
	    "-no-user-config",
	    "-display",
	    "none",
	    "-no-reboot",
	    "-sandbox",
	    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
	    "-mon",
	    "chardev=qmp,mode=control",
	    "-serial",
	    "chardev:con0",
	    "-S"};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		push(&a, xstrdup(fixed[i]));
	push(&a, xstrdup("-chardev"));
	push(&a, xasprintf("socket,id=qmp,fd=%d", qmp_fd));
	push(&a, xstrdup("-chardev"));
	push(&a, xasprintf("file,id=con0,path=%s,append=on", console));
	if (m->kernel) {
		char transport[64];
		qemu_machine_guest_transport(m, transport, sizeof(transport));
		push(&a, xstrdup("-kernel"));
		push(&a, xstrdup(m->kernel));
		if (m->initrd) {
			push(&a, xstrdup("-initrd"));
			push(&a, xstrdup(m->initrd));
		}
		push(&a, xstrdup("-append"));
		push(&a, xasprintf("%s ferry.transport=%s", m->append, transport));
	}
	if (m->transport == QEMU_TRANSPORT_TCP) {
		int wake = qemu_machine_wake_port(m);
		push(&a, xstrdup("-netdev"));
		push(&a, xasprintf("user,id=net0,hostfwd=tcp:127.0.0.1:%d-" QEMU_GUEST_IP ":%d",
		                   wake, wake));
		push(&a, xstrdup("-device"));
		push(&a,
		     xasprintf("virtio-net-pci,netdev=net0,id=nic0,bus=pcie.0,addr=0x%x,romfile=",
		               QEMU_PCI_SLOT_NIC));
	} else {
		push(&a, xstrdup("-device"));
		push(&a, xasprintf("vhost-vsock-pci,id=vsock0,guest-cid=%u,bus=pcie.0,addr=0x%x",
		                   (unsigned)m->vsock_cid, QEMU_PCI_SLOT_VSOCK));
	}
	for (unsigned i = 0; i < m->scsi_controllers; i++) {
		push(&a, xstrdup("-device"));
		push(&a, xasprintf("virtio-scsi-pci,id=scsi%u,bus=pcie.0,addr=0x%x", i,
		                   QEMU_PCI_SLOT_SCSI0 + i));
	}
	for (size_t i = 0; i < m->n_disks; i++) {
		push(&a, xstrdup("-blockdev"));
		push(&a, json_arg(qemu_disk_blockdev(&m->disks[i])));
		push(&a, xstrdup("-device"));
		push(&a, json_arg(qemu_disk_device(&m->disks[i])));
	}
	if (incoming) {
		push(&a, xstrdup("-incoming"));
		push(&a, xstrdup("defer"));
	}
	return a.v;
}

void qemu_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

int qemu_machine_find_disk(const struct qemu_machine *m, unsigned controller, unsigned lun)
{
	for (size_t i = 0; i < m->n_disks; i++)
		if (m->disks[i].controller == controller && m->disks[i].lun == lun)
			return (int)i;
	return -1;
}

void qemu_machine_add_disk(struct qemu_machine *m, const struct qemu_disk *d)
{
	m->disks = xrealloc(m->disks, (m->n_disks + 1) * sizeof(*m->disks));
	m->disks[m->n_disks] = *d;
	m->disks[m->n_disks].path = xstrdup(d->path);
	m->n_disks++;
}

void qemu_machine_remove_disk(struct qemu_machine *m, size_t i)
{
	free(m->disks[i].path);
	memmove(&m->disks[i], &m->disks[i + 1], (m->n_disks - i - 1) * sizeof(*m->disks));
	m->n_disks--;
}
