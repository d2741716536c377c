/* Winsock for the whole process: started once (WSAStartup 2.2), never torn down, as hcsshim
 * does.  Everything that makes a socket on Windows calls wsa_start first — libev too needs it
 * before its first ev_async (its wake-up pipe is a loopback socket pair). */
#ifndef FERRY_COMMON_WIN_WSA_H
#define FERRY_COMMON_WIN_WSA_H

#include "common/err.h"

/* Idempotent and thread-safe; 0, or -EIO with e filled when Winsock cannot start. */
int wsa_start(struct err *e);

#endif
