/* nuclear.c - nuclear norm via the smaller Gram matrix and Jacobi
 * eigenvalues, all in double. Contract in nuclear.h. */
#include "nuclear.h"

#include "../core/internal.h"

#include <math.h>
#include <string.h>

size_t dsc_nuclear_work_bytes(size_t m, size_t n)
{
    size_t r = m < n ? m : n;
    return (r * r + r) * sizeof(double);
}

/* g (r x r) = x x^T for x (r x c, row-major): row dot products. */
static void gram_rows(const float *x, size_t r, size_t c, double *g, int reference)
{
#pragma omp parallel for schedule(dynamic, 8) num_threads(dsc_threads()) if (!reference && r * r * c >= DSC_PAR_MIN)
    for (size_t i = 0; i < r; i++)
        for (size_t j = i; j < r; j++) {
            double s = 0.0;
            for (size_t k = 0; k < c; k++) s += (double)x[i * c + k] * (double)x[j * c + k];
            g[i * r + j] = g[j * r + i] = s;
        }
}

/* g (r x r) = x^T x for x (c x r, row-major): each row i of g accumulates
 * x[k][i] x[k][j] over k in order (contiguous in j). */
static void gram_cols(const float *x, size_t c, size_t r, double *g, int reference)
{
#pragma omp parallel for schedule(dynamic, 8) num_threads(dsc_threads()) if (!reference && r * r * c >= DSC_PAR_MIN)
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
    size_t r = m < n ? m : n;
    double *g = work, *w = g + r * r;
    if (m <= n) gram_rows(x, m, n, g, reference);
    else gram_cols(x, m, n, g, reference);
    dsc_jacobi_eigenvalues(g, r, w);
    double s = 0.0;
    for (size_t i = 0; i < r; i++) s += w[i] > 0.0 ? sqrt(w[i]) : 0.0;
    return s;
}
