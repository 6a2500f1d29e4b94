/*
 * vec.h - reductions over float vectors with a fixed summation order
 * (vec.c). Not installed.
 *
 * Every reduction cuts the vector into blocks of DSC_RED_BLOCK elements,
 * sums each block serially in double and adds the block sums in index
 * order: threads only decide who computes which block, so the result has
 * the same bits for any thread count.
 */
#ifndef DESCENT_KERNELS_VEC_H
#define DESCENT_KERNELS_VEC_H

#include "parallel.h"

#include <stddef.h>

#define DSC_RED_BLOCK 4096
/* The blocking itself: block(ctx, start, len) sums one block serially;
 * the block sums are added in index order. parallel 0 keeps it serial. */
typedef double (*dsc_block_sum_fn)(const void *ctx, size_t start, size_t len);
double dsc_reduce_blocks(size_t n, int parallel, dsc_block_sum_fn block, const void *ctx);
double dsc_vec_sumsq(const float *x, size_t n);
/* The block sum itself: DSC_DOT_LANES interleaved double lanes added in lane
 * order, then the tail (see vec.c); and the whole blocked dot run serially,
 * bit for bit what dsc_vec_dot gives, for reference paths and per-row sums. */
#define DSC_DOT_LANES 8
double dsc_dot_serial(const float *x, const float *y, size_t n);
double dsc_vec_dot_serial(const float *x, const float *y, size_t n);
double dsc_vec_dot(const float *x, const float *y, size_t n);
double dsc_vec_sumabs(const float *x, size_t n);
/* Sum of (x - y)^2 in double, fixed blocking, lanes as dsc_dot_serial (the
 * update norm: x the parameters after a step, y a copy from before). */
double dsc_vec_diff_sumsq(const float *x, const float *y, size_t n);
/* An element-wise kernel that updates x in place, run as
 * dsc_parallel_ranges(n, fn, ctx) would, but one reduction block at a time
 * and within it in pieces of 512 elements: each piece of x is copied to the
 * stack, fn runs on the piece, and its (new - old)^2 goes into the block's
 * lanes while both are in cache. Returns what
 * dsc_vec_diff_sumsq(new x, old x) returns, bit for bit (same blocks, same
 * lanes), without the full copy of x and the second pass over memory that
 * computing it afterwards costs. fn's results must not depend on how
 * [0, n) is cut, as for dsc_parallel_ranges. */
double dsc_parallel_ranges_diff(size_t n, dsc_range_fn fn, const void *ctx, float *x);
float dsc_vec_absmax(const float *x, size_t n);
/* One pass: sum of squares, sum of |x|, max |x| over finite entries and the
 * count of non-finite ones. */
typedef struct {
    double sumsq, sumabs, absmax;
    size_t nonfinite;
} dsc_grad_scan;
dsc_grad_scan dsc_vec_scan(const float *x, size_t n);
/* Entries that are NaN or Inf (a cheap integer pass). */
size_t dsc_vec_count_nonfinite(const float *x, size_t n);

static inline float dsc_signf(float x) { return (float)((x > 0.0f) - (x < 0.0f)); }

#endif /* DESCENT_KERNELS_VEC_H */
