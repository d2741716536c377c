/* The stand-in computecore.dll (standin.c): prototypes of the exports mingw-w64's
 * computecore.h lacks (the live-migration functions, HcsAddResourceToOperation), and of the
 * Standin* control functions, whose pointer types the tests use with GetProcAddress. */
#ifndef FERRY_TESTS_WINDOWS_STANDIN_H
#define FERRY_TESTS_WINDOWS_STANDIN_H

#include <winsock2.h>
#include <windows.h>
#include <computecore.h>
#include <stddef.h>

HRESULT WINAPI HcsAddResourceToOperation(HCS_OPERATION operation, int type, PCWSTR uri,
                                         HANDLE handle);
HRESULT WINAPI HcsInitializeLiveMigrationOnSource(HCS_SYSTEM system, HCS_OPERATION operation,
                                                  PCWSTR options);
HRESULT WINAPI HcsStartLiveMigrationOnSource(HCS_SYSTEM system, HCS_OPERATION operation,
                                             PCWSTR options);
HRESULT WINAPI HcsStartLiveMigrationTransfer(HCS_SYSTEM system, HCS_OPERATION operation,
                                             PCWSTR options);
HRESULT WINAPI HcsFinalizeLiveMigration(HCS_SYSTEM system, HCS_OPERATION operation, PCWSTR options);
HRESULT WINAPI HcsCancelLiveMigration(HCS_SYSTEM system, HCS_OPERATION operation, PCWSTR options);

/* Reset the log and the injections, then apply cfg: {"FailCall"|"FailResult"|"Hang":
 * "<function>", "Hr": <HRESULT>}.  0 or -EINVAL. */
int StandinConfigure(const char *cfg);
/* The call log (a JSON array) into out; returns the length it needs. */
size_t StandinLog(char *out, size_t cap);
/* Operations and compute systems open now. */
void StandinStats(long *ops, long *systems);
/* An event of type with payload (NULL: nil EventData) for the system id's callback. */
int StandinEmit(const char *id, unsigned type, const char *payload);

typedef int (*standin_configure_fn)(const char *cfg);
typedef size_t (*standin_log_fn)(char *out, size_t cap);
typedef void (*standin_stats_fn)(long *ops, long *systems);
typedef int (*standin_emit_fn)(const char *id, unsigned type, const char *payload);

#endif
