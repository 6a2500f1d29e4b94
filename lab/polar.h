/* polar.h - exact thin SVD and polar factor in double, for tests and the
 * `descent polar` diagnostic (docs/matrix.md, the exact polar factor). Not part of libdescent.
 *
 * polar(G) = U V^T for the thin SVD G = U S V^T: the nearest semi-orthogonal
 * matrix to G, unique when G has full rank. Two implementations: LAPACKE
 * dgesvd when the build found liblapacke (DSC_HAVE_LAPACKE), and a one-sided
 * (Hestenes) Jacobi SVD written here, always available; polar_svd uses the
 * first it has. These helpers allocate (malloc); they are not for steps. */
#ifndef DESCENT_POLAR_H
#define DESCENT_POLAR_H

#include <stddef.h>

/* Thin SVD of a (m x n, row-major), k = min(m, n): s (k) descending,
 * u (m x k) and v (n x k) row-major with orthonormal columns. Returns 0, or
 * -1 on failure (no memory, no convergence). */
int polar_svd(const double *a, size_t m, size_t n, double *u, double *s, double *v);
int polar_svd_jacobi(const double *a, size_t m, size_t n, double *u, double *s, double *v);

/* p (m x n) = U V^T. Returns 0 or -1. */
int polar_factor(const double *a, size_t m, size_t n, double *p);

/* "lapacke" or "jacobi": what polar_svd uses. */
const char *polar_backend(void);

#endif
