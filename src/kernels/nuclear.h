/* nuclear.h - nuclear norm (sum of singular values) of a float32 matrix, for
 * lanton's noise estimate (docs/matrix.md, LANTON). Internal.
 *
 * ||X||_* = sum_i sqrt(lambda_i) over the eigenvalues of the smaller Gram
 * matrix (X X^T when m <= n, else X^T X), formed in double (eigenvalues
 * only; negative round-off eigenvalues count as 0). Only libc/libm: no
 * LAPACK in the core library. Two eigen-solvers, both in double:
 *   - reference: cyclic Jacobi rotations, O(sweeps r^3), simple and robust;
 *   - fast: Householder tridiagonalization and implicit QL, O(4/3 r^3)
 *     (falls back to Jacobi if QL does not converge).
 * r = min(m, n), c = max(m, n); the Gram costs O(r^2 c): plain loops in the
 * reference, one single-threaded dsyrk (CBLAS) or vectorizable rows on a
 * double copy in the fast path. Sums run in a fixed order, so the result
 * does not depend on threads. Workspace includes that r x c double copy.
 * The caller passes dsc_nuclear_work_bytes(m, n) bytes, 8-byte aligned. */
#ifndef DESCENT_KERNELS_NUCLEAR_H
#define DESCENT_KERNELS_NUCLEAR_H

#include <stddef.h>

size_t dsc_nuclear_work_bytes(size_t m, size_t n);

/* Nuclear norm of x (m x n, row-major). reference: plain serial loops. */
double dsc_nuclear_norm(const float *x, size_t m, size_t n, int reference, void *work);

/* Eigenvalues of the symmetric a (n x n, row-major, both triangles; it is
 * overwritten) by cyclic Jacobi, written to w (n, unsorted). Returns the
 * sweeps used, or -1 if 60 sweeps did not reach full accuracy. */
int dsc_jacobi_eigenvalues(double *a, size_t n, double *w);

/* Eigenvalues of the symmetric a (n x n, both triangles; overwritten) by
 * tridiagonalization and implicit QL, into w (n, unsorted). work: 3 n
 * doubles. Returns 0, or -1 if QL needed more than 60 iterations. */
int dsc_tridiagonal_eigenvalues(double *a, size_t n, double *w, double *work);

#endif /* DESCENT_KERNELS_NUCLEAR_H */
