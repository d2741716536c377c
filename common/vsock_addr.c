/* The vsock shim's addresses: parsing and formatting of address strings, the tcp: port rule,
 * the unix socket path rule and the Hyper-V service GUID rule.  Pure functions with no socket
 * calls, so the Windows build (make windows) compiles this file too: the hvsock: listeners of
 * the Windows host (common/win/vsock_win.c) use the same rules. */
#include "common/vsock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#include <winsock2.h>
#include <afunix.h>
#define VMADDR_CID_ANY 0xffffffffu /* linux/vm_sockets.h's value; vsock: addresses parse alike */
#else
#include <sys/un.h>
#include <linux/vm_sockets.h>
#endif

/* Messages are bounded on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---- addresses ---- */

const char *vsock_kind_name(enum vsock_kind k)
{
	switch (k) {
	case VSOCK_KIND_VSOCK:
		return "vsock";
	case VSOCK_KIND_HVSOCK:
		return "hvsock";
	case VSOCK_KIND_HYBRID:
		return "hybrid";
	case VSOCK_KIND_UNIX:
		return "unix";
	case VSOCK_KIND_TCP:
		return "tcp";
	}
	return "?";
}

/* Strict decimal u32: digits only, no sign, no overflow. */
static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

static int parse_tcp(const char *s, const char *v, struct vsock_addr *a, struct err *e)
{
	const char *host = v, *base = NULL;
	size_t hlen;
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (!close)
			return err_set(e, -EINVAL, "invalid address `%.300s`: missing ']'", s);
		host = v + 1;
		hlen = (size_t)(close - host);
		if (close[1] == ':')
			base = close + 2;
		else if (close[1] != '\0')
			return err_set(e, -EINVAL,
			               "invalid address `%.300s`: want ':BASE' after ']'", s);
	} else {
		const char *c = strchr(v, ':');
		if (c && !strchr(c + 1, ':')) { /* exactly one ':' -> HOST:BASE */
			hlen = (size_t)(c - v);
			base = c + 1;
		} else { /* none, or a bare IPv6 address (use [..]:BASE to give a base) */
			hlen = strlen(v);
		}
	}
	if (hlen == 0)
		return err_set(e, -EINVAL, "invalid address `%.300s`: empty host", s);
	if (hlen > VSOCK_HOST_MAX)
		return err_set(e, -EINVAL, "invalid address `%.300s`: host longer than %d bytes", s,
		               VSOCK_HOST_MAX);
	memcpy(a->host, host, hlen);
	a->host[hlen] = '\0';
	a->tcp_base = VSOCK_TCP_BASE_DEFAULT;
	if (base) {
		uint32_t b;
		if (!parse_u32(base, strlen(base), &b) || b < VSOCK_TCP_BASE_MIN || b > 65535)
			return err_set(
			    e, -EINVAL,
			    "invalid address `%.300s`: bad base `%.16s` (want %u..65535)", s, base,
			    VSOCK_TCP_BASE_MIN);
		a->tcp_base = (uint16_t)b;
	}
	return 0;
}

int vsock_addr_parse(const char *s, struct vsock_addr *a, struct err *e)
{
	if (!s)
		return err_set(e, -EINVAL, "invalid address: null");
	memset(a, 0, sizeof(*a));
	const char *colon = strchr(s, ':');
	if (!colon)
		return err_set(
		    e, -EINVAL,
		    "invalid address `%.300s`: want SCHEME:VALUE (vsock:CID, hvsock:VMID, "
		    "hybrid:PATH, unix:PATH, tcp:HOST[:BASE])",
		    s);
	size_t sl = (size_t)(colon - s);
	const char *v = colon + 1;
	if (sl == 5 && strncmp(s, "vsock", 5) == 0) {
		a->kind = VSOCK_KIND_VSOCK;
		if (!parse_u32(v, strlen(v), &a->cid))
			return err_set(e, -EINVAL,
			               "invalid address `%.300s`: bad cid (want a decimal number)",
			               s);
		if (a->cid == VMADDR_CID_ANY)
			return err_set(e, -EINVAL,
			               "invalid address `%.300s`: cid %u (any) is not a peer", s,
			               a->cid);
		return 0;
	}
	if (sl == 6 && strncmp(s, "hvsock", 6) == 0) {
		a->kind = VSOCK_KIND_HVSOCK;
		if (guid_parse(v, &a->vmid, e) < 0)
			return err_prefix(e, "invalid address `%.300s`: bad vm id", s);
		return 0;
	}
	if ((sl == 6 && strncmp(s, "hybrid", 6) == 0) || (sl == 4 && strncmp(s, "unix", 4) == 0)) {
		a->kind = sl == 6 ? VSOCK_KIND_HYBRID : VSOCK_KIND_UNIX;
		size_t n = strlen(v);
		if (n == 0)
			return err_set(e, -EINVAL, "invalid address `%.300s`: empty path", s);
		if (n > VSOCK_PATH_MAX)
			return err_set(
			    e, -EINVAL,
			    "invalid address `%.40s...`: path too long (%zu bytes, max %d "
			    "so that PATH.guest_<port> fits a unix socket address)",
			    s, n, VSOCK_PATH_MAX);
		memcpy(a->path, v, n + 1);
		return 0;
	}
	if (sl == 3 && strncmp(s, "tcp", 3) == 0) {
		a->kind = VSOCK_KIND_TCP;
		return parse_tcp(s, v, a, e);
	}
	return err_set(e, -EINVAL,
	               "invalid address `%.300s`: unknown scheme `%.*s` (want vsock, hvsock, "
	               "hybrid, unix or tcp)",
	               s, (int)(sl > 32 ? 32 : sl), s);
}

int vsock_addr_format(const struct vsock_addr *a, char *out, size_t n)
{
	char g[GUID_STR_LEN + 1];
	switch (a->kind) {
	case VSOCK_KIND_VSOCK:
		return snprintf(out, n, "vsock:%u", a->cid);
	case VSOCK_KIND_HVSOCK:
		return snprintf(out, n, "hvsock:%s", guid_format(&a->vmid, g));
	case VSOCK_KIND_HYBRID:
	case VSOCK_KIND_UNIX:
		return snprintf(out, n, "%s:%s", vsock_kind_name(a->kind), a->path);
	case VSOCK_KIND_TCP: {
		bool v6 = strchr(a->host, ':') != NULL;
		bool def = a->tcp_base == VSOCK_TCP_BASE_DEFAULT;
		if (def && !v6)
			return snprintf(out, n, "tcp:%s", a->host);
		if (def)
			return snprintf(out, n, "tcp:[%s]", a->host);
		return snprintf(out, n, v6 ? "tcp:[%s]:%u" : "tcp:%s:%u", a->host,
		                (unsigned)a->tcp_base);
	}
	}
	if (n > 0)
		out[0] = '\0';
	return -EINVAL;
}

int vsock_tcp_port(uint16_t base, uint32_t port, struct err *e)
{
	if (base < VSOCK_TCP_BASE_MIN)
		return err_set(e, -ERANGE, "tcp base %u below %u", (unsigned)base,
		               VSOCK_TCP_BASE_MIN);
	if (port < VSOCK_WELLKNOWN_MAX)
		return (int)(base - VSOCK_WELLKNOWN_MAX + port);
	if (port >= VSOCK_DYNAMIC_PORT && port - VSOCK_DYNAMIC_PORT <= 65535u - base)
		return (int)(base + (port - VSOCK_DYNAMIC_PORT));
	/* the one port just below the dynamic range: ferry-gcs's wake port */
	if (port == VSOCK_DYNAMIC_PORT - 1)
		return (int)(base - VSOCK_WELLKNOWN_MAX - 1);
	return err_set(e, -ERANGE,
	               "vsock port %u (0x%x) has no tcp mapping with base %u (mappable: 0..1023, "
	               "0x3fffffff and 0x40000000..0x%x)",
	               port, port, (unsigned)base, VSOCK_DYNAMIC_PORT + (65535u - base));
}

static int path_with(const char *path, const char *sep, uint32_t port, char *out, size_t n,
                     struct err *e)
{
	int r = snprintf(out, n, "%s%s%u", path, sep, port);
	size_t cap = n < sizeof(((struct sockaddr_un *)0)->sun_path)
	                 ? n
	                 : sizeof(((struct sockaddr_un *)0)->sun_path);
	if (r < 0 || (size_t)r >= cap)
		return err_set(e, -ENAMETOOLONG, "unix socket path `%.60s%s%u` too long", path, sep,
		               port);
	return 0;
}

int vsock_unix_path(const char *path, uint32_t port, char *out, size_t n, struct err *e)
{
	return path_with(path, "_", port, out, n, e);
}

int vsock_unix_guest_path(const char *path, uint32_t port, char *out, size_t n, struct err *e)
{
	return path_with(path, ".guest_", port, out, n, e);
}

/* ---- Hyper-V ---- */

static const struct guid hv_template = {
    0x00000000, 0xfacb, 0x11e6, {0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3}};

void vsock_hv_service_id(uint32_t port, struct guid *out)
{
	*out = hv_template;
	out->data1 = port;
}

int vsock_hv_port_from_service_id(const struct guid *g, uint32_t *port, struct err *e)
{
	struct guid t = *g;
	t.data1 = 0;
	if (!guid_equal(&t, &hv_template)) {
		char s[GUID_STR_LEN + 1];
		return err_set(e, -EINVAL,
		               "service id %s is not a vsock port (want xxxxxxxx-facb-11e6-bd58-"
		               "64006a7986d3)",
		               guid_format(g, s));
	}
	*port = g->data1;
	return 0;
}

void vsock_hv_sockaddr(const struct guid *vmid, uint32_t port, struct sockaddr_hv *out)
{
	struct guid svc;
	memset(out, 0, sizeof(*out));
	out->family = AF_HYPERV;
	guid_to_bytes(vmid, out->vm_id);
	vsock_hv_service_id(port, &svc);
	guid_to_bytes(&svc, out->service_id);
}
