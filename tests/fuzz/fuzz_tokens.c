/* fuzz_tokens.c - llm.c token files (gpt2_tokens_read and the batch
 * loader) on arbitrary files, with GPT-2's vocabulary and a tiny one. */
#include "fuzz.h"

#include "gpt2/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 16)) return 0;
    const char *path = fuzz_file(data, size);
    static const int vocabs[] = {50257, 64};
    for (int v = 0; v < 2; v++) {
        uint16_t *tok = NULL;
        size_t n = 0;
        char err[512] = "";
        if (gpt2_tokens_read(path, vocabs[v], &tok, &n, err, sizeof err) == 0) {
            for (size_t i = 0; i < n; i++) FUZZ_ASSERT(tok[i] < vocabs[v]);
            free(tok);
        } else {
            FUZZ_ASSERT(err[0] != '\0');
        }
    }
    char err[512] = "";
    gpt2_loader *l = gpt2_loader_open(path, 1, 4, 1337, err, sizeof err);
    if (l) {
        int in[4], tg[4];
        gpt2_loader_random(l, 0, in, tg);
        gpt2_loader_sequential(l, 3, in, tg);
        gpt2_loader_free(l);
    }
    return 0;
}
