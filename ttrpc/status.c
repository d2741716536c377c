/* Status code names and the errno <-> code tables. */
#include "ttrpc/status.h"

#include <errno.h>

static const char *const names[] = {
    [TTRPC_OK] = "OK",
    [TTRPC_CANCELLED] = "Canceled",
    [TTRPC_UNKNOWN] = "Unknown",
    [TTRPC_INVALID_ARGUMENT] = "InvalidArgument",
    [TTRPC_DEADLINE_EXCEEDED] = "DeadlineExceeded",
    [TTRPC_NOT_FOUND] = "NotFound",
    [TTRPC_ALREADY_EXISTS] = "AlreadyExists",
    [TTRPC_PERMISSION_DENIED] = "PermissionDenied",
    [TTRPC_RESOURCE_EXHAUSTED] = "ResourceExhausted",
    [TTRPC_FAILED_PRECONDITION] = "FailedPrecondition",
    [TTRPC_ABORTED] = "Aborted",
    [TTRPC_OUT_OF_RANGE] = "OutOfRange",
    [TTRPC_UNIMPLEMENTED] = "Unimplemented",
    [TTRPC_INTERNAL] = "Internal",
    [TTRPC_UNAVAILABLE] = "Unavailable",
    [TTRPC_DATA_LOSS] = "DataLoss",
    [TTRPC_UNAUTHENTICATED] = "Unauthenticated",
};

const char *ttrpc_code_name(int code)
{
	if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
		return "unknown code";
	return names[code];
}

/* One table serves both directions: the first row of a code is its errno for
 * ttrpc_errno_from_code. */
static const struct {
	int err; /* positive errno */
	int code;
} map[] = {
    {EINVAL, TTRPC_INVALID_ARGUMENT},   {ENOENT, TTRPC_NOT_FOUND},
    {EEXIST, TTRPC_ALREADY_EXISTS},     {EPERM, TTRPC_PERMISSION_DENIED},
    {EACCES, TTRPC_PERMISSION_DENIED},  {ETIMEDOUT, TTRPC_DEADLINE_EXCEEDED},
    {ECANCELED, TTRPC_CANCELLED},       {ENOSYS, TTRPC_UNIMPLEMENTED},
    {EOPNOTSUPP, TTRPC_UNIMPLEMENTED},  {EMSGSIZE, TTRPC_RESOURCE_EXHAUSTED},
    {ENOMEM, TTRPC_RESOURCE_EXHAUSTED}, {ENOSPC, TTRPC_RESOURCE_EXHAUSTED},
    {EBUSY, TTRPC_FAILED_PRECONDITION}, {EALREADY, TTRPC_FAILED_PRECONDITION},
    {ERANGE, TTRPC_OUT_OF_RANGE},       {EOVERFLOW, TTRPC_OUT_OF_RANGE},
    {EAGAIN, TTRPC_UNAVAILABLE},        {ECONNRESET, TTRPC_UNAVAILABLE},
    {EPIPE, TTRPC_UNAVAILABLE},         {ENOTCONN, TTRPC_UNAVAILABLE},
    {ECONNREFUSED, TTRPC_UNAVAILABLE},  {EBADMSG, TTRPC_INTERNAL},
    {EPROTO, TTRPC_INTERNAL},           {EIO, TTRPC_UNKNOWN},
};

int ttrpc_code_from_errno(int neg_errno)
{
	if (neg_errno == 0)
		return TTRPC_OK;
	int en = neg_errno < 0 ? -neg_errno : neg_errno;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].err == en)
			return map[i].code;
	return TTRPC_UNKNOWN;
}

int ttrpc_errno_from_code(int code)
{
	if (code == TTRPC_OK)
		return 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].code == code)
			return -map[i].err;
	return -EIO;
}
