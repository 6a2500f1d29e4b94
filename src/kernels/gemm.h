/* gemm.h - matrix products for the matrix optimizers (internal, not installed).
 *
 * Row-major float32. dsc_gemm computes C = alpha op(A) op(B) + beta C with
 * C m x n, op(A) m x k, op(B) k x n, op(X) = X or X^T; dsc_syrk computes the
 * symmetric C = alpha A A^T + beta C with A n x k and writes both triangles.
 * beta == 0 overwrites C without reading it (NaN in C does not survive).
 *
 * Two back ends, chosen at build time:
 *   - CBLAS (DSC_HAVE_CBLAS, OpenBLAS): cblas_sgemm / cblas_ssyrk, called
 *     single-threaded on a fixed split of C into column (or row) chunks that
 *     depends on the shape only; OpenMP threads take the chunks. Each chunk
 *     is one deterministic BLAS call, so the result has the same bits for any
 *     thread count (OpenBLAS's own threading does not: its sums change with
 *     the number of threads). OpenBLAS's thread count is set to 1 for the
 *     duration of a call and restored afterwards, so a caller that steps two
 *     handles from two threads while also changing OpenBLAS's thread count
 *     concurrently gets no bitwise guarantee.
 *   - portable: cache-blocked C (KC x NC panels of op(B) packed into `work`,
 *     4-row tiles of op(A) packed on the stack, a 4 x 8 register tile), OpenMP
 *     over row tiles. Every element's sum runs over k in the same order
 *     whatever the threads, so results do not depend on the thread count.
 *
 * `work` holds dsc_gemm_work_floats() floats for the portable path (ignored by
 * CBLAS); it may be NULL, then a small stack panel is used (slower).
 * Nothing here allocates. The calls must not be made from inside an OpenMP
 * parallel region. */
#ifndef DESCENT_KERNELS_GEMM_H
#define DESCENT_KERNELS_GEMM_H

#include <stddef.h>

typedef enum { DSC_NO_TRANS = 0, DSC_TRANS = 1 } dsc_trans;

/* Floats of workspace the portable path wants (a packed panel of op(B)). */
size_t dsc_gemm_work_floats(void);

/* "openblas" or "portable". */
const char *dsc_gemm_backend(void);

void dsc_gemm(dsc_trans ta, dsc_trans tb, size_t m, size_t n, size_t k, float alpha,
              const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
              size_t ldc, float *work);

/* C (n x n) = alpha A A^T + beta C, A n x k; C is symmetric on return (both
 * triangles written; with beta != 0 only the upper triangle of C is read). */
void dsc_syrk(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta,
              float *c, size_t ldc, float *work);

/* The portable path whatever the build (tests compare it with CBLAS). */
void dsc_gemm_portable(dsc_trans ta, dsc_trans tb, size_t m, size_t n, size_t k, float alpha,
                       const float *a, size_t lda, const float *b, size_t ldb, float beta,
                       float *c, size_t ldc, float *work);
void dsc_syrk_portable(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta,
                       float *c, size_t ldc, float *work);

/* Bracket direct CBLAS calls made outside this file: OpenBLAS runs
 * single-threaded in between (so the call is deterministic); end restores
 * the caller's setting. No-ops in a portable build. */
int dsc_blas_single_begin(void);
void dsc_blas_single_end(int saved);

#endif /* DESCENT_KERNELS_GEMM_H */
