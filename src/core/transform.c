/* transform.c - the gradient-transform stage of a step: everything that
 * turns the caller's gradient into the one the families read.
 *
 * Configuration (all of it checkpointed, checkpoint.c):
 *   optimizer-wide  dsc_optimizer_set_nonfinite (skip | zero | fail) and
 *                   dsc_optimizer_set_clip (by global l2 norm or by value),
 *                   over every parameter of every group at once;
 *   per group       the keys every family accepts (wrap.c's table, set by
 *                   a spec or dsc_optimizer_set_hyper): coordinate_clip,
 *                   coordinate_clip_scale and maximize.
 * The global settings are not spec keys: a spec configures one group, and
 * a global norm spans all groups (torch keeps clip_grad_norm_ outside the
 * optimizer; optax chains clip_by_global_norm before it, once).
 *
 * The stage has the two phases of the step (step.c):
 *   dsc_transform_decide (validate: may fail, writes only the handle's
 *     stats and error, and the prescans' scratch) scans every gradient
 *     once (non-finite count; the l2, l1 and l-inf norms when stats or
 *     norm clipping need them), then
 *     decides: fail (DSC_NONFINITE), skip the update (plan->skip), or go on
 *     with zeroing, a norm-clipping factor and a value bound in the plan.
 *     It fills the step stats (norms, nonfinite, clip_scale and the
 *     skipped / zeroed / clipped counters). When the gradients will reach
 *     the families unchanged and no norms are needed, a family that reads
 *     each gradient before it writes anyway (dsc_family.prescan: adamp,
 *     sgdp, adagradnorm, stable_spam, and sgd_clip and adam_clip with the
 *     first pass of their threshold) makes that read here, and where its
 *     result proves the gradient finite the count is not made: one pass
 *     over the gradient less. A prescan writes only scratch (its
 *     parameter's or its group's) and p->prescan, which a skipped or failed
 *     step leaves unused (every decision clears p->prescanned first).
 *   dsc_transform_apply (write: cannot fail, allocates nothing) carries
 *     the plan out in this order, each into p->work (p->grad then points
 *     there; the caller's gradient is only read):
 *       1. non-finite entries to 0, the norm factor, the value bound (one
 *          element-wise pass, so the same bits at any thread count);
 *       2. coordinate-wise clipping per group;
 *       3. maximize per group (wrap.c).
 * Norms are those of the finite entries, as zeroing keeps them. Norm
 * clipping follows torch.nn.utils.clip_grad_norm_: when the norm N exceeds
 * max_norm, g <- g * max_norm / (N + 1e-6).
 *
 * Coordinate-wise clipping (Pan and Li, arXiv 2306.00204), over all tensors
 * X of a group and a fraction c = coordinate_clip:
 *   c == 0: no clipping;  c == 1: tau = 0;
 *   else tau = the floor(N*c)-th largest |x| (0-based, N*c in double) of the
 *        N values of X, recomputed every step;
 *   tau <- tau*scale;  x <- x if |x| < tau, else sign(x)*tau.
 * tau is found without sorting, on the bits of |x| (a non-negative float
 * orders like its bit pattern). The fast path, given a workspace of about
 * N/32 values (the families' group scratch; for the group keys, the
 * largest free work buffer that fits), reads x once: a sample
 * brackets tau, one pass counts the values above the bracket and gathers
 * those in it, and a select among them, in cache, finds tau (see "the
 * one-pass select" below). Without a workspace, or when the bracket misses,
 * a radix select: three passes of 11, 10 and 10 bits, each a histogram of
 * the entries that share the digits found so far. Integer counts are
 * exact, so any thread count gives the same tau. The reference bisects on
 * the bit pattern (31 counting passes). All give exactly the value a full
 * sort puts at index floor(N*c), ties included. The families sgd_clip and
 * adam_clip (src/optimizers/coordclip.c) call dsc_coordclip_tau themselves
 * and define coordinate_clip (with their own threshold_scale) as a key of
 * their own: for them the group keys coordinate_clip and
 * coordinate_clip_scale do not exist. */
#include "internal.h"
#include "../kernels/bracket.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ the transform */

/* The value clipped: the gradient, plus wd*p for adam_clip's L2. */
static inline float src_at(const float *g, const float *p, float wd, size_t i)
{
    return wd != 0.0f ? g[i] + wd * p[i] : g[i];
}

static inline uint32_t abs_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7fffffffu;
}

static float param_wd(const dsc_param *p, int wd_key)
{
    return wd_key >= 0 ? (float)p->hp[wd_key] : 0.0f;
}

#define RADIX_BINS 2048 /* the first pass: 11 bits */

/* hist[digit] += count of entries whose bits above `shift + width` equal
 * `prefix`, digit = the `width` bits from `shift`. Each thread counts its
 * range into local histograms and adds them to the shared one with atomic
 * adds: integer counts, so the order of the adds does not matter. */
typedef struct {
    const float *g, *x;
    float wd;
    int shift, pshift;
    uint32_t dmask, prefix;
    size_t *hist;
} hist_job;

/* Elements counted into the 32-bit local histograms before they are added
 * into the shared size_t one (no local count can wrap). */
#define HIST_CHUNK ((size_t)1 << 30)
/* Elements whose prefixes are tested together before any is counted. */
#define HIST_GROUP 16

/* The first pass counts every entry. Neighbouring gradients often share a
 * digit, and one histogram would then make each increment wait for the
 * previous one's store; four interleaved histograms (32 KiB in all) let
 * four increments run at once. Later passes count only the entries that
 * share the digits found so far, usually few: a group of HIST_GROUP entries
 * is tested with vector compares and counted one by one only when one of
 * them matches. `l2` (adam_clip's wd*p) is a constant at each call, so each
 * variant is its own loop. */
DSC_BODY void hist_body(const hist_job *j, size_t lo, size_t hi, uint32_t (*local)[RADIX_BINS],
                        const int l2, const int all)
{
    const float *restrict g = j->g, *restrict x = j->x;
    const float wd = j->wd;
    const int shift = j->shift, pshift = j->pshift;
    const uint32_t dmask = j->dmask, prefix = j->prefix;
    size_t i = lo;
    if (all) {
        for (; i + 4 <= hi; i += 4) {
            for (int k = 0; k < 4; k++) {
                float v = l2 ? g[i + (size_t)k] + wd * x[i + (size_t)k] : g[i + (size_t)k];
                local[k][(abs_bits(v) >> shift) & dmask]++;
            }
        }
        for (; i < hi; i++) {
            float v = l2 ? g[i] + wd * x[i] : g[i];
            local[0][(abs_bits(v) >> shift) & dmask]++;
        }
        return;
    }
    for (; i + HIST_GROUP <= hi; i += HIST_GROUP) {
        /* The test as one vector reduction (`omp simd`: GCC otherwise
         * unrolls the 16 lanes into scalar shifts and compares, which cost
         * as much as the counting); the few groups with a match are
         * counted one entry at a time. */
        uint32_t any = 0;
#ifdef _OPENMP
#pragma omp simd reduction(| : any)
#endif
        for (int k = 0; k < HIST_GROUP; k++) {
            float v = l2 ? g[i + (size_t)k] + wd * x[i + (size_t)k] : g[i + (size_t)k];
            any |= (uint32_t)((abs_bits(v) >> pshift) == prefix);
        }
        if (!any) continue;
        for (int k = 0; k < HIST_GROUP; k++) {
            float v = l2 ? g[i + (size_t)k] + wd * x[i + (size_t)k] : g[i + (size_t)k];
            uint32_t u = abs_bits(v);
            if ((u >> pshift) == prefix) local[0][(u >> shift) & dmask]++;
        }
    }
    for (; i < hi; i++) {
        uint32_t u = abs_bits(l2 ? g[i] + wd * x[i] : g[i]);
        if ((u >> pshift) == prefix) local[0][(u >> shift) & dmask]++;
    }
}

DSC_WIDE static void hist_range(const void *ctx, size_t lo, size_t hi)
{
    const hist_job *j = ctx;
    const int all = j->pshift >= 31; /* the first pass: every |x| has bit 31 clear */
    uint32_t local[4][RADIX_BINS];
    size_t *hist = j->hist;
    for (size_t c0 = lo; c0 < hi; c0 += HIST_CHUNK) {
        size_t c1 = hi - c0 < HIST_CHUNK ? hi : c0 + HIST_CHUNK;
        memset(local, 0, sizeof local);
        if (j->wd != 0.0f) {
            if (all) hist_body(j, c0, c1, local, 1, 1);
            else hist_body(j, c0, c1, local, 1, 0);
        } else {
            if (all) hist_body(j, c0, c1, local, 0, 1);
            else hist_body(j, c0, c1, local, 0, 0);
        }
        for (uint32_t b = 0; b <= j->dmask; b++) {
            size_t count = (size_t)local[0][b] + local[1][b] + local[2][b] + local[3][b];
            if (!count) continue;
            /* An integer add: the order of the threads' adds does not matter.
             * (A raw OpenMP construct, but no region: it only makes the add
             * safe inside the region dsc_parallel_ranges opened.) */
#pragma omp atomic
            hist[b] += count;
        }
    }
}

static void param_hist(const dsc_param *p, float wd, int shift, int width, uint32_t prefix,
                       size_t *hist)
{
    hist_job job = {p->grad, p->data, wd, shift, shift + width, (1u << width) - 1u, prefix, hist};
    dsc_parallel_ranges(p->numel, hist_range, &job);
}

static void radix_hist(dsc_group *grp, int wd_key, int shift, int width, uint32_t prefix,
                       size_t *hist)
{
    for (int k = 0; k < grp->nparams; k++) {
        const dsc_param *p = dsc_group_param(grp, k);
        param_hist(p, param_wd(p, wd_key), shift, width, prefix, hist);
    }
}

/* The radix select's three passes: the top 11 bits, then 10 and 10. */
static const int radix_shift[3] = {20, 10, 0}, radix_width[3] = {11, 10, 10};

/* Bit pattern of the entry of descending rank `rank` (0-based). */
static uint32_t select_radix(dsc_group *grp, int wd_key, size_t rank)
{
    uint32_t prefix = 0;
    for (int pass = 0; pass < 3; pass++) {
        size_t hist[RADIX_BINS];
        memset(hist, 0, sizeof hist);
        radix_hist(grp, wd_key, radix_shift[pass], radix_width[pass], prefix, hist);
        uint32_t b = (1u << radix_width[pass]) - 1u;
        for (;; b--) { /* the largest digits first */
            if (rank < hist[b] || b == 0) break;
            rank -= hist[b];
        }
        prefix = (prefix << radix_width[pass]) | b;
    }
    return prefix;
}

/* Reference: the largest bit pattern u with count(|x| >= u) >= rank + 1. */
static uint32_t select_bisect(dsc_group *grp, int wd_key, size_t rank)
{
    uint32_t lo = 0, hi = 0x80000000u; /* count(>= lo) > rank, count(>= hi) = 0 */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        size_t count = 0;
        for (int k = 0; k < grp->nparams; k++) {
            const dsc_param *p = dsc_group_param(grp, k);
            const float wd = param_wd(p, wd_key);
            for (size_t i = 0; i < p->numel; i++)
                count += abs_bits(src_at(p->grad, p->data, wd, i)) >= mid;
        }
        if (count > rank) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* ------------------------------------------------- the one-pass select */

/* With a workspace (a family's group scratch, dsc_coordclip_ws_bytes) the
 * fast select reads x once instead of three times:
 * 1. a stratified sample (one value at a pseudo-random place in each of S
 *    equal strides of the group's N values) tells where the rank falls
 *    among the sample, and the sample's values a few standard deviations
 *    either side of that place bracket the answer: [lo, hi) on bit
 *    patterns;
 * 2. one pass over x counts the values at or above hi and copies those in
 *    [lo, hi), the candidates (about 1% of N at c = 0.1), into the
 *    workspace; a family's prescan makes this pass in the place of the
 *    driver's non-finite count, and counts the Inf and NaN values on the
 *    way;
 * 3. when the rank falls among the candidates, a select on them, in cache,
 *    finds it; when not (an unlucky sample, or more candidates than the
 *    workspace holds), the three radix passes above do.
 * The sample decides how much work is done, never the answer. The counts
 * are integers and the candidates' order does not change their ranks, so
 * any thread count gives the same tau. A group of fewer than WS_SMALL
 * values takes them all as candidates, without a sample. */

#define WS_HIST_BITS 12       /* digits of the in-cache select: a 32 KiB histogram */
#define WS_ALL ((size_t)65536) /* candidates any group may hold beyond N/32 */
#define WS_SAMPLE_MIN ((size_t)1024)
#define WS_SAMPLE_MAX ((size_t)65536)
#define WS_SMALL ((size_t)8192) /* groups below take every value as a candidate */

typedef struct {
    size_t total, rank;  /* the group's N and the rank the bracket was made for */
    size_t above, ncand; /* the pass's counts: x at or above hi; candidates met */
    uint32_t lo, hi;     /* the bracket, bit patterns of |x| */
    int path;            /* how the last tau was found (dsc_coordclip_path) */
    size_t hist[1u << WS_HIST_BITS];
} ws_head;

#define WS_HEAD_BYTES ((sizeof(ws_head) + 63) / 64 * 64)

static size_t ws_cap(size_t n)
{
    size_t cap = WS_ALL + n / 32;
    return n < cap ? n : cap;
}

/* One sample value per 256 of the group, between 1024 and 65536 in all
 * (a standard deviation of the rank's place is then at most 1.6% of N,
 * under 0.2% from 16M values on); none for a group so small that a select
 * over all its values costs less than a sample. */
static size_t ws_nsample(size_t n)
{
    if (n < WS_SMALL) return 0; /* every value is a candidate */
    size_t s = n / 256;
    return s < WS_SAMPLE_MIN ? WS_SAMPLE_MIN : s > WS_SAMPLE_MAX ? WS_SAMPLE_MAX : s;
}

size_t dsc_coordclip_ws_bytes(size_t n)
{
    return WS_HEAD_BYTES + sizeof(uint32_t) * (2 * ws_nsample(n) + ws_cap(n));
}

static size_t group_numel(const dsc_group *grp)
{
    size_t n = 0;
    for (int k = 0; k < grp->nparams; k++) n += dsc_group_param(grp, k)->numel;
    return n;
}

static size_t rank_of(size_t n, double c)
{
    size_t rank = (size_t)floor((double)n * c); /* 0-based index in descending order */
    return rank > n - 1 ? n - 1 : rank;
}

typedef struct {
    ws_head *head;
    uint32_t *sample; /* 2 * nsample: the sample and a copy the select reorders */
    uint32_t *cand;   /* cap */
    size_t nsample, cap;
} ws_view;

/* The workspace laid out for a group of n values; 0 when it is too small
 * (or absent). */
static int ws_view_of(size_t n, void *ws, size_t bytes, ws_view *v)
{
    if (!ws || bytes < dsc_coordclip_ws_bytes(n)) return 0;
    v->head = ws;
    v->nsample = ws_nsample(n);
    v->cap = ws_cap(n);
    v->sample = (uint32_t *)((char *)ws + WS_HEAD_BYTES);
    v->cand = v->sample + 2 * v->nsample;
    return 1;
}

static int bit_length(uint32_t x)
{
    int b = 0;
    for (; x; x >>= 1) b++;
    return b;
}

/* The value of descending rank `rank` (< m) among a[0..m), all in
 * [lo, hi): histograms of digits of a - lo, from the top; after each, the
 * values of the digit that holds the rank move to the front and the rest
 * are dropped (a is reordered). A digit has about log2(m) - 2 bits (6 to
 * WS_HIST_BITS): clearing and searching the histogram then costs less than
 * filling it. */
static uint32_t select_in(uint32_t *a, size_t m, size_t rank, uint32_t lo, uint32_t hi,
                          size_t *hist)
{
    uint32_t span = hi - lo - 1; /* the largest a - lo */
    int bits = bit_length(span);
    while (bits > 0) {
        int width = bit_length((uint32_t)(m < 0xffffffffu ? m : 0xffffffffu)) - 2;
        width = width < 6 ? 6 : width > WS_HIST_BITS ? WS_HIST_BITS : width;
        const int shift = bits > width ? bits - width : 0;
        const uint32_t nb = (span >> shift) + 1;
        memset(hist, 0, nb * sizeof *hist);
        for (size_t i = 0; i < m; i++) hist[(a[i] - lo) >> shift]++;
        uint32_t b = nb - 1;
        for (;; b--) { /* the largest digits first */
            if (rank < hist[b] || b == 0) break;
            rank -= hist[b];
        }
        if (shift == 0) return lo + b;
        size_t k = 0;
        for (size_t i = 0; i < m; i++) { /* without a branch: the digit is a coin toss */
            const uint32_t x = a[i];
            a[k] = x;
            k += ((x - lo) >> shift) == b;
        }
        m = k;
        lo += b << shift;
        span -= b << shift;
        if (span > (1u << shift) - 1) span = (1u << shift) - 1;
        bits = bit_length(span);
    }
    return lo; /* one value left in the bracket */
}

/* A reproducible pseudo-random offset for stratum j (a 64-bit finalizer). */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

void dsc_coordclip_begin(const dsc_group *grp, double c, int wd_key, void *ws, size_t bytes)
{
    const size_t n = group_numel(grp);
    ws_view v;
    if (n == 0 || !ws_view_of(n, ws, bytes, &v)) return;
    ws_head *h = v.head;
    h->total = n;
    h->rank = rank_of(n, c);
    h->above = h->ncand = 0;
    h->lo = 0;
    h->hi = 0x80000000u; /* above every |x| */
    const size_t s = v.nsample;
    if (s == 0) return; /* all of them */
    /* The sample, stratum by stratum through the parameters in order:
     * stratum j is [floor(j*n/s), floor((j+1)*n/s)), of length per or
     * per + 1 (n = per*s + r; a Bresenham step adds r each time); its value
     * is at the top 32 bits of a hash of j scaled to the length (a fixed
     * stride could fall on one column of a matrix every time). */
    const size_t per = n / s, r = n % s;
    size_t j = 0, base = 0, start = 0, carry = 0;
    for (int k = 0; k < grp->nparams && j < s; k++) {
        const dsc_param *p = dsc_group_param(grp, k);
        const float wd = param_wd(p, wd_key);
        for (; j < s; j++) {
            const size_t len = per + (carry + r >= s);
            const size_t i = start + (size_t)(((mix64(j + 1) >> 32) * (uint64_t)len) >> 32);
            if (i >= base + p->numel) break;
            v.sample[j] = abs_bits(src_at(p->grad, p->data, wd, i - base));
            start += len;
            carry = carry + r >= s ? carry + r - s : carry + r;
        }
        base += p->numel;
    }
    /* The rank's place among the sample, give or take four standard
     * deviations of a binomial count (and a few places for ties), narrowed
     * where that many candidates would not fit. */
    const double q = (double)h->rank / (double)n;
    const double at = q * (double)s;
    double delta = 4.0 * sqrt((double)s * q * (1.0 - q)) + 4.0;
    const double fit = (0.75 * (double)v.cap * (double)s / (double)n - 1.0) / 2.0;
    if (delta > fit) delta = fit > 1.0 ? fit : 1.0;
    uint32_t *copy = v.sample + s;
    if (at - delta >= 0.0) {
        memcpy(copy, v.sample, s * sizeof *copy);
        h->hi = select_in(copy, s, (size_t)(at - delta), 0, 0x80000000u, h->hist) + 1u;
    }
    if (at + delta < (double)s) {
        memcpy(copy, v.sample, s * sizeof *copy);
        h->lo = select_in(copy, s, (size_t)(at + delta), 0, 0x80000000u, h->hist);
    }
}

/* The pass: above += count(u >= hi), bad += count(u >= Inf's bits), the
 * u in [lo, hi) appended to the candidates (the kernel bracket.h, span by
 * span). Each thread gathers its candidates in a local buffer and reserves
 * room for them with one atomic add (the order they land in does not
 * matter); past the capacity they are only counted. */
typedef struct {
    const float *g, *x;
    float wd;
    uint32_t lo, width, hi;
    ws_head *head;
    uint32_t *cand;
    size_t cap, *bad;
} count_job;

#define COUNT_BUF (4 * DSC_BRACKET_SPAN) /* a thread's candidates before it reserves room */

static void flush_candidates(const count_job *j, const uint32_t *buf, size_t nbuf)
{
    size_t at;
    ws_head *h = j->head;
#pragma omp atomic capture
    {
        at = h->ncand;
        h->ncand += nbuf;
    }
    if (at < j->cap) {
        size_t room = j->cap - at;
        memcpy(j->cand + at, buf, (nbuf < room ? nbuf : room) * sizeof *buf);
    }
}

static void count_range(const void *ctx, size_t lo, size_t hi)
{
    const count_job *j = ctx;
    uint32_t buf[COUNT_BUF + DSC_BRACKET_SLACK];
    size_t nbuf = 0, counts[2] = {0, 0};
    for (size_t i = lo; i < hi; i += DSC_BRACKET_SPAN) {
        size_t len = hi - i < DSC_BRACKET_SPAN ? hi - i : DSC_BRACKET_SPAN;
        nbuf += dsc_bracket_span(j->g + i, j->wd != 0.0f ? j->x + i : NULL, j->wd, len, j->lo,
                                 j->width, j->hi, buf + nbuf, counts);
        if (nbuf > COUNT_BUF - DSC_BRACKET_SPAN) {
            flush_candidates(j, buf, nbuf);
            nbuf = 0;
        }
    }
    if (nbuf) flush_candidates(j, buf, nbuf);
    ws_head *h = j->head;
#pragma omp atomic
    h->above += counts[0];
#pragma omp atomic
    *j->bad += counts[1];
}

size_t dsc_coordclip_count(const dsc_group *grp, const dsc_param *p, float wd, void *ws,
                           size_t bytes)
{
    ws_view v;
    if (!ws_view_of(group_numel(grp), ws, bytes, &v) || v.head->total == 0) return SIZE_MAX;
    ws_head *h = v.head;
    size_t bad = 0;
    count_job job = {p->grad, p->data, wd, h->lo, h->hi - h->lo, h->hi, h, v.cand, v.cap,
                     &bad};
    dsc_parallel_ranges(p->numel, count_range, &job);
    return bad;
}

/* The answer from the pass's counts and candidates, when they hold it. The
 * select reorders the candidates, so the workspace is spent afterwards. */
static int resolve_counted(ws_view *v, size_t rank, uint32_t *u)
{
    ws_head *h = v->head;
    h->path = DSC_COORDCLIP_RADIX;
    if (h->above <= rank && rank - h->above < h->ncand) {
        if (h->ncand <= v->cap) {
            *u = select_in(v->cand, h->ncand, rank - h->above, h->lo, h->hi, h->hist);
            h->path = DSC_COORDCLIP_CANDIDATES;
        } else if (h->hi - h->lo == 1) { /* overflowed, but the bracket is one value */
            *u = h->lo;
            h->path = DSC_COORDCLIP_ONE_VALUE;
        }
    }
    h->total = 0;
    return h->path != DSC_COORDCLIP_RADIX;
}

int dsc_coordclip_path(const void *ws)
{
    return ((const ws_head *)ws)->path;
}

float dsc_coordclip_tau(dsc_group *grp, double c, double scale, int wd_key, int reference,
                        void *ws, size_t ws_bytes, int counted)
{
    if (c >= 1.0) return 0.0f;
    const size_t n = group_numel(grp);
    if (n == 0) return 0.0f;
    const size_t rank = rank_of(n, c);
    uint32_t u = 0;
    ws_view v;
    if (reference) {
        u = select_bisect(grp, wd_key, rank);
    } else if (ws_view_of(n, ws, ws_bytes, &v)) {
        if (!(counted && v.head->total == n && v.head->rank == rank)) {
            dsc_coordclip_begin(grp, c, wd_key, ws, ws_bytes);
            for (int k = 0; k < grp->nparams; k++) {
                const dsc_param *p = dsc_group_param(grp, k);
                dsc_coordclip_count(grp, p, param_wd(p, wd_key), ws, ws_bytes);
            }
        }
        if (!resolve_counted(&v, rank, &u)) u = select_radix(grp, wd_key, rank);
    } else {
        u = select_radix(grp, wd_key, rank);
    }
    float tau;
    memcpy(&tau, &u, sizeof tau);
    return (float)((double)tau * scale);
}

/* out = clip(in) elementwise (in may equal out, so no restrict here). */
typedef struct {
    float *out;
    const float *in;
    float tau;
} clip_job;

DSC_WIDE static void clip_range(const void *ctx, size_t lo, size_t hi)
{
    const clip_job *job = ctx;
    const float tau = job->tau;
    if (job->out == job->in) { /* in place: its own loop (see transform_range below) */
        float *x = job->out;
        for (size_t i = lo; i < hi; i++) x[i] = dsc_clip_tau(x[i], tau);
    } else {
        float *restrict out = job->out;
        const float *restrict in = job->in;
        for (size_t i = lo; i < hi; i++) out[i] = dsc_clip_tau(in[i], tau);
    }
}

static void clip_into(float *out, const float *in, size_t n, float tau, int reference)
{
    if (reference) {
        for (size_t i = 0; i < n; i++) out[i] = dsc_clip_tau(in[i], tau);
        return;
    }
    clip_job job = {out, in, tau};
    dsc_parallel_ranges(n, clip_range, &job);
}

/* A workspace for the one-pass select borrowed from the group's work
 * buffers: until the clipped gradients are written there, p->work holds
 * nothing for a parameter whose gradient is elsewhere (p->grad != p->work;
 * an accumulated mean or an earlier transform lives in p->work). The
 * largest such buffer that fits serves; NULL when none does (small groups:
 * the three radix passes). */
static void *borrowed_workspace(const dsc_group *grp, size_t *bytes)
{
    const size_t need = dsc_coordclip_ws_bytes(group_numel(grp));
    const dsc_param *host = NULL;
    for (int k = 0; k < grp->nparams; k++) {
        const dsc_param *p = dsc_group_param(grp, k);
        if (!p->work || p->grad == p->work || p->numel * sizeof(float) < need) continue;
        if (!host || p->numel > host->numel) host = p;
    }
    *bytes = host ? host->numel * sizeof(float) : 0;
    return host ? host->work : NULL;
}

/* The group keys coordinate_clip / coordinate_clip_scale: every gradient
 * of the group clipped at one tau into p->work. */
static void coordclip_apply(dsc_group *grp, int reference)
{
    double c = grp->wrap.coord_clip;
    if (!(c > 0.0) || grp->nparams == 0) return;
    size_t ws_bytes = 0;
    void *ws = reference ? NULL : borrowed_workspace(grp, &ws_bytes);
    float tau =
        dsc_coordclip_tau(grp, c, grp->wrap.coord_clip_scale, -1, reference, ws, ws_bytes, 0);
    for (int k = 0; k < grp->nparams; k++) {
        dsc_param *p = dsc_group_param(grp, k);
        clip_into(p->work, p->grad, p->numel, tau, reference);
        p->grad = p->work;
    }
}


/* ------------------------------------------------ the optimizer-wide settings */

dsc_status dsc_optimizer_set_clip(dsc_optimizer *opt, dsc_clip_kind kind, double limit)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    char err[DSC_ERR_MAX];
    dsc_status st = dsc_transform_check_clip((int)kind, limit, err, sizeof err);
    if (st != DSC_OK) return dsc_fail(opt, st, "set_clip: %s", err);
    dsc_clip_kind old_kind = opt->clip_kind;
    opt->clip_kind = kind;
    st = dsc_optimizer_ensure_buffers(opt);
    if (st != DSC_OK) {
        opt->clip_kind = old_kind;
        return st;
    }
    opt->clip_limit = limit;
    return DSC_OK;
}

dsc_status dsc_optimizer_set_nonfinite(dsc_optimizer *opt, dsc_nonfinite_policy policy)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    char err[DSC_ERR_MAX];
    dsc_status st = dsc_transform_check_nonfinite((int)policy, err, sizeof err);
    if (st != DSC_OK) return dsc_fail(opt, st, "set_nonfinite: %s", err);
    dsc_nonfinite_policy old = opt->nonfinite;
    opt->nonfinite = policy;
    st = dsc_optimizer_ensure_buffers(opt);
    if (st != DSC_OK) opt->nonfinite = old;
    return st;
}

dsc_status dsc_transform_check_clip(int kind, double limit, char *err, size_t errlen)
{
    if (kind < DSC_CLIP_NONE || kind > DSC_CLIP_VALUE) {
        snprintf(err, errlen, "kind %d is not a dsc_clip_kind", kind);
        return DSC_OUT_OF_RANGE;
    }
    if (kind != DSC_CLIP_NONE && !(limit > 0.0 && isfinite(limit))) {
        snprintf(err, errlen, "limit must be finite and > 0, got %g", limit);
        return DSC_OUT_OF_RANGE;
    }
    return DSC_OK;
}

dsc_status dsc_transform_check_nonfinite(int policy, char *err, size_t errlen)
{
    if (policy < DSC_NONFINITE_SKIP || policy > DSC_NONFINITE_FAIL) {
        snprintf(err, errlen, "%d is not a policy", policy);
        return DSC_OUT_OF_RANGE;
    }
    return DSC_OK;
}

static const char *const clip_names[] = {"none", "norm", "value"};
static const char *const nonfinite_names[] = {"skip", "zero", "fail"};

const char *dsc_clip_kind_name(dsc_clip_kind k)
{
    return (int)k >= DSC_CLIP_NONE && k <= DSC_CLIP_VALUE ? clip_names[k] : "?";
}

const char *dsc_nonfinite_name(dsc_nonfinite_policy p)
{
    return (int)p >= DSC_NONFINITE_SKIP && p <= DSC_NONFINITE_FAIL ? nonfinite_names[p] : "?";
}

int dsc_clip_kind_from_name(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, clip_names[i])) return i;
    return -1;
}

int dsc_nonfinite_from_name(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, nonfinite_names[i])) return i;
    return -1;
}

int dsc_transform_needs_work(const dsc_optimizer *opt)
{
    for (int i = 0; i < opt->ngroups; i++)
        if (opt->groups[i]->wrap.coord_clip > 0 || opt->groups[i]->wrap.maximize) return 1;
    return opt->clip_kind != DSC_CLIP_NONE || opt->nonfinite == DSC_NONFINITE_ZERO;
}

/* ------------------------------------------- phase 1: scan and decide */

dsc_status dsc_transform_decide(dsc_optimizer *opt, dsc_grad_plan *plan)
{
    dsc_step_stats *st = &opt->stats;
    plan->skip = 0;
    plan->zero_bad = 0;
    plan->scale = 1.0f;
    plan->clamp = INFINITY;
    for (int i = 0; i < opt->nparams; i++) opt->params[i]->prescanned = 0;

    /* The scan: non-finite entries always (cheap); norms when asked for or
     * needed by norm clipping. */
    size_t bad = 0;
    const char *first_bad = NULL;
    int norms = opt->want_stats || opt->clip_kind == DSC_CLIP_NORM;
    double sumsq = 0, sumabs = 0, absmax = 0;
    if (opt->shard) { /* each rank scans its share; the sums are all-reduced (shard.c) */
        dsc_status s = dsc_shard_scan(opt, norms, &bad, &first_bad, &sumsq, &sumabs, &absmax);
        if (s != DSC_OK) return s;
    } else if (norms) { /* one pass: the norm scan counts the non-finite entries too */
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            dsc_grad_scan s = dsc_vec_scan(p->grad, p->numel);
            if (s.nonfinite && !first_bad) first_bad = p->name;
            bad += s.nonfinite;
            sumsq += s.sumsq;
            sumabs += s.sumabs;
            if (s.absmax > absmax) absmax = s.absmax;
        }
    } else {
        /* A family's prescan that proves its gradient finite replaces the
         * count (see dsc_family.prescan): only where the family then reads
         * the gradient as it is now, on the fast path. */
        const int fold = !opt->reference && !dsc_transform_needs_work(opt);
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            const dsc_group *g = opt->groups[p->group];
            if (fold && !p->bf16 && g->family->prescan && g->family->prescan(g, p)) continue;
            size_t b = dsc_vec_count_nonfinite(p->grad, p->numel);
            if (b && !first_bad) first_bad = p->name;
            bad += b;
        }
    }
    st->grad_l2 = st->grad_l1 = st->grad_linf = NAN;
    if (norms) {
        st->grad_l2 = sqrt(sumsq);
        if (opt->want_stats) {
            st->grad_l1 = sumabs;
            st->grad_linf = absmax;
        }
    }
    st->nonfinite = bad;
    st->clip_scale = 1.0;
    st->step = opt->step;

    /* The non-finite policy. */
    if (bad) {
        if (opt->nonfinite == DSC_NONFINITE_FAIL)
            return dsc_fail(opt, DSC_NONFINITE,
                            "step %lld: %zu non-finite gradient entries (first in \"%s\"); "
                            "nothing was changed", (long long)opt->step, bad, first_bad);
        if (opt->nonfinite == DSC_NONFINITE_SKIP) {
            plan->skip = 1;
            st->skipped = 1;
            st->skipped_total++;
            st->update_l2 = opt->want_stats ? 0.0 : NAN;
            return DSC_OK;
        }
        plan->zero_bad = 1;
        st->zeroed_total += (int64_t)bad;
    }

    /* Clipping. From here on the step cannot fail (the families validated
     * in step.c before this), so the counter counts applied clips. */
    if (opt->clip_kind == DSC_CLIP_NORM && st->grad_l2 > opt->clip_limit) {
        /* torch.nn.utils.clip_grad_norm_: max_norm / (total_norm + 1e-6) */
        st->clip_scale = opt->clip_limit / (st->grad_l2 + 1e-6);
        plan->scale = (float)st->clip_scale;
        st->clipped_total++;
    }
    if (opt->clip_kind == DSC_CLIP_VALUE) plan->clamp = (float)opt->clip_limit;
    return DSC_OK;
}

/* ------------------------------------------------------ phase 2: apply */

/* out = f(in) for zeroing, the norm factor and the value bound (in may
 * equal out). Per-thread ranges of a plain loop; in place and out of place
 * are separate loops, because a compiler that cannot rule out a partial
 * overlap keeps a scalar fallback that equal pointers would select. */
typedef struct {
    float *out;
    const float *in;
    float scale, clamp;
    int zero_bad;
} transform_job;

DSC_BODY float transform_one(float v, int zero_bad, float scale, float clamp)
{
    if (zero_bad) v = isfinite(v) ? v : 0.0f;
    v *= scale;
    v = v > clamp ? clamp : v;
    v = v < -clamp ? -clamp : v;
    return v;
}

DSC_WIDE static void transform_range(const void *ctx, size_t lo, size_t hi)
{
    const transform_job *job = ctx;
    const float scale = job->scale, clamp = job->clamp;
    const int zero_bad = job->zero_bad;
    if (job->out == job->in) {
        float *x = job->out;
        for (size_t i = lo; i < hi; i++) x[i] = transform_one(x[i], zero_bad, scale, clamp);
    } else {
        float *restrict out = job->out;
        const float *restrict in = job->in;
        for (size_t i = lo; i < hi; i++) out[i] = transform_one(in[i], zero_bad, scale, clamp);
    }
}

void dsc_transform_apply(dsc_optimizer *opt, const dsc_grad_plan *plan)
{
    /* 1. Zeroing, norm factor, value bound: element-wise, one pass. */
    if (plan->zero_bad || plan->scale != 1.0f || plan->clamp != INFINITY) {
        for (int i = 0; i < opt->nparams; i++) {
            dsc_param *p = opt->params[i];
            transform_job job = {p->work, p->grad, plan->scale, plan->clamp, plan->zero_bad};
            dsc_parallel_ranges(p->numel, transform_range, &job);
            p->grad = p->work;
        }
    }
    /* 2. Coordinate-wise clipping, per group. */
    for (int gi = 0; gi < opt->ngroups; gi++) coordclip_apply(opt->groups[gi], opt->reference);
    /* 3. maximize for the families without their own key (wrap.c). */
    for (int gi = 0; gi < opt->ngroups; gi++) dsc_wrap_pre(opt->groups[gi]);
}
