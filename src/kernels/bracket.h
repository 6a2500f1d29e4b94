/* bracket.h - the pass of the one-pass rank select (src/core/transform.c,
 * coordinate clipping's threshold): over a span of x = g + wd*p, count the
 * values whose |x| lies above a bracket of bit patterns and gather those
 * inside it. Not installed. A plain loop and, where the CPU has AVX-512
 * (chosen at run time like the 8-bit kernels, dsc_bq_avx512()), a loop
 * that gathers sixteen lanes at a time with a compress; both give the same
 * counts and the same values in the same order. */
#ifndef DESCENT_KERNELS_BRACKET_H
#define DESCENT_KERNELS_BRACKET_H

#include <stddef.h>
#include <stdint.h>

/* Spans longer than this are the caller's to cut (out's room). */
#define DSC_BRACKET_SPAN 512
/* Room out needs beyond the values it receives (whole vectors are stored). */
#define DSC_BRACKET_SLACK 16

/* u = the bit pattern of |x|, x = g[i] + wd*p[i] (x = g[i] when p is NULL),
 * for i < n <= DSC_BRACKET_SPAN: counts[0] += #(u >= hi), counts[1] +=
 * #(u >= 0x7f800000: Inf or NaN), and every u with u - lo < width
 * (unsigned) goes to out, in index order; returns how many. out has room
 * for n + DSC_BRACKET_SLACK values. */
size_t dsc_bracket_span(const float *g, const float *p, float wd, size_t n, uint32_t lo,
                        uint32_t width, uint32_t hi, uint32_t *out, size_t counts[2]);
/* The plain loop alone (the tests' reference). */
size_t dsc_bracket_span_plain(const float *g, const float *p, float wd, size_t n, uint32_t lo,
                              uint32_t width, uint32_t hi, uint32_t *out, size_t counts[2]);

#endif /* DESCENT_KERNELS_BRACKET_H */
