/* fashion.h - Fashion-MNIST (Zalando, MIT; Debian package
 * dataset-fashion-mnist) and a small MLP classifier for the optimizer study:
 * the lab's CPU-sized counterpart of the paper's ResNet-20 run.
 *
 * Data: the four IDX files (gzip) of the Debian package, found in --data
 * DIR, else $DESCENT_FASHION_MNIST, else /usr/share/datasets/fashion-mnist
 * (where the package installs them). 60,000 training images split into
 * the first 55,000 for training and the last 5,000 as a validation set
 * (the study's validation loss and phi's held-out batches), and the 10,000
 * test images (accuracy at the end). Pixels are scaled to [0, 1] and
 * centred by the training mean (0.286).
 *
 * Model: 784 -> H1 -> H2 -> 10, ReLU, softmax cross-entropy; weights
 * normal(0, sqrt(2 / fan_in)) (He), biases 0. Tensors w1, b1, w2, b2, w3
 * (the classifier, role head), b3. Products go through CBLAS when the lab
 * is built with it, else plain loops; single-threaded, so a seed gives the
 * same run on any machine with the same build.
 */
#ifndef DESCENT_CLASSIFY_FASHION_H
#define DESCENT_CLASSIFY_FASHION_H

#include <stddef.h>
#include <stdint.h>

#define FASHION_PIXELS 784
#define FASHION_CLASSES 10

typedef struct {
    int n;
    float *x; /* n x 784 */
    int *y;   /* n */
} fashion_set;

/* Reads DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (dir NULL:
 * the default above) into train (55,000), val (5,000) and test (10,000).
 * 0, or -1 with a message naming the file and what is wrong. */
int fashion_load(const char *dir, fashion_set *train, fashion_set *val, fashion_set *test,
                 char *err, size_t errlen);
void fashion_free(fashion_set *s);
/* The default folder (never NULL). */
const char *fashion_default_dir(void);

/* Reads one IDX file (gzip or plain): images (magic 0x803, n x rows x
 * cols bytes) or labels (magic 0x801, n bytes). *data gets n * item bytes
 * (the caller frees it). 0, or -1 with a message. */
int fashion_read_idx(const char *path, int want_magic, uint8_t **data, int *n, int *item,
                     char *err, size_t errlen);

typedef struct {
    int h1, h2, max_batch;
    size_t num_params;
    float *params, *grads;    /* one buffer each, tensor order below */
    float *w1, *b1, *w2, *b2, *w3, *b3;        /* views into params */
    float *gw1, *gb1, *gw2, *gb2, *gw3, *gb3;  /* views into grads */
    float *act;               /* workspace for one batch */
} fashion_mlp;

int fashion_mlp_init(fashion_mlp *m, int h1, int h2, int max_batch, uint64_t seed);
void fashion_mlp_free(fashion_mlp *m);
/* Mean loss over rows idx[0..b) of s (b <= max_batch); fills the gradients. */
double fashion_mlp_grad(fashion_mlp *m, const fashion_set *s, const int *idx, int b);
/* Mean loss and accuracy over the first n rows of s (n <= 0: all). */
void fashion_mlp_eval(fashion_mlp *m, const fashion_set *s, int n, double *loss, double *acc);

/* Offsets and sizes of the six tensors in params (w1 b1 w2 b2 w3 b3). */
void fashion_mlp_tensors(const fashion_mlp *m, size_t off[6], size_t len[6]);

/* `descent classify study`: the optimizer study (gpt2/study.h) on it. */
int classify_cmd_study(int argc, char **argv);
extern const char classify_study_usage[];

#endif
