/* polar.c - thin SVD (LAPACKE or one-sided Jacobi) and polar factor, double. */
#include "polar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef DSC_HAVE_LAPACKE
#include <lapacke.h>
#endif

/* One-sided Jacobi on the columns of w (rows x cols, rows >= cols):
 * orthogonalizes the columns by plane rotations, accumulating them in v
 * (cols x cols, row-major, starting at I). */
static int hestenes(double *w, size_t rows, size_t cols, double *v)
{
    for (size_t i = 0; i < cols; i++)
        for (size_t j = 0; j < cols; j++) v[i * cols + j] = i == j;
    for (int sweep = 0; sweep < 80; sweep++) {
        int rotated = 0;
        for (size_t p = 0; p + 1 < cols; p++)
            for (size_t q = p + 1; q < cols; q++) {
                double al = 0, be = 0, ga = 0;
                for (size_t i = 0; i < rows; i++) {
                    double x = w[i * cols + p], y = w[i * cols + q];
                    al += x * x;
                    be += y * y;
                    ga += x * y;
                }
                if (ga == 0.0 || fabs(ga) <= 1e-15 * sqrt(al * be)) continue;
                rotated = 1;
                double zeta = (be - al) / (2.0 * ga);
                double t = 1.0 / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                if (zeta < 0) t = -t;
                double c = 1.0 / sqrt(1.0 + t * t), s = c * t;
                for (size_t i = 0; i < rows; i++) {
                    double x = w[i * cols + p], y = w[i * cols + q];
                    w[i * cols + p] = c * x - s * y;
                    w[i * cols + q] = s * x + c * y;
                }
                for (size_t i = 0; i < cols; i++) {
                    double x = v[i * cols + p], y = v[i * cols + q];
                    v[i * cols + p] = c * x - s * y;
                    v[i * cols + q] = s * x + c * y;
                }
            }
        if (!rotated) return 0;
    }
    return -1;
}

int polar_svd_jacobi(const double *a, size_t m, size_t n, double *u, double *s, double *v)
{
    int tall = m >= n;
    size_t rows = tall ? m : n, cols = tall ? n : m; /* work on a or a^T */
    double *w = malloc(rows * cols * sizeof *w), *r = malloc(cols * cols * sizeof *r);
    size_t *order = malloc(cols * sizeof *order);
    double *norm = malloc(cols * sizeof *norm);
    int rc = -1;
    if (!w || !r || !order || !norm) goto done;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            if (tall) w[i * cols + j] = a[i * n + j];
            else w[j * cols + i] = a[i * n + j];
        }
    rc = hestenes(w, rows, cols, r);
    for (size_t j = 0; j < cols; j++) {
        double q = 0;
        for (size_t i = 0; i < rows; i++) q += w[i * cols + j] * w[i * cols + j];
        norm[j] = sqrt(q);
        order[j] = j;
    }
    for (size_t i = 1; i < cols; i++) /* descending singular values */
        for (size_t j = i; j > 0 && norm[order[j]] > norm[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    /* tall: a = W_hat S R^T -> U from W, V from R; wide: roles swap */
    double *left = tall ? u : v, *right = tall ? v : u;
    for (size_t k = 0; k < cols; k++) {
        size_t j = order[k];
        s[k] = norm[j];
        for (size_t i = 0; i < rows; i++)
            left[i * cols + k] = norm[j] > 0 ? w[i * cols + j] / norm[j] : 0.0;
        for (size_t i = 0; i < cols; i++) right[i * cols + k] = r[i * cols + j];
    }
done:
    free(w);
    free(r);
    free(order);
    free(norm);
    return rc;
}

const char *polar_backend(void)
{
#ifdef DSC_HAVE_LAPACKE
    return "lapacke";
#else
    return "jacobi";
#endif
}

int polar_svd(const double *a, size_t m, size_t n, double *u, double *s, double *v)
{
#ifdef DSC_HAVE_LAPACKE
    size_t k = m < n ? m : n;
    double *acopy = malloc(m * n * sizeof *acopy), *vt = malloc(k * n * sizeof *vt);
    double *superb = malloc((k > 1 ? k : 2) * sizeof *superb);
    int rc = -1;
    if (acopy && vt && superb) {
        memcpy(acopy, a, m * n * sizeof *acopy);
        lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'S', (lapack_int)m,
                                         (lapack_int)n, acopy, (lapack_int)n, s, u,
                                         (lapack_int)k, vt, (lapack_int)n, superb);
        if (info == 0) {
            for (size_t i = 0; i < k; i++) /* v = vt^T */
                for (size_t j = 0; j < n; j++) v[j * k + i] = vt[i * n + j];
            rc = 0;
        }
    }
    free(acopy);
    free(vt);
    free(superb);
    return rc;
#else
    return polar_svd_jacobi(a, m, n, u, s, v);
#endif
}

int polar_factor(const double *a, size_t m, size_t n, double *p)
{
    size_t k = m < n ? m : n;
    double *u = malloc(m * k * sizeof *u), *s = malloc(k * sizeof *s),
           *v = malloc(n * k * sizeof *v);
    int rc = -1;
    if (u && s && v && polar_svd(a, m, n, u, s, v) == 0) {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double t = 0;
                for (size_t l = 0; l < k; l++) t += u[i * k + l] * v[j * k + l];
                p[i * n + j] = t;
            }
        rc = 0;
    }
    free(u);
    free(s);
    free(v);
    return rc;
}
