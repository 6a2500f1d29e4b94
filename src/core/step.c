/* step.c - the driver: one dsc_optimizer_step().
 *
 * A step has two phases, so that a failed step changes nothing (no
 * parameter, state, accumulation buffer or step count), whichever group
 * fails:
 *   validate
 *     0. pre-step hooks (wrap.c), which may refuse the step or set
 *        hyperparameters;
 *     1. schedules and overrides resolved into each parameter's hp array
 *        (derived values only: they are recomputed from the configuration
 *        and the step count every time), then every group's family
 *        validates this step's values (family->validate);
 *     2. accumulation: micro-steps add into p->accum (a micro-step that is
 *        not the last one is a complete, successful call); the last one
 *        forms the mean in p->work and leaves p->accum as it was;
 *     3. one scan of every gradient: l2, l1, l-inf norms, non-finite count;
 *     4. non-finite policy: skip (a successful call that updates nothing),
 *        fail, or zero the entries;
 *   write (nothing below can fail)
 *     5. the accumulation buffers are cleared;
 *     6. clipping by global norm or by value, coordinate clipping and the
 *        group key maximize, into p->work;
 *     7. each group's family steps its parameters, then its wrappers
 *        (Lookahead, EMA) run; the step count advances; post-step hooks.
 * A family reads p->grad, which is the caller's buffer unless a transform
 * produced a copy in p->work. All buffers exist before the first step. */
#include "internal.h"

#include <math.h>
#include <string.h>

dsc_status dsc_optimizer_set_clip(dsc_optimizer *opt, dsc_clip_kind kind, double limit)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if ((int)kind < DSC_CLIP_NONE || kind > DSC_CLIP_VALUE)
        return dsc_fail(opt, DSC_OUT_OF_RANGE, "set_clip: kind %d is not a dsc_clip_kind",
                        (int)kind);
    if (kind != DSC_CLIP_NONE && !(limit > 0.0 && isfinite(limit)))
        return dsc_fail(opt, DSC_OUT_OF_RANGE, "set_clip: limit must be finite and > 0, got %g",
                        limit);
    dsc_clip_kind old_kind = opt->clip_kind;
    opt->clip_kind = kind;
    dsc_status st = dsc_optimizer_ensure_buffers(opt);
    if (st != DSC_OK) {
        opt->clip_kind = old_kind;
        return st;
    }
    opt->clip_limit = limit;
    return DSC_OK;
}

dsc_status dsc_optimizer_set_nonfinite(dsc_optimizer *opt, dsc_nonfinite_policy policy)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if ((int)policy < DSC_NONFINITE_SKIP || policy > DSC_NONFINITE_FAIL)
        return dsc_fail(opt, DSC_OUT_OF_RANGE, "set_nonfinite: %d is not a policy", (int)policy);
    dsc_nonfinite_policy old = opt->nonfinite;
    opt->nonfinite = policy;
    dsc_status st = dsc_optimizer_ensure_buffers(opt);
    if (st != DSC_OK) opt->nonfinite = old;
    return st;
}

dsc_status dsc_optimizer_set_accumulation(dsc_optimizer *opt, int micro_steps)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (micro_steps < 1 || micro_steps > 1000000)
        return dsc_fail(opt, DSC_OUT_OF_RANGE, "set_accumulation: micro_steps = %d, expected "
                        "1..1000000", micro_steps);
    if (opt->micro > 0)
        return dsc_fail(opt, DSC_STATE, "set_accumulation: %d micro-steps are pending",
                        opt->micro);
    int old = opt->accumulation;
    opt->accumulation = micro_steps;
    dsc_status st = dsc_optimizer_ensure_buffers(opt);
    if (st != DSC_OK) opt->accumulation = old;
    return st;
}

dsc_status dsc_optimizer_set_stats(dsc_optimizer *opt, int on)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    int old = opt->want_stats;
    opt->want_stats = on != 0;
    dsc_status st = dsc_optimizer_ensure_buffers(opt); /* p->prev for update_l2 */
    if (st != DSC_OK) opt->want_stats = old;
    return st;
}

dsc_status dsc_optimizer_stats(const dsc_optimizer *opt, dsc_step_stats *out)
{
    if (!opt || !out) return DSC_NULL_POINTER;
    *out = opt->stats;
    return DSC_OK;
}

/* accum += g over a whole parameter. */
static void add_into(float *restrict acc, const float *restrict g, size_t n)
{
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
    for (size_t i = 0; i < n; i++) acc[i] += g[i];
}

/* out = (acc + g) * scale; acc is left as it was (cleared once the step
 * can no longer fail). */
static void finish_mean(float *restrict out, const float *restrict acc, const float *restrict g,
                        float scale, size_t n)
{
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n >= DSC_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = (acc[i] + g[i]) * scale;
}

/* out = f(in) for the transforms of step 3 and 4 (in may equal out). Per
 * thread ranges of a plain loop; in place and out of place are separate
 * loops, because a compiler that cannot rule out a partial overlap keeps a
 * scalar fallback that equal pointers would select. */
typedef struct {
    float *out;
    const float *in;
    float scale, clamp;
    int zero_bad;
} transform_job;

DSC_BODY float transform_one(float v, int zero_bad, float scale, float clamp)
{
    if (zero_bad) v = isfinite(v) ? v : 0.0f;
    v *= scale;
    v = v > clamp ? clamp : v;
    v = v < -clamp ? -clamp : v;
    return v;
}

static void transform_range(const void *ctx, size_t lo, size_t hi)
{
    const transform_job *job = ctx;
    const float scale = job->scale, clamp = job->clamp;
    const int zero_bad = job->zero_bad;
    if (job->out == job->in) {
        float *x = job->out;
        for (size_t i = lo; i < hi; i++) x[i] = transform_one(x[i], zero_bad, scale, clamp);
    } else {
        float *restrict out = job->out;
        const float *restrict in = job->in;
        for (size_t i = lo; i < hi; i++) out[i] = transform_one(in[i], zero_bad, scale, clamp);
    }
}

static void transform(float *out, const float *in, size_t n, int zero_bad, float scale,
                      float clamp)
{
    transform_job job = {out, in, scale, clamp, zero_bad};
    dsc_parallel_ranges(n, transform_range, &job);
}

/* dst = src, cut into per-thread ranges: the copy of the parameters for the
 * update norm moves as many bytes as a third of an AdamW step, and one
 * thread alone does not saturate the memory bus. */
typedef struct {
    float *dst;
    const float *src;
} copy_job;

static void copy_range(const void *ctx, size_t lo, size_t hi)
{
    const copy_job *job = ctx;
    memcpy(job->dst + lo, job->src + lo, (hi - lo) * sizeof(float));
}

static void copy(float *dst, const float *src, size_t n)
{
    copy_job job = {dst, src};
    dsc_parallel_ranges(n, copy_range, &job);
}

/* The end of an accumulated update: the sums start again from zero. */
static void clear_accumulation(dsc_optimizer *opt)
{
    if (opt->accumulation <= 1) return;
    for (int i = 0; i < opt->nparams; i++)
        memset(opt->params[i]->accum, 0, opt->params[i]->numel * sizeof(float));
    opt->micro = 0;
}

dsc_status dsc_optimizer_step(dsc_optimizer *opt)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (opt->ngroups == 0 || opt->nparams == 0)
        return dsc_fail(opt, DSC_STATE, "step: the optimizer has no parameters");
    if (opt->in_hook) return dsc_fail(opt, DSC_STATE, "step: called from a step hook");
    if (opt->swapped)
        return dsc_fail(opt, DSC_STATE, "step: averaged weights are swapped in "
                        "(dsc_optimizer_swap_average again to swap them back)");
    /* 0. Pre-step hooks, on calls that will update (wrap.c). */
    if (opt->nhooks && opt->micro + 1 >= opt->accumulation) {
        int refused = dsc_wrap_run_pre_hooks(opt);
        if (refused)
            return dsc_fail(opt, DSC_STATE, "step %lld: pre-step hook %d refused the step; "
                            "nothing was changed", (long long)opt->step, refused);
        dsc_clear_error(opt);
    }
    dsc_step_stats *st = &opt->stats;
    dsc_bf16_widen_grads(opt); /* bf16 parameters: float32 gradients (bf16.c) */
    st->applied = 0;
    st->skipped = 0;

    /* ------------------------------------------------------ validate */

    /* 1. This step's hyperparameters, checked by every group's family
     * before anything is written. */
    dsc_optimizer_resolve_hypers(opt);
    for (int gi = 0; gi < opt->ngroups; gi++) {
        const dsc_group *g = opt->groups[gi];
        if (g->nparams == 0 || !g->family->validate) continue;
        dsc_status s = g->family->validate(g);
        if (s != DSC_OK) return s;
    }

    /* 2. Accumulation. */
    const int accumulating = opt->accumulation > 1;
    if (accumulating) {
        if (opt->micro + 1 < opt->accumulation) {
            for (int i = 0; i < opt->nparams; i++) {
                dsc_param *p = opt->params[i];
                add_into(p->accum, p->grad_user, p->numel);
            }
            opt->micro++;
            st->step = opt->step;
            return DSC_OK;
        }
        float scale = 1.0f / (float)opt->accumulation;
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            finish_mean(p->work, p->accum, p->grad_user, scale, p->numel);
            p->grad = p->work;
        }
    } else {
        for (int i = 0; i < opt->nparams; i++) opt->params[i]->grad = opt->params[i]->grad_user;
    }

    /* 3. Scan: non-finite entries always (cheap); norms when asked for or
     * needed by norm clipping. */
    size_t bad = 0;
    const char *first_bad = NULL;
    int norms = opt->want_stats || opt->clip_kind == DSC_CLIP_NORM;
    double sumsq = 0, sumabs = 0, absmax = 0;
    if (opt->shard) { /* each rank scans its share; the sums are all-reduced (shard.c) */
        dsc_status s = dsc_shard_scan(opt, norms, &bad, &first_bad, &sumsq, &sumabs, &absmax);
        if (s != DSC_OK) return s;
    } else if (norms) { /* one pass: the scan counts the non-finite entries too */
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            dsc_grad_scan s = dsc_vec_scan(p->grad, p->numel);
            if (s.nonfinite && !first_bad) first_bad = p->name;
            bad += s.nonfinite;
            sumsq += s.sumsq;
            sumabs += s.sumabs;
            if (s.absmax > absmax) absmax = s.absmax;
        }
    } else {
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            size_t b = dsc_vec_count_nonfinite(p->grad, p->numel);
            if (b && !first_bad) first_bad = p->name;
            bad += b;
        }
    }
    st->grad_l2 = st->grad_l1 = st->grad_linf = NAN;
    if (norms) {
        st->grad_l2 = sqrt(sumsq);
        if (opt->want_stats) {
            st->grad_l1 = sumabs;
            st->grad_linf = absmax;
        }
    }
    st->nonfinite = bad;
    st->clip_scale = 1.0;
    st->step = opt->step;

    /* 4. Non-finite policy. */
    int zero_bad = 0;
    if (bad) {
        if (opt->nonfinite == DSC_NONFINITE_FAIL)
            return dsc_fail(opt, DSC_NONFINITE,
                            "step %lld: %zu non-finite gradient entries (first in \"%s\"); "
                            "nothing was changed", (long long)opt->step, bad, first_bad);
        if (opt->nonfinite == DSC_NONFINITE_SKIP) {
            /* A skipped update still ends its accumulation window. */
            if (accumulating) clear_accumulation(opt);
            st->skipped = 1;
            st->skipped_total++;
            st->update_l2 = opt->want_stats ? 0.0 : NAN;
            if (opt->nhooks) dsc_wrap_run_post_hooks(opt);
            return DSC_OK;
        }
        zero_bad = 1;
        st->zeroed_total += (int64_t)bad;
    }

    /* --------------------------------------------------------- write */

    /* 5. The accumulated sums are consumed (their mean is in p->work). */
    if (accumulating) clear_accumulation(opt);

    /* 6. Clipping (norms above are of the finite entries, as zeroing keeps them). */
    float scale = 1.0f, clamp = INFINITY;
    if (opt->clip_kind == DSC_CLIP_NORM && st->grad_l2 > opt->clip_limit) {
        /* torch.nn.utils.clip_grad_norm_: max_norm / (total_norm + 1e-6) */
        st->clip_scale = opt->clip_limit / (st->grad_l2 + 1e-6);
        scale = (float)st->clip_scale;
        st->clipped_total++;
    }
    if (opt->clip_kind == DSC_CLIP_VALUE) clamp = (float)opt->clip_limit;
    if (zero_bad || scale != 1.0f || clamp != INFINITY) {
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            transform(p->work, p->grad, p->numel, zero_bad, scale, clamp);
            p->grad = p->work;
        }
    }
    /* 6b. Group-level coordinate-wise clipping (transform.c), into p->work. */
    for (int gi = 0; gi < opt->ngroups; gi++)
        if (opt->groups[gi]->coord_clip > 0) dsc_coordclip_apply(opt->groups[gi], opt->reference);

    /* 6c. maximize for the families without their own key (wrap.c). */
    for (int gi = 0; gi < opt->ngroups; gi++) dsc_wrap_pre(opt->groups[gi]);

    /* 7. Families, each followed by its group's wrappers (Lookahead, EMA).
     * Every check ran in the first phase: a family step cannot fail. With
     * stats on, the parameters are copied first for the update norm. */
    dsc_bf16_before(opt); /* stochastic-rounding bf16 parameters, widened */
    if (opt->want_stats)
        for (int i = 0; i < opt->nparams; i++)
            copy(opt->params[i]->prev, opt->params[i]->data, opt->params[i]->numel);
    dsc_step_ctx ctx = {opt->reference, opt->step};
    if (opt->shard) { /* this rank's pieces, then the gather (shard.c) */
        dsc_status s = dsc_shard_step(opt, &ctx);
        if (s != DSC_OK) return s;
    }
    for (int gi = 0; gi < opt->ngroups && !opt->shard; gi++) {
        dsc_group *g = opt->groups[gi];
        if (g->nparams == 0) continue;
        dsc_wrap_before(g);
        dsc_status s = g->family->step(g, &ctx);
        if (s != DSC_OK) return s; /* a family bug: its check belongs in validate */
        dsc_wrap_post(g, opt->reference);
    }
    st->update_l2 = NAN;
    if (opt->want_stats) {
        double sumsq = 0;
        for (int i = 0; i < opt->nparams; i++)
            sumsq += dsc_vec_diff_sumsq(opt->params[i]->data, opt->params[i]->prev,
                                        opt->params[i]->numel);
        st->update_l2 = sqrt(sumsq);
    }
    dsc_bf16_after(opt); /* bf16 parameters: the results rounded back */
    int lr = opt->ngroups ? dsc_family_key(opt->groups[0]->family, "lr") : -1;
    st->lr = lr >= 0 ? opt->groups[0]->cur[lr] : 0.0;
    opt->step++;
    st->step = opt->step;
    st->applied = 1;
    if (opt->nhooks) dsc_wrap_run_post_hooks(opt);
    return DSC_OK;
}
