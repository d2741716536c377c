/* ttrpc call status: the gRPC status codes (google.rpc.Code; ttrpc answers with a
 * google.rpc.Status), their names, the mapping from ferry's negative-errno errors to a code,
 * and the status a completed client call reports. */
#ifndef FERRY_TTRPC_STATUS_H
#define FERRY_TTRPC_STATUS_H

#include <stddef.h>

#include "google/protobuf/any.pb-c.h"

/* Numerically gRPC's codes (the values on the wire). */
enum ttrpc_code {
	TTRPC_OK = 0,
	TTRPC_CANCELLED = 1,
	TTRPC_UNKNOWN = 2,
	TTRPC_INVALID_ARGUMENT = 3,
	TTRPC_DEADLINE_EXCEEDED = 4,
	TTRPC_NOT_FOUND = 5,
	TTRPC_ALREADY_EXISTS = 6,
	TTRPC_PERMISSION_DENIED = 7,
	TTRPC_RESOURCE_EXHAUSTED = 8,
	TTRPC_FAILED_PRECONDITION = 9,
	TTRPC_ABORTED = 10,
	TTRPC_OUT_OF_RANGE = 11,
	TTRPC_UNIMPLEMENTED = 12,
	TTRPC_INTERNAL = 13,
	TTRPC_UNAVAILABLE = 14,
	TTRPC_DATA_LOSS = 15,
	TTRPC_UNAUTHENTICATED = 16,
};

/* The status of a finished call as a client sees it.  Pointers are valid only during the
 * callback that receives the status. */
struct ttrpc_status {
	int code;            /* enum ttrpc_code, or any int32 a peer sent */
	const char *message; /* never NULL ("" when the peer sent none) */
	size_t n_details;    /* google.rpc.Status details, as the peer sent them */
	Google__Protobuf__Any *const *details;
};

/* gRPC's name of a code ("DeadlineExceeded", "ResourceExhausted", ...); a code outside
 * 0..16 gives "unknown code". */
const char *ttrpc_code_name(int code);

/* The code a handler error (negative errno, as in struct err) stands for: -EINVAL
 * InvalidArgument, -ENOENT NotFound, -EEXIST AlreadyExists, -EPERM/-EACCES PermissionDenied,
 * -ETIMEDOUT DeadlineExceeded, -ECANCELED Cancelled, -ENOSYS/-EOPNOTSUPP Unimplemented,
 * -EMSGSIZE/-ENOMEM/-ENOSPC ResourceExhausted, -EBUSY/-EALREADY FailedPrecondition,
 * -ERANGE/-EOVERFLOW OutOfRange, -EAGAIN/-ECONNRESET/-EPIPE/-ENOTCONN/-ECONNREFUSED
 * Unavailable, -EBADMSG/-EPROTO Internal; 0 OK; anything else Unknown. */
int ttrpc_code_from_errno(int neg_errno);

/* The reverse, for callers that keep errno-style errors: OK 0, NotFound -ENOENT, ...,
 * anything unmapped -EIO. */
int ttrpc_errno_from_code(int code);

#endif
