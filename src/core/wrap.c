/* wrap.c - what a group spec may add around any optimizer:
 *
 *   wrappers   ema(decay=..,warmup=..):  and  lookahead(k=..,alpha=..):
 *              prefixes, each keeping one more copy of the weights as state;
 *   group keys maximize, layer_decay, coordinate_clip,
 *              coordinate_clip_scale and bf16_state (the families that
 *              can store their states in bf16), accepted by every family (a family
 *              with a key of that name keeps its own: sgd, adam, adamw,
 *              adagrad have maximize; sgd_clip, adam_clip coordinate_clip),
 *              in one table that the spec parser, set_hyper / get_hyper,
 *              checkpoints and `descent list any` all read;
 *   hooks      the pre/post-step callbacks of the handle;
 *   averages   reading and swapping the EMA / slow weights for evaluation.
 *
 * Why here and not in each family: these act on the gradient before the
 * update (maximize) or on the parameters after it (EMA, Lookahead), the same
 * way whatever the update is, as torch.optim.swa_utils, optax.ema and the
 * Lookahead paper's Algorithm 1 wrap any inner optimizer.
 *
 * Lookahead (Zhang, Lucas, Hinton, Ba, "Lookahead Optimizer: k steps forward,
 * 1 step back", NeurIPS 2019, Algorithm 1): slow weights phi start as the
 * parameters before the first update; the inner optimizer updates the fast
 * weights theta; after every k-th update phi <- phi + alpha (theta - phi) and
 * theta <- phi. The inner optimizer's state is kept across syncs (the paper's
 * default; pytorch_optimizer's pullback_momentum="none").
 *
 * EMA: after the first update the shadow weights are a copy (as torch's
 * AveragedModel does on its first update_parameters), after the n-th (n >= 1
 * updates averaged before) e <- d e + (1 - d) theta, in float32 in that order
 * (torch's get_ema_multi_avg_fn). d = decay, or with warmup=1 timm's
 * ModelEmaV3 rule d = min(decay, 1 - (1 + n / warmup_gamma)^(-warmup_power)),
 * which is 0 at n = 0 too. */
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ key tables */

enum { EMA_DECAY, EMA_WARMUP, EMA_GAMMA, EMA_POWER, EMA_NKEYS };
static const dsc_key_info ema_keys[EMA_NKEYS] = {
    [EMA_DECAY] = {"decay", DSC_KEY_FLOAT, 0.999, 0, 1, 0, 1, "EMA decay d: e <- d e + (1 - d) p"},
    [EMA_WARMUP] = {"warmup", DSC_KEY_BOOL, 0, 0, 1, 0, 0,
                    "timm warmup: d_n = min(decay, 1 - (1 + n/warmup_gamma)^-warmup_power)"},
    [EMA_GAMMA] = {"warmup_gamma", DSC_KEY_FLOAT, 1, 0, 1e12, 1, 0, "warmup time scale (timm: 1)"},
    [EMA_POWER] = {"warmup_power", DSC_KEY_FLOAT, 2.0 / 3.0, 0, 100, 1, 0,
                   "warmup power (timm: 2/3; 3/4 for short runs)"},
};

enum { LA_K, LA_ALPHA, LA_NKEYS };
static const dsc_key_info la_keys[LA_NKEYS] = {
    [LA_K] = {"k", DSC_KEY_INT, 5, 1, 1e6, 0, 0, "inner updates between syncs"},
    [LA_ALPHA] = {"alpha", DSC_KEY_FLOAT, 0.5, 0, 1, 1, 0,
                  "slow step: phi <- phi + alpha (theta - phi)"},
};

enum { G_MAXIMIZE, G_LAYER_DECAY, G_COORD_CLIP, G_COORD_CLIP_SCALE, G_BF16_STATE, G_NKEYS };
static const dsc_key_info group_keys[G_NKEYS] = {
    [G_MAXIMIZE] = {"maximize", DSC_KEY_BOOL, 0, 0, 1, 0, 0,
                    "ascend: the optimizer sees -gradient (any optimizer)"},
    [G_LAYER_DECAY] = {"layer_decay", DSC_KEY_FLOAT, 1, 0, 1, 1, 0,
                       "lr * layer_decay^(L - depth); depth from the name or set_param_layer"},
    [G_COORD_CLIP] = {"coordinate_clip", DSC_KEY_FLOAT, 0, 0, 1, 0, 0,
                      "clip the group's gradients at the floor(N*c)-th largest |g| (0: off)"},
    [G_COORD_CLIP_SCALE] = {"coordinate_clip_scale", DSC_KEY_FLOAT, 1, 0, 1e30, 0, 0,
                            "multiplier on the coordinate-clipping threshold"},
    [G_BF16_STATE] = {"bf16_state", DSC_KEY_INT, 0, 0, 2, 0, 0,
                      "state storage: 0 float32; bf16 rounded 1 to nearest, 2 stochastically "
                      "(sgd adam adamw adagrad lion signum)"},
};

static const dsc_optimizer_info wrappers[3] = {
    {"ema", "exponential moving average of the weights (wrapper: ema(...):OPT)",
     "Polyak & Juditsky 1992; timm ModelEmaV3 (warmup)",
     "pytorch/pytorch torch/optim/swa_utils.py (v1.13.1); huggingface/pytorch-image-models "
     "timm/utils/model_ema.py",
     EMA_NKEYS, ema_keys, 0},
    {"lookahead", "k fast steps of any optimizer, then one slow step (wrapper: lookahead(...):OPT)",
     "Zhang, Lucas, Hinton, Ba, NeurIPS 2019, arXiv 1907.08610", "michaelrzhang/lookahead",
     LA_NKEYS, la_keys, 0},
    {"any", "keys every optimizer accepts (OPT:maximize=1,layer_decay=0.75,coordinate_clip=0.1)",
     "layer decay: Clark et al. (ELECTRA) 2020; Bao et al. (BEiT) 2021; coordinate clipping: "
     "Pan & Li, arXiv 2306.00204 (2023)",
     "huggingface/pytorch-image-models timm/optim/_param_groups.py (layer decay); "
     "panyan7/adam-vs-sgd (coordinate clipping)",
     G_NKEYS, group_keys, 0},
};

int dsc_wrapper_count(void) { return 3; }

const dsc_optimizer_info *dsc_wrapper_info(int i)
{
    return (i >= 0 && i < 3) ? &wrappers[i] : NULL;
}

/* ---------------------------------------------------------------- parsing */

#define NO_CHARACTER ((size_t)-1) /* a value not from a spec text (set_hyper, load) */

/* A value against a key of a wrapper table (type and range). */
static dsc_status check_value(const dsc_optimizer_info *w, int k, double x, size_t at,
                              char *err, size_t errlen)
{
    const dsc_key_info *key = &w->keys[k];
    int bad = !isfinite(x);
    if (!bad && key->type == DSC_KEY_BOOL && x != 0 && x != 1) bad = 1;
    if (!bad && key->type == DSC_KEY_INT && x != floor(x)) bad = 1;
    if (!bad) {
        int below = key->min_open ? !(x > key->min_value) : !(x >= key->min_value);
        int above = key->max_open ? !(x < key->max_value) : !(x <= key->max_value);
        bad = below || above;
    }
    if (bad) {
        char where[48] = "";
        if (at != NO_CHARACTER) snprintf(where, sizeof where, " (at character %zu)", at + 1);
        snprintf(err, errlen, "%s: %s = %g is out of range %c%g, %g%c (%s)%s", w->name,
                 key->name, x, key->min_open ? '(' : '[', key->min_value, key->max_value,
                 key->max_open ? ')' : ']',
                 key->type == DSC_KEY_BOOL ? "0 or 1" : key->type == DSC_KEY_INT ? "integer"
                                                                                 : "number",
                 where);
        return DSC_OUT_OF_RANGE;
    }
    return DSC_OK;
}

static int key_index(const dsc_optimizer_info *w, const char *k)
{
    for (int i = 0; i < w->nkeys; i++)
        if (!strcmp(w->keys[i].name, k)) return i;
    return -1;
}

static void key_list(const dsc_optimizer_info *w, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < w->nkeys && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", w->keys[i].name);
}

/* The arguments "k=v,k=v" of a wrapper, through the one strict tokenizer
 * (as "NAME:args"), into vals (defaults set by the caller). */
static dsc_status parse_args(const dsc_optimizer_info *w, const char *args, size_t len,
                             double *vals, char *err, size_t errlen)
{
    char text[512];
    if (len + strlen(w->name) + 2 > sizeof text) {
        snprintf(err, errlen, "%s: arguments longer than %zu characters", w->name,
                 sizeof text - strlen(w->name) - 2);
        return DSC_PARSE;
    }
    snprintf(text, sizeof text, "%s:%.*s", w->name, (int)len, args);
    int blank = 1;
    for (size_t i = 0; i < len; i++) blank &= isspace((unsigned char)args[i]) != 0;
    if (blank) return DSC_OK; /* "ema()" */
    dsc_spec_tokens t;
    dsc_status st = dsc_spec_tokenize(w->name, text, &t, err, errlen);
    if (st != DSC_OK) return st;
    for (int j = 0; j < t.nitems; j++) {
        int k = key_index(w, t.item[j].key);
        if (k < 0) {
            char keys[256];
            key_list(w, keys, sizeof keys);
            snprintf(err, errlen, "%s: unknown key \"%s\" (keys: %s)", w->name, t.item[j].key,
                     keys);
            return DSC_UNKNOWN_KEY;
        }
        st = check_value(w, k, t.item[j].value, t.item[j].value_at, err, errlen);
        if (st != DSC_OK) return st;
        vals[k] = t.item[j].value;
    }
    return DSC_OK;
}

static void opts_default(struct dsc_group_opts *o)
{
    memset(o, 0, sizeof *o);
    o->layer_decay = 1.0;
    o->coord_clip_scale = 1.0;
}

dsc_status dsc_wrap_take_prefix(const char *spec, const char **inner, struct dsc_group_opts *o,
                                char *err, size_t errlen)
{
    opts_default(o);
    *inner = spec;
    if (!spec) return DSC_OK; /* the spec parser reports it */
    const char *s = spec;
    /* NAME(args): or NAME: where NAME is ema or lookahead (no family has
     * these names, so "ema:adam" is never an optimizer called ema). */
    for (;;) {
        while (isspace((unsigned char)*s)) s++;
        size_t n = 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '_') n++;
        int w = (n == 3 && !strncmp(s, "ema", 3))         ? 0
                : (n == 9 && !strncmp(s, "lookahead", 9)) ? 1
                                                          : -1;
        if (w < 0) break;
        const char *p = s + n, *args = NULL, *args_end = NULL;
        while (isspace((unsigned char)*p)) p++;
        if (*p == '(') {
            args = p + 1;
            args_end = strchr(args, ')');
            if (!args_end) {
                snprintf(err, errlen, "%s: missing ')' in \"%s\"", wrappers[w].name, spec);
                return DSC_PARSE;
            }
            p = args_end + 1;
            while (isspace((unsigned char)*p)) p++;
        }
        if (*p != ':') {
            snprintf(err, errlen, "%s: expected \"%s(...):OPTIMIZER...\", got \"%s\"",
                     wrappers[w].name, wrappers[w].name, spec);
            return DSC_PARSE;
        }
        if ((w == 0 && o->ema) || (w == 1 && o->lookahead)) {
            snprintf(err, errlen, "%s: given twice in \"%s\"", wrappers[w].name, spec);
            return DSC_PARSE;
        }
        double vals[4]; /* the most keys of a wrapper (ema) */
        for (int i = 0; i < wrappers[w].nkeys; i++) vals[i] = wrappers[w].keys[i].default_value;
        if (args) {
            dsc_status st =
                parse_args(&wrappers[w], args, (size_t)(args_end - args), vals, err, errlen);
            if (st != DSC_OK) return st;
        }
        if (w == 0) {
            o->ema = 1;
            o->ema_decay = vals[EMA_DECAY];
            o->ema_warmup = vals[EMA_WARMUP] != 0;
            o->ema_gamma = vals[EMA_GAMMA];
            o->ema_power = vals[EMA_POWER];
        } else {
            o->lookahead = 1;
            o->la_k = (int)vals[LA_K];
            o->la_alpha = vals[LA_ALPHA];
        }
        s = p + 1;
    }
    *inner = s;
    return DSC_OK;
}

/* The settings of wrapper w (0 ema, 1 lookahead) of a group, in the order
 * of its key table: their count, or 0 when the group lacks the wrapper. */
int dsc_wrap_settings(const struct dsc_group_opts *o, int w, double *vals)
{
    if (w == 0 && o->ema) {
        vals[EMA_DECAY] = o->ema_decay;
        vals[EMA_WARMUP] = o->ema_warmup;
        vals[EMA_GAMMA] = o->ema_gamma;
        vals[EMA_POWER] = o->ema_power;
        return EMA_NKEYS;
    }
    if (w == 1 && o->lookahead) {
        vals[LA_K] = o->la_k;
        vals[LA_ALPHA] = o->la_alpha;
        return LA_NKEYS;
    }
    return 0;
}

dsc_status dsc_wrap_set_settings(struct dsc_group_opts *o, int w, const double *vals, char *err,
                                 size_t errlen)
{
    if (w < 0 || w > 1 || (w == 0 && !o->ema) || (w == 1 && !o->lookahead)) {
        snprintf(err, errlen, "the group has no %s wrapper", w == 1 ? "lookahead" : "ema");
        return DSC_MISMATCH;
    }
    for (int k = 0; k < wrappers[w].nkeys; k++) {
        dsc_status st = check_value(&wrappers[w], k, vals[k], NO_CHARACTER, err, errlen);
        if (st != DSC_OK) return st;
    }
    if (w == 0) {
        o->ema_decay = vals[EMA_DECAY];
        o->ema_warmup = vals[EMA_WARMUP] != 0;
        o->ema_gamma = vals[EMA_GAMMA];
        o->ema_power = vals[EMA_POWER];
    } else {
        o->la_k = (int)vals[LA_K];
        o->la_alpha = vals[LA_ALPHA];
    }
    return DSC_OK;
}

/* ------------------------------------------------------------- group keys */

int dsc_group_key_count(void) { return G_NKEYS; }

int dsc_group_key_sizes_state(int k) { return k == G_BF16_STATE; }

const char *dsc_group_key_name(int k) { return k >= 0 && k < G_NKEYS ? group_keys[k].name : NULL; }

int dsc_group_key_find(const dsc_family *f, const char *key)
{
    int k = key_index(&wrappers[2], key);
    /* A family's own key (sgd's maximize, sgd_clip's coordinate_clip) is the
     * family's; coordinate_clip_scale goes with the group key
     * coordinate_clip (sgd_clip and adam_clip scale theirs with
     * threshold_scale). */
    if (k < 0 || dsc_family_key(f, key) >= 0) return -1;
    if (k == G_COORD_CLIP_SCALE && dsc_family_key(f, group_keys[G_COORD_CLIP].name) >= 0)
        return -1;
    return k;
}

double dsc_group_key_get(const struct dsc_group_opts *o, int k)
{
    switch (k) {
    case G_MAXIMIZE: return o->maximize;
    case G_LAYER_DECAY: return o->layer_decay;
    case G_COORD_CLIP: return o->coord_clip;
    case G_COORD_CLIP_SCALE: return o->coord_clip_scale;
    case G_BF16_STATE: return o->bf16_state;
    }
    return NAN;
}

static dsc_status group_key_set_at(const dsc_family *f, struct dsc_group_opts *o, int k,
                                   double x, size_t at, char *err, size_t errlen)
{
    dsc_status st = check_value(&wrappers[2], k, x, at, err, errlen);
    if (st != DSC_OK) return st;
    if (k == G_LAYER_DECAY && x != 1.0 && dsc_family_key(f, "lr") < 0) {
        snprintf(err, errlen, "%s: layer_decay scales lr, and %s has no lr key", f->info.name,
                 f->info.name);
        return DSC_INVALID_ARGUMENT;
    }
    if (k == G_BF16_STATE && x != 0 && !f->bf16_states) {
        snprintf(err, errlen,
                 "%s: bf16_state: %s keeps its state in float32 (bf16 states: sgd, adam, "
                 "adamw, adagrad, lion, signum)",
                 f->info.name, f->info.name);
        return DSC_INVALID_ARGUMENT;
    }
    switch (k) {
    case G_MAXIMIZE: o->maximize = x != 0; break;
    case G_LAYER_DECAY: o->layer_decay = x; break;
    case G_COORD_CLIP: o->coord_clip = x; break;
    case G_COORD_CLIP_SCALE: o->coord_clip_scale = x; break;
    case G_BF16_STATE: o->bf16_state = (int)x; break;
    }
    return DSC_OK;
}

dsc_status dsc_group_key_set(const dsc_family *f, struct dsc_group_opts *o, int k, double x,
                             char *err, size_t errlen)
{
    return group_key_set_at(f, o, k, x, NO_CHARACTER, err, errlen);
}

dsc_status dsc_wrap_take_keys(dsc_spec_tokens *t, struct dsc_group_opts *o, char *err,
                              size_t errlen)
{
    const dsc_family *f = dsc_family_find(t->name);
    if (!f) return DSC_OK; /* the spec parser reports it */
    for (int j = 0; j < t->nitems; j++) {
        dsc_spec_item *it = &t->item[j];
        if (!it->key[0]) continue;
        int k = dsc_group_key_find(f, it->key);
        if (k < 0) continue; /* the family's parser takes it, or refuses it */
        dsc_status st = group_key_set_at(f, o, k, it->value, it->value_at, err, errlen);
        if (st != DSC_OK) return st;
        it->key[0] = '\0'; /* taken */
    }
    return DSC_OK;
}

/* ------------------------------------------------------------------ slots */

/* Slots after the family's: lookahead_slow, lookahead_step, ema, ema_count
 * (those of the wrappers present, in this order). */
void dsc_wrap_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan)
{
    if (g->wrap.lookahead) {
        dsc_plan_slot_shaped(plan, "lookahead_slow", DSC_DT_F32, p->ndim, p->shape);
        dsc_plan_slot(plan, "lookahead_step", DSC_DT_I64, 1);
    }
    if (g->wrap.ema) {
        dsc_plan_slot_shaped(plan, "ema", DSC_DT_F32, p->ndim, p->shape);
        dsc_plan_slot(plan, "ema_count", DSC_DT_I64, 1);
    }
}

static dsc_slot *la_slot(dsc_param *p, int which) /* which: 0 slow, 1 step */
{
    return &p->slots[p->wrap_slot + which];
}

static dsc_slot *ema_slot(dsc_param *p, const dsc_group *g, int which) /* 0 ema, 1 count */
{
    return &p->slots[p->wrap_slot + 2 * g->wrap.lookahead + which];
}


/* -------------------------------------------------------- element kernels */

/* Each has a plain reference loop and a range kernel with the same
 * arithmetic per element (element-wise, so any split gives the same bits). */

typedef struct {
    float *out;
    const float *in;
} neg_job;

DSC_WIDE static void neg_range(const void *ctx, size_t lo, size_t hi)
{
    const neg_job *j = ctx;
    float *restrict out = j->out;
    const float *restrict in = j->in;
    if ((const float *)out == in) {
        float *x = j->out;
        for (size_t i = lo; i < hi; i++) x[i] = -x[i];
    } else {
        for (size_t i = lo; i < hi; i++) out[i] = -in[i];
    }
}

void dsc_wrap_pre(dsc_group *g)
{
    if (!g->wrap.maximize) return;
    /* torch's maximize: the optimizer sees -g, before weight decay and all
     * else. Negation is exact, so the families that have their own key give
     * the same bits either way. */
    for (int i = 0; i < g->nparams; i++) {
        dsc_param *p = dsc_group_param(g, i);
        neg_job j = {p->work, p->grad};
        dsc_parallel_ranges(p->numel, neg_range, &j);
        p->grad = p->work;
    }
}

/* Lookahead sync: s <- s + alpha (p - s); p <- s. */
typedef struct {
    float *p, *s;
    float alpha;
} la_job;

DSC_BODY void la_one(float *p, float *s, float alpha)
{
    float v = *s + alpha * (*p - *s);
    *s = v;
    *p = v;
}

DSC_WIDE static void la_range(const void *ctx, size_t lo, size_t hi)
{
    const la_job *j = ctx;
    float *restrict p = j->p, *restrict s = j->s;
    const float alpha = j->alpha;
    for (size_t i = lo; i < hi; i++) la_one(&p[i], &s[i], alpha);
}

/* EMA: e <- d e + (1 - d) p, two products then the sum, as torch computes
 * `decay * e + (1 - decay) * p` on float32 tensors. */
typedef struct {
    float *e;
    const float *p;
    float d, c;
} ema_job;

DSC_WIDE static void ema_range(const void *ctx, size_t lo, size_t hi)
{
    const ema_job *j = ctx;
    float *restrict e = j->e;
    const float *restrict p = j->p;
    const float d = j->d, c = j->c;
    for (size_t i = lo; i < hi; i++) {
        float a = d * e[i];
        float b = c * p[i];
        e[i] = a + b;
    }
}

static double ema_decay(const dsc_group *g, int64_t n)
{
    if (n == 0) return 0.0; /* the first update copies */
    if (!g->wrap.ema_warmup) return g->wrap.ema_decay;
    double d = 1.0 - pow(1.0 + (double)n / g->wrap.ema_gamma, -g->wrap.ema_power);
    return d < g->wrap.ema_decay ? (d > 0 ? d : 0) : g->wrap.ema_decay;
}

/* Before the family's update: Lookahead's slow weights start as the
 * parameters the first update sees. */
void dsc_wrap_before(dsc_group *g)
{
    if (!g->wrap.lookahead) return;
    for (int i = 0; i < g->nparams; i++) {
        dsc_param *p = dsc_group_param(g, i);
        if (*(int64_t *)la_slot(p, 1)->data == 0)
            memcpy(la_slot(p, 0)->data, p->data, p->numel * sizeof(float));
    }
}

void dsc_wrap_post(dsc_group *g, int reference)
{
    for (int i = 0; i < g->nparams; i++) {
        dsc_param *p = dsc_group_param(g, i);
        if (g->wrap.lookahead) {
            int64_t *t = la_slot(p, 1)->data;
            *t += 1;
            if (*t % g->wrap.la_k == 0) {
                la_job j = {p->data, la_slot(p, 0)->data, (float)g->wrap.la_alpha};
                if (reference) {
                    for (size_t k = 0; k < p->numel; k++) la_one(&j.p[k], &j.s[k], j.alpha);
                } else {
                    dsc_parallel_ranges(p->numel, la_range, &j);
                }
            }
        }
        if (g->wrap.ema) {
            int64_t *n = ema_slot(p, g, 1)->data;
            float *e = ema_slot(p, g, 0)->data;
            double d = ema_decay(g, *n);
            if (*n == 0) {
                memcpy(e, p->data, p->numel * sizeof(float));
            } else {
                ema_job j = {e, p->data, (float)d, (float)(1.0 - d)};
                if (reference) {
                    for (size_t k = 0; k < p->numel; k++) {
                        float a = j.d * e[k];
                        float b = j.c * p->data[k];
                        e[k] = a + b;
                    }
                } else {
                    dsc_parallel_ranges(p->numel, ema_range, &j);
                }
            }
            *n += 1;
        }
    }
}

/* ------------------------------------------------------------ layer decay */

/* Depth from a name: its first number n gives n + 1 ("h.3.attn.w", "h3.mlp"),
 * an embedding 0, anything else -1 (the top). */
static int name_depth(const dsc_param *p)
{
    if (p->layer >= 0) return p->layer;
    if (p->role == DSC_ROLE_EMBEDDING) return 0;
    for (const char *c = p->name; *c; c++) {
        if (isdigit((unsigned char)*c)) {
            long v = 0;
            while (isdigit((unsigned char)*c) && v < 1000000) v = v * 10 + (*c++ - '0');
            return (int)v + 1;
        }
    }
    return -1;
}

double dsc_wrap_layer_scale(const dsc_group *g, const dsc_param *p)
{
    if (g->wrap.layer_decay == 1.0) return 1.0;
    /* L = the top: one above the deepest numbered parameter, or the largest
     * explicit depth if that is higher (timm: num_layers = blocks + 1). */
    int top = 0;
    for (int i = 0; i < g->nparams; i++) {
        const dsc_param *q = g->opt->params[g->params[i]];
        int d = name_depth(q);
        if (q->layer >= 0) {
            if (d > top) top = d;
        } else if (d > 0 && d + 1 > top) {
            top = d + 1;
        }
    }
    int d = name_depth(p);
    if (d < 0 || d > top) d = top;
    return pow(g->wrap.layer_decay, (double)(top - d));
}

dsc_status dsc_optimizer_set_param_layer(dsc_optimizer *opt, const char *param, int layer)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (!param) return dsc_fail(opt, DSC_NULL_POINTER, "set_param_layer: parameter name is NULL");
    dsc_param *p = dsc_optimizer_find_param(opt, param);
    if (!p)
        return dsc_fail(opt, DSC_UNKNOWN_NAME, "set_param_layer: no parameter named \"%s\"",
                        param);
    if (layer < -1 || layer > 1000000)
        return dsc_fail(opt, DSC_OUT_OF_RANGE,
                        "set_param_layer \"%s\": layer %d (expected 0..1000000, or -1 for the "
                        "name)", param, layer);
    p->layer = layer;
    return DSC_OK;
}

/* --------------------------------------------------------------- averages */

static int has_kind(const dsc_group *g, dsc_average_kind kind)
{
    return kind == DSC_AVERAGE_EMA ? g->wrap.ema : g->wrap.lookahead;
}

static const char *kind_name(dsc_average_kind kind)
{
    return kind == DSC_AVERAGE_EMA ? "ema" : "lookahead";
}

static dsc_slot *average_slot(dsc_param *p, const dsc_group *g, dsc_average_kind kind,
                              int64_t *count)
{
    dsc_slot *s = kind == DSC_AVERAGE_EMA ? ema_slot(p, g, 0) : la_slot(p, 0);
    dsc_slot *c = kind == DSC_AVERAGE_EMA ? ema_slot(p, g, 1) : la_slot(p, 1);
    *count = *(int64_t *)c->data;
    return s;
}

dsc_status dsc_optimizer_average(const dsc_optimizer *opt, const char *param,
                                 dsc_average_kind kind, const float **data)
{
    if (!opt || !param || !data) return DSC_NULL_POINTER;
    if ((int)kind < DSC_AVERAGE_EMA || kind > DSC_AVERAGE_LOOKAHEAD) return DSC_OUT_OF_RANGE;
    dsc_param *p = dsc_optimizer_find_param(opt, param);
    if (!p) return DSC_UNKNOWN_NAME;
    const dsc_group *g = opt->groups[p->group];
    if (!has_kind(g, kind)) return DSC_STATE;
    int64_t count;
    dsc_slot *s = average_slot(p, g, kind, &count);
    if (count == 0) return DSC_STATE;
    *data = s->data;
    return DSC_OK;
}

dsc_status dsc_optimizer_swap_average(dsc_optimizer *opt, dsc_average_kind kind)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if ((int)kind < DSC_AVERAGE_EMA || kind > DSC_AVERAGE_LOOKAHEAD)
        return dsc_fail(opt, DSC_OUT_OF_RANGE, "swap_average: %d is not a dsc_average_kind",
                        (int)kind);
    if (opt->swapped && opt->swapped != 1 + (int)kind)
        return dsc_fail(opt, DSC_STATE, "swap_average: the %s weights are swapped in; swap "
                        "them back first", kind_name((dsc_average_kind)(opt->swapped - 1)));
    int any = 0;
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        const dsc_group *g = opt->groups[p->group];
        if (!has_kind(g, kind)) continue;
        int64_t count;
        average_slot(p, g, kind, &count);
        if (count == 0)
            return dsc_fail(opt, DSC_STATE, "swap_average: parameter \"%s\" has no %s weights "
                            "yet (no update applied)", p->name, kind_name(kind));
        any = 1;
    }
    if (!any)
        return dsc_fail(opt, DSC_STATE, "swap_average: no group has the %s wrapper",
                        kind_name(kind));
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        const dsc_group *g = opt->groups[p->group];
        if (!has_kind(g, kind)) continue;
        int64_t count;
        float *s = average_slot(p, g, kind, &count)->data;
        for (size_t k = 0; k < p->numel; k++) {
            float t = p->data[k];
            p->data[k] = s[k];
            s[k] = t;
        }
    }
    opt->swapped = opt->swapped ? 0 : 1 + (int)kind;
    dsc_bf16_publish(opt); /* bf16 parameters show what was swapped in */
    return DSC_OK;
}

int dsc_optimizer_swapped(const dsc_optimizer *opt) { return opt ? opt->swapped : 0; }

/* ------------------------------------------------------------------ hooks */

static dsc_status add_hook(dsc_optimizer *opt, int post, dsc_pre_hook pre, dsc_post_hook postfn,
                           void *user, int *id)
{
    if (opt->in_hook) return dsc_fail(opt, DSC_STATE, "add_hook: not from inside a hook");
    if (opt->nhooks == opt->cap_hooks) {
        int ncap = opt->cap_hooks ? 2 * opt->cap_hooks : 4;
        struct dsc_hook *h = dsc_calloc((size_t)ncap, sizeof *h);
        if (!h) return dsc_fail(opt, DSC_NO_MEMORY, "add_hook: out of memory");
        if (opt->hooks) memcpy(h, opt->hooks, (size_t)opt->nhooks * sizeof *h);
        dsc_free(opt->hooks);
        opt->hooks = h;
        opt->cap_hooks = ncap;
    }
    struct dsc_hook *h = &opt->hooks[opt->nhooks++];
    h->id = ++opt->next_hook_id;
    h->post = post;
    h->pre_fn = pre;
    h->post_fn = postfn;
    h->user = user;
    if (id) *id = h->id;
    return DSC_OK;
}

dsc_status dsc_optimizer_add_pre_hook(dsc_optimizer *opt, dsc_pre_hook fn, void *user, int *id)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (!fn) return dsc_fail(opt, DSC_NULL_POINTER, "add_pre_hook: function is NULL");
    return add_hook(opt, 0, fn, NULL, user, id);
}

dsc_status dsc_optimizer_add_post_hook(dsc_optimizer *opt, dsc_post_hook fn, void *user,
                                       int *id)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (!fn) return dsc_fail(opt, DSC_NULL_POINTER, "add_post_hook: function is NULL");
    return add_hook(opt, 1, NULL, fn, user, id);
}

dsc_status dsc_optimizer_remove_hook(dsc_optimizer *opt, int id)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (opt->in_hook) return dsc_fail(opt, DSC_STATE, "remove_hook: not from inside a hook");
    for (int i = 0; i < opt->nhooks; i++) {
        if (opt->hooks[i].id != id) continue;
        memmove(&opt->hooks[i], &opt->hooks[i + 1],
                (size_t)(opt->nhooks - i - 1) * sizeof opt->hooks[0]);
        opt->nhooks--;
        return DSC_OK;
    }
    return dsc_fail(opt, DSC_UNKNOWN_NAME, "remove_hook: no hook with id %d", id);
}

int dsc_wrap_run_pre_hooks(dsc_optimizer *opt)
{
    for (int i = 0; i < opt->nhooks; i++) {
        if (opt->hooks[i].post) continue;
        opt->in_hook = 1;
        int r = opt->hooks[i].pre_fn(opt, opt->hooks[i].user);
        opt->in_hook = 0;
        if (r) return opt->hooks[i].id;
    }
    return 0;
}

void dsc_wrap_run_post_hooks(dsc_optimizer *opt)
{
    for (int i = 0; i < opt->nhooks; i++) {
        if (!opt->hooks[i].post) continue;
        opt->in_hook = 1;
        opt->hooks[i].post_fn(opt, &opt->stats, opt->hooks[i].user);
        opt->in_hook = 0;
    }
}
