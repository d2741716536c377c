/* The index of infinite WaitForProcess requests by (container id, pid) that ferry-gcs keeps so
 * that a host's re-subscription supersedes the older waits for the same process in O(1) per
 * superseded wait, and registering a wait is O(1) whatever is in flight (issue 7: 100,000 waits
 * on one process took 35 s to register with a scan of every request per wait).  Intrusive: a
 * struct gcs_wait_link lives in each request; the index allocates one small group per
 * (container, pid) with waits, freed with its last wait.  Within a group the waits are kept in
 * arrival order, which is connection order, so the ones of earlier connections are at the
 * front.  Not thread-safe (one loop). */
#ifndef FERRY_GUEST_GCS_WAITS_H
#define FERRY_GUEST_GCS_WAITS_H

#include <stdbool.h>
#include <sys/types.h>

#define GCS_WAITS_BUCKETS 1024u /* groups per bucket stay few at the request cap */

struct gcs_wait_group;

struct gcs_wait_link {
	struct gcs_wait_link *prev, *next; /* the group's list, arrival order */
	struct gcs_wait_group *grp;        /* NULL while not indexed */
};

struct gcs_waits {
	struct gcs_wait_group *buckets[GCS_WAITS_BUCKETS];
};

/* Append l (not indexed) to the group of (cid, pid); cid NULL means a UVM process.  cid is
 * copied. */
void gcs_waits_add(struct gcs_waits *w, struct gcs_wait_link *l, const char *cid, pid_t pid);
/* Take l out of its group (no-op when not indexed); an empty group is freed. */
void gcs_waits_remove(struct gcs_waits *w, struct gcs_wait_link *l);
/* The oldest wait of (cid, pid), or NULL. */
struct gcs_wait_link *gcs_waits_oldest(struct gcs_waits *w, const char *cid, pid_t pid);
/* Free every group (the links are left dangling: their owners are going too). */
void gcs_waits_fini(struct gcs_waits *w);

#endif
