/* The infinite-wait index (guest/gcs_waits.h): a fixed table of buckets, each a chain of groups
 * keyed by (container id, pid), each group a circular list of links with a sentinel. */
#include "guest/gcs_waits.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

struct gcs_wait_group {
	struct gcs_wait_group *next; /* bucket chain */
	char *cid;                   /* NULL: UVM process */
	pid_t pid;
	struct gcs_wait_link head; /* sentinel */
};

static size_t bucket(const char *cid, pid_t pid)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *c = cid ? cid : ""; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	h = (h ^ (uint32_t)pid) * 16777619u;
	return h % GCS_WAITS_BUCKETS;
}

static bool same(const struct gcs_wait_group *g, const char *cid, pid_t pid)
{
	if (g->pid != pid || !g->cid != !cid)
		return false;
	return !cid || strcmp(g->cid, cid) == 0;
}

static struct gcs_wait_group **find(struct gcs_waits *w, const char *cid, pid_t pid)
{
	struct gcs_wait_group **pp = &w->buckets[bucket(cid, pid)];
	while (*pp && !same(*pp, cid, pid))
		pp = &(*pp)->next;
	return pp;
}

void gcs_waits_add(struct gcs_waits *w, struct gcs_wait_link *l, const char *cid, pid_t pid)
{
	struct gcs_wait_group **pp = find(w, cid, pid);
	struct gcs_wait_group *g = *pp;
	if (!g) {
		g = xcalloc(1, sizeof(*g));
		g->cid = cid ? xstrdup(cid) : NULL;
		g->pid = pid;
		g->head.prev = g->head.next = &g->head;
		*pp = g;
	}
	l->grp = g;
	l->next = &g->head;
	l->prev = g->head.prev;
	g->head.prev->next = l;
	g->head.prev = l;
}

void gcs_waits_remove(struct gcs_waits *w, struct gcs_wait_link *l)
{
	struct gcs_wait_group *g = l->grp;
	if (!g)
		return;
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = NULL;
	l->grp = NULL;
	if (g->head.next != &g->head)
		return;
	struct gcs_wait_group **pp = find(w, g->cid, g->pid);
	*pp = g->next;
	free(g->cid);
	free(g);
}

struct gcs_wait_link *gcs_waits_oldest(struct gcs_waits *w, const char *cid, pid_t pid)
{
	struct gcs_wait_group *g = *find(w, cid, pid);
	return g && g->head.next != &g->head ? g->head.next : NULL;
}

void gcs_waits_fini(struct gcs_waits *w)
{
	for (size_t i = 0; i < GCS_WAITS_BUCKETS; i++) {
		while (w->buckets[i]) {
			struct gcs_wait_group *g = w->buckets[i];
			w->buckets[i] = g->next;
			for (struct gcs_wait_link *l = g->head.next; l != &g->head; l = l->next)
				l->grp = NULL;
			free(g->cid);
			free(g);
		}
	}
}
