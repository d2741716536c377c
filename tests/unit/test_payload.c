/* Unit tests for the saved-state payload modules (host/ctrl/<object>_save.c): every payload round
 * trips (decode(encode(s)) re-encodes to the same bytes, and the decoded fields are the
 * ones put in), the type URLs are hcsshim's, the GCS client's state converts both ways. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bridge/proto.h"
#include "common/xalloc.h"
#include "host/ctrl/envelope_save.h"
#include "host/process.h"
#include "tests/lib/payload_sample.h"

/* Encode s, decode it into *back, re-encode and compare the bytes. */
#define ROUND_TRIP(prefix, s, back)                                                                \
	do {                                                                                       \
		Google__Protobuf__Any a1_, a2_;                                                    \
		struct err e_;                                                                     \
		assert_int_equal(prefix##_save_encode((s), &a1_, &e_), 0);                         \
		int rc_ = prefix##_save_decode(&a1_, (back), &e_);                                 \
		if (rc_ != 0)                                                                      \
			fail_msg("decode: %s", e_.msg);                                            \
		assert_int_equal(prefix##_save_encode((back), &a2_, &e_), 0);                      \
		assert_string_equal(a1_.type_url, a2_.type_url);                                   \
		assert_int_equal(a1_.value.len, a2_.value.len);                                    \
		assert_memory_equal(a1_.value.data, a2_.value.data, a1_.value.len);                \
		save_any_fini(&a1_);                                                               \
		save_any_fini(&a2_);                                                               \
	} while (0)

static int setup(void **state)
{
	struct envelope_save *s = xcalloc(1, sizeof(*s));
	payload_sample_build(s, 2, 2);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	envelope_save_fini(*state);
	free(*state);
	return 0;
}

static void test_type_urls(void **state)
{
	(void)state;
	assert_string_equal(save_types[SAVE_ENVELOPE].type_url,
	                    "type.microsoft.com/hcsshim.controller.migration.save.v1.Payload");
	assert_string_equal(save_types[SAVE_VM].type_url,
	                    "type.microsoft.com/hcsshim.controller.vm.save.v1.Payload");
	assert_string_equal(save_types[SAVE_SCSI].type_url,
	                    "type.microsoft.com/hcsshim.controller.scsi.save.v1.Payload");
	assert_string_equal(save_types[SAVE_CONTAINER].type_url,
	                    "type.microsoft.com/hcsshim.controller.linuxcontainer.save.v1.Payload");
	assert_string_equal(save_types[SAVE_PROCESS].type_url,
	                    "type.microsoft.com/hcsshim.controller.process.save.v1.Payload");
	assert_string_equal(save_types[SAVE_POD].type_url,
	                    "type.microsoft.com/hcsshim.controller.pod.save.v1.Payload");
	assert_string_equal(save_types[SAVE_NETWORK].type_url,
	                    "type.microsoft.com/hcsshim.controller.network.save.v1.Payload");
	for (int k = 0; k < SAVE_N_KINDS; k++) {
		assert_ptr_equal(save_type_by_url(save_types[k].type_url), &save_types[k]);
		/* The URL names the message the descriptor describes. */
		const char *slash = strrchr(save_types[k].type_url, '/');
		assert_string_equal(slash + 1, save_types[k].desc->name);
	}
	assert_null(save_type_by_url("type.googleapis.com/hcsshim.controller.vm.save.v1.Payload"));
}

static void test_process_round_trip(void **state)
{
	struct envelope_save *s = *state;
	const struct process_save *exec = &s->pods[0].containers[1].procs[1];
	struct process_save back = {0};
	ROUND_TRIP(process, exec, &back);
	assert_string_equal(back.exec_id, "e1");
	assert_int_equal(back.pid, 103);
	assert_string_equal(back.bundle, "/run/ferry/bundles/c1");
	assert_int_equal(back.spec_len, strlen(payload_sample_spec));
	assert_string_equal(back.spec_json, payload_sample_spec);
	assert_int_equal(back.io_retry_timeout_ns, 30500000000);
	assert_int_equal(back.stdio[PROCESS_STDIN].port, GCS_FIRST_STDIO_PORT + 9);
	assert_int_equal(back.stdio[PROCESS_STDOUT].port, GCS_FIRST_STDIO_PORT + 10);
	assert_int_equal(back.stdio[PROCESS_STDERR].port, GCS_FIRST_STDIO_PORT + 11);
	assert_int_equal(back.wait_call_id, 16);
	assert_true(back.stdio[PROCESS_STDIN].has_resume);
	assert_int_equal(back.stdio[PROCESS_STDIN].offset, 42);
	assert_int_equal(back.stdio[PROCESS_STDIN].n_unacked, 6);
	assert_memory_equal(back.stdio[PROCESS_STDIN].unacked, "hello\n", 6);
	assert_true(back.stdio[PROCESS_STDOUT].eof);
	assert_int_equal(back.stdio[PROCESS_STDOUT].offset, 5);
	assert_true(back.exited);
	assert_int_equal(back.exit_code, 3);
	assert_int_equal(back.exited_at_ns, 1700000000500000000);
	process_save_fini(&back);

	const struct process_save *init = &s->pods[0].containers[0].procs[0];
	ROUND_TRIP(process, init, &back);
	assert_string_equal(back.exec_id, "");
	assert_null(back.spec_json);
	assert_int_equal(back.stdio[PROCESS_STDIN].port, 0);
	assert_false(back.stdio[PROCESS_STDIN].has_resume);
	assert_true(back.stdio[PROCESS_STDOUT].offset_known);
	assert_int_equal(back.stdio[PROCESS_STDOUT].offset, 1000);
	assert_false(back.stdio[PROCESS_STDERR].offset_known);
	assert_int_equal(back.stdio[PROCESS_STDERR].offset, 7);
	assert_false(back.exited);
	process_save_fini(&back);
}

static void test_container_round_trip(void **state)
{
	struct envelope_save *s = *state;
	struct container_save back = {0};
	ROUND_TRIP(container, &s->pods[0].containers[0], &back);
	char g[GUID_STR_LEN + 1];
	assert_string_equal(back.container_id, "c0");
	assert_string_equal(back.gcs_container_id, "gcs-c0");
	assert_true(back.has_layers && back.has_scratch && back.layers_combined);
	assert_int_equal(back.n_ro_layers, 2);
	assert_string_equal(guid_format(&back.ro_layers[1].reservation_id, g),
	                    "10000000-0001-4000-8000-000000000001");
	assert_string_equal(back.ro_layers[1].guest_path, "/run/mounts/scsi/m1");
	assert_string_equal(guid_format(&back.scratch.reservation_id, g),
	                    "10000000-0002-4000-8000-000000000001");
	assert_string_equal(back.rootfs_path, "/run/gcs/c/gcs-c0/rootfs");
	assert_int_equal(back.n_scsi_reservations, 3);
	assert_int_equal(back.n_plan9_reservations, 1);
	assert_string_equal(guid_format(&back.vpci_devices[0], g),
	                    "a0000000-0000-4000-8000-00000000000a");
	assert_int_equal(back.n_procs, 2);
	assert_string_equal(back.procs[0].exec_id, "");
	assert_string_equal(back.procs[1].exec_id, "e0");
	container_save_fini(&back);
}

static void test_network_round_trip(void **state)
{
	struct envelope_save *s = *state;
	struct network_save back = {0};
	char g[GUID_STR_LEN + 1];
	ROUND_TRIP(network, &s->pods[1].network, &back);
	assert_string_equal(back.namespace_id, "c0000000-0000-4000-8000-000000000001");
	assert_true(back.policy_based_routing && back.is_namespace_supported_by_guest);
	assert_int_equal(back.n_endpoints, 1);
	assert_string_equal(guid_format(&back.endpoints[0].nic_id, g),
	                    "d0000001-0000-4000-8000-00000000000d");
	assert_string_equal(back.endpoints[0].endpoint_id, "ep-id-1");
	assert_string_equal(back.endpoints[0].mac_address, "00-15-5d-00-00-01");
	assert_string_equal(back.endpoints[0].endpoint_name, "ep1");
	network_save_fini(&back);
}

static void test_scsi_round_trip(void **state)
{
	struct envelope_save *s = *state;
	struct scsi_save back = {0};
	ROUND_TRIP(scsi, &s->vm.scsi, &back);
	assert_int_equal(back.num_controllers, 1);
	assert_int_equal(back.n_disks, 6);
	assert_int_equal(back.disks[0].slot, 0);
	assert_string_equal(back.disks[0].host_path, "/var/lib/ferry/layers/base.vhdx");
	assert_true(back.disks[0].read_only);
	assert_string_equal(back.disks[0].type, "VirtualDisk");
	assert_int_equal(back.disks[0].n_mounts, 1);
	assert_int_equal(back.disks[0].mounts[0].n_options, 2);
	assert_string_equal(back.disks[0].mounts[0].options[1], "noatime");
	assert_int_equal(back.disks[0].mounts[0].ref_count, 4);
	assert_true(back.disks[5].mounts[0].encrypted);
	assert_string_equal(back.disks[5].mounts[0].filesystem, "xfs");
	assert_int_equal(back.n_reservations, 12);
	assert_int_equal(back.reservations[11].slot, 5);
	scsi_save_fini(&back);
}

static void test_vpci_plan9_round_trip(void **state)
{
	struct envelope_save *s = *state;
	struct vpci_save vb = {0};
	ROUND_TRIP(vpci, &s->vm.vpci, &vb);
	assert_int_equal(vb.n_devices, 1);
	assert_string_equal(vb.devices[0].instance_id, "0000:3b:00.2");
	assert_int_equal(vb.devices[0].vf_index, 2);
	assert_int_equal(vb.devices[0].stage, VPCI_STAGE_READY);
	vpci_save_fini(&vb);
	struct plan9_save pb = {0};
	ROUND_TRIP(plan9, &s->vm.plan9, &pb);
	assert_true(pb.no_writable_file_shares);
	assert_int_equal(pb.name_counter, 1);
	assert_int_equal(pb.n_shares, 1);
	assert_string_equal(pb.shares[0].host_path, "/srv/data");
	assert_true(pb.shares[0].restrict_file_access);
	assert_string_equal(pb.shares[0].allowed_names[1], "b.txt");
	assert_true(pb.shares[0].has_mount);
	assert_int_equal(pb.shares[0].mount_stage, PLAN9_MOUNT_MOUNTED);
	assert_string_equal(pb.reservations[0].name, "0");
	plan9_save_fini(&pb);
}

static void test_pod_round_trip(void **state)
{
	struct envelope_save *s = *state;
	struct pod_save back = {0};
	ROUND_TRIP(pod, &s->pods[1], &back);
	assert_string_equal(back.pod_id, "pod1");
	assert_string_equal(back.gcs_pod_id, "gcs-pod1");
	assert_int_equal(back.n_containers, 2);
	assert_string_equal(back.containers[0].container_id, "c2");
	assert_string_equal(back.network.endpoints[0].endpoint_name, "ep1");
	pod_save_fini(&back);
}

static void test_vm_round_trip(void **state)
{
	struct envelope_save *s = *state;
	struct vm_save back = {0};
	ROUND_TRIP(vm, &s->vm, &back);
	assert_string_equal(back.vm_id, "sb1@vm");
	assert_true(back.no_writable_file_shares && back.enable_scratch_encryption);
	assert_false(back.policy_based_routing);
	assert_true(back.fully_physically_backed);
	assert_string_equal(back.architecture, "amd64");
	assert_true(back.has_scsi && back.has_vpci && back.has_plan9);
	assert_int_equal(back.gcs_next_port, GCS_FIRST_STDIO_PORT + 27);
	assert_int_equal(back.bridge_next_id, 118);
	assert_int_equal(back.compat_len, 8);
	assert_int_equal(back.compat_info[7], 0x80);
	assert_string_equal(back.backend, "qemu");
	assert_int_equal(back.machine_len, strlen(back.machine_json));
	assert_non_null(strstr(back.machine_json, "\"memory_mb\":512"));
	assert_true(back.has_session_secret);
	assert_int_equal(back.session_secret[31], 7 * 31 + 1);
	assert_int_equal(back.n_gcs_containers, 4);
	assert_string_equal(back.gcs_containers[3], "gcs-c3");
	assert_int_equal(back.n_orphan_ids, 2);
	assert_int_equal(back.orphan_ids[1], 5);
	assert_int_equal(back.n_uvm_procs, 1);
	assert_string_equal(back.uvm_procs[0].exec_id, "uvm-1");
	vm_save_fini(&back);
}

/* An hcs backend's machine description is hcsshim's hcs_document; no backend at all (a
 * payload from hcsshim) means hcs. */
static void test_vm_hcs_document(void **state)
{
	struct envelope_save *s = *state;
	struct vm_save v = s->vm; /* shallow: only the backend and machine change */
	v.backend = NULL;
	v.machine_json = "{\"SchemaVersion\":{\"Major\":2,\"Minor\":1}}";
	v.machine_len = strlen(v.machine_json);
	Google__Protobuf__Any a;
	struct err e;
	struct vm_save back = {0};
	assert_int_equal(vm_save_encode(&v, &a, &e), 0);
	assert_int_equal(vm_save_decode(&a, &back, &e), 0);
	assert_string_equal(back.backend, "hcs");
	assert_string_equal(back.machine_json, v.machine_json);
	save_any_fini(&a);
	vm_save_fini(&back);
}

static void test_envelope_round_trip(void **state)
{
	struct envelope_save *s = *state;
	struct buf b1, b2;
	struct err e;
	buf_init(&b1);
	buf_init(&b2);
	assert_int_equal(envelope_save_encode_bytes(s, &b1, &e), 0);
	struct envelope_save back = {0};
	struct save_decode_opts o = {0};
	if (envelope_save_decode_bytes(buf_head(&b1), buf_avail(&b1), &o, &back, &e) != 0)
		fail_msg("decode: %s", e.msg);
	assert_int_equal(back.n_pods, 2);
	assert_int_equal(envelope_save_containers(&back), 4);
	assert_int_equal(envelope_save_processes(&back), 9);
	assert_true(o.peak_memory > buf_avail(&b1));
	assert_true(o.peak_memory < 16 * buf_avail(&b1) + 65536);
	assert_int_equal(envelope_save_encode_bytes(&back, &b2, &e), 0);
	assert_int_equal(buf_avail(&b1), buf_avail(&b2));
	assert_memory_equal(buf_head(&b1), buf_head(&b2), buf_avail(&b1));
	envelope_save_fini(&back);
	buf_fini(&b1);
	buf_fini(&b2);
}

/* The GCS client's migration state goes into the payloads and comes back unchanged. */
static void test_gcs_conversion(void **state)
{
	(void)state;
	struct gcs_process_mstate m = {0}, back;
	m.container_id = xstrdup("gcs-c0");
	m.pid = 4242;
	m.wait_pending = true;
	m.wait_id = 77;
	m.stdio[0] =
	    (struct gcs_stream_state){.port = 0x40000005, .offset = 10, .offset_known = true};
	m.stdio[0].unacked = (uint8_t *)xstrdup("abc");
	m.stdio[0].n_unacked = 3;
	m.stdio[1] = (struct gcs_stream_state){
	    .port = 0x40000006, .offset = 99, .offset_known = true, .eof = true};
	m.stdio[2] = (struct gcs_stream_state){.port = 0x40000007, .offset_known = false};
	struct process_save p = {0};
	struct err e;
	p.exec_id = xstrdup("e1");
	assert_int_equal(process_save_from_gcs(&p, &m, &e), 0);
	/* Through the wire too. */
	Google__Protobuf__Any a;
	struct process_save q = {0};
	assert_int_equal(process_save_encode(&p, &a, &e), 0);
	assert_int_equal(process_save_decode(&a, &q, &e), 0);
	process_save_to_gcs(&q, "gcs-c0", &back);
	assert_string_equal(back.container_id, "gcs-c0");
	assert_int_equal(back.pid, 4242);
	assert_true(back.wait_pending);
	assert_int_equal(back.wait_id, 77);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(back.stdio[k].port, m.stdio[k].port);
		assert_int_equal(back.stdio[k].offset, m.stdio[k].offset);
		assert_int_equal(back.stdio[k].offset_known, m.stdio[k].offset_known);
		assert_int_equal(back.stdio[k].eof, m.stdio[k].eof);
		assert_int_equal(back.stdio[k].n_unacked, m.stdio[k].n_unacked);
	}
	assert_memory_equal(back.stdio[0].unacked, "abc", 3);
	/* A pid beyond int32 or a pending wait without an id cannot be expressed. */
	m.pid = 0x80000000u;
	assert_int_equal(process_save_from_gcs(&p, &m, &e), -EINVAL);
	m.pid = 1;
	m.wait_id = 0;
	assert_int_equal(process_save_from_gcs(&p, &m, &e), -EINVAL);
	gcs_process_mstate_fini(&m);
	gcs_process_mstate_fini(&back);
	process_save_fini(&p);
	process_save_fini(&q);
	save_any_fini(&a);

	struct gcs_client_state st = {.next_port = 0x40000010, .next_id = 50};
	st.containers = xcalloc(2, sizeof(char *));
	st.containers[0] = xstrdup("gcs-c0");
	st.n_containers = 1;
	st.orphans = xcalloc(1, sizeof(uint64_t));
	st.orphans[0] = 9;
	st.n_orphans = 1;
	struct vm_save v = {0};
	struct gcs_client_state st2;
	assert_int_equal(vm_save_from_gcs(&v, &st, &e), 0);
	vm_save_to_gcs(&v, &st2);
	assert_int_equal(st2.next_port, 0x40000010);
	assert_int_equal(st2.next_id, 50);
	assert_int_equal(st2.n_containers, 1);
	assert_string_equal(st2.containers[0], "gcs-c0");
	assert_int_equal(st2.n_orphans, 1);
	assert_int_equal(st2.orphans[0], 9);
	assert_int_equal(st2.n_procs, 0);
	st.next_id = (uint64_t)INT64_MAX + 1;
	assert_int_equal(vm_save_from_gcs(&v, &st, &e), -EINVAL);
	gcs_client_state_fini(&st);
	gcs_client_state_fini(&st2);
	vm_save_fini(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_type_urls),
	    cmocka_unit_test_setup_teardown(test_process_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_container_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_network_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scsi_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vpci_plan9_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pod_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vm_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vm_hcs_document, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_envelope_round_trip, setup, teardown),
	    cmocka_unit_test(test_gcs_conversion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
