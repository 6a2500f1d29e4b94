/* bf16.c - bfloat16 parameters around float32 optimizers.
 *
 * A bf16 number is the top half of a float32 (sign, 8 exponent bits, 7
 * fraction bits), so widening is exact: shift left by 16. Narrowing loses
 * 16 fraction bits, and how matters:
 *
 *   round to nearest even (DSC_BF16_MASTER, torch's float -> bfloat16):
 *     add 0x7FFF plus the lowest kept bit, then truncate; NaN -> 0x7FC0.
 *     With a float32 master copy the small updates accumulate in the master
 *     and reach the bf16 weights once they add up to half a bf16 step.
 *   stochastic rounding (DSC_BF16_STOCHASTIC, no master copy):
 *     add 16 random bits, then truncate: x between neighbours lo < x < hi
 *     becomes hi with probability (x - lo) / (hi - lo), so E[result] = x and
 *     an update far below half a step still moves the weight on average
 *     (with round-to-nearest it would be lost every time).
 *
 * The random bits of element i of parameter j at update t are a hash
 * (dsc_mix64, the library generator's counter-based form, kernels/rng.h)
 * of (seed, t, j, i): no generator state, nothing to
 * checkpoint but the seed, and the same bits for any thread count. */
#include "internal.h"
#include "../kernels/bf16.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* ------------------------------------------------------------- kernels */

typedef struct {
    float *f;
    uint16_t *h;
    const uint16_t *ch;
    uint64_t key;
} bf_job;

DSC_WIDE_BW static void widen_range(const void *ctx, size_t lo, size_t hi)
{
    const bf_job *j = ctx;
    float *restrict f = j->f;
    const uint16_t *restrict h = j->ch;
    for (size_t i = lo; i < hi; i++) f[i] = dsc_bf16_widen(h[i]);
}

DSC_WIDE_BW static void rne_range(const void *ctx, size_t lo, size_t hi)
{
    const bf_job *j = ctx;
    const float *restrict f = j->f;
    uint16_t *restrict h = j->h;
    for (size_t i = lo; i < hi; i++) h[i] = dsc_bf16_round(f[i]);
}

/* One 64-bit hash gives the bits of 4 elements: elements 4q..4q+3 take the
 * four 16-bit quarters of dsc_mix64(key + q * DSC_RNG_GOLDEN), whatever the
 * range. The whole groups of 4 in the middle run as one loop over q, which
 * vectorizes (64-bit multiplies of AVX512DQ in the x86-64-v4 clone); a
 * partial group at either end goes element by element. */
static inline uint16_t sr_one(const float *f, size_t i, uint64_t key)
{
    uint64_t bits = dsc_mix64(key + (uint64_t)(i >> 2) * DSC_RNG_GOLDEN);
    return dsc_bf16_round_stochastic(f[i], (uint32_t)(bits >> (16 * (i & 3))) & 0xFFFFu);
}

DSC_WIDE_BW static void sr_range(const void *ctx, size_t lo, size_t hi)
{
    const bf_job *j = ctx;
    const float *restrict f = j->f;
    uint16_t *restrict h = j->h;
    const uint64_t key = j->key;
    size_t q0 = (lo + 3) >> 2, q1 = hi >> 2;
    if (q0 >= q1) {
        for (size_t i = lo; i < hi; i++) h[i] = sr_one(f, i, key);
        return;
    }
    for (size_t i = lo; i < 4 * q0; i++) h[i] = sr_one(f, i, key);
    for (size_t q = q0; q < q1; q++) {
        uint64_t bits = dsc_mix64(key + (uint64_t)q * DSC_RNG_GOLDEN);
        for (int k = 0; k < 4; k++)
            h[4 * q + k] = dsc_bf16_round_stochastic(f[4 * q + k],
                                                     (uint32_t)(bits >> (16 * k)) & 0xFFFFu);
    }
    for (size_t i = 4 * q1; i < hi; i++) h[i] = sr_one(f, i, key);
}

static void widen(float *f, const uint16_t *h, size_t n)
{
    bf_job j = {.f = f, .ch = h};
    dsc_parallel_ranges(n, widen_range, &j);
}

/* ------------------------------------------------------- driver stages */

void dsc_bf16_widen_grads(dsc_optimizer *opt)
{
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        if (p->bf16) widen(p->bf16_work, p->bf16_grad, p->numel);
    }
}

void dsc_bf16_before(dsc_optimizer *opt)
{
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        if (p->bf16 == 1 + DSC_BF16_STOCHASTIC) widen(p->data, p->bf16_data, p->numel);
    }
}

void dsc_bf16_after(dsc_optimizer *opt)
{
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        if (!p->bf16) continue;
        bf_job j = {.f = p->data, .h = p->bf16_data};
        if (p->bf16 == 1 + DSC_BF16_STOCHASTIC) {
            /* One key per (seed, update, parameter); the element index is
             * mixed in per element. */
            j.key = dsc_mix64(dsc_mix64(opt->seed ^ 0xD1B54A32D192ED03ull) + (uint64_t)opt->step) ^
                    dsc_mix64((uint64_t)i + 0x632BE59BD9B4E019ull);
            dsc_parallel_ranges(p->numel, sr_range, &j);
        } else {
            dsc_parallel_ranges(p->numel, rne_range, &j);
        }
    }
}

void dsc_bf16_publish(dsc_optimizer *opt)
{
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        if (!p->bf16) continue;
        bf_job j = {.f = p->data, .h = p->bf16_data};
        dsc_parallel_ranges(p->numel, rne_range, &j);
    }
}

/* After a load: the caller's bf16 values become the loaded masters, rounded
 * (as mixed-precision trainers copy their float32 groups back into the model
 * when they resume). Stochastic parameters have no master and keep theirs. */
void dsc_bf16_publish_masters(dsc_optimizer *opt)
{
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        if (p->bf16 != 1 + DSC_BF16_MASTER) continue;
        bf_job j = {.f = p->data, .h = p->bf16_data};
        dsc_parallel_ranges(p->numel, rne_range, &j);
    }
}

dsc_status dsc_optimizer_set_seed(dsc_optimizer *opt, uint64_t seed)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    opt->seed = seed;
    return DSC_OK;
}

/* ------------------------------------------------------ bf16 states */

dsc_dtype dsc_state_dtype(const dsc_group *g)
{
    return g->wrap.bf16_state != DSC_STATE_F32 ? DSC_DT_BF16 : DSC_DT_F32;
}

uint64_t dsc_state_key(const dsc_param *p, const dsc_step_ctx *ctx)
{
    /* Its own constants, so the states' bits are not the parameters'. */
    uint64_t key = dsc_mix64(dsc_mix64(ctx->seed ^ 0x5851F42D4C957F2Dull) + (uint64_t)ctx->step) ^
                   dsc_mix64((uint64_t)p->rng_index + 0x14057B7EF767814Full);
    /* Element i of a piece is element rng_offset + i of the whole tensor. */
    uint32_t lo = (uint32_t)key + (uint32_t)p->rng_offset * DSC_STATE_WEYL;
    return (key & 0xFFFFFFFF00000000ull) | lo;
}

dsc_state_buf dsc_state_slot(const dsc_group *g, dsc_param *p, int slot, const dsc_step_ctx *ctx)
{
    dsc_state_buf b = {.mode = g->wrap.bf16_state};
    if (b.mode == DSC_STATE_F32) b.f = p->slots[slot].data;
    else b.h = p->slots[slot].data;
    if (b.mode == DSC_STATE_BF16_SR) b.key = dsc_state_key(p, ctx);
    return b;
}

/* The chunk loops. Each vectorizes at full width on its own, where one loop
 * mixing 16- and 32-bit lanes left GCC at 8 lanes; the buffers stay in L1. */
static inline void widen_n(const uint16_t *restrict h, float *restrict f, size_t n)
{
    for (size_t i = 0; i < n; i++) f[i] = dsc_bf16_widen(h[i]);
}

/* n states whose first is element `first`; stochastic: half `half` of
 * stream `stream`. */
static inline void narrow_n(int mode, const float *restrict f, uint16_t *restrict h, size_t n,
                            uint64_t key, size_t first, int stream, int half)
{
    if (mode == DSC_STATE_BF16)
        for (size_t i = 0; i < n; i++) h[i] = dsc_bf16_round(f[i]);
    else
        for (size_t i = 0; i < n; i++)
            h[i] = dsc_bf16_round_stochastic(
                f[i], (dsc_state_bits(DSC_STATE_BF16_SR, key, first + i, stream) >> (16 * half)) &
                          0xFFFFu);
}

/* Two states sharing one hash per element (halves 0 and 1 of stream 0). */
static inline void narrow_pair(int mode, const float *restrict f0, uint16_t *restrict h0,
                               const float *restrict f1, uint16_t *restrict h1, size_t n,
                               uint64_t key, size_t first)
{
    if (mode == DSC_STATE_BF16) {
        narrow_n(mode, f0, h0, n, key, first, 0, 0);
        narrow_n(mode, f1, h1, n, key, first, 0, 1);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = dsc_state_bits(DSC_STATE_BF16_SR, key, first + i, 0);
        h0[i] = dsc_bf16_round_stochastic(f0[i], bits & 0xFFFFu);
        h1[i] = dsc_bf16_round_stochastic(f1[i], bits >> 16);
    }
}

DSC_WIDE_BW static void chunked_range(const void *ctx, size_t lo, size_t hi)
{
    const dsc_state_chunks *sc = ctx;
    float buf[3][DSC_STATE_CHUNK];
    float *const bufs[3] = {buf[0], buf[1], buf[2]};
    union {
        unsigned char bytes[DSC_STATE_JOB_MAX];
        max_align_t align;
    } sub;
    for (size_t c = lo; c < hi; c += DSC_STATE_CHUNK) {
        size_t n = hi - c < DSC_STATE_CHUNK ? hi - c : DSC_STATE_CHUNK;
        for (int k = 0; k < sc->nstates; k++) widen_n(sc->h[k] + c, buf[k], n);
        sc->rebase(sub.bytes, sc->job, c, bufs);
        sc->range(sub.bytes, 0, n);
        if (sc->nstates == 1) narrow_n(sc->mode, buf[0], sc->h[0] + c, n, sc->key, c, 0, 0);
        else narrow_pair(sc->mode, buf[0], sc->h[0] + c, buf[1], sc->h[1] + c, n, sc->key, c);
        if (sc->nstates == 3) narrow_n(sc->mode, buf[2], sc->h[2] + c, n, sc->key, c, 1, 0);
    }
}

void dsc_state_run_chunked(size_t n, const dsc_state_chunks *sc)
{
    dsc_parallel_ranges(n, chunked_range, sc);
}
