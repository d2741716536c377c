/* CreateDuplicateSocket, Linux half: the orchestrator hands the shim an already-connected
 * migration socket.  On Windows hcsshim's `protocol_info` is the WSAPROTOCOL_INFOW blob that
 * WSADuplicateSocketW produced; on Linux it names the socket by its owner instead, and the shim
 * takes its own copy with pidfd_open + pidfd_getfd after checking who owns it and what it is.
 *
 * protocol_info layout (DUPSOCK_INFO_LEN = 16 bytes, every integer little-endian):
 *
 *   offset 0  4 bytes  magic "FRYS" (0x46 0x52 0x59 0x53)
 *   offset 4  u32      version, 1
 *   offset 8  u32      pid of the process holding the socket (1 .. INT32_MAX)
 *   offset 12 u32      fd number of the socket in that process (0 .. INT32_MAX)
 *
 * Exactly 16 bytes: anything shorter, longer, with another magic or version is refused (a
 * Windows blob is 628 bytes and fails the length check with a clear message).
 *
 * What the shim accepts (dupsock_take): a live process whose real and effective uids are both
 * allowed by the policy, and an fd in it that is a connected SOCK_STREAM socket (AF_INET,
 * AF_INET6, AF_UNIX or AF_VSOCK; not listening; no pending socket error).  Everything else is
 * -EINVAL with a message naming what was wrong; the Migration service reports it as
 * InvalidArgument.  The taking process needs ptrace access to the owner (same uid or
 * CAP_SYS_PTRACE), which is what pidfd_getfd checks on top.
 *
 * Pure functions, no state; safe from any thread. */
#ifndef FERRY_HOST_SHIM_DUPSOCK_H
#define FERRY_HOST_SHIM_DUPSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define DUPSOCK_MAGIC    "FRYS"
#define DUPSOCK_VERSION  1u
#define DUPSOCK_INFO_LEN 16

struct dupsock_info {
	uint32_t pid;
	uint32_t fd;
};

/* Who may own a socket handed to the shim.  uids[0..n_uids) are allowed; with n_uids == 0
 * (or a NULL policy) the allowed owners are this process's effective uid and root. */
struct dupsock_policy {
	const uid_t *uids;
	size_t n_uids;
};

/* Write the 16-byte protocol_info for (pid, fd) (what ferryctl sends). */
void dupsock_info_encode(const struct dupsock_info *info, uint8_t out[DUPSOCK_INFO_LEN]);

/* Parse protocol_info.  Returns 0, or -EINVAL with e naming the defect (length, magic,
 * version, pid or fd out of range).  Reads only p[0..len). */
int dupsock_info_decode(const uint8_t *p, size_t len, struct dupsock_info *out, struct err *e);

/* Take a copy of the socket described by info, after the owner and socket checks above.
 * Returns the new fd (O_CLOEXEC, blocking mode as the owner left it; the caller owns it), or
 * -EINVAL with e filled.  Blocking but short: a few syscalls and one read of /proc. */
int dupsock_take(const struct dupsock_info *info, const struct dupsock_policy *policy,
                 struct err *e);

/* dupsock_info_decode then dupsock_take. */
int dupsock_from_protocol_info(const uint8_t *p, size_t len, const struct dupsock_policy *policy,
                               struct err *e);

#endif
