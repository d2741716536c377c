/* computecore.dll, loaded at run time: every HCS function the backend calls is looked up with
 * GetProcAddress in a DLL opened by LoadLibraryExW(L"computecore.dll", NULL,
 * LOAD_LIBRARY_SEARCH_SYSTEM32), never imported (an exe that imports computecore.dll does not
 * even start where the DLL is absent, and only System32 is searched, so no planted DLL beside
 * the exe is picked up).
 *
 * mingw-w64 10 declares the basic HCS API (computecore.h, computedefs.h) but none of the live
 * migration functions, nor HcsAddResourceToOperation, HCS_RESOURCE_TYPE,
 * HcsEventOptionEnableLiveMigrationEvents or the live-migration event group: they are declared
 * here from the Windows SDK's ComputeCore.h / ComputeDefs.h and hcsshim's computecore package
 * (hcsshim-lm.md §2.2).  The basic functions take their types from mingw's declarations.
 *
 * Required entries are the ones any sandbox needs; the live-migration entries are optional
 * (NULL when the DLL lacks them: older Windows builds), and HcsCancelLiveMigration in
 * particular is in no public export list or SDK header we could find (the SDK's ComputeCore.h
 * and a published export table of computecore.dll list the four other live-migration
 * functions only), although hcsshim calls it since c917b1732; the backend falls back to
 * HcsCancelOperation on the operation in flight when it is missing (docs/windows.md). */
#ifndef FERRY_HOST_VMM_HCS_WIN_HCS_API_H
#define FERRY_HOST_VMM_HCS_WIN_HCS_API_H

#include <winsock2.h>
#include <windows.h>
#include <computecore.h>
#include <stdbool.h>

#include "common/err.h"

#ifndef AF_HYPERV
#define AF_HYPERV 34 /* the SDK's value; mingw-w64's hvsocket.h lacks it */
#endif

typedef int HCS_RESOURCE_TYPE_FERRY; /* HCS_RESOURCE_TYPE: HcsResourceTypeSocket = 4 */
#define HCS_EVENT_OPTION_ENABLE_LIVE_MIGRATION_EVENTS ((HCS_EVENT_OPTIONS)4)

typedef HRESULT(WINAPI *hcs_lm_fn)(HCS_SYSTEM system, HCS_OPERATION operation, PCWSTR options);
typedef HRESULT(WINAPI *hcs_add_resource_fn)(HCS_OPERATION operation, HCS_RESOURCE_TYPE_FERRY type,
                                             PCWSTR uri, HANDLE handle);

struct hcs_api {
	HMODULE module; /* the DLL the entries come from (one LoadLibrary reference) */
	/* required */
	__typeof__(HcsCreateOperation) *HcsCreateOperation;
	__typeof__(HcsCloseOperation) *HcsCloseOperation;
	__typeof__(HcsWaitForOperationResult) *HcsWaitForOperationResult;
	__typeof__(HcsCancelOperation) *HcsCancelOperation;
	__typeof__(HcsCreateComputeSystem) *HcsCreateComputeSystem;
	__typeof__(HcsCloseComputeSystem) *HcsCloseComputeSystem;
	__typeof__(HcsStartComputeSystem) *HcsStartComputeSystem;
	__typeof__(HcsShutDownComputeSystem) *HcsShutDownComputeSystem;
	__typeof__(HcsTerminateComputeSystem) *HcsTerminateComputeSystem;
	__typeof__(HcsModifyComputeSystem) *HcsModifyComputeSystem;
	__typeof__(HcsGetComputeSystemProperties) *HcsGetComputeSystemProperties;
	__typeof__(HcsSetComputeSystemCallback) *HcsSetComputeSystemCallback;
	__typeof__(HcsGrantVmAccess) *HcsGrantVmAccess;
	/* optional: live migration */
	hcs_add_resource_fn HcsAddResourceToOperation;
	hcs_lm_fn HcsInitializeLiveMigrationOnSource;
	hcs_lm_fn HcsStartLiveMigrationOnSource;
	hcs_lm_fn HcsStartLiveMigrationTransfer;
	hcs_lm_fn HcsFinalizeLiveMigration;
	hcs_lm_fn HcsCancelLiveMigration;
};

/* Open computecore.dll from System32 (path NULL) or from an explicit path (tests), and look
 * up every entry.  A missing required entry is -ENOSYS naming it (the module is released); a
 * missing DLL is -ENOENT.  On success the caller owns one reference to api->module
 * (hcs_api_release). */
int hcs_api_load(struct hcs_api *api, const wchar_t *path, struct err *e);
/* dst = src (entries as they are, a test may have cleared some) with a module reference of
 * its own. */
int hcs_api_copy(struct hcs_api *dst, const struct hcs_api *src, struct err *e);
/* Drop the module reference; NULL-safe, idempotent. */
void hcs_api_release(struct hcs_api *api);
/* Does api have every live-migration entry the verbs need (cancel excepted)? */
bool hcs_api_has_migration(const struct hcs_api *api);

#endif
