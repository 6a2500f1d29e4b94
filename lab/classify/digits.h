/* digits.h - a real small classification task for the lab: scikit-learn's
 * 8x8 handwritten digits (1797 images, committed in lab/classify/data with
 * its BSD-3-Clause notice) and a one-hidden-layer MLP trained through
 * libdescent. Small enough to train in a second, real enough that the
 * optimizers' differences show. */
#ifndef DESCENT_DIGITS_H
#define DESCENT_DIGITS_H

#include <stddef.h>
#include <stdint.h>

#define DIGITS_FEATURES 64
#define DIGITS_CLASSES 10

typedef struct {
    int n;          /* images */
    float *x;       /* n x 64, pixel / 16 */
    int *y;         /* n labels */
} digits_set;

/* Reads the gzip CSV (path NULL: the committed copy, found from the
 * current folder or DESCENT_DATA_DIGITS). Splits with a seeded shuffle:
 * `test` images to the test set. 0 on success, else a message in err. */
int digits_load(const char *path, int test, uint64_t seed, digits_set *train,
                digits_set *test_set, char *err, size_t errlen);
void digits_free(digits_set *s);

/* The MLP: h = relu(W1 x + b1), logits = W2 h + b2, softmax cross-entropy.
 * Parameters and gradients in caller-visible buffers for libdescent. */
typedef struct {
    int hidden;
    float *w1, *b1, *w2, *b2;     /* (hidden,64) (hidden) (10,hidden) (10) */
    float *gw1, *gb1, *gw2, *gb2; /* gradients, same shapes */
    float *act;                   /* workspace for one batch */
    int max_batch;
} digits_mlp;

/* hidden in 1..1024. 0 on success. */
int digits_mlp_init(digits_mlp *m, int hidden, int max_batch, uint64_t seed);
void digits_mlp_free(digits_mlp *m);
/* Mean loss over the batch rows idx[0..b); fills the gradients. */
double digits_mlp_grad(digits_mlp *m, const digits_set *s, const int *idx, int b);
/* Mean loss and accuracy over a whole set (no gradients). */
void digits_mlp_eval(digits_mlp *m, const digits_set *s, double *loss, double *accuracy);


#endif
