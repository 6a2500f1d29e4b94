/* access.c - state and buffers seen from outside, for bindings: read and
 * write one state slot by name (a framework's state_dict), and point every
 * parameter at new buffers in one call (frameworks that re-allocate
 * gradient tensors between steps). Nothing here runs during a step. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* The slots of a parameter, or of a group's own state. */
static dsc_slot *owner_slots(const dsc_optimizer *opt, const char *owner, int group_state,
                             int *n)
{
    if (group_state) {
        dsc_group *g = dsc_optimizer_find_group(opt, owner);
        if (!g) return NULL;
        *n = g->nslots;
        return g->slots;
    }
    dsc_param *p = dsc_optimizer_find_param(opt, owner);
    if (!p) return NULL;
    *n = p->nslots;
    return p->slots;
}

int dsc_optimizer_slot_count(const dsc_optimizer *opt, const char *owner, int group_state)
{
    int n = 0;
    if (!opt || !owner) return -1;
    return owner_slots(opt, owner, group_state, &n) ? n : -1;
}

dsc_status dsc_optimizer_slot_info(const dsc_optimizer *opt, const char *owner, int group_state,
                                   int i, dsc_slot_info *info)
{
    int n = 0;
    if (!opt || !owner || !info) return DSC_NULL_POINTER;
    dsc_slot *slots = owner_slots(opt, owner, group_state, &n);
    if (!slots) return DSC_UNKNOWN_NAME;
    if (i < 0 || i >= n) return DSC_OUT_OF_RANGE;
    const dsc_slot *s = &slots[i];
    memset(info, 0, sizeof *info);
    info->name = s->name;
    info->dtype = dsc_dtype_name(s->dtype);
    info->ndim = s->ndim;
    for (int d = 0; d < s->ndim && d < DSC_MAX_NDIM; d++) info->shape[d] = s->shape[d];
    info->count = s->count;
    info->bytes = s->count * dsc_dtype_size(s->dtype);
    return DSC_OK;
}

/* The slot `slot` of `owner`, checked against the caller's size, or NULL
 * with the error recorded on the handle. */
static dsc_slot *find_slot(dsc_optimizer *opt, const char *fn, const char *owner,
                           int group_state, const char *slot, size_t bytes, dsc_status *st)
{
    int n = 0;
    dsc_slot *slots = owner_slots(opt, owner, group_state, &n);
    if (!slots) {
        *st = dsc_fail(opt, DSC_UNKNOWN_NAME, "%s: no %s named \"%s\"", fn,
                       group_state ? "group" : "parameter", owner);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(slots[i].name, slot) != 0) continue;
        size_t have = slots[i].count * dsc_dtype_size(slots[i].dtype);
        if (have != bytes) {
            *st = dsc_fail(opt, DSC_SHAPE, "%s: \"%s\" of \"%s\" holds %zu bytes (%zu %s), not %zu",
                           fn, slot, owner, have, slots[i].count,
                           dsc_dtype_name(slots[i].dtype), bytes);
            return NULL;
        }
        return &slots[i];
    }
    *st = dsc_fail(opt, DSC_UNKNOWN_NAME, "%s: \"%s\" has no state slot \"%s\"", fn, owner, slot);
    return NULL;
}

dsc_status dsc_optimizer_read_slot(dsc_optimizer *opt, const char *owner, int group_state,
                                   const char *slot, void *out, size_t bytes)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (!owner || !slot || !out)
        return dsc_fail(opt, DSC_NULL_POINTER, "read_slot: owner, slot and buffer are required");
    dsc_status st = DSC_OK;
    dsc_slot *s = find_slot(opt, "read_slot", owner, group_state, slot, bytes, &st);
    if (!s) return st;
    if (bytes) memcpy(out, s->data, bytes);
    return DSC_OK;
}

dsc_status dsc_optimizer_write_slot(dsc_optimizer *opt, const char *owner, int group_state,
                                    const char *slot, const void *in, size_t bytes)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (!owner || !slot || !in)
        return dsc_fail(opt, DSC_NULL_POINTER, "write_slot: owner, slot and buffer are required");
    dsc_status st = DSC_OK;
    dsc_slot *s = find_slot(opt, "write_slot", owner, group_state, slot, bytes, &st);
    if (!s) return st;
    if (bytes) memcpy(s->data, in, bytes);
    return DSC_OK;
}

dsc_status dsc_optimizer_rebind_all(dsc_optimizer *opt, int n, float *const *data,
                                    const float *const *grad)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (n != opt->nparams)
        return dsc_fail(opt, DSC_INVALID_ARGUMENT,
                        "rebind_all: %d buffers given for %d parameters", n, opt->nparams);
    /* bf16 parameters keep their own buffers (dsc_optimizer_rebind refuses
     * them too); checked for every entry before anything is stored, so a
     * failed call changes nothing. */
    for (int i = 0; i < n; i++) {
        const dsc_param *p = opt->params[i];
        if (p->bf16 && ((data && data[i]) || (grad && grad[i])))
            return dsc_fail(opt, DSC_STATE, "rebind_all \"%s\": a bf16 parameter takes no "
                            "float32 buffers", p->name);
    }
    for (int i = 0; i < n; i++) {
        dsc_param *p = opt->params[i];
        if (data && data[i]) p->data = data[i];
        if (grad && grad[i]) {
            p->grad_user = grad[i];
            p->grad = grad[i];
        }
    }
    return DSC_OK;
}
