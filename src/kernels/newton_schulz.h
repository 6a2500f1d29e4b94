/* newton_schulz.h - Muon's quintic Newton-Schulz iteration ns5 (internal).
 *
 * docs/matrix.md, Newton-Schulz. For each m x n slice G:
 *   X = G (or G^T when m > n, so X X^T is the smaller Gram matrix);
 *   X = X / (||X||_F + 1e-7);
 *   steps times: A = X X^T; B = b A + c A A; X = a X + B X;
 *   transpose back; (a, b, c) = (3.4445, -4.7750, 2.0315).
 * Zero input gives exactly zero. One kernel for every Muon variant (muon,
 * muon_moonlight, normuon, auon_hybrid, lanton).
 *
 * `reference` 1 runs plain loops (sums in double, no BLAS, one thread);
 * 0 runs dsc_syrk / dsc_gemm (A and A A are symmetric products). Both are
 * float32 with the same rounding points (A, B, X stored as float), and give
 * the same bits for any thread count.
 *
 * `bf16` 1 rounds the inputs of the three products (X, A, B) to bfloat16
 * before each product, sums in float32 (as the official Muon runs ns5 in
 * bf16 on GPUs; docs/matrix.md, bf16 Newton-Schulz); the a X and b A terms
 * keep float32. The GEMM path runs the products on the AVX512-BF16 kernel
 * (bf16gemm.h) where dsc_bf16gemm_available(), else as float32 products of
 * the rounded inputs. 0 (the default everywhere) is the float32 iteration.
 *
 * The caller owns all memory: `work` holds dsc_ns5_work_floats(m, n) floats
 * (two r x c iterates, two r x r Gram matrices, the GEMM panel; r = min(m,n),
 * c = max(m,n)); nothing is allocated. */
#ifndef DESCENT_KERNELS_NEWTON_SCHULZ_H
#define DESCENT_KERNELS_NEWTON_SCHULZ_H

#include <stddef.h>

#define DSC_NS_A 3.4445f
#define DSC_NS_B (-4.7750f)
#define DSC_NS_C 2.0315f
#define DSC_NS_EPS 1e-7

/* Workspace in floats for slices of m x n. */
size_t dsc_ns5_work_floats(size_t m, size_t n);

/* out[s] = ns5(g[s], steps) for `batch` consecutive m x n row-major slices.
 * out may equal g. steps >= 0 (0: the normalized input). */
void dsc_ns5(const float *g, float *out, size_t batch, size_t m, size_t n, int steps,
             int reference, int bf16, float *work);

#endif /* DESCENT_KERNELS_NEWTON_SCHULZ_H */
