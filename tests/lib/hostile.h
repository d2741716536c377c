/* The hostile cases of issue 7 (tests/lib/hostile.c): each plays a careless or hostile host
 * against the agent of `f` (started by the caller, e.g. agent_start with "--log-level=warn",
 * already connected, not negotiated), asserts with cmocka that the agent copes, and returns how
 * much its peak resident memory (VmHWM) grew meanwhile, in KiB, or HOSTILE_UNAVAILABLE when the machine cannot
 * run the case.  Call them from inside a cmocka test. */
#ifndef FERRY_TESTS_HOSTILE_H
#define FERRY_TESTS_HOSTILE_H

#include "tests/lib/agent.h"

/* VmHWM of the agent, KiB (asserted readable). */
long hostile_hwm_kib(const struct agent *a);

/* A 16 MiB request: over the frame cap, the connection ends at the header; the agent dials
 * again and answers on the new connection. */
#include <limits.h>

/* What a case returns when this machine cannot run it (not a growth figure). */
#define HOSTILE_UNAVAILABLE LONG_MIN

long hostile_over_frame_cap(struct agent *f);
/* An 8 MiB Create of 2.8 million `{}`: refused by the value count (Invalid JSON). */
long hostile_many_values(struct agent *f);
/* 10,000 DumpStacks (near 32 KiB each) to a host that reads nothing, then reads all. */
long hostile_never_reads(struct agent *f);
/* 100,000 infinite waits on one process (resume negotiated): the ones over the cap refused at
 * once, the rest answered at the exit. */
long hostile_many_waits(struct agent *f);
/* 40 processes printing 2 MB each, read and never acknowledged; then acknowledged: every byte
 * exactly once. */
long hostile_unacked_streams(struct agent *f);
/* 2,000 UVM processes with stdin and stdout (needs the agent started with a soft
 * RLIMIT_NOFILE of 1024 to show the raise; HOSTILE_UNAVAILABLE when the hard limit is too low). */
long hostile_many_processes(struct agent *f);
/* 1 MiB of junk on a stdout connection: a few warnings, the connection closed and re-dialled,
 * the stream intact. */
long hostile_junk(struct agent *f);
/* 2,000 connections to the wake port without the secret (plain, junk, a wrong proof): the
 * bridge stays. */
long hostile_wake_pokes(struct agent *f);

#endif
