/* The vsock shim's listeners on a Windows host: the hvsock: transport over AF_HYPERV sockets
 * (the GCS rule: the host listens, the guest dials; port P is service GUID
 * PPPPPPPP-facb-11e6-bd58-64006a7986d3, common/vsock_addr.c).  The bridge and stdio listeners
 * of the GCS client use vsock_listen / vsock_accept / vsock_unlisten as on Linux; the
 * returned "fd" is the SOCKET itself (as libev's select backend takes it, common/win/libev.c),
 * non-blocking and not inherited by child processes.  The other transports (and the dialers)
 * are Linux-only: -EAFNOSUPPORT.  Outside Hyper-V (wine) socket(AF_HYPERV) fails with
 * WSAEAFNOSUPPORT, reported as -EAFNOSUPPORT. */
#include "common/vsock.h"

#include <winsock2.h>
#include <windows.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/fdio.h"
#include "common/win/wsa.h"

#ifndef AF_HYPERV
#define AF_HYPERV 34
#endif

/* Messages are bounded on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static int wsa_err(struct err *e, const char *what, uint32_t port)
{
	int w = WSAGetLastError();
	int code = w == WSAEAFNOSUPPORT ? -EAFNOSUPPORT
	           : w == WSAEADDRINUSE ? -EADDRINUSE
	           : w == WSAEACCES     ? -EACCES
	                                : -EIO;
	return err_set(e, code, "hvsock port %u: %s failed (WSA error %d)", port, what, w);
}

static int not_windows(const struct vsock_addr *a, uint32_t port, struct err *e)
{
	return err_set(e, -EAFNOSUPPORT,
	               "listen %s port %u: only the hvsock transport exists on Windows hosts",
	               vsock_kind_name(a->kind), port);
}

/* Non-blocking, not inherited. */
static int prepare(SOCKET s, uint32_t port, struct err *e)
{
	u_long on = 1;
	if (ioctlsocket(s, FIONBIO, &on) != 0)
		return wsa_err(e, "ioctlsocket(FIONBIO)", port);
	SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
	return 0;
}

int vsock_listen(const struct vsock_addr *a, uint32_t port, struct err *e)
{
	if (a->kind != VSOCK_KIND_HVSOCK)
		return not_windows(a, port, e);
	int r = wsa_start(e);
	if (r < 0)
		return r;
	SOCKET s = socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
	if (s == INVALID_SOCKET)
		return wsa_err(e, "socket(AF_HYPERV)", port);
	struct sockaddr_hv sa;
	vsock_hv_sockaddr(&a->vmid, port, &sa);
	r = prepare(s, port, e);
	if (r == 0 && bind(s, (const struct sockaddr *)&sa, sizeof(sa)) != 0)
		r = wsa_err(e, "bind", port);
	if (r == 0 && listen(s, SOMAXCONN) != 0)
		r = wsa_err(e, "listen", port);
	if (r < 0) {
		closesocket(s);
		return r;
	}
	return (int)(intptr_t)s;
}

int vsock_listen_guest(const struct vsock_addr *a, uint32_t port, struct err *e)
{
	return not_windows(a, port, e);
}

int vsock_accept(int lfd, struct err *e)
{
	SOCKET s = accept((SOCKET)(intptr_t)lfd, NULL, NULL);
	if (s == INVALID_SOCKET) {
		int w = WSAGetLastError();
		if (w == WSAEWOULDBLOCK || w == WSAECONNRESET)
			return IO_AGAIN;
		return err_set(e, -EIO, "hvsock accept failed (WSA error %d)", w);
	}
	if (prepare(s, 0, e) < 0) {
		closesocket(s);
		return e ? e->code : -EIO;
	}
	return (int)(intptr_t)s;
}

void vsock_unlisten(const struct vsock_addr *a, uint32_t port, int lfd)
{
	(void)a;
	(void)port;
	if (lfd >= 0)
		closesocket((SOCKET)(intptr_t)lfd);
}

void vsock_unlisten_guest(const struct vsock_addr *a, uint32_t port, int lfd)
{
	vsock_unlisten(a, port, lfd);
}
