/* nuclear.c - nuclear norm from the eigenvalues of the smaller Gram
 * matrix, all in double. Contract in nuclear.h. The Gram matrix and the
 * tridiagonal QL are svd.c's (one copy of each); the cyclic Jacobi
 * eigenvalue solver here is the reference and the fallback. */
#include "nuclear.h"

#include "parallel.h"
#include "svd.h"

#include <math.h>
#include <string.h>

size_t dsc_nuclear_work_bytes(size_t m, size_t n)
{
    size_t r = m < n ? m : n;
    size_t c = m < n ? n : m;
    return (r * r + 4 * r + r * c) * sizeof(double);
}

/* xt (r x c, row-major) = x in double, transposed when x is tall (m > n),
 * so that the smaller Gram matrix is always xt xt^T. Element-wise copies:
 * any split gives the same bits. */
typedef struct {
    const float *x;
    double *xt;
    size_t r, c;
} widen_job;

static void widen_range(const void *ctx, size_t lo, size_t hi)
{
    const widen_job *j = ctx;
    const float *restrict x = j->x;
    double *restrict xt = j->xt;
    for (size_t i = lo; i < hi; i++) xt[i] = (double)x[i];
}

/* rows [lo, hi) of xt from the columns of the tall x (c x r) */
static void widen_transpose_rows(const void *ctx, size_t lo, size_t hi)
{
    const widen_job *j = ctx;
    const size_t r = j->r, c = j->c;
    for (size_t i = lo; i < hi; i++)
        for (size_t k = 0; k < c; k++) j->xt[i * c + k] = (double)j->x[k * r + i];
}

static void widen_rows(const float *x, size_t m, size_t n, double *xt, int reference)
{
    widen_job job = {x, xt, m < n ? m : n, m < n ? n : m};
    if (m <= n) {
        if (reference) widen_range(&job, 0, m * n);
        else dsc_parallel_ranges(m * n, widen_range, &job);
    } else {
        dsc_parallel_items(job.r, !reference && m * n >= DSC_PAR_MIN, widen_transpose_rows, &job);
    }
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

double dsc_nuclear_norm(const float *x, size_t m, size_t n, int reference, void *work)
{
    if (m == 0 || n == 0) return 0.0;
    size_t r = m < n ? m : n, c = m < n ? n : m;
    double *g = work, *w = g + r * r, *extra = w + r, *xt = extra + 3 * r;
    widen_rows(x, m, n, xt, reference);
    if (reference) {
        dsc_gram_f64_reference(r, c, xt, g);
        dsc_jacobi_eigenvalues(g, r, w);
    } else {
        dsc_gram_f64(r, c, xt, g);
        if (dsc_sym_eigenvalues(r, g, w, extra) != 0) {
            dsc_gram_f64(r, c, xt, g); /* QL did not converge: Jacobi's answer */
            dsc_jacobi_eigenvalues(g, r, w);
        }
    }
    double s = 0.0;
    for (size_t i = 0; i < r; i++) s += w[i] > 0.0 ? sqrt(w[i]) : 0.0;
    return s;
}
