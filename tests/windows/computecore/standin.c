/* The stand-in computecore.dll: a small, in-process imitation of the Host Compute Service for
 * testing ferry's hcs backend under wine, where no HCS exists.  It is installed as the wine
 * prefix's system32\computecore.dll, so the backend loads it exactly as it loads the real one.
 *
 * What it does:
 *   - keeps compute systems with a state each (Created, Running, SourceMigrationInitialized,
 *     SourceMigrationStarted, DestinationStarted, TransferCompleted, Stopped) and refuses calls
 *     made in the wrong state with HCS_E_INVALID_STATE, as HCS does;
 *   - completes every operation asynchronously on a worker thread of its own (HCS completes
 *     on its threads), and waits, cancels and closes operations as computecore does;
 *   - calls the registered system callback from that worker, in order: SystemExited on stop,
 *     terminate and finalize Stop, and the live-migration events of hcsshim's tests
 *     (SetupDone on start, then TransferInProgress, BlackoutStarted, OfflineDone,
 *     BlackoutExited with AdditionalDetails, MigrationDone/Success during a transfer,
 *     MigrationFailed/MigrationCancelled on a cancel); StandinEmit sends any other payload;
 *   - records every call with the documents it receives (StandinLog: a JSON array of
 *     {"Fn","Id","Options"|"Document"|"Query"|"Path","Resource"}) and counts open operations
 *     and systems (StandinStats) so tests can check that nothing leaks;
 *   - can be told to fail a function at the call (its HRESULT returned at once), at the result
 *     (the operation completes with the HRESULT and a ResultError document), or to hang it
 *     until it is cancelled (HcsCancelOperation, HcsCancelLiveMigration) or its system closed:
 *     StandinConfigure({"FailCall"|"FailResult"|"Hang": "<function>", "Hr": <HRESULT>}).
 *
 * Process-wide state is the nature of this DLL (it plays a system service); one lock guards
 * it.  Test code: it favours plainness over speed. */
#include "tests/windows/computecore/standin.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "host/vmm/hcs/hcs_unicode.h"

#define EXPORT __declspec(dllexport)

#define S_HR_INVALID_STATE   ((HRESULT)0x80370105)
#define S_HR_INVALID_JSON    ((HRESULT)0x8037010D)
#define S_HR_ALREADY_EXISTS  ((HRESULT)0x8037010F)
#define S_HR_ALREADY_STOPPED ((HRESULT)0x80370110)
#define S_HR_TERMINATED      ((HRESULT)0x80370107)
#define S_HR_CANCELLED       ((HRESULT)0x800704C7)
#define S_HR_INVALIDARG      ((HRESULT)0x80070057)
#define EV_SYSTEM_EXITED     0x00000001u
#define EV_LIVE_MIGRATION    0x80000003u

enum sys_state {
	ST_CREATED,
	ST_RUNNING,
	ST_SRC_INIT,
	ST_SRC_STARTED,
	ST_DST_STARTED,
	ST_TRANSFERRED,
	ST_STOPPED,
};

struct sys;

struct op {
	HANDLE done_ev; /* manual reset: the operation completed */
	bool done, closed;
	HRESULT hr;
	char *result; /* UTF-8 result document or NULL */
	struct sys *sys;
	bool hanging;
	const char *fn; /* the call it carries */
	SOCKET socket;  /* HcsAddResourceToOperation */
	bool has_socket;
};

struct sys {
	char *id;
	char runtime_id[40];
	enum sys_state state;
	bool destination;
	bool closed;
	HCS_EVENT_CALLBACK cb;
	void *ctx;
	struct op *hanging;
	struct sys *next;
};

/* Work for the worker thread, in order. */
struct task {
	struct task *next;
	struct op *op; /* complete this operation ... */
	HRESULT hr;
	char *result;
	struct sys *sys; /* ... or emit this event to sys's callback */
	uint32_t type;
	char *data;
};

static CRITICAL_SECTION lock; /* everything below */
static CONDITION_VARIABLE work_cv;
static struct task *work_head, *work_tail;
static struct sys *systems;
static json_t *log_calls;
static long open_ops, open_systems, sys_counter;
static char fail_call[64], fail_result[64], hang_fn[64];
static HRESULT fail_hr = (HRESULT)0x80370106; /* HCS_E_UNEXPECTED_EXIT */
static HANDLE worker_thread;

/* The compatibility blob the source reports and the destination must be given back. */
static const char compat_b64[] = "ZmVycnktc3RhbmQtaW4tY29tcGF0"; /* "ferry-stand-in-compat" */

/* ---- helpers ---- */

static char *utf8(PCWSTR w)
{
	struct buf b;
	buf_init(&b);
	hcs_unicode_from_utf16((const uint16_t *)w, 1u << 20, &b, NULL);
	buf_append(&b, "", 1);
	char *s = xstrdup((const char *)buf_head(&b));
	buf_fini(&b);
	return s;
}

static PWSTR local_wide(const char *s)
{
	size_t n;
	uint16_t *w = hcs_unicode_to_utf16(s, strlen(s), &n);
	PWSTR out = LocalAlloc(LMEM_FIXED, (n + 1) * 2);
	memcpy(out, w, (n + 1) * 2);
	free(w);
	return out;
}

/* Record {"Fn": fn, key: value (JSON if it parses, else a string), ...}. Lock held. */
static json_t *record(const char *fn, struct sys *s)
{
	json_t *r = json_pack("{s:s}", "Fn", fn);
	if (s)
		json_object_set_new(r, "Id", json_string(s->id));
	json_array_append_new(log_calls, r);
	return r;
}

static void record_doc(json_t *r, const char *key, PCWSTR w)
{
	if (!w) {
		json_object_set_new(r, key, json_null());
		return;
	}
	char *s = utf8(w);
	json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
	json_object_set_new(r, key, v ? v : json_string(s));
	free(s);
}

static void push(struct task *t)
{
	t->next = NULL;
	if (work_tail)
		work_tail->next = t;
	else
		work_head = t;
	work_tail = t;
	WakeConditionVariable(&work_cv);
}

/* Queue the completion of op (lock held). */
static void complete(struct op *op, HRESULT hr, const char *result)
{
	struct task *t = xcalloc(1, sizeof(*t));
	t->op = op;
	t->hr = hr;
	t->result = result ? xstrdup(result) : NULL;
	op->hanging = false;
	push(t);
}

static void fail_doc(struct op *op, HRESULT hr, const char *why)
{
	char doc[300];
	snprintf(doc, sizeof(doc), "{\"Error\":%ld,\"ErrorMessage\":\"stand-in: %s\"}", (long)hr,
	         why);
	complete(op, hr, doc);
}

/* Queue an event for s's callback (lock held). */
static void emit(struct sys *s, uint32_t type, const char *data)
{
	struct task *t = xcalloc(1, sizeof(*t));
	t->sys = s;
	t->type = type;
	t->data = data ? xstrdup(data) : NULL;
	push(t);
}

static void emit_lm(struct sys *s, const char *origin, const char *event, const char *result,
                    const char *details)
{
	char d[512];
	int n = snprintf(d, sizeof(d), "{\"Origin\":\"%s\",\"Event\":\"%s\"", origin, event);
	if (result)
		n += snprintf(d + n, sizeof(d) - (size_t)n, ",\"Result\":\"%s\"", result);
	if (details)
		n += snprintf(d + n, sizeof(d) - (size_t)n, ",\"AdditionalDetails\":%s", details);
	snprintf(d + n, sizeof(d) - (size_t)n, "}");
	emit(s, EV_LIVE_MIGRATION, d);
}

static DWORD WINAPI worker(void *arg)
{
	(void)arg;
	EnterCriticalSection(&lock);
	for (;;) {
		while (!work_head)
			SleepConditionVariableCS(&work_cv, &lock, INFINITE);
		struct task *t = work_head;
		work_head = t->next;
		if (!work_head)
			work_tail = NULL;
		if (t->op) {
			struct op *op = t->op;
			if (!op->done) {
				op->done = true;
				op->hr = t->hr;
				op->result = t->result;
				t->result = NULL;
				SetEvent(op->done_ev);
			}
			if (op->closed) { /* closed before it completed: ours to free now */
				CloseHandle(op->done_ev);
				free(op->result);
				free(op);
			}
		} else if (t->sys && !t->sys->closed && t->sys->cb) {
			/* the callback runs under the lock: HcsCloseComputeSystem waits for it, so no
			 * callback can follow the close */
			HCS_EVENT ev = {(HCS_EVENT_TYPE)t->type,
			                t->data ? local_wide(t->data) : NULL, NULL};
			t->sys->cb(&ev, t->sys->ctx);
			if (ev.EventData)
				LocalFree((HLOCAL)ev.EventData);
		}
		free(t->result);
		free(t->data);
		free(t);
	}
	return 0;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved);
BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
	(void)inst;
	(void)reserved;
	if (reason == DLL_PROCESS_ATTACH) {
		/* HCS is a service that outlives its clients; this stand-in lives in the process
		 * and its worker thread runs its code: pin it, so that the last FreeLibrary of a
		 * client does not unmap code a thread is still in */
		HMODULE self;
		GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_PIN |
		                       GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
		                   (LPCWSTR)(void *)DllMain, &self);
		InitializeCriticalSection(&lock);
		InitializeConditionVariable(&work_cv);
		log_calls = json_array();
		worker_thread = CreateThread(NULL, 0, worker, NULL, 0, NULL);
	}
	return TRUE;
}

/* Injected behaviour for fn, checked at each call (lock held): 1 fail now (hr returned), 2
 * fail the result, 3 hang, 0 none. */
static int injected(const char *fn)
{
	if (strcmp(fail_call, fn) == 0)
		return 1;
	if (strcmp(fail_result, fn) == 0)
		return 2;
	if (strcmp(hang_fn, fn) == 0)
		return 3;
	return 0;
}

/* The common shape of an operation-based call: record, apply injection.  Returns 1 when the
 * caller should go on with its own logic, 0 when the call is answered (*hr set). */
static int begin_op(const char *fn, struct sys *s, HCS_OPERATION h, HRESULT *hr)
{
	struct op *op = (struct op *)h;
	*hr = S_OK;
	if (!op || (s && s->closed)) {
		*hr = E_HANDLE;
		return 0;
	}
	op->fn = fn;
	op->sys = s;
	switch (injected(fn)) {
	case 1:
		*hr = fail_hr;
		json_object_set_new(json_array_get(log_calls, json_array_size(log_calls) - 1),
		                    "Failed", json_true());
		return 0;
	case 2:
		fail_doc(op, fail_hr, "injected failure");
		return 0;
	case 3:
		op->hanging = true;
		if (s)
			s->hanging = op;
		return 0;
	}
	return 1;
}

static struct sys *sys_of(HCS_SYSTEM h)
{
	return (struct sys *)h;
}

/* ---- operations ---- */

EXPORT HCS_OPERATION WINAPI HcsCreateOperation(const void *context,
                                               HCS_OPERATION_COMPLETION callback)
{
	(void)context;
	struct op *op = xcalloc(1, sizeof(*op));
	op->done_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
	EnterCriticalSection(&lock);
	open_ops++;
	if (callback)
		record("HcsCreateOperation(callback: unsupported by the stand-in)", NULL);
	LeaveCriticalSection(&lock);
	return (HCS_OPERATION)op;
}

EXPORT void WINAPI HcsCloseOperation(HCS_OPERATION h)
{
	struct op *op = (struct op *)h;
	if (!op)
		return;
	EnterCriticalSection(&lock);
	open_ops--;
	op->closed = true;
	if (op->sys && op->sys->hanging == op)
		op->sys->hanging = NULL;
	/* done: free now; otherwise a completion task is (or is now) queued: the worker frees
	 * the operation when it gets there */
	if (op->done) {
		CloseHandle(op->done_ev);
		free(op->result);
		free(op);
	} else if (op->hanging) {
		/* nobody will complete it now: complete it so the worker frees it */
		complete(op, S_HR_CANCELLED, NULL);
	}
	LeaveCriticalSection(&lock);
}

EXPORT HRESULT WINAPI HcsWaitForOperationResult(HCS_OPERATION h, DWORD timeout_ms, PWSTR *result)
{
	struct op *op = (struct op *)h;
	if (result)
		*result = NULL;
	if (!op)
		return E_HANDLE;
	if (WaitForSingleObject(op->done_ev, timeout_ms) != WAIT_OBJECT_0)
		return (HRESULT)0x80370118; /* HCS_E_OPERATION_TIMEOUT */
	EnterCriticalSection(&lock);
	HRESULT hr = op->hr;
	if (result && op->result)
		*result = local_wide(op->result);
	LeaveCriticalSection(&lock);
	return hr;
}

EXPORT HRESULT WINAPI HcsCancelOperation(HCS_OPERATION h)
{
	struct op *op = (struct op *)h;
	if (!op)
		return E_HANDLE;
	EnterCriticalSection(&lock);
	json_t *r = record("HcsCancelOperation", op->sys);
	json_object_set_new(r, "Of", json_string(op->fn ? op->fn : "?"));
	HRESULT hr = S_OK;
	if (op->hanging) {
		if (op->sys && op->sys->hanging == op)
			op->sys->hanging = NULL;
		complete(op, S_HR_CANCELLED, NULL);
	} else if (op->done) {
		hr = S_HR_INVALID_STATE;
	}
	LeaveCriticalSection(&lock);
	return hr;
}

EXPORT HRESULT WINAPI HcsAddResourceToOperation(HCS_OPERATION h, int type, PCWSTR uri,
                                                HANDLE handle)
{
	struct op *op = (struct op *)h;
	if (!op)
		return E_HANDLE;
	EnterCriticalSection(&lock);
	json_t *r = record("HcsAddResourceToOperation", NULL);
	char *u = utf8(uri);
	json_object_set_new(r, "Type", json_integer(type));
	json_object_set_new(r, "Uri", json_string(u));
	/* a socket handle answers getsockopt(SO_TYPE) */
	int st = 0, n = sizeof(st);
	bool is_socket = getsockopt((SOCKET)handle, SOL_SOCKET, SO_TYPE, (char *)&st, &n) == 0 &&
	                 st == SOCK_STREAM;
	json_object_set_new(r, "Socket", json_boolean(is_socket));
	HRESULT hr = S_OK;
	if (type != 4 || strcmp(u, "hcs:/VirtualMachine/LiveMigrationSocket") != 0 || !is_socket)
		hr = S_HR_INVALIDARG;
	else {
		op->socket = (SOCKET)handle;
		op->has_socket = true;
	}
	free(u);
	LeaveCriticalSection(&lock);
	return hr;
}

/* ---- compute systems ---- */

EXPORT HRESULT WINAPI HcsCreateComputeSystem(PCWSTR id, PCWSTR config, HCS_OPERATION h,
                                             const SECURITY_DESCRIPTOR *sd, HCS_SYSTEM *out)
{
	(void)sd;
	EnterCriticalSection(&lock);
	char *sid = utf8(id);
	json_t *r = record("HcsCreateComputeSystem", NULL);
	json_object_set_new(r, "Id", json_string(sid));
	record_doc(r, "Document", config);
	HRESULT hr;
	if (!begin_op("HcsCreateComputeSystem", NULL, h, &hr)) {
		free(sid);
		LeaveCriticalSection(&lock);
		return hr;
	}
	struct op *op = (struct op *)h;
	for (struct sys *s = systems; s; s = s->next)
		if (strcmp(s->id, sid) == 0) {
			free(sid);
			LeaveCriticalSection(&lock);
			return S_HR_ALREADY_EXISTS;
		}
	json_t *doc = json_object_get(r, "Document");
	json_t *vm = json_object_get(doc, "VirtualMachine");
	if (!json_is_object(vm)) {
		free(sid);
		fail_doc(op, S_HR_INVALID_JSON, "no VirtualMachine in the document");
		LeaveCriticalSection(&lock);
		return S_OK;
	}
	struct sys *s = xcalloc(1, sizeof(*s));
	s->id = sid;
	snprintf(s->runtime_id, sizeof(s->runtime_id), "5f0b1190-63be-4e0c-b974-%012lx",
	         (unsigned long)++sys_counter);
	json_object_set_new(r, "RuntimeId", json_string(s->runtime_id));
	json_t *mo = json_object_get(vm, "MigrationOptions");
	s->destination =
	    json_is_object(mo) &&
	    strcmp(json_string_value(json_object_get(mo, "Origin")) ?: "", "Destination") == 0;
	if (s->destination) {
		/* the destination must carry the blob the source reported */
		const char *data = json_string_value(
		    json_object_get(json_object_get(mo, "CompatibilityData"), "Data"));
		if (!data || strcmp(data, compat_b64) != 0) {
			free(s->id);
			free(s);
			fail_doc(op, S_HR_INVALIDARG, "compatibility data does not match");
			LeaveCriticalSection(&lock);
			return S_OK;
		}
	}
	s->state = ST_CREATED;
	s->next = systems;
	systems = s;
	open_systems++;
	*out = (HCS_SYSTEM)s;
	op->sys = s;
	complete(op, S_OK, NULL);
	LeaveCriticalSection(&lock);
	return S_OK;
}

EXPORT void WINAPI HcsCloseComputeSystem(HCS_SYSTEM h)
{
	struct sys *s = sys_of(h);
	if (!s)
		return;
	EnterCriticalSection(&lock); /* waits for a callback in progress */
	record("HcsCloseComputeSystem", s);
	s->closed = true;
	if (s->hanging) {
		complete(s->hanging, E_HANDLE, NULL);
		s->hanging = NULL;
	}
	for (struct sys **pp = &systems; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	open_systems--;
	/* the struct stays allocated: queued tasks may still point at it (test process only) */
	LeaveCriticalSection(&lock);
}

EXPORT HRESULT WINAPI HcsSetComputeSystemCallback(HCS_SYSTEM h, HCS_EVENT_OPTIONS options,
                                                  const void *context, HCS_EVENT_CALLBACK callback)
{
	struct sys *s = sys_of(h);
	if (!s)
		return E_HANDLE;
	EnterCriticalSection(&lock);
	json_t *r = record("HcsSetComputeSystemCallback", s);
	json_object_set_new(r, "Options", json_integer(options));
	HRESULT hr = S_OK;
	if (injected("HcsSetComputeSystemCallback") == 1)
		hr = fail_hr;
	else {
		s->cb = callback;
		s->ctx = (void *)context;
	}
	LeaveCriticalSection(&lock);
	return hr;
}

static bool is_state(struct op *op, bool ok)
{
	if (!ok)
		fail_doc(op, S_HR_INVALID_STATE, "not valid in the current state");
	return ok;
}

/* Stop s: SystemExited, and any operation it had hanging fails. Lock held. */
static void stop_system(struct sys *s, const char *exit_type)
{
	s->state = ST_STOPPED;
	if (s->hanging) {
		complete(s->hanging, S_HR_TERMINATED, NULL);
		s->hanging = NULL;
	}
	char d[80];
	snprintf(d, sizeof(d), "{\"Status\":0,\"ExitType\":\"%s\"}", exit_type);
	emit(s, EV_SYSTEM_EXITED, d);
}

/* One operation-based call on a compute system: record fn with its document under key,
 * apply the injection, check the state (allowed), then act (lock held; act completes or fails
 * op). */
static HRESULT sys_call(const char *fn, const char *key, HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR doc,
                        bool (*allowed)(const struct sys *s),
                        void (*act)(struct sys *s, struct op *op, json_t *doc))
{
	struct sys *s = sys_of(h);
	struct op *op = (struct op *)oh;
	HRESULT hr;
	if (!s)
		return E_HANDLE;
	EnterCriticalSection(&lock);
	json_t *r = record(fn, s);
	record_doc(r, key, doc);
	if (begin_op(fn, s, oh, &hr) && is_state(op, allowed(s)))
		act(s, op, json_object_get(r, key));
	LeaveCriticalSection(&lock);
	return hr;
}

static bool always(const struct sys *s)
{
	(void)s;
	return true;
}

static bool when_created(const struct sys *s)
{
	return s->state == ST_CREATED;
}

static bool when_running(const struct sys *s)
{
	return s->state == ST_RUNNING;
}

/* A plain start, or a destination's start with DestinationMigrationOptions (which needs the
 * socket resource). */
static void act_start(struct sys *s, struct op *op, json_t *opts)
{
	bool dest = json_is_object(json_object_get(opts, "DestinationMigrationOptions"));
	if (dest != s->destination) {
		fail_doc(op, S_HR_INVALID_STATE, "start options do not match the compute system");
	} else if (dest && !op->has_socket) {
		fail_doc(op, S_HR_INVALIDARG, "no migration socket on the operation");
	} else if (dest) {
		s->state = ST_DST_STARTED;
		emit_lm(s, "Destination", "SetupDone", NULL, NULL);
		complete(op, S_OK, NULL);
	} else {
		s->state = ST_RUNNING;
		complete(op, S_OK, NULL);
	}
}

static void act_stop(struct sys *s, struct op *op, const char *exit_type)
{
	if (s->state == ST_STOPPED) {
		fail_doc(op, S_HR_ALREADY_STOPPED, "already stopped");
		return;
	}
	stop_system(s, exit_type);
	complete(op, S_OK, NULL);
}

static void act_shutdown(struct sys *s, struct op *op, json_t *opts)
{
	(void)opts;
	act_stop(s, op, "GracefulExit");
}

static void act_terminate(struct sys *s, struct op *op, json_t *opts)
{
	(void)opts;
	act_stop(s, op, "ForcedExit");
}

static void act_ok(struct sys *s, struct op *op, json_t *doc)
{
	(void)s;
	(void)doc;
	complete(op, S_OK, NULL);
}

/* The compatibility-info query (when the VM can migrate out), or the basic properties. */
static void act_properties(struct sys *s, struct op *op, json_t *query)
{
	char doc[300];
	if (json_object_get(query, "Queries")) {
		if (!is_state(op, s->state == ST_RUNNING || s->state == ST_SRC_INIT ||
		                      s->state == ST_SRC_STARTED))
			return;
		snprintf(doc, sizeof(doc),
		         "{\"PropertyResponses\":{\"CompatibilityInfo\":{\"Response\":"
		         "{\"Data\":\"%s\"}}}}",
		         compat_b64);
	} else {
		snprintf(doc, sizeof(doc), "{\"Id\":\"%s\",\"RuntimeId\":\"%s\",\"State\":\"%s\"}",
		         s->id, s->runtime_id, s->state == ST_STOPPED ? "Stopped" : "Running");
	}
	complete(op, S_OK, doc);
}

EXPORT HRESULT WINAPI HcsStartComputeSystem(HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR options)
{
	return sys_call("HcsStartComputeSystem", "Options", h, oh, options, when_created,
	                act_start);
}

EXPORT HRESULT WINAPI HcsShutDownComputeSystem(HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR options)
{
	return sys_call("HcsShutDownComputeSystem", "Options", h, oh, options, always,
	                act_shutdown);
}

EXPORT HRESULT WINAPI HcsTerminateComputeSystem(HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR options)
{
	return sys_call("HcsTerminateComputeSystem", "Options", h, oh, options, always,
	                act_terminate);
}

EXPORT HRESULT WINAPI HcsModifyComputeSystem(HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR config,
                                             HANDLE identity)
{
	(void)identity;
	return sys_call("HcsModifyComputeSystem", "Document", h, oh, config, when_running, act_ok);
}

EXPORT HRESULT WINAPI HcsGetComputeSystemProperties(HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR query)
{
	return sys_call("HcsGetComputeSystemProperties", "Query", h, oh, query, always,
	                act_properties);
}

EXPORT HRESULT WINAPI HcsGrantVmAccess(PCWSTR vm_id, PCWSTR path)
{
	EnterCriticalSection(&lock);
	json_t *r = record("HcsGrantVmAccess", NULL);
	char *a = utf8(vm_id), *b = utf8(path);
	json_object_set_new(r, "Id", json_string(a));
	json_object_set_new(r, "Path", json_string(b));
	free(a);
	free(b);
	HRESULT hr = injected("HcsGrantVmAccess") == 1 ? fail_hr : S_OK;
	LeaveCriticalSection(&lock);
	return hr;
}

/* ---- live migration ---- */

static bool when_src_init(const struct sys *s)
{
	return s->state == ST_SRC_INIT;
}

static bool when_started(const struct sys *s)
{
	return s->state == ST_SRC_STARTED || s->state == ST_DST_STARTED;
}

static bool when_migrating(const struct sys *s)
{
	return s->state != ST_RUNNING && s->state != ST_STOPPED;
}

static void act_init(struct sys *s, struct op *op, json_t *opts)
{
	(void)opts;
	s->state = ST_SRC_INIT;
	complete(op, S_OK, NULL);
}

static void act_start_source(struct sys *s, struct op *op, json_t *opts)
{
	(void)opts;
	if (!op->has_socket) {
		fail_doc(op, S_HR_INVALIDARG, "no migration socket on the operation");
		return;
	}
	s->state = ST_SRC_STARTED;
	emit_lm(s, "Source", "SetupDone", NULL, NULL);
	complete(op, S_OK, NULL);
}

/* hcsshim's test payloads, in the order a transfer produces them. */
static void act_transfer(struct sys *s, struct op *op, json_t *opts)
{
	(void)opts;
	const char *o = s->state == ST_DST_STARTED ? "Destination" : "Source";
	emit_lm(s, o, "TransferInProgress", NULL, NULL);
	emit_lm(s, o, "BlackoutStarted", NULL, NULL);
	emit_lm(s, o, "OfflineDone", "Success", NULL);
	emit_lm(s, o, "BlackoutExited", "Success",
	        "{\"BlackoutDurationMilliseconds\":1234,"
	        "\"BlackoutStopTimestamp\":\"2026-04-23T12:34:56Z\"}");
	emit_lm(s, o, "MigrationDone", "Success", NULL);
	s->state = ST_TRANSFERRED;
	complete(op, S_OK, NULL);
}

static void act_finalize(struct sys *s, struct op *op, json_t *opts)
{
	const char *fin = json_string_value(json_object_get(opts, "FinalizedOperation"));
	if (fin && strcmp(fin, "Stop") == 0) {
		stop_system(s, "GracefulExit");
		complete(op, S_OK, NULL);
	} else if (fin && strcmp(fin, "Resume") == 0) {
		s->state = ST_RUNNING;
		complete(op, S_OK, NULL);
	} else {
		fail_doc(op, S_HR_INVALIDARG, "FinalizedOperation must be Resume or Stop");
	}
}

/* A hanging transfer or start is interrupted; with nothing left to cancel HCS says
 * HCS_E_INVALID_STATE. */
static void act_cancel(struct sys *s, struct op *op, json_t *opts)
{
	const char *o = json_string_value(json_object_get(opts, "Origin"));
	if (!s->hanging &&
	    (s->state == ST_RUNNING || s->state == ST_TRANSFERRED || s->state == ST_STOPPED)) {
		fail_doc(op, S_HR_INVALID_STATE, "no migration to cancel");
		return;
	}
	if (s->hanging) {
		complete(s->hanging, S_HR_CANCELLED, NULL);
		s->hanging = NULL;
	}
	emit_lm(s, o ? o : "Source", "MigrationFailed", "MigrationCancelled", NULL);
	complete(op, S_OK, NULL);
}

EXPORT HRESULT WINAPI HcsInitializeLiveMigrationOnSource(HCS_SYSTEM h, HCS_OPERATION oh,
                                                         PCWSTR options)
{
	return sys_call("HcsInitializeLiveMigrationOnSource", "Options", h, oh, options,
	                when_running, act_init);
}

EXPORT HRESULT WINAPI HcsStartLiveMigrationOnSource(HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR options)
{
	return sys_call("HcsStartLiveMigrationOnSource", "Options", h, oh, options, when_src_init,
	                act_start_source);
}

EXPORT HRESULT WINAPI HcsStartLiveMigrationTransfer(HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR options)
{
	return sys_call("HcsStartLiveMigrationTransfer", "Options", h, oh, options, when_started,
	                act_transfer);
}

EXPORT HRESULT WINAPI HcsFinalizeLiveMigration(HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR options)
{
	return sys_call("HcsFinalizeLiveMigration", "Options", h, oh, options, when_migrating,
	                act_finalize);
}

EXPORT HRESULT WINAPI HcsCancelLiveMigration(HCS_SYSTEM h, HCS_OPERATION oh, PCWSTR options)
{
	return sys_call("HcsCancelLiveMigration", "Options", h, oh, options, always, act_cancel);
}

/* ---- control ---- */

static void copy_name(char *dst, size_t n, json_t *v)
{
	const char *s = json_string_value(v);
	snprintf(dst, n, "%s", s ? s : "");
}

/* Reset the injections and the log, then apply cfg (a JSON object; NULL or "" resets only). */
EXPORT int StandinConfigure(const char *cfg)
{
	EnterCriticalSection(&lock);
	json_array_clear(log_calls);
	fail_call[0] = fail_result[0] = hang_fn[0] = '\0';
	fail_hr = (HRESULT)0x80370106;
	int rc = 0;
	if (cfg && *cfg) {
		json_t *c = json_loads(cfg, 0, NULL);
		if (!json_is_object(c)) {
			rc = -EINVAL;
		} else {
			copy_name(fail_call, sizeof(fail_call), json_object_get(c, "FailCall"));
			copy_name(fail_result, sizeof(fail_result),
			          json_object_get(c, "FailResult"));
			copy_name(hang_fn, sizeof(hang_fn), json_object_get(c, "Hang"));
			if (json_is_integer(json_object_get(c, "Hr")))
				fail_hr =
				    (HRESULT)(uint32_t)json_integer_value(json_object_get(c, "Hr"));
		}
		json_decref(c);
	}
	LeaveCriticalSection(&lock);
	return rc;
}

/* The call log as JSON into out (cap bytes, NUL-terminated); returns the length it needs. */
EXPORT size_t StandinLog(char *out, size_t cap)
{
	EnterCriticalSection(&lock);
	char *s = json_dumps(log_calls, JSON_COMPACT);
	LeaveCriticalSection(&lock);
	size_t n = strlen(s);
	if (out && cap) {
		size_t k = n < cap - 1 ? n : cap - 1;
		memcpy(out, s, k);
		out[k] = '\0';
	}
	free(s);
	return n;
}

/* Open operations and systems right now. */
EXPORT void StandinStats(long *ops, long *sys)
{
	EnterCriticalSection(&lock);
	*ops = open_ops;
	*sys = open_systems;
	LeaveCriticalSection(&lock);
}

/* Send an event of type with payload (UTF-8; NULL for a nil EventData) to the callback of
 * the system named id.  -ENOENT when there is none. */
EXPORT int StandinEmit(const char *id, unsigned type, const char *payload)
{
	int rc = -ENOENT;
	EnterCriticalSection(&lock);
	for (struct sys *s = systems; s; s = s->next)
		if (strcmp(s->id, id) == 0) {
			emit(s, type, payload);
			rc = 0;
		}
	LeaveCriticalSection(&lock);
	return rc;
}
