/* The hybrid vsock handshake lines (spec hybrid-vsock.md): the host's "CONNECT <port>\n"
 * command, parsed as leniently as Firecracker and Cloud Hypervisor do, and the VMM's strict
 * "OK <port>\n" reply.  Pure functions over untrusted bytes (the muxer feeds them what a host
 * sent, the dialers what a VMM sent): every length is bounded by VSOCK_HYBRID_LINE_MAX. */
#include "common/vsock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

/* Messages are bounded on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* Printable rendering of hostile bytes for error messages. */
static const char *show(const char *buf, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

static int need_more(const char *what, const char *buf, size_t n, int code, struct err *e)
{
	char s[140];
	if (n >= VSOCK_HYBRID_LINE_MAX)
		return err_set(e, code, "hybrid vsock: %s without newline within %d bytes: `%s`",
		               what, VSOCK_HYBRID_LINE_MAX, show(buf, n, s, sizeof(s)));
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int vsock_hybrid_parse_connect(const char *buf, size_t n, uint32_t *port, size_t *line_len,
                               struct err *e)
{
	static const char kw[] = "connect";
	char s[140];
	size_t i = 0;
	for (; i < sizeof(kw) - 1; i++) {
		if (i >= n)
			return need_more("command", buf, n, -EINVAL, e);
		char c = buf[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != kw[i])
			return err_set(e, -EINVAL,
			               "hybrid vsock: bad command `%s` (want CONNECT <port>)",
			               show(buf, n < 32 ? n : 32, s, sizeof(s)));
	}
	size_t sp = i;
	while (i < n && is_blank(buf[i]))
		i++;
	if (i == n)
		return need_more("command", buf, n, -EINVAL, e);
	if (i == sp)
		return err_set(e, -EINVAL,
		               "hybrid vsock: bad command `%s`: want a space after CONNECT",
		               show(buf, n < 32 ? n : 32, s, sizeof(s)));
	size_t d0 = i;
	uint64_t v = 0;
	while (i < n && buf[i] >= '0' && buf[i] <= '9') {
		v = v * 10 + (uint64_t)(buf[i] - '0');
		if (v > UINT32_MAX)
			return err_set(e, -EINVAL,
			               "hybrid vsock: bad command `%s`: port out of range",
			               show(buf, n < 32 ? n : 32, s, sizeof(s)));
		i++;
	}
	if (i == n)
		return need_more("command", buf, n, -EINVAL, e);
	if (i == d0)
		return err_set(e, -EINVAL, "hybrid vsock: bad command `%s`: port is not a number",
		               show(buf, n < 32 ? n : 32, s, sizeof(s)));
	while (i < n && (is_blank(buf[i]) || buf[i] == '\r'))
		i++;
	if (i == n)
		return need_more("command", buf, n, -EINVAL, e);
	if (buf[i] != '\n')
		return err_set(e, -EINVAL, "hybrid vsock: bad command `%s`: junk after the port",
		               show(buf, n < 32 ? n : 32, s, sizeof(s)));
	if (i + 1 > VSOCK_HYBRID_LINE_MAX)
		return err_set(e, -EINVAL, "hybrid vsock: command longer than %d bytes",
		               VSOCK_HYBRID_LINE_MAX);
	*port = (uint32_t)v;
	*line_len = i + 1;
	return 1;
}

int vsock_hybrid_parse_ok(const char *buf, size_t n, uint32_t *host_port, size_t *line_len,
                          struct err *e)
{
	char s[140];
	size_t i = 0;
	for (; i < 3; i++) {
		if (i >= n)
			return need_more("reply", buf, n, -EPROTO, e);
		if (buf[i] != "OK "[i])
			return err_set(e, -EPROTO, "hybrid vsock: bad reply `%s` (want OK <port>)",
			               show(buf, n < 32 ? n : 32, s, sizeof(s)));
	}
	uint64_t v = 0;
	while (i < n && buf[i] >= '0' && buf[i] <= '9') {
		v = v * 10 + (uint64_t)(buf[i] - '0');
		if (v > UINT32_MAX)
			return err_set(e, -EPROTO,
			               "hybrid vsock: bad reply `%s`: number out of range",
			               show(buf, n < 32 ? n : 32, s, sizeof(s)));
		i++;
	}
	if (i == n)
		return need_more("reply", buf, n, -EPROTO, e);
	if (i == 3 || buf[i] != '\n')
		return err_set(e, -EPROTO, "hybrid vsock: bad reply `%s` (want OK <port>)",
		               show(buf, n < 32 ? n : 32, s, sizeof(s)));
	if (i + 1 > VSOCK_HYBRID_LINE_MAX)
		return err_set(e, -EPROTO, "hybrid vsock: reply longer than %d bytes",
		               VSOCK_HYBRID_LINE_MAX);
	*host_port = (uint32_t)v;
	*line_len = i + 1;
	return 1;
}
