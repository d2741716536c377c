/* CreateDuplicateSocket, Windows half (hcsshim-lm.md §4.2 RegisterDuplicateSocket): the
 * orchestrator duplicates its connected migration socket for the shim's process with
 * WSADuplicateSocketW and sends the WSAPROTOCOL_INFOW bytes as protocol_info; the shim makes its
 * own socket from them.  Exactly hcsshim's rules: the blob must be at least
 * sizeof(WSAPROTOCOL_INFOW) bytes (it is the native struct, copied byte for byte; extra bytes
 * are ignored), WSAStartup(2.2) is called once per process and never undone,
 * WSASocketW(af, type, protocol, &info, 0, 0) (not overlapped) makes the socket, and it must be
 * connected: getsockopt(SO_CONNECT_TIME) of 0xFFFFFFFF means never connected.  The Linux half
 * (pidfd_getfd) lives with the Migration service (host/shim/dupsock). */
#ifndef FERRY_HOST_VMM_HCS_WIN_HCS_DUPSOCK_H
#define FERRY_HOST_VMM_HCS_WIN_HCS_DUPSOCK_H

#include <winsock2.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define HCS_PROTOCOL_INFO_SIZE sizeof(WSAPROTOCOL_INFOW) /* 628 bytes */

/* A socket from the WSAPROTOCOL_INFOW bytes info[0..len): 0 with *out set (caller owns it:
 * closesocket), or
 *   -EINVAL    len < HCS_PROTOCOL_INFO_SIZE (hcsshim: InvalidArgument)
 *   -ENOTCONN  the socket was never connected (hcsshim: FailedPrecondition)
 *   -EIO       WSASocketW or getsockopt failed (the WSA error in the message); no socket is
 *              left behind. */
int hcs_dupsock_import(const uint8_t *info, size_t len, SOCKET *out, struct err *e);
/* The orchestrator's side, for ferryctl and the tests: WSADuplicateSocketW(s, pid) into
 * info (HCS_PROTOCOL_INFO_SIZE bytes). */
int hcs_dupsock_export(SOCKET s, unsigned long pid, uint8_t *info, struct err *e);

#endif
