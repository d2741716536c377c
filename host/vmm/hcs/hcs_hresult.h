/* HRESULTs from computecore.dll as ferry errors: a table of the HCS codes (Microsoft's "HCS
 * Error Code" reference, 0x80370100..0x8037011F; hcsshim also sees them with the severity
 * bits 0xC0370000, which is the same code) and of the Win32 ones HCS passes through, each
 * with its name, meaning and the negative errno callers branch on.  The errno choices that
 * matter to callers:
 *   HCS_E_INVALID_STATE           -EALREADY   (a cancel with nothing left to cancel: hcsshim's
 *                                              ErrInvalidState, which its Cancel treats as done)
 *   HCS_E_OPERATION_TIMEOUT       -ETIMEDOUT
 *   E_ABORT, ERROR_CANCELLED      -ECANCELED  (an operation cancelled by HcsCancelOperation or
 *                                              HcsCancelLiveMigration)
 *   HCS_E_SYSTEM_NOT_FOUND        -ENOENT
 *   E_NOTIMPL, ERROR_PROC_NOT_FOUND -ENOSYS
 *   anything else                 -EIO, the HRESULT in the message.
 * Pure functions; portable, unit-tested on Linux. */
#ifndef FERRY_HOST_VMM_HCS_HRESULT_H
#define FERRY_HOST_VMM_HCS_HRESULT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define HCS_E_NOTIMPL            0x80004001u
#define HCS_E_ABORT              0x80004004u
#define HCS_E_INVALIDARG         0x80070057u
#define HCS_E_HANDLE             0x80070006u
#define HCS_E_CANCELLED          0x800704c7u /* HRESULT_FROM_WIN32(ERROR_CANCELLED) */
#define HCS_E_INVALID_STATE      0x80370105u
#define HCS_E_INVALID_JSON       0x8037010du
#define HCS_E_SYSTEM_NOT_FOUND   0x8037010eu
#define HCS_E_OPERATION_TIMEOUT  0x80370118u
#define HCS_E_SERVICE_DISCONNECT 0x8037011eu

/* Symbolic name ("HCS_E_INVALID_STATE") or NULL when the code is not in the table. */
const char *hcs_hresult_name(uint32_t hr);
/* The negative errno for a failed HRESULT (see above); 0 for success codes (hr < 0x80000000). */
int hcs_hresult_errno(uint32_t hr);

/* Fill e for a failed HCS call and return its negative errno: "<what>: HRESULT 0x80370105
 * (HCS_E_INVALID_STATE: the requested operation is not valid in the current state)", then
 * ": <ErrorMessage>" when result (HCS's ResultError document, UTF-8, may be NULL) carries one. */
int hcs_hresult_err(struct err *e, uint32_t hr, const char *result, size_t result_len,
                    const char *what);

#endif
