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
#include "../kernels/rng.h"

#include <math.h>
#include <string.h>

static inline uint32_t bits_of(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline float float_of(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static inline uint16_t bf16_rne(float x)
{
    uint32_t b = bits_of(x);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0; /* NaN */
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}


/* x rounded with the 16 random bits r (the low half of x's bits). */
static inline uint16_t bf16_sr(float x, uint32_t r)
{
    uint32_t b = bits_of(x);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;
    if ((b & 0x7FFFFFFFu) == 0x7F800000u) return (uint16_t)(b >> 16); /* +-Inf stays */
    /* |x| grows by r in the low half: the magnitude rounds up with the right
     * probability for either sign (the sign bit is untouched: no carry
     * reaches it below Inf). */
    return (uint16_t)((b + r) >> 16);
}

/* ------------------------------------------------------------- kernels */

typedef struct {
    float *f;
    uint16_t *h;
    const uint16_t *ch;
    uint64_t key;
} bf_job;

static void widen_range(const void *ctx, size_t lo, size_t hi)
{
    const bf_job *j = ctx;
    float *restrict f = j->f;
    const uint16_t *restrict h = j->ch;
    for (size_t i = lo; i < hi; i++) f[i] = float_of((uint32_t)h[i] << 16);
}

static void rne_range(const void *ctx, size_t lo, size_t hi)
{
    const bf_job *j = ctx;
    const float *restrict f = j->f;
    uint16_t *restrict h = j->h;
    for (size_t i = lo; i < hi; i++) h[i] = bf16_rne(f[i]);
}

/* One 64-bit hash gives the bits of 4 elements: elements 4q..4q+3 take the
 * four 16-bit quarters of dsc_mix64(key + q * DSC_RNG_GOLDEN), whatever the range. */
static void sr_range(const void *ctx, size_t lo, size_t hi)
{
    const bf_job *j = ctx;
    const float *restrict f = j->f;
    uint16_t *restrict h = j->h;
    const uint64_t key = j->key;
    size_t i = lo;
    while (i < hi) {
        uint64_t q = i >> 2, bits = dsc_mix64(key + q * DSC_RNG_GOLDEN);
        size_t end = (q + 1) * 4 < hi ? (q + 1) * 4 : hi;
        for (; i < end; i++) h[i] = bf16_sr(f[i], (uint32_t)(bits >> (16 * (i & 3))) & 0xFFFFu);
    }
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
