/* CreateDuplicateSocket's Windows half (see hcs_dupsock.h). */
#include "host/vmm/hcs/win/hcs_dupsock.h"

#include <windows.h>
#include <errno.h>
#include <string.h>

#include "common/win/wsa.h"

#ifndef SO_CONNECT_TIME
#define SO_CONNECT_TIME 0x700C
#endif

int hcs_dupsock_import(const uint8_t *info, size_t len, SOCKET *out, struct err *e)
{
	if (!info || len < HCS_PROTOCOL_INFO_SIZE)
		return err_set(e, -EINVAL,
		               "protocol_info is %zu bytes, want at least %zu (a WSAPROTOCOL_INFOW "
		               "from WSADuplicateSocketW)",
		               len, (size_t)HCS_PROTOCOL_INFO_SIZE);
	int r = wsa_start(e);
	if (r < 0)
		return r;
	WSAPROTOCOL_INFOW pi;
	memcpy(&pi, info, sizeof(pi));
	SOCKET s = WSASocketW(pi.iAddressFamily, pi.iSocketType, pi.iProtocol, &pi, 0, 0);
	if (s == INVALID_SOCKET)
		return err_set(e, -EIO, "WSASocketW from protocol_info failed (WSA error %d)",
		               WSAGetLastError());
	DWORD secs = 0;
	int n = sizeof(secs);
	if (getsockopt(s, SOL_SOCKET, SO_CONNECT_TIME, (char *)&secs, &n) != 0) {
		int err = WSAGetLastError();
		closesocket(s);
		return err_set(e, -EIO, "getsockopt(SO_CONNECT_TIME) failed (WSA error %d)", err);
	}
	if (secs == 0xFFFFFFFFu) {
		closesocket(s);
		return err_set(e, -ENOTCONN, "the duplicated socket is not connected");
	}
	*out = s;
	return 0;
}

int hcs_dupsock_export(SOCKET s, unsigned long pid, uint8_t *info, struct err *e)
{
	int r = wsa_start(e);
	if (r < 0)
		return r;
	WSAPROTOCOL_INFOW pi;
	memset(&pi, 0, sizeof(pi));
	if (WSADuplicateSocketW(s, (DWORD)pid, &pi) != 0)
		return err_set(e, -EIO, "WSADuplicateSocketW failed (WSA error %d)",
		               WSAGetLastError());
	memcpy(info, &pi, sizeof(pi));
	return 0;
}
