/* rng.h - the random numbers of the lab and the command (tools/ sits on
 * the lab): one SplitMix64 stream for seeds, shuffles, batches and
 * initialisations, xoshiro256** for resampling, and Box-Muller normals.
 * The library has its own generator (src/kernels/rng.h), which nothing
 * above it may include; the two are the same SplitMix64, written for their
 * own layers.
 *
 * Every experiment's numbers depend on these streams bit for bit: the
 * results committed in docs/results, the reference tests (test_gpt2,
 * test_gpt2_study, test_stability_lab, the theory tests) and a rerun with
 * the same --seed. So where two parts of the lab drew normals differently
 * before they shared this file, both ways stay, as named variants
 * (lab_normal and lab_fill_normal below), rather than one changing the
 * other's numbers. */
#ifndef DESCENT_LAB_RNG_H
#define DESCENT_LAB_RNG_H

#include <stddef.h>
#include <stdint.h>

/* SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014): the state advances by the odd constant
 * 2^64 / golden ratio and the output is a bijective mix of it, so any seed,
 * 0 included, gives a full-period stream. */
uint64_t lab_splitmix64(uint64_t *state);
/* The output of one SplitMix64 step from state z, without a stream:
 * lab_mix64(z) == lab_splitmix64(&copy of z). A hash of 64-bit words (every
 * input bit reaches every output bit) for draws indexed by (seed, k, ...),
 * as the GPT-2 batch loader's random starts. */
uint64_t lab_mix64(uint64_t z);
/* Uniform in [0, 1): the top 53 bits of the next draw, times 2^-53. */
double lab_uniform53(uint64_t *state);

/* Box-Muller normals, two variants with different streams:
 *
 * lab_normal: one N(0, 1) from two draws, u1 = (k1 + 1/2) 2^-53 rounded
 *   to double, in (0, 1] (never 0, so log(u1) is finite), k1 and k2 the
 *   top 53 bits of the draws, u2 = k2 2^-53 in [0, 1), the value
 *   sqrt(-2 ln u1) cos(2 pi u2); the sine is not used. The Fashion-MNIST
 *   study's initialisation and `descent polar`'s Gaussian matrices.
 *
 * lab_fill_normal: n floats of N(0, std^2), each pair from one draw of
 *   (u1, u2) with u1 = (k1 + 1) 2^-53 in (0, 1], the pair being
 *   std r cos(a) and std r sin(a), r = sqrt(-2 ln u1), a = 2 pi u2, each
 *   computed as (std * r) * trig in double, then rounded to float; an odd
 *   n drops the last sine. GPT-2's initialisation (lab/gpt2/model.c). */
double lab_normal(uint64_t *state);
void lab_fill_normal(float *x, size_t n, double std, uint64_t *state);

/* xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom number
 * generators", 2021), seeded with four SplitMix64 outputs from `seed`: the
 * bootstrap resampling of lab/stats.c and the theory lab's streams
 * (lab/theory/theory.h). */
typedef struct {
    uint64_t s[4];
} lab_rng;
void lab_rng_seed(lab_rng *r, uint64_t seed);
uint64_t lab_rng_u64(lab_rng *r);
/* Uniform integer in [0, n), n >= 1, without modulo bias. */
int lab_rng_below(lab_rng *r, int n);

#endif
