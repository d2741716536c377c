/* A saved-state envelope with every field set, built in C for the payload tests and the
 * payload benchmark: a VM with SCSI disks (two read-only layers shared by all containers,
 * a scratch disk per container), one vPCI device, one Plan9 share, the GCS client's state
 * and one process of the utility VM; pods with a network, containers with layers and two
 * processes each (init, and an exec with an OCI process spec, stdin resume state and, in
 * every second container, a retained exit status).  The values are deterministic; the
 * protoc fixture tests/data/payload/ (text format) spells out the same tree for
 * payload_sample_build(s, 2, 1) (two pods of one container). */
#ifndef FERRY_TESTS_LIB_PAYLOAD_SAMPLE_H
#define FERRY_TESTS_LIB_PAYLOAD_SAMPLE_H

#include <stddef.h>

#include "host/ctrl/envelope_save.h"

/* Fill *s (zeroed first; free with envelope_save_fini) with n_pods pods of
 * containers_per_pod containers each. */
void payload_sample_build(struct envelope_save *s, size_t n_pods, size_t containers_per_pod);

/* For tests that break payloads on the wire: the child payload in `a` as a message of kind
 * k (protobuf-c's default allocator; aborts on bytes that do not unpack), and m packed back
 * into a (m is freed). */
void *payload_sample_unpack(const Google__Protobuf__Any *a, enum save_kind k);
void payload_sample_repack(Google__Protobuf__Any *a, void *m);

/* The OCI process spec of the sample's exec processes (JSON text). */
extern const char payload_sample_spec[];

#endif
