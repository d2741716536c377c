/* libFuzzer harness for ttrpc's frame parser and message decoders.  The first input byte
 * picks the size of the chunks the rest is fed in (frames split anywhere, oversized frames
 * skipped across chunks); every whole frame is decoded by its type: a Request (then its
 * payload as an EchoRequest and as a recursive Tree), a Response (its payload as an
 * EchoReply), Data (as an EchoRequest), unknown types as all three.  A decoded Request is
 * re-encoded with ttrpc_wire_put_request and must decode again to the same fields, a decoded
 * Response likewise with ttrpc_wire_put_response (else the harness traps).  The parser must
 * never hold more than one capped frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ttrpc/echo/echo.pb-c.h"
#include "ttrpc/ttrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small cap, so that the fuzzer reaches the oversized path with small inputs. */
#define FUZZ_MAX (4u << 10)

static void payload_as(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
	struct err e;
	ttrpc_msg_free(ttrpc_msg_unpack(d, p, n, &e));
}

static void check_request(const uint8_t *p, size_t n)
{
	struct err e;
	Ttrpc__Request *r = ttrpc_request_decode(p, n, &e);
	if (!r)
		return;
	payload_as(&ttrpc__echo__echo_request__descriptor, r->payload.data, r->payload.len);
	payload_as(&ttrpc__echo__tree__descriptor, r->payload.data, r->payload.len);
	/* Re-encode the envelope (the payload is opaque here) and compare its fields. */
	struct ttrpc_kv *md = calloc(r->n_metadata ? r->n_metadata : 1, sizeof(*md));
	for (size_t i = 0; i < r->n_metadata; i++)
		md[i] = (struct ttrpc_kv){r->metadata[i]->key, r->metadata[i]->value};
	struct ttrpc_request_out rq = {.service = r->service,
	                               .method = r->method,
	                               .timeout_nano = r->timeout_nano,
	                               .metadata = md,
	                               .n_metadata = r->n_metadata};
	struct buf b;
	buf_init(&b);
	if (ttrpc_wire_put_request(&b, 1, 0, &rq, &e) == 0) {
		Ttrpc__Request *again = ttrpc_request_decode(buf_head(&b) + TTRPC_HDR_SIZE,
		                                             buf_avail(&b) - TTRPC_HDR_SIZE, &e);
		if (!again || strcmp(again->service, r->service) ||
		    strcmp(again->method, r->method) || again->timeout_nano != r->timeout_nano ||
		    again->n_metadata != r->n_metadata)
			__builtin_trap();
		for (size_t i = 0; i < r->n_metadata; i++)
			if (strcmp(again->metadata[i]->key, r->metadata[i]->key) ||
			    strcmp(again->metadata[i]->value, r->metadata[i]->value))
				__builtin_trap();
		ttrpc_msg_free(&again->base);
	}
	buf_fini(&b);
	free(md);
	ttrpc_msg_free(&r->base);
}

static void check_response(const uint8_t *p, size_t n)
{
	struct err e;
	Ttrpc__Response *r = ttrpc_response_decode(p, n, &e);
	if (!r)
		return;
	payload_as(&ttrpc__echo__echo_reply__descriptor, r->payload.data, r->payload.len);
	const Google__Rpc__Status *st = r->status;
	struct buf b;
	buf_init(&b);
	if (ttrpc_wire_put_response(&b, 1, st ? st->code : 0, st ? st->message : "",
	                            st ? st->n_details : 0, st ? st->details : NULL, NULL,
	                            &e) == 0) {
		Ttrpc__Response *again = ttrpc_response_decode(buf_head(&b) + TTRPC_HDR_SIZE,
		                                               buf_avail(&b) - TTRPC_HDR_SIZE, &e);
		if (!again || !again->status || again->status->code != (st ? st->code : 0) ||
		    strcmp(again->status->message, st ? st->message : "") ||
		    again->status->n_details != (st ? st->n_details : 0))
			__builtin_trap();
		ttrpc_msg_free(&again->base);
	}
	buf_fini(&b);
	ttrpc_msg_free(&r->base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	struct ttrpc_framer fr;
	ttrpc_framer_init(&fr, FUZZ_MAX);
	struct buf in;
	buf_init(&in);
	for (size_t off = 0; off < size;) {
		size_t n = size - off < chunk ? size - off : chunk;
		buf_append(&in, data + off, n);
		off += n;
		struct ttrpc_frame f;
		while (ttrpc_framer_next(&fr, &in, &f) == 1) {
			if (f.oversized) {
				if (f.h.length <= FUZZ_MAX)
					__builtin_trap();
				continue;
			}
			switch (f.h.type) {
			case TTRPC_MSG_REQUEST:
				check_request(f.data, f.h.length);
				break;
			case TTRPC_MSG_RESPONSE:
				check_response(f.data, f.h.length);
				break;
			case TTRPC_MSG_DATA:
				payload_as(&ttrpc__echo__echo_request__descriptor, f.data,
				           f.h.length);
				break;
			default:
				check_request(f.data, f.h.length);
				check_response(f.data, f.h.length);
				payload_as(&ttrpc__echo__tree__descriptor, f.data, f.h.length);
			}
		}
		/* Never more than one capped frame (plus a header) waits in the buffer. */
		if (buf_avail(&in) > TTRPC_HDR_SIZE + FUZZ_MAX)
			__builtin_trap();
	}
	buf_fini(&in);
	return 0;
}
