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

/* Prefetch. A block's memory traffic comes in one burst (its codes, p and
 * g, read in its update loop) and most of its arithmetic after it (the
 * encoder), beyond what the out-of-order core looks ahead: measured, the
 * steps took about the sum of their in-cache and traffic times instead of
 * the larger. So while block j computes, it fetches the memory of block j +
 * DSC_Q8_AHEAD, spread through its arithmetic so that the prefetches never
 * wait for one another (quant8.c: in the table encoder; quant8_avx512.c:
 * codes in the update loop, p and g in the encoder). One burst of
 * prefetches at the start of each block, tried first, changed nothing;
 * distances 1, 2 and 4 did about as well (docs/performance.md). Prefetches
 * change no value. */
#define DSC_Q8_AHEAD 2

/* Block j + DSC_Q8_AHEAD of a tensor of n elements, when it is a whole
 * block (no address past the arrays; c2 NULL for one state), else all
 * NULL. A block of the other thread's range is fetched for nothing, never
 * wrongly. */
static inline dsc_bq_ahead dsc_q8_ahead(const float *p, const float *g, const uint8_t *c1,
                                        const uint8_t *c2, size_t j, size_t n)
{
    dsc_bq_ahead a = {NULL, NULL, NULL, NULL};
    if ((j + DSC_Q8_AHEAD + 1) * DSC_QBLOCK <= n) {
        size_t e = (j + DSC_Q8_AHEAD) * DSC_QBLOCK;
        a = (dsc_bq_ahead){p + e, g + e, c1 + e, c2 ? c2 + e : NULL};
    }
    return a;
}

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
