/* Loading computecore.dll's entries into struct hcs_api (see hcs_api.h): one table of names,
 * offsets and whether each is required. */
#include "host/vmm/hcs/win/hcs_api.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

static const struct {
	const char *name;
	size_t off;
	bool required;
} entries[] = {
#define REQ(n)                                                                                     \
	{                                                                                          \
#n, offsetof(struct hcs_api, n), true                                              \
	}
#define OPT(n)                                                                                     \
	{                                                                                          \
#n, offsetof(struct hcs_api, n), false                                             \
	}
    REQ(HcsCreateOperation),
    REQ(HcsCloseOperation),
    REQ(HcsWaitForOperationResult),
    REQ(HcsCancelOperation),
    REQ(HcsCreateComputeSystem),
    REQ(HcsCloseComputeSystem),
    REQ(HcsStartComputeSystem),
    REQ(HcsShutDownComputeSystem),
    REQ(HcsTerminateComputeSystem),
    REQ(HcsModifyComputeSystem),
    REQ(HcsGetComputeSystemProperties),
    REQ(HcsSetComputeSystemCallback),
    REQ(HcsGrantVmAccess),
    OPT(HcsAddResourceToOperation),
    OPT(HcsInitializeLiveMigrationOnSource),
    OPT(HcsStartLiveMigrationOnSource),
    OPT(HcsStartLiveMigrationTransfer),
    OPT(HcsFinalizeLiveMigration),
    OPT(HcsCancelLiveMigration),
#undef REQ
#undef OPT
};

static int lookup(struct hcs_api *api, HMODULE m, struct err *e)
{
	memset(api, 0, sizeof(*api));
	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		FARPROC f = GetProcAddress(m, entries[i].name);
		if (!f && entries[i].required)
			return err_set(e, -ENOSYS, "computecore.dll has no %s", entries[i].name);
		memcpy((char *)api + entries[i].off, &f, sizeof(f));
	}
	api->module = m;
	return 0;
}

int hcs_api_load(struct hcs_api *api, const wchar_t *path, struct err *e)
{
	HMODULE m = path ? LoadLibraryExW(path, NULL, LOAD_WITH_ALTERED_SEARCH_PATH)
	                 : LoadLibraryExW(L"computecore.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
	if (!m)
		return err_set(
		    e, -ENOENT,
		    "cannot load computecore.dll%s (Windows error %lu): the Host Compute "
		    "Service is not available",
		    path ? "" : " from System32", (unsigned long)GetLastError());
	int r = lookup(api, m, e);
	if (r < 0) {
		FreeLibrary(m);
		memset(api, 0, sizeof(*api));
	}
	return r;
}

int hcs_api_copy(struct hcs_api *dst, const struct hcs_api *src, struct err *e)
{
	HMODULE m;
	/* a reference of our own, found through an address inside the module */
	if (!src->HcsCreateOperation ||
	    !GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
	                        (LPCWSTR)(void *)src->HcsCreateOperation, &m))
		return err_set(e, -ENOSYS, "no computecore.dll module behind this api table");
	*dst = *src;
	dst->module = m;
	return 0;
}

void hcs_api_release(struct hcs_api *api)
{
	if (api && api->module) {
		FreeLibrary(api->module);
		api->module = NULL;
	}
}

bool hcs_api_has_migration(const struct hcs_api *api)
{
	return api->HcsAddResourceToOperation && api->HcsInitializeLiveMigrationOnSource &&
	       api->HcsStartLiveMigrationOnSource && api->HcsStartLiveMigrationTransfer &&
	       api->HcsFinalizeLiveMigration;
}
