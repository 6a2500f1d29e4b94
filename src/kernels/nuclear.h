/* nuclear.h - nuclear norm (sum of singular values) of a float32 matrix, for
 * lanton's noise estimate (docs/matrix.md, LANTON). Internal.
 *
 * ||X||_* = sum_i sqrt(lambda_i) over the eigenvalues of the smaller Gram
 * matrix (X X^T when m <= n, else X^T X), formed in double (eigenvalues
 * only; negative round-off eigenvalues count as 0). Only libc/libm: no
 * LAPACK in the core library. X is first widened to a double copy with
 * the short side as rows (transposed when tall), then:
 *   - reference: the plain-loop Gram (dsc_gram_f64_reference) and cyclic
 *     Jacobi rotations, O(sweeps r^3), simple and robust;
 *   - fast: dsc_gram_f64 and dsc_sym_eigenvalues (svd.h: Householder
 *     tridiagonalization and implicit QL, O(4/3 r^3)), falling back to
 *     Jacobi if QL does not converge.
 * r = min(m, n), c = max(m, n); the Gram costs O(r^2 c). Sums run in a
 * fixed order, so the result does not depend on threads. Workspace
 * includes the r x c double copy. The caller passes
 * dsc_nuclear_work_bytes(m, n) bytes, 8-byte aligned. */
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

#endif /* DESCENT_KERNELS_NUCLEAR_H */
