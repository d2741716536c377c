/* A map from ttrpc stream id (uint32, never 0) to a pointer: the table of live streams of a
 * client or a server connection.  Open addressing with linear probing and backward-shift
 * deletion; grows so that it is at most half full.  Not thread-safe, like the rest of the
 * library (everything runs on one libev loop). */
#ifndef FERRY_TTRPC_IDMAP_H
#define FERRY_TTRPC_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct ttrpc_idmap {
	struct ttrpc_idmap_slot {
		uint32_t id; /* 0: empty */
		void *val;
	} * slots;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

void ttrpc_idmap_init(struct ttrpc_idmap *m);
/* Frees the table, not the values. */
void ttrpc_idmap_fini(struct ttrpc_idmap *m);
/* The value stored under id, or NULL. */
void *ttrpc_idmap_get(const struct ttrpc_idmap *m, uint32_t id);
/* Store val (not NULL) under id (not 0), replacing any previous value. */
void ttrpc_idmap_put(struct ttrpc_idmap *m, uint32_t id, void *val);
/* Remove id and return its value (NULL when absent). */
void *ttrpc_idmap_del(struct ttrpc_idmap *m, uint32_t id);
/* Any one stored value and its id (for draining the map one entry at a time, when callbacks
 * run between removals may end other entries), or NULL when empty. */
void *ttrpc_idmap_any(const struct ttrpc_idmap *m, uint32_t *id);
/* Empty the map and return its values in a new array (caller frees; NULL when the map was
 * empty), their number in *n.  For failing every stream at once: callbacks run on the array
 * may then add new entries without disturbing the walk. */
void **ttrpc_idmap_take_all(struct ttrpc_idmap *m, size_t *n);

#endif
