/* GCS bridge message bodies (bridge/msg.h): the field tables of every request, response and
 * the container notification, in Go struct order with Go's omitempty choices, and the
 * public entry points that pick a table by message kind and run the engine of msg_json.c.
 * Wire facts come from ../shared/spec/gcs-bridge.md §3.3 and §4. */
#include "bridge/msg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bridge/frame.h"
#include "bridge/msg_schema.h"
#include "bridge/proto.h"
#include "common/xalloc.h"

/* ---------------------------------------------------------------------------------------
 * Bases */

#define T struct bridge_req_base
static const struct msg_field req_base_f[] = {
    MF_DEF(T, container_id, "ContainerId", 0, ""),
    MF(T, activity_id, "ActivityId", FT_GUID, F_ZGUID),
    MF(T, otsc, "otsc", FT_JSON, F_OMIT),
};
MSG_SCHEMA(req_base_s, "request", T, req_base_f);
#undef T

#define T struct bridge_error_record
static const struct msg_field error_record_f[] = {
    MF(T, result, "Result", FT_I32, 0),
    MF(T, message, "Message", FT_STR, 0),
    MF(T, stack_trace, "StackTrace", FT_STR, F_OMIT),
    MF(T, module_name, "ModuleName", FT_STR, 0),
    MF(T, file_name, "FileName", FT_STR, 0),
    MF(T, line, "Line", FT_U32, 0),
    MF(T, function_name, "FunctionName", FT_STR, F_OMIT),
};
MSG_SCHEMA(error_record_s, "ErrorRecord", T, error_record_f);
#undef T

#define T struct bridge_resp_base
static const struct msg_field resp_base_f[] = {
    MF(T, result, "Result", FT_I32, 0),
    MF(T, activity_id, "ActivityId", FT_GUID, F_OMIT),
    MF(T, error_message, "ErrorMessage", FT_STR, F_OMIT),
    MF_N(T, error_records, "ErrorRecords", FT_OBJV, F_OMIT, &error_record_s),
};
MSG_SCHEMA(resp_base_s, "response", T, resp_base_f);
#undef T

#define T struct bridge_version
static const struct msg_field version_f[] = {
    MF(T, major, "Major", FT_U32, F_OMIT),
    MF(T, minor, "Minor", FT_U32, F_OMIT),
};
MSG_SCHEMA(version_s, "Version", T, version_f);
#undef T

/* ---------------------------------------------------------------------------------------
 * NegotiateProtocol */

#define T struct bridge_ferry_offer
static const struct msg_field ferry_offer_f[] = {
    MF(T, stdio_resume, "StdioResume", FT_U32, F_OMIT),
    MF(T, session, "Session", FT_STR, F_OMIT),
    MF(T, challenge, "Challenge", FT_STR, F_OMIT),
};
MSG_SCHEMA(ferry_offer_s, "Ferry", T, ferry_offer_f);
#undef T

#define T struct bridge_guest_caps
static const struct msg_field guest_caps_f[] = {
    MF(T, namespace_add_request_supported, "NamespaceAddRequestSupported", FT_BOOL, F_OMIT),
    MF(T, signal_process_supported, "SignalProcessSupported", FT_BOOL, F_OMIT),
    MF(T, dump_stacks_supported, "DumpStacksSupported", FT_BOOL, F_OMIT),
    MF(T, delete_container_state_supported, "DeleteContainerStateSupported", FT_BOOL, F_OMIT),
    MF(T, ferry_stdio_resume, "FerryStdioResume", FT_BOOL, F_OMIT),
    MF(T, ferry_session_proof, "FerrySessionProof", FT_STR, F_OMIT),
};
MSG_SCHEMA(guest_caps_s, "GuestDefinedCapabilities", T, guest_caps_f);
#undef T

#define T struct bridge_gcs_caps
static const struct msg_field gcs_caps_f[] = {
    MF(T, send_host_create_message, "SendHostCreateMessage", FT_BOOL, F_OMIT),
    MF(T, send_host_start_message, "SendHostStartMessage", FT_BOOL, F_OMIT),
    MF(T, hv_socket_config_on_startup, "HvSocketConfigOnStartup", FT_BOOL, F_OMIT),
    MF_N(T, supported_schema_versions, "SupportedSchemaVersions", FT_OBJV, F_OMIT, &version_s),
    MF(T, runtime_os_type, "RuntimeOsType", FT_STR, F_OMIT),
    MF_SEEN(T, guest_defined, has_guest_defined, "GuestDefinedCapabilities", 0, &guest_caps_s),
};
MSG_SCHEMA(gcs_caps_s, "Capabilities", T, gcs_caps_f);
#undef T

#define T struct bridge_negotiate_req
static const struct msg_field negotiate_req_f[] = {
    MF_EMBED(T, base, &req_base_s),
    MF(T, minimum_version, "MinimumVersion", FT_U32, 0),
    MF(T, maximum_version, "MaximumVersion", FT_U32, 0),
    MF_SUB(T, ferry, "Ferry", FT_OBJ, F_OMIT, &ferry_offer_s),
};
MSG_SCHEMA(negotiate_req_s, "NegotiateProtocol", T, negotiate_req_f);
#undef T

#define T struct bridge_negotiate_resp
static const struct msg_field negotiate_resp_f[] = {
    MF_EMBED(T, base, &resp_base_s),
    MF(T, version, "Version", FT_U32, 0),
    MF_SUB(T, caps, "Capabilities", FT_OBJ, 0, &gcs_caps_s),
};
MSG_SCHEMA(negotiate_resp_s, "NegotiateProtocol response", T, negotiate_resp_f);
#undef T

/* ---------------------------------------------------------------------------------------
 * Create */

#define T struct bridge_container_settings
static const struct msg_field container_settings_f[] = {
    MF_SUB(T, schema_version, "SchemaVersion", FT_OBJ, 0, &version_s),
    MF(T, oci_bundle_path, "OciBundlePath", FT_STR, F_OMIT),
    MF(T, oci_specification, "OciSpecification", FT_JSON, F_OMIT),
    MF(T, scratch_dir_path, "ScratchDirPath", FT_STR, 0),
};
MSG_SCHEMA(container_settings_s, "ContainerConfig", T, container_settings_f);
#undef T

#define T struct bridge_create_req
static const struct msg_field create_req_f[] = {
    MF_EMBED(T, base, &req_base_s),
    MF_SUB(T, config, "ContainerConfig", FT_ANYSTR, F_REQUIRED, &container_settings_s),
};
MSG_SCHEMA(create_req_s, "Create", T, create_req_f);
#undef T

#define T struct bridge_uvm_config
static const struct msg_field uvm_config_f[] = {
    MF(T, system_type, "SystemType", FT_STR, 0),
    MF(T, time_zone_information, "TimeZoneInformation", FT_JSON, 0),
};
MSG_SCHEMA(uvm_config_s, "ContainerConfig", T, uvm_config_f);
#undef T

#define T struct bridge_null_create_req
static const struct msg_field null_create_req_f[] = {
    MF_EMBED(T, base, &req_base_s),
    MF_SUB(T, config, "ContainerConfig", FT_ANYSTR, F_REQUIRED, &uvm_config_s),
};
MSG_SCHEMA(null_create_req_s, "Create (null container)", T, null_create_req_f);
#undef T

#define T struct bridge_create_resp
static const struct msg_field create_resp_f[] = {
    MF_EMBED(T, base, &resp_base_s),
    MF(T, selected_protocol_version, "SelectedProtocolVersion", FT_U32, 0),
};
MSG_SCHEMA(create_resp_s, "Create response", T, create_resp_f);
#undef T

/* ---------------------------------------------------------------------------------------
 * ExecuteProcess */

#define T struct bridge_process_params
static const struct msg_field process_params_f[] = {
    MF(T, command_line, "CommandLine", FT_STR, F_OMIT),
    MF_N(T, command_args, "CommandArgs", FT_STRV, F_OMIT, NULL),
    MF(T, working_directory, "WorkingDirectory", FT_STR, F_OMIT),
    MF_N(T, environment, "Environment", FT_STRMAP, F_OMIT, NULL),
    MF(T, emulate_console, "EmulateConsole", FT_BOOL, F_OMIT),
    MF(T, create_std_in_pipe, "CreateStdInPipe", FT_BOOL, F_OMIT),
    MF(T, create_std_out_pipe, "CreateStdOutPipe", FT_BOOL, F_OMIT),
    MF(T, create_std_err_pipe, "CreateStdErrPipe", FT_BOOL, F_OMIT),
    MF(T, create_in_utility_vm, "CreateInUtilityVM", FT_BOOL, F_OMIT),
    MF(T, oci_process, "OciProcess", FT_JSON, F_OMIT),
};
MSG_SCHEMA(process_params_s, "ProcessParameters", T, process_params_f);
#undef T

#define T struct bridge_vsock_stdio
static const struct msg_field vsock_stdio_f[] = {
    MF(T, std_in, "StdIn", FT_U32, F_OMIT),
    MF(T, std_out, "StdOut", FT_U32, F_OMIT),
    MF(T, std_err, "StdErr", FT_U32, F_OMIT),
};
MSG_SCHEMA(vsock_stdio_s, "VsockStdioRelaySettings", T, vsock_stdio_f);
#undef T

/* "Settings" is a view onto bridge_exec_req itself (offsets from the request struct). */
#define T struct bridge_exec_req
static const struct msg_field exec_settings_f[] = {
    MF_SUB(T, params, "ProcessParameters", FT_ANYSTR, F_REQUIRED, &process_params_s),
    MF_SUB(T, stdio, "VsockStdioRelaySettings", FT_OBJ, 0, &vsock_stdio_s),
};
MSG_SCHEMA(exec_settings_s, "Settings", T, exec_settings_f);

static const struct msg_field exec_req_f[] = {
    MF_EMBED(T, base, &req_base_s),
    MF_VIEW("Settings", FT_OBJ, F_REQUIRED, &exec_settings_s),
};
MSG_SCHEMA(exec_req_s, "ExecuteProcess", T, exec_req_f);
#undef T

#define T struct bridge_exec_resp
static const struct msg_field exec_resp_f[] = {
    MF_EMBED(T, base, &resp_base_s),
    MF(T, process_id, "ProcessId", FT_U32, 0),
};
MSG_SCHEMA(exec_resp_s, "ExecuteProcess response", T, exec_resp_f);
#undef T

/* ---------------------------------------------------------------------------------------
 * WaitForProcess, SignalProcess, ResizeConsole */

#define T struct bridge_wait_req
static const struct msg_field wait_req_f[] = {
    MF_EMBED(T, base, &req_base_s),
    MF(T, process_id, "ProcessId", FT_U32, 0),
    MF(T, timeout_in_ms, "TimeoutInMs", FT_U32, 0),
};
MSG_SCHEMA(wait_req_s, "WaitForProcess", T, wait_req_f);
#undef T

#define T struct bridge_wait_resp
static const struct msg_field wait_resp_f[] = {
    MF_EMBED(T, base, &resp_base_s),
    MF(T, exit_code, "ExitCode", FT_U32, 0),
};
MSG_SCHEMA(wait_resp_s, "WaitForProcess response", T, wait_resp_f);
#undef T

#define T struct bridge_signal_req
static const struct msg_field signal_options_f[] = {
    MF(T, signal, "Signal", FT_I32, F_OMIT),
};
MSG_SCHEMA(signal_options_s, "Options", T, signal_options_f);

static const struct msg_field signal_req_f[] = {
    MF_EMBED(T, base, &req_base_s),
    MF(T, process_id, "ProcessId", FT_U32, 0),
    MF_HAS(T, has_options, "Options", F_OMIT, &signal_options_s),
};
MSG_SCHEMA(signal_req_s, "SignalProcess", T, signal_req_f);
#undef T

#define T struct bridge_resize_req
static const struct msg_field resize_req_f[] = {
    MF_EMBED(T, base, &req_base_s),
    MF(T, process_id, "ProcessId", FT_U32, 0),
    MF(T, height, "Height", FT_U16, 0),
    MF(T, width, "Width", FT_U16, 0),
};
MSG_SCHEMA(resize_req_s, "ResizeConsole", T, resize_req_f);
#undef T

/* ---------------------------------------------------------------------------------------
 * GetProperties */

#define T struct bridge_props_req
static const struct msg_field props_query_f[] = {
    MF_N(T, property_types, "PropertyTypes", FT_STRV, F_OMIT, NULL),
};
MSG_SCHEMA(props_query_s, "Query", T, props_query_f);

static const struct msg_field props_req_f[] = {
    MF_EMBED(T, base, &req_base_s),
    MF_VIEW("Query", FT_ANYSTR, 0, &props_query_s),
};
MSG_SCHEMA(props_req_s, "GetProperties", T, props_req_f);
#undef T

#define T struct bridge_process_details
static const struct msg_field process_details_f[] = {
    MF(T, process_id, "ProcessId", FT_U32, 0),
};
MSG_SCHEMA(process_details_s, "ProcessDetails", T, process_details_f);
#undef T

#define T struct bridge_properties
static const struct msg_field properties_f[] = {
    MF_N(T, process_list, "ProcessList", FT_OBJV, F_OMIT, &process_details_s),
    MF(T, lcow_metrics, "LCOWMetrics", FT_JSON, F_OMIT),
};
MSG_SCHEMA(properties_s, "Properties", T, properties_f);
#undef T

#define T struct bridge_props_resp
static const struct msg_field props_resp_f[] = {
    MF_EMBED(T, base, &resp_base_s),
    MF_SUB(T, props, "Properties", FT_ANYSTR, 0, &properties_s),
};
MSG_SCHEMA(props_resp_s, "GetProperties response", T, props_resp_f);
#undef T

/* ---------------------------------------------------------------------------------------
 * ModifySettings, DumpStacks, notification */

#define T struct bridge_modify_req
static const struct msg_field modify_request_f[] = {
    MF_DEF(T, request_type, "RequestType", F_OMIT, "Add"),
    MF(T, resource_type, "ResourceType", FT_STR, F_OMIT),
    MF(T, settings, "Settings", FT_JSON, F_OMIT | F_ANYTYPE),
};
MSG_SCHEMA(modify_request_s, "Request", T, modify_request_f);

static const struct msg_field modify_req_f[] = {
    MF_EMBED(T, base, &req_base_s),
    MF_VIEW("Request", FT_OBJ, 0, &modify_request_s),
};
MSG_SCHEMA(modify_req_s, "ModifySettings", T, modify_req_f);
#undef T

#define T struct bridge_dump_stacks_resp
static const struct msg_field dump_stacks_resp_f[] = {
    MF_EMBED(T, base, &resp_base_s),
    MF(T, guest_stacks, "GuestStacks", FT_STR, 0),
};
MSG_SCHEMA(dump_stacks_resp_s, "DumpStacks response", T, dump_stacks_resp_f);
#undef T

#define T struct bridge_notification
static const struct msg_field notification_f[] = {
    MF_DEF(T, container_id, "ContainerId", 0, ""),
    MF(T, activity_id, "ActivityId", FT_GUID, F_ZGUID),
    MF(T, type, "Type", FT_STR, 0),
    MF(T, operation, "Operation", FT_STR, 0),
    MF(T, result, "Result", FT_I32, 0),
    MF(T, result_info, "ResultInfo", FT_ANYJSON, F_OMIT),
};
MSG_SCHEMA(notification_s, "ContainerNotification", T, notification_f);
#undef T

/* ---------------------------------------------------------------------------------------
 * Kinds */

enum kind_dir { DIR_REQUEST, DIR_RESPONSE, DIR_NOTIFY };

struct kind_info {
	const struct msg_schema *s;
	enum kind_dir dir;
};

static const struct kind_info kinds[BMSG_KIND_COUNT] = {
    [BMSG_REQ_BASE] = {&req_base_s, DIR_REQUEST},
    [BMSG_RESP_BASE] = {&resp_base_s, DIR_RESPONSE},
    [BMSG_NEGOTIATE_REQ] = {&negotiate_req_s, DIR_REQUEST},
    [BMSG_NEGOTIATE_RESP] = {&negotiate_resp_s, DIR_RESPONSE},
    [BMSG_CREATE_REQ] = {&create_req_s, DIR_REQUEST},
    [BMSG_CREATE_RESP] = {&create_resp_s, DIR_RESPONSE},
    [BMSG_EXEC_REQ] = {&exec_req_s, DIR_REQUEST},
    [BMSG_EXEC_RESP] = {&exec_resp_s, DIR_RESPONSE},
    [BMSG_WAIT_REQ] = {&wait_req_s, DIR_REQUEST},
    [BMSG_WAIT_RESP] = {&wait_resp_s, DIR_RESPONSE},
    [BMSG_SIGNAL_REQ] = {&signal_req_s, DIR_REQUEST},
    [BMSG_RESIZE_REQ] = {&resize_req_s, DIR_REQUEST},
    [BMSG_PROPS_REQ] = {&props_req_s, DIR_REQUEST},
    [BMSG_PROPS_RESP] = {&props_resp_s, DIR_RESPONSE},
    [BMSG_MODIFY_REQ] = {&modify_req_s, DIR_REQUEST},
    [BMSG_DUMP_STACKS_RESP] = {&dump_stacks_resp_s, DIR_RESPONSE},
    [BMSG_NOTIFICATION] = {&notification_s, DIR_NOTIFY},
    [BMSG_NULL_CREATE_REQ] = {&null_create_req_s, DIR_REQUEST},
};

/* RPC → kinds of its request and response bodies. */
static const struct {
	enum bridge_rpc rpc;
	enum bridge_msg_kind req, resp;
} rpc_kinds[] = {
    {RPC_CREATE, BMSG_CREATE_REQ, BMSG_CREATE_RESP},
    {RPC_START, BMSG_REQ_BASE, BMSG_RESP_BASE},
    {RPC_SHUTDOWN_GRACEFUL, BMSG_REQ_BASE, BMSG_RESP_BASE},
    {RPC_SHUTDOWN_FORCED, BMSG_REQ_BASE, BMSG_RESP_BASE},
    {RPC_EXECUTE_PROCESS, BMSG_EXEC_REQ, BMSG_EXEC_RESP},
    {RPC_WAIT_FOR_PROCESS, BMSG_WAIT_REQ, BMSG_WAIT_RESP},
    {RPC_SIGNAL_PROCESS, BMSG_SIGNAL_REQ, BMSG_RESP_BASE},
    {RPC_RESIZE_CONSOLE, BMSG_RESIZE_REQ, BMSG_RESP_BASE},
    {RPC_GET_PROPERTIES, BMSG_PROPS_REQ, BMSG_PROPS_RESP},
    {RPC_MODIFY_SETTINGS, BMSG_MODIFY_REQ, BMSG_RESP_BASE},
    {RPC_NEGOTIATE_PROTOCOL, BMSG_NEGOTIATE_REQ, BMSG_NEGOTIATE_RESP},
    {RPC_DUMP_STACKS, BMSG_REQ_BASE, BMSG_DUMP_STACKS_RESP},
    {RPC_DELETE_CONTAINER_STATE, BMSG_REQ_BASE, BMSG_RESP_BASE},
};

static const struct kind_info *kind_get(enum bridge_msg_kind k)
{
	if ((unsigned)k >= BMSG_KIND_COUNT || !kinds[k].s)
		return NULL;
	return &kinds[k];
}

enum bridge_msg_kind bridge_msg_kind_for_type(uint32_t type)
{
	if (type == BRIDGE_NOTIFY_CONTAINER)
		return BMSG_NOTIFICATION;
	uint32_t mt = type & BRIDGE_MT_MASK;
	for (size_t i = 0; i < sizeof(rpc_kinds) / sizeof(rpc_kinds[0]); i++) {
		if ((type & ~BRIDGE_MT_MASK) != (uint32_t)rpc_kinds[i].rpc)
			continue;
		if (mt == BRIDGE_MT_REQUEST)
			return rpc_kinds[i].req;
		if (mt == BRIDGE_MT_RESPONSE)
			return rpc_kinds[i].resp;
	}
	return BMSG_NONE;
}

const char *bridge_msg_kind_name(enum bridge_msg_kind k)
{
	const struct kind_info *ki = kind_get(k);
	return ki ? ki->s->name : "unknown";
}

size_t bridge_msg_struct_size(enum bridge_msg_kind k)
{
	const struct kind_info *ki = kind_get(k);
	return ki ? ki->s->size : 0;
}

int bridge_msg_decode(enum bridge_msg_kind k, const void *json, size_t len, void *out,
                      struct err *e)
{
	const struct kind_info *ki = kind_get(k);
	if (!ki)
		return err_set(e, -EINVAL, "bridge message: unknown kind %d", (int)k);
	return msg_decode_bytes(ki->s, json, len, out, e);
}

static void encode_buf(const struct kind_info *ki, const void *msg, struct buf *b)
{
	const struct msg_schema *s = ki->s;
	/* The Go guest answers a failed request with a bare MessageResponseBase. */
	if (ki->dir == DIR_RESPONSE && ((const struct bridge_resp_base *)msg)->result != 0)
		s = &resp_base_s;
	msg_encode(s, msg, ki->dir != DIR_REQUEST, b);
	if (ki->dir == DIR_REQUEST)
		buf_append(b, "\n", 1); /* json.Encoder's trailing newline */
}

int bridge_msg_encode(enum bridge_msg_kind k, const void *msg, char **out, size_t *len,
                      struct err *e)
{
	const struct kind_info *ki = kind_get(k);
	if (!ki)
		return err_set(e, -EINVAL, "bridge message: unknown kind %d", (int)k);
	struct buf b;
	buf_init(&b);
	encode_buf(ki, msg, &b);
	*len = buf_avail(&b);
	*out = xmalloc(*len + 1);
	memcpy(*out, buf_head(&b), *len);
	(*out)[*len] = '\0';
	buf_fini(&b);
	return 0;
}

int bridge_msg_encode_frame(struct buf *out, uint32_t type, uint64_t id, enum bridge_msg_kind k,
                            const void *msg, struct err *e)
{
	const struct kind_info *ki = kind_get(k);
	if (!ki)
		return err_set(e, -EINVAL, "bridge message: unknown kind %d", (int)k);
	struct buf b;
	buf_init(&b);
	encode_buf(ki, msg, &b);
	int r = bridge_frame_append(out, type, id, buf_head(&b), buf_avail(&b),
	                            ki->dir == DIR_REQUEST ? 0 : BRIDGE_MAX_MSG, e);
	buf_fini(&b);
	return r;
}

void bridge_msg_fini(enum bridge_msg_kind k, void *msg)
{
	const struct kind_info *ki = kind_get(k);
	if (ki && msg)
		msg_fini(ki->s, msg);
}

int bridge_msg_peek_base(const void *json, size_t len, struct bridge_req_base *base, struct err *e)
{
	return msg_decode_bytes(&req_base_s, json, len, base, e);
}

int32_t bridge_msg_hresult(int rc)
{
	return (rc == -EBADMSG || rc == -EINVAL) ? HR_VMCOMPUTE_INVALID_JSON : HR_FAIL;
}

void bridge_resp_base_set_error(struct bridge_resp_base *base, int32_t hr, const char *message)
{
	char *msg = message ? xstrdup(message) : xasprintf("HRESULT: 0x%08" PRIx32, (uint32_t)hr);
	free(base->error_message);
	base->result = hr;
	base->error_message = msg;
	base->error_records = xrealloc(base->error_records,
	                               (base->n_error_records + 1) * sizeof(*base->error_records));
	base->error_records[base->n_error_records++] = (struct bridge_error_record){
	    .result = hr,
	    .message = xstrdup(msg),
	    .module_name = xstrdup("gcs"),
	    .file_name = xstrdup(""),
	    .line = UINT32_MAX,
	};
}

void bridge_msg_error_response(int32_t hr, const char *message, const char *activity_id, char **out,
                               size_t *len)
{
	struct bridge_resp_base base = {0};
	if (activity_id)
		snprintf(base.activity_id, sizeof(base.activity_id), "%s", activity_id);
	bridge_resp_base_set_error(&base, hr, message);
	bridge_msg_encode(BMSG_RESP_BASE, &base, out, len, NULL);
	msg_fini(&resp_base_s, &base);
}

void bridge_gcs_caps_init_linux(struct bridge_gcs_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	caps->supported_schema_versions = xcalloc(1, sizeof(struct bridge_version));
	caps->supported_schema_versions[0] = (struct bridge_version){.major = 2, .minor = 1};
	caps->n_supported_schema_versions = 1;
	caps->runtime_os_type = xstrdup("Linux");
	caps->guest_defined.namespace_add_request_supported = true;
	caps->guest_defined.signal_process_supported = true;
	caps->guest_defined.dump_stacks_supported = true;
	caps->guest_defined.delete_container_state_supported = true;
}

void bridge_gcs_caps_fini(struct bridge_gcs_caps *caps)
{
	if (caps)
		msg_fini(&gcs_caps_s, caps);
}
