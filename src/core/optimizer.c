/* optimizer.c - the handle: groups, routing rules, parameters and their
 * state, hyperparameters and listings. The step itself is in step.c. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CHECK_NULL(opt, ptr, what)                                                      \
    do {                                                                                \
        if (!(ptr)) return dsc_fail((opt), DSC_NULL_POINTER, "%s: %s is NULL", __func__, what); \
    } while (0)

dsc_optimizer *dsc_optimizer_new(void)
{
    dsc_optimizer *opt = dsc_calloc(1, sizeof *opt);
    if (!opt) return NULL;
    opt->accumulation = 1;
    opt->nonfinite = DSC_NONFINITE_SKIP;
    opt->reference = dsc_env_reference();
    opt->stats.clip_scale = 1.0;
    return opt;
}

static void free_slots(dsc_slot *slots, int n)
{
    for (int i = 0; i < n; i++) {
        dsc_free(slots[i].data);
        slots[i].data = NULL;
    }
}

static void free_param(dsc_param *p)
{
    if (!p) return;
    free_slots(p->slots, p->nslots);
    dsc_free(p->scratch);
    dsc_free(p->work);
    dsc_free(p->accum);
    dsc_free(p->prev);
    dsc_free(p->bf16_work);
    dsc_free(p);
}

static void free_group(dsc_group *g)
{
    free_slots(g->slots, g->nslots);
    dsc_free(g->scratch);
    dsc_free(g->params);
    dsc_free(g);
}

void dsc_optimizer_free(dsc_optimizer *opt)
{
    if (!opt) return;
    dsc_shard_free(opt->shard);
    for (int i = 0; i < opt->nparams; i++) free_param(opt->params[i]);
    for (int i = 0; i < opt->ngroups; i++) free_group(opt->groups[i]);
    for (int i = 0; i < opt->nrules; i++) dsc_free(opt->rules[i].pattern);
    dsc_free(opt->rules);
    dsc_free(opt->groups);
    dsc_free(opt->params);
    dsc_free(opt->hooks);
    dsc_free(opt);
}

/* Grow an array of `size`-byte items to hold at least `need`. */
static int grow(void **arr, int *cap, int need, size_t size)
{
    if (need <= *cap) return 1;
    int ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) ncap *= 2;
    void *n = dsc_calloc((size_t)ncap, size);
    if (!n) return 0;
    if (*arr) memcpy(n, *arr, (size_t)*cap * size);
    dsc_free(*arr);
    *arr = n;
    *cap = ncap;
    return 1;
}

dsc_group *dsc_optimizer_find_group(const dsc_optimizer *opt, const char *name)
{
    for (int i = 0; i < opt->ngroups; i++)
        if (strcmp(opt->groups[i]->name, name) == 0) return opt->groups[i];
    return NULL;
}

dsc_param *dsc_optimizer_find_param(const dsc_optimizer *opt, const char *name)
{
    for (int i = 0; i < opt->nparams; i++)
        if (strcmp(opt->params[i]->name, name) == 0) return opt->params[i];
    return NULL;
}

dsc_param *dsc_group_param(const dsc_group *g, int i) { return g->opt->params[g->params[i]]; }

static int group_index(const dsc_optimizer *opt, const dsc_group *g)
{
    for (int i = 0; i < opt->ngroups; i++)
        if (opt->groups[i] == g) return i;
    return -1;
}

/* Allocate the slots of a plan; on failure frees what it took. */
static int alloc_slots(const dsc_plan *plan, dsc_slot *slots)
{
    for (int i = 0; i < plan->nslots; i++) {
        slots[i] = plan->slot[i];
        slots[i].data = dsc_calloc(plan->slot[i].count ? plan->slot[i].count : 1,
                                   dsc_dtype_size(plan->slot[i].dtype));
        if (!slots[i].data) {
            free_slots(slots, i);
            return 0;
        }
    }
    return 1;
}

/* Re-plan a group's workspace after its parameters changed. */
static dsc_status replan_group_scratch(dsc_group *g)
{
    if (!g->family->plan_group) return DSC_OK;
    dsc_plan plan;
    memset(&plan, 0, sizeof plan);
    g->family->plan_group(g, &plan);
    if (plan.scratch_bytes > g->scratch_bytes) {
        void *s = dsc_calloc(1, plan.scratch_bytes);
        if (!s)
            return dsc_fail(g->opt, DSC_NO_MEMORY, "group \"%s\": cannot allocate %zu bytes",
                            g->name, plan.scratch_bytes);
        dsc_free(g->scratch);
        g->scratch = s;
        g->scratch_bytes = plan.scratch_bytes;
    }
    return DSC_OK;
}

static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= DSC_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 32 || name[i] == '"' || name[i] == '\\') return 0;
    return 1;
}

dsc_status dsc_optimizer_add_group(dsc_optimizer *opt, const char *group, const char *spec)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (opt->shard) /* shard.c: the ranks' pieces are cut */
        return dsc_fail(opt, DSC_STATE, "%s: not after dsc_optimizer_set_comm", __func__);
    CHECK_NULL(opt, group, "group name");
    CHECK_NULL(opt, spec, "optimizer spec");
    if (!valid_name(group))
        return dsc_fail(opt, DSC_INVALID_ARGUMENT,
                        "add_group: invalid group name \"%s\" (1..%d printable characters, "
                        "no quotes or backslashes)", group, DSC_NAME_MAX - 1);
    if (dsc_optimizer_find_group(opt, group))
        return dsc_fail(opt, DSC_DUPLICATE_NAME, "add_group: group \"%s\" already exists",
                        group);
    const dsc_family *f;
    double hp[DSC_MAX_KEYS];
    char err[DSC_ERR_MAX];
    /* Wrappers and the group keys any family accepts (wrap.c) are taken
     * out first; the family's parser sees the rest. */
    struct dsc_group_opts wrap;
    const char *inner = spec;
    dsc_spec_tokens tok;
    dsc_status st = dsc_wrap_take_prefix(spec, &inner, &wrap, err, sizeof err);
    if (st == DSC_OK) st = dsc_spec_tokenize("optimizer spec", inner, &tok, err, sizeof err);
    if (st == DSC_OK) st = dsc_wrap_take_keys(&tok, &wrap, err, sizeof err);
    if (st == DSC_OK) st = dsc_spec_parse_tokens(&tok, &f, hp, err, sizeof err);
    if (st != DSC_OK) return dsc_fail(opt, st, "group \"%s\": %s", group, err);
    if (!grow((void **)&opt->groups, &opt->cap_groups, opt->ngroups + 1, sizeof(dsc_group *)))
        return dsc_fail(opt, DSC_NO_MEMORY, "add_group: out of memory");
    dsc_group *g = dsc_calloc(1, sizeof *g);
    if (!g) return dsc_fail(opt, DSC_NO_MEMORY, "add_group: out of memory");
    strcpy(g->name, group);
    g->family = f;
    g->opt = opt;
    g->wrap = wrap;
    memcpy(g->base, hp, sizeof hp);
    memcpy(g->init, hp, sizeof hp);
    memcpy(g->cur, hp, sizeof hp);
    if (f->plan_group) {
        dsc_plan plan;
        memset(&plan, 0, sizeof plan);
        f->plan_group(g, &plan);
        if (!alloc_slots(&plan, g->slots)) {
            dsc_free(g);
            return dsc_fail(opt, DSC_NO_MEMORY, "add_group: out of memory");
        }
        g->nslots = plan.nslots;
    }
    opt->groups[opt->ngroups++] = g;
    if (wrap.coord_clip > 0 || wrap.maximize) { /* work buffers for the clip / negation */
        st = dsc_optimizer_ensure_buffers(opt);
        if (st != DSC_OK) free_group(opt->groups[--opt->ngroups]); /* changes nothing */
        return st;
    }
    return DSC_OK;
}

/* '*' matches any run, '?' any one character. */
static int glob_match(const char *pat, const char *s)
{
    if (!*pat) return !*s;
    if (*pat == '*') return glob_match(pat + 1, s) || (*s && glob_match(pat, s + 1));
    if (*s && (*pat == '?' || *pat == *s)) return glob_match(pat + 1, s + 1);
    return 0;
}

dsc_status dsc_optimizer_add_rule(dsc_optimizer *opt, const char *pattern, dsc_role role,
                                  const char *group, int no_decay)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    CHECK_NULL(opt, group, "group name");
    if (!dsc_optimizer_find_group(opt, group))
        return dsc_fail(opt, DSC_UNKNOWN_NAME, "add_rule: no group named \"%s\"", group);
    if ((int)role < DSC_ROLE_AUTO || role > DSC_ROLE_CONV)
        return dsc_fail(opt, DSC_OUT_OF_RANGE, "add_rule: role %d is not a dsc_role", (int)role);
    if (!grow((void **)&opt->rules, &opt->cap_rules, opt->nrules + 1, sizeof(dsc_rule)))
        return dsc_fail(opt, DSC_NO_MEMORY, "add_rule: out of memory");
    dsc_rule *r = &opt->rules[opt->nrules];
    memset(r, 0, sizeof *r);
    if (pattern && !(r->pattern = dsc_strdup(pattern)))
        return dsc_fail(opt, DSC_NO_MEMORY, "add_rule: out of memory");
    r->role = role;
    strcpy(r->group, group);
    r->no_decay = no_decay != 0;
    opt->nrules++;
    return DSC_OK;
}

dsc_status dsc_optimizer_use_split(dsc_optimizer *opt, const char *matrix_spec,
                                   const char *fallback_spec)
{
    if (!opt) return DSC_NULL_POINTER;
    /* A failed call changes nothing: when the second spec is bad or memory
     * runs out halfway, the groups and rules added here are taken back. */
    int ngroups = opt->ngroups, nrules = opt->nrules;
    dsc_status st;
    /* Hidden matrices and conv filters to the matrix optimizer; embeddings,
     * the head and vectors to the fallback, vectors without weight decay
     * (the KellerJordan/Muon README split). */
    if ((st = dsc_optimizer_add_group(opt, "matrix", matrix_spec)) ||
        (st = dsc_optimizer_add_group(opt, "fallback", fallback_spec)) ||
        (st = dsc_optimizer_add_rule(opt, NULL, DSC_ROLE_MATRIX, "matrix", 0)) ||
        (st = dsc_optimizer_add_rule(opt, NULL, DSC_ROLE_CONV, "matrix", 0)) ||
        (st = dsc_optimizer_add_rule(opt, NULL, DSC_ROLE_VECTOR, "fallback", 1)) ||
        (st = dsc_optimizer_add_rule(opt, NULL, DSC_ROLE_AUTO, "fallback", 0))) {
        while (opt->ngroups > ngroups) free_group(opt->groups[--opt->ngroups]);
        while (opt->nrules > nrules) dsc_free(opt->rules[--opt->nrules].pattern);
        return st;
    }
    return DSC_OK;
}

const char *dsc_role_name(dsc_role r)
{
    switch (r) {
    case DSC_ROLE_AUTO: return "auto";
    case DSC_ROLE_MATRIX: return "matrix";
    case DSC_ROLE_EMBEDDING: return "embedding";
    case DSC_ROLE_HEAD: return "head";
    case DSC_ROLE_VECTOR: return "vector";
    case DSC_ROLE_CONV: return "conv";
    }
    return "?";
}

static int name_has(const char *name, const char *word) { return strstr(name, word) != NULL; }

static dsc_role infer_role(const char *name, int ndim)
{
    if (ndim == 1) return DSC_ROLE_VECTOR;
    if (ndim >= 3) return DSC_ROLE_CONV;
    if (name_has(name, "wte") || name_has(name, "wpe") || name_has(name, "embed") ||
        name_has(name, "tok_emb") || name_has(name, "pos_emb"))
        return DSC_ROLE_EMBEDDING;
    if (name_has(name, "lm_head") || name_has(name, "head") || name_has(name, "classifier"))
        return DSC_ROLE_HEAD;
    return DSC_ROLE_MATRIX;
}

static int param_needs_work(const dsc_optimizer *opt)
{
    /* The mean of an accumulation and the transform stage write p->work. */
    return opt->accumulation > 1 || dsc_transform_needs_work(opt);
}

int dsc_group_tracks_update(const dsc_optimizer *opt, const dsc_group *g)
{
    return opt->want_stats && g->family->tracks_update && !opt->reference && !opt->shard &&
           !g->wrap.lookahead && g->wrap.bf16_state == DSC_STATE_F32;
}

int dsc_param_needs_prev(const dsc_optimizer *opt, const dsc_param *p)
{
    return opt->want_stats && !dsc_group_tracks_update(opt, opt->groups[p->group]);
}

static dsc_status param_buffers(dsc_optimizer *opt, dsc_param *p)
{
    if (param_needs_work(opt) && !p->work) {
        p->work = dsc_calloc(p->numel, sizeof(float));
        if (!p->work) goto oom;
    }
    if (opt->accumulation > 1 && !p->accum) {
        p->accum = dsc_calloc(p->numel, sizeof(float));
        if (!p->accum) goto oom;
    }
    if (dsc_param_needs_prev(opt, p) && !p->prev) { /* update_l2 by copy and compare */
        p->prev = dsc_calloc(p->numel, sizeof(float));
        if (!p->prev) goto oom;
    }
    return DSC_OK;
oom:
    return dsc_fail(opt, DSC_NO_MEMORY, "parameter \"%s\": cannot allocate gradient buffers",
                    p->name);
}

dsc_status dsc_optimizer_ensure_buffers(dsc_optimizer *opt)
{
    for (int i = 0; i < opt->nparams; i++) {
        dsc_status st = param_buffers(opt, opt->params[i]);
        if (st != DSC_OK) return st;
    }
    return DSC_OK;
}

/* Plan and allocate a parameter's state in group g; joins the group. */
static dsc_status attach_param(dsc_optimizer *opt, dsc_param *p, dsc_group *g)
{
    dsc_plan plan;
    memset(&plan, 0, sizeof plan);
    char err[DSC_ERR_MAX] = "";
    dsc_status st = g->family->plan_param(g, p, &plan, err, sizeof err);
    if (st != DSC_OK)
        return dsc_fail(opt, st, "parameter \"%s\" in group \"%s\": %s", p->name, g->name, err);
    int wrap_slot = plan.nslots;
    dsc_wrap_plan(g, p, &plan); /* the wrappers' slots after the family's */
    if (p->bf16 == 1 + DSC_BF16_MASTER) /* bf16.c: the float32 master copy, last */
        dsc_plan_slot_shaped(&plan, "master", DSC_DT_F32, p->ndim, p->shape);
    if (plan.nslots >= DSC_MAX_SLOTS)
        return dsc_fail(opt, DSC_UNSUPPORTED, "parameter \"%s\" in group \"%s\": more than %d "
                        "state slots", p->name, g->name, DSC_MAX_SLOTS - 1);
    dsc_slot slots[DSC_MAX_SLOTS];
    if (!alloc_slots(&plan, slots)) goto oom;
    void *scratch = NULL;
    if (plan.scratch_bytes && !(scratch = dsc_calloc(1, plan.scratch_bytes))) {
        free_slots(slots, plan.nslots);
        goto oom;
    }
    if (!grow((void **)&g->params, &g->cap_params, g->nparams + 1, sizeof(int))) {
        free_slots(slots, plan.nslots);
        dsc_free(scratch);
        goto oom;
    }
    memcpy(p->slots, slots, sizeof slots);
    p->nslots = plan.nslots;
    p->wrap_slot = wrap_slot;
    p->scratch = scratch;
    p->scratch_bytes = plan.scratch_bytes;
    p->group = group_index(opt, g);
    if (p->bf16 == 1 + DSC_BF16_MASTER) { /* the master starts as the caller's values */
        p->data = p->slots[p->nslots - 1].data;
        for (size_t i = 0; i < p->numel; i++) {
            uint32_t b = (uint32_t)p->bf16_data[i] << 16;
            memcpy(&p->data[i], &b, sizeof b);
        }
    }
    return DSC_OK;
oom:
    return dsc_fail(opt, DSC_NO_MEMORY, "parameter \"%s\": cannot allocate optimizer state",
                    p->name);
}

static void join_group(dsc_group *g, int param_index)
{
    g->params[g->nparams++] = param_index;
}

/* Both entry points: float32 (bdata NULL) or bf16 (data, grad NULL here). */
static dsc_status add_param(dsc_optimizer *opt, const char *name, float *data,
                            const float *grad, uint16_t *bdata, const uint16_t *bgrad,
                            int bf16, int ndim, const int64_t *shape, dsc_role role,
                            const char *group);

dsc_status dsc_optimizer_add_param(dsc_optimizer *opt, const char *name, float *data,
                                   const float *grad, int ndim, const int64_t *shape,
                                   dsc_role role, const char *group)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    CHECK_NULL(opt, data, "data");
    CHECK_NULL(opt, grad, "grad");
    return add_param(opt, name, data, grad, NULL, NULL, 0, ndim, shape, role, group);
}

dsc_status dsc_optimizer_add_param_bf16(dsc_optimizer *opt, const char *name, uint16_t *data,
                                        const uint16_t *grad, int ndim, const int64_t *shape,
                                        dsc_role role, const char *group, dsc_bf16_mode mode)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    CHECK_NULL(opt, data, "data");
    CHECK_NULL(opt, grad, "grad");
    if ((int)mode < DSC_BF16_MASTER || mode > DSC_BF16_STOCHASTIC)
        return dsc_fail(opt, DSC_OUT_OF_RANGE, "add_param_bf16: mode %d is not a dsc_bf16_mode",
                        (int)mode);
    return add_param(opt, name, NULL, NULL, data, grad, 1 + (int)mode, ndim, shape, role, group);
}

static dsc_status add_param(dsc_optimizer *opt, const char *name, float *data,
                            const float *grad, uint16_t *bdata, const uint16_t *bgrad,
                            int bf16, int ndim, const int64_t *shape, dsc_role role,
                            const char *group)
{
    if (opt->shard) /* shard.c: the ranks' pieces are cut */
        return dsc_fail(opt, DSC_STATE, "add_param: not after dsc_optimizer_set_comm");
    CHECK_NULL(opt, name, "parameter name");
    CHECK_NULL(opt, shape, "shape");
    if (!valid_name(name))
        return dsc_fail(opt, DSC_INVALID_ARGUMENT, "add_param: invalid name \"%s\"", name);
    if (dsc_optimizer_find_param(opt, name))
        return dsc_fail(opt, DSC_DUPLICATE_NAME, "add_param: parameter \"%s\" already exists",
                        name);
    if (ndim < 1 || ndim > DSC_MAX_NDIM)
        return dsc_fail(opt, DSC_SHAPE, "add_param \"%s\": ndim = %d, expected 1..%d", name,
                        ndim, DSC_MAX_NDIM);
    if ((int)role < DSC_ROLE_AUTO || role > DSC_ROLE_CONV)
        return dsc_fail(opt, DSC_OUT_OF_RANGE, "add_param \"%s\": role %d is not a dsc_role",
                        name, (int)role);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || (size_t)shape[i] > SIZE_MAX / 8 / numel)
            return dsc_fail(opt, DSC_SHAPE, "add_param \"%s\": dimension %d is %lld", name, i,
                            (long long)shape[i]);
        numel *= (size_t)shape[i];
    }
    /* Adding parameters after steps were taken is allowed: they start fresh. */
    dsc_param *p = dsc_calloc(1, sizeof *p);
    if (!p) return dsc_fail(opt, DSC_NO_MEMORY, "add_param: out of memory");
    strcpy(p->name, name);
    p->data = data;
    p->grad_user = grad;
    p->grad = grad;
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
    p->numel = numel;
    p->rows = (size_t)(ndim == 1 ? 1 : shape[0]);
    p->cols = numel / p->rows;
    p->role = role == DSC_ROLE_AUTO ? infer_role(name, ndim) : role;
    p->layer = -1;
    if (bf16) { /* bf16.c: a float32 gradient (and, stochastic, parameter) of our own */
        p->bf16 = bf16;
        p->bf16_data = bdata;
        p->bf16_grad = bgrad;
        p->bf16_work = dsc_calloc(bf16 == 1 + DSC_BF16_STOCHASTIC ? 2 * numel : numel,
                                  sizeof(float));
        if (!p->bf16_work) {
            free_param(p);
            return dsc_fail(opt, DSC_NO_MEMORY, "add_param_bf16: out of memory");
        }
        p->grad_user = p->grad = p->bf16_work;
        p->data = bf16 == 1 + DSC_BF16_STOCHASTIC ? p->bf16_work + numel : NULL;
        if (!p->data) p->data = p->bf16_work; /* until attach_param sets the master */
    }

    dsc_group *g = NULL;
    if (group) {
        g = dsc_optimizer_find_group(opt, group);
        if (!g) {
            free_param(p);
            return dsc_fail(opt, DSC_UNKNOWN_NAME, "add_param \"%s\": no group named \"%s\"",
                            name, group);
        }
    } else {
        for (int i = 0; i < opt->nrules && !g; i++) {
            const dsc_rule *r = &opt->rules[i];
            if (r->pattern && !glob_match(r->pattern, name)) continue;
            if (r->role != DSC_ROLE_AUTO && r->role != p->role) continue;
            g = dsc_optimizer_find_group(opt, r->group);
            p->no_decay = r->no_decay;
        }
        if (!g && opt->ngroups == 1) g = opt->groups[0];
        if (!g) {
            free_param(p);
            return dsc_fail(opt, DSC_UNKNOWN_NAME,
                            "add_param \"%s\" (role %s): no group given and no rule matches",
                            name, dsc_role_name(role == DSC_ROLE_AUTO ? infer_role(name, ndim)
                                                                      : role));
        }
    }
    if (!grow((void **)&opt->params, &opt->cap_params, opt->nparams + 1, sizeof(dsc_param *))) {
        free_param(p);
        return dsc_fail(opt, DSC_NO_MEMORY, "add_param: out of memory");
    }
    dsc_status st = attach_param(opt, p, g);
    if (st == DSC_OK) st = param_buffers(opt, p);
    if (st != DSC_OK) {
        free_param(p);
        return st;
    }
    p->rng_index = opt->nparams;
    opt->params[opt->nparams] = p;
    join_group(g, opt->nparams);
    opt->nparams++;
    if (g->family->init_param) g->family->init_param(g, p);
    st = replan_group_scratch(g);
    if (st != DSC_OK) { /* a failed call changes nothing: take the parameter back */
        g->nparams--;
        opt->nparams--;
        free_param(p);
    }
    return st;
}

dsc_status dsc_optimizer_rebind(dsc_optimizer *opt, const char *name, float *data,
                                const float *grad)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    CHECK_NULL(opt, name, "parameter name");
    CHECK_NULL(opt, data, "data");
    CHECK_NULL(opt, grad, "grad");
    dsc_param *p = dsc_optimizer_find_param(opt, name);
    if (!p) return dsc_fail(opt, DSC_UNKNOWN_NAME, "rebind: no parameter named \"%s\"", name);
    if (p->bf16)
        return dsc_fail(opt, DSC_STATE, "rebind \"%s\": a bf16 parameter takes no float32 "
                        "buffers", name);
    p->data = data;
    p->grad_user = grad;
    p->grad = grad;
    return DSC_OK;
}

dsc_status dsc_optimizer_move_param(dsc_optimizer *opt, const char *name, const char *group)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (opt->shard) /* shard.c: the ranks' pieces are cut */
        return dsc_fail(opt, DSC_STATE, "%s: not after dsc_optimizer_set_comm", __func__);
    CHECK_NULL(opt, name, "parameter name");
    CHECK_NULL(opt, group, "group name");
    if (opt->step > 0 || opt->micro > 0)
        return dsc_fail(opt, DSC_STATE, "move_param \"%s\": only before the first step", name);
    dsc_param *p = dsc_optimizer_find_param(opt, name);
    if (!p) return dsc_fail(opt, DSC_UNKNOWN_NAME, "move_param: no parameter named \"%s\"", name);
    dsc_group *to = dsc_optimizer_find_group(opt, group);
    if (!to) return dsc_fail(opt, DSC_UNKNOWN_NAME, "move_param: no group named \"%s\"", group);
    dsc_group *from = opt->groups[p->group];
    if (from == to) return DSC_OK;
    /* The copy for the update norm, when the new group does not measure its
     * own; then the plan in the new group, so a rejection changes nothing. */
    float *prev = NULL;
    if (opt->want_stats && !p->prev && !dsc_group_tracks_update(opt, to)) {
        prev = dsc_calloc(p->numel, sizeof(float));
        if (!prev)
            return dsc_fail(opt, DSC_NO_MEMORY, "move_param \"%s\": out of memory", name);
    }
    dsc_param trial = *p;
    dsc_status st = attach_param(opt, &trial, to);
    if (st != DSC_OK) {
        dsc_free(prev);
        return st;
    }
    if (prev) trial.prev = prev;
    free_slots(p->slots, p->nslots);
    dsc_free(p->scratch);
    int index = -1;
    for (int i = 0; i < opt->nparams; i++)
        if (opt->params[i] == p) index = i;
    for (int i = 0, j = 0; i < from->nparams; i++)
        if (from->params[i] != index) from->params[j++] = from->params[i];
    from->nparams--;
    *p = trial;
    /* Keep the group's parameter list in insertion order. */
    int pos = to->nparams;
    while (pos > 0 && to->params[pos - 1] > index) pos--;
    memmove(&to->params[pos + 1], &to->params[pos], (size_t)(to->nparams - pos) * sizeof(int));
    to->params[pos] = index;
    to->nparams++;
    if (to->family->init_param) to->family->init_param(to, p);
    return replan_group_scratch(to);
}

dsc_status dsc_optimizer_set_hyper(dsc_optimizer *opt, const char *group, const char *key,
                                   double value)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    CHECK_NULL(opt, group, "group name");
    CHECK_NULL(opt, key, "key");
    dsc_group *g = dsc_optimizer_find_group(opt, group);
    if (!g) return dsc_fail(opt, DSC_UNKNOWN_NAME, "set_hyper: no group named \"%s\"", group);
    char err[DSC_ERR_MAX];
    int k = dsc_family_key(g->family, key);
    int gk = k < 0 ? dsc_group_key_find(g->family, key) : -1;
    if (gk >= 0) { /* a key every family accepts (wrap.c), checked there */
        struct dsc_group_opts old = g->wrap, trial = g->wrap;
        dsc_status st = dsc_group_key_set(g->family, &trial, gk, value, err, sizeof err);
        if (st != DSC_OK) return dsc_fail(opt, st, "group \"%s\": %s", group, err);
        if (dsc_group_key_sizes_state(gk) && g->nparams > 0 &&
            (trial.bf16_state != 0) != (old.bf16_state != 0))
            return dsc_fail(opt, DSC_STATE,
                            "set_hyper: group \"%s\": bf16_state decides how the state of "
                            "its %d parameter(s) is stored; set it in the spec (switching "
                            "between rounding to nearest and stochastic rounding is allowed)",
                            group, g->nparams);
        g->wrap = trial;
        st = dsc_optimizer_ensure_buffers(opt); /* maximize, coordinate_clip need p->work */
        if (st != DSC_OK) g->wrap = old;        /* changes nothing */
        return st;
    }
    if (k < 0)
        return dsc_fail(opt, DSC_UNKNOWN_KEY, "set_hyper: %s has no key \"%s\" (nor is it a "
                        "key every optimizer accepts: descent list any)",
                        g->family->info.name, key);
    dsc_status st = dsc_key_check(g->family, k, value, err, sizeof err);
    if (st == DSC_OK && g->family->check) {
        double trial[DSC_MAX_KEYS];
        memcpy(trial, g->base, sizeof trial);
        trial[k] = value;
        st = g->family->check(trial, err, sizeof err);
    }
    if (st != DSC_OK) return dsc_fail(opt, st, "group \"%s\": %s", group, err);
    g->base[k] = value;
    return DSC_OK;
}

dsc_status dsc_optimizer_get_hyper(const dsc_optimizer *opt, const char *group,
                                   const char *key, double *value)
{
    if (!opt || !group || !key || !value) return DSC_NULL_POINTER;
    dsc_group *g = dsc_optimizer_find_group(opt, group);
    if (!g) return DSC_UNKNOWN_NAME;
    int k = dsc_family_key(g->family, key);
    if (k < 0) {
        int gk = dsc_group_key_find(g->family, key);
        if (gk < 0) return DSC_UNKNOWN_KEY;
        *value = dsc_group_key_get(&g->wrap, gk);
        return DSC_OK;
    }
    *value = g->base[k];
    return DSC_OK;
}

dsc_status dsc_optimizer_set_param_hyper(dsc_optimizer *opt, const char *param,
                                         const char *key, double value)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    CHECK_NULL(opt, param, "parameter name");
    CHECK_NULL(opt, key, "key");
    dsc_param *p = dsc_optimizer_find_param(opt, param);
    if (!p)
        return dsc_fail(opt, DSC_UNKNOWN_NAME, "set_param_hyper: no parameter named \"%s\"",
                        param);
    const dsc_family *f = opt->groups[p->group]->family;
    int k = dsc_family_key(f, key);
    if (k < 0)
        return dsc_fail(opt, DSC_UNKNOWN_KEY, "set_param_hyper \"%s\": %s has no key \"%s\"",
                        param, f->info.name, key);
    char err[DSC_ERR_MAX];
    dsc_status st = dsc_key_check(f, k, value, err, sizeof err);
    if (st != DSC_OK) return dsc_fail(opt, st, "parameter \"%s\": %s", param, err);
    p->override_value[k] = value;
    p->override_mask |= 1ull << k;
    return DSC_OK;
}

void dsc_optimizer_resolve_hypers(dsc_optimizer *opt)
{
    for (int gi = 0; gi < opt->ngroups; gi++) {
        dsc_group *g = opt->groups[gi];
        int nk = g->family->info.nkeys;
        int wd = dsc_family_key(g->family, "weight_decay");
        for (int k = 0; k < nk; k++) {
            g->cur[k] = g->base[k];
            if (g->sched_mask & (1ull << k))
                g->cur[k] = g->base[k] * dsc_schedule_factor(&g->sched[k], opt->step);
        }
        for (int i = 0; i < g->nparams; i++) {
            dsc_param *p = dsc_group_param(g, i);
            for (int k = 0; k < nk; k++) {
                p->hp[k] = g->cur[k];
                if (p->override_mask & (1ull << k)) {
                    p->hp[k] = p->override_value[k];
                    if (g->sched_mask & (1ull << k))
                        p->hp[k] *= dsc_schedule_factor(&g->sched[k], opt->step);
                }
            }
            if (p->no_decay && wd >= 0 && !(p->override_mask & (1ull << wd))) p->hp[wd] = 0.0;
            if (g->wrap.layer_decay != 1.0) /* layer_decay (wrap.c); the key exists */
                p->hp[dsc_family_key(g->family, "lr")] *= dsc_wrap_layer_scale(g, p);
        }
    }
}

int dsc_optimizer_param_count(const dsc_optimizer *opt) { return opt ? opt->nparams : 0; }
int dsc_optimizer_group_count(const dsc_optimizer *opt) { return opt ? opt->ngroups : 0; }

const char *dsc_optimizer_group_name(const dsc_optimizer *opt, int i)
{
    return (opt && i >= 0 && i < opt->ngroups) ? opt->groups[i]->name : NULL;
}

const char *dsc_optimizer_group_kind(const dsc_optimizer *opt, int i)
{
    return (opt && i >= 0 && i < opt->ngroups) ? opt->groups[i]->family->info.name : NULL;
}

static size_t param_state_bytes(const dsc_param *p)
{
    size_t b = 0;
    for (int i = 0; i < p->nslots; i++) b += p->slots[i].count * dsc_dtype_size(p->slots[i].dtype);
    return b;
}

dsc_status dsc_optimizer_param_info(const dsc_optimizer *opt, int i, dsc_param_info *info)
{
    if (!opt || !info) return DSC_NULL_POINTER;
    if (i < 0 || i >= opt->nparams) return DSC_OUT_OF_RANGE;
    const dsc_param *p = opt->params[i];
    const dsc_group *g = opt->groups[p->group];
    memset(info, 0, sizeof *info);
    info->name = p->name;
    info->group = g->name;
    info->optimizer = g->family->info.name;
    info->role = p->role;
    info->ndim = p->ndim;
    for (int d = 0; d < p->ndim; d++) info->shape[d] = p->shape[d];
    info->numel = p->numel;
    info->no_decay = p->no_decay;
    info->state_bytes = opt->shard ? dsc_shard_param_state_bytes(opt, i) : param_state_bytes(p);
    info->bf16 = p->bf16;
    info->work_bytes = (p->work ? p->numel * sizeof(float) : 0) +
                       (p->accum ? p->numel * sizeof(float) : 0) +
                       (p->prev ? p->numel * sizeof(float) : 0) +
                       (p->bf16_work ? (p->bf16 == 1 + DSC_BF16_STOCHASTIC ? 2 : 1) * p->numel *
                                       sizeof(float) : 0) + p->scratch_bytes;
    return DSC_OK;
}

size_t dsc_optimizer_state_bytes(const dsc_optimizer *opt)
{
    size_t b = 0;
    if (!opt) return 0;
    if (opt->shard) return dsc_shard_state_bytes(opt); /* this rank's */
    for (int i = 0; i < opt->nparams; i++) b += param_state_bytes(opt->params[i]);
    for (int i = 0; i < opt->ngroups; i++)
        for (int s = 0; s < opt->groups[i]->nslots; s++)
            b += opt->groups[i]->slots[s].count * dsc_dtype_size(opt->groups[i]->slots[s].dtype);
    return b;
}

dsc_status dsc_state_bytes(const char *spec, int ndim, const int64_t *shape, size_t *bytes)
{
    if (!spec || !shape || !bytes) return DSC_NULL_POINTER;
    dsc_optimizer *opt = dsc_optimizer_new();
    if (!opt) return DSC_NO_MEMORY;
    size_t numel = 1;
    for (int i = 0; i < ndim && i < DSC_MAX_NDIM; i++) {
        size_t d = (size_t)(shape[i] > 0 ? shape[i] : 1);
        if (numel > SIZE_MAX / d) { /* the product would wrap */
            dsc_optimizer_free(opt);
            return DSC_SHAPE;
        }
        numel *= d;
    }
    /* The plan is all we need, but a real parameter keeps one code path. */
    float *buf = dsc_calloc(numel, sizeof(float));
    dsc_status st = buf ? dsc_optimizer_add_group(opt, "g", spec) : DSC_NO_MEMORY;
    if (st == DSC_OK) st = dsc_optimizer_add_param(opt, "p", buf, buf, ndim, shape,
                                                  DSC_ROLE_AUTO, "g");
    if (st == DSC_OK) *bytes = dsc_optimizer_state_bytes(opt);
    dsc_free(buf);
    dsc_optimizer_free(opt);
    return st;
}

int64_t dsc_optimizer_step_count(const dsc_optimizer *opt) { return opt ? opt->step : 0; }

void dsc_optimizer_use_reference(dsc_optimizer *opt, int on)
{
    if (!opt) return;
    opt->reference = on != 0;
    /* The reference loops compare against a copy (dsc_group_tracks_update):
     * allocated here when stats are on; if that fails, the next step says
     * so and changes nothing. */
    dsc_optimizer_ensure_buffers(opt);
}
