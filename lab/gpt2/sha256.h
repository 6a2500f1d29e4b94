/* sha256.h - SHA-256 (FIPS 180-4) for checking downloaded data files.
 *
 * Lab code, not part of libdescent: the GPT-2 data side uses it to check
 * vocab.bpe, the corpora and the token files against the values in the
 * project's data notes. Streaming (init, update..., final) or one shot.
 * Not constant-time; not meant for secrets.
 */
#ifndef DESCENT_GPT2_SHA256_H
#define DESCENT_GPT2_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t nbytes;        /* message length so far */
    unsigned char buf[64];  /* pending partial block */
    size_t nbuf;
} gpt2_sha256;

void gpt2_sha256_init(gpt2_sha256 *s);
void gpt2_sha256_update(gpt2_sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; s must be re-initialized before reuse. */
void gpt2_sha256_final(gpt2_sha256 *s, unsigned char digest[32]);

/* One shot: hex (65 bytes: 64 lowercase hex digits and a NUL) of data[0..len). */
void gpt2_sha256_hex(const void *data, size_t len, char hex[65]);
/* Digest to lowercase hex. */
void gpt2_sha256_to_hex(const unsigned char digest[32], char hex[65]);
/* Hex of a whole file's contents; 0 on success, -1 if it cannot be read. */
int gpt2_sha256_file(const char *path, char hex[65]);

#endif
