/* svd.h - dense singular value and symmetric eigen decompositions in double,
 * for the low-rank projectors of GaLore and Fira (docs/matrix.md, GaLore and Fira).
 *
 * Contract: row-major matrices, every workspace passed in by the caller
 * (sized by the *_work_bytes functions, so plans can reserve it), no
 * allocation, no LAPACK. Results are sorted by decreasing singular value
 * (eigenvalue) and carry the sign convention of docs/matrix.md: each singular vector
 * (eigenvector) named by the caller is flipped so that its entry of largest
 * magnitude, the first one on ties, is positive; its partner flips with it.
 *
 * Two routes:
 *  - dsc_svd_jacobi: one-sided (Hestenes) Jacobi on the matrix itself.
 *    Accurate to a few ulps relative to the largest singular value for
 *    every singular triple, small ones included; O(sweeps * min^2 * max).
 *    The reference path and the tests use it.
 *  - dsc_sym_eig: Householder tridiagonalization and implicit QL with
 *    Wilkinson-type shifts, O(n^3) with a small constant. Applied to the
 *    smaller Gram matrix (G^T G or G G^T) it gives the singular vectors the
 *    projector needs, about 20 to 50 times faster than Jacobi on the
 *    matrix for GPT-2 shapes. See lowrank.c for why its accuracy suffices.
 * Neither depends on the thread count: parallel loops only split
 * independent rows or columns, each computed in a fixed order. */
#ifndef DSC_KERNELS_SVD_H
#define DSC_KERNELS_SVD_H

#include <stddef.h>

typedef enum {
    DSC_SVD_SIGN_U = 0, /* the convention is applied to the left vectors */
    DSC_SVD_SIGN_V = 1  /* ... to the right vectors */
} dsc_svd_sign;

/* Bytes of workspace dsc_svd_jacobi needs for an m x n matrix. */
size_t dsc_svd_jacobi_work_bytes(size_t m, size_t n);

/* Thin SVD A = U diag(s) V^T of a (m x n, row-major, read only), r = min(m, n):
 * s (r) descending, u (m x r) and v (n x r) row-major with orthonormal
 * columns; u or v may be NULL when not needed. Columns of U for zero
 * singular values are completed to an orthonormal set. `work` needs
 * dsc_svd_jacobi_work_bytes(m, n) bytes, 8-byte aligned. Returns the number
 * of sweeps, or -1 if 80 sweeps did not converge (the result is then still
 * a valid, slightly less accurate decomposition). m = 0 or n = 0: returns 0. */
int dsc_svd_jacobi(size_t m, size_t n, const double *a, double *s, double *u, double *v,
                   dsc_svd_sign sign, void *work);

/* Bytes of workspace dsc_sym_eig needs for an n x n matrix. */
size_t dsc_sym_eig_work_bytes(size_t n);

/* Eigen-decomposition of the symmetric a (n x n, row-major; both triangles
 * are read). On return w (n) holds the eigenvalues in decreasing order and
 * row j of a the unit eigenvector of w[j], with the sign convention. Returns
 * 0, or -1 if an eigenvalue needed more than 60 QL iterations. */
int dsc_sym_eig(size_t n, double *a, double *w, void *work);

/* The k largest eigenpairs of the symmetric a (n x n, destroyed): w (k)
 * decreasing, vecs (k x n) row j the unit eigenvector of w[j], sign
 * convention applied. Eigenvalues by QL without vectors (O(n^2)), vectors by
 * inverse iteration on the tridiagonal matrix (3 solves from a fixed start,
 * re-orthogonalized within clusters closer than 1e-3 ||T||, as LAPACK's
 * dstein), then the Householder back-transformation: O(4/3 n^3 + 2 n^2 k)
 * instead of the ~6 n^3 of accumulating every QL rotation. `work` needs
 * dsc_sym_eig_top_work_bytes(n) bytes. Returns 0, or -1 as dsc_sym_eig. */
size_t dsc_sym_eig_top_work_bytes(size_t n);
int dsc_sym_eig_top(size_t n, size_t k, double *a, double *w, double *vecs, void *work);

/* Eigenvalues only, of the symmetric a (n x n, row-major, both triangles;
 * destroyed), into w (n, unsorted): the tridiagonalization and QL of
 * dsc_sym_eig without forming or rotating vectors, O(4/3 n^3). `work`
 * needs dsc_sym_eigenvalues_work_bytes(n) bytes (3 n doubles). Returns 0,
 * or -1 as dsc_sym_eig. The nuclear norm (nuclear.c) runs on it. */
size_t dsc_sym_eigenvalues_work_bytes(size_t n);
int dsc_sym_eigenvalues(size_t n, double *a, double *w, void *work);

/* The library's one Gram matrix: c (r x r, row-major) = x x^T for x
 * (r x len, row-major), both triangles, in double (GaLore/Fira's projector,
 * the nuclear norm; a caller with X^T X in mind passes X transposed).
 * With CBLAS: fixed 64-row chunks of the upper triangle, one
 * single-threaded dgemm each, spread over OpenMP threads (OpenBLAS's own
 * threading changes sums with its thread count; this split does not).
 * Without: the reference's dot products in the same fixed chunks.
 * dsc_gram_f64_reference: plain serial loops, each entry one dot product
 * summed in index order. */
void dsc_gram_f64(size_t r, size_t len, const double *x, double *c);
void dsc_gram_f64_reference(size_t r, size_t len, const double *x, double *c);

#endif /* DSC_KERNELS_SVD_H */
