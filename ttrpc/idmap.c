/* The stream table: linear probing keyed by a multiplicative hash of the id. */
#include "ttrpc/idmap.h"

#include <string.h>

#include "common/xalloc.h"

static size_t home(const struct ttrpc_idmap *m, uint32_t id)
{
	return (size_t)((id * 2654435761u) & (uint32_t)(m->cap - 1));
}

void ttrpc_idmap_init(struct ttrpc_idmap *m)
{
	memset(m, 0, sizeof(*m));
}

void ttrpc_idmap_fini(struct ttrpc_idmap *m)
{
	free(m->slots);
	ttrpc_idmap_init(m);
}

static struct ttrpc_idmap_slot *find(const struct ttrpc_idmap *m, uint32_t id)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = home(m, id);; i = (i + 1) & (m->cap - 1)) {
		if (m->slots[i].id == id)
			return &m->slots[i];
		if (m->slots[i].id == 0)
			return NULL;
	}
}

void *ttrpc_idmap_get(const struct ttrpc_idmap *m, uint32_t id)
{
	const struct ttrpc_idmap_slot *s = find(m, id);
	return s ? s->val : NULL;
}

static void insert(struct ttrpc_idmap *m, uint32_t id, void *val)
{
	size_t i = home(m, id);
	while (m->slots[i].id != 0 && m->slots[i].id != id)
		i = (i + 1) & (m->cap - 1);
	if (m->slots[i].id == 0)
		m->n++;
	m->slots[i].id = id;
	m->slots[i].val = val;
}

void ttrpc_idmap_put(struct ttrpc_idmap *m, uint32_t id, void *val)
{
	if (2 * (m->n + 1) > m->cap) {
		struct ttrpc_idmap old = *m;
		m->cap = old.cap ? old.cap * 2 : 16;
		m->slots = xcalloc(m->cap, sizeof(*m->slots));
		m->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.slots[i].id)
				insert(m, old.slots[i].id, old.slots[i].val);
		free(old.slots);
	}
	insert(m, id, val);
}

void *ttrpc_idmap_del(struct ttrpc_idmap *m, uint32_t id)
{
	struct ttrpc_idmap_slot *s = find(m, id);
	if (!s)
		return NULL;
	void *val = s->val;
	size_t mask = m->cap - 1, hole = (size_t)(s - m->slots);
	/* Backward shift: move later members of the probe run into the hole when their home
	 * position allows it, so lookups never need tombstones. */
	for (size_t j = (hole + 1) & mask; m->slots[j].id != 0; j = (j + 1) & mask) {
		size_t h = home(m, m->slots[j].id);
		if (((j - h) & mask) >= ((j - hole) & mask)) {
			m->slots[hole] = m->slots[j];
			hole = j;
		}
	}
	m->slots[hole].id = 0;
	m->slots[hole].val = NULL;
	m->n--;
	return val;
}

void **ttrpc_idmap_take_all(struct ttrpc_idmap *m, size_t *n)
{
	*n = m->n;
	if (m->n == 0)
		return NULL;
	void **v = xmalloc(m->n * sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].id) {
			v[k++] = m->slots[i].val;
			m->slots[i].id = 0;
			m->slots[i].val = NULL;
		}
	}
	m->n = 0;
	return v;
}

void *ttrpc_idmap_any(const struct ttrpc_idmap *m, uint32_t *id)
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].id) {
			*id = m->slots[i].id;
			return m->slots[i].val;
		}
	}
	return NULL;
}
