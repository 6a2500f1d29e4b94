/* alloc.c - the allocator hook. Every byte descent owns goes through here,
 * so embedders can supply their own heap and tests can make it fail. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void *(*alloc_hook)(size_t) = malloc;
static void (*free_hook)(void *) = free;

void dsc_set_allocator(void *(*alloc_fn)(size_t), void (*free_fn)(void *))
{
    alloc_hook = alloc_fn ? alloc_fn : malloc;
    free_hook = free_fn ? free_fn : free;
}

void *dsc_malloc(size_t n) { return alloc_hook(n ? n : 1); }

void *dsc_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = dsc_malloc(count * size);
    size_t total = count * size;
    if (p) memset(p, 0, total > 0 ? total : 1);
    return p;
}

void dsc_free(void *p)
{
    if (p) free_hook(p);
}

char *dsc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = dsc_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

size_t dsc_dtype_size(dsc_dtype t)
{
    switch (t) {
    case DSC_DT_F32: return 4;
    case DSC_DT_F64: return 8;
    case DSC_DT_U8: return 1;
    case DSC_DT_I64: return 8;
    case DSC_DT_BF16: return 2;
    }
    return 0;
}

const char *dsc_dtype_name(dsc_dtype t)
{
    switch (t) {
    case DSC_DT_F32: return "F32";
    case DSC_DT_F64: return "F64";
    case DSC_DT_U8: return "U8";
    case DSC_DT_I64: return "I64";
    case DSC_DT_BF16: return "BF16";
    }
    return "?";
}

void dsc_plan_slot_shaped(dsc_plan *plan, const char *name, dsc_dtype dtype, int ndim,
                          const int64_t *shape)
{
    if (plan->nslots >= DSC_MAX_SLOTS) return; /* families declare a fixed few */
    dsc_slot *s = &plan->slot[plan->nslots++];
    memset(s, 0, sizeof *s);
    strncpy(s->name, name, sizeof s->name - 1);
    s->dtype = dtype;
    s->ndim = ndim;
    s->count = 1;
    for (int i = 0; i < ndim; i++) {
        s->shape[i] = shape[i];
        s->count *= (size_t)shape[i];
    }
}

void dsc_plan_slot(dsc_plan *plan, const char *name, dsc_dtype dtype, size_t count)
{
    int64_t shape[1] = {(int64_t)count};
    dsc_plan_slot_shaped(plan, name, dtype, 1, shape);
}
