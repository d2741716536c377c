/* libFuzzer harness for the GCS bridge codecs: the input is a byte stream of frames, split
 * with bridge_frame_peek; each payload goes through the decoder its type selects (every
 * request, response and the notification; unknown types pick a decoder from the frame id
 * so every decoder is reachable), ModifySettings payloads also through the typed Settings
 * decoder of their ResourceType.  Whatever decodes is re-encoded, and our own output must
 * decode again and re-encode to the same bytes (else the harness traps).  Every payload also
 * goes through bridge_json_check, the value count every decoder applies before building a
 * tree: when jansson parses the payload, the tree it builds must weigh no more than the count
 * (the count bounds the memory of a parse), and an input the check refuses must be refused
 * by the decoders too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/frame.h"
#include "bridge/msg.h"
#include "bridge/proto.h"
#include "common/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Room for any message or settings struct. */
union any_msg {
	struct bridge_req_base req_base;
	struct bridge_resp_base resp_base;
	struct bridge_negotiate_req negotiate_req;
	struct bridge_negotiate_resp negotiate_resp;
	struct bridge_create_req create_req;
	struct bridge_create_resp create_resp;
	struct bridge_exec_req exec_req;
	struct bridge_exec_resp exec_resp;
	struct bridge_wait_req wait_req;
	struct bridge_wait_resp wait_resp;
	struct bridge_signal_req signal_req;
	struct bridge_resize_req resize_req;
	struct bridge_props_req props_req;
	struct bridge_props_resp props_resp;
	struct bridge_modify_req modify_req;
	struct bridge_dump_stacks_resp dump_stacks_resp;
	struct bridge_notification notification;
};

union any_settings {
	struct bridge_mapped_virtual_disk mvd;
	struct bridge_scsi_device scsi;
	struct bridge_mapped_directory mdir;
	struct bridge_vpmem_device vpmem;
	struct bridge_combined_layers layers;
	struct bridge_network_adapter net;
	struct bridge_vpci_device vpci;
	struct bridge_container_constraints constraints;
	struct bridge_security_policy policy;
	struct bridge_policy_fragment fragment;
};

static void check_settings(const struct bridge_modify_req *req)
{
	union any_settings s;
	struct err e;
	enum bridge_resource r = bridge_resource_parse(req->resource_type);
	if (bridge_settings_struct_size(r) > sizeof(s))
		__builtin_trap();
	if (bridge_modify_req_settings(req, &s, &e) < 0)
		return;
	json_t *j = bridge_settings_to_json(r, &s);
	if (!j)
		__builtin_trap(); /* decoded values always fit back into jansson */
	union any_settings back;
	if (bridge_settings_decode(r, j, &back, &e) < 0)
		__builtin_trap();
	json_t *j2 = bridge_settings_to_json(r, &back);
	if (!json_equal(j, j2))
		__builtin_trap();
	json_decref(j2);
	json_decref(j);
	bridge_settings_fini(r, &back);
	bridge_settings_fini(r, &s);
}

static void check_payload(uint32_t type, uint64_t id, const uint8_t *p, size_t len)
{
	enum bridge_msg_kind k = bridge_msg_kind_for_type(type);
	if (k == BMSG_NONE)
		k = (enum bridge_msg_kind)(1 + id % (BMSG_KIND_COUNT - 1));
	if (bridge_msg_struct_size(k) > sizeof(union any_msg))
		__builtin_trap();

	union any_msg m;
	struct err e;
	int r = bridge_msg_decode(k, p, len, &m, &e);
	if (r < 0) {
		/* The answer the guest would send. */
		char *out;
		size_t n;
		bridge_msg_error_response(bridge_msg_hresult(r), e.msg, NULL, &out, &n);
		free(out);
		return;
	}
	if (k == BMSG_MODIFY_REQ)
		check_settings(&m.modify_req);

	char *out1, *out2;
	size_t n1, n2;
	if (bridge_msg_encode(k, &m, &out1, &n1, &e) < 0)
		__builtin_trap();
	/* HTML escaping can grow AnyInString documents up to 6x past the decoder's bound. */
	if (len * 6 < BRIDGE_MSG_MAX_DOCUMENT) {
		union any_msg m2;
		if (bridge_msg_decode(k, out1, n1, &m2, &e) < 0)
			__builtin_trap();
		if (bridge_msg_encode(k, &m2, &out2, &n2, &e) < 0)
			__builtin_trap();
		if (n1 != n2 || memcmp(out1, out2, n1) != 0)
			__builtin_trap();
		free(out2);
		bridge_msg_fini(k, &m2);
	}
	free(out1);

	if ((type & BRIDGE_MT_MASK) == BRIDGE_MT_REQUEST && bridge_msg_kind_for_type(type) == k) {
		struct bridge_req_base b;
		if (bridge_msg_peek_base(p, len, &b, &e) < 0)
			__builtin_trap(); /* the full request decoded, so its base must */
		bridge_req_base_fini(&b);
	}
	bridge_msg_fini(k, &m);
}

/* The units of bridge_json_check for a parsed tree (msg.h: object 4, array 2, keys and every
 * scalar 1). */
static unsigned long tree_units(json_t *v)
{
	unsigned long u = 0;
	if (json_is_object(v)) {
		u += 4;
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			(void)k;
			u += 1 + tree_units(x);
		}
	} else if (json_is_array(v)) {
		u += 2;
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) u += tree_units(x);
	} else {
		u += 1;
	}
	return u;
}

static void check_count(const uint8_t *p, size_t len)
{
	struct err e;
	long units = bridge_json_check(p, len, &e);
	if (units < 0) {
		union any_msg m;
		if (bridge_msg_decode(BMSG_REQ_BASE, p, len, &m, &e) == 0)
			__builtin_trap(); /* refused by the count: no decoder may take it */
		return;
	}
	json_t *j = json_loadb((const char *)p, len, JSON_DECODE_ANY, NULL);
	/* duplicate keys make jansson's tree smaller than the text, never larger */
	if (j && tree_units(j) > (unsigned long)units)
		__builtin_trap();
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf in;
	buf_init(&in);
	buf_append(&in, data, size);
	for (;;) {
		struct bridge_hdr h;
		const uint8_t *payload;
		size_t len;
		struct err e;
		if (bridge_frame_peek(&in, 0, &h, &payload, &len, &e) != 1)
			break;
		check_payload(h.type, h.id, payload, len);
		check_count(payload, len);
		buf_consume(&in, h.size);
	}
	buf_fini(&in);
	return 0;
}
