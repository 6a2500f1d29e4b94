/* data.h - GPT-2 token files (llm.c's format) and a deterministic batch loader.
 *
 * File format (karpathy/llm.c's .bin token shards), all little-endian:
 *   header  256 x int32: [0] = 20240520 (magic), [1] = 1 (version),
 *           [2] = number of tokens N, the rest zero;
 *   body    N x uint16 token ids.
 * So a file is exactly 1024 + 2N bytes. `descent gpt2 prepare` writes
 * DIR/<corpus>/train.bin and val.bin in this format.
 *
 * Batches: a batch is B windows of T+1 consecutive tokens; inputs are the
 * first T of each window and targets the last T (targets[b][t] =
 * inputs[b][t+1]). Both batch functions are pure functions of the file, B, T,
 * the seed and the batch index: no hidden cursor, so a run resumes exactly
 * by asking for batch `step` again, and any thread may call them.
 *   sequential  batch k covers tokens [j*B*T, j*B*T + B*T + 1) with
 *               j = k mod num_batches (llm.c's DataLoader order; windows of one
 *               batch overlap by one token); use it for validation.
 *   random      each of the B windows starts at a uniform position in
 *               [0, N - T - 1] drawn from (seed, k, b) with splitmix64; use it
 *               for training.
 *
 * Usage:
 *   char err[256];
 *   gpt2_loader *tr = gpt2_loader_open("data/sotu/train.bin", B, T, 1337, err, sizeof err);
 *   if (!tr) { fprintf(stderr, "%s\n", err); exit(1); }
 *   for (step...) gpt2_loader_random(tr, step, inputs, targets);   (B*T ints each)
 *   gpt2_loader_free(tr);
 */
#ifndef DESCENT_GPT2_DATA_H
#define DESCENT_GPT2_DATA_H

#include <stddef.h>
#include <stdint.h>

#define GPT2_TOKENS_MAGIC 20240520
#define GPT2_TOKENS_VERSION 1
#define GPT2_TOKENS_HEADER_BYTES 1024

/* Writes tokens[0..n) to path atomically: a temporary file beside it, fsync,
 * rename over path. Returns 0, or -1 with a message in err (the old file, if
 * any, is left as it was). */
int gpt2_tokens_write(const char *path, const uint16_t *tokens, size_t n, char *err,
                      size_t errlen);

/* Reads a token file into a new array (*tokens, the caller frees it) of *n
 * ids. Checks the magic, the version, that the size is 1024 + 2N, and that
 * every id is below vocab_size (pass 0 to skip that check). Returns 0, or -1
 * with a message naming the file and what is wrong (truncated, ...). */
int gpt2_tokens_read(const char *path, int vocab_size, uint16_t **tokens, size_t *n,
                     char *err, size_t errlen);

typedef struct gpt2_loader gpt2_loader;

/* Opens a token file for (B, T) batches; seed drives gpt2_loader_random.
 * Fails (NULL, message in err) if the file does not read (see
 * gpt2_tokens_read, vocab 50257), B or T is below 1, or the file holds fewer
 * than B*T + 1 tokens. */
gpt2_loader *gpt2_loader_open(const char *path, int B, int T, uint64_t seed, char *err,
                              size_t errlen);
void gpt2_loader_free(gpt2_loader *l); /* NULL is a no-op */

size_t gpt2_loader_num_tokens(const gpt2_loader *l);
/* Sequential batches per pass: floor((N - 1) / (B*T)), at least 1. */
size_t gpt2_loader_num_batches(const gpt2_loader *l);
/* The tokens themselves (N of them), read-only. */
const uint16_t *gpt2_loader_tokens(const gpt2_loader *l);

/* Fill inputs and targets (B*T ints each, row-major (B,T)) with batch k. */
void gpt2_loader_sequential(const gpt2_loader *l, uint64_t k, int *inputs, int *targets);
void gpt2_loader_random(const gpt2_loader *l, uint64_t k, int *inputs, int *targets);

#endif
