/* schedule.c - multipliers on a hyperparameter as a function of the step.
 *
 * s counts applied updates (0 at the first update). Linear warmup uses
 * (s+1)/warmup so the first update is never taken at zero rate (the llm.c
 * convention); cosine and WSD decay to min_ratio at s = total and stay
 * there. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dsc_schedule dsc_schedule_default(void)
{
    dsc_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = DSC_SCHED_CONSTANT;
    s.gamma = 0.1;
    s.step_size = 1;
    return s;
}

double dsc_schedule_factor(const dsc_schedule *s, int64_t step)
{
    if (!s) return 1.0;
    if (step < 0) step = 0;
    if (s->kind != DSC_SCHED_STEP && s->kind != DSC_SCHED_CONSTANT && step < s->warmup)
        return (double)(step + 1) / (double)s->warmup;
    switch (s->kind) {
    case DSC_SCHED_CONSTANT:
    case DSC_SCHED_LINEAR_WARMUP:
        return 1.0;
    case DSC_SCHED_COSINE: {
        double span = (double)(s->total - s->warmup);
        double progress = span > 0 ? (double)(step - s->warmup) / span : 1.0;
        if (progress > 1.0) progress = 1.0;
        return s->min_ratio + (1.0 - s->min_ratio) * 0.5 * (1.0 + cos(M_PI * progress));
    }
    case DSC_SCHED_WSD: {
        int64_t decay_start = s->total - s->decay;
        if (step < decay_start) return 1.0;
        double progress = s->decay > 0 ? (double)(step - decay_start) / (double)s->decay : 1.0;
        if (progress > 1.0) progress = 1.0;
        return 1.0 - (1.0 - s->min_ratio) * progress;
    }
    case DSC_SCHED_STEP:
        return pow(s->gamma, (double)(step / s->step_size));
    }
    return 1.0;
}

dsc_status dsc_schedule_validate(const dsc_schedule *s, char *err, size_t errlen)
{
    char dummy[8];
    if (!err) { err = dummy; errlen = sizeof dummy; }
    if (!s) { snprintf(err, errlen, "schedule is NULL"); return DSC_NULL_POINTER; }
    if ((int)s->kind < DSC_SCHED_CONSTANT || s->kind > DSC_SCHED_STEP) {
        snprintf(err, errlen, "schedule: unknown kind %d", (int)s->kind);
        return DSC_OUT_OF_RANGE;
    }
    if (s->warmup < 0) { snprintf(err, errlen, "schedule: warmup < 0"); return DSC_OUT_OF_RANGE; }
    if (s->kind == DSC_SCHED_LINEAR_WARMUP && s->warmup < 1) {
        snprintf(err, errlen, "schedule linear_warmup: warmup must be >= 1");
        return DSC_OUT_OF_RANGE;
    }
    if (s->kind == DSC_SCHED_COSINE || s->kind == DSC_SCHED_WSD) {
        if (s->total <= s->warmup) {
            snprintf(err, errlen, "schedule: total (%lld) must exceed warmup (%lld)",
                     (long long)s->total, (long long)s->warmup);
            return DSC_OUT_OF_RANGE;
        }
        if (!(s->min_ratio >= 0.0 && s->min_ratio <= 1.0)) {
            snprintf(err, errlen, "schedule: min_ratio = %g is out of range [0, 1]", s->min_ratio);
            return DSC_OUT_OF_RANGE;
        }
    }
    if (s->kind == DSC_SCHED_WSD && (s->decay < 0 || s->decay > s->total - s->warmup)) {
        snprintf(err, errlen, "schedule wsd: decay (%lld) must be in [0, total - warmup]",
                 (long long)s->decay);
        return DSC_OUT_OF_RANGE;
    }
    if (s->kind == DSC_SCHED_STEP) {
        if (s->step_size < 1) {
            snprintf(err, errlen, "schedule step: step_size must be >= 1");
            return DSC_OUT_OF_RANGE;
        }
        if (!(s->gamma > 0.0 && s->gamma <= 1.0)) {
            snprintf(err, errlen, "schedule step: gamma = %g is out of range (0, 1]", s->gamma);
            return DSC_OUT_OF_RANGE;
        }
    }
    return DSC_OK;
}

dsc_status dsc_schedule_parse(const char *text, dsc_schedule *out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err) { err = dummy; errlen = sizeof dummy; }
    if (!text || !out) { snprintf(err, errlen, "schedule text is NULL"); return DSC_NULL_POINTER; }
    static const struct { const char *name; dsc_schedule_kind kind; } kinds[] = {
        {"constant", DSC_SCHED_CONSTANT}, {"linear_warmup", DSC_SCHED_LINEAR_WARMUP},
        {"warmup", DSC_SCHED_LINEAR_WARMUP}, {"cosine", DSC_SCHED_COSINE},
        {"wsd", DSC_SCHED_WSD}, {"step", DSC_SCHED_STEP},
    };
    dsc_spec_tokens t;
    dsc_status st = dsc_spec_tokenize("schedule", text, &t, err, errlen);
    if (st != DSC_OK) return st;
    dsc_schedule s = dsc_schedule_default();
    int found = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].name, t.name)) {
            s.kind = kinds[i].kind;
            found = 1;
        }
    if (!found) {
        snprintf(err, errlen, "unknown schedule \"%s\" (known: constant, linear_warmup, "
                 "cosine, wsd, step)", t.name);
        return DSC_UNKNOWN_NAME;
    }
    /* Step counts are integers in [0, 2^53]: every one of them is exact in
     * a double, and the range is checked before converting (a double
     * outside int64_t's range converted to int64_t is undefined behaviour). */
    const double max_steps = 9007199254740992.0;
    for (int j = 0; j < t.nitems; j++) {
        const dsc_spec_item *it = &t.item[j];
        int64_t *count = !strcmp(it->key, "warmup")      ? &s.warmup
                         : !strcmp(it->key, "total")     ? &s.total
                         : !strcmp(it->key, "decay")     ? &s.decay
                         : !strcmp(it->key, "step_size") ? &s.step_size
                                                         : NULL;
        if (count) {
            st = dsc_spec_int(&t, it, "schedule", 0, max_steps, count, err, errlen);
            if (st != DSC_OK) return st;
        } else if (!strcmp(it->key, "gamma")) {
            s.gamma = it->value;
        } else if (!strcmp(it->key, "min_ratio")) {
            s.min_ratio = it->value;
        } else {
            snprintf(err, errlen, "schedule: unknown key \"%s\" at character %zu (keys: warmup, "
                     "total, decay, step_size, gamma, min_ratio)", it->key, it->key_at + 1);
            return DSC_UNKNOWN_KEY;
        }
    }
    st = dsc_schedule_validate(&s, err, errlen);
    if (st == DSC_OK) *out = s;
    return st;
}

dsc_status dsc_optimizer_set_schedule(dsc_optimizer *opt, const char *group, const char *key,
                                      const dsc_schedule *s)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (!key) return dsc_fail(opt, DSC_NULL_POINTER, "set_schedule: key is NULL");
    char err[DSC_ERR_MAX];
    dsc_status st = dsc_schedule_validate(s, err, sizeof err);
    if (st != DSC_OK) return dsc_fail(opt, st, "set_schedule: %s", err);
    int matched = 0;
    for (int i = 0; i < opt->ngroups; i++) {
        dsc_group *g = opt->groups[i];
        if (group && strcmp(g->name, group)) continue;
        int k = dsc_family_key(g->family, key);
        if (k < 0) {
            if (group)
                return dsc_fail(opt, DSC_UNKNOWN_KEY, "set_schedule: %s has no key \"%s\"",
                                g->family->info.name, key);
            continue;
        }
        if (g->family->info.keys[k].type != DSC_KEY_FLOAT)
            return dsc_fail(opt, DSC_INVALID_ARGUMENT,
                            "set_schedule: %s.%s is not a float hyperparameter",
                            g->family->info.name, key);
        matched = 1;
    }
    if (!matched)
        return dsc_fail(opt, DSC_UNKNOWN_NAME, "set_schedule: no group %s%s%s has key \"%s\"",
                        group ? "\"" : "", group ? group : "", group ? "\"" : "", key);
    for (int i = 0; i < opt->ngroups; i++) {
        dsc_group *g = opt->groups[i];
        if (group && strcmp(g->name, group)) continue;
        int k = dsc_family_key(g->family, key);
        if (k < 0) continue;
        g->sched[k] = *s;
        g->sched_mask |= 1ull << k;
    }
    return DSC_OK;
}
