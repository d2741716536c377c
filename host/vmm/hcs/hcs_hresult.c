/* The HRESULT table and the error messages built from it (see hcs_hresult.h). */
#include "host/vmm/hcs/hcs_hresult.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "host/vmm/hcs/gojson.h"

/* Messages are bounded on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

struct hr_entry {
	uint32_t hr;
	const char *name;
	const char *what;
	int err;
};

static const struct hr_entry table[] = {
    {0x80004001u, "E_NOTIMPL", "not implemented", -ENOSYS},
    {0x80004004u, "E_ABORT", "operation aborted", -ECANCELED},
    {0x80004005u, "E_FAIL", "unspecified failure", -EIO},
    {0x8007000eu, "E_OUTOFMEMORY", "out of memory", -ENOMEM},
    {0x80070005u, "E_ACCESSDENIED", "access denied", -EACCES},
    {0x80070006u, "E_HANDLE", "invalid handle", -EBADF},
    {0x8007000du, "ERROR_INVALID_DATA", "the data is invalid", -EINVAL},
    {0x80070032u, "ERROR_NOT_SUPPORTED", "the request is not supported", -ENOTSUP},
    {0x80070057u, "E_INVALIDARG", "invalid argument", -EINVAL},
    {0x8007007fu, "ERROR_PROC_NOT_FOUND", "the procedure could not be found", -ENOSYS},
    {0x80070490u, "ERROR_NOT_FOUND", "element not found", -ENOENT},
    {0x800704c7u, "ERROR_CANCELLED", "the operation was cancelled", -ECANCELED},
    {0x80370100u, "HCS_E_TERMINATED_DURING_START", "exited unexpectedly while starting", -EIO},
    {0x80370101u, "HCS_E_IMAGE_MISMATCH", "container OS does not match the host", -EINVAL},
    {0x80370102u, "HCS_E_HYPERV_NOT_INSTALLED", "a required feature is not installed", -ENOTSUP},
    {0x80370105u, "HCS_E_INVALID_STATE",
     "the requested operation is not valid in the current state", -EALREADY},
    {0x80370106u, "HCS_E_UNEXPECTED_EXIT", "exited unexpectedly", -EIO},
    {0x80370107u, "HCS_E_TERMINATED", "forcefully exited", -EIO},
    {0x80370108u, "HCS_E_CONNECT_FAILED", "could not connect", -ECONNREFUSED},
    {0x80370109u, "HCS_E_CONNECTION_TIMEOUT", "no response in time", -ETIMEDOUT},
    {0x8037010au, "HCS_E_CONNECTION_CLOSED", "the connection was closed", -ECONNRESET},
    {0x8037010bu, "HCS_E_UNKNOWN_MESSAGE", "unknown internal message", -EPROTO},
    {0x8037010cu, "HCS_E_UNSUPPORTED_PROTOCOL_VERSION", "unsupported protocol version", -EPROTO},
    {0x8037010du, "HCS_E_INVALID_JSON", "the JSON document is invalid", -EINVAL},
    {0x8037010eu, "HCS_E_SYSTEM_NOT_FOUND", "no compute system with that id", -ENOENT},
    {0x8037010fu, "HCS_E_SYSTEM_ALREADY_EXISTS", "a compute system with that id exists", -EEXIST},
    {0x80370110u, "HCS_E_SYSTEM_ALREADY_STOPPED", "the compute system is not running", -ESRCH},
    {0x80370111u, "HCS_E_PROTOCOL_ERROR", "communication protocol error", -EPROTO},
    {0x80370112u, "HCS_E_INVALID_LAYER", "unrecognised layer format", -EINVAL},
    {0x80370113u, "HCS_E_WINDOWS_INSIDER_REQUIRED", "Windows Insider build required", -ENOTSUP},
    {0x80370114u, "HCS_E_SERVICE_NOT_AVAILABLE", "a required feature is not installed", -ENOTSUP},
    {0x80370115u, "HCS_E_OPERATION_NOT_STARTED", "the operation has not started", -EINVAL},
    {0x80370116u, "HCS_E_OPERATION_ALREADY_STARTED", "the operation is already running", -EBUSY},
    {0x80370117u, "HCS_E_OPERATION_PENDING", "the operation is still running", -EINPROGRESS},
    {0x80370118u, "HCS_E_OPERATION_TIMEOUT", "the operation did not complete in time", -ETIMEDOUT},
    {0x80370119u, "HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET",
     "an event callback is already registered", -EBUSY},
    {0x8037011au, "HCS_E_OPERATION_RESULT_ALLOCATION_FAILED", "no memory for the result", -ENOMEM},
    {0x8037011bu, "HCS_E_ACCESS_DENIED", "insufficient privileges (Hyper-V Administrators)",
     -EACCES},
    {0x8037011cu, "HCS_E_GUEST_CRITICAL_ERROR", "the guest reported a critical error", -EIO},
    {0x8037011du, "HCS_E_PROCESS_INFO_NOT_AVAILABLE", "process information not available", -ENOENT},
    {0x8037011eu, "HCS_E_SERVICE_DISCONNECT", "the compute service disconnected", -ECONNABORTED},
    {0x8037011fu, "HCS_E_PROCESS_ALREADY_STOPPED", "the process has already exited", -ESRCH},
};

static const struct hr_entry *lookup(uint32_t hr)
{
	/* the HCS facility also appears with both severity bits set (NTSTATUS style) */
	if ((hr & 0xffff0000u) == 0xc0370000u)
		hr = (hr & 0x0000ffffu) | 0x80370000u;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].hr == hr)
			return &table[i];
	return NULL;
}

const char *hcs_hresult_name(uint32_t hr)
{
	const struct hr_entry *t = lookup(hr);
	return t ? t->name : NULL;
}

int hcs_hresult_errno(uint32_t hr)
{
	if (hr < 0x80000000u)
		return 0;
	const struct hr_entry *t = lookup(hr);
	return t ? t->err : -EIO;
}

/* ResultError's ErrorMessage (a string member matched as Go matches it), or "". */
static void result_message(const char *doc, size_t n, char *out, size_t cap)
{
	struct gojson_val v, key, val;
	struct gojson_iter it;
	out[0] = '\0';
	if (!doc || n == 0 || gojson_parse(doc, n, &v, NULL) < 0 || v.kind != GOJSON_OBJECT)
		return;
	gojson_obj_iter(&v, &it);
	while (gojson_obj_next(&it, &key, &val))
		if (gojson_key_is(&key, "ErrorMessage") && val.kind == GOJSON_STRING)
			(void)gojson_str(&val, out, cap); /* a truncated message is still useful */
}

int hcs_hresult_err(struct err *e, uint32_t hr, const char *result, size_t result_len,
                    const char *what)
{
	int code = hcs_hresult_errno(hr);
	if (code == 0)
		code = -EIO; /* a "failure" that is a success code: still a failure here */
	const struct hr_entry *t = lookup(hr);
	char msg[256];
	result_message(result, result_len, msg, sizeof(msg));
	return err_set(e, code, "%s: HRESULT 0x%08x%s%s%s%s%s%s%s", what, hr, t ? " (" : "",
	               t ? t->name : "", t ? ": " : "", t ? t->what : "", t ? ")" : "",
	               msg[0] ? ": " : "", msg);
}
