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
/* An element-wise step that updates x in place, run as
 * dsc_parallel_ranges(n, fn, ctx) would, that also returns what
 * dsc_vec_diff_sumsq(new x, old x) returns, bit for bit (same blocks, same
 * lanes), without a copy of x or a second pass over memory: the family's
 * fused(ctx, lo, hi, lane) does what fn(ctx, lo, hi) does and adds, for
 * each element lo + k in ascending k, (double)new - (double)old squared
 * into lane[k % DSC_DOT_LANES]; it is called one reduction block at a time,
 * with hi - lo a multiple of DSC_DOT_LANES (each block's last few elements
 * go through fn and a saved copy). fn's results must not depend on how
 * [0, n) is cut, as for dsc_parallel_ranges. */
typedef void (*dsc_range_diff_fn)(const void *ctx, size_t lo, size_t hi, double *lane);
double dsc_parallel_ranges_diff(size_t n, dsc_range_fn fn, dsc_range_diff_fn fused,
                                const void *ctx, float *x);
/* The loop of such a fused range, for a family whose step is written as an
 * element function: for e in [lo, hi), x[e] = NEW_X(e, old) with old the
 * value x[e] had, and (new - old)^2 added into lane[], DSC_DOT_LANES
 * elements at a time. NEW_X is a macro of the family (it may update the
 * element's states); x must be a restrict pointer of the caller. The group
 * keeps old and new values in small arrays, so that GCC vectorizes the
 * step over the group and keeps the lanes in registers (accumulating
 * inside the step's loop put them in memory, one store-to-load wait per
 * group). */
#define DSC_DIFF_GROUPS(lo, hi, x, lane, NEW_X)                                               \
    for (size_t dsc_i_ = (lo); dsc_i_ < (hi); dsc_i_ += DSC_DOT_LANES) {                      \
        float dsc_old_[DSC_DOT_LANES], dsc_new_[DSC_DOT_LANES];                               \
        for (int dsc_j_ = 0; dsc_j_ < DSC_DOT_LANES; dsc_j_++) {                              \
            size_t dsc_e_ = dsc_i_ + (size_t)dsc_j_;                                          \
            dsc_old_[dsc_j_] = (x)[dsc_e_];                                                   \
            dsc_new_[dsc_j_] = NEW_X(dsc_e_, dsc_old_[dsc_j_]);                               \
            (x)[dsc_e_] = dsc_new_[dsc_j_];                                                   \
        }                                                                                     \
        for (int dsc_j_ = 0; dsc_j_ < DSC_DOT_LANES; dsc_j_++) {                              \
            double dsc_d_ = (double)dsc_new_[dsc_j_] - (double)dsc_old_[dsc_j_];              \
            (lane)[dsc_j_] += dsc_d_ * dsc_d_;                                                \
        }                                                                                     \
    }
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
