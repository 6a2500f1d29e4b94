/* test_gpt2_nonfinite.c - the GPT-2 model on non-finite and huge values
 * (issue 17): one NaN weight or activations far outside exp's range used
 * to reach a float -> int32 conversion in the fast exp (undefined
 * behaviour: the ASan/UBSan build, which checks float-cast-overflow, would
 * stop here). Now a NaN weight gives a NaN loss (which the trainer sees)
 * and huge finite weights give a defined result (inf or NaN when the
 * activations overflow, and the trainer stops on it). */
#include "check.h"
#include "gpt2/model.h"

#include <math.h>
#include <stdlib.h>
#include <sys/types.h>

static void forward_with(float poison, size_t where, int expect_nan)
{
    gpt2_model m;
    char err[256];
    gpt2_config cfg = gpt2_config_make(1, 16, 2, 8);
    cfg.vocab_size = 64;
    cfg.padded_vocab_size = gpt2_pad_vocab(64);
    CHECK_EQ_INT(gpt2_init(&m, &cfg, 7, err, sizeof err), 0);
    if (where == (size_t)-1)
        for (size_t i = 0; i < m.num_params; i++) m.params[i] *= poison;
    else if (where < m.num_params)
        m.params[where] = poison;
    else
        CHECK(0);
    int in[8], tg[8];
    for (int t = 0; t < 8; t++) {
        in[t] = (t * 5) % 64;
        tg[t] = (t * 3 + 1) % 64;
    }
    double loss = 0;
    CHECK_EQ_INT(gpt2_forward(&m, in, tg, 1, 8, &loss, err, sizeof err), 0);
    if (expect_nan) CHECK(isnan(loss)); /* the poison reaches the loss, not hidden */
    fprintf(stderr, "poison %g at %zd: loss %g\n", (double)poison,
            where == (size_t)-1 ? (ssize_t)-1 : (ssize_t)where, loss);
    CHECK_EQ_INT(gpt2_backward(&m), 0);
    gpt2_free(&m);
}

int main(void)
{
    gpt2_set_threads(1);
    forward_with(NAN, 0, 1);                  /* wte[0]: token 0 is in the batch */
    forward_with(NAN, 3000, 1);               /* in the MLP weights (4464 in all) */
    forward_with(1e30f, (size_t)-1, 0);       /* every weight times 1e30: huge logits */
    forward_with(-1e30f, (size_t)-1, 0);
    forward_with(1e10f, (size_t)-1, 0);
    return check_report("test_gpt2_nonfinite");
}
