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
 *     3. the gradient-transform stage's decision (transform.c): one scan
 *        of every gradient (non-finite count, norms), then the non-finite
 *        policy (fail; skip, a successful call that updates nothing; or
 *        zero) and the clipping factor or bound; it fills the step stats;
 *   write (nothing below can fail)
 *     5. the accumulation buffers are cleared;
 *     6. the transform stage applies its plan into p->work: zeroing,
 *        clipping by global norm or by value, coordinate clipping, maximize;
 *     7. each group's family steps its parameters, then its wrappers
 *        (Lookahead, EMA) run; the step count advances; post-step hooks.
 * A family reads p->grad, which is the caller's buffer unless a transform
 * produced a copy in p->work. All buffers exist before the first step. */
#include "internal.h"

#include <math.h>
#include <string.h>

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

/* accum += g, and out = (acc + g) * scale (acc left as it was: it is cleared
 * once the step can no longer fail), over per-thread ranges. */
typedef struct {
    float *out;
    const float *acc, *g;
    float scale;
} accum_job;

DSC_WIDE static void add_into_range(const void *ctx, size_t lo, size_t hi)
{
    const accum_job *job = ctx;
    float *restrict acc = job->out;
    const float *restrict g = job->g;
    for (size_t i = lo; i < hi; i++) acc[i] += g[i];
}

static void add_into(float *acc, const float *g, size_t n)
{
    accum_job job = {acc, NULL, g, 1.0f};
    dsc_parallel_ranges(n, add_into_range, &job);
}

DSC_WIDE static void finish_mean_range(const void *ctx, size_t lo, size_t hi)
{
    const accum_job *job = ctx;
    float *restrict out = job->out;
    const float *restrict acc = job->acc, *restrict g = job->g;
    const float scale = job->scale;
    for (size_t i = lo; i < hi; i++) out[i] = (acc[i] + g[i]) * scale;
}

static void finish_mean(float *out, const float *acc, const float *g, float scale, size_t n)
{
    accum_job job = {out, acc, g, scale};
    dsc_parallel_ranges(n, finish_mean_range, &job);
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
    if (opt->shard) { /* the pieces hold the state (shard.c) */
        dsc_status s = dsc_shard_validate(opt);
        if (s != DSC_OK) return s;
    }
    /* The copies for the update norm exist (only use_reference, which cannot
     * report it, may have failed to allocate one). */
    for (int i = 0; i < opt->nparams; i++)
        if (dsc_param_needs_prev(opt, opt->params[i]) && !opt->params[i]->prev)
            return dsc_fail(opt, DSC_NO_MEMORY, "step: no memory was left for the copy of "
                            "parameter \"%s\" that the update norm needs (stats on, "
                            "reference loops); call dsc_optimizer_set_stats again",
                            opt->params[i]->name);
    for (int gi = 0; gi < opt->ngroups && !opt->shard; gi++) {
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

    /* 3-4. The gradient-transform stage decides (transform.c): scan, then
     * fail, skip, or go on with a plan (zeroing, norm factor, value bound).
     * It fills the step stats. */
    dsc_grad_plan plan;
    dsc_status ts = dsc_transform_decide(opt, &plan);
    if (ts != DSC_OK) return ts;
    if (plan.skip) {
        /* A skipped update still ends its accumulation window. */
        if (accumulating) clear_accumulation(opt);
        if (opt->nhooks) dsc_wrap_run_post_hooks(opt);
        return DSC_OK;
    }

    /* --------------------------------------------------------- write */

    /* 5. The accumulated sums are consumed (their mean is in p->work). */
    if (accumulating) clear_accumulation(opt);

    /* 6. The plan carried out (transform.c): zeroing, clipping by norm or
     * value, coordinate clipping and maximize, into p->work. */
    dsc_transform_apply(opt, &plan);

    /* 7. Families, each followed by its group's wrappers (Lookahead, EMA).
     * Every check ran in the first phase: a family step cannot fail. With
     * stats on, the parameters of groups that do not measure their own
     * update are copied first for the update norm. */
    dsc_bf16_before(opt); /* stochastic-rounding bf16 parameters, widened */
    if (opt->want_stats)
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            if (!dsc_group_tracks_update(opt, opt->groups[p->group]))
                copy(p->prev, p->data, p->numel);
        }
    dsc_step_ctx ctx = {opt->reference, opt->step, opt->seed, 0};
    if (opt->shard) { /* this rank's pieces, then the gather (shard.c) */
        dsc_status s = dsc_shard_step(opt, &ctx);
        if (s != DSC_OK) return s;
    }
    for (int gi = 0; gi < opt->ngroups && !opt->shard; gi++) {
        dsc_group *g = opt->groups[gi];
        if (g->nparams == 0) continue;
        dsc_wrap_before(g);
        ctx.track_update = dsc_group_tracks_update(opt, g);
        dsc_status s = g->family->step(g, &ctx);
        if (s != DSC_OK) return s; /* a family bug: its check belongs in validate */
        dsc_wrap_post(g, opt->reference);
    }
    st->update_l2 = NAN;
    if (opt->want_stats) {
        double sumsq = 0;
        for (int i = 0; i < opt->nparams; i++) {
            const dsc_param *p = opt->params[i];
            sumsq += dsc_group_tracks_update(opt, opt->groups[p->group])
                         ? p->update_sumsq
                         : dsc_vec_diff_sumsq(p->data, p->prev, p->numel);
        }
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
