/* hmap.c - open-addressing hash map (hmap.h). */
#include "base/hmap.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static char tombstone_mark;
#define TOMB (&tombstone_mark)

uint64_t hmap_hash(const void *key, size_t keylen)
{
    /* FNV-1a, then a final mix so that low bits are usable for masking. */
    const uint8_t *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < keylen; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

void hmap_init(hmap *m) { memset(m, 0, sizeof *m); }

void hmap_free(hmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != TOMB)
            free(m->slots[i].key);
    free(m->slots);
    hmap_init(m);
}

static hmap_slot *find(const hmap *m, const void *key, size_t keylen, uint64_t h)
{
    if (!m->cap)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        hmap_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMB && s->hash == h && s->keylen == keylen && memcmp(s->key, key, keylen) == 0)
            return s;
    }
}

static void grow(hmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    if (m->count * 2 < m->cap)
        cap = m->cap; /* mostly tombstones: rehash at the same size */
    hmap_slot *old = m->slots;
    size_t oldcap = m->cap;
    m->slots = xcalloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->used = m->count;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].key || old[i].key == TOMB)
            continue;
        size_t j = old[i].hash & (cap - 1);
        while (m->slots[j].key)
            j = (j + 1) & (cap - 1);
        m->slots[j] = old[i];
    }
    free(old);
}

void *hmap_get(const hmap *m, const void *key, size_t keylen)
{
    hmap_slot *s = find(m, key, keylen, hmap_hash(key, keylen));
    return s ? s->value : NULL;
}

void *hmap_put(hmap *m, const void *key, size_t keylen, void *value)
{
    uint64_t h = hmap_hash(key, keylen);
    hmap_slot *s = find(m, key, keylen, h);
    if (s) {
        void *prev = s->value;
        s->value = value;
        return prev;
    }
    if ((m->used + 1) * 10 > m->cap * 7)
        grow(m);
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && m->slots[i].key != TOMB)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->used++;
    m->slots[i] = (hmap_slot){xstrndup(key, keylen), keylen, h, value};
    m->count++;
    return NULL;
}

void *hmap_del(hmap *m, const void *key, size_t keylen)
{
    hmap_slot *s = find(m, key, keylen, hmap_hash(key, keylen));
    if (!s)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMB;
    s->value = NULL;
    m->count--;
    return v;
}

bool hmap_next(const hmap *m, size_t *iter, const char **key, size_t *keylen, void **value)
{
    for (; *iter < m->cap; (*iter)++) {
        hmap_slot *s = &m->slots[*iter];
        if (s->key && s->key != TOMB) {
            if (key)
                *key = s->key;
            if (keylen)
                *keylen = s->keylen;
            if (value)
                *value = s->value;
            (*iter)++;
            return true;
        }
    }
    return false;
}
