/* arena.c - bump allocator for per-request memory (arena.h). */
#include "base/arena.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

enum { ARENA_FIRST_BLOCK = 4096 };

void arena_init(arena_t *a)
{
    a->head = NULL;
    a->total = 0;
}

static struct arena_block *block_new(size_t cap, struct arena_block *next)
{
    struct arena_block *b = xmalloc(sizeof *b + cap);
    b->next = next;
    b->used = 0;
    b->cap = cap;
    return b;
}

void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = b ? b->cap * 2 : ARENA_FIRST_BLOCK;
        while (cap < n)
            cap *= 2;
        b = a->head = block_new(cap, b);
    }
    void *p = b->data + b->used;
    b->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* Keep only the largest (newest) block so a steady workload stops allocating. */
void arena_reset(arena_t *a)
{
    struct arena_block *b = a->head;
    if (!b)
        return;
    struct arena_block *rest = b->next;
    while (rest) {
        struct arena_block *n = rest->next;
        free(rest);
        rest = n;
    }
    b->next = NULL;
    b->used = 0;
    a->total = 0;
}

void arena_free(arena_t *a)
{
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *n = b->next;
        free(b);
        b = n;
    }
    arena_init(a);
}
