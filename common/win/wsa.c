/* Process-wide Winsock start-up (see wsa.h). */
#include "common/win/wsa.h"

#include <winsock2.h>
#include <windows.h>
#include <errno.h>

static BOOL CALLBACK once_start(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
	(void)once;
	(void)ctx;
	WSADATA d;
	*(int *)param = WSAStartup(MAKEWORD(2, 2), &d);
	return TRUE;
}

int wsa_start(struct err *e)
{
	/* process-wide by nature, like Winsock itself */
	static INIT_ONCE once = INIT_ONCE_STATIC_INIT;
	static int rc;
	InitOnceExecuteOnce(&once, once_start, &rc, NULL);
	if (rc != 0)
		return err_set(e, -EIO, "WSAStartup(2.2) failed (error %d)", rc);
	return 0;
}
