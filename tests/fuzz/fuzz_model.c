/* fuzz_model.c - gpt2_load (llm.c GPT-2 checkpoints) on arbitrary files;
 * a model it accepts runs a forward and backward pass on a short batch,
 * which must stay defined whatever finite weights the file holds (the
 * fast exp clamps before converting; huge activations give inf or NaN
 * losses, never undefined behaviour). */
#include "fuzz.h"

#include "gpt2/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 17)) return 0;
    const char *path = fuzz_file(data, size);
    gpt2_model m;
    char err[512] = "";
    gpt2_set_threads(1);
    if (gpt2_load(&m, path, err, sizeof err) == 0) {
        int T = m.cfg.max_seq_len < 8 ? m.cfg.max_seq_len : 8;
        int in[8], tg[8];
        for (int t = 0; t < T; t++) {
            in[t] = (int)((size_t)t * 7 % (size_t)m.cfg.vocab_size);
            tg[t] = (int)((size_t)t * 3 % (size_t)m.cfg.vocab_size);
        }
        double loss;
        if (m.num_params <= (1u << 20) &&
            gpt2_forward(&m, in, tg, 1, T, &loss, err, sizeof err) == 0)
            gpt2_backward(&m);
        gpt2_free(&m);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    return 0;
}
