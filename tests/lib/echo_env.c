/* The shared ttrpc test environment of echo_env.h. */
#include "tests/lib/echo_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

void echo_env_init(struct echo_env *env, const char *prefix, double guard_s)
{
	evtest_init(&env->ev, guard_s);
	echo_svc_init(&env->svc, env->ev.loop);
	env->s = NULL;
	env->cl = NULL;
	snprintf(env->dir, sizeof(env->dir), "/tmp/%.40s.XXXXXX", prefix);
	assert_non_null(mkdtemp(env->dir));
	snprintf(env->path, sizeof(env->path), "%.60s/t.sock", env->dir);
}

void echo_env_listen(struct echo_env *env, const struct ttrpc_server_opts *opts)
{
	struct err e;
	env->s = ttrpc_server_new(env->ev.loop, opts);
	assert_int_equal(ttrpc_server_register(env->s, &echo_service, &env->svc, &e), 0);
	if (ttrpc_server_listen_unix(env->s, env->path, &e) < 0)
		fail_msg("%s", e.msg);
}

void echo_env_fini(struct echo_env *env)
{
	ttrpc_client_free(env->cl);
	ttrpc_server_free(env->s);
	echo_svc_fini(&env->svc); /* calls the server detached when it was freed */
	evtest_fini(&env->ev);
	unlink(env->path);
	rmdir(env->dir);
}

static void take_text(struct echo_result *r, const ProtobufCMessage *reply)
{
	snprintf(r->text, sizeof(r->text), "%s", ((const Ttrpc__Echo__EchoReply *)reply)->text);
}

static void take_status(struct echo_result *r, const struct ttrpc_status *st)
{
	r->n++;
	r->code = st->code;
	snprintf(r->msg, sizeof(r->msg), "%s", st->message);
}

void echo_result_cb(struct ttrpc_client *cl, const struct ttrpc_status *st,
                    const ProtobufCMessage *reply, void *ud)
{
	(void)cl;
	take_status(ud, st);
	if (reply)
		take_text(ud, reply);
}

static void stream_msg(struct ttrpc_cstream *cs, const ProtobufCMessage *msg, void *ud)
{
	(void)cs;
	struct echo_result *r = ud;
	r->msgs++;
	take_text(r, msg);
}

static void stream_end(struct ttrpc_cstream *cs, const struct ttrpc_status *st, void *ud)
{
	(void)cs;
	take_status(ud, st);
}

const struct ttrpc_cstream_cbs echo_result_stream = {.on_msg = stream_msg, .on_end = stream_end};
