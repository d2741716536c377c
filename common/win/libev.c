/* libev for Windows, embedded as ev.pod's "EMBEDDING" and "WIN32 PLATFORM LIMITATIONS" sections
 * describe: libev has no Windows build of its own, so ferry compiles ev.c (from Debian's libev
 * source package, unpacked by tests/scripts/win-deps.sh) into libcommon with the select backend
 * over winsock.  Sockets only: an ev_io "fd" is the SOCKET value itself (no CRT fd mapping), so
 * AF_HYPERV, TCP and AF_UNIX sockets can be watched; HCS callbacks arrive on HCS's threads and
 * reach the loop through ev_async (host/vmm/hcs/win/).  docs/windows.md says why select rather
 * than an IOCP loop.  The macros below only choose the backend and the fd mapping, so every
 * other file includes the stock ev.h unchanged. */
#define EV_STANDALONE          1
#define EV_USE_SELECT          1
#define EV_SELECT_IS_WINSOCKET 1
#define EV_USE_WSASOCKET       1
/* winsock's fd_set holds 64 sockets unless told otherwise */
#define FD_SETSIZE                    1024
#define EV_FD_TO_WIN32_HANDLE(fd)     ((SOCKET)(intptr_t)(fd))
#define EV_WIN32_HANDLE_TO_FD(handle) ((int)(intptr_t)(handle))
#define EV_WIN32_CLOSE_FD(fd)         closesocket((SOCKET)(intptr_t)(fd))

#include <stdint.h>

#include "ev.c"
