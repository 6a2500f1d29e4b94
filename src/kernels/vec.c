/* vec.c - reductions with a fixed summation order (vec.h).
 *
 * Every reduction cuts the vector into blocks of DSC_RED_BLOCK elements,
 * sums each block serially in double, and adds the block sums in index
 * order. Threads only decide who computes which block, so the result has
 * the same bits for 1, 2 or 64 threads. */
#include "vec.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Block sums land in a stack array; longer vectors are reduced in chunks of
 * PARTIALS blocks so no allocation is needed. The partials are added in
 * block order across chunks, so the chunk length does not change the bits,
 * only how many parallel regions a long vector costs (one per chunk: 2048
 * blocks are 8M elements, 16 KB of doubles; the gradient scan keeps 4
 * numbers per block, so it takes chunks of SCAN_PARTIALS). */
#define PARTIALS 2048
#define SCAN_PARTIALS 512

typedef struct {
    double a, b, c;
    size_t n;
} quad;

/* The exact definition: finite entries only, sums in double, in order. */
static quad scan_block_plain(const float *x, size_t n)
{
    quad q = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (isfinite(v)) {
            double d = (double)v;
            q.a += d * d;
            q.b += fabs(d);
            if (fabs(d) > q.c) q.c = fabs(d);
        } else {
            q.n++;
        }
    }
    return q;
}

/* The common case, vectorized: SCAN_LANES independent double accumulators
 * (a fixed order, so the bits do not depend on threads), a branch-free
 * count of non-finite entries by their exponent bits, and a block with any
 * such entry recomputed by the plain loop. The gradient scan runs before
 * every step, so it has to keep up with memory bandwidth: the maximum is
 * taken on the bit patterns of |x| (for finite floats an integer max, which
 * vectorizes; a float `a > m ? a : m` compiles to a scalar compare and move
 * per element, which made this scan slower than the whole AdamW step that
 * follows it), and the function is built for AVX2 as well (DSC_WIDE). The
 * double sums are the same operations in the same order at any width. */
#define SCAN_LANES 8

DSC_WIDE static quad scan_block(const float *restrict x, size_t n)
{
    double sq[SCAN_LANES] = {0}, ab[SCAN_LANES] = {0};
    uint32_t mx[SCAN_LANES] = {0};
    uint32_t bad[SCAN_LANES] = {0};
    size_t i = 0;
    for (; i + SCAN_LANES <= n; i += SCAN_LANES) {
        for (int j = 0; j < SCAN_LANES; j++) {
            float v = x[i + (size_t)j];
            uint32_t u;
            memcpy(&u, &v, sizeof u);
            bad[j] += (u & 0x7f800000u) == 0x7f800000u;
            uint32_t ua = u & 0x7fffffffu;
            mx[j] = ua > mx[j] ? ua : mx[j];
            double d = (double)fabsf(v);
            sq[j] += d * d;
            ab[j] += d;
        }
    }
    uint32_t nbad = 0;
    for (size_t k = i; k < n; k++) {
        uint32_t u;
        memcpy(&u, &x[k], sizeof u);
        nbad += (u & 0x7f800000u) == 0x7f800000u;
    }
    for (int j = 0; j < SCAN_LANES; j++) nbad += bad[j];
    if (nbad) return scan_block_plain(x, n);
    quad q = {0, 0, 0, 0};
    for (int j = 0; j < SCAN_LANES; j++) {
        float m;
        memcpy(&m, &mx[j], sizeof m); /* every entry finite: the bits of max |x| */
        q.a += sq[j];
        q.b += ab[j];
        if (m > q.c) q.c = m;
    }
    for (; i < n; i++) {
        double d = fabs((double)x[i]);
        q.a += d * d;
        q.b += d;
        if (d > q.c) q.c = d;
    }
    return q;
}

static void scan_blocks(const float *x, size_t n, size_t b0, long nb, quad *part)
{
    for (long b = 0; b < nb; b++) {
        size_t start = (b0 + (size_t)b) * DSC_RED_BLOCK;
        size_t len = n - start < DSC_RED_BLOCK ? n - start : DSC_RED_BLOCK;
        part[b] = scan_block(x + start, len);
    }
}

dsc_grad_scan dsc_vec_scan(const float *x, size_t n)
{
    dsc_grad_scan out = {0, 0, 0, 0};
    size_t nblocks = (n + DSC_RED_BLOCK - 1) / DSC_RED_BLOCK;
    const int par = n >= DSC_PAR_MIN && dsc_threads() > 1; /* no region for small work */
    quad part[SCAN_PARTIALS];
    for (size_t b0 = 0; b0 < nblocks; b0 += SCAN_PARTIALS) {
        long nb = (long)(nblocks - b0 < SCAN_PARTIALS ? nblocks - b0 : SCAN_PARTIALS);
        if (par) {
#pragma omp parallel for schedule(static) num_threads(dsc_threads())
            for (long b = 0; b < nb; b++) scan_blocks(x, n, b0 + (size_t)b, 1, &part[b]);
        } else {
            scan_blocks(x, n, b0, nb, part);
        }
        for (long b = 0; b < nb; b++) {
            out.sumsq += part[b].a;
            out.sumabs += part[b].b;
            if (part[b].c > out.absmax) out.absmax = part[b].c;
            out.nonfinite += part[b].n;
        }
    }
    return out;
}

/* Exponent bits all ones: Inf or NaN. Integer work only, so it vectorizes
 * and runs at memory speed; an integer sum has no order. */
DSC_WIDE static size_t count_nonfinite_span(const float *restrict x, size_t n)
{
    /* A 32-bit count per piece of 2^20 elements keeps every lane 32 bits
     * wide (a size_t count made GCC mix 32- and 64-bit lanes at 256 bits). */
    size_t bad = 0;
    for (size_t i0 = 0; i0 < n; i0 += (size_t)1 << 20) {
        size_t len = n - i0 < ((size_t)1 << 20) ? n - i0 : (size_t)1 << 20;
        const float *restrict xi = x + i0;
        uint32_t piece = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t u;
            memcpy(&u, &xi[i], sizeof u);
            piece += (u & 0x7f800000u) == 0x7f800000u;
        }
        bad += piece;
    }
    return bad;
}

size_t dsc_vec_count_nonfinite(const float *x, size_t n)
{
    if (n < DSC_PAR_MIN || dsc_threads() == 1) return count_nonfinite_span(x, n);
    const size_t span = 1u << 16;
    long nspans = (long)((n + span - 1) / span);
    size_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) num_threads(dsc_threads())
    for (long b = 0; b < nspans; b++) {
        size_t start = (size_t)b * span, len = n - start < span ? n - start : span;
        bad += count_nonfinite_span(x + start, len);
    }
    return bad;
}

double dsc_reduce_blocks(size_t n, int parallel, dsc_block_sum_fn block, const void *ctx)
{
    size_t nblocks = (n + DSC_RED_BLOCK - 1) / DSC_RED_BLOCK;
    double part[PARTIALS], total = 0.0;
    if (!parallel || n < DSC_PAR_MIN || dsc_threads() == 1) {
        /* Serial callers (reference paths, per-row sums inside a parallel
         * loop) must not open a parallel region per call: even a region of
         * one thread costs a fork and a barrier in the OpenMP runtime. */
        for (size_t b = 0; b < nblocks; b++) {
            size_t start = b * DSC_RED_BLOCK;
            size_t len = n - start < DSC_RED_BLOCK ? n - start : DSC_RED_BLOCK;
            total += block(ctx, start, len);
        }
        return total;
    }
    for (size_t b0 = 0; b0 < nblocks; b0 += PARTIALS) {
        long nb = (long)(nblocks - b0 < PARTIALS ? nblocks - b0 : PARTIALS);
#pragma omp parallel for schedule(static) num_threads(dsc_threads())
        for (long b = 0; b < nb; b++) {
            size_t start = (b0 + (size_t)b) * DSC_RED_BLOCK;
            size_t len = n - start < DSC_RED_BLOCK ? n - start : DSC_RED_BLOCK;
            part[b] = block(ctx, start, len);
        }
        for (long b = 0; b < nb; b++) total += part[b];
    }
    return total;
}

typedef struct {
    const float *x, *y;
} dot_ctx;

/* One block's dot product in its fixed order: DSC_DOT_LANES interleaved
 * double accumulators (lane j takes elements j, j + L, j + 2L, ...), added
 * in lane order, then the tail in order. One accumulator would serialize on
 * the add latency (about 1 ns per element); independent lanes vectorize and
 * keep up with memory. The order is part of the definition: the reference
 * paths call this same function. */
DSC_WIDE static double dot_lanes(const float *restrict x, const float *restrict y, size_t n)
{
    double lane[DSC_DOT_LANES] = {0};
    size_t i = 0;
    for (; i + DSC_DOT_LANES <= n; i += DSC_DOT_LANES)
        for (int j = 0; j < DSC_DOT_LANES; j++)
            lane[j] += (double)x[i + (size_t)j] * (double)y[i + (size_t)j];
    double s = 0.0;
    for (int j = 0; j < DSC_DOT_LANES; j++) s += lane[j];
    for (; i < n; i++) s += (double)x[i] * (double)y[i];
    return s;
}

double dsc_dot_serial(const float *x, const float *y, size_t n) { return dot_lanes(x, y, n); }

static double dot_block(const void *ctx, size_t start, size_t len)
{
    const dot_ctx *c = ctx;
    return dot_lanes(c->x + start, c->y + start, len);
}

double dsc_vec_dot_serial(const float *x, const float *y, size_t n)
{
    dot_ctx c = {x, y};
    return dsc_reduce_blocks(n, 0, dot_block, &c);
}

double dsc_vec_dot(const float *x, const float *y, size_t n)
{
    dot_ctx c = {x, y};
    return dsc_reduce_blocks(n, 1, dot_block, &c);
}

double dsc_vec_sumsq(const float *x, size_t n) { return dsc_vec_dot(x, x, n); }

double dsc_vec_sumabs(const float *x, size_t n) { return dsc_vec_scan(x, n).sumabs; }

/* ------------------------------------------------------------ update norm */

/* Sum of (x - y)^2 over one block in double, lanes as dot_lanes: the
 * whole lane groups into the lanes, then (diff_lanes_finish) the lanes in
 * order and the tail. Inlined into both users below, so the full pass and
 * the per-block pass give the same bits. */
DSC_BODY void diff_lanes_add(double *restrict lane, const float *restrict x,
                             const float *restrict y, size_t n)
{
    for (size_t i = 0; i + DSC_DOT_LANES <= n; i += DSC_DOT_LANES)
        for (int j = 0; j < DSC_DOT_LANES; j++) {
            double d = (double)x[i + (size_t)j] - (double)y[i + (size_t)j];
            lane[j] += d * d;
        }
}

/* The lanes added in order, then the tail (fewer than DSC_DOT_LANES
 * elements) in order. */
DSC_BODY double diff_lanes_finish(const double *lane, const float *x, const float *y,
                                  size_t tail)
{
    double s = 0.0;
    for (int j = 0; j < DSC_DOT_LANES; j++) s += lane[j];
    for (size_t i = 0; i < tail; i++) {
        double d = (double)x[i] - (double)y[i];
        s += d * d;
    }
    return s;
}

DSC_BODY double diff_lanes(const float *restrict x, const float *restrict y, size_t n)
{
    double lane[DSC_DOT_LANES] = {0};
    size_t whole = n - n % DSC_DOT_LANES;
    diff_lanes_add(lane, x, y, whole);
    return diff_lanes_finish(lane, x + whole, y + whole, n - whole);
}

DSC_WIDE static double diff_block(const void *ctx, size_t start, size_t len)
{
    const dot_ctx *c = ctx;
    return diff_lanes(c->x + start, c->y + start, len);
}

double dsc_vec_diff_sumsq(const float *x, const float *y, size_t n)
{
    dot_ctx c = {x, y};
    return dsc_reduce_blocks(n, 1, diff_block, &c);
}

typedef struct {
    dsc_range_fn fn;
    dsc_range_diff_fn fused;
    const void *ctx;
    float *x;
} fused_ctx;

/* One block: its whole lane groups through the family's fused range, which
 * fills the lanes as diff_lanes_add would from a copy of the old values;
 * the last len % DSC_DOT_LANES elements saved, stepped by fn and added by
 * diff_lanes_finish. So the block's sum has diff_lanes' bits, with no copy
 * of the block and no second look at it. (Before, each 512-element piece
 * was copied to the stack, stepped and compared: the copy and the
 * comparison were a third of a tracked AdamW step on data in cache, and a
 * stats-on AdamW step at 50M parameters and 2 threads took 0.99-1.08
 * ns/param against 0.74-0.86 now.) */
static double fused_block(const void *ctx, size_t start, size_t len)
{
    const fused_ctx *t = ctx;
    double lane[DSC_DOT_LANES] = {0};
    size_t whole = len - len % DSC_DOT_LANES, tail = len - whole;
    if (whole) t->fused(t->ctx, start, start + whole, lane);
    float old[DSC_DOT_LANES];
    float *x = t->x + start + whole;
    if (tail) {
        memcpy(old, x, tail * sizeof(float));
        t->fn(t->ctx, start + whole, start + len);
    }
    return diff_lanes_finish(lane, x, old, tail);
}

double dsc_parallel_ranges_diff(size_t n, dsc_range_fn fn, dsc_range_diff_fn fused,
                                const void *ctx, float *x)
{
    fused_ctx t = {fn, fused, ctx, x};
    return dsc_reduce_blocks(n, 1, fused_block, &t);
}

/* max |x| over one span, on the bit patterns: a non-negative float orders
 * like its bits read as an integer, so |x| is the bits without the sign and
 * the maximum is an integer maximum, which vectorizes (a float `a > m ? a : m`
 * is not a max to GCC, because of NaN). NaN patterns (above 0x7f800000)
 * count as 0, as a NaN never wins `a > m` in the plain loop; the maximum
 * does not depend on the order, so any blocking and thread count agree. */
DSC_WIDE static float absmax_span(const float *restrict x, size_t n)
{
    int32_t lane[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            int32_t u;
            memcpy(&u, &x[i + (size_t)j], sizeof u);
            u &= 0x7fffffff;
            u = u > 0x7f800000 ? 0 : u;
            lane[j] = u > lane[j] ? u : lane[j];
        }
    int32_t m = 0;
    for (int j = 0; j < 16; j++) m = lane[j] > m ? lane[j] : m;
    for (; i < n; i++) {
        int32_t u;
        memcpy(&u, &x[i], sizeof u);
        u &= 0x7fffffff;
        u = u > 0x7f800000 ? 0 : u;
        m = u > m ? u : m;
    }
    float r;
    memcpy(&r, &m, sizeof r);
    return r;
}

float dsc_vec_absmax(const float *x, size_t n)
{
    if (n < DSC_PAR_MIN || dsc_threads() == 1) return absmax_span(x, n);
    const size_t span = 1u << 16;
    long nspans = (long)((n + span - 1) / span);
    float m = 0.0f;
#pragma omp parallel for schedule(static) reduction(max : m) num_threads(dsc_threads())
    for (long b = 0; b < nspans; b++) {
        size_t start = (size_t)b * span, len = n - start < span ? n - start : span;
        float a = absmax_span(x + start, len);
        m = a > m ? a : m;
    }
    return m;
}
