/*
 * internal.h - what the core, the optimizer families and the kernels share.
 * Not installed. Everything here may change between versions.
 *
 * The model: a dsc_optimizer holds groups; each group is run by one family
 * (an optimizer kind such as adamw) and holds parameters. A family declares
 * its state as named slots (per parameter and per group); the core
 * allocates them when a parameter or group is added, checkpoints them by
 * name, and never allocates during a step. The driver (step.c) prepares the
 * gradient (accumulation, non-finite policy, clipping), evaluates schedules
 * into each parameter's `hp` array, then calls the family's step once per
 * group.
 */
#ifndef DESCENT_INTERNAL_H
#define DESCENT_INTERNAL_H

#include "descent.h"
#include "../kernels/bf16.h"
#include "../kernels/parallel.h"
#include "../kernels/vec.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSC_MAX_SLOTS 16 /* a family's slots, the wrappers' (wrap.c), a bf16 master */
#define DSC_MAX_KEYS 32
#define DSC_SLOT_NAME_MAX 32
#define DSC_ERR_MAX 512

/* ------------------------------------------------------------ allocation */

void *dsc_malloc(size_t n);
void *dsc_calloc(size_t count, size_t size); /* zeroed; checks overflow */
void dsc_free(void *p);
char *dsc_strdup(const char *s);

/* ------------------------------------------------------------ state slots */

typedef enum { DSC_DT_F32 = 0, DSC_DT_F64, DSC_DT_U8, DSC_DT_I64, DSC_DT_BF16 } dsc_dtype;

size_t dsc_dtype_size(dsc_dtype t);
const char *dsc_dtype_name(dsc_dtype t); /* safetensors names: F32, F64, U8, I64, BF16 */

typedef struct {
    char name[DSC_SLOT_NAME_MAX];
    dsc_dtype dtype;
    size_t count;                /* elements */
    int ndim;                    /* shape written to checkpoints */
    int64_t shape[DSC_MAX_NDIM]; /* product == count */
    void *data;                  /* owned; zero-filled at allocation */
} dsc_slot;

/* What a family asks for, before allocation. */
typedef struct {
    int nslots;
    dsc_slot slot[DSC_MAX_SLOTS]; /* data unused here */
    size_t scratch_bytes;         /* workspace, not checkpointed, 64-byte aligned */
} dsc_plan;

/* Add a slot to a plan. ndim 0 means a 1-D slot of `count` elements. */
void dsc_plan_slot(dsc_plan *plan, const char *name, dsc_dtype dtype, size_t count);
/* Add a slot with an explicit shape. */
void dsc_plan_slot_shaped(dsc_plan *plan, const char *name, dsc_dtype dtype, int ndim,
                          const int64_t *shape);

/* ------------------------------------------------------------ parameters */

typedef struct dsc_param {
    char name[DSC_NAME_MAX];
    float *data;            /* caller's buffer, updated in place */
    const float *grad_user; /* caller's gradient */
    const float *grad;      /* the gradient the family reads this step */
    float *work;            /* owned gradient copy, when transforms need one */
    float *accum;           /* owned accumulation sum, when accumulating */
    int ndim;
    int64_t shape[DSC_MAX_NDIM];
    size_t numel;
    size_t rows, cols;      /* shape[0] and numel / shape[0] (1 x n for 1-D) */
    dsc_role role;          /* resolved, never AUTO */
    int no_decay;
    int group;              /* index into opt->groups */
    double hp[DSC_MAX_KEYS];       /* this step's values (group's, then overrides) */
    double override_value[DSC_MAX_KEYS];
    uint64_t override_mask;
    int nslots;
    dsc_slot slots[DSC_MAX_SLOTS];
    void *scratch;
    size_t scratch_bytes;
    int wrap_slot;          /* index of the first wrapper slot (wrap.c), -1: none */
    int layer;              /* layer index for layer_decay (-1: from the name) */
    /* Where the parameter's random streams come from: its index among the
     * optimizer's parameters and its first element in that parameter (a
     * shard's piece: the whole parameter's index and the piece's offset). */
    int rng_index;
    size_t rng_offset;
    float *prev;            /* copy before the update, for update_l2 (stats on) */
    double update_sumsq;    /* sum of (new - old)^2, from a family that tracks it */
    /* bf16 parameters (bf16.c): the caller's buffers; p->data is then the
     * master slot or an owned work copy, p->grad_user an owned widened copy. */
    int bf16;               /* 0, or 1 + dsc_bf16_mode */
    uint16_t *bf16_data;
    const uint16_t *bf16_grad;
    float *bf16_work;       /* owned: gradient, then (stochastic) parameter */
    /* Set for one step when the driver ran the family's prescan on this
     * parameter (dsc_family.prescan); `prescan` holds its scalar results. */
    int prescanned;
    double prescan[2];
} dsc_param;

/* ---------------------------------------------------------------- groups */

struct dsc_family;
struct dsc_optimizer;

typedef struct dsc_group {
    char name[DSC_NAME_MAX];
    const struct dsc_family *family;
    double base[DSC_MAX_KEYS]; /* configured values (set_hyper changes these) */
    double init[DSC_MAX_KEYS]; /* values when the group was created (Lion's lr0) */
    double cur[DSC_MAX_KEYS];  /* this step's values: base * schedule */
    dsc_schedule sched[DSC_MAX_KEYS];
    uint64_t sched_mask;
    int *params;               /* indices into opt->params, in insertion order */
    int nparams, cap_params;
    int nslots;
    dsc_slot slots[DSC_MAX_SLOTS]; /* group-level state (scalars, counters) */
    void *scratch;             /* group workspace, resized when params join */
    size_t scratch_bytes;
    struct dsc_optimizer *opt;
    /* Group-level options any family accepts (wrap.c's key table: spec,
     * set_hyper, checkpoints, `descent list any`) and the ema / lookahead
     * wrappers around it (wrap.c). */
    struct dsc_group_opts {
        int maximize;              /* negate the gradient (family without the key) */
        double layer_decay;        /* lr * layer_decay^(depth from the top); 1 = off */
        /* coordinate-wise clipping (transform.c): fraction, 0 = off; scale */
        double coord_clip, coord_clip_scale;
        int ema, ema_warmup;       /* shadow weights; timm's warmup of the decay */
        double ema_decay, ema_gamma, ema_power;
        int lookahead, la_k;       /* slow weights, synced every la_k steps */
        double la_alpha;
        int bf16_state;            /* DSC_STATE_F32 / _BF16 / _BF16_SR (kernels/bf16.h) */
    } wrap;
} dsc_group;

/* The i-th parameter of a group. */
dsc_param *dsc_group_param(const dsc_group *g, int i);

/* ------------------------------------------------------------- families */

typedef struct {
    int reference;  /* 1: run the plain reference loops */
    int64_t step;   /* 0-based index of the update being applied */
    uint64_t seed;  /* the optimizer's seed (stochastic rounding) */
    /* 1: the step must leave each parameter's sum of (new - old)^2 in
     * p->update_sumsq (kernels/vec.h), for the update norm; set
     * only for families with tracks_update, as step.c says when. */
    int track_update;
} dsc_step_ctx;

typedef struct dsc_family {
    dsc_optimizer_info info;
    const char *const *aliases; /* NULL-terminated, may be NULL */
    /* Cross-key checks after parsing (e.g. nesterov needs momentum > 0).
     * Write a message to err and return non-OK to reject. May be NULL. */
    dsc_status (*check)(const double *hp, char *err, size_t errlen);
    /* Declare the state of one parameter of this group (slots, scratch).
     * Reject unsupported shapes with DSC_SHAPE and a message. Required. */
    dsc_status (*plan_param)(const dsc_group *g, const dsc_param *p, dsc_plan *plan,
                             char *err, size_t errlen);
    /* Declare group-level state, called at group creation (slots) and after
     * every parameter joins (scratch). May be NULL. */
    void (*plan_group)(const dsc_group *g, dsc_plan *plan);
    /* Fill freshly allocated (zeroed) state, e.g. AdaGrad's initial sum. May be NULL. */
    void (*init_param)(dsc_group *g, dsc_param *p);
    /* The first phase of a step: checks of this step's values (p->hp, as
     * set_hyper and the schedules left them) that the update depends on.
     * The driver runs it for every group before any group writes, so a
     * failed step changes nothing. Must not write. May be NULL. */
    dsc_status (*validate)(const dsc_group *g);
    /* The second phase: one update of every parameter of the group, reading
     * p->grad and p->hp. Must not allocate and must not fail (whatever can
     * fail belongs in validate). */
    dsc_status (*step)(dsc_group *g, const dsc_step_ctx *ctx);
    /* The family's own first read of a parameter, for a family whose update
     * needs a whole-tensor number before it writes anything (adamp's
     * projection decision, adagradnorm's sum of g^2, stable_spam's max |g|,
     * the first radix pass of sgd_clip's and adam_clip's threshold). When
     * the gradient reaches the family as it is (no transform work,
     * transform.c) and no norms are asked for, the driver runs it in the
     * validate phase in place of its own non-finite scan of p->grad, so the
     * gradient is read once less per step. It reads p->grad and p->data,
     * keeps what it computed in p->scratch, p->prescan or the group's
     * scratch, sets p->prescanned when it did so (the step then uses the
     * results), and returns 1 only when those results prove every entry of
     * p->grad finite (a double sum of squares, a maximum of |bits| or a
     * histogram of the exponents that shows no Inf or NaN); otherwise the
     * driver counts the non-finite entries itself. It writes nothing else
     * and cannot fail. May be NULL. */
    int (*prescan)(const dsc_group *g, dsc_param *p);
    /* 1: the family stores its float32 state slots in bf16 when the group
     * key bf16_state asks (it plans them with dsc_state_dtype and its
     * kernels load and store through kernels/bf16.h). */
    int bf16_states;
    /* 1: with ctx->track_update, the fast step runs its one in-place pass
     * over each parameter through dsc_parallel_ranges_diff (its loop adds
     * each element's (new - old)^2 as it goes) and stores the result in
     * p->update_sumsq, so the update norm needs no copy of the parameters
     * and no second pass (step.c). Families whose update is not one such
     * pass leave it 0. */
    int tracks_update;
} dsc_family;

/* Registry (registry.c). */
int dsc_family_count(void);
const dsc_family *dsc_family_at(int i);
const dsc_family *dsc_family_find(const char *name);
/* Index of a key in a family's table, or -1. */
int dsc_family_key(const dsc_family *f, const char *key);

/* The tokenizer of "name:key=value,..." texts shared by optimizer specs and
 * schedules (spec.c: grammar and what it refuses). Offsets are 0-based
 * into `text`; messages give them 1-based as "at character N". */
#define DSC_SPEC_MAX_ITEMS 32
#define DSC_SPEC_NAME_MAX 64
typedef struct {
    char key[DSC_SPEC_NAME_MAX];
    double value;
    int is_bool;     /* written true/false */
    size_t key_at, value_at;
} dsc_spec_item;
typedef struct {
    const char *text;
    char name[DSC_SPEC_NAME_MAX];
    size_t name_at, name_len;
    int nitems;
    dsc_spec_item item[DSC_SPEC_MAX_ITEMS];
} dsc_spec_tokens;
/* `what` names the text in messages ("optimizer spec", "schedule"). */
dsc_status dsc_spec_tokenize(const char *what, const char *text, dsc_spec_tokens *t,
                             char *err, size_t errlen);
/* An integer item: refuses fractional values and values outside
 * [min, max] (checked in double before converting), naming key and range. */
dsc_status dsc_spec_int(const dsc_spec_tokens *t, const dsc_spec_item *it, const char *what,
                        double min, double max, int64_t *out, char *err, size_t errlen);

/* Parse "name:key=value,..." into a family and a full hp array (defaults
 * filled in, ranges and required keys checked). */
dsc_status dsc_spec_parse(const char *spec, const dsc_family **family, double *hp,
                          char *err, size_t errlen);
/* The same from tokens (items already taken by the caller have key[0] = 0). */
dsc_status dsc_spec_parse_tokens(const dsc_spec_tokens *t, const dsc_family **family,
                                 double *hp, char *err, size_t errlen);
/* Check one value against a key's type and range. */
dsc_status dsc_key_check(const dsc_family *f, int key, double value, char *err,
                         size_t errlen);

/* ------------------------------------------------------------- optimizer */

typedef struct {
    char *pattern; /* NULL: any name */
    dsc_role role; /* AUTO: any role */
    char group[DSC_NAME_MAX];
    int no_decay;
} dsc_rule;

struct dsc_optimizer {
    dsc_group **groups;
    int ngroups, cap_groups;
    dsc_param **params;
    int nparams, cap_params;
    dsc_rule *rules;
    int nrules, cap_rules;
    dsc_clip_kind clip_kind;
    double clip_limit;
    dsc_nonfinite_policy nonfinite;
    int accumulation;      /* micro-steps per update */
    int micro;             /* micro-steps taken towards the next update */
    int64_t step;          /* updates applied */
    int reference;
    int want_stats;        /* compute l2/l1/l-inf norms every step */
    dsc_step_stats stats;
    char error[DSC_ERR_MAX];
    struct dsc_shard *shard; /* set by dsc_optimizer_set_comm (shard.c), else NULL */
    /* Step hooks (wrap.c): pre hooks may refuse a step; post hooks see its stats. */
    struct dsc_hook {
        int id, post;
        int (*pre_fn)(dsc_optimizer *, void *);
        void (*post_fn)(dsc_optimizer *, const dsc_step_stats *, void *);
        void *user;
    } *hooks;
    int nhooks, cap_hooks, next_hook_id, in_hook;
    int swapped; /* 1 + dsc_average_kind while averaged weights are swapped in */
    uint64_t seed; /* stochastic rounding of bf16 parameters */
    int shard_local; /* 1: the per-rank optimizer inside a shard (shard.c) */
};

/* Record an error on the handle and return `s`. */
dsc_status dsc_fail(dsc_optimizer *opt, dsc_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void dsc_clear_error(dsc_optimizer *opt);

dsc_group *dsc_optimizer_find_group(const dsc_optimizer *opt, const char *name);
dsc_param *dsc_optimizer_find_param(const dsc_optimizer *opt, const char *name);
/* Make sure every parameter has the gradient buffers the current transform
 * settings need (allocated at configuration time, never during a step). */
dsc_status dsc_optimizer_ensure_buffers(dsc_optimizer *opt);
/* With stats on, whether the parameters of group g measure their own update
 * norm (dsc_step_ctx.track_update): the family's fast float32 step, with
 * nothing after it that moves the parameters again (Lookahead does), no
 * shards, not the reference loops. The other groups' parameters are copied
 * to p->prev before the step and compared after (both ways give the same
 * bits), so only they own a p->prev: every call that can turn tracking off
 * for a parameter (set_stats, use_reference, set_comm, set_hyper of a group
 * key, move_param) makes sure it exists (dsc_optimizer_ensure_buffers). */
int dsc_group_tracks_update(const dsc_optimizer *opt, const dsc_group *g);
/* 1 when parameter p needs the copy p->prev for the update norm. */
int dsc_param_needs_prev(const dsc_optimizer *opt, const dsc_param *p);

/* Fill p->hp for every parameter from group values, schedules and overrides. */
void dsc_optimizer_resolve_hypers(dsc_optimizer *opt);

/* ------------------------------------- the gradient-transform stage (transform.c)
 * Phase 1 of a step, dsc_transform_decide: scans p->grad of every
 * parameter, fills opt->stats (norms, nonfinite, clip_scale, the skipped /
 * zeroed / clipped counters) and decides. Returns DSC_NONFINITE (error set)
 * under the fail policy; otherwise DSC_OK with the plan: skip = 1 means the
 * update is skipped (the driver ends the accumulation window and runs the
 * post hooks); else the plan says what phase 2 does. Writes nothing else.
 * Phase 2, dsc_transform_apply: zeroing, norm factor and value bound, then
 * coordinate clipping and maximize per group, into p->work (p->grad points
 * there after). Cannot fail, allocates nothing (the buffers exist:
 * dsc_optimizer_ensure_buffers, when the settings change). */
typedef struct {
    int skip;     /* skip this update (non-finite gradient, policy skip) */
    int zero_bad; /* non-finite entries become 0 (policy zero) */
    float scale;  /* global-norm clipping factor, 1: none */
    float clamp;  /* value clipping bound, INFINITY: none */
} dsc_grad_plan;
dsc_status dsc_transform_decide(dsc_optimizer *opt, dsc_grad_plan *plan);
void dsc_transform_apply(dsc_optimizer *opt, const dsc_grad_plan *plan);
/* 1: some transform writes p->work (the caller adds accumulation). */
int dsc_transform_needs_work(const dsc_optimizer *opt);
/* Checks of the optimizer-wide settings (set_clip / set_nonfinite and
 * checkpoint loading share them); a message in err. */
dsc_status dsc_transform_check_clip(int kind, double limit, char *err, size_t errlen);
dsc_status dsc_transform_check_nonfinite(int policy, char *err, size_t errlen);
/* Names in checkpoints: none/norm/value, skip/zero/fail; -1 if unknown. */
const char *dsc_clip_kind_name(dsc_clip_kind k);
const char *dsc_nonfinite_name(dsc_nonfinite_policy p);
int dsc_clip_kind_from_name(const char *s);
int dsc_nonfinite_from_name(const char *s);
/* Coordinate-wise clipping threshold (docs/optimizers.md, sgd_clip).
 * tau over every parameter of g: the floor(N*c)-th largest |x| (0-based) of
 * x = grad (+ hp[wd_key]*data when wd_key >= 0), times scale; 0 when c >= 1.
 * Allocates nothing; the same value for any thread count. `ws` (or NULL) is
 * a workspace of ws_bytes >= dsc_coordclip_ws_bytes(N) (a family's group
 * scratch): with it the fast select reads x once (a sample brackets the
 * answer; one pass counts above the bracket and gathers what falls in it),
 * without it three times. `counted`: the pass was made for this step by
 * dsc_coordclip_begin and dsc_coordclip_count (a family's prescan). */
float dsc_coordclip_tau(dsc_group *g, double c, double scale, int wd_key, int reference,
                        void *ws, size_t ws_bytes, int counted);
size_t dsc_coordclip_ws_bytes(size_t n);
/* The one-pass select in two parts, for a family's prescan: begin (the
 * sample and the bracket, over every parameter of g) once per step, then
 * count once for each parameter, which returns how many of its x are Inf
 * or NaN (SIZE_MAX when the workspace does not fit the group). */
void dsc_coordclip_begin(const dsc_group *g, double c, int wd_key, void *ws, size_t ws_bytes);
size_t dsc_coordclip_count(const dsc_group *g, const dsc_param *p, float wd, void *ws,
                           size_t ws_bytes);
/* How the last tau with this workspace was found (for the tests): */
enum { DSC_COORDCLIP_RADIX, DSC_COORDCLIP_CANDIDATES, DSC_COORDCLIP_ONE_VALUE };
int dsc_coordclip_path(const void *ws);
/* x clipped to [-tau, tau] as the clipping defines it: x when |x| < tau,
 * else sign(x)*tau (so a NaN x becomes 0*tau, never NaN). */
static inline float dsc_clip_tau(float x, float tau)
{
    return fabsf(x) < tau ? x : dsc_signf(x) * tau;
}

/* Sharding over a communicator (shard.c, docs/distributed.md): the driver's
 * hooks. scan: the gradient scan of step.c with per-parameter results
 * all-reduced; step: the families on this rank's pieces, then the gather. */
void dsc_shard_free(struct dsc_shard *s);
dsc_status dsc_shard_scan(dsc_optimizer *opt, int norms, size_t *bad, const char **first_bad,
                          double *sumsq, double *sumabs, double *absmax);
dsc_status dsc_shard_step(dsc_optimizer *opt, const dsc_step_ctx *ctx);
/* The families' validate phase on this rank's pieces. */
dsc_status dsc_shard_validate(dsc_optimizer *opt);
size_t dsc_shard_state_bytes(const dsc_optimizer *opt);
size_t dsc_shard_param_state_bytes(const dsc_optimizer *opt, int i);
dsc_status dsc_shard_save(dsc_optimizer *opt, const char *path);
dsc_status dsc_shard_load(dsc_optimizer *opt, const char *path);
int dsc_shard_is_manifest(const char *path); /* 1: a sharded checkpoint's manifest */
/* Wrappers and group-level options (wrap.c). */
/* The settings of wrapper w (0 ema, 1 lookahead; dsc_wrapper_info(w)'s
 * keys, in order; at most 4) of a group: get returns their count, 0 when
 * the group lacks that wrapper; set checks each range (nothing stored on
 * failure). Checkpoints keep them. */
int dsc_wrap_settings(const struct dsc_group_opts *o, int w, double *vals);
dsc_status dsc_wrap_set_settings(struct dsc_group_opts *o, int w, const double *vals, char *err,
                                 size_t errlen);
/* Take the ema(...) / lookahead(...) prefixes off `spec` into *o (defaults
 * for the rest); *inner points at the optimizer spec after them. */
dsc_status dsc_wrap_take_prefix(const char *spec, const char **inner, struct dsc_group_opts *o,
                                char *err, size_t errlen);
/* The group keys every family accepts (maximize, layer_decay,
 * coordinate_clip, coordinate_clip_scale, bf16_state), one table in wrap.c.
 * find: the index of `key` as a group key of a group run by f, or -1 (a
 * key f defines itself is f's). set: checks type, range and what the value
 * needs of f (layer_decay an lr key), then stores it in o; nothing stored
 * on failure. Callers that turn on maximize or coordinate_clip make sure
 * the work buffers exist (dsc_optimizer_ensure_buffers). */
int dsc_group_key_count(void);
const char *dsc_group_key_name(int k);
/* 1 for a key that decides how the state is stored (bf16_state): it may not
 * switch between float32 and bf16 once the group has parameters. */
int dsc_group_key_sizes_state(int k);
int dsc_group_key_find(const dsc_family *f, const char *key);
double dsc_group_key_get(const struct dsc_group_opts *o, int k);
dsc_status dsc_group_key_set(const dsc_family *f, struct dsc_group_opts *o, int k, double x,
                             char *err, size_t errlen);
/* Take the group keys out of the tokens where the family lacks them
 * (items taken get key[0] = 0). */
dsc_status dsc_wrap_take_keys(dsc_spec_tokens *t, struct dsc_group_opts *o, char *err,
                              size_t errlen);
/* Add the wrapper slots of group g to a parameter's plan (set p->wrap_slot
 * to the plan's slot count first). */
void dsc_wrap_plan(const dsc_group *g, const dsc_param *p, dsc_plan *plan);
/* The gradient transform of the group keys (maximize), into p->work. */
void dsc_wrap_pre(dsc_group *g);
/* Before the family's update (Lookahead's first slow weights) and after it
 * (Lookahead sync, then the EMA). */
void dsc_wrap_before(dsc_group *g);
void dsc_wrap_post(dsc_group *g, int reference);
/* Run the hooks: pre returns the id of a hook that refused, or 0. */
int dsc_wrap_run_pre_hooks(dsc_optimizer *opt);
void dsc_wrap_run_post_hooks(dsc_optimizer *opt);
/* lr multiplier of parameter p under its group's layer_decay. */
double dsc_wrap_layer_scale(const dsc_group *g, const dsc_param *p);
/* bf16 parameters (bf16.c): widen the gradients (every call), widen the
 * stochastic-rounding parameters (before an update), write the results back
 * (after it; and after a swap of averaged weights). */
void dsc_bf16_widen_grads(dsc_optimizer *opt);
void dsc_bf16_before(dsc_optimizer *opt);
void dsc_bf16_after(dsc_optimizer *opt);
void dsc_bf16_publish(dsc_optimizer *opt); /* round to nearest: after a swap */
void dsc_bf16_publish_masters(dsc_optimizer *opt); /* after a load */
/* bf16 optimizer states (the group key bf16_state): the dtype a family
 * plans for a float32-valued state slot of group g, and the key of the
 * random stream that rounds p's states stochastically at this update
 * (element i draws dsc_state_bits(mode, key, i), kernels/bf16.h). The key
 * depends on (seed, update, parameter, element of the whole parameter), so
 * a shard's piece draws the bits of the same elements of the whole. */
dsc_dtype dsc_state_dtype(const dsc_group *g);
uint64_t dsc_state_key(const dsc_param *p, const dsc_step_ctx *ctx);
/* Slot `slot` of p (a float32-valued state) as group g stores it, with the
 * key of this update's stochastic rounding where it applies. */
dsc_state_buf dsc_state_slot(const dsc_group *g, dsc_param *p, int slot,
                             const dsc_step_ctx *ctx);
/* A family's fast step on bf16 states: chunks of DSC_STATE_CHUNK elements
 * widened into float32 buffers, the family's own float32 range function
 * run on them (the very code of the float32 step, so the same bits as its
 * reference loop's load/store forms), narrowed back. `rebase` writes into
 * `sub` a copy of `job` (the float32 job of the whole parameter) for
 * elements [c, c + n): its parameter and gradient pointers advanced by c,
 * its state pointers at bufs[0..nstates). States 0 and 1 share one hash
 * per element when rounded stochastically (halves of stream 0), state 2
 * takes stream 1. */
#define DSC_STATE_CHUNK 256
#define DSC_STATE_JOB_MAX 256 /* bytes of a family's float32 job */
typedef struct {
    dsc_range_fn range;
    const void *job;
    void (*rebase)(void *sub, const void *job, size_t c, float *const *bufs);
    int nstates;  /* 1..3 */
    uint16_t *h[3];
    int mode;     /* DSC_STATE_BF16 or DSC_STATE_BF16_SR */
    uint64_t key; /* dsc_state_key */
} dsc_state_chunks;
void dsc_state_run_chunked(size_t n, const dsc_state_chunks *sc);

/* Threads, parallel ranges, reductions: the kernel layer's own headers
 * (src/kernels/parallel.h, vec.h), which the core and the families use. */

#endif /* DESCENT_INTERNAL_H */
