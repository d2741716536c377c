/* Unit tests for bridge/msg: every message decoded from the exact bytes of the spec (Go
 * host requests with their '\n', Go guest responses) and re-encoded byte for byte, Linux
 * NegotiateProtocol constant, omitempty rules, AnyInString, escaping, case-insensitive
 * keys, type/range errors, typed ModifySettings documents, framing and the error builder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bridge/frame.h"
#include "bridge/msg.h"
#include "bridge/proto.h"
#include "common/xalloc.h"

#define A   "\"ActivityId\":\"00000000-0000-0000-0000-000000000000\""
#define Z   "00000000-0000-0000-0000-000000000000"
#define CID "c0ffee"

/* The Linux GCS NegotiateProtocol response (spec §3.3). */
static const char linux_negotiate_resp[] =
    "{\"Result\":0," A ",\"Version\":4,\"Capabilities\":{\"SupportedSchemaVersions\":"
    "[{\"Major\":2,\"Minor\":1}],\"RuntimeOsType\":\"Linux\",\"GuestDefinedCapabilities\":"
    "{\"NamespaceAddRequestSupported\":true,\"SignalProcessSupported\":true,"
    "\"DumpStacksSupported\":true,\"DeleteContainerStateSupported\":true}}}";

/* One canonical sample per message: decoding it and encoding the result must give the same
 * bytes back.  Requests are Go-host bytes (trailing '\n'), the rest Go-guest bytes. */
static const struct sample {
	uint32_t type;
	const char *json;
} samples[] = {
    {0x10100b01, "{\"ContainerId\":\"\"," A ",\"MinimumVersion\":4,\"MaximumVersion\":4}\n"},
    {0x20100b01, linux_negotiate_resp},
    {0x10100a01,
     "{\"ContainerId\":\"" Z "\"," A ",\"Request\":{\"RequestType\":\"Add\","
     "\"ResourceType\":\"VPMemDevice\",\"Settings\":{\"MountPath\":\"/run/layers/p0\"}}}\n"},
    {0x10100a01,
     "{\"ContainerId\":\"" Z "\"," A ",\"Request\":{\"RequestType\":\"Add\","
     "\"ResourceType\":\"MappedVirtualDisk\",\"Settings\":{\"MountPath\":\"/run/gcs/c/" CID
     "\",\"Lun\":1,\"EnsureFilesystem\":true,\"Filesystem\":\"ext4\"}}}\n"},
    {0x10100a01,
     "{\"ContainerId\":\"" Z "\"," A ",\"Request\":{\"RequestType\":\"Add\","
     "\"ResourceType\":\"CombinedLayers\",\"Settings\":{\"ContainerID\":\"" CID "\","
     "\"ContainerRootPath\":\"/run/gcs/c/" CID "/rootfs\",\"Layers\":[{\"Path\":"
     "\"/run/layers/p0\"}],\"ScratchPath\":\"/run/gcs/c/" CID "/scratch/" CID "\"}}}\n"},
    {0x10100a01,
     "{\"ContainerId\":\"" Z "\"," A ",\"Request\":{\"RequestType\":\"Add\","
     "\"ResourceType\":\"Network\",\"Settings\":{\"NamespaceID\":\"ns\",\"ID\":\"nic\","
     "\"MacAddress\":\"00-15-5D-01-02-03\",\"DNSServerList\":\"10.0.0.10\",\"IPConfigs\":"
     "[{\"IPAddress\":\"10.0.0.5\",\"PrefixLength\":24}],\"Routes\":[{\"NextHop\":"
     "\"10.0.0.1\",\"DestinationPrefix\":\"0.0.0.0/0\"}]}}}\n"},
    {0x20100a01, "{\"Result\":0," A "}"},
    {0x10100101,
     "{\"ContainerId\":\"" CID "\"," A
     ",\"ContainerConfig\":\"{\\\"SchemaVersion\\\":{\\\"Major\\\":"
     "2,\\\"Minor\\\":1},\\\"OciBundlePath\\\":\\\"/run/gcs/c/" CID "\\\",\\\"OciSpecification\\\":"
     "{\\\"ociVersion\\\":\\\"1.1.0\\\",\\\"process\\\":{\\\"user\\\":{\\\"uid\\\":65535,"
     "\\\"gid\\\":"
     "65535},\\\"args\\\":[\\\"/pause\\\"],\\\"cwd\\\":\\\"/\\\"},\\\"root\\\":{\\\"path\\\":"
     "\\\"/run/gcs/c/" CID "/rootfs\\\"},\\\"annotations\\\":{\\\"io.kubernetes.cri.container-type"
     "\\\":\\\"sandbox\\\"},\\\"linux\\\":{\\\"namespaces\\\":[{\\\"type\\\":\\\"pid\\\"}]}},"
     "\\\"ScratchDirPath\\\":\\\"/run/gcs/c/" CID "/scratch/" CID "\\\"}\"}\n"},
    {0x20100101, "{\"Result\":0," A ",\"SelectedProtocolVersion\":0}"},
    {0x10100201, "{\"ContainerId\":\"" CID "\"," A "}\n"},
    {0x20100201, "{\"Result\":0," A "}"},
    {0x10100501,
     "{\"ContainerId\":\"" CID "\"," A ",\"Settings\":{\"ProcessParameters\":"
     "\"{\\\"CreateStdInPipe\\\":true,\\\"CreateStdOutPipe\\\":true,\\\"CreateStdErrPipe"
     "\\\":true}\",\"VsockStdioRelaySettings\":{\"StdIn\":1073741825,\"StdOut\":"
     "1073741826,\"StdErr\":1073741827}}}\n"},
    {0x10100501, "{\"ContainerId\":\"" CID "\"," A
                 ",\"Settings\":{\"ProcessParameters\":\"{\\\"CreateStdOutPipe"
                 "\\\":true,\\\"OciProcess\\\":{\\\"terminal\\\":false,\\\"user\\\":{\\\"uid\\\":0,"
                 "\\\"gid\\\":0},"
                 "\\\"args\\\":[\\\"sh\\\",\\\"-c\\\",\\\"echo "
                 "hi\\\"],\\\"env\\\":[\\\"PATH=/bin\\\"],\\\"cwd\\\":"
                 "\\\"/\\\"}}\",\"VsockStdioRelaySettings\":{\"StdOut\":1073741828}}}\n"},
    {0x10100501, "{\"ContainerId\":\"" Z "\"," A ",\"Settings\":{\"ProcessParameters\":"
                 "\"{\\\"CommandArgs\\\":[\\\"/bin/sh\\\",\\\"-c\\\",\\\"a\\\\u003cb\\\"],"
                 "\\\"WorkingDirectory\\\":\\\"/\\\",\\\"Environment\\\":{\\\"A\\\":\\\"1\\\","
                 "\\\"PATH\\\":\\\"/bin\\\"},\\\"EmulateConsole\\\":true}\","
                 "\"VsockStdioRelaySettings\":{}}}\n"},
    {0x20100501, "{\"Result\":0," A ",\"ProcessId\":812}"},
    {0x10100601,
     "{\"ContainerId\":\"" CID "\"," A ",\"ProcessId\":812,\"TimeoutInMs\":4294967295}\n"},
    {0x20100601, "{\"Result\":0," A ",\"ExitCode\":143}"},
    {0x20100601, "{\"Result\":-1070137079," A ",\"ErrorMessage\":\"HRESULT: 0xc0370109\","
                 "\"ErrorRecords\":[{\"Result\":-1070137079,\"Message\":\"HRESULT: 0xc0370109\","
                 "\"ModuleName\":\"gcs\",\"FileName\":\"\",\"Line\":4294967295}]}"},
    {0x10100701,
     "{\"ContainerId\":\"" CID "\"," A ",\"ProcessId\":812,\"Options\":{\"Signal\":15}}\n"},
    {0x10100701, "{\"ContainerId\":\"" CID "\"," A ",\"ProcessId\":812}\n"},
    {0x10100801,
     "{\"ContainerId\":\"" CID "\"," A ",\"ProcessId\":812,\"Height\":24,\"Width\":80}\n"},
    {0x10100901, "{\"ContainerId\":\"" CID "\"," A ",\"Query\":\"{\\\"PropertyTypes\\\":"
                 "[\\\"ProcessList\\\"]}\"}\n"},
    {0x20100901, "{\"Result\":0," A ",\"Properties\":\"{\\\"ProcessList\\\":[{\\\"ProcessId\\\":"
                 "812}]}\"}"},
    {0x20100901, "{\"Result\":0,\"Properties\":\"{}\"}"},
    {0x10100c01, "{\"ContainerId\":\"" Z "\"," A ",\"otsc\":{\"traceparent\":\"00-ab-cd-01\"}}\n"},
    {0x20100c01, "{\"Result\":0," A ",\"GuestStacks\":\"goroutine 1\\n\"}"},
    {0x10100d01, "{\"ContainerId\":\"" CID "\"," A "}\n"},
    {0x10100401, "{\"ContainerId\":\"" CID "\"," A "}\n"},
    {0x10100301, "{\"ContainerId\":\"" CID "\"," A "}\n"},
    {0x30100101, "{\"ContainerId\":\"" CID "\"," A ",\"Type\":\"GracefulExit\",\"Operation\":"
                 "\"None\",\"Result\":0}"},
    {0x30100101, "{\"ContainerId\":\"" CID "\"," A ",\"Type\":\"UnexpectedExit\",\"Operation\":"
                 "\"None\",\"Result\":0,\"ResultInfo\":\"{\\\"a\\\":1}\"}"},
};

/* Decode `json` as kind k into a fresh heap struct; asserts success. */
static void *decode_ok(enum bridge_msg_kind k, const char *json)
{
	struct err e = {0};
	void *m = xmalloc(bridge_msg_struct_size(k));
	int r = bridge_msg_decode(k, json, strlen(json), m, &e);
	if (r != 0)
		fail_msg("decode %s: %s (%s)", bridge_msg_kind_name(k), e.msg, json);
	return m;
}

static void free_msg(enum bridge_msg_kind k, void *m)
{
	bridge_msg_fini(k, m);
	free(m);
}

static char *encode_ok(enum bridge_msg_kind k, const void *m)
{
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(bridge_msg_encode(k, m, &out, &len, NULL), 0);
	assert_int_equal(strlen(out), len);
	return out;
}

/* Decode error: returns the code and copies the message. */
static int decode_err(enum bridge_msg_kind k, const char *json, char *msg)
{
	struct err e = {0};
	void *m = xmalloc(bridge_msg_struct_size(k));
	memset(m, 0xA5, bridge_msg_struct_size(k));
	int r = bridge_msg_decode(k, json, strlen(json), m, &e);
	if (r == 0)
		bridge_msg_fini(k, m);
	else
		for (size_t i = 0; i < bridge_msg_struct_size(k); i++)
			assert_int_equal(((unsigned char *)m)[i], 0); /* left zeroed */
	free(m);
	if (msg)
		strcpy(msg, e.msg);
	return r;
}

static void test_samples_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		enum bridge_msg_kind k = bridge_msg_kind_for_type(samples[i].type);
		assert_int_not_equal(k, BMSG_NONE);
		void *m = decode_ok(k, samples[i].json);
		char *out = encode_ok(k, m);
		if (strcmp(out, samples[i].json) != 0)
			fail_msg("sample %zu (%s):\n got  %s\n want %s", i, bridge_msg_kind_name(k),
			         out, samples[i].json);
		/* and once more from our own output */
		void *m2 = decode_ok(k, out);
		char *out2 = encode_ok(k, m2);
		assert_string_equal(out, out2);
		free(out);
		free(out2);
		free_msg(k, m);
		free_msg(k, m2);
	}
}

static void test_peek_base_every_request(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		if ((samples[i].type & BRIDGE_MT_MASK) != BRIDGE_MT_REQUEST)
			continue;
		struct bridge_req_base b;
		struct err e = {0};
		assert_int_equal(
		    bridge_msg_peek_base(samples[i].json, strlen(samples[i].json), &b, &e), 0);
		assert_non_null(b.container_id);
		assert_string_equal(b.activity_id, Z);
		bridge_req_base_fini(&b);
		assert_null(b.container_id);
	}
}

static void test_negotiate_linux_bytes(void **state)
{
	(void)state;
	struct bridge_negotiate_resp r = {.version = 4};
	strcpy(r.base.activity_id, Z);
	bridge_gcs_caps_init_linux(&r.caps);
	char *out = encode_ok(BMSG_NEGOTIATE_RESP, &r);
	assert_string_equal(out, linux_negotiate_resp);
	free(out);

	/* Framed: the spec's header 01 0b 10 20 | 56 01 00 00 | 00x8 (Size 342). */
	struct buf b;
	buf_init(&b);
	assert_int_equal(bridge_msg_encode_frame(&b, 0x20100b01, 0, BMSG_NEGOTIATE_RESP, &r, NULL),
	                 0);
	static const uint8_t hdr[16] = {0x01, 0x0b, 0x10, 0x20, 0x56, 0x01};
	assert_memory_equal(buf_head(&b), hdr, 16);
	assert_int_equal(buf_avail(&b), 342);
	buf_fini(&b);
	bridge_negotiate_resp_fini(&r);
	assert_null(r.caps.runtime_os_type);

	/* The host's request frame: 01 0b 10 10 | 7d 00 00 00 (Size 125). */
	struct bridge_negotiate_req q = {.minimum_version = 4, .maximum_version = 4};
	buf_init(&b);
	assert_int_equal(bridge_msg_encode_frame(&b, 0x10100b01, 0, BMSG_NEGOTIATE_REQ, &q, NULL),
	                 0);
	assert_int_equal(buf_avail(&b), 125);
	assert_int_equal(buf_head(&b)[4], 0x7d);
	assert_memory_equal(buf_head(&b) + 16, samples[0].json, 109);
	buf_fini(&b);
}

static void test_negotiate_ferry_caps(void **state)
{
	(void)state;
	struct bridge_negotiate_resp r = {.version = 4};
	bridge_gcs_caps_init_linux(&r.caps);
	r.caps.guest_defined.ferry_stdio_resume = true;
	char *out = encode_ok(BMSG_NEGOTIATE_RESP, &r);
	assert_non_null(
	    strstr(out, "\"DeleteContainerStateSupported\":true,\"FerryStdioResume\":true}}}"));
	assert_null(strstr(out, "ActivityId")); /* omitted when empty */
	struct bridge_negotiate_resp d;
	assert_int_equal(bridge_negotiate_resp_decode(out, strlen(out), &d, NULL), 0);
	assert_true(d.caps.guest_defined.ferry_stdio_resume);
	assert_true(d.caps.guest_defined.signal_process_supported);
	assert_string_equal(d.caps.runtime_os_type, "Linux");
	assert_int_equal(d.caps.n_supported_schema_versions, 1);
	assert_int_equal(d.caps.supported_schema_versions[0].minor, 1);
	free(out);
	bridge_negotiate_resp_fini(&d);
	bridge_negotiate_resp_fini(&r);

	struct bridge_negotiate_req q = {.minimum_version = 4, .maximum_version = 4};
	q.ferry.stdio_resume = 1;
	out = encode_ok(BMSG_NEGOTIATE_REQ, &q);
	assert_string_equal(out,
	                    "{\"ContainerId\":\"\"," A ",\"MinimumVersion\":4,\"MaximumVersion\":4,"
	                    "\"Ferry\":{\"StdioResume\":1}}\n");
	free(out);

	/* A failed negotiate response is a bare base. */
	struct bridge_negotiate_resp f = {.version = 4};
	bridge_gcs_caps_init_linux(&f.caps);
	bridge_resp_base_set_error(&f.base, HR_VMCOMPUTE_UNSUPPORTED_PROTOCOL, "bad version");
	out = encode_ok(BMSG_NEGOTIATE_RESP, &f);
	assert_null(strstr(out, "Capabilities"));
	assert_null(strstr(out, "Version"));
	assert_non_null(strstr(out, "\"Result\":-1070137076,\"ErrorMessage\":\"bad version\""));
	free(out);
	bridge_negotiate_resp_fini(&f);
}

/* GuestDefinedCapabilities: absent, {} and a populated object must be told apart (the Go
 * host fails Connect when the key is missing); the encoder always emits it. */
static void test_negotiate_gdc_presence(void **state)
{
	(void)state;
	struct bridge_negotiate_resp *d = decode_ok(BMSG_NEGOTIATE_RESP, linux_negotiate_resp);
	assert_true(d->caps.has_guest_defined);
	assert_true(d->caps.guest_defined.dump_stacks_supported);
	free_msg(BMSG_NEGOTIATE_RESP, d);

	d = decode_ok(BMSG_NEGOTIATE_RESP,
	              "{\"Result\":0,\"Version\":4,\"Capabilities\":{\"RuntimeOsType\":\"Linux\","
	              "\"guestdefinedcapabilities\":{}}}");
	assert_true(d->caps.has_guest_defined); /* {} is present; key matched case-insensitively */
	assert_false(d->caps.guest_defined.signal_process_supported);
	char *out = encode_ok(BMSG_NEGOTIATE_RESP, d);
	assert_non_null(strstr(out, "\"GuestDefinedCapabilities\":{}}}"));
	free(out);
	free_msg(BMSG_NEGOTIATE_RESP, d);

	static const char *const absent[] = {
	    "{\"Result\":0,\"Version\":4,\"Capabilities\":{\"RuntimeOsType\":\"Linux\"}}",
	    "{\"Result\":0,\"Version\":4,\"Capabilities\":{\"RuntimeOsType\":\"Linux\","
	    "\"GuestDefinedCapabilities\":null}}",
	    "{\"Result\":0,\"Version\":4}",
	};
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		d = decode_ok(BMSG_NEGOTIATE_RESP, absent[i]);
		if (d->caps.has_guest_defined)
			fail_msg("GuestDefinedCapabilities reported present in %s", absent[i]);
		/* The encoder still emits the object (the guest side always sends it). */
		out = encode_ok(BMSG_NEGOTIATE_RESP, d);
		assert_non_null(strstr(out, "\"GuestDefinedCapabilities\":{}"));
		free(out);
		free_msg(BMSG_NEGOTIATE_RESP, d);
	}

	/* A repeated key: the last occurrence wins; fini clears the flag. */
	d = decode_ok(BMSG_NEGOTIATE_RESP,
	              "{\"Capabilities\":{\"GuestDefinedCapabilities\":{},"
	              "\"GuestDefinedCapabilities\":{\"DumpStacksSupported\":true}}}");
	assert_true(d->caps.has_guest_defined);
	assert_true(d->caps.guest_defined.dump_stacks_supported);
	bridge_negotiate_resp_fini(d);
	assert_false(d->caps.has_guest_defined);
	free(d);

	char msg[ERR_MSG_MAX];
	assert_int_equal(decode_err(BMSG_NEGOTIATE_RESP,
	                            "{\"Capabilities\":{\"GuestDefinedCapabilities\":[]}}", msg),
	                 -EBADMSG);
	assert_string_equal(msg, "NegotiateProtocol response: Capabilities: "
	                         "GuestDefinedCapabilities: want object, got array");
}

/* The null container's Create (cold start): the Go host's bytes, a round trip, and the
 * guest's decode of the same bytes as an ordinary Create (zero fields). */
static void test_null_create(void **state)
{
	(void)state;
	static const char want[] =
	    "{\"ContainerId\":\"" Z "\"," A ",\"ContainerConfig\":\"{\\\"SystemType\\\":"
	    "\\\"Container\\\",\\\"TimeZoneInformation\\\":null}\"}\n";
	struct bridge_null_create_req q = {0};
	q.base.container_id = (char *)Z;
	q.config.system_type = (char *)"Container";
	char *out = encode_ok(BMSG_NULL_CREATE_REQ, &q);
	assert_string_equal(out, want);

	struct bridge_null_create_req *d = decode_ok(BMSG_NULL_CREATE_REQ, out);
	assert_string_equal(d->base.container_id, Z);
	assert_string_equal(d->config.system_type, "Container");
	assert_null(d->config.time_zone_information);
	char *again = encode_ok(BMSG_NULL_CREATE_REQ, d);
	assert_string_equal(again, want);
	free(again);
	free_msg(BMSG_NULL_CREATE_REQ, d);

	struct bridge_create_req *g = decode_ok(BMSG_CREATE_REQ, out);
	assert_null(g->config.oci_bundle_path);
	assert_null(g->config.scratch_dir_path);
	assert_int_equal(g->config.schema_version.major, 0);
	free_msg(BMSG_CREATE_REQ, g);
	free(out);

	/* A Windows-style config with a time zone object passes it through. */
	struct bridge_null_create_req w = {0};
	w.config.system_type = xstrdup("Container");
	w.config.time_zone_information = json_pack("{s:i}", "Bias", 480);
	out = encode_ok(BMSG_NULL_CREATE_REQ, &w);
	assert_non_null(strstr(out, "\\\"TimeZoneInformation\\\":{\\\"Bias\\\":480}"));
	assert_non_null(strstr(out, "\"ContainerId\":\"\"")); /* NULL id = "" */
	bridge_null_create_req_fini(&w);
	assert_null(w.config.system_type);
	assert_null(w.config.time_zone_information);
	free(out);

	/* The kind is host-side only: never chosen by message type. */
	assert_int_equal(bridge_msg_kind_for_type(0x10100101), BMSG_CREATE_REQ);
	assert_string_equal(bridge_msg_kind_name(BMSG_NULL_CREATE_REQ), "Create (null container)");

	char msg[ERR_MSG_MAX];
	assert_int_equal(decode_err(BMSG_NULL_CREATE_REQ, "{\"ContainerId\":\"x\"}", msg),
	                 -EBADMSG);
	assert_string_equal(msg, "Create (null container): ContainerConfig: missing");
	assert_int_equal(decode_err(BMSG_NULL_CREATE_REQ,
	                            "{\"ContainerConfig\":\"{\\\"SystemType\\\":1}\"}", msg),
	                 -EBADMSG);
	assert_string_equal(msg,
	                    "Create (null container): ContainerConfig: SystemType: want string, "
	                    "got integer");
}

static void test_create_fields(void **state)
{
	(void)state;
	struct bridge_create_req *c = decode_ok(BMSG_CREATE_REQ, samples[7].json);
	assert_string_equal(c->base.container_id, CID);
	assert_int_equal(c->config.schema_version.major, 2);
	assert_int_equal(c->config.schema_version.minor, 1);
	assert_string_equal(c->config.oci_bundle_path, "/run/gcs/c/" CID);
	assert_string_equal(c->config.scratch_dir_path, "/run/gcs/c/" CID "/scratch/" CID);
	assert_non_null(c->config.oci_specification);
	json_t *args =
	    json_object_get(json_object_get(c->config.oci_specification, "process"), "args");
	assert_string_equal(json_string_value(json_array_get(args, 0)), "/pause");
	free_msg(BMSG_CREATE_REQ, c);

	char msg[ERR_MSG_MAX];
	assert_int_equal(decode_err(BMSG_CREATE_REQ, "{\"ContainerId\":\"x\"}", msg), -EBADMSG);
	assert_string_equal(msg, "Create: ContainerConfig: missing");
	assert_int_equal(decode_err(BMSG_CREATE_REQ, "{\"ContainerConfig\":\"\"}", msg), -EBADMSG);
	assert_string_equal(msg, "Create: ContainerConfig: empty JSON document");
	assert_int_equal(
	    decode_err(BMSG_CREATE_REQ, "{\"ContainerConfig\":\"{\\\"SchemaVersion\\\":3}\"}", msg),
	    -EBADMSG);
	assert_string_equal(msg,
	                    "Create: ContainerConfig: SchemaVersion: want object, got integer");
	assert_int_equal(decode_err(BMSG_CREATE_REQ, "{\"ContainerConfig\":\"{nope\"}", msg),
	                 -EBADMSG);
	assert_non_null(strstr(msg, "Create: ContainerConfig: invalid JSON in string"));

	/* The null container's config of another schema decodes to zero fields. */
	struct bridge_create_req *n = decode_ok(
	    BMSG_CREATE_REQ, "{\"ContainerConfig\":\"{\\\"SystemType\\\":\\\"Container\\\"}\"}");
	assert_null(n->config.oci_bundle_path);
	assert_string_equal(n->base.container_id, "");
	free_msg(BMSG_CREATE_REQ, n);
}

static void test_exec_fields(void **state)
{
	(void)state;
	struct bridge_exec_req *x = decode_ok(BMSG_EXEC_REQ, samples[11].json);
	assert_true(x->params.create_std_in_pipe);
	assert_true(x->params.create_std_err_pipe);
	assert_null(x->params.oci_process); /* absent: the init process */
	assert_int_equal(x->stdio.std_in, 0x40000001);
	assert_int_equal(x->stdio.std_err, 0x40000003);
	free_msg(BMSG_EXEC_REQ, x);

	x = decode_ok(BMSG_EXEC_REQ, samples[12].json);
	assert_non_null(x->params.oci_process); /* present: exec */
	assert_false(x->params.create_std_in_pipe);
	assert_int_equal(x->stdio.std_in, 0);
	assert_int_equal(x->stdio.std_out, 0x40000004);
	free_msg(BMSG_EXEC_REQ, x);

	x = decode_ok(BMSG_EXEC_REQ, samples[13].json);
	assert_int_equal(x->params.n_command_args, 3);
	assert_string_equal(x->params.command_args[2], "a<b"); /* \u003c in the inner JSON */
	assert_int_equal(x->params.n_environment, 2);
	assert_string_equal(x->params.environment[1].key, "PATH");
	assert_string_equal(x->params.environment[1].value, "/bin");
	assert_true(x->params.emulate_console);
	free_msg(BMSG_EXEC_REQ, x);

	/* OciProcess null = absent; VsockStdioRelaySettings {} always emitted by the host. */
	struct bridge_exec_req *y = decode_ok(
	    BMSG_EXEC_REQ, "{\"Settings\":{\"ProcessParameters\":\"{\\\"OciProcess\\\":null}\"}}");
	assert_null(y->params.oci_process);
	char *out = encode_ok(BMSG_EXEC_REQ, y);
	assert_string_equal(out, "{\"ContainerId\":\"\"," A
	                         ",\"Settings\":{\"ProcessParameters\":\"{}\","
	                         "\"VsockStdioRelaySettings\":{}}}\n");
	free(out);
	free_msg(BMSG_EXEC_REQ, y);

	/* Environment is emitted with sorted keys, like a Go map. */
	struct bridge_kv env[] = {{"Z", "1"}, {"B", "2"}};
	struct bridge_exec_req z = {.params = {.environment = env, .n_environment = 2}};
	out = encode_ok(BMSG_EXEC_REQ, &z);
	assert_non_null(
	    strstr(out, "{\\\"Environment\\\":{\\\"B\\\":\\\"2\\\",\\\"Z\\\":\\\"1\\\"}}"));
	free(out);

	char msg[ERR_MSG_MAX];
	assert_int_equal(
	    decode_err(BMSG_EXEC_REQ,
	               "{\"Settings\":{\"ProcessParameters\":\"{\\\"CreateStdInPipe\\\":1}\"}}",
	               msg),
	    -EBADMSG);
	assert_string_equal(msg,
	                    "ExecuteProcess: Settings: ProcessParameters: CreateStdInPipe: want "
	                    "bool, got integer");
	assert_int_equal(
	    decode_err(
	        BMSG_EXEC_REQ,
	        "{\"Settings\":{\"ProcessParameters\":\"{\\\"CommandArgs\\\":[\\\"a\\\",2]}\"}}",
	        msg),
	    -EBADMSG);
	assert_string_equal(msg,
	                    "ExecuteProcess: Settings: ProcessParameters: CommandArgs: [1]: want "
	                    "string, got integer");
	assert_int_equal(
	    decode_err(BMSG_EXEC_REQ,
	               "{\"Settings\":{\"ProcessParameters\":\"{}\",\"VsockStdioRelaySettings\":"
	               "{\"StdIn\":4294967296}}}",
	               msg),
	    -EBADMSG);
	assert_string_equal(msg, "ExecuteProcess: Settings: VsockStdioRelaySettings: StdIn: value "
	                         "4294967296 out of range for u32");
	assert_int_equal(decode_err(BMSG_EXEC_REQ, "{\"Settings\":{}}", msg), -EBADMSG);
	assert_string_equal(msg, "ExecuteProcess: Settings: ProcessParameters: missing");
	assert_int_equal(
	    decode_err(BMSG_EXEC_REQ,
	               "{\"Settings\":{\"ProcessParameters\":\"{\\\"OciProcess\\\":[]}\"}}", msg),
	    -EBADMSG);
	assert_int_equal(bridge_msg_hresult(-EBADMSG), HR_VMCOMPUTE_INVALID_JSON);
}

static void test_host_bytes_quirks(void **state)
{
	(void)state;
	/* Different key case, whitespace, escaped characters, extra keys, trailing "\r\n ". */
	static const char in[] =
	    "{ \"containerid\" : \"a\\u003cb\\u0026c\", \"ACTIVITYID\":\"E0E16197-DD56-4A10-9195-"
	    "5EE7A155A838\", \"processId\":7, \"timeoutinms\":50, \"Unknown\":[1,{\"x\":null}],"
	    "\"otsc\":null }\r\n ";
	struct bridge_wait_req w;
	struct err e = {0};
	assert_int_equal(bridge_wait_req_decode(in, strlen(in), &w, &e), 0);
	assert_string_equal(w.base.container_id, "a<b&c");
	assert_string_equal(w.base.activity_id, "e0e16197-dd56-4a10-9195-5ee7a155a838");
	assert_int_equal(w.process_id, 7);
	assert_int_equal(w.timeout_in_ms, 50);
	assert_null(w.base.otsc);
	char *out = encode_ok(BMSG_WAIT_REQ, &w);
	/* host style: no HTML escaping */
	assert_string_equal(out,
	                    "{\"ContainerId\":\"a<b&c\",\"ActivityId\":\"e0e16197-dd56-4a10-9195-"
	                    "5ee7a155a838\",\"ProcessId\":7,\"TimeoutInMs\":50}\n");
	free(out);
	bridge_wait_req_fini(&w);

	/* Duplicate keys: the last one wins (and the first is freed). */
	static const char dup[] = "{\"ContainerId\":\"first\",\"containerId\":\"second\"}";
	struct bridge_req_base b;
	assert_int_equal(bridge_msg_peek_base(dup, strlen(dup), &b, &e), 0);
	assert_string_equal(b.container_id, "second");
	assert_string_equal(b.activity_id, "");
	bridge_req_base_fini(&b);
	bridge_req_base_fini(&b); /* twice is fine */
}

static void test_guest_escaping(void **state)
{
	(void)state;
	struct bridge_dump_stacks_resp d = {.guest_stacks = "<a&b>\x01\x1f\t\"\\\x7f"
	                                                    "\xe2\x80\xa8\xc3\xa9\xff\xc0\x80"};
	char *out = encode_ok(BMSG_DUMP_STACKS_RESP, &d);
	assert_string_equal(out, "{\"Result\":0,\"GuestStacks\":\"\\u003ca\\u0026b\\u003e\\u0001"
	                         "\\u001f\\t\\\"\\\\\x7f\\u2028\xc3\xa9\\ufffd\\ufffd\\ufffd\"}");
	struct bridge_dump_stacks_resp back;
	assert_int_equal(bridge_dump_stacks_resp_decode(out, strlen(out), &back, NULL), 0);
	assert_string_equal(back.guest_stacks, "<a&b>\x01\x1f\t\"\\\x7f\xe2\x80\xa8\xc3\xa9"
	                                       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	bridge_dump_stacks_resp_fini(&back);
	free(out);

	/* AnyInString: the inner document is HTML-escaped even in a host request. */
	char *args[] = {"echo", "<x>"};
	struct bridge_exec_req x = {.params = {.command_args = args, .n_command_args = 2}};
	out = encode_ok(BMSG_EXEC_REQ, &x);
	assert_non_null(strstr(out, "\\\"\\\\u003cx\\\\u003e\\\""));
	struct bridge_exec_req *y = decode_ok(BMSG_EXEC_REQ, out);
	assert_string_equal(y->params.command_args[1], "<x>");
	free_msg(BMSG_EXEC_REQ, y);
	free(out);
}

static void test_signal_options(void **state)
{
	(void)state;
	struct bridge_signal_req *s = decode_ok(BMSG_SIGNAL_REQ, samples[18].json);
	assert_true(s->has_options);
	assert_int_equal(s->signal, 15);
	free_msg(BMSG_SIGNAL_REQ, s);
	s = decode_ok(BMSG_SIGNAL_REQ, samples[19].json);
	assert_false(s->has_options);
	free_msg(BMSG_SIGNAL_REQ, s);
	s = decode_ok(BMSG_SIGNAL_REQ, "{\"ProcessId\":1,\"Options\":null}");
	assert_false(s->has_options);
	free_msg(BMSG_SIGNAL_REQ, s);
	s = decode_ok(BMSG_SIGNAL_REQ, "{\"ProcessId\":1,\"Options\":{}}");
	assert_true(s->has_options);
	assert_int_equal(s->signal, 0);
	char *out = encode_ok(BMSG_SIGNAL_REQ, s);
	assert_non_null(strstr(out, "\"ProcessId\":1,\"Options\":{}}"));
	free(out);
	free_msg(BMSG_SIGNAL_REQ, s);
	char msg[ERR_MSG_MAX];
	assert_int_equal(decode_err(BMSG_SIGNAL_REQ, "{\"Options\":{\"Signal\":\"TERM\"}}", msg),
	                 -EBADMSG);
	assert_string_equal(msg, "SignalProcess: Options: Signal: want integer, got string");
}

static void test_resize_ranges(void **state)
{
	(void)state;
	char msg[ERR_MSG_MAX];
	assert_int_equal(decode_err(BMSG_RESIZE_REQ, "{\"Height\":70000}", msg), -EBADMSG);
	assert_string_equal(msg, "ResizeConsole: Height: value 70000 out of range for u16");
	assert_int_equal(decode_err(BMSG_RESIZE_REQ, "{\"Width\":-1}", msg), -EBADMSG);
	assert_int_equal(decode_err(BMSG_RESIZE_REQ, "{\"Width\":1.5}", msg), -EBADMSG);
	assert_string_equal(msg, "ResizeConsole: Width: want integer, got number");
	assert_int_equal(decode_err(BMSG_RESIZE_REQ, "{\"Width\":true}", msg), -EBADMSG);
	assert_int_equal(decode_err(BMSG_RESIZE_REQ, "{\"Width\":65535,\"Height\":0}", msg), 0);
	assert_int_equal(decode_err(BMSG_RESP_BASE, "{\"Result\":2147483648}", msg), -EBADMSG);
	assert_string_equal(msg, "response: Result: value 2147483648 out of range for i32");
	assert_int_equal(decode_err(BMSG_RESP_BASE, "{\"Result\":-2147483648}", msg), 0);
}

static void test_bad_payloads(void **state)
{
	(void)state;
	char msg[ERR_MSG_MAX];
	static const char *bad[] = {
	    "",
	    "   ",
	    "[]",
	    "\"x\"",
	    "{",
	    "{}x",
	    "{} {}",
	    "{\"ContainerId\":1}",
	    "{\"ContainerId\":\"a\\u0000b\"}",
	    "{\"ContainerId\":\"\xff\"}",
	    "{\"ProcessId\":99999999999999999999999}",
	    "{\"otsc\":\"x\"}",
	    "{\"ContainerId\":\"\\ud800\"}",
	    "{\"ProcessId\":1.0}",
	    "{\"ProcessId\":\"1\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(decode_err(BMSG_WAIT_REQ, bad[i], msg), -EBADMSG);
	assert_int_equal(decode_err(BMSG_WAIT_REQ, "{\"ActivityId\":\"nope\"}", msg), -EINVAL);
	assert_string_equal(msg, "WaitForProcess: ActivityId: invalid GUID \"nope\"");
	assert_int_equal(decode_err(BMSG_WAIT_RESP, "{\"ActivityId\":\"\"}", msg), -EINVAL);
	assert_int_equal(bridge_msg_hresult(-EINVAL), HR_VMCOMPUTE_INVALID_JSON);
	assert_int_equal(bridge_msg_hresult(-ENOTSUP), HR_FAIL);
	assert_int_equal(decode_err(BMSG_NOTIFICATION, "{\"ActivityId\":\"1234\"}", msg), -EINVAL);

	/* A NUL byte inside the payload ends nothing: it is rejected. */
	struct bridge_req_base b;
	assert_int_equal(bridge_msg_peek_base("{}\0{}", 5, &b, NULL), -EBADMSG);
	assert_int_equal(bridge_msg_decode(BMSG_NONE, "{}", 2, &b, NULL), -EINVAL);
	assert_int_equal(bridge_msg_decode(BMSG_KIND_COUNT, "{}", 2, &b, NULL), -EINVAL);
}

static void test_limits(void **state)
{
	(void)state;
	/* A string over BRIDGE_MSG_MAX_STRING and an array over BRIDGE_MSG_MAX_ITEMS. */
	size_t n = BRIDGE_MSG_MAX_STRING + 64;
	char *big = xmalloc(n);
	int off = snprintf(big, n, "{\"ContainerId\":\"");
	memset(big + off, 'a', BRIDGE_MSG_MAX_STRING + 1);
	strcpy(big + off + BRIDGE_MSG_MAX_STRING + 1, "\"}");
	char msg[ERR_MSG_MAX];
	assert_int_equal(decode_err(BMSG_REQ_BASE, big, msg), -EBADMSG);
	assert_non_null(strstr(msg, "over the limit"));
	free(big);

	size_t items = BRIDGE_MSG_MAX_ITEMS + 1;
	char *arr = xmalloc(items * 6 + 128);
	char *p = arr + sprintf(arr, "{\"Query\":\"{\\\"PropertyTypes\\\":[");
	for (size_t i = 0; i < items; i++)
		p += sprintf(p, "%s\\\"\\\"", i ? "," : "");
	strcpy(p, "]}\"}");
	/* every entry is a value: the count refuses the document before a tree is built */
	assert_int_equal(decode_err(BMSG_PROPS_REQ, arr, msg), -EBADMSG);
	assert_non_null(strstr(msg, "GetProperties: Query: JSON of "));
	assert_non_null(strstr(msg, "values over the limit of 65536"));
	free(arr);

	/* value units: objects 4, arrays 2, keys and scalars 1; strings hide their brackets */
	struct err e;
	assert_int_equal(bridge_json_check("{\"a\":[1,-2.5e3,true,null,\"{[\\\"\"]}", 31, &e),
	                 4 + 1 + 2 + 5);
	assert_int_equal(bridge_json_check("", 0, &e), 0);
	/* the outer payload and its AnyInString document are counted apart: 40000 entries in
	 * the document are fine, the outer object holds two strings */
	char *ok = xmalloc(40000 * 6 + 128);
	p = ok + sprintf(ok, "{\"Query\":\"{\\\"PropertyTypes\\\":[");
	for (size_t i = 0; i < 40000; i++)
		p += sprintf(p, "%s\\\"x\\\"", i ? "," : "");
	strcpy(p, "]}\"}");
	struct bridge_props_req q;
	assert_int_equal(bridge_msg_decode(BMSG_PROPS_REQ, ok, strlen(ok), &q, &e), 0);
	assert_int_equal(q.n_property_types, 40000);
	bridge_msg_fini(BMSG_PROPS_REQ, &q);
	free(ok);
	/* 16384 empty objects weigh 65536 + 2: refused */
	char *objs = xmalloc(16384 * 3 + 8);
	p = objs + sprintf(objs, "[");
	for (size_t i = 0; i < 16384; i++)
		p += sprintf(p, "%s{}", i ? "," : "");
	strcpy(p, "]");
	assert_int_equal(bridge_json_check(objs, strlen(objs), &e), -EBADMSG);
	objs[3 * 16383 - 1] = ']'; /* one object fewer: 65534 units */
	assert_int_equal(bridge_json_check(objs, 3 * 16383, &e), 65534);
	free(objs);
}

static void test_properties(void **state)
{
	(void)state;
	struct bridge_props_req *q = decode_ok(BMSG_PROPS_REQ, samples[21].json);
	assert_int_equal(q->n_property_types, 1);
	assert_string_equal(q->property_types[0], "ProcessList");
	free_msg(BMSG_PROPS_REQ, q);
	q = decode_ok(BMSG_PROPS_REQ, "{\"Query\":\"\"}");
	assert_int_equal(q->n_property_types, 0);
	char *out = encode_ok(BMSG_PROPS_REQ, q);
	assert_string_equal(out, "{\"ContainerId\":\"\"," A ",\"Query\":\"{}\"}\n");
	free(out);
	free_msg(BMSG_PROPS_REQ, q);

	struct bridge_props_resp *r = decode_ok(BMSG_PROPS_RESP, samples[22].json);
	assert_int_equal(r->props.n_process_list, 1);
	assert_int_equal(r->props.process_list[0].process_id, 812);
	free_msg(BMSG_PROPS_RESP, r);

	/* Properties is always present; metrics pass through. */
	struct bridge_props_resp m = {0};
	m.props.lcow_metrics = json_pack("{s:{s:i}}", "pids", "current", 3);
	out = encode_ok(BMSG_PROPS_RESP, &m);
	assert_string_equal(out,
	                    "{\"Result\":0,\"Properties\":\"{\\\"LCOWMetrics\\\":{\\\"pids\\\":"
	                    "{\\\"current\\\":3}}}\"}");
	free(out);
	bridge_props_resp_fini(&m);
	assert_null(m.props.lcow_metrics);
}

static void test_modify_settings(void **state)
{
	(void)state;
	struct err e = {0};
	struct bridge_modify_req *m = decode_ok(BMSG_MODIFY_REQ, samples[3].json);
	assert_string_equal(m->request_type, "Add");
	assert_int_equal(bridge_resource_parse(m->resource_type), BRES_MAPPED_VIRTUAL_DISK);
	struct bridge_mapped_virtual_disk d;
	assert_int_equal(bridge_modify_req_settings(m, &d, &e), 0);
	assert_string_equal(d.mount_path, "/run/gcs/c/" CID);
	assert_int_equal(d.lun, 1);
	assert_int_equal(d.controller, 0);
	assert_true(d.ensure_filesystem);
	assert_string_equal(d.filesystem, "ext4");
	/* Lun 0 and Controller 0 are omitted on the way back. */
	d.lun = 0;
	json_t *j = bridge_settings_to_json(BRES_MAPPED_VIRTUAL_DISK, &d);
	char *s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"MountPath\":\"/run/gcs/c/" CID "\",\"EnsureFilesystem\":true,"
	                       "\"Filesystem\":\"ext4\"}");
	free(s);
	json_decref(j);
	bridge_settings_fini(BRES_MAPPED_VIRTUAL_DISK, &d);
	free_msg(BMSG_MODIFY_REQ, m);

	m = decode_ok(BMSG_MODIFY_REQ, samples[4].json);
	struct bridge_combined_layers l;
	assert_int_equal(bridge_modify_req_settings(m, &l, &e), 0);
	assert_string_equal(l.container_id, CID);
	assert_int_equal(l.n_layers, 1);
	assert_string_equal(l.layers[0].path, "/run/layers/p0");
	bridge_settings_fini(BRES_COMBINED_LAYERS, &l);
	free_msg(BMSG_MODIFY_REQ, m);

	m = decode_ok(BMSG_MODIFY_REQ, samples[5].json);
	struct bridge_network_adapter n;
	assert_int_equal(bridge_modify_req_settings(m, &n, &e), 0);
	assert_string_equal(n.id, "nic");
	assert_int_equal(n.ip_configs[0].prefix_length, 24);
	assert_string_equal(n.routes[0].destination_prefix, "0.0.0.0/0");
	assert_int_equal(n.routes[0].metric, 0);
	bridge_settings_fini(BRES_NETWORK, &n);
	free_msg(BMSG_MODIFY_REQ, m);

	/* Absent RequestType means "Add", even with no "Request" at all (found by fuzzing). */
	m = decode_ok(BMSG_MODIFY_REQ, "{\"Contain\":{}}");
	assert_string_equal(m->request_type, "Add");
	assert_null(m->resource_type);
	free_msg(BMSG_MODIFY_REQ, m);

	/* Absent RequestType means "Add"; absent Settings decode to zeros. */
	m = decode_ok(BMSG_MODIFY_REQ, "{\"Request\":{\"ResourceType\":\"SCSIDevice\"}}");
	assert_string_equal(m->request_type, "Add");
	struct bridge_scsi_device sd = {.lun = 9};
	assert_int_equal(bridge_modify_req_settings(m, &sd, &e), 0);
	assert_int_equal(sd.lun, 0);
	free_msg(BMSG_MODIFY_REQ, m);

	/* Type errors name the resource and field. */
	m = decode_ok(BMSG_MODIFY_REQ, "{\"Request\":{\"RequestType\":\"Remove\",\"ResourceType\":"
	                               "\"MappedVirtualDisk\",\"Settings\":{\"Lun\":256}}}");
	assert_string_equal(m->request_type, "Remove");
	assert_int_equal(bridge_modify_req_settings(m, &d, &e), -EBADMSG);
	assert_string_equal(e.msg, "ModifySettings: MappedVirtualDisk: Lun: value 256 out of range "
	                           "for u8");
	free_msg(BMSG_MODIFY_REQ, m);

	/* VPMem MappingInfo presence, constraints' Windows always emitted. */
	struct bridge_vpmem_device v = {.device_number = 2, .has_mapping_info = true};
	v.mapping_info.device_size_in_bytes = 4096;
	j = bridge_settings_to_json(BRES_VPMEM_DEVICE, &v);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"DeviceNumber\":2,\"MappingInfo\":{\"DeviceSizeInBytes\":4096}}");
	struct bridge_vpmem_device v2;
	assert_int_equal(bridge_settings_decode(BRES_VPMEM_DEVICE, j, &v2, &e), 0);
	assert_true(v2.has_mapping_info);
	assert_int_equal(v2.mapping_info.device_size_in_bytes, 4096);
	bridge_settings_fini(BRES_VPMEM_DEVICE, &v2);
	free(s);
	json_decref(j);
	struct bridge_container_constraints cc = {0};
	j = bridge_settings_to_json(BRES_CONTAINER_CONSTRAINTS, &cc);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"Windows\":{}}");
	free(s);
	json_decref(j);

	/* Resource names: exact match; Linux rejects the WCOW ones. */
	assert_int_equal(bridge_resource_parse("mappedvirtualdisk"), BRES_UNKNOWN);
	assert_int_equal(bridge_resource_parse("PodCgroupMemoryLimit"),
	                 BRES_POD_CGROUP_MEMORY_LIMIT);
	assert_true(bridge_resource_linux_supported(BRES_POD_CGROUP_MEMORY_LIMIT));
	static const char *rejected[] = {"NetworkNamespace", "HvSocket",
	                                 "MappedVirtualDiskForContainerScratch", "WCOWBlockCims",
	                                 "CWCOWCombinedLayers"};
	for (size_t i = 0; i < 5; i++) {
		enum bridge_resource r = bridge_resource_parse(rejected[i]);
		assert_int_not_equal(r, BRES_UNKNOWN);
		assert_false(bridge_resource_linux_supported(r));
		assert_string_equal(bridge_resource_name(r), rejected[i]);
	}
	assert_int_equal(bridge_settings_decode(BRES_HV_SOCKET, NULL, &sd, &e), -ENOTSUP);
	struct bridge_modify_req bad = {.resource_type = "Bogus"};
	assert_int_equal(bridge_modify_req_settings(&bad, &sd, &e), -ENOTSUP);
	assert_int_equal(bridge_msg_hresult(-ENOTSUP), HR_FAIL);
}

static void test_notification(void **state)
{
	(void)state;
	/* Spec §8: with ContainerId "abc" and UnexpectedExit the payload is 127 bytes. */
	struct bridge_notification n = {
	    .container_id = "abc", .type = "UnexpectedExit", .operation = "None"};
	char *out = encode_ok(BMSG_NOTIFICATION, &n);
	assert_int_equal(strlen(out), 127);
	assert_non_null(strstr(out, A)); /* zero GUID by default */
	assert_null(strstr(out, "ResultInfo"));
	free(out);
	struct buf b;
	buf_init(&b);
	assert_int_equal(
	    bridge_msg_encode_frame(&b, BRIDGE_NOTIFY_CONTAINER, 0, BMSG_NOTIFICATION, &n, NULL),
	    0);
	static const uint8_t hdr[16] = {0x01, 0x01, 0x10, 0x30, 0x8f};
	assert_memory_equal(buf_head(&b), hdr, 16);
	buf_fini(&b);

	struct bridge_notification *d =
	    decode_ok(BMSG_NOTIFICATION, "{\"ContainerId\":\"x\",\"ResultInfo\":\"\"}");
	assert_null(d->result_info);
	assert_string_equal(d->activity_id, "");
	out = encode_ok(BMSG_NOTIFICATION, d);
	assert_string_equal(out, "{\"ContainerId\":\"x\"," A ",\"Type\":\"\",\"Operation\":\"\","
	                         "\"Result\":0}");
	free(out);
	free_msg(BMSG_NOTIFICATION, d);
	d = decode_ok(BMSG_NOTIFICATION, samples[30].json);
	assert_int_equal(json_integer_value(json_object_get(d->result_info, "a")), 1);
	free_msg(BMSG_NOTIFICATION, d);
}

static void test_error_builder(void **state)
{
	(void)state;
	char *out;
	size_t len;
	bridge_msg_error_response(HR_VMCOMPUTE_TIMEOUT, NULL, Z, &out, &len);
	assert_string_equal(out, samples[17].json);
	assert_int_equal(len, strlen(samples[17].json));
	free(out);
	bridge_msg_error_response(HR_NOTIMPL, "bridge: function not supported, header type: <x>",
	                          NULL, &out, &len);
	assert_string_equal(out,
	                    "{\"Result\":-2147467263,\"ErrorMessage\":\"bridge: function not "
	                    "supported, header type: \\u003cx\\u003e\",\"ErrorRecords\":[{"
	                    "\"Result\":-2147467263,\"Message\":\"bridge: function not supported, "
	                    "header type: \\u003cx\\u003e\",\"ModuleName\":\"gcs\",\"FileName\":"
	                    "\"\",\"Line\":4294967295}]}");
	free(out);

	/* A failed typed response carries no type-specific fields (no ExitCode). */
	struct bridge_wait_resp w = {.exit_code = 3};
	strcpy(w.base.activity_id, Z);
	bridge_resp_base_set_error(&w.base, HR_ERR_NOT_FOUND, "not found");
	bridge_resp_base_set_error(&w.base, HR_ERR_NOT_FOUND, "again");
	out = encode_ok(BMSG_WAIT_RESP, &w);
	assert_null(strstr(out, "ExitCode"));
	assert_non_null(strstr(out, "\"ErrorMessage\":\"again\""));
	struct bridge_wait_resp back;
	assert_int_equal(bridge_wait_resp_decode(out, strlen(out), &back, NULL), 0);
	assert_int_equal(back.base.result, HR_ERR_NOT_FOUND);
	assert_int_equal(back.base.n_error_records, 2);
	assert_int_equal(back.base.error_records[1].line, UINT32_MAX);
	assert_string_equal(back.base.error_records[0].module_name, "gcs");
	bridge_wait_resp_fini(&back);
	free(out);
	bridge_wait_resp_fini(&w);
}

static void test_kinds_and_frames(void **state)
{
	(void)state;
	assert_int_equal(bridge_msg_kind_for_type(0x10100501), BMSG_EXEC_REQ);
	assert_int_equal(bridge_msg_kind_for_type(0x20100501), BMSG_EXEC_RESP);
	assert_int_equal(bridge_msg_kind_for_type(0x20100701), BMSG_RESP_BASE);
	assert_int_equal(bridge_msg_kind_for_type(0x10100c01), BMSG_REQ_BASE);
	assert_int_equal(bridge_msg_kind_for_type(0x20100c01), BMSG_DUMP_STACKS_RESP);
	assert_int_equal(bridge_msg_kind_for_type(0x30100101), BMSG_NOTIFICATION);
	assert_int_equal(bridge_msg_kind_for_type(0x10100e01), BMSG_NONE);
	assert_int_equal(bridge_msg_kind_for_type(0x10200101), BMSG_NONE);
	assert_int_equal(bridge_msg_kind_for_type(0x30100501), BMSG_NONE);
	assert_string_equal(bridge_msg_kind_name(BMSG_NONE), "unknown");
	assert_int_equal(bridge_msg_struct_size(BMSG_NONE), 0);

	/* Guest messages are capped at 64 KiB, host requests are not. */
	char *big = xmalloc(70000);
	memset(big, 'x', 69999);
	big[69999] = 0;
	struct bridge_dump_stacks_resp d = {.guest_stacks = big};
	struct buf b;
	struct err e = {0};
	buf_init(&b);
	assert_int_equal(bridge_msg_encode_frame(&b, 0x20100c01, 5, BMSG_DUMP_STACKS_RESP, &d, &e),
	                 -EMSGSIZE);
	assert_int_equal(buf_avail(&b), 0);
	struct bridge_req_base r = {.container_id = big};
	assert_int_equal(bridge_msg_encode_frame(&b, 0x10100201, 5, BMSG_REQ_BASE, &r, &e), 0);
	struct bridge_hdr h;
	const uint8_t *payload;
	size_t len;
	assert_int_equal(bridge_frame_peek(&b, 0, &h, &payload, &len, &e), 1);
	assert_int_equal(h.id, 5);
	assert_int_equal(payload[len - 1], '\n');
	buf_fini(&b);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_samples_round_trip),
	    cmocka_unit_test(test_peek_base_every_request),
	    cmocka_unit_test(test_negotiate_linux_bytes),
	    cmocka_unit_test(test_negotiate_ferry_caps),
	    cmocka_unit_test(test_negotiate_gdc_presence),
	    cmocka_unit_test(test_null_create),
	    cmocka_unit_test(test_create_fields),
	    cmocka_unit_test(test_exec_fields),
	    cmocka_unit_test(test_host_bytes_quirks),
	    cmocka_unit_test(test_guest_escaping),
	    cmocka_unit_test(test_signal_options),
	    cmocka_unit_test(test_resize_ranges),
	    cmocka_unit_test(test_bad_payloads),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_properties),
	    cmocka_unit_test(test_modify_settings),
	    cmocka_unit_test(test_notification),
	    cmocka_unit_test(test_error_builder),
	    cmocka_unit_test(test_kinds_and_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
