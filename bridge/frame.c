/* Bridge frame encode/decode.  Every length from the peer is checked before use. */
#include "bridge/frame.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "bridge/proto.h"

void bridge_hdr_encode(const struct bridge_hdr *h, uint8_t out[16])
{
	le32_put(out, h->type);
	le32_put(out + 4, h->size);
	le64_put(out + 8, h->id);
}

void bridge_hdr_decode(const uint8_t in[16], struct bridge_hdr *h)
{
	h->type = le32_get(in);
	h->size = le32_get(in + 4);
	h->id = le64_get(in + 8);
}

int bridge_hdr_check(const struct bridge_hdr *h, uint32_t max_size, struct err *e)
{
	if (h->size < BRIDGE_HDR_SIZE)
		return err_set(e, -EBADMSG,
		               "invalid message size %" PRIu32 " (type=0x%08" PRIx32 " id=%" PRIu64
		               "): below the 16-byte header",
		               h->size, h->type, h->id);
	if (max_size > 0 && h->size > max_size)
		return err_set(e, -EMSGSIZE,
		               "invalid message size %" PRIu32 " (type=0x%08" PRIx32 " id=%" PRIu64
		               "): over the limit of %" PRIu32,
		               h->size, h->type, h->id, max_size);
	return 0;
}

int bridge_frame_peek(const struct buf *in, uint32_t max_size, struct bridge_hdr *h,
                      const uint8_t **payload, size_t *len, struct err *e)
{
	if (buf_avail(in) < BRIDGE_HDR_SIZE)
		return 0;
	bridge_hdr_decode(buf_head(in), h);
	int r = bridge_hdr_check(h, max_size, e);
	if (r < 0)
		return r;
	if (buf_avail(in) < h->size)
		return 0;
	*payload = buf_head(in) + BRIDGE_HDR_SIZE;
	*len = h->size - BRIDGE_HDR_SIZE;
	return 1;
}

int bridge_frame_append(struct buf *out, uint32_t type, uint64_t id, const void *payload,
                        size_t len, uint32_t max_size, struct err *e)
{
	uint64_t total = (uint64_t)len + BRIDGE_HDR_SIZE;
	uint32_t cap = max_size ? max_size : UINT32_MAX;
	if (total > cap)
		return err_set(e, -EMSGSIZE,
		               "message type=0x%08" PRIx32 " id=%" PRIu64 " of %" PRIu64
		               " bytes exceeds the limit of %" PRIu32,
		               type, id, total, cap);
	struct bridge_hdr h = {.type = type, .size = (uint32_t)total, .id = id};
	uint8_t *p = buf_reserve(out, (size_t)total);
	bridge_hdr_encode(&h, p);
	if (len)
		memcpy(p + BRIDGE_HDR_SIZE, payload, len);
	buf_commit(out, (size_t)total);
	return 0;
}

const char *bridge_type_name(uint32_t type)
{
	if (type == BRIDGE_NOTIFY_CONTAINER)
		return "ContainerNotification";
	switch ((enum bridge_rpc)(type & ~BRIDGE_MT_MASK)) {
	case RPC_CREATE:
		return "Create";
	case RPC_START:
		return "Start";
	case RPC_SHUTDOWN_GRACEFUL:
		return "ShutdownGraceful";
	case RPC_SHUTDOWN_FORCED:
		return "ShutdownForced";
	case RPC_EXECUTE_PROCESS:
		return "ExecuteProcess";
	case RPC_WAIT_FOR_PROCESS:
		return "WaitForProcess";
	case RPC_SIGNAL_PROCESS:
		return "SignalProcess";
	case RPC_RESIZE_CONSOLE:
		return "ResizeConsole";
	case RPC_GET_PROPERTIES:
		return "GetProperties";
	case RPC_MODIFY_SETTINGS:
		return "ModifySettings";
	case RPC_NEGOTIATE_PROTOCOL:
		return "NegotiateProtocol";
	case RPC_DUMP_STACKS:
		return "DumpStacks";
	case RPC_DELETE_CONTAINER_STATE:
		return "DeleteContainerState";
	case RPC_UPDATE_CONTAINER:
		return "UpdateContainer";
	case RPC_LIFECYCLE_NOTIFICATION:
		return "LifecycleNotification";
	case RPC_MODIFY_SERVICE_SETTINGS:
		return "ModifyServiceSettings";
	}
	return "unknown";
}
