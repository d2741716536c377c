/* Test environment helpers for tests that run real containers with crun: a private mount
 * namespace with a pure cgroup2 /sys/fs/cgroup (crun refuses the machine's hybrid cgroup
 * layout, see ../shared/spec/machine-notes.md), a cached busybox rootfs, a minimal OCI spec,
 * and temporary directories.
 *
 * Running ferry-gcs (or any other binary that starts containers) as a separate process in such
 * a namespace: call testenv_enter_private_cgroup2() in the test process first, then fork/exec
 * the binary (e.g. with posix_spawn); children inherit the mount namespace, so the agent and
 * the crun it runs see the cgroup2 mount.  The host's mounts are untouched. */
#ifndef FERRY_TESTS_TESTENV_H
#define FERRY_TESTS_TESTENV_H

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"

/* As root: unshare(CLONE_NEWNS), make every mount private (recursively), lazily unmount
 * /sys/fs/cgroup and mount cgroup2 there.  Idempotent within a process.  0, or -EPERM when not
 * root, or -errno with a reason in e; callers skip() their test then. */
int testenv_enter_private_cgroup2(struct err *e);

/* Path of a busybox rootfs, built once with tests/scripts/mkrootfs.sh (run from the source
 * tree root) under $BUILD/rootfs ($BUILD defaults to "build").  The returned absolute path is
 * static storage.  NULL + e when it cannot be built. */
const char *testenv_rootfs(struct err *e);

/* A minimal OCI runtime spec (crun spec style) for rootfs running args (NULL-terminated):
 * namespaces pid/ipc/uts/mount, mounts /proc /dev /dev/pts /dev/shm /sys, default
 * capabilities, no cgroupsPath.  New reference owned by the caller. */
json_t *testenv_oci_spec(const char *rootfs, const char *const args[], bool terminal);

/* The OCI "process" object of such a spec (for exec).  New reference. */
json_t *testenv_oci_process(const char *const args[], bool terminal);

/* mkdtemp under $TMPDIR (default /tmp) with the given prefix; caller frees the string and
 * removes the tree with testenv_rm_rf.  NULL + e on failure. */
char *testenv_mkdtemp(const char *prefix, struct err *e);

/* A whole file as a NUL-terminated string (caller frees); *len (may be NULL) gets its length
 * without the NUL.  NULL when it cannot be opened. */
char *testenv_read_file(const char *path, size_t *len);

/* rm -rf that does not cross mount points.  NULL-safe. */
void testenv_rm_rf(const char *path);

#endif
