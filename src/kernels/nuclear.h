/* nuclear.h - nuclear norm (sum of singular values) of a float32 matrix, for
 * lanton's noise estimate (spec matrix.md 10). Internal.
 *
 * ||X||_* = sum_i sqrt(lambda_i) over the eigenvalues of the smaller Gram
 * matrix (X X^T when m <= n, else X^T X), formed in double and diagonalized
 * by cyclic Jacobi rotations in double (eigenvalues only; negative round-off
 * eigenvalues count as 0). Only libc/libm: no LAPACK in the core library.
 * Cost O(r^2 c) for the Gram and O(sweeps r^3) for Jacobi, r = min(m, n),
 * c = max(m, n): fine for the small and medium layers it is used on, slow
 * (seconds) at r = 768; a tridiagonal QL solver would cut the second term.
 * Sums run in a fixed order, so the result does not depend on threads.
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

#endif /* DESCENT_KERNELS_NUCLEAR_H */
