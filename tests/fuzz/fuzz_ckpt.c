/* fuzz_ckpt.c - dsc_optimizer_load on arbitrary files, into an optimizer
 * set up like the one that wrote the seed checkpoints (tests/test_ckfile.c's
 * rig). The whole-file checksum would stop nearly every mutation at the
 * first check, so when the first input byte is odd the harness re-signs
 * the file (recomputes the checksum the file names, the way the format
 * documents it) and the parser behind the checksum gets fuzzed too.
 * Properties: a refused load changes nothing (the next steps give the same
 * bits as in an optimizer that loaded nothing) and leaves a message. */
#include "fuzz.h"

#include "descent.h"

#include <inttypes.h>

/* Weights and gradients of one rig: w1 (2x3), w2 (2x2), b (3). */
typedef struct {
    float w1[6], g1[6], w2[4], g2[4], b[3], gb[3];
    dsc_optimizer *o;
} rig;

static void rig_init(rig *r)
{
    memset(r, 0, sizeof *r);
    dsc_optimizer *o = dsc_optimizer_new();
    int64_t s1[2] = {2, 3}, s2[2] = {2, 2}, sb[1] = {3};
    if (!o || dsc_optimizer_add_group(o, "main", "adamw:lr=0.01,weight_decay=0.1") ||
        dsc_optimizer_add_group(o, "aux", "sgd:lr=0.1,momentum=0.9") ||
        dsc_optimizer_add_param(o, "w1", r->w1, r->g1, 2, s1, DSC_ROLE_AUTO, "main") ||
        dsc_optimizer_add_param(o, "w2", r->w2, r->g2, 2, s2, DSC_ROLE_AUTO, "main") ||
        dsc_optimizer_add_param(o, "b", r->b, r->gb, 1, sb, DSC_ROLE_AUTO, "aux"))
        abort();
    r->o = o;
}

static void rig_step(rig *r, int s)
{
    for (int i = 0; i < 6; i++) r->g1[i] = (float)((i * 7 + s * 3) % 5) - 2.0f;
    for (int i = 0; i < 4; i++) r->g2[i] = (float)((i * 3 + s) % 4) * 0.5f - 0.7f;
    for (int i = 0; i < 3; i++) r->gb[i] = (float)(i + s) * 0.25f - 0.3f;
    dsc_optimizer_step(r->o);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 16)) return 0;
    uint8_t *buf = malloc(size);
    if (!buf) abort();
    memcpy(buf, data + 1, size - 1);
    if (data[0] & 1) resign(buf, size - 1);
    const char *path = fuzz_file(buf, size - 1);
    free(buf);

    /* Two rigs with the same history; the load goes into the first. */
    rig a, ref;
    rig_init(&a);
    rig_init(&ref);
    rig_step(&a, 0);
    rig_step(&ref, 0);
    dsc_status st = dsc_optimizer_load(a.o, path);
    if (st != DSC_OK) {
        /* A refused load changes nothing: the same hyperparameters, step
         * count, and the next steps (which read every piece of state) give
         * the same bits as in the rig that loaded nothing. */
        FUZZ_ASSERT(dsc_optimizer_error(a.o)[0] != '\0');
        FUZZ_ASSERT(dsc_optimizer_step_count(a.o) == dsc_optimizer_step_count(ref.o));
        double x, y;
        FUZZ_ASSERT(dsc_optimizer_get_hyper(a.o, "main", "lr", &x) == DSC_OK &&
                    dsc_optimizer_get_hyper(ref.o, "main", "lr", &y) == DSC_OK && x == y);
        for (int s = 1; s < 3; s++) {
            rig_step(&a, s);
            rig_step(&ref, s);
        }
        FUZZ_ASSERT(!memcmp(a.w1, ref.w1, sizeof a.w1) && !memcmp(a.w2, ref.w2, sizeof a.w2) &&
                    !memcmp(a.b, ref.b, sizeof a.b));
    } else {
        rig_step(&a, 1); /* whatever was loaded, a step is defined */
    }
    dsc_optimizer_free(a.o);
    dsc_optimizer_free(ref.o);
    return 0;
}
