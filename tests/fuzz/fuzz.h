/* fuzz.h - what the fuzz targets share (tests/fuzz/README.md).
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput. Built with clang's
 * -fsanitize=fuzzer it is a libFuzzer target; built with any compiler and
 * replay_main.c it is a program that feeds it every file of the folders
 * and files on its command line (the committed corpus), which is how
 * `make test` replays the corpora as regression tests. */
#ifndef DESCENT_FUZZ_H
#define DESCENT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input (free it). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static char fuzz_path[256];
static inline void fuzz_file_remove(void) { unlink(fuzz_path); }

/* Writes the input to a scratch file of this process and returns its
 * path (the loaders under test take paths). */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    if (!fuzz_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_path, sizeof fuzz_path, "%s/descent-fuzz-%ld.bin",
                 dir && *dir ? dir : "/tmp", (long)getpid());
        atexit(fuzz_file_remove);
    }
    const char *path = fuzz_path;
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

/* A finding: print what was violated and abort (libFuzzer saves the input). */
#define FUZZ_ASSERT(cond)                                                               \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: fuzz property violated: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                             \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#endif
