/* The vsock shim: one API to listen on, accept and dial a *vsock port* (uint32) whatever
 * carries it, selected by an address string, so that saved state (ports) never depends on the
 * transport.  Forms (docs/transports.md has the full rules):
 *
 *   vsock:CID         AF_VSOCK; listen binds VMADDR_CID_ANY:port, dial connects CID:port
 *   hvsock:VMID       AF_HYPERV (Windows hosts); on Linux only the definitions and the
 *                     port <-> service GUID rule exist, listen/dial give -EAFNOSUPPORT
 *   hybrid:PATH       Firecracker / Cloud Hypervisor hybrid vsock over unix sockets:
 *                     guest->host port P is the unix socket "PATH_P" (host listens there,
 *                     guest connects, no handshake); host->guest connects to PATH and does
 *                     the "CONNECT P\n" / "OK n\n" handshake
 *   unix:PATH         plain unix sockets: guest->host port P is "PATH_P" (as hybrid);
 *                     host->guest port P is "PATH.guest_P" (no handshake)
 *   tcp:HOST[:BASE]   TCP; port P maps to a TCP port by vsock_tcp_port() (BASE default 40000)
 *
 * The GCS rule holds on every transport: the host listens (vsock_listen) and the guest dials
 * (vsock_dial, or vsock_dialer_new_host on a loop).  vsock_dial_guest / vsock_dialer_new are
 * the other direction.
 *
 * Every fd returned is CLOEXEC and NONBLOCK, usable with ev_io.  Errors: negative errno with
 * the caller-owned struct err filled; nothing here logs or exits.  The functions keep no global
 * state and are thread-safe (each call works on its own fds). */
#ifndef FERRY_COMMON_VSOCK_H
#define FERRY_COMMON_VSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/guid.h"

struct ev_loop;

enum vsock_kind {
	VSOCK_KIND_VSOCK = 1,
	VSOCK_KIND_HVSOCK,
	VSOCK_KIND_HYBRID,
	VSOCK_KIND_UNIX,
	VSOCK_KIND_TCP,
};

/* Longest PATH accepted for hybrid:/unix: so that PATH plus the longest suffix
 * (".guest_4294967295", 17 bytes) plus NUL fits sockaddr_un.sun_path (108). */
#define VSOCK_PATH_MAX 90
/* Longest HOST accepted for tcp: (a DNS name or numeric IPv4/IPv6, without brackets). */
#define VSOCK_HOST_MAX 255
/* Default tcp: BASE and the rule's constants (see vsock_tcp_port). */
#define VSOCK_TCP_BASE_DEFAULT 40000u
#define VSOCK_TCP_BASE_MIN     1026u
#define VSOCK_DYNAMIC_PORT     0x40000000u /* first "dynamic" vsock port (the GCS bridge) */
#define VSOCK_WELLKNOWN_MAX    1024u       /* ports below this are "well-known" */
/* vsock CIDs */
#define VSOCK_CID_HYPERVISOR 0u
#define VSOCK_CID_LOCAL      1u
#define VSOCK_CID_HOST       2u
/* Hybrid handshake: longest CONNECT command line and OK reply line, '\n' included. */
#define VSOCK_HYBRID_LINE_MAX 32
/* Longest formatted address ("hybrid:" + PATH, "tcp:[" HOST "]:65535", ...) plus NUL. */
#define VSOCK_ADDR_STR_MAX 280

/* A parsed address.  Plain value type: no resources, copy freely. */
struct vsock_addr {
	enum vsock_kind kind;
	uint32_t cid;                  /* VSOCK_KIND_VSOCK */
	struct guid vmid;              /* VSOCK_KIND_HVSOCK */
	char path[VSOCK_PATH_MAX + 1]; /* VSOCK_KIND_HYBRID, VSOCK_KIND_UNIX */
	char host[VSOCK_HOST_MAX + 1]; /* VSOCK_KIND_TCP (no brackets) */
	uint16_t tcp_base;             /* VSOCK_KIND_TCP */
};

/* Parse an address string into *a.  Returns 0, or -EINVAL with a message naming the input and
 * what is wrong: unknown scheme, empty or too long path, bad/empty cid, cid
 * 4294967295 (VMADDR_CID_ANY is not a peer), bad GUID, empty host, bad base. */
int vsock_addr_parse(const char *s, struct vsock_addr *a, struct err *e);
/* Format *a as an address string that vsock_addr_parse accepts (tcp: BASE only when not the
 * default, IPv6 hosts in brackets).  Returns the length (excluding NUL) like snprintf, or
 * -EINVAL for an unknown kind; the output is truncated (and NUL-terminated) when n is short. */
int vsock_addr_format(const struct vsock_addr *a, char *out, size_t n);
/* Name of a kind ("vsock", "hvsock", "hybrid", "unix", "tcp"; "?" otherwise). */
const char *vsock_kind_name(enum vsock_kind k);

/* The tcp: port rule.  With BASE (default 40000):
 *   P <  1024                 -> BASE - 1024 + P       (well-known: 1 entropy, 109 log, 564 plan9)
 *   P >= 0x40000000           -> BASE + (P - 0x40000000), if that is <= 65535
 *   P == 0x3fffffff           -> BASE - 1025            (ferry-gcs's wake port)
 *   anything else             -> -ERANGE ("vsock port N has no tcp mapping ...")
 * Returns the TCP port (1..65535) or -ERANGE with a message. */
int vsock_tcp_port(uint16_t base, uint32_t port, struct err *e);

/* The unix socket path standing for port P: "PATH_P" (guest->host, hybrid and unix) or
 * "PATH.guest_P" (host->guest: the guest's listener behind the test muxer, and unix: dial).
 * Writes into out (n bytes); returns 0 or -ENAMETOOLONG. */
int vsock_unix_path(const char *path, uint32_t port, char *out, size_t n, struct err *e);
int vsock_unix_guest_path(const char *path, uint32_t port, char *out, size_t n, struct err *e);

/* ---- Hyper-V sockets (header-level on Linux) ---- */

#ifndef AF_HYPERV
#define AF_HYPERV 34
#endif
#define HV_PROTOCOL_RAW 1

/* Windows SOCKADDR_HV: 36 bytes; GUIDs in the 16-byte Windows layout (guid_to_bytes). */
struct sockaddr_hv {
	uint16_t family; /* AF_HYPERV */
	uint16_t reserved;
	uint8_t vm_id[16];
	uint8_t service_id[16];
};

/* Port P -> service GUID PPPPPPPP-facb-11e6-bd58-64006a7986d3. */
void vsock_hv_service_id(uint32_t port, struct guid *out);
/* Inverse; -EINVAL with a message when g does not follow the template. */
int vsock_hv_port_from_service_id(const struct guid *g, uint32_t *port, struct err *e);
/* Build {AF_HYPERV, 0, vmid, service_id(port)}. */
void vsock_hv_sockaddr(const struct guid *vmid, uint32_t port, struct sockaddr_hv *out);

/* ---- listen / accept / dial ---- */

/* Host side: listen for port on a.  Returns a listening fd (NONBLOCK|CLOEXEC, owned by the
 * caller; release it with vsock_unlisten).  hybrid:/unix: bind "PATH_P", first unlinking a
 * stale *socket* there (anything else at that path is -EEXIST); tcp: bind HOST:mapped with
 * SO_REUSEADDR; vsock: bind VMADDR_CID_ANY:port; hvsock: -EAFNOSUPPORT ("hvsock transport is
 * only available on Windows hosts"). */
int vsock_listen(const struct vsock_addr *a, uint32_t port, struct err *e);
/* Guest side, host->guest direction: vsock: same as vsock_listen; hybrid:/unix: bind
 * "PATH.guest_P" (what the test muxer, and unix: dials, connect to); tcp: as vsock_listen;
 * hvsock: -EAFNOSUPPORT. */
int vsock_listen_guest(const struct vsock_addr *a, uint32_t port, struct err *e);
/* accept4 one connection: an fd (NONBLOCK|CLOEXEC, TCP_NODELAY for tcp, owned by the caller),
 * IO_AGAIN (common/fdio.h) when none is pending or the peer aborted, or -errno. */
int vsock_accept(int lfd, struct err *e);
/* vsock_accept, then check who connected against the address listened on: a unix peer
 * (hybrid:, unix:) must run as our user or root; a vsock peer must be the CID of `a` (the
 * guest's CID on the host; on the guest `a` is vsock:2, the host).  Another peer is closed at
 * once: -EACCES with a message naming it (log it; the listener stays good).  tcp: has no peer
 * identity to check (the protocol above must prove it), nor has hvsock here.  Unix listeners
 * are created 0600 in any case.  Other returns as vsock_accept. */
int vsock_accept_peer(const struct vsock_addr *a, int lfd, struct err *e);
/* Close lfd (if >= 0) and, for hybrid:/unix:, unlink "PATH_P".  Never fails. */
void vsock_unlisten(const struct vsock_addr *a, uint32_t port, int lfd);
/* Same for a vsock_listen_guest listener ("PATH.guest_P"). */
void vsock_unlisten_guest(const struct vsock_addr *a, uint32_t port, int lfd);

/* Guest->host dial (the GCS direction): hybrid:/unix: connect "PATH_P"; tcp: HOST:mapped;
 * vsock: CID:port.  Blocks up to timeout_ms (< 0: no limit) - for setup paths, not for loop
 * callbacks.  Returns a connected fd (NONBLOCK|CLOEXEC, owned by the caller) or:
 *   -ENOENT        the unix socket does not exist (host not listening yet)
 *   -ECONNREFUSED  nobody listens (retry later)
 *   -ETIMEDOUT     not connected within timeout_ms
 *   -EAFNOSUPPORT  hvsock, or AF_VSOCK unavailable
 *   other -errno   with the message naming the address and port. */
int vsock_dial(const struct vsock_addr *a, uint32_t port, int timeout_ms, struct err *e);

/* Host->guest dial, blocking up to timeout_ms (< 0: no limit; the whole handshake counts).
 * hybrid: connect PATH, write "CONNECT <port>\n" in one write, read the reply one byte at a
 * time (so no guest payload is consumed), require ^OK [0-9]+\n$; EOF before OK is
 * -ECONNREFUSED, a bad reply -EPROTO.  unix: connect "PATH.guest_P".  vsock/tcp: as
 * vsock_dial.  If host_port is not NULL it receives the OK number (hybrid) or 0.
 * Returns a connected fd (NONBLOCK|CLOEXEC, caller-owned) or the errors of vsock_dial. */
int vsock_dial_guest(const struct vsock_addr *a, uint32_t port, int timeout_ms, uint32_t *host_port,
                     struct err *e);

/* ---- libev dialer: host->guest (same semantics as vsock_dial_guest) or guest->host (as
 * vsock_dial); never blocks ---- */

struct vsock_dialer;
/* Completion: fd >= 0 on success (ownership passes to the callback), else fd is the negative
 * errno and e describes it.  Called exactly once per dialer, from the loop (never from inside
 * vsock_dialer_new), unless the dialer is freed first.  The callback may call
 * vsock_dialer_free(d); otherwise the owner frees it later.  e is only valid during the call. */
typedef void (*vsock_dial_cb)(struct vsock_dialer *d, int fd, const struct err *e, void *data);
/* Start dialling port on a.  Returns the dialer (caller-owned) or NULL with e filled when the
 * address cannot be dialled at all (hvsock: -EAFNOSUPPORT, unmappable tcp port, tcp host
 * that is not an IP literal); every connection-time failure (-ENOENT, -ECONNREFUSED, -ETIMEDOUT,
 * -EPROTO) goes to cb.  timeout_ms <= 0 means no timeout.  tcp hosts are IP literals
 * (or localhost): nothing is looked up. */
struct vsock_dialer *vsock_dialer_new(struct ev_loop *loop, const struct vsock_addr *a,
                                      uint32_t port, int timeout_ms, vsock_dial_cb cb, void *data,
                                      struct err *e);
/* The guest->host direction on the loop (what ferry-gcs dials: the bridge, stdio, 9p): the
 * port rules of vsock_dial (hybrid:/unix: connect "PATH_P", no handshake; tcp: HOST:mapped;
 * vsock: CID:port) with the dialer, callback and error contract of vsock_dialer_new
 * (-ENOENT / -ECONNREFUSED: nobody listens yet; -ETIMEDOUT; a full unix backlog is retried
 * every 5 ms until the timeout). */
struct vsock_dialer *vsock_dialer_new_host(struct ev_loop *loop, const struct vsock_addr *a,
                                           uint32_t port, int timeout_ms, vsock_dial_cb cb,
                                           void *data, struct err *e);
/* Stop and release; closes the half-open fd of a pending dial (cb is then never called).
 * NULL-safe; may be called from cb. */
void vsock_dialer_free(struct vsock_dialer *d);

/* ---- hybrid handshake line parsers (pure functions, for the muxer, dialers and fuzzing) ---- */

/* Parse a CONNECT command from the first n bytes received (n may exceed the line: bytes after
 * '\n' are payload and are not part of it).  Keyword case-insensitive ("connect"), one or more
 * spaces/tabs, a decimal port <= UINT32_MAX, optional trailing spaces/tabs/'\r', then '\n'.
 * Returns 1 with *port and *line_len (bytes up to and including '\n') set, 0 when more bytes
 * are needed (no '\n' yet, prefix still valid, n < VSOCK_HYBRID_LINE_MAX), or -EINVAL with a
 * message (bad keyword, non-numeric, port out of range, no '\n' within 32 bytes). */
int vsock_hybrid_parse_connect(const char *buf, size_t n, uint32_t *port, size_t *line_len,
                               struct err *e);
/* Parse an OK reply; same conventions as above, requires exactly ^OK [0-9]+\n$ (value <=
 * UINT32_MAX); -EPROTO on a mismatch. */
int vsock_hybrid_parse_ok(const char *buf, size_t n, uint32_t *host_port, size_t *line_len,
                          struct err *e);

#endif
