/* matrix_common.h - what the matrix families (muon.c, auon.c, sinkgd.c,
 * lanton.c) share: tensors viewed as matrices, Muon's shape scale, torch's
 * lerp, Muon's momentum, and the sizing of the group workspace. Internal. */
#ifndef DESCENT_MATRIX_COMMON_H
#define DESCENT_MATRIX_COMMON_H

#include "../core/internal.h"
#include "../kernels/newton_schulz.h"

#include <math.h>
#include <stdio.h>

/* `batch` row-major slices of m x n. */
typedef struct {
    size_t batch, m, n;
} dsc_matview;

/* d0 x (d1 d2 ...): a conv filter O x I x kH x kW as O x (I kH kW). */
static inline dsc_matview dsc_matview_flat(const dsc_param *p)
{
    dsc_matview v = {1, (size_t)p->shape[0], p->numel / (size_t)p->shape[0]};
    return v;
}

/* Slices over the last two dims (batched Newton-Schulz, no reshape). */
static inline dsc_matview dsc_matview_last2(const dsc_param *p)
{
    size_t m = (size_t)p->shape[p->ndim - 2], n = (size_t)p->shape[p->ndim - 1];
    dsc_matview v = {p->numel / (m * n), m, n};
    return v;
}

/* Spec 1.3: sqrt(max(1, rows / cols)) of an (m x n) shape. */
static inline double dsc_shape_scale(size_t m, size_t n)
{
    double r = (double)m / (double)n;
    return sqrt(r > 1.0 ? r : 1.0);
}

/* torch.lerp on float32 (aten/src/ATen/native/Lerp.h): the formula changes
 * at weight 0.5 so that weight 1 returns `end` exactly. */
static inline float dsc_lerpf(float self, float end, float w)
{
    return w < 0.5f ? self + w * (end - self) : end - (end - self) * (1.0f - w);
}

/* Muon's momentum (muon.c), shared by muon, normuon and auon: element-wise
 * M <- lerp(M, G, 1 - mu), then U <- lerp(G, M, mu) when nesterov, else
 * U <- M; 1 - mu is rounded from double to float, as torch does. reference:
 * one thread, the same bits. */
void dsc_muon_momentum(float *M, const float *G, float *U, size_t n, float mu, int nesterov,
                       int reference);

/* Floats rounded up to a multiple of 16 (64-byte offsets in the workspace). */
static inline size_t dsc_align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* The i-th parameter of a group, from a const group (plan callbacks). */
static inline const dsc_param *dsc_group_param_const(const dsc_group *g, int i)
{
    return g->opt->params[g->params[i]];
}

/* Group workspace = the largest need (in floats) of its parameters: a
 * group steps its parameters one at a time, so one buffer serves them all. */
static inline void dsc_plan_scratch_max(const dsc_group *g, dsc_plan *plan,
                                        size_t (*need)(const dsc_param *p))
{
    size_t most = 0;
    for (int i = 0; i < g->nparams; i++) {
        size_t n = need(dsc_group_param_const(g, i));
        if (n > most) most = n;
    }
    plan->scratch_bytes = most * sizeof(float);
}

/* The usual rejection of vectors by a matrix-only family. */
static inline dsc_status dsc_reject_vector(const char *family, const dsc_param *p, char *err,
                                           size_t n)
{
    snprintf(err, n,
             "%s needs a matrix (ndim >= 2), got a 1-D tensor of %lld; route gains, biases "
             "and other vectors to a fallback group (e.g. \"adamw\", or "
             "dsc_optimizer_use_split)",
             family, (long long)p->shape[0]);
    return DSC_SHAPE;
}

#endif /* DESCENT_MATRIX_COMMON_H */
