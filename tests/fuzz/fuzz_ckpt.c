/* fuzz_ckpt.c - dsc_optimizer_load on arbitrary files, into an optimizer
 * set up like the one that wrote the seed checkpoints (tests/test_ckfile.c's
 * rig). The whole-file checksum would stop nearly every mutation at the
 * first check, so when the first input byte is odd the harness re-signs
 * the file (recomputes the checksum the file names, the way the format
 * documents it) and the parser behind the checksum gets fuzzed too.
 * Properties: a refused load changes nothing (the bytes of a checkpoint
 * saved after it are the same as before) and leaves a message. */
#include "fuzz.h"

#include "descent.h"

#include <inttypes.h>

static float w1[6], g1[6], w2[4], g2[4], b[3], gb[3];

static dsc_optimizer *rig(void)
{
    dsc_optimizer *o = dsc_optimizer_new();
    int64_t s1[2] = {2, 3}, s2[2] = {2, 2}, sb[1] = {3};
    if (!o || dsc_optimizer_add_group(o, "main", "adamw:lr=0.01,weight_decay=0.1") ||
        dsc_optimizer_add_group(o, "aux", "sgd:lr=0.1,momentum=0.9") ||
        dsc_optimizer_add_param(o, "w1", w1, g1, 2, s1, DSC_ROLE_AUTO, "main") ||
        dsc_optimizer_add_param(o, "w2", w2, g2, 2, s2, DSC_ROLE_AUTO, "main") ||
        dsc_optimizer_add_param(o, "b", b, gb, 1, sb, DSC_ROLE_AUTO, "aux"))
        abort();
    return o;
}

/* FNV-1a-style over little-endian 64-bit words, the tail a byte per word
 * (checkpoint.c's header comment), with the 16 digits read as '0'. */
static void resign(uint8_t *buf, size_t n)
{
    static const char tag[] = "\"checksum\":\"fnv1a64w-file:";
    size_t tl = sizeof tag - 1, at = 0, found = 0;
    for (size_t i = 8; i + tl + 16 <= n; i++)
        if (!memcmp(buf + i, tag, tl)) {
            at = i + tl;
            found++;
        }
    if (found != 1) return;
    memset(buf + at, '0', 16);
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = 0;
        for (int k = 0; k < 8; k++) w |= (uint64_t)buf[i + k] << (8 * k);
        h ^= w;
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) {
        h ^= buf[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, h);
    memcpy(buf + at, hex, 16);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    if (!p || fread(p, 1, (size_t)len, f) != (size_t)len) abort();
    fclose(f);
    *n = (size_t)len;
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 16)) return 0;
    uint8_t *buf = malloc(size);
    if (!buf) abort();
    memcpy(buf, data + 1, size - 1);
    if (data[0] & 1) resign(buf, size - 1);
    const char *path = fuzz_file(buf, size - 1);
    free(buf);

    static char before[300], after[300];
    if (!before[0]) {
        snprintf(before, sizeof before, "%s.before", path);
        snprintf(after, sizeof after, "%s.after", path);
    }
    dsc_optimizer *o = rig();
    for (int i = 0; i < 6; i++) g1[i] = 0.5f - (float)i;
    dsc_optimizer_step(o);
    if (dsc_optimizer_save(o, before) != DSC_OK) abort();
    dsc_status st = dsc_optimizer_load(o, path);
    if (st != DSC_OK) {
        FUZZ_ASSERT(dsc_optimizer_error(o)[0] != '\0');
        if (dsc_optimizer_save(o, after) != DSC_OK) abort();
        size_t na, nb;
        uint8_t *a = slurp(before, &na), *b2 = slurp(after, &nb);
        FUZZ_ASSERT(na == nb && !memcmp(a, b2, na)); /* a refused load changes nothing */
        free(a);
        free(b2);
    } else {
        dsc_optimizer_step(o); /* whatever was loaded, a step is defined */
    }
    dsc_optimizer_free(o);
    unlink(before);
    unlink(after);
    return 0;
}
