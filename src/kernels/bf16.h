/*
 * bf16.h - bfloat16 conversions, shared by the bf16 parameters (core/bf16.c)
 * and the bf16 optimizer states (the element-wise families). Not installed;
 * static inline only.
 *
 * A bf16 number is the top half of a float32 (sign, 8 exponent bits, 7
 * fraction bits), so widening is exact: shift left by 16. Narrowing drops 16
 * fraction bits, two ways:
 *
 *   to nearest, ties to even (torch's float -> bfloat16 conversion): add
 *     0x7FFF plus the lowest kept bit, then truncate. NaN becomes the quiet
 *     NaN 0x7FC0; a value above the largest bf16 rounds to Inf as IEEE says.
 *   stochastically: add 16 random bits to the low half, then truncate. A
 *     value x between neighbours lo < x < hi becomes hi with probability
 *     (x - lo) / (hi - lo), so the rounded value is x on average. That
 *     matters for optimizer states: Adam's second moment decays by
 *     beta2 = 0.999 per step, a relative change of 1e-3, below half a bf16
 *     step (2^-9 = 2e-3), so rounding to nearest returns the old value and
 *     the moment stops decaying; stochastic rounding keeps the decay in
 *     expectation.
 *
 * The random bits come from the library's counter-based stream (rng.h):
 * element i of a stream keyed by `key` draws dsc_mix64(key + i * golden),
 * whatever thread handles it.
 */
#ifndef DESCENT_KERNELS_BF16_H
#define DESCENT_KERNELS_BF16_H

#include <stdint.h>
#include <string.h>

#include "rng.h"

static inline uint32_t dsc_float_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline float dsc_bits_float(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* bf16 -> float32, exact. */
static inline float dsc_bf16_widen(uint16_t h) { return dsc_bits_float((uint32_t)h << 16); }

/* float32 -> bf16, to nearest, ties to even. */
static inline uint16_t dsc_bf16_round(float x)
{
    uint32_t b = dsc_float_bits(x);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0; /* NaN */
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

/* float32 -> bf16 with the 16 random bits r (0 <= r < 2^16). */
static inline uint16_t dsc_bf16_round_stochastic(float x, uint32_t r)
{
    uint32_t b = dsc_float_bits(x);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;
    if ((b & 0x7FFFFFFFu) == 0x7F800000u) return (uint16_t)(b >> 16); /* +-Inf stays */
    /* The magnitude grows by r in its low half, so it rounds up with the
     * right probability for either sign; no carry reaches the sign bit
     * below Inf (the largest finite value may round up to Inf, as an
     * overflowing update would). */
    return (uint16_t)((b + r) >> 16);
}

/* How an element-wise family stores a float32-valued state slot: as float32
 * or as bf16, rounded to nearest or stochastically (the group key
 * bf16_state = 0, 1, 2). */
enum { DSC_STATE_F32 = 0, DSC_STATE_BF16 = 1, DSC_STATE_BF16_SR = 2 };

/* Element i of a state buffer that is float32 (`f`) or bf16 (`h`), as
 * float32. `mode` is a compile-time constant in the kernels' bodies, so each
 * storage has its own loop. */
static inline float dsc_state_load(int mode, const float *f, const uint16_t *h, size_t i)
{
    return mode == DSC_STATE_F32 ? f[i] : dsc_bf16_widen(h[i]);
}

/* Store x as element i; with stochastic rounding the state's quarter
 * `quarter` (0..3) of the element's 64 random bits `bits` is used, so up
 * to four states of one element share one hash. */
static inline void dsc_state_store(int mode, float *f, uint16_t *h, size_t i, float x,
                                   uint64_t bits, int quarter)
{
    if (mode == DSC_STATE_F32) f[i] = x;
    else if (mode == DSC_STATE_BF16) h[i] = dsc_bf16_round(x);
    else h[i] = dsc_bf16_round_stochastic(x, (uint32_t)(bits >> (16 * quarter)) & 0xFFFFu);
}

/* The 64 random bits of element i of the stream keyed by `key` (zero when
 * no state is rounded stochastically, so the hash is not computed). */
static inline uint64_t dsc_state_bits(int mode, uint64_t key, size_t i)
{
    return mode == DSC_STATE_BF16_SR ? dsc_mix64(key + (uint64_t)i * DSC_RNG_GOLDEN) : 0;
}

#endif /* DESCENT_KERNELS_BF16_H */
