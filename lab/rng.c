/* rng.c - see rng.h. */
#include "rng.h"

#include <math.h>

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull /* odd; 2^64 / golden ratio */
#define TWO_PI 6.283185307179586

uint64_t lab_mix64(uint64_t z)
{
    z += GOLDEN_GAMMA;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t lab_splitmix64(uint64_t *state)
{
    uint64_t z = *state;
    *state = z + GOLDEN_GAMMA;
    return lab_mix64(z);
}

/* A double holds 53 bits exactly, so the top 53 bits of a draw scaled by
 * 2^-53 are exact and evenly spaced. */
double lab_uniform53(uint64_t *state) { return (double)(lab_splitmix64(state) >> 11) * 0x1.0p-53; }

double lab_normal(uint64_t *state)
{
    /* Above 2^52, k + 0.5 is not a double and rounds to even: u1 lies in
     * (0, 1], never 0, so the logarithm is finite. */
    double u1 = ((double)(lab_splitmix64(state) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = (double)(lab_splitmix64(state) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

void lab_fill_normal(float *x, size_t n, double std, uint64_t *state)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = ((double)(lab_splitmix64(state) >> 11) + 1.0) * 0x1.0p-53;
        double u2 = (double)(lab_splitmix64(state) >> 11) * 0x1.0p-53;
        double r = sqrt(-2.0 * log(u1)), a = TWO_PI * u2;
        x[i] = (float)(std * r * cos(a));
        if (i + 1 < n) x[i + 1] = (float)(std * r * sin(a));
    }
}

void lab_rng_seed(lab_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = lab_splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lab_rng_u64(lab_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

int lab_rng_below(lab_rng *r, int n)
{
    /* Reject the top sliver of 2^64 that n does not divide evenly. */
    uint64_t un = (uint64_t)n, lim = UINT64_MAX - UINT64_MAX % un;
    uint64_t v;
    do v = lab_rng_u64(r);
    while (v >= lim);
    return (int)(v % un);
}
