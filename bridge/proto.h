/* GCS bridge wire constants (see ../shared/spec/gcs-bridge.md §1-§5): ports, message type
 * layout, RPC codes, protocol versions, HRESULTs.  Shared by the host client and ferry-gcs. */
#ifndef FERRY_BRIDGE_PROTO_H
#define FERRY_BRIDGE_PROTO_H

#include <stdint.h>

/* vsock ports */
#define GCS_BRIDGE_PORT      0x40000000u
#define GCS_FIRST_STDIO_PORT 0x40000001u
#define GCS_ENTROPY_PORT     1u
#define GCS_LOG_PORT         109u
#define GCS_PLAN9_PORT       564u

/* framing */
#define BRIDGE_HDR_SIZE 16u
#define BRIDGE_MAX_MSG  0x10000u /* the host's receive cap, header included */

/* type layout */
#define BRIDGE_MT_MASK     0xF0000000u
#define BRIDGE_MT_REQUEST  0x10000000u
#define BRIDGE_MT_RESPONSE 0x20000000u
#define BRIDGE_MT_NOTIFY   0x30000000u
#define BRIDGE_CAT_MASK    0x0FF00000u
#define BRIDGE_CAT_SYSTEM  0x00100000u
#define BRIDGE_CAT_SERVICE 0x00200000u
#define BRIDGE_ID_MASK     0x000FFF00u
#define BRIDGE_VER_MASK    0x000000FFu

#define BRIDGE_PROC(cat, n) ((cat) | ((uint32_t)(n) << 8) | 1u)

/* RPC procs (without the message-type nibble) */
enum bridge_rpc {
	RPC_CREATE = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 1),
	RPC_START = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 2),
	RPC_SHUTDOWN_GRACEFUL = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 3),
	RPC_SHUTDOWN_FORCED = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 4),
	RPC_EXECUTE_PROCESS = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 5),
	RPC_WAIT_FOR_PROCESS = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 6),
	RPC_SIGNAL_PROCESS = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 7),
	RPC_RESIZE_CONSOLE = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 8),
	RPC_GET_PROPERTIES = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 9),
	RPC_MODIFY_SETTINGS = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 10),
	RPC_NEGOTIATE_PROTOCOL = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 11),
	RPC_DUMP_STACKS = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 12),
	RPC_DELETE_CONTAINER_STATE = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 13),
	RPC_UPDATE_CONTAINER = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 14),
	RPC_LIFECYCLE_NOTIFICATION = BRIDGE_PROC(BRIDGE_CAT_SYSTEM, 15),
	RPC_MODIFY_SERVICE_SETTINGS = BRIDGE_PROC(BRIDGE_CAT_SERVICE, 1),
};

/* The only notification: container exit, wire type 0x30100101, id 0. */
#define BRIDGE_NOTIFY_CONTAINER (BRIDGE_MT_NOTIFY | BRIDGE_CAT_SYSTEM | 0x101u)

static inline uint32_t bridge_request_type(enum bridge_rpc r)
{
	return BRIDGE_MT_REQUEST | (uint32_t)r;
}
static inline uint32_t bridge_response_type(uint32_t req_type)
{
	return BRIDGE_MT_RESPONSE | (req_type & ~BRIDGE_MT_MASK);
}

/* protocol versions */
#define GCS_PV_INVALID 0u
#define GCS_PV_V4      4u
#define GCS_PV_MAX     GCS_PV_V4

/* HRESULTs (int32 on the wire) */
#define HR_OK                               0
#define HR_NOTIMPL                          ((int32_t)0x80004001u)
#define HR_FAIL                             ((int32_t)0x80004005u)
#define HR_ERR_NOT_FOUND                    ((int32_t)0x80070490u)
#define HR_INVALIDARG                       ((int32_t)0x80070057u)
#define HR_VMCOMPUTE_TIMEOUT                ((int32_t)0xC0370109u)
#define HR_VMCOMPUTE_UNKNOWN_MESSAGE        ((int32_t)0xC037010Bu)
#define HR_VMCOMPUTE_UNSUPPORTED_PROTOCOL   ((int32_t)0xC037010Cu)
#define HR_VMCOMPUTE_INVALID_JSON           ((int32_t)0xC037010Du)
#define HR_VMCOMPUTE_SYSTEM_NOT_FOUND       ((int32_t)0xC037010Eu)
#define HR_VMCOMPUTE_SYSTEM_ALREADY_EXISTS  ((int32_t)0xC037010Fu)
#define HR_VMCOMPUTE_INVALID_STATE          ((int32_t)0x80370105u)
#define HR_VMCOMPUTE_SYSTEM_ALREADY_STOPPED ((int32_t)0xC0370110u)

#define GCS_NULL_CONTAINER_ID "00000000-0000-0000-0000-000000000000"
#define GCS_INFINITE_WAIT     0xFFFFFFFFu

/* Human-readable name of a message type ("Create", "WaitForProcess", "ContainerNotification",
 * or "unknown"); never NULL.  Request and response types map to the same RPC name. */
const char *bridge_type_name(uint32_t type);

#endif
