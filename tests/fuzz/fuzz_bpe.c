/* fuzz_bpe.c - the GPT-2 BPE encoder and decoder with the real vocabulary
 * (tests/data/gpt2_vocab.bpe, or $DESCENT_VOCAB). Properties: encoding
 * then decoding gives back the exact input bytes (byte-level BPE is
 * lossless), every id is in range; decoding arbitrary ids (the input read
 * as 16-bit numbers, some past the vocabulary) either succeeds or refuses
 * with a message. */
#include "fuzz.h"

#include "gpt2/tokenizer.h"

static gpt2_tokenizer *tok;

static void load(void)
{
    const char *path = getenv("DESCENT_VOCAB");
    char err[512];
    tok = gpt2_tokenizer_load(path ? path : "tests/data/gpt2_vocab.bpe", err, sizeof err);
    if (!tok) {
        fprintf(stderr, "fuzz_bpe: %s (run from the repository root)\n", err);
        exit(1);
    }
}

static void unload(void) { gpt2_tokenizer_free(tok); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tok) {
        load();
        atexit(unload);
    }
    if (size > 8192) return 0;
    gpt2_ids ids = {0};
    if (gpt2_encode(tok, (const char *)data, size, &ids) == 0) {
        for (size_t i = 0; i < ids.len; i++)
            FUZZ_ASSERT(ids.ids[i] >= 0 && ids.ids[i] < GPT2_VOCAB_SIZE);
        size_t len = 0;
        char err[256];
        char *back = gpt2_decode(tok, ids.ids, ids.len, &len, err, sizeof err);
        FUZZ_ASSERT(back != NULL);
        FUZZ_ASSERT(len == size && !memcmp(back, data, size)); /* lossless */
        free(back);
    }
    gpt2_ids_free(&ids);

    size_t n = size / 2;
    int *raw = malloc((n ? n : 1) * sizeof *raw);
    if (!raw) abort();
    for (size_t i = 0; i < n; i++) raw[i] = data[2 * i] | data[2 * i + 1] << 8;
    size_t len = 0;
    char err[256] = "";
    char *text = gpt2_decode(tok, raw, n, &len, err, sizeof err);
    if (text) free(text);
    else FUZZ_ASSERT(err[0] != '\0');
    free(raw);
    return 0;
}
