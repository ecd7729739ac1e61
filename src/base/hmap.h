/*
 * hmap.h - a hash map from byte-string keys to pointers: open addressing
 * with linear probing and tombstones, grown at 70% load. Keys are copied in.
 * Not thread-safe: the owner locks.
 */
#ifndef CHRONIK_BASE_HMAP_H
#define CHRONIK_BASE_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hmap_slot {
    char *key;      /* NULL: empty; HMAP_TOMBSTONE: deleted */
    size_t keylen;
    uint64_t hash;
    void *value;
} hmap_slot;

typedef struct hmap {
    hmap_slot *slots;
    size_t cap;      /* power of two, or 0 */
    size_t count;    /* live entries */
    size_t used;     /* live + tombstones */
} hmap;

void hmap_init(hmap *m);
void hmap_free(hmap *m); /* frees keys, not values */
void *hmap_get(const hmap *m, const void *key, size_t keylen);
/* Insert or replace; returns the previous value or NULL. */
void *hmap_put(hmap *m, const void *key, size_t keylen, void *value);
/* Remove; returns the value removed or NULL. */
void *hmap_del(hmap *m, const void *key, size_t keylen);
uint64_t hmap_hash(const void *key, size_t keylen);

/* Iterate: for (size_t i = 0; hmap_next(m, &i, &k, &kl, &v);) ... */
bool hmap_next(const hmap *m, size_t *iter, const char **key, size_t *keylen, void **value);

#endif
