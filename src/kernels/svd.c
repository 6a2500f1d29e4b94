/* svd.c - one-sided Jacobi SVD and a tridiagonal QL symmetric eigensolver,
 * in double, with caller-provided workspace (contract in svd.h).
 *
 * Jacobi (Hestenes 1958; the convergence test of Demmel & Veselic 1992):
 * the r = min(m, n) columns of A (of A^T when m < n) are stored as rows of
 * a work matrix B, and pairs (p, q) are rotated until every pair is
 * orthogonal to working precision, |b_p . b_q| <= tol ||b_p|| ||b_q||. The
 * rotations, accumulated in Q (r x r), give the other side's vectors; the
 * column norms are the singular values and the normalized columns the
 * vectors of the long side.
 *
 * Eigen: Householder reduction to tridiagonal form T = Q^T A Q, Q formed
 * explicitly, then the implicit QL iteration with Wilkinson-type shift on
 * T, each sweep's Givens rotations applied to the rows of Z^T (Z = Q Y).
 * The rotations of one sweep are recorded and applied to column blocks of
 * Z^T in parallel: every entry sees the same rotations in the same order,
 * so the bits do not depend on the thread count. */
#include "svd.h"

#include "rng.h"
#include "vec.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef DSC_HAVE_CBLAS
#include <cblas.h>
#endif

#define JACOBI_MAX_SWEEPS 80
#define QL_MAX_ITER 60
#define COL_BLOCK 64

static double dot(const double *x, const double *y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

/* Negate x and y when x's largest-magnitude entry (first on ties) is < 0. */
static void sign_fix(double *x, size_t nx, double *y, size_t ny)
{
    size_t best = 0;
    for (size_t i = 1; i < nx; i++)
        if (fabs(x[i]) > fabs(x[best])) best = i;
    if (nx == 0 || !(x[best] < 0.0)) return;
    for (size_t i = 0; i < nx; i++) x[i] = -x[i];
    for (size_t i = 0; y && i < ny; i++) y[i] = -y[i];
}

/* x <- x - (x . y) y for each earlier unit vector y = rows[order[0..j)], twice
 * (one pass of classical Gram-Schmidt loses orthogonality; two suffice). */
static void orthogonalize(double *x, size_t len, const double *rows, const size_t *order,
                          size_t j)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < j; i++) {
            const double *y = rows + order[i] * len;
            double c = dot(x, y, len);
            for (size_t t = 0; t < len; t++) x[t] -= c * y[t];
        }
}

size_t dsc_svd_jacobi_work_bytes(size_t m, size_t n)
{
    size_t r = m < n ? m : n, len = m < n ? n : m;
    return (r * len + r * r + r) * sizeof(double) + r * sizeof(size_t);
}

int dsc_svd_jacobi(size_t m, size_t n, const double *a, double *s, double *u, double *v,
                   dsc_svd_sign sign, void *work)
{
    if (m == 0 || n == 0) return 0;
    const int tall = m >= n;
    const size_t r = tall ? n : m, len = tall ? m : n;
    double *b = work;          /* r x len: columns of A (tall) or rows of A (wide) */
    double *q = b + r * len;   /* r x r: accumulated rotations, one vector per row */
    double *d = q + r * r;     /* r: squared norms, then singular values */
    size_t *order = (size_t *)(d + r); /* r: indices by decreasing value */

    if (tall) {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) b[j * len + i] = a[i * n + j];
    } else {
        memcpy(b, a, m * n * sizeof(double));
    }
    memset(q, 0, r * r * sizeof(double));
    for (size_t j = 0; j < r; j++) q[j * r + j] = 1.0;

    /* Tolerance: pairs count as orthogonal at a cosine of sqrt(len) ulps. */
    const double tol = sqrt((double)len) * DBL_EPSILON;
    int sweeps = 0, converged = r < 2;
    while (!converged && sweeps < JACOBI_MAX_SWEEPS) {
        sweeps++;
        for (size_t j = 0; j < r; j++) d[j] = dot(b + j * len, b + j * len, len);
        int rotated = 0;
        for (size_t p = 0; p + 1 < r; p++) {
            for (size_t qq = p + 1; qq < r; qq++) {
                double alpha = d[p], beta = d[qq];
                if (alpha == 0.0 || beta == 0.0) continue;
                double *bp = b + p * len, *bq = b + qq * len;
                double gamma = dot(bp, bq, len);
                if (!(fabs(gamma) > tol * sqrt(alpha) * sqrt(beta))) continue;
                rotated = 1;
                /* The rotation that zeroes the off-diagonal of the 2x2 Gram
                 * [alpha gamma; gamma beta]: the smaller root t of
                 * t^2 + 2 zeta t - 1 = 0, zeta = (beta - alpha) / (2 gamma). */
                double zeta = (beta - alpha) / (2.0 * gamma);
                double t = copysign(1.0, zeta) / (fabs(zeta) + hypot(1.0, zeta));
                double c = 1.0 / sqrt(1.0 + t * t), sn = c * t;
                for (size_t i = 0; i < len; i++) {
                    double x = bp[i], y = bq[i];
                    bp[i] = c * x - sn * y;
                    bq[i] = sn * x + c * y;
                }
                double *qp = q + p * r, *qq_ = q + qq * r;
                for (size_t i = 0; i < r; i++) {
                    double x = qp[i], y = qq_[i];
                    qp[i] = c * x - sn * y;
                    qq_[i] = sn * x + c * y;
                }
                d[p] = alpha - t * gamma;
                d[qq] = beta + t * gamma;
            }
        }
        converged = !rotated;
    }

    /* Singular values from fresh norms; order by decreasing value (stable). */
    for (size_t j = 0; j < r; j++) d[j] = sqrt(dot(b + j * len, b + j * len, len));
    for (size_t j = 0; j < r; j++) {
        size_t k = j;
        while (k > 0 && d[order[k - 1]] < d[j]) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = j;
    }

    /* Normalize the long-side vectors. A tiny singular value leaves a
     * column that is orthogonal only up to eps * s_max / s_j, so those are
     * re-orthogonalized against the larger ones; zero (or numerically
     * zero) columns are replaced by unit vectors made orthogonal to the rest. */
    const double smax = d[order[0]];
    for (size_t j = 0; j < r; j++) {
        size_t c = order[j];
        double *x = b + c * len;
        double sj = d[c];
        if (sj > 0.0 && sj > smax * DBL_EPSILON) {
            for (size_t i = 0; i < len; i++) x[i] /= sj;
            if (sj < smax * 1e-6) {
                orthogonalize(x, len, b, order, j);
                double nx = sqrt(dot(x, x, len));
                for (size_t i = 0; i < len; i++) x[i] /= nx;
            }
            continue;
        }
        for (size_t e = 0; e < len; e++) {
            memset(x, 0, len * sizeof(double));
            x[e] = 1.0;
            orthogonalize(x, len, b, order, j);
            double n2 = dot(x, x, len);
            /* at most r - 1 <= len - 1 vectors to avoid, so the residuals
             * of the len unit vectors have squares summing to >= 1 */
            if (n2 > 0.5 / (double)len) {
                double nx = sqrt(n2);
                for (size_t i = 0; i < len; i++) x[i] /= nx;
                break;
            }
        }
    }

    /* Sign convention, then the outputs. Long side = U when tall, V when wide. */
    const int sign_on_long = (sign == DSC_SVD_SIGN_U) == tall;
    for (size_t j = 0; j < r; j++) {
        size_t c = order[j];
        double *lv = b + c * len, *sv = q + c * r;
        if (sign_on_long) sign_fix(lv, len, sv, r);
        else sign_fix(sv, r, lv, len);
    }
    for (size_t j = 0; j < r; j++) {
        size_t c = order[j];
        const double *lv = b + c * len, *sv = q + c * r;
        s[j] = d[c];
        double *lout = tall ? u : v, *sout = tall ? v : u;
        if (lout)
            for (size_t i = 0; i < len; i++) lout[i * r + j] = lv[i];
        if (sout)
            for (size_t i = 0; i < r; i++) sout[i * r + j] = sv[i];
    }
    return converged ? sweeps : -1;
}

/* ----------------------------------------------------------------- eigen */

size_t dsc_sym_eig_work_bytes(size_t n)
{
    return (n * n + 5 * n) * sizeof(double);
}

/* a (n x n) -> tridiagonal: d (n) diagonal, e (n) e[i] = T[i+1][i], e[n-1] = 0.
 * Reflector k (I - tau[k] v v^T on indices k+1..n-1) is left in row k of a,
 * columns k+1..n-1. p is scratch (n). */
static void tridiagonalize(size_t n, double *a, double *d, double *e, double *tau, double *p)
{
    for (size_t k = 0; k + 2 < n; k++) {
        const size_t len = n - k - 1;
        double *x = a + k * n + k + 1; /* row k right of the diagonal = column k below */
        double tail = 0.0;
        for (size_t i = 1; i < len; i++) tail += x[i] * x[i];
        if (tail == 0.0) { /* already tridiagonal in this column */
            tau[k] = 0.0;
            e[k] = x[0];
            continue;
        }
        double xnorm = sqrt(x[0] * x[0] + tail);
        double alpha = -copysign(xnorm, x[0]);
        x[0] -= alpha; /* v = x - alpha e1 */
        double t = 2.0 / (x[0] * x[0] + tail);
        tau[k] = t;
        e[k] = alpha;
        double *a22 = a + (k + 1) * n + k + 1;
        /* p = tau A22 v, one row per thread and a fixed order within a row */
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (len * len >= DSC_PAR_MIN)
        for (size_t i = 0; i < len; i++) p[i] = t * dot(a22 + i * n, x, len);
        double kk = 0.5 * t * dot(x, p, len);
        for (size_t i = 0; i < len; i++) p[i] -= kk * x[i]; /* q = p - K v */
        /* A22 <- A22 - v q^T - q v^T */
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (len * len >= DSC_PAR_MIN)
        for (size_t i = 0; i < len; i++) {
            double vi = x[i], qi = p[i];
            double *row = a22 + i * n;
            for (size_t j = 0; j < len; j++) row[j] -= vi * p[j] + qi * x[j];
        }
    }
    for (size_t i = 0; i < n; i++) d[i] = a[i * n + i];
    if (n >= 2) e[n - 2] = a[(n - 2) * n + n - 1];
    e[n - 1] = 0.0;
}

/* zt (n x n) <- Q^T where Q = H_0 H_1 ... H_{n-3}. Formed as
 * M = H_0 (H_1 (... (H_{n-3} I))), which touches only the trailing block,
 * then transposed into zt. w is scratch (n). */
static void form_qt(size_t n, const double *a, const double *tau, double *m, double *zt,
                    double *w)
{
    memset(m, 0, n * n * sizeof(double));
    for (size_t i = 0; i < n; i++) m[i * n + i] = 1.0;
    for (size_t k = n >= 3 ? n - 2 : 0; k-- > 0;) {
        if (tau[k] == 0.0) continue;
        const size_t off = k + 1, len = n - off;
        const double *v = a + k * n + off;
        /* w = v^T M[off.., off..], columns split over threads */
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (len * len >= DSC_PAR_MIN)
        for (size_t jb = 0; jb < len; jb += COL_BLOCK) {
            size_t je = jb + COL_BLOCK < len ? jb + COL_BLOCK : len;
            for (size_t j = jb; j < je; j++) w[j] = 0.0;
            for (size_t i = 0; i < len; i++) {
                const double *row = m + (off + i) * n + off;
                for (size_t j = jb; j < je; j++) w[j] += v[i] * row[j];
            }
        }
        const double t = tau[k];
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (len * len >= DSC_PAR_MIN)
        for (size_t i = 0; i < len; i++) {
            double *row = m + (off + i) * n + off;
            double f = t * v[i];
            for (size_t j = 0; j < len; j++) row[j] -= f * w[j];
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) zt[j * n + i] = m[i * n + j];
}

/* Apply the recorded rotations (rc[j], rs[j]) on rows (top - j - 1, top - j)
 * of zt (n x n), in record order, to every column. */
static void apply_rotations(size_t n, double *zt, size_t top, const double *rc,
                            const double *rs, size_t nrot)
{
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n * nrot >= DSC_PAR_MIN)
    for (size_t cb = 0; cb < n; cb += COL_BLOCK) {
        size_t ce = cb + COL_BLOCK < n ? cb + COL_BLOCK : n;
        for (size_t j = 0; j < nrot; j++) {
            size_t i = top - 1 - j;
            double c = rc[j], s = rs[j];
            double *zi = zt + i * n, *zi1 = zi + n;
            for (size_t k = cb; k < ce; k++) {
                double f = zi1[k];
                zi1[k] = s * zi[k] + c * f;
                zi[k] = c * zi[k] - s * f;
            }
        }
    }
}

/* Implicit QL on (d, e), rotations accumulated into the rows of zt (none
 * when zt is NULL: eigenvalues only, O(n^2)). */
static int tridiagonal_ql(size_t n, double *d, double *e, double *zt, double *rc, double *rs)
{
    int status = 0;
    /* Deflate when an off-diagonal entry is below eps ||T|| (as EISPACK's
     * tql2): backward stable, and unlike a test relative to the neighbouring
     * diagonal it does not stall on clusters of tiny eigenvalues, which the
     * Gram matrix of a rank-deficient gradient has. */
    double tnorm = 0.0;
    for (size_t i = 0; i < n; i++) tnorm = fmax(tnorm, fabs(d[i]) + fabs(e[i]));
    const double tol = DBL_EPSILON * tnorm;
    for (size_t l = 0; l < n; l++) {
        int iter = 0;
        for (;;) {
            size_t mm;
            for (mm = l; mm + 1 < n; mm++)
                if (fabs(e[mm]) <= tol) break;
            if (mm == l) break;
            if (++iter > QL_MAX_ITER) {
                status = -1;
                break;
            }
            /* shift: the eigenvalue of the leading 2x2 of the block nearer d[l] */
            double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            double r = hypot(g, 1.0);
            g = d[mm] - d[l] + e[l] / (g + copysign(r, g));
            double s = 1.0, c = 1.0, p = 0.0;
            size_t nrot = 0;
            int underflow = 0;
            for (size_t i = mm; i-- > l;) {
                double f = s * e[i], b = c * e[i];
                r = hypot(f, g);
                e[i + 1] = r;
                if (r == 0.0) { /* deflation by underflow: restart this block */
                    d[i + 1] -= p;
                    e[mm] = 0.0;
                    underflow = 1;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                if (zt) {
                    rc[nrot] = c;
                    rs[nrot] = s;
                }
                nrot++;
            }
            if (zt) apply_rotations(n, zt, mm, rc, rs, nrot);
            if (underflow) continue;
            d[l] -= p;
            e[l] = g;
            e[mm] = 0.0;
        }
    }
    return status;
}

int dsc_sym_eig(size_t n, double *a, double *w, void *work)
{
    if (n == 0) return 0;
    double *zt = work;          /* n x n */
    double *e = zt + n * n;     /* n */
    double *tau = e + n;        /* n */
    double *p = tau + n;        /* n */
    double *rc = p + n;         /* n */
    double *rs = rc + n;        /* n */
    tridiagonalize(n, a, w, e, tau, p);
    /* Q is formed in zt while the reflectors are read from a, then written
     * transposed over a (no longer needed) and copied back to zt. */
    form_qt(n, a, tau, zt, a, p);
    memcpy(zt, a, n * n * sizeof(double));
    int status = tridiagonal_ql(n, w, e, zt, rc, rs);
    /* Sort by decreasing eigenvalue (selection, first maximum on ties),
     * write the rows of zt to a, and apply the sign convention. */
    for (size_t j = 0; j < n; j++) {
        size_t best = j;
        for (size_t i = j + 1; i < n; i++)
            if (w[i] > w[best]) best = i;
        if (best != j) {
            double t = w[j];
            w[j] = w[best];
            w[best] = t;
            double *x = zt + j * n, *y = zt + best * n;
            for (size_t i = 0; i < n; i++) {
                double tt = x[i];
                x[i] = y[i];
                y[i] = tt;
            }
        }
    }
    memcpy(a, zt, n * n * sizeof(double));
    for (size_t j = 0; j < n; j++) sign_fix(a + j * n, n, NULL, 0);
    return status;
}

/* ----------------------------------------------- top-k by inverse iteration */

size_t dsc_sym_eig_top_work_bytes(size_t n) { return 11 * n * sizeof(double); }

/* LU with partial pivoting of T - lam I (T: diagonal d, off-diagonal e):
 * U has diagonals u0, u1, u2; step i's multiplier is lm[i], sw[i] != 0
 * when rows i and i+1 were swapped. Pivots below `tiny` become +-tiny (the
 * matrix is singular to working precision by design: lam is an eigenvalue). */
static void tri_factor(size_t n, const double *d, const double *e, double lam, double tiny,
                       double *u0, double *u1, double *u2, double *lm, double *sw)
{
    double cd = d[0] - lam, cs = n > 1 ? e[0] : 0.0;
    for (size_t i = 0; i + 1 < n; i++) {
        double sub = e[i], dn = d[i + 1] - lam, en = i + 2 < n ? e[i + 1] : 0.0;
        if (fabs(sub) > fabs(cd)) { /* the next row pivots */
            double mult = cd / sub;
            u0[i] = sub;
            u1[i] = dn;
            u2[i] = en;
            cd = cs - mult * dn;
            cs = -mult * en;
            lm[i] = mult;
            sw[i] = 1.0;
        } else {
            if (fabs(cd) < tiny) cd = cd < 0 ? -tiny : tiny;
            double mult = sub / cd;
            u0[i] = cd;
            u1[i] = cs;
            u2[i] = 0.0;
            cd = dn - mult * cs;
            cs = en;
            lm[i] = mult;
            sw[i] = 0.0;
        }
    }
    if (fabs(cd) < tiny) cd = cd < 0 ? -tiny : tiny;
    u0[n - 1] = cd;
}

/* y <- (T - lam I)^{-1} y with the factors of tri_factor. */
static void tri_solve(size_t n, const double *u0, const double *u1, const double *u2,
                      const double *lm, const double *sw, double *y)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (sw[i] != 0.0) {
            double t = y[i];
            y[i] = y[i + 1];
            y[i + 1] = t;
        }
        y[i + 1] -= lm[i] * y[i];
    }
    for (size_t i = n; i-- > 0;) {
        double acc = y[i];
        if (i + 1 < n) acc -= u1[i] * y[i + 1];
        if (i + 2 < n) acc -= u2[i] * y[i + 2];
        y[i] = acc / u0[i];
    }
}

static void normalize(double *x, size_t n)
{
    double big = 0.0;
    for (size_t i = 0; i < n; i++) big = fmax(big, fabs(x[i]));
    if (big == 0.0) return;
    for (size_t i = 0; i < n; i++) x[i] /= big; /* no overflow in the norm */
    double nx = sqrt(dot(x, x, n));
    for (size_t i = 0; i < n; i++) x[i] /= nx;
}

int dsc_sym_eig_top(size_t n, size_t k, double *a, double *w, double *vecs, void *work)
{
    if (n == 0 || k == 0) return 0;
    if (k > n) k = n;
    double *d = work, *e = d + n, *tau = e + n, *p = tau + n, *ev = p + n, *ee = ev + n;
    double *u0 = ee + n, *u1 = u0 + n, *u2 = u1 + n, *lm = u2 + n, *sw = lm + n;
    tridiagonalize(n, a, d, e, tau, p);
    memcpy(ev, d, n * sizeof(double));
    memcpy(ee, e, n * sizeof(double));
    int status = tridiagonal_ql(n, ev, ee, NULL, NULL, NULL);
    /* the k largest eigenvalues, in decreasing order */
    for (size_t j = 0; j < k; j++) {
        size_t best = j;
        for (size_t i = j + 1; i < n; i++)
            if (ev[i] > ev[best]) best = i;
        double t = ev[j];
        ev[j] = ev[best];
        ev[best] = t;
        w[j] = ev[j];
    }
    double tnorm = 0.0;
    for (size_t i = 0; i < n; i++)
        tnorm = fmax(tnorm, fabs(d[i]) + (i + 1 < n ? fabs(e[i]) : 0.0) +
                                (i > 0 ? fabs(e[i - 1]) : 0.0));
    /* LAPACK's dstein constants: pivots floored at eps ||T||, vectors of
     * eigenvalues closer than 1e-3 ||T|| kept orthogonal explicitly. */
    const double tiny = DBL_EPSILON * tnorm, ortol = 1e-3 * tnorm;
    for (size_t j = 0; j < k; j++) {
        double *y = vecs + j * n;
        if (tnorm == 0.0) { /* T = 0: the unit vectors, as QL would give */
            memset(y, 0, n * sizeof(double));
            y[j] = 1.0;
            continue;
        }
        tri_factor(n, d, e, w[j], tiny, u0, u1, u2, lm, sw);
        /* a fixed pseudo-random start, one stream of the library generator
         * per vector (any start with a component along the wanted vector
         * works; a fixed one keeps the bits reproducible) */
        uint64_t state = (uint64_t)j;
        for (size_t i = 0; i < n; i++) y[i] = dsc_rng_unit(dsc_rng_next(&state)) - 0.5;
        for (int it = 0; it < 3; it++) {
            tri_solve(n, u0, u1, u2, lm, sw, y);
            normalize(y, n);
            for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < j; i++) {
                    if (fabs(w[i] - w[j]) > ortol) continue;
                    const double *z = vecs + i * n;
                    double c = dot(y, z, n);
                    for (size_t t = 0; t < n; t++) y[t] -= c * z[t];
                }
            normalize(y, n);
        }
    }
    /* back to A's basis: v = Q y = H_0 (H_1 (... H_{n-3} y)), one vector per thread */
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (n * n * k >= 4 * DSC_PAR_MIN)
    for (size_t j = 0; j < k; j++) {
        double *y = vecs + j * n;
        for (size_t r = n >= 3 ? n - 2 : 0; r-- > 0;) {
            if (tau[r] == 0.0) continue;
            const double *v = a + r * n + r + 1;
            double c = tau[r] * dot(v, y + r + 1, n - r - 1);
            for (size_t t = 0; t < n - r - 1; t++) y[r + 1 + t] -= c * v[t];
        }
        sign_fix(y, n, NULL, 0);
    }
    return status;
}

/* ------------------------------------------------------------------ Gram */

#define GRAM_BLOCK 64

void dsc_gram_f64(size_t r, size_t len, const double *x, double *c)
{
    const size_t nch = (r + GRAM_BLOCK - 1) / GRAM_BLOCK;
    const int par = (double)r * (double)r * (double)len >= 1e6;
#ifdef DSC_HAVE_CBLAS
    int nt = openblas_get_num_threads();
    if (nt != 1) openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(dsc_threads()) if (par && nch > 1)
    for (size_t ch = 0; ch < nch; ch++) {
        size_t i0 = ch * GRAM_BLOCK, i1 = i0 + GRAM_BLOCK < r ? i0 + GRAM_BLOCK : r;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(i1 - i0), (int)(r - i0),
                    (int)len, 1.0, x + i0 * len, (int)len, x + i0 * len, (int)len, 0.0,
                    c + i0 * r + i0, (int)r);
    }
    if (nt != 1) openblas_set_num_threads(nt);
#else
#pragma omp parallel for schedule(dynamic, 1) num_threads(dsc_threads()) if (par && nch > 1)
    for (size_t ch = 0; ch < nch; ch++) {
        size_t i0 = ch * GRAM_BLOCK, i1 = i0 + GRAM_BLOCK < r ? i0 + GRAM_BLOCK : r;
        for (size_t i = i0; i < i1; i++)
            for (size_t j = i; j < r; j++) c[i * r + j] = dot(x + i * len, x + j * len, len);
    }
#endif
    for (size_t i = 0; i < r; i++)
        for (size_t j = i + 1; j < r; j++) c[j * r + i] = c[i * r + j];
}
