/* GCS bridge message bodies: typed C structs for every request and response the Linux GCS
 * handles, plus the container notification, with JSON decoders and encoders that are
 * wire-compatible with hcsshim (see ../shared/spec/gcs-bridge.md §3.3, §4, §8, §9).
 *
 * The codecs are table-driven: one field table per struct (bridge/msg.c, msg_settings.c)
 * drives one engine (msg_json.c, text output in msg_write.c) for decode, encode and fini,
 * so every message follows the same rules:
 *
 * Decoding (bytes from the peer are hostile):
 *  - the whole payload must be one JSON object; trailing whitespace (the Go host's '\n') is
 *    accepted; a NUL byte, invalid UTF-8 or an integer beyond int64 is rejected;
 *  - keys match field names case-insensitively (as Go does); when a key repeats, the last
 *    one wins; unknown keys are ignored; JSON null counts as absent;
 *  - absent numbers/bools are 0/false, absent strings NULL (except where noted), absent
 *    json_t* fields NULL;
 *  - a wrong JSON type, a non-integer or out-of-range number for an integer field, an invalid
 *    GUID, a string over BRIDGE_MSG_MAX_STRING bytes or an array/map over
 *    BRIDGE_MSG_MAX_ITEMS entries fails with -EBADMSG (-EINVAL for a bad GUID) and a message
 *    naming the path, e.g. "ExecuteProcess: Settings: ProcessParameters: CreateStdInPipe:
 *    want bool, got integer".
 *    bridge_msg_hresult() maps any decode failure to HR_VMCOMPUTE_INVALID_JSON;
 *  - AnyInString fields (JSON documents carried in a JSON string) are parsed a second time
 *    with the same rules.
 *
 * Encoding produces compact JSON, fields in Go struct order, with Go's omitempty rules:
 *  - requests (the host side: our GCS client) are written like the Go host's json.Encoder
 *    with SetEscapeHTML(false): '<' '>' '&' literal, payload ends with '\n';
 *  - responses and notifications (the guest side) are written like json.Marshal: no
 *    trailing newline, '<' '>' '&' escaped as \u003c \u003e \u0026;
 *  - both: U+2028/U+2029 escaped, control characters as \n \r \t \b \f or \u00XX (lower-case
 *    hex), invalid UTF-8 bytes replaced by \ufffd; AnyInString inner documents are always
 *    written json.Marshal style (HTML-escaped), then quoted as a string;
 *  - a response whose base.result != 0 is written as the response base only (the Go guest
 *    sends a bare MessageResponseBase on failure: no ExitCode, ProcessId, Capabilities...);
 *  - json_t* pass-through values are written in jansson's insertion order; reals use the
 *    shortest "%g" form that round-trips.
 *
 * Ownership: a decoded struct owns every char* and array it points to and holds one
 * reference on every json_t*; release it with the matching *_fini (bridge_msg_fini), which
 * frees everything, zeroes the struct and is safe on a zeroed struct or twice in a row.  A
 * struct the caller builds for encoding is only read by the encoder; if the caller filled
 * it with malloc'd strings / json_incref'd values it may use *_fini as well.  On a decode
 * failure the output struct is left zeroed (nothing to free).
 *
 * All functions are re-entrant (no global state) and never print.  Encoders fail only on
 * out-of-memory, which aborts (xalloc). */
#ifndef FERRY_BRIDGE_MSG_H
#define FERRY_BRIDGE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/guid.h"

/* Decoder bounds. */
#define BRIDGE_MSG_MAX_STRING   (128u * 1024u)       /* bytes, plain string fields */
#define BRIDGE_MSG_MAX_DOCUMENT (4u * 1024u * 1024u) /* bytes, AnyInString inner documents */
#define BRIDGE_MSG_MAX_ITEMS    65536u               /* entries per array or map */
/* What one parse (a payload, or one AnyInString document in it) may cost, in value units,
 * counted on the text before jansson builds anything (bridge_json_check).  Units follow what
 * jansson allocates per value, measured on this build: an object 234 bytes, an array 138, a
 * short string or key 90, a number 42; so an object counts 4, an array 2, every key, string,
 * number and literal 1 (about 64 bytes a unit).  65536 units hold a tree to about 4 MiB (plus
 * the string bytes themselves, bounded by the frame), where 8 MiB of `{},` would have cost
 * 650 MB.  Real requests are far below: a Create with the docker default seccomp profile in
 * its OCI spec is about 2,500 units; large requests are large because of long strings (a
 * base64 security policy is one unit), not because of many values. */
#define BRIDGE_MSG_MAX_VALUES 65536u

/* Count the values of JSON text json[0..len) in the units above, without allocating; -EBADMSG
 * ("... values over the limit ...") when over BRIDGE_MSG_MAX_VALUES, else the count.  The
 * count never underestimates what jansson would build from the same text (valid or not, up
 * to where it stops), so checking it first bounds the memory of the parse.  Every decoder
 * here calls it before parsing. */
long bridge_json_check(const void *json, size_t len, struct err *e);

/* ---------------------------------------------------------------------------------------
 * Common parts */

/* Every request (§4.2).  JSON: "ContainerId", "ActivityId", "otsc" (omitempty). */
struct bridge_req_base {
	char *container_id; /* never NULL after decode ("" when absent); encode: NULL = "" */
	/* Normalized lower-case GUID, "" when absent.  Decode validates it (-EINVAL).  Request
	 * encoders always emit it, the zero GUID when "" (as the Go host). */
	char activity_id[GUID_STR_LEN + 1];
	json_t *otsc; /* W3C trace-context map, reference or NULL; omitted when NULL */
};

/* One ErrorRecord (§4.3). */
struct bridge_error_record {
	int32_t result;      /* "Result" */
	char *message;       /* "Message" (always emitted) */
	char *stack_trace;   /* "StackTrace" omitempty */
	char *module_name;   /* "ModuleName" (always emitted; the guest uses "gcs") */
	char *file_name;     /* "FileName" (always emitted) */
	uint32_t line;       /* "Line" (always emitted; 4294967295 when unknown) */
	char *function_name; /* "FunctionName" omitempty */
};

/* Every response (§4.3). */
struct bridge_resp_base {
	int32_t result; /* "Result", always emitted */
	/* "ActivityId": GUID or "" (omitted).  Decode validates it (-EINVAL). */
	char activity_id[GUID_STR_LEN + 1];
	char *error_message;                       /* "ErrorMessage" omitempty */
	struct bridge_error_record *error_records; /* "ErrorRecords" omitempty */
	size_t n_error_records;
};

/* {"Major":u32,"Minor":u32}, each omitempty (SupportedSchemaVersions, SchemaVersion). */
struct bridge_version {
	uint32_t major;
	uint32_t minor;
};

/* A string→string map entry (Environment).  Encoders emit map keys sorted, as Go does. */
struct bridge_kv {
	char *key;
	char *value;
};

/* ---------------------------------------------------------------------------------------
 * NegotiateProtocol (§3.3) */

/* ferry's own capabilities (docs/stdio-resume.md §2, docs/bridge.md).  The host offers
 * them in a top-level "Ferry" object of the NegotiateProtocol request (the Go guest ignores
 * unknown request keys); the guest answers with flat "Ferry*" booleans inside
 * GuestDefinedCapabilities (the Go host decodes that object into a struct and ignores
 * unknown keys).  Everything is omitempty, so a ferry guest talking to a plain hcsshim host
 * answers byte-for-byte like the Linux GCS.  A feature is used on a connection only when
 * both sides said so in its current negotiation.  New capabilities are added here. */
struct bridge_ferry_offer {    /* request "Ferry", omitted when all zero */
	uint32_t stdio_resume; /* "StdioResume": stdio resume handshake version (2), 0 = no */
	/* "Session": the session secret, 64 lower-case hex digits (bridge/session.h), sent by a
	 * host that has no session with this guest yet (its first negotiation); never again */
	char *session;
	/* "Challenge": 64 hex digits, fresh for every negotiation: the guest proves it knows
	 * the secret with FerrySessionProof, and stdio HELLOs of this negotiation are bound to
	 * it */
	char *challenge;
};

struct bridge_guest_caps { /* "GuestDefinedCapabilities", always emitted (at least {}) */
	bool namespace_add_request_supported;  /* "NamespaceAddRequestSupported" */
	bool signal_process_supported;         /* "SignalProcessSupported" */
	bool dump_stacks_supported;            /* "DumpStacksSupported" */
	bool delete_container_state_supported; /* "DeleteContainerStateSupported" */
	bool ferry_stdio_resume;               /* "FerryStdioResume" (ferry), omitempty */
	char *ferry_session_proof; /* "FerrySessionProof" (ferry): 64 hex digits, omitempty */
};

struct bridge_gcs_caps {
	bool send_host_create_message;                    /* "SendHostCreateMessage" omitempty */
	bool send_host_start_message;                     /* "SendHostStartMessage" omitempty */
	bool hv_socket_config_on_startup;                 /* "HvSocketConfigOnStartup" omitempty */
	struct bridge_version *supported_schema_versions; /* "SupportedSchemaVersions" omitempty */
	size_t n_supported_schema_versions;
	char *runtime_os_type;                  /* "RuntimeOsType" omitempty ("Linux") */
	struct bridge_guest_caps guest_defined; /* "GuestDefinedCapabilities" */
	/* Decode only: "GuestDefinedCapabilities" was present as an object ({} included).  The
	 * Go host fails Connect when the key is missing, so a host checks this flag (absent and
	 * {} both leave guest_defined zero).  JSON null counts as absent, as everywhere here
	 * (stricter than Go, whose json.RawMessage takes null).  The encoder ignores the flag
	 * and always emits the object. */
	bool has_guest_defined;
};

struct bridge_negotiate_req {
	struct bridge_req_base base;
	uint32_t minimum_version;        /* "MinimumVersion" */
	uint32_t maximum_version;        /* "MaximumVersion" */
	struct bridge_ferry_offer ferry; /* "Ferry" (ferry extension), omitted when all zero */
};

struct bridge_negotiate_resp {
	struct bridge_resp_base base;
	uint32_t version;            /* "Version" */
	struct bridge_gcs_caps caps; /* "Capabilities" (always emitted on success) */
};

/* Fill `caps` (zeroed first; fini it afterwards) with exactly what the Linux GCS returns:
 * SupportedSchemaVersions [2.1], RuntimeOsType "Linux" and the four Linux guest-defined
 * booleans true.  The caller may then set caps->guest_defined.ferry_* flags. */
void bridge_gcs_caps_init_linux(struct bridge_gcs_caps *caps);

/* ---------------------------------------------------------------------------------------
 * Create (§4.4) */

/* VMHostedContainerSettingsV2, the inner document of ContainerConfig (AnyInString).  Encoded
 * like the v2 controller: SchemaVersion and ScratchDirPath always, OciBundlePath and
 * OciSpecification omitempty. */
struct bridge_container_settings {
	struct bridge_version schema_version; /* "SchemaVersion" */
	char *oci_bundle_path;                /* "OciBundlePath" */
	json_t *oci_specification;            /* "OciSpecification": the OCI spec, passed through */
	char *scratch_dir_path;               /* "ScratchDirPath" */
};

struct bridge_create_req {
	struct bridge_req_base base;
	/* "ContainerConfig" (AnyInString, required: absent or "" fails decode).  A config of
	 * another schema (the null container's {"SystemType":...}) decodes to zero fields. */
	struct bridge_container_settings config;
};

/* The null container's ContainerConfig (the Go host's uvmConfig), the inner document of
 * the Create a host sends for GCS_NULL_CONTAINER_ID on a cold start when the guest asked
 * with SendHostCreateMessage (then Start if SendHostStartMessage).  Encoded like the Go
 * host: {"SystemType":"Container","TimeZoneInformation":null} for a Linux guest.  Its own
 * kind (BMSG_NULL_CREATE_REQ), which bridge_msg_kind_for_type never returns: a guest
 * decodes every Create as BMSG_CREATE_REQ, where this config yields zero fields. */
struct bridge_uvm_config {
	char *system_type; /* "SystemType" (always emitted; "Container") */
	/* "TimeZoneInformation": hcsschema.TimeZoneInformation object passed through (Windows
	 * guests only); NULL is written as null, like the Go host's nil pointer. */
	json_t *time_zone_information;
};

struct bridge_null_create_req {
	struct bridge_req_base base;
	struct bridge_uvm_config config; /* "ContainerConfig" (AnyInString, required) */
};

struct bridge_create_resp {
	struct bridge_resp_base base;
	uint32_t selected_protocol_version; /* "SelectedProtocolVersion", always emitted (0) */
};

/* ---------------------------------------------------------------------------------------
 * ExecuteProcess (§4.4) */

/* Inner document of "ProcessParameters" (AnyInString, required).  All omitempty. */
struct bridge_process_params {
	char *command_line;  /* "CommandLine" */
	char **command_args; /* "CommandArgs" */
	size_t n_command_args;
	char *working_directory;       /* "WorkingDirectory" */
	struct bridge_kv *environment; /* "Environment" (map, order as received) */
	size_t n_environment;
	bool emulate_console;      /* "EmulateConsole" */
	bool create_std_in_pipe;   /* "CreateStdInPipe" */
	bool create_std_out_pipe;  /* "CreateStdOutPipe" */
	bool create_std_err_pipe;  /* "CreateStdErrPipe" */
	bool create_in_utility_vm; /* "CreateInUtilityVM" */
	/* "OciProcess": NULL when absent or null → start the container's init process;
	 * present → exec a new process with this OCI Process object. */
	json_t *oci_process;
};

/* "VsockStdioRelaySettings": vsock ports, each omitempty (0 = no port).  The object itself
 * is always emitted by the request encoder, possibly as {}. */
struct bridge_vsock_stdio {
	uint32_t std_in;  /* "StdIn" */
	uint32_t std_out; /* "StdOut" */
	uint32_t std_err; /* "StdErr" */
};

struct bridge_exec_req {
	struct bridge_req_base base;
	/* "Settings": {"ProcessParameters": AnyInString, "VsockStdioRelaySettings": {...}} */
	struct bridge_process_params params;
	struct bridge_vsock_stdio stdio;
};

struct bridge_exec_resp {
	struct bridge_resp_base base;
	uint32_t process_id; /* "ProcessId" (UVM root pid namespace) */
};

/* ---------------------------------------------------------------------------------------
 * WaitForProcess, SignalProcess, ResizeConsole (§4.4) */

struct bridge_wait_req {
	struct bridge_req_base base;
	uint32_t process_id;    /* "ProcessId" */
	uint32_t timeout_in_ms; /* "TimeoutInMs", GCS_INFINITE_WAIT = no timeout */
};

struct bridge_wait_resp {
	struct bridge_resp_base base;
	uint32_t exit_code; /* "ExitCode" (only on success) */
};

struct bridge_signal_req {
	struct bridge_req_base base;
	uint32_t process_id; /* "ProcessId" */
	bool has_options;    /* "Options" present (and not null) */
	int32_t signal;      /* "Options":{"Signal":N} omitempty; 0/absent means SIGKILL */
};

struct bridge_resize_req {
	struct bridge_req_base base;
	uint32_t process_id; /* "ProcessId" */
	uint16_t height;     /* "Height" */
	uint16_t width;      /* "Width" */
};

/* ---------------------------------------------------------------------------------------
 * GetProperties (§4.4) */

struct bridge_props_req {
	struct bridge_req_base base;
	/* "Query": AnyInString {"PropertyTypes":[...]}; absent or "" = no types. */
	char **property_types;
	size_t n_property_types;
};

struct bridge_process_details {
	uint32_t process_id; /* "ProcessId" */
};

/* Inner document of "Properties" (AnyInString, always emitted, "{}" when empty). */
struct bridge_properties {
	struct bridge_process_details *process_list; /* "ProcessList" omitempty */
	size_t n_process_list;
	json_t *lcow_metrics; /* "LCOWMetrics" omitempty, passed through */
};

struct bridge_props_resp {
	struct bridge_resp_base base;
	struct bridge_properties props;
};

/* ---------------------------------------------------------------------------------------
 * ModifySettings (§4.4) */

struct bridge_modify_req {
	struct bridge_req_base base;
	/* "Request": {"RequestType", "ResourceType", "Settings"} (an object, not a string) */
	char *request_type;  /* never NULL after decode: "" or absent becomes "Add" */
	char *resource_type; /* NULL when absent */
	json_t *settings;    /* reference or NULL; decode with bridge_settings_decode */
};

struct bridge_dump_stacks_resp {
	struct bridge_resp_base base;
	char *guest_stacks; /* "GuestStacks" */
};

/* ---------------------------------------------------------------------------------------
 * Container notification (§4.5), guest → host, type 0x30100101, id 0 */

struct bridge_notification {
	char *container_id; /* "ContainerId" (never NULL after decode) */
	/* "ActivityId": always emitted, the zero GUID when ""; decode validates it. */
	char activity_id[GUID_STR_LEN + 1];
	char *type;          /* "Type": "GracefulExit", "ForcedExit", "UnexpectedExit", ... */
	char *operation;     /* "Operation": "None", ... */
	int32_t result;      /* "Result" */
	json_t *result_info; /* "ResultInfo" AnyInString, omitted when NULL (never "") */
};

/* ---------------------------------------------------------------------------------------
 * Generic API: one entry point per operation, keyed by message kind. */

enum bridge_msg_kind {
	BMSG_NONE = 0,
	BMSG_REQ_BASE,       /* struct bridge_req_base: Start, Shutdown*, DumpStacks, DeleteState */
	BMSG_RESP_BASE,      /* struct bridge_resp_base: Start, Shutdown*, Signal, Resize, Modify,
	                   DeleteContainerState, and any failed response */
	BMSG_NEGOTIATE_REQ,  /* struct bridge_negotiate_req */
	BMSG_NEGOTIATE_RESP, /* struct bridge_negotiate_resp */
	BMSG_CREATE_REQ,     /* struct bridge_create_req */
	BMSG_CREATE_RESP,    /* struct bridge_create_resp */
	BMSG_EXEC_REQ,       /* struct bridge_exec_req */
	BMSG_EXEC_RESP,      /* struct bridge_exec_resp */
	BMSG_WAIT_REQ,       /* struct bridge_wait_req */
	BMSG_WAIT_RESP,      /* struct bridge_wait_resp */
	BMSG_SIGNAL_REQ,     /* struct bridge_signal_req */
	BMSG_RESIZE_REQ,     /* struct bridge_resize_req */
	BMSG_PROPS_REQ,      /* struct bridge_props_req */
	BMSG_PROPS_RESP,     /* struct bridge_props_resp */
	BMSG_MODIFY_REQ,     /* struct bridge_modify_req */
	BMSG_DUMP_STACKS_RESP, /* struct bridge_dump_stacks_resp */
	BMSG_NOTIFICATION,     /* struct bridge_notification */
	BMSG_NULL_CREATE_REQ,  /* struct bridge_null_create_req (host side; not mapped by type) */
	BMSG_KIND_COUNT
};

/* The kind that decodes a payload of wire message `type` (request, response or
 * notification type, e.g. 0x10100501 → BMSG_EXEC_REQ, 0x20100201 → BMSG_RESP_BASE,
 * 0x30100101 → BMSG_NOTIFICATION); BMSG_NONE for types the Linux GCS does not handle. */
enum bridge_msg_kind bridge_msg_kind_for_type(uint32_t type);

/* "ExecuteProcess", "ExecuteProcess response", ...; never NULL. */
const char *bridge_msg_kind_name(enum bridge_msg_kind k);

/* sizeof the struct of kind k (0 for BMSG_NONE / out of range). */
size_t bridge_msg_struct_size(enum bridge_msg_kind k);

/* Decode `len` bytes of JSON into `out`, which must point to the struct of kind k (its
 * previous contents are ignored, not freed).  Returns 0; or -EBADMSG / -EINVAL with a
 * message prefixed by the kind name, leaving *out zeroed.  -EINVAL also for a bad kind. */
int bridge_msg_decode(enum bridge_msg_kind k, const void *json, size_t len, void *out,
                      struct err *e);

/* Encode the struct of kind k.  *out receives a malloc'd NUL-terminated string the caller
 * frees, *len its length (without the NUL).  Returns 0, or -EINVAL for a bad kind. */
int bridge_msg_encode(enum bridge_msg_kind k, const void *msg, char **out, size_t *len,
                      struct err *e);

/* Encode and append one frame {type, id, payload} to `out` (see bridge_frame_append).
 * Responses and notifications are capped at BRIDGE_MAX_MSG (the Go host's limit);
 * requests are not capped.  Returns 0, or -EMSGSIZE (nothing appended) / -EINVAL. */
int bridge_msg_encode_frame(struct buf *out, uint32_t type, uint64_t id, enum bridge_msg_kind k,
                            const void *msg, struct err *e);

/* Free what a struct of kind k owns and zero it.  NULL-safe. */
void bridge_msg_fini(enum bridge_msg_kind k, void *msg);

/* Decode only the request base (ContainerId, ActivityId, otsc) of any request, before
 * dispatch.  Same errors as bridge_msg_decode; fini with bridge_req_base_fini. */
int bridge_msg_peek_base(const void *json, size_t len, struct bridge_req_base *base, struct err *e);

/* The HRESULT to answer a request whose decode failed with `rc`:
 * HR_VMCOMPUTE_INVALID_JSON for -EBADMSG / -EINVAL, HR_FAIL otherwise. */
int32_t bridge_msg_hresult(int rc);

/* Turn `base` into a Go-guest style failure: Result = hr, ErrorMessage = message, and one
 * ErrorRecord {Result hr, Message message, ModuleName "gcs", FileName "", Line 4294967295}
 * appended.  Previous ErrorMessage is replaced; activity_id is kept.  `message` is copied
 * (NULL = "HRESULT: 0x%08x" like the Go guest). */
void bridge_resp_base_set_error(struct bridge_resp_base *base, int32_t hr, const char *message);

/* Encode a complete failure response (bare base, see above) echoing `activity_id` (NULL or
 * "" = omitted).  *out is malloc'd (caller frees), *len its length. */
void bridge_msg_error_response(int32_t hr, const char *message, const char *activity_id, char **out,
                               size_t *len);

/* Typed wrappers (generated below): for each kind with struct T,
 *   int  bridge_<name>_decode(const void *json, size_t len, T *out, struct err *e);
 *   int  bridge_<name>_encode(const T *msg, char **out, size_t *len, struct err *e);
 *   void bridge_<name>_fini(T *msg);
 * with <name> one of: req_base, resp_base, negotiate_req, negotiate_resp, create_req,
 * create_resp, exec_req, exec_resp, wait_req, wait_resp, signal_req, resize_req, props_req,
 * props_resp, modify_req, dump_stacks_resp, notification, null_create_req. */
#define BRIDGE_MSG_KINDS(X)                                                                        \
	X(BMSG_REQ_BASE, req_base, struct bridge_req_base)                                         \
	X(BMSG_RESP_BASE, resp_base, struct bridge_resp_base)                                      \
	X(BMSG_NEGOTIATE_REQ, negotiate_req, struct bridge_negotiate_req)                          \
	X(BMSG_NEGOTIATE_RESP, negotiate_resp, struct bridge_negotiate_resp)                       \
	X(BMSG_CREATE_REQ, create_req, struct bridge_create_req)                                   \
	X(BMSG_CREATE_RESP, create_resp, struct bridge_create_resp)                                \
	X(BMSG_EXEC_REQ, exec_req, struct bridge_exec_req)                                         \
	X(BMSG_EXEC_RESP, exec_resp, struct bridge_exec_resp)                                      \
	X(BMSG_WAIT_REQ, wait_req, struct bridge_wait_req)                                         \
	X(BMSG_WAIT_RESP, wait_resp, struct bridge_wait_resp)                                      \
	X(BMSG_SIGNAL_REQ, signal_req, struct bridge_signal_req)                                   \
	X(BMSG_RESIZE_REQ, resize_req, struct bridge_resize_req)                                   \
	X(BMSG_PROPS_REQ, props_req, struct bridge_props_req)                                      \
	X(BMSG_PROPS_RESP, props_resp, struct bridge_props_resp)                                   \
	X(BMSG_MODIFY_REQ, modify_req, struct bridge_modify_req)                                   \
	X(BMSG_DUMP_STACKS_RESP, dump_stacks_resp, struct bridge_dump_stacks_resp)                 \
	X(BMSG_NOTIFICATION, notification, struct bridge_notification)                             \
	X(BMSG_NULL_CREATE_REQ, null_create_req, struct bridge_null_create_req)

#define BRIDGE_MSG_WRAPPERS_(K, NAME, T)                                                           \
	static inline int bridge_##NAME##_decode(const void *json, size_t len, T *out,             \
	                                         struct err *e)                                    \
	{                                                                                          \
		return bridge_msg_decode(K, json, len, out, e);                                    \
	}                                                                                          \
	static inline int bridge_##NAME##_encode(const T *msg, char **out, size_t *len,            \
	                                         struct err *e)                                    \
	{                                                                                          \
		return bridge_msg_encode(K, msg, out, len, e);                                     \
	}                                                                                          \
	static inline void bridge_##NAME##_fini(T *msg)                                            \
	{                                                                                          \
		bridge_msg_fini(K, msg);                                                           \
	}
BRIDGE_MSG_KINDS(BRIDGE_MSG_WRAPPERS_)

/* bridge_gcs_caps_fini: free what bridge_gcs_caps_init_linux allocated (NULL-safe). */
void bridge_gcs_caps_fini(struct bridge_gcs_caps *caps);

/* ---------------------------------------------------------------------------------------
 * ModifySettings resource types and their typed Settings (§4.4 table).  All fields
 * omitempty unless noted; names as in the Go structs. */

enum bridge_resource {
	BRES_UNKNOWN = 0,
	BRES_MAPPED_VIRTUAL_DISK, /* "MappedVirtualDisk" → struct bridge_mapped_virtual_disk */
	BRES_SCSI_DEVICE,         /* "SCSIDevice" → struct bridge_scsi_device */
	BRES_MAPPED_DIRECTORY,    /* "MappedDirectory" → struct bridge_mapped_directory */
	BRES_VPMEM_DEVICE,        /* "VPMemDevice" → struct bridge_vpmem_device */
	BRES_COMBINED_LAYERS,     /* "CombinedLayers" → struct bridge_combined_layers */
	BRES_NETWORK,             /* "Network" → struct bridge_network_adapter */
	BRES_VPCI_DEVICE,         /* "VPCIDevice" → struct bridge_vpci_device */
	BRES_CONTAINER_CONSTRAINTS, /* "ContainerConstraints" → struct bridge_container_constraints */
	BRES_SECURITY_POLICY,       /* "SecurityPolicy" → struct bridge_security_policy */
	BRES_SECURITY_POLICY_FRAGMENT, /* "SecurityPolicyFragment" → struct bridge_policy_fragment */
	BRES_POD_CGROUP_MEMORY_LIMIT, /* "PodCgroupMemoryLimit": no settings (struct ignored) */
	/* known names the Linux GCS rejects ("invalid ResourceType", HR_FAIL) */
	BRES_NETWORK_NAMESPACE,                         /* "NetworkNamespace" */
	BRES_HV_SOCKET,                                 /* "HvSocket" */
	BRES_MAPPED_VIRTUAL_DISK_FOR_CONTAINER_SCRATCH, /* "MappedVirtualDiskForContainerScratch" */
	BRES_WCOW_BLOCK_CIMS,                           /* "WCOWBlockCims" */
	BRES_CWCOW_COMBINED_LAYERS,                     /* "CWCOWCombinedLayers" */
	BRES_COUNT
};

/* Exact (case-sensitive, like the Go guest's switch) name lookup; BRES_UNKNOWN when the
 * name is NULL or unknown. */
enum bridge_resource bridge_resource_parse(const char *name);
/* Wire name; "" for BRES_UNKNOWN or out of range. */
const char *bridge_resource_name(enum bridge_resource r);
/* True for the types the Linux GCS handles (MappedVirtualDisk .. PodCgroupMemoryLimit). */
bool bridge_resource_linux_supported(enum bridge_resource r);

struct bridge_mapped_virtual_disk {
	char *mount_path;   /* "MountPath" */
	uint8_t lun;        /* "Lun" */
	uint8_t controller; /* "Controller" */
	uint64_t partition; /* "Partition" */
	bool read_only;     /* "ReadOnly" */
	bool encrypted;     /* "Encrypted" */
	char **options;     /* "Options" */
	size_t n_options;
	bool block_dev;         /* "BlockDev" */
	json_t *verity_info;    /* "VerityInfo" (deprecated, passed through) */
	bool ensure_filesystem; /* "EnsureFilesystem" */
	char *filesystem;       /* "Filesystem" */
};

struct bridge_scsi_device {
	uint8_t controller; /* "Controller" */
	uint8_t lun;        /* "Lun" */
};

struct bridge_mapped_directory {
	char *mount_path; /* "MountPath" */
	int32_t port;     /* "Port" */
	char *share_name; /* "ShareName" */
	bool read_only;   /* "ReadOnly" */
};

struct bridge_vpmem_mapping {
	uint64_t device_offset_in_bytes; /* "DeviceOffsetInBytes" */
	uint64_t device_size_in_bytes;   /* "DeviceSizeInBytes" */
};

struct bridge_vpmem_device {
	uint32_t device_number; /* "DeviceNumber" */
	char *mount_path;       /* "MountPath" */
	bool has_mapping_info;  /* "MappingInfo" present */
	struct bridge_vpmem_mapping mapping_info;
	json_t *verity_info; /* "VerityInfo" (deprecated, passed through) */
};

struct bridge_layer {
	char *id;        /* "Id" */
	char *path;      /* "Path" */
	char *path_type; /* "PathType" */
	char *cache;     /* "Cache" (hcsschema: "Unspecified", "Disabled", "Enabled") */
};

struct bridge_combined_layers {
	char *container_id;          /* "ContainerID" */
	char *container_root_path;   /* "ContainerRootPath" */
	struct bridge_layer *layers; /* "Layers", top-most first */
	size_t n_layers;
	char *scratch_path; /* "ScratchPath" */
};

struct bridge_ip_config {
	char *ip_address;      /* "IPAddress" */
	uint8_t prefix_length; /* "PrefixLength" */
};

struct bridge_route {
	char *next_hop;           /* "NextHop" */
	char *destination_prefix; /* "DestinationPrefix" */
	uint16_t metric;          /* "Metric" */
};

struct bridge_network_adapter {              /* LCOWNetworkAdapter */
	char *namespace_id;                  /* "NamespaceID" */
	char *id;                            /* "ID" (vmbus instance GUID of the NIC) */
	char *mac_address;                   /* "MacAddress" */
	char *dns_suffix;                    /* "DNSSuffix" */
	char *dns_server_list;               /* "DNSServerList" */
	uint16_t encap_overhead;             /* "EncapOverhead" */
	bool vpci_assigned;                  /* "VPCIAssigned" */
	struct bridge_ip_config *ip_configs; /* "IPConfigs" */
	size_t n_ip_configs;
	struct bridge_route *routes; /* "Routes" */
	size_t n_routes;
	bool policy_based_routing; /* "PolicyBasedRouting" */
	bool enable_low_metric;    /* "EnableLowMetric" */
};

struct bridge_vpci_device {
	char *vmbus_guid; /* "VMBusGUID" */
};

struct bridge_container_constraints {
	json_t *windows;         /* "Windows" (always emitted, {} when NULL) */
	json_t *linux_resources; /* "Linux": OCI LinuxResources, omitempty */
};

struct bridge_security_policy {
	char *enforcer_type;                       /* "EnforcerType" */
	char *encoded_security_policy;             /* "EncodedSecurityPolicy" */
	char *encoded_uvm_reference;               /* "EncodedUVMReference" */
	char *encoded_uvm_hash_envelope_reference; /* "EncodedUVMHashEnvelopeReference" */
};

struct bridge_policy_fragment {
	char *fragment;   /* "Fragment" */
	char *media_type; /* "MediaType" */
};

/* Size of the settings struct of `r` (0 for BRES_UNKNOWN, PodCgroupMemoryLimit and the
 * types without a Linux settings struct). */
size_t bridge_settings_struct_size(enum bridge_resource r);

/* Decode `settings` (may be NULL = all zero) into `out`, the struct of `r` (see the enum).
 * Returns 0; -EBADMSG with "<ResourceType>: <Field>: ..." on a type error; -ENOTSUP when r
 * has no settings struct (bridge_msg_hresult → HR_FAIL, as the Go guest's "invalid
 * ResourceType").  On failure *out is zeroed. */
int bridge_settings_decode(enum bridge_resource r, const json_t *settings, void *out,
                           struct err *e);

/* Convenience: bridge_settings_decode(bridge_resource_parse(req->resource_type),
 * req->settings, out, e), with "ModifySettings: " prefixed to errors; -ENOTSUP for an
 * unknown ResourceType.  `out` must be big enough for that type's struct (check
 * bridge_resource_parse first, or use a union of the settings structs). */
int bridge_modify_req_settings(const struct bridge_modify_req *req, void *out, struct err *e);

/* Build the Settings JSON for a host-side ModifySettings request (Go omitempty rules).
 * Returns a new reference (caller json_decref()s or stores it in req->settings), or NULL
 * when r has no settings struct (or a u64 field exceeds INT64_MAX, which jansson cannot
 * hold). */
json_t *bridge_settings_to_json(enum bridge_resource r, const void *in);

/* Free what a settings struct owns and zero it.  NULL-safe. */
void bridge_settings_fini(enum bridge_resource r, void *s);

#endif
