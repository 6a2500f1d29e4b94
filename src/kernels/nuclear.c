/* nuclear.c - nuclear norm via the smaller Gram matrix and Jacobi
 * eigenvalues, all in double. Contract in nuclear.h. */
#include "nuclear.h"

#include "vec.h"

#include "gemm.h"

#include <math.h>
#include <string.h>
#ifdef DSC_HAVE_CBLAS
#include <cblas.h>
#endif

size_t dsc_nuclear_work_bytes(size_t m, size_t n)
{
    size_t r = m < n ? m : n;
    size_t c = m < n ? n : m;
    return (r * r + 4 * r + r * c) * sizeof(double);
}

/* Reference Gram, g (r x r) = x x^T for x (r x c, row-major): dot products. */
static void gram_rows(const float *x, size_t r, size_t c, double *g)
{
    for (size_t i = 0; i < r; i++)
        for (size_t j = i; j < r; j++) {
            double s = 0.0;
            for (size_t k = 0; k < c; k++) s += (double)x[i * c + k] * (double)x[j * c + k];
            g[i * r + j] = g[j * r + i] = s;
        }
}

/* Reference Gram, g (r x r) = x^T x for x (c x r, row-major): each row i of
 * g accumulates x[k][i] x[k][j] over k in order. */
static void gram_cols(const float *x, size_t c, size_t r, double *g)
{
    for (size_t i = 0; i < r; i++) {
        double *gi = g + i * r;
        for (size_t j = i; j < r; j++) gi[j] = 0.0;
        for (size_t k = 0; k < c; k++) {
            const float *xk = x + k * r;
            double xi = (double)xk[i];
            for (size_t j = i; j < r; j++) gi[j] += xi * (double)xk[j];
        }
    }
    for (size_t i = 1; i < r; i++)
        for (size_t j = 0; j < i; j++) g[i * r + j] = g[j * r + i];
}

/* Fast Gram: x converted to double as xt (c x r, k-major), then
 * g = xt^T xt by one single-threaded dsyrk (CBLAS) or by rows of g
 * accumulated over k in order (contiguous in j, so it vectorizes). */
static void gram_fast(const float *x, size_t m, size_t n, double *g, double *xt)
{
    size_t r = m < n ? m : n, c = m < n ? n : m;
    if (m <= n) { /* x is r x c: transpose */
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (r * c >= DSC_PAR_MIN)
        for (size_t i = 0; i < r; i++)
            for (size_t k = 0; k < c; k++) xt[k * r + i] = (double)x[i * c + k];
    } else {
#pragma omp parallel for simd schedule(static) num_threads(dsc_threads()) if (r * c >= DSC_PAR_MIN)
        for (size_t i = 0; i < r * c; i++) xt[i] = (double)x[i];
    }
#ifdef DSC_HAVE_CBLAS
    if (r <= 2147483647u && c <= 2147483647u) {
        int saved = dsc_blas_single_begin();
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)r, (int)c, 1.0, xt, (int)r, 0.0,
                    g, (int)r);
        dsc_blas_single_end(saved);
        for (size_t i = 1; i < r; i++)
            for (size_t j = 0; j < i; j++) g[i * r + j] = g[j * r + i];
        return;
    }
#endif
#pragma omp parallel for schedule(dynamic, 8) num_threads(dsc_threads()) if (r * r * c >= DSC_PAR_MIN)
    for (size_t i = 0; i < r; i++) {
        double *gi = g + i * r;
        for (size_t j = i; j < r; j++) gi[j] = 0.0;
        for (size_t k = 0; k < c; k++) {
            const double *xk = xt + k * r;
            const double xi = xk[i];
            for (size_t j = i; j < r; j++) gi[j] += xi * xk[j];
        }
    }
    for (size_t i = 1; i < r; i++)
        for (size_t j = 0; j < i; j++) g[i * r + j] = g[j * r + i];
}

int dsc_jacobi_eigenvalues(double *a, size_t n, double *w)
{
    int sweeps = -1;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0.0, diag = 0.0;
        for (size_t p = 0; p < n; p++) {
            diag += a[p * n + p] * a[p * n + p];
            for (size_t q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
        }
        if (off == 0.0 || off <= 1e-32 * diag) {
            sweeps = sweep;
            break;
        }
        for (size_t p = 0; p + 1 < n; p++)
            for (size_t q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0.0) continue;
                double app = a[p * n + p], aqq = a[q * n + q];
                /* rotation that annihilates a[p][q] (t the smaller root) */
                double theta = (aqq - app) / (2.0 * apq);
                double t = 1.0 / (fabs(theta) + sqrt(theta * theta + 1.0));
                if (theta < 0.0) t = -t;
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (size_t k = 0; k < n; k++) {
                    if (k == p || k == q) continue;
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = a[p * n + k] = c * akp - s * akq;
                    a[k * n + q] = a[q * n + k] = s * akp + c * akq;
                }
                a[p * n + p] = app - t * apq;
                a[q * n + q] = aqq + t * apq;
                a[p * n + q] = a[q * n + p] = 0.0;
            }
    }
    for (size_t i = 0; i < n; i++) w[i] = a[i * n + i];
    return sweeps;
}

/* Householder reduction of the symmetric a (n x n, both triangles, destroyed)
 * to tridiagonal form: diagonal d (n), off-diagonal e (n, e[i] couples i and
 * i + 1). Step k reflects column k below the diagonal onto its first entry
 * with H = I - 2 v v^T and updates the trailing block as
 * A <- A - 2 (v w^T + w v^T), w = A v - (v^T A v) v. `v` and `w` are n
 * doubles of workspace. Rows are split over threads; each sum keeps its order. */
static void tridiagonalize(double *a, size_t n, double *d, double *e, double *v, double *w)
{
    for (size_t k = 0; k + 2 < n; k++) {
        size_t s = k + 1, len = n - s;
        double norm2 = 0.0;
        for (size_t i = s; i < n; i++) norm2 += a[i * n + k] * a[i * n + k];
        double x0 = a[s * n + k], alpha = x0 > 0 ? -sqrt(norm2) : sqrt(norm2);
        d[k] = a[k * n + k];
        e[k] = alpha;
        double vnorm2 = norm2 - x0 * x0 + (x0 - alpha) * (x0 - alpha);
        if (norm2 == 0.0 || vnorm2 == 0.0) {
            e[k] = x0;
            continue;
        }
        double inv = 1.0 / sqrt(vnorm2);
        for (size_t i = s; i < n; i++) v[i] = a[i * n + k] * inv;
        v[s] = (x0 - alpha) * inv;
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (len * len >= DSC_PAR_MIN)
        for (size_t i = s; i < n; i++) {
            double t = 0.0;
            for (size_t j = s; j < n; j++) t += a[i * n + j] * v[j];
            w[i] = t;
        }
        double kk = 0.0;
        for (size_t i = s; i < n; i++) kk += v[i] * w[i];
        for (size_t i = s; i < n; i++) w[i] -= kk * v[i];
#pragma omp parallel for schedule(static) num_threads(dsc_threads()) if (len * len >= DSC_PAR_MIN)
        for (size_t i = s; i < n; i++)
            for (size_t j = s; j < n; j++) a[i * n + j] -= 2.0 * (v[i] * w[j] + w[i] * v[j]);
    }
    if (n >= 2) {
        d[n - 2] = a[(n - 2) * n + n - 2];
        e[n - 2] = a[(n - 1) * n + n - 2];
    }
    d[n - 1] = a[(n - 1) * n + n - 1];
    e[n - 1] = 0.0;
}

/* Eigenvalues of the tridiagonal (d, e) by implicit QL with Wilkinson-type
 * shifts, into d. Returns 0, or -1 if one needed more than 60 iterations. */
static int tridiagonal_ql(double *d, double *e, size_t n)
{
    for (size_t l = 0; l < n; l++) {
        int iter = 0;
        size_t m;
        do {
            for (m = l; m + 1 < n; m++) {
                double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= 1e-16 * dd) break;
            }
            if (m != l) {
                if (iter++ == 60) return -1;
                double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
                double r = hypot(g, 1.0);
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
                double s = 1.0, c = 1.0, p = 0.0;
                ptrdiff_t i;
                for (i = (ptrdiff_t)m - 1; i >= (ptrdiff_t)l; i--) {
                    double f = s * e[i], b = c * e[i];
                    r = hypot(f, g);
                    e[i + 1] = r;
                    if (r == 0.0) { /* underflow: split here */
                        d[i + 1] -= p;
                        e[m] = 0.0;
                        break;
                    }
                    s = f / r;
                    c = g / r;
                    g = d[i + 1] - p;
                    r = (d[i] - g) * s + 2.0 * c * b;
                    p = s * r;
                    d[i + 1] = g + p;
                    g = c * r - b;
                }
                if (r == 0.0 && i >= (ptrdiff_t)l) continue;
                d[l] -= p;
                e[l] = g;
                e[m] = 0.0;
            }
        } while (m != l);
    }
    return 0;
}

int dsc_tridiagonal_eigenvalues(double *a, size_t n, double *w, double *work)
{
    if (n == 0) return 0;
    double *e = work, *v = e + n, *x = v + n;
    tridiagonalize(a, n, w, e, v, x);
    return tridiagonal_ql(w, e, n);
}

double dsc_nuclear_norm(const float *x, size_t m, size_t n, int reference, void *work)
{
    if (m == 0 || n == 0) return 0.0;
    size_t r = m < n ? m : n;
    double *g = work, *w = g + r * r, *extra = w + r, *xt = extra + 3 * r;
    if (reference) {
        if (m <= n) gram_rows(x, m, n, g);
        else gram_cols(x, m, n, g);
        dsc_jacobi_eigenvalues(g, r, w);
    } else {
        gram_fast(x, m, n, g, xt);
        if (dsc_tridiagonal_eigenvalues(g, r, w, extra) != 0) {
            gram_fast(x, m, n, g, xt); /* QL did not converge: Jacobi's answer */
            dsc_jacobi_eigenvalues(g, r, w);
        }
    }
    double s = 0.0;
    for (size_t i = 0; i < r; i++) s += w[i] > 0.0 ? sqrt(w[i]) : 0.0;
    return s;
}
