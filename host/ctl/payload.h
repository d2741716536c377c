/* `ferryctl payload show FILE` and `ferryctl payload check FILE`: what an operator reaches
 * for when a migration failed at import.  FILE holds a saved-state envelope, as ferry's or
 * hcsshim's PrepareAndExportSandbox returns it: a packed google.protobuf.Any with type URL
 * type.microsoft.com/hcsshim.controller.migration.save.v1.Payload.
 *
 * show prints the envelope as a tree with every Any expanded (known payload types by name,
 * unknown fields and undecodable children shown as such, the GCS session secret never
 * printed), then runs every import check; check runs the checks only and prints every
 * failing top-level payload (the vm, each pod) with its error.  Both bound memory as the
 * import does (host/ctrl/save.h). */
#ifndef FERRY_HOST_CTL_PAYLOAD_H
#define FERRY_HOST_CTL_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

/* Exit codes of the subcommands. */
enum {
	CTL_PAYLOAD_OK = 0,     /* the envelope passed every check */
	CTL_PAYLOAD_BAD = 1,    /* it was read, but a check failed (errors on stderr) */
	CTL_PAYLOAD_USAGE = 2,  /* bad arguments */
	CTL_PAYLOAD_UNREAD = 3, /* the file could not be read, or is not a google.protobuf.Any */
};

/* argv[0] is "payload".  Returns one of the codes above. */
int ctl_payload_main(int argc, char **argv);

/* Print the tree of the envelope p[0..n) to out.  0, or a negative errno with e filled when
 * p is not a google.protobuf.Any at all (what can be shown of a bad child is shown). */
int ctl_payload_show(const uint8_t *p, size_t n, FILE *out, struct err *e);

/* Run every import check; each failing top-level payload is printed to errs, a summary of a
 * good envelope to out.  Returns the number of errors (0: good). */
int ctl_payload_check(const uint8_t *p, size_t n, FILE *out, FILE *errs);

#endif
