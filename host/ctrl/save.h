/* What every saved-state payload module (host/ctrl/<object>_save.c) does the same way: the
 * table of payload types and their exact type URLs, packing a payload into a
 * google.protobuf.Any, and unpacking one from hostile bytes with every generic check —
 * exact type URL for its slot, size caps, a wire-format pass before protobuf-c sees the
 * bytes (valid UTF-8 without NUL in every string field, no group encoding, wire types that
 * match the schema), a counting ProtobufCAllocator so that one input cannot cost more than
 * a stated amount of memory, schema_version, GUIDs, JSON documents, durations and
 * timestamps.  Errors name the payload, the field and the value; docs/saved-state.md has
 * the rules.
 *
 * Errors: -EBADMSG for bytes that are not the protobuf they claim to be (truncated, bad
 * wire type, invalid UTF-8, unknown type URL), -EINVAL for well-formed payloads whose
 * content breaks a rule (schema_version, a bad GUID, a duplicate id, a slot out of range),
 * -E2BIG when a limit of struct save_limits is exceeded. */
#ifndef FERRY_HOST_CTRL_SAVE_H
#define FERRY_HOST_CTRL_SAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/guid.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

/* Every payload's schema_version (hcsshim's SchemaVersion constants). */
#define SAVE_SCHEMA_VERSION 1u
/* hcsshim's numLUNsPerController: slot = controller * 64 + lun. */
#define SAVE_LUNS_PER_CONTROLLER 64u
/* The GCS host session secret (ferry_gcs_session_secret). */
#define SAVE_SESSION_SECRET_LEN 32u

/* The payload kinds, in nesting order. */
enum save_kind {
	SAVE_ENVELOPE, /* hcsshim.controller.migration.save.v1.Payload */
	SAVE_VM,
	SAVE_SCSI,
	SAVE_VPCI,  /* ferry's */
	SAVE_PLAN9, /* ferry's */
	SAVE_POD,
	SAVE_NETWORK,
	SAVE_CONTAINER, /* hcsshim.controller.linuxcontainer.save.v1.Payload */
	SAVE_PROCESS,
	SAVE_N_KINDS
};

struct save_type {
	const char *name;     /* "vm", "pod", ... for messages */
	const char *type_url; /* exact; hcsshim's use type.microsoft.com/ */
	const ProtobufCMessageDescriptor *desc;
};
/* Indexed by enum save_kind. */
extern const struct save_type save_types[SAVE_N_KINDS];
/* The type with this exact URL, or NULL. */
const struct save_type *save_type_by_url(const char *type_url);

/* Limits for decoding one envelope (docs/saved-state.md says why these values). */
struct save_limits {
	size_t max_bytes;       /* a packed envelope (or any one payload) */
	size_t max_memory;      /* allocated at once while decoding, protobuf-c's and ours */
	size_t max_pods;        /* in the envelope */
	size_t max_containers;  /* in the whole envelope */
	size_t max_processes;   /* in the whole envelope, UVM processes included */
	size_t max_items;       /* any other list or map (layers, endpoints, mounts, ...) */
	size_t max_string;      /* bytes of any string field */
	uint32_t max_scsi_ctrl; /* SCSI num_controllers */
};
extern const struct save_limits save_default_limits;

/* Options of a whole-envelope decode (envelope_save.h). */
struct save_decode_opts {
	const struct save_limits *limits; /* NULL: save_default_limits */
	/* Keep going after a failing top-level child (the vm, a pod): called with each one's
	 * error, the decode still fails.  NULL: stop at the first error. */
	void (*on_error)(const struct err *e, void *arg);
	void *arg;
	size_t peak_memory; /* out: the most the decode held allocated at once */
};

/* ---- for the payload modules ---- */

struct save_chunk;

/* The state of one decode: the allocator handed to protobuf-c and running totals.  Lives on
 * the caller's stack for the duration of one decode; not shared between threads.
 *
 * protobuf-c allocates every field it unpacks.  Here it allocates from a stack of chunks
 * (bump allocation, counted against limits->max_memory, refused past it), and
 * save_msg_free releases a message and everything allocated after it at once: messages are
 * unpacked nested (a parent lives while its children are decoded), so they must be freed in
 * the reverse order of unpacking. */
struct save_dec {
	ProtobufCAllocator pa;
	const struct save_limits *lim;
	size_t used, peak; /* bytes held: chunks plus the decoded structs */
	bool over;         /* an allocation was refused */
	size_t n_containers, n_processes;
	struct err *e;
	struct save_chunk *top; /* the chunk being filled */
	struct save_mark {
		const void *msg;
		struct save_chunk *chunk;
		size_t used;
	} marks[16]; /* where each live message began */
	unsigned n_marks;
};

/* lim NULL: save_default_limits.  Release with save_dec_fini. */
void save_dec_init(struct save_dec *d, const struct save_limits *lim, struct err *e);
/* Free what the decode's allocator holds (every message must be freed or abandoned). */
void save_dec_fini(struct save_dec *d);

/* Check and unpack the child payload `any` (non-NULL) of kind `want` held in the slot
 * `slot` (a field name or label that prefixes errors; NULL: the caller names it): exact
 * type URL ("a pod payload in the vm
 * slot" when it is another known kind), size, wire format, then protobuf-c with the
 * counting allocator.  Returns the message (free with save_msg_free) or NULL with d->e. */
ProtobufCMessage *save_unpack(struct save_dec *d, enum save_kind want,
                              const Google__Protobuf__Any *any, const char *slot);
/* Release msg and everything unpacked after it (NULL-safe). */
void save_msg_free(struct save_dec *d, void *msg);

/* The shape every payload decoder shares (save_decode_child): unpack, check the payload's
 * id when it has one, decode the fields into *out, name the payload in any error, free
 * the message, and on failure free what was decoded. */
struct save_child {
	enum save_kind kind;
	size_t out_size;
	const char *id_field; /* a required id string field ("pod_id"); NULL: none */
	/* Fill out (zeroed) from the unpacked payload m; the id, if any, is checked. */
	int (*decode)(struct save_dec *d, const ProtobufCMessage *m, void *out);
	void (*fini)(void *out);
};
/* Decode `any` as c says.  Errors are prefixed "<kind> `<id>`" once the id is known, else
 * "<label>[idx]" (or "<label>" when idx is SIZE_MAX).  On failure *out is zeroed. */
int save_decode_child(struct save_dec *d, const struct save_child *c,
                      const Google__Protobuf__Any *any, const char *label, size_t idx, void *out);

/* Parse a packed google.protobuf.Any (an envelope file, a fuzz input) with the same
 * checks and budget.  Free with save_msg_free. */
Google__Protobuf__Any *save_any_unpack(struct save_dec *d, const uint8_t *p, size_t n);

/* -EINVAL "schema_version V, want 1" unless v is SAVE_SCHEMA_VERSION. */
int save_check_schema(struct save_dec *d, uint32_t v);
/* A required id: non-empty.  (UTF-8 and length were checked on the wire.) */
int save_check_id(struct save_dec *d, const char *field, const char *s);
/* A GUID in its 36-character text form, either case, no braces. */
int save_check_guid(struct save_dec *d, const char *field, const char *s, struct guid *out);
/* A JSON document (bytes field): a JSON object or null (empty: allowed iff may_be_empty).
 * Checked without allocating; accepts exactly what jansson decodes, except numbers longer
 * than 256 characters. */
int save_check_json(struct save_dec *d, const char *field, const ProtobufCBinaryData *b,
                    bool may_be_empty);
/* A count against a limit: -E2BIG "<what>: N, limit L". */
int save_check_count(struct save_dec *d, const char *what, size_t n, size_t limit);
/* google.protobuf.Duration (NULL: 0) as nanoseconds: non-negative, within int64. */
int save_duration_ns(struct save_dec *d, const char *field, const Google__Protobuf__Duration *p,
                     int64_t *out);
/* google.protobuf.Timestamp (NULL: 0) as nanoseconds since the epoch, within int64. */
int save_timestamp_ns(struct save_dec *d, const char *field, const Google__Protobuf__Timestamp *p,
                      int64_t *out);

/* Counted allocations for the decoded structs (freed with free()); NULL with -E2BIG in
 * d->e when the budget is exhausted. */
void *save_calloc(struct save_dec *d, size_t n, size_t size);
char *save_strdup(struct save_dec *d, const char *s);
/* A copy of b's bytes plus a NUL (so JSON text can be used as a C string); *len = b->len.
 * b->len 0 gives NULL and *len 0. */
char *save_memdup(struct save_dec *d, const ProtobufCBinaryData *b, size_t *len);

/* The same string appears twice in ids[0..n): -EINVAL "<what> `x` twice".  GUID text is
 * compared without case. */
int save_check_unique(struct save_dec *d, const char *what, char *const *ids, size_t n, bool guid);

/* A list of GUID texts (a repeated string field): at most max_items, each a GUID, no two
 * equal.  *out (NULL when n is 0) is a counted allocation the caller frees. */
int save_guids(struct save_dec *d, const char *field, char *const *in, size_t n, struct guid **out);
/* A copy of a list of strings (at most max_items).  Free with save_strings_free. */
int save_strings(struct save_dec *d, const char *field, char *const *in, size_t n, char ***out);
void save_strings_free(char **v, size_t n);

/* Valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF) and no NUL byte; on
 * failure *bad is the offset of the first offending byte. */
bool save_utf8_ok(const uint8_t *p, size_t n, size_t *bad);

/* ---- encoding ---- */

/* Pack m (a payload of kind k) into out: type_url = the kind's URL (static), value = the
 * packed bytes (malloc'd).  -E2BIG when larger than save_default_limits.max_bytes. */
int save_pack(enum save_kind k, const ProtobufCMessage *m, Google__Protobuf__Any *out,
              struct err *e);
/* The text form hcsshim writes (lower-case, as guid_format) into out (GUID_STR_LEN + 1
 * bytes); returns out. */
char *save_guid_text(const struct guid *g, char *out);
/* The text forms of n GUIDs (lower-case, as hcsshim writes them) as an array of strings in
 * one allocation: free() it.  NULL when n is 0. */
char **save_guid_texts(const struct guid *g, size_t n);
/* Free what save_pack put in a (NULL-safe) and reset it to an empty Any. */
void save_any_fini(Google__Protobuf__Any *a);
/* Scratch for encoding a repeated or map field of n entries: the entry messages (esz bytes
 * each; for a list of payloads, Anys), the pointer array protobuf-c packs (ptrs[i] points at
 * entry i), value messages for map entries (vsz bytes each, none when 0) and GUID key
 * texts.  Zeroed; released with save_map_free once the payload is packed. */
struct save_map {
	void *ents;
	void **ptrs;
	void *vals;
	char (*keys)[GUID_STR_LEN + 1];
};
void save_map_alloc(struct save_map *m, size_t n, size_t esz, size_t vsz);
void save_map_free(struct save_map *m);
/* For a list of n Anys (esz = sizeof(Google__Protobuf__Any)) or of map values that are
 * Anys: free what save_pack put in each, then the scratch. */
void save_map_free_anys(struct save_map *m, size_t n);
/* The packed google.protobuf.Any (what an envelope file holds), appended to out. */
void save_any_to_bytes(const Google__Protobuf__Any *a, struct buf *out);
/* A duration/timestamp message for an encoder (0 stays a present, empty message, as
 * hcsshim's durationpb.New writes it). */
void save_duration_set(Google__Protobuf__Duration *d, int64_t ns);
void save_timestamp_set(Google__Protobuf__Timestamp *t, int64_t ns);

/* Decode helper shared by the public <object>_save_decode functions: run `from_any` (an
 * <object>_save_from_any, whose third argument is `arg`) on a fresh decode with default
 * limits into a zeroed temporary, and store it in *out only on success, so a failed decode
 * leaves *out as it was. */
#define SAVE_DECODE_TOP(from_any, any, arg, out, e)                                                \
	({                                                                                         \
		struct save_dec dec_;                                                              \
		__typeof__(*(out)) tmp_;                                                           \
		memset(&tmp_, 0, sizeof(tmp_));                                                    \
		save_dec_init(&dec_, NULL, (e));                                                   \
		int rc_ = from_any(&dec_, (any), (arg), &tmp_);                                    \
		save_dec_fini(&dec_);                                                              \
		if (rc_ == 0)                                                                      \
			*(out) = tmp_;                                                             \
		rc_;                                                                               \
	})

#endif
