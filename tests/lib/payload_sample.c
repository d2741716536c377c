/* The sample envelope of tests/lib/payload_sample.h. */
#include "tests/lib/payload_sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/proto.h"
#include "common/xalloc.h"

const char payload_sample_spec[] =
    "{\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"/bin/sh\",\"-c\",\"while true; do date; "
    "sleep 1; done\"],\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
    "/bin\",\"TERM=xterm\",\"HOSTNAME=c0\"],\"cwd\":\"/\",\"capabilities\":{\"bounding\":["
    "\"CAP_CHOWN\",\"CAP_DAC_OVERRIDE\",\"CAP_FSETID\",\"CAP_FOWNER\",\"CAP_MKNOD\","
    "\"CAP_NET_RAW\",\"CAP_SETGID\",\"CAP_SETUID\",\"CAP_SETFCAP\",\"CAP_SETPCAP\","
    "\"CAP_NET_BIND_SERVICE\",\"CAP_SYS_CHROOT\",\"CAP_KILL\",\"CAP_AUDIT_WRITE\"],"
    "\"effective\":[\"CAP_CHOWN\",\"CAP_KILL\"],\"permitted\":[\"CAP_CHOWN\",\"CAP_KILL\"]},"
    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],"
    "\"noNewPrivileges\":true,\"terminal\":false}";

static const char machine_json[] =
    "{\"qemu\":\"qemu-system-x86_64\",\"memory_mb\":512,\"cpus\":2,\"kernel\":\"vmlinux\","
    "\"initrd\":\"initrd.img\",\"append\":\"console=ttyS0 ferry.transport=tcp:10.0.2.2:40000\","
    "\"accel\":\"tcg\"}";

static const char uvm_spec[] = "{\"args\":[\"/bin/sh\"],\"cwd\":\"/\"}";

/* Reservation k (0, 1: read-only layers; 2: scratch) of container i. */
static struct guid res_guid(size_t i, unsigned k)
{
	struct guid g = {.data1 = 0x10000000u + (uint32_t)i,
	                 .data2 = (uint16_t)k,
	                 .data3 = 0x4000,
	                 .data4 = {0x80, 0, 0, 0, 0, 0, 0, 1}};
	return g;
}

static struct guid guid_of(uint32_t d1, uint8_t last)
{
	struct guid g = {
	    .data1 = d1, .data2 = 0, .data3 = 0x4000, .data4 = {0x80, 0, 0, 0, 0, 0, 0, last}};
	return g;
}

static char *dup_spec(const char *text, size_t *len)
{
	*len = strlen(text);
	return xstrdup(text);
}

static void build_scsi(struct scsi_save *sc, size_t nc)
{
	size_t nd = nc + 2;
	sc->num_controllers = (uint32_t)((nd + 63) / 64);
	sc->disks = xcalloc(nd, sizeof(*sc->disks));
	for (size_t d = 0; d < nd; d++) {
		struct scsi_disk_save *dk = &sc->disks[sc->n_disks++];
		bool ro = d < 2;
		dk->slot = (uint32_t)d;
		dk->has_config = true;
		dk->host_path = ro ? xasprintf("/var/lib/ferry/layers/%s.vhdx", d ? "app" : "base")
		                   : xasprintf("/var/lib/ferry/scratch/c%zu.vhdx", d - 2);
		dk->read_only = ro;
		dk->type = xstrdup("VirtualDisk");
		dk->evd_type = xstrdup("");
		dk->mounts = xcalloc(1, sizeof(*dk->mounts));
		dk->n_mounts = 1;
		struct scsi_mount_save *m = &dk->mounts[0];
		m->partition = 0;
		m->has_config = true;
		m->read_only = ro;
		m->encrypted = !ro;
		m->n_options = ro ? 2 : 0;
		m->options = xcalloc(2, sizeof(char *));
		if (ro) {
			m->options[0] = xstrdup("ro");
			m->options[1] = xstrdup("noatime");
		}
		m->ensure_filesystem = !ro;
		m->filesystem = xstrdup(ro ? "ext4" : "xfs");
		m->ref_count = ro ? (uint32_t)nc : 1;
		m->guest_path = xasprintf("/run/mounts/scsi/m%zu", d);
	}
	sc->reservations = xcalloc(3 * nc + 1, sizeof(*sc->reservations));
	for (size_t i = 0; i < nc; i++)
		for (unsigned k = 0; k < 3; k++) {
			struct scsi_reservation_save *r = &sc->reservations[sc->n_reservations++];
			r->id = res_guid(i, k);
			r->slot = k < 2 ? k : (uint32_t)(2 + i);
		}
}

static void build_devices(struct vm_save *vm)
{
	vm->has_vpci = true;
	vm->vpci.devices = xcalloc(1, sizeof(*vm->vpci.devices));
	vm->vpci.n_devices = 1;
	vm->vpci.devices[0] = (struct vpci_device_save){.vmbus_id = guid_of(0xa0000000, 0x0a),
	                                                .instance_id = xstrdup("0000:3b:00.2"),
	                                                .vf_index = 2,
	                                                .stage = VPCI_STAGE_READY,
	                                                .ref_count = 1};
	vm->has_plan9 = true;
	struct plan9_save *p9 = &vm->plan9;
	p9->no_writable_file_shares = true;
	p9->name_counter = 1;
	p9->shares = xcalloc(1, sizeof(*p9->shares));
	p9->n_shares = 1;
	struct plan9_share_save *sh = &p9->shares[0];
	sh->host_path = xstrdup("/srv/data");
	sh->name = xstrdup("0");
	sh->read_only = true;
	sh->restrict_file_access = true;
	sh->allowed_names = xcalloc(2, sizeof(char *));
	sh->allowed_names[0] = xstrdup("a.txt");
	sh->allowed_names[1] = xstrdup("b.txt");
	sh->n_allowed_names = 2;
	sh->stage = PLAN9_SHARE_ADDED;
	sh->has_mount = true;
	sh->mount_read_only = true;
	sh->mount_stage = PLAN9_MOUNT_MOUNTED;
	sh->mount_ref_count = 1;
	sh->mount_guest_path = xstrdup("/run/mounts/plan9/0");
	p9->reservations = xcalloc(1, sizeof(*p9->reservations));
	p9->n_reservations = 1;
	p9->reservations[0] = (struct plan9_reservation_save){.id = guid_of(0xb0000000, 0x0b),
	                                                      .host_path = xstrdup("/srv/data"),
	                                                      .name = xstrdup("0")};
}

/* Process q of the envelope (ports and wait ids are numbered by q). */
static void build_process(struct process_save *p, size_t q, const char *exec_id, const char *bundle,
                          bool exec, bool exited)
{
	uint32_t base = GCS_FIRST_STDIO_PORT + 3 * (uint32_t)q;
	p->exec_id = xstrdup(exec_id);
	p->pid = 100 + (int32_t)q;
	p->bundle = xstrdup(bundle);
	p->io_retry_timeout_ns = 30500000000;
	p->wait_call_id = 10 + 2 * (int64_t)q;
	struct process_stream_save *in = &p->stdio[PROCESS_STDIN];
	struct process_stream_save *out = &p->stdio[PROCESS_STDOUT];
	struct process_stream_save *err = &p->stdio[PROCESS_STDERR];
	out->port = base + 1;
	out->has_resume = true;
	out->offset_known = true;
	err->port = base + 2;
	err->has_resume = true;
	if (!exec) {
		out->offset = 1000 * (q + 1);
		err->offset = 7;
		return;
	}
	p->spec_json = dup_spec(payload_sample_spec, &p->spec_len);
	in->port = base;
	in->has_resume = true;
	in->offset = 42;
	in->offset_known = true;
	in->unacked = (uint8_t *)xstrdup("hello\n");
	in->n_unacked = 6;
	out->offset = 5;
	out->eof = true;
	err->offset_known = true;
	if (exited) {
		p->exited = true;
		p->exit_code = 3;
		p->exited_at_ns = 1700000000500000000;
	}
}

static void build_container(struct container_save *c, size_t i)
{
	c->container_id = xasprintf("c%zu", i);
	c->gcs_container_id = xasprintf("gcs-c%zu", i);
	c->io_retry_timeout_ns = 30500000000;
	c->has_layers = true;
	c->ro_layers = xcalloc(2, sizeof(*c->ro_layers));
	c->n_ro_layers = 2;
	for (unsigned k = 0; k < 2; k++) {
		c->ro_layers[k].reservation_id = res_guid(i, k);
		c->ro_layers[k].guest_path = xasprintf("/run/mounts/scsi/m%u", k);
	}
	c->has_scratch = true;
	c->scratch.reservation_id = res_guid(i, 2);
	c->scratch.guest_path = xasprintf("/run/mounts/scsi/m%zu", i + 2);
	c->layers_combined = true;
	c->rootfs_path = xasprintf("/run/gcs/c/gcs-c%zu/rootfs", i);
	c->scsi_reservations = xcalloc(3, sizeof(*c->scsi_reservations));
	c->n_scsi_reservations = 3;
	for (unsigned k = 0; k < 3; k++)
		c->scsi_reservations[k] = res_guid(i, k);
	if (i == 0) {
		c->plan9_reservations = xcalloc(1, sizeof(struct guid));
		c->plan9_reservations[0] = guid_of(0xb0000000, 0x0b);
		c->n_plan9_reservations = 1;
		c->vpci_devices = xcalloc(1, sizeof(struct guid));
		c->vpci_devices[0] = guid_of(0xa0000000, 0x0a);
		c->n_vpci_devices = 1;
	}
	char *bundle = xasprintf("/run/ferry/bundles/c%zu", i);
	char *exec_id = xasprintf("e%zu", i);
	c->procs = xcalloc(2, sizeof(*c->procs));
	c->n_procs = 2;
	build_process(&c->procs[0], 2 * i, "", bundle, false, false);
	build_process(&c->procs[1], 2 * i + 1, exec_id, bundle, true, i % 2 == 1);
	free(bundle);
	free(exec_id);
}

static void build_vm(struct vm_save *vm, size_t nc)
{
	size_t np = 2 * nc + 1;
	vm->vm_id = xstrdup("sb1@vm");
	vm->no_writable_file_shares = true;
	vm->enable_scratch_encryption = true;
	vm->architecture = xstrdup("amd64");
	vm->fully_physically_backed = true;
	vm->has_scsi = true;
	build_scsi(&vm->scsi, nc);
	vm->gcs_next_port = GCS_FIRST_STDIO_PORT + 3 * (uint32_t)np;
	static const uint8_t compat[8] = {0xc0, 0x4e, 0x01, 0x02, 0x00, 0xff, 0x7f, 0x80};
	vm->compat_info = xmalloc(sizeof(compat));
	memcpy(vm->compat_info, compat, sizeof(compat));
	vm->compat_len = sizeof(compat);
	vm->bridge_next_id = 100 + 2 * (int64_t)np;
	vm->backend = xstrdup("qemu");
	vm->machine_json = dup_spec(machine_json, &vm->machine_len);
	build_devices(vm);
	vm->has_session_secret = true;
	for (unsigned k = 0; k < SAVE_SESSION_SECRET_LEN; k++)
		vm->session_secret[k] = (uint8_t)(7 * k + 1);
	vm->gcs_containers = xcalloc(nc + 1, sizeof(char *));
	for (size_t i = 0; i < nc; i++)
		vm->gcs_containers[i] = xasprintf("gcs-c%zu", i);
	vm->n_gcs_containers = nc;
	vm->orphan_ids = xcalloc(2, sizeof(int64_t));
	vm->orphan_ids[0] = 3;
	vm->orphan_ids[1] = 5;
	vm->n_orphan_ids = 2;
	vm->uvm_procs = xcalloc(1, sizeof(*vm->uvm_procs));
	vm->n_uvm_procs = 1;
	struct process_save *u = &vm->uvm_procs[0];
	build_process(u, 2 * nc, "uvm-1", "", false, false);
	u->spec_json = dup_spec(uvm_spec, &u->spec_len);
}

void payload_sample_build(struct envelope_save *s, size_t n_pods, size_t containers_per_pod)
{
	memset(s, 0, sizeof(*s));
	size_t nc = n_pods * containers_per_pod;
	build_vm(&s->vm, nc);
	s->pods = xcalloc(n_pods + 1, sizeof(*s->pods));
	s->n_pods = n_pods;
	for (size_t p = 0; p < n_pods; p++) {
		struct pod_save *pod = &s->pods[p];
		pod->pod_id = xasprintf("pod%zu", p);
		pod->gcs_pod_id = xasprintf("gcs-pod%zu", p);
		struct network_save *n = &pod->network;
		n->namespace_id = xasprintf("c0000000-0000-4000-8000-%012zx", p);
		n->policy_based_routing = true;
		n->is_namespace_supported_by_guest = true;
		n->endpoints = xcalloc(1, sizeof(*n->endpoints));
		n->n_endpoints = 1;
		n->endpoints[0].nic_id = guid_of(0xd0000000u + (uint32_t)p, 0x0d);
		n->endpoints[0].endpoint_id = xasprintf("ep-id-%zu", p);
		n->endpoints[0].mac_address = xasprintf("00-15-5d-00-00-%02zx", p);
		n->endpoints[0].endpoint_name = xasprintf("ep%zu", p);
		pod->containers = xcalloc(containers_per_pod + 1, sizeof(*pod->containers));
		pod->n_containers = containers_per_pod;
		for (size_t j = 0; j < containers_per_pod; j++)
			build_container(&pod->containers[j], p * containers_per_pod + j);
	}
}

void *payload_sample_unpack(const Google__Protobuf__Any *a, enum save_kind k)
{
	void *m = protobuf_c_message_unpack(save_types[k].desc, NULL, a->value.len, a->value.data);
	if (!m)
		abort();
	return m;
}

void payload_sample_repack(Google__Protobuf__Any *a, void *m)
{
	free(a->value.data);
	a->value.len = protobuf_c_message_get_packed_size(m);
	a->value.data = xmalloc(a->value.len + 1);
	protobuf_c_message_pack(m, a->value.data);
	protobuf_c_message_free_unpacked(m, NULL);
}
