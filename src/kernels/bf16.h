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
 * The random bits of the bf16 parameters come from the library's
 * counter-based stream (rng.h): element i of a stream keyed by `key` draws
 * dsc_mix64(key + i * golden), whatever thread handles it. The states'
 * rounding runs inside the optimizers' vector loops, where a 64-bit
 * multiply is slow (AVX2 and plain AVX-512F have none), so it draws 32 bits
 * per element from a 32-bit hash of a 32-bit Weyl sequence instead: the
 * "lowbias32" integer hash (two multiply-xorshift rounds; constants from
 * Chris Wellons' hash search, whose bias he measured at about 0.17, close to
 * the best two-round hashes known). Its two 16-bit halves round two states.
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

/* One state slot of a parameter as a family's step sees it: float32 (f) or
 * bf16 (h) as mode says, and the key of its stochastic rounding. */
typedef struct {
    float *f;
    uint16_t *h;
    int mode;
    uint64_t key;
} dsc_state_buf;

/* Element i of a state buffer that is float32 (`f`) or bf16 (`h`), as
 * float32. `mode` is a compile-time constant in the kernels' bodies, so each
 * storage has its own loop. */
static inline float dsc_state_load(int mode, const float *f, const uint16_t *h, size_t i)
{
    return mode == DSC_STATE_F32 ? f[i] : dsc_bf16_widen(h[i]);
}

/* Store x as element i; with stochastic rounding the state's half `half`
 * (0 low, 1 high) of the element's 32 random bits `bits` is used, so two
 * states of one element share one hash. */
static inline void dsc_state_store(int mode, float *f, uint16_t *h, size_t i, float x,
                                   uint32_t bits, int half)
{
    if (mode == DSC_STATE_F32) f[i] = x;
    else if (mode == DSC_STATE_BF16) h[i] = dsc_bf16_round(x);
    else h[i] = dsc_bf16_round_stochastic(x, (bits >> (16 * half)) & 0xFFFFu);
}

/* lowbias32: a bijection of 32-bit words whose output bits each depend on
 * every input bit. */
static inline uint32_t dsc_hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/* The step of the Weyl sequence: odd, 2^32 / golden ratio. Element i's
 * input is i * DSC_STATE_WEYL + the key's low half (mod 2^32), so element
 * o + i of a stream is element i of the stream whose key's low half is
 * advanced by o * DSC_STATE_WEYL: a shard's piece starting at element o
 * draws the whole tensor's bits (dsc_state_key). The sequence repeats after
 * 2^32 elements of one tensor in one update. */
#define DSC_STATE_WEYL 0x9E3779B9u

/* The 32 random bits of element i of stream `stream` (0, 1: two per state
 * pair) under the 64-bit key of a parameter's update (dsc_state_key); zero
 * when no state is rounded stochastically, so nothing is computed. */
static inline uint32_t dsc_state_bits(int mode, uint64_t key, size_t i, int stream)
{
    if (mode != DSC_STATE_BF16_SR) return 0;
    uint32_t lo = (uint32_t)key + (uint32_t)stream * 0x85EBCA6Bu, hi = (uint32_t)(key >> 32);
    return dsc_hash32(((uint32_t)i * DSC_STATE_WEYL + lo) ^ hi);
}

#endif /* DESCENT_KERNELS_BF16_H */
