/* The sandbox envelope: hcsshim's migration payload
 * (hcsshim.controller.migration.save.v1.Payload, spec hcsshim-lm.md §3.1), the Any that
 * PrepareAndExportSandbox returns and ImportSandbox takes.  It holds the VM payload and one
 * payload per pod; decoding it decodes the whole tree, then checks the rules that span
 * payloads (docs/saved-state.md): the vm is present, no pod, container or GCS container id
 * twice in the envelope, every SCSI, Plan9 and vPCI reference of a container resolves in
 * the VM's payloads, stdio ports and bridge ids are unique and below the VM's allocators,
 * registered containers exist.  Nothing reaches the caller until all of it has passed, so
 * the controllers apply a whole, checked tree or nothing.
 *
 * Usage: the source's controllers each fill their part of a struct envelope_save and
 * envelope_save_encode packs it; the destination calls envelope_save_decode on the
 * ImportSandbox request's config and hands the parts to its controllers. */
#ifndef FERRY_HOST_CTRL_ENVELOPE_SAVE_H
#define FERRY_HOST_CTRL_ENVELOPE_SAVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "google/protobuf/any.pb-c.h"
#include "host/ctrl/pod_save.h"
#include "host/ctrl/save.h"
#include "host/ctrl/vm_save.h"

struct envelope_save {
	struct vm_save vm;
	struct pod_save *pods; /* owned */
	size_t n_pods;
};

/* NULL-safe; zeroes *s. */
void envelope_save_fini(struct envelope_save *s);

/* Pack the whole tree into an Any (release with save_any_fini), or append the packed Any to
 * out (what an envelope file holds).  -E2BIG when the envelope exceeds the size limit (it
 * must fit one ttrpc message). */
int envelope_save_encode(const struct envelope_save *s, Google__Protobuf__Any *out, struct err *e);
int envelope_save_encode_bytes(const struct envelope_save *s, struct buf *out, struct err *e);

/* Decode and check the whole tree from the Any (ImportSandboxRequest.config) or from its
 * packed bytes.  opts may be NULL (default limits, stop at the first error).  On failure
 * *out is left exactly as it was and e says what is wrong, naming the payload, the field
 * and the value ("import pod `p1`: container `c2`: schema_version 99, want 1").  Errors:
 * see host/ctrl/save.h. */
int envelope_save_decode(const Google__Protobuf__Any *any, struct save_decode_opts *opts,
                         struct envelope_save *out, struct err *e);
int envelope_save_decode_bytes(const uint8_t *p, size_t n, struct save_decode_opts *opts,
                               struct envelope_save *out, struct err *e);

/* Totals for messages and tools. */
size_t envelope_save_containers(const struct envelope_save *s);
size_t envelope_save_processes(const struct envelope_save *s);

#endif
