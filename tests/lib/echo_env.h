/* The server side of a ttrpc test, shared by the unit and interop tests: a guarded loop
 * (evtest), the Echo service (echo_svc), a server listening on a unix socket in a temporary
 * directory, a client slot, and a result record for unary Echo calls.  The helpers assert
 * with cmocka, so call them from tests and fixtures only. */
#ifndef FERRY_TESTS_ECHO_ENV_H
#define FERRY_TESTS_ECHO_ENV_H

#include "tests/lib/echo_svc.h"
#include "tests/lib/evtest.h"

struct echo_env {
	struct evtest ev;
	struct echo_svc svc;
	struct ttrpc_server *s;  /* NULL until echo_env_listen */
	struct ttrpc_client *cl; /* the test's own, freed by echo_env_fini */
	char dir[64];
	char path[96]; /* <dir>/t.sock */
};

/* Loop with a guard of guard_s seconds, the service, "/tmp/<prefix>.XXXXXX". */
void echo_env_init(struct echo_env *env, const char *prefix, double guard_s);
/* A server with `opts` (may be NULL) and the Echo service, listening on env->path. */
void echo_env_listen(struct echo_env *env, const struct ttrpc_server_opts *opts);
/* Free client and server, end the service's waiting calls, destroy the loop, remove the
 * directory. */
void echo_env_fini(struct echo_env *env);

/* How a call or a stream ended. */
struct echo_result {
	int n; /* completions (1 when done) */
	int code;
	char msg[512];
	char text[256]; /* the (last) reply's text */
	int msgs;       /* stream messages received */
};

/* A ttrpc_reply_cb for EchoReply calls that fills the struct echo_result given as ud. */
void echo_result_cb(struct ttrpc_client *cl, const struct ttrpc_status *st,
                    const ProtobufCMessage *reply, void *ud);
/* Stream callbacks (EchoReply messages) filling the struct echo_result given as ud. */
extern const struct ttrpc_cstream_cbs echo_result_stream;

#endif
