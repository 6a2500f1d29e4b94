/* quant8.h - the fast 8-bit steps on AVX-512 (quant8_avx512.c), called by
 * quant8.c. Not installed. */
#ifndef DESCENT_OPTIMIZERS_QUANT8_H
#define DESCENT_OPTIMIZERS_QUANT8_H

#include "../kernels/blockquant.h"

#include <stddef.h>
#include <stdint.h>

/* The per-step scalars of the fused 8-bit bodies, as quant8.c computes
 * them (dec = 1 - lr*wd, or exactly 1 without weight decay). */
typedef struct {
    float beta1, beta2, omb1, omb2; /* sgd: beta1 is the momentum */
    float step_size, c2eps;         /* Adam */
    float lr, wd, dec;
    float eps;                      /* AdaGrad */
    int has_wd, first;              /* sgd: L2 term; t == 1 */
} dsc_bq_coef;

#ifdef DSC_HAVE_AVX512_KERNELS
/* Blocks [j0, j1) of a tensor of n elements (block j covers elements
 * j*DSC_QBLOCK ..), the whole fast step of each: the same bits as the
 * portable bodies of quant8.c. Callable only when dsc_bq_avx512(). */
void dsc_bq_adam8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c1,
                         uint8_t *c2, float *a1, float *a2, size_t n, size_t j0, size_t j1);
void dsc_bq_sgd8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c, float *a,
                        size_t n, size_t j0, size_t j1);
void dsc_bq_lion8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c, float *a,
                         size_t n, size_t j0, size_t j1);
void dsc_bq_adagrad8_avx512(const dsc_bq_coef *k, float *p, const float *g, uint8_t *c,
                            float *a, size_t n, size_t j0, size_t j1);
#endif

#endif /* DESCENT_OPTIMIZERS_QUANT8_H */
