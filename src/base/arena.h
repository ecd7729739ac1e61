/*
 * arena.h - bump allocator for per-request memory. Everything a decoded
 * request needs (arrays of structs) is carved from the request's arena and
 * released at once with arena_reset/arena_free. Blocks grow geometrically;
 * a reset keeps the first block for reuse.
 */
#ifndef CHRONIK_BASE_ARENA_H
#define CHRONIK_BASE_ARENA_H

#include <stddef.h>

struct arena_block;

typedef struct arena {
    struct arena_block *head;
    size_t total; /* bytes handed out since the last reset */
} arena_t;

void arena_init(arena_t *a);
void *arena_alloc(arena_t *a, size_t n);  /* 16-byte aligned, zeroed */
char *arena_strndup(arena_t *a, const char *s, size_t n);
void arena_reset(arena_t *a);
void arena_free(arena_t *a);

#endif
