/*
 * rng.h - the library's one pseudo-random generator and its hashes. Not
 * installed; static inline only, so every layer (kernels, core, the
 * optimizer families) can use it without a cycle.
 *
 * Two ways to draw random bits, built on the same mixing function:
 *
 *   - a seeded stream, dsc_rng_next(&state): SplitMix64 (Steele, Lea and
 *     Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014).
 *     The state is one uint64_t; each call adds the odd constant
 *     DSC_RNG_GOLDEN (2^64 / golden ratio) and returns dsc_mix64 of the
 *     sum. Any seed is fine, 0 included, and the period is 2^64. It is
 *     small enough to live in a checkpointed slot (SPAM's masks) and good
 *     enough for masks, start vectors and rounding noise; it is not a
 *     cryptographic generator.
 *   - a counter-based stream, dsc_mix64(key + i * DSC_RNG_GOLDEN): element i
 *     of a stream gets its bits without visiting elements 0..i-1, so a loop
 *     split over threads draws the same bits whatever the split, and there
 *     is no state to save but the key (bf16 stochastic rounding). Element i
 *     is the (i + 1)-th output of the seeded stream started at
 *     key - DSC_RNG_GOLDEN: one generator, read two ways.
 *
 * dsc_mix64 is SplitMix64's output function (a bijection of 64-bit words
 * whose output bits each depend on every input bit); dsc_fnv1a64 hashes
 * names and shapes (FNV-1a, 64-bit) into seeds and fingerprints.
 *
 * Changing any constant here changes every stream: checkpointed SPAM masks,
 * bf16 rounding and the inverse-iteration start vectors all follow it. */
#ifndef DESCENT_KERNELS_RNG_H
#define DESCENT_KERNELS_RNG_H

#include <stdint.h>

#define DSC_RNG_GOLDEN 0x9E3779B97F4A7C15ull /* odd; 2^64 / golden ratio */

/* SplitMix64's output mix: a bijection of 64-bit words. */
static inline uint64_t dsc_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The next 64 random bits of the stream whose state is *state. */
static inline uint64_t dsc_rng_next(uint64_t *state)
{
    *state += DSC_RNG_GOLDEN;
    return dsc_mix64(*state);
}

/* A double uniform in [0, 1) from the top 53 bits of `bits` (every value a
 * multiple of 2^-53, exactly representable). */
static inline double dsc_rng_unit(uint64_t bits) { return (double)(bits >> 11) * 0x1p-53; }

/* FNV-1a, 64-bit: start from DSC_FNV64_OFFSET and fold in one value at a
 * time (a byte of a name, or a whole integer such as a dimension). */
#define DSC_FNV64_OFFSET 0xcbf29ce484222325ull
static inline uint64_t dsc_fnv1a64(uint64_t h, uint64_t value)
{
    return (h ^ value) * 0x100000001b3ull;
}

/* FNV-1a of the bytes of a NUL-terminated string, continuing from h. */
static inline uint64_t dsc_fnv1a64_str(uint64_t h, const char *s)
{
    for (; *s; s++) h = dsc_fnv1a64(h, (unsigned char)*s);
    return h;
}

#endif /* DESCENT_KERNELS_RNG_H */
