/* bf16gemm.h - bf16 x bf16 -> float32 matrix products for the bf16
 * Newton-Schulz (ns_bf16=1; docs/matrix.md, bf16 Newton-Schulz). Internal,
 * not installed.
 *
 * What is computed. Every input is rounded to bfloat16 as the AVX512-BF16
 * conversion VCVTNE2PS2BF16 does (round to nearest even; a float32
 * subnormal becomes a zero of its sign; NaN stays a quiet NaN), and each
 * output element is the chain of fused multiply-adds that VDPBF16PS runs,
 * over the pairs of k in increasing order, the odd member of a pair first:
 *
 *     acc = +0
 *     for p = 0, 1, ..., ceil(k/2) - 1:
 *         acc = step(acc, a[2p+1], b[2p+1])   (a zero when 2p+1 = k)
 *         acc = step(acc, a[2p],   b[2p])
 *     step(acc, x, y) = ftz(fma(daz(x), daz(y), daz(acc)))
 *
 * with one rounding per step (to nearest even, whatever the rounding mode),
 * daz() a subnormal input read as a zero of its sign and ftz() a subnormal
 * result written as a zero of its sign: how the instruction is defined
 * (rounding, DAZ and FTZ fixed, MXCSR neither read nor written), and
 * checked bit for bit against VDPBF16PS itself on random bit patterns
 * wherever the tests run on such a CPU (tests/test_matrix.c). Then
 *
 *     C[i][j] = alpha * acc + beta * Cin[i][j]      (two products, one sum;
 *                                                    beta == 0: alpha * acc,
 *                                                    Cin not read)
 *
 * Cin may equal C. Because the sum of an element is one fixed chain, the
 * result does not depend on blocking or on the thread count.
 *
 * Two implementations of the same bits: the kernel (AVX512-BF16, chosen at
 * run time where the CPU has it) and the plain loops of the _ref functions
 * (any CPU; slow, for the tests). Where the kernel is not available the
 * caller uses another route (newton_schulz.c rounds the inputs and calls
 * the float32 GEMM: the same bf16 inputs, float32 sums in BLAS order).
 *
 * The products Newton-Schulz needs:
 *   dsc_syrk_bf16   C (n x n) = alpha A A^T + beta Cin, A n x k: both
 *                   triangles written (the upper one computed, mirrored);
 *   dsc_gemm_bf16   C (m x n) = alpha A op(B) + beta Cin, A m x k,
 *                   op(B) = B (k x n) or B^T (B n x k).
 * Row-major, leading dimensions as in gemm.h. `work` holds
 * dsc_gemm_bf16_work_floats(m, n, k) floats (dsc_syrk_bf16: the same with
 * m = 0): the operands packed as bf16 pairs. Nothing is allocated; the calls
 * must not be made from inside a parallel region. */
#ifndef DESCENT_KERNELS_BF16GEMM_H
#define DESCENT_KERNELS_BF16GEMM_H

#include "gemm.h"

#include <stddef.h>
#include <stdint.h>

/* 1 when the AVX512-BF16 kernel runs: the CPU has AVX-512 F, BW, VL and
 * BF16, the build could compile it (x86-64, GCC or clang) and
 * DESCENT_KERNELS is neither "portable" nor "ref" (decided once). */
int dsc_bf16gemm_available(void);
/* For tests: 0 turns the kernel off, 1 back to the detected choice;
 * returns dsc_bf16gemm_available(). Call it only while no product runs. */
int dsc_bf16gemm_allow(int allow);

/* Floats of workspace for the packed operands of an m x n x k product
 * (m = 0 for a syrk of n x k). */
size_t dsc_gemm_bf16_work_floats(size_t m, size_t n, size_t k);

/* The kernel. Call only when dsc_bf16gemm_available(). */
void dsc_syrk_bf16(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta,
                   const float *cin, size_t ldcin, float *c, size_t ldc, float *work);
void dsc_gemm_bf16(dsc_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                   size_t lda, const float *b, size_t ldb, float beta, const float *cin,
                   size_t ldcin, float *c, size_t ldc, float *work);

/* The same bits by plain loops (one thread, no workspace). */
void dsc_syrk_bf16_ref(size_t n, size_t k, float alpha, const float *a, size_t lda, float beta,
                       const float *cin, size_t ldcin, float *c, size_t ldc);
void dsc_gemm_bf16_ref(dsc_trans tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                       size_t lda, const float *b, size_t ldb, float beta, const float *cin,
                       size_t ldcin, float *c, size_t ldc);

/* The pieces, for the tests: the float -> bf16 conversion (bits), and one
 * VDPBF16PS on 16 lanes: acc[j] = step(step(acc[j], a[2j+1], b[2j+1]),
 * a[2j], b[2j]) with raw bf16 bits (subnormals, infinities, NaNs allowed).
 * The _hw one runs the instruction (only when dsc_bf16gemm_available()). */
uint16_t dsc_bf16_of(float x);
void dsc_bf16_dot16_ref(float acc[16], const uint16_t a[32], const uint16_t b[32]);
void dsc_bf16_dot16_hw(float acc[16], const uint16_t a[32], const uint16_t b[32]);

#endif /* DESCENT_KERNELS_BF16GEMM_H */
