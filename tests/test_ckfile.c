/* test_ckfile.c - checkpoint files whose every byte is checked (issue 17).
 *
 * - The whole-file checksum: editing the stored step count, a stored
 *   hyperparameter, swapping the data_offsets of two state tensors,
 *   flipping one data bit, truncating or appending are all refused with a
 *   "checksum mismatch" message, and the refused load changes nothing.
 * - Past the checksum (the test re-signs edited files with its own copy of
 *   the documented algorithm), the loader still checks every value: shapes
 *   [1e300] and [1.5], fractional or overlapping data_offsets.
 * - Version 1 files (data-only checksum), written by the library before
 *   the change (tests/data/ckpt_v1.safetensors), still load and resume bit
 *   for bit.
 * - Directories, special files and empty paths get clear messages. */
#include "check.h"
#include "descent.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- rig */

/* Two groups, three parameters, a cosine schedule: the same as the program
 * that wrote tests/data/ckpt_v1.safetensors (see tests/data/README.md). */
typedef struct {
    float w1[6], g1[6], w2[4], g2[4], b[3], gb[3];
    dsc_optimizer *o;
} rig;

static int rig_init(rig *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 6; i++) r->w1[i] = 0.1f * (float)(i + 1);
    for (int i = 0; i < 4; i++) r->w2[i] = -0.2f * (float)(i + 1);
    for (int i = 0; i < 3; i++) r->b[i] = 0.05f * (float)i;
    r->o = dsc_optimizer_new();
    int64_t s1[2] = {2, 3}, s2[2] = {2, 2}, sb[1] = {3};
    if (!r->o || dsc_optimizer_add_group(r->o, "main", "adamw:lr=0.01,weight_decay=0.1") ||
        dsc_optimizer_add_group(r->o, "aux", "sgd:lr=0.1,momentum=0.9") ||
        dsc_optimizer_add_param(r->o, "w1", r->w1, r->g1, 2, s1, DSC_ROLE_AUTO, "main") ||
        dsc_optimizer_add_param(r->o, "w2", r->w2, r->g2, 2, s2, DSC_ROLE_AUTO, "main") ||
        dsc_optimizer_add_param(r->o, "b", r->b, r->gb, 1, sb, DSC_ROLE_AUTO, "aux"))
        return 0;
    dsc_schedule c;
    if (dsc_schedule_parse("cosine:warmup=2,total=20,min_ratio=0.1", &c, NULL, 0)) return 0;
    return dsc_optimizer_set_schedule(r->o, "main", "lr", &c) == DSC_OK;
}

static void rig_step(rig *r, int s)
{
    for (int i = 0; i < 6; i++) r->g1[i] = (float)((i * 7 + s * 3) % 5) - 2.0f;
    for (int i = 0; i < 4; i++) r->g2[i] = (float)((i * 3 + s) % 4) * 0.5f - 0.7f;
    for (int i = 0; i < 3; i++) r->gb[i] = (float)(i + s) * 0.25f - 0.3f;
    CHECK_STATUS(dsc_optimizer_step(r->o), DSC_OK, r->o);
}

/* ------------------------------------------------------------- files */

static void spill(const char *path, const char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(buf, 1, n, f) == n);
    fclose(f);
}

/* The documented checksum, written here independently of checkpoint.c:
 * FNV-1a-style over 64-bit little-endian words (h ^= w; h *= prime;
 * h ^= h >> 29), the tail bytes one word each, over the whole file with
 * the 16 digits after "checksum":"fnv1a64w-file: read as '0'. */
static uint64_t fnv_file(const unsigned char *b, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = 0;
        for (int k = 0; k < 8; k++) w |= (uint64_t)b[i + k] << (8 * k);
        h ^= w;
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* Recompute the checksum of an edited file, so the checks behind it run. */
static void resign(char *buf, size_t n)
{
    const char *tag = "\"checksum\":\"fnv1a64w-file:";
    char *p = strstr(buf + 8, tag);
    CHECK(p != NULL);
    if (!p) return;
    p += strlen(tag);
    memset(p, '0', 16);
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, fnv_file((unsigned char *)buf, n));
    memcpy(p, hex, 16);
}

/* Replace the first `from` after the 8-byte prefix by `to` (same length). */
static int edit(char *buf, const char *from, const char *to)
{
    CHECK(strlen(from) == strlen(to));
    char *p = strstr(buf + 8, from);
    CHECK(p != NULL);
    if (!p) return 0;
    memcpy(p, to, strlen(to));
    return 1;
}

/* Scratch files live in a fresh temporary folder. */
static char tmpdir[64] = "/tmp/descent-ckfile-XXXXXX";
static const char *P(const char *name)
{
    static char bufs[4][128];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}
#define DIR_ P(".")

/* Loading `path` must fail with `want` and a message containing `needle`,
 * and leave the optimizer exactly as it was (same saved bytes). */
static void refused(rig *r, const char *path, dsc_status want, const char *needle)
{
    size_t n0, n1;
    CHECK_STATUS(dsc_optimizer_save(r->o, P("before.st")), DSC_OK, r->o);
    dsc_status st = dsc_optimizer_load(r->o, path);
    const char *msg = dsc_optimizer_error(r->o);
    check_count++;
    if (st != want || !strstr(msg, needle)) {
        check_failures++;
        fprintf(stderr, "load %s: got %s \"%s\", want %s containing \"%s\"\n", path,
                dsc_status_name(st), msg, dsc_status_name(want), needle);
    }
    CHECK_STATUS(dsc_optimizer_save(r->o, P("after.st")), DSC_OK, r->o);
    char *a = check_slurp(P("before.st"), &n0), *b = check_slurp(P("after.st"), &n1);
    CHECK(a && b && n0 == n1 && !memcmp(a, b, n0));
    free(a);
    free(b);
}

static void test_edits(void)
{
    rig a, b;
    if (!rig_init(&a) || !rig_init(&b)) {
        CHECK(0);
        return;
    }
    for (int s = 0; s < 3; s++) rig_step(&a, s);
    CHECK_STATUS(dsc_optimizer_save(a.o, P("good.st")), DSC_OK, a.o);
    size_t n;
    char *good = check_slurp(P("good.st"), &n);
    CHECK(good != NULL);
    if (!good) return;
    CHECK(strstr(good + 8, "\"format_version\":\"2\"") != NULL);
    CHECK(strstr(good + 8, "\"checksum\":\"fnv1a64w-file:") != NULL);
    char *buf = malloc(n + 16);

    /* The untouched file loads into a fresh optimizer. */
    CHECK_STATUS(dsc_optimizer_load(b.o, P("good.st")), DSC_OK, b.o);
    CHECK_EQ_INT(dsc_optimizer_step_count(b.o), 3);
    rig c;
    CHECK(rig_init(&c));

    /* Issue 17's reproducers: header edits that used to load silently. */
    struct {
        const char *from, *to;
    } edits[] = {
        {"\"step\":\"3\"", "\"step\":\"4\""},                        /* step count */
        {"\\\"lr\\\":0.01,", "\\\"lr\\\":0.02,"},                    /* a hyperparameter */
        {"\"format_version\":\"2\"", "\"format_version\":\"1\""},    /* the version */
        {"\"dtype\":\"F32\"", "\"dtype\":\"F64\""},                  /* a dtype */
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        memcpy(buf, good, n + 1);
        if (!edit(buf, edits[e].from, edits[e].to)) continue;
        spill(P("edit.st"), buf, n);
        refused(&c, P("edit.st"), DSC_CORRUPT, "checksum mismatch");
    }
    /* Swapped data_offsets of two same-sized tensors (w2's two moments). */
    {
        memcpy(buf, good, n + 1);
        char *m = strstr(buf + 8, "\"w2.exp_avg\":"), *v = strstr(buf + 8, "\"w2.exp_avg_sq\":");
        CHECK(m && v);
        if (m && v) {
            char *om = strstr(m, "data_offsets\":["), *ov = strstr(v, "data_offsets\":[");
            char tm[64], tv[64];
            size_t lm = strcspn(om, "]"), lv = strcspn(ov, "]");
            CHECK(lm == lv && lm < sizeof tm);
            if (lm == lv && lm < sizeof tm) {
                memcpy(tm, om, lm);
                memcpy(tv, ov, lv);
                memcpy(om, tv, lv);
                memcpy(ov, tm, lm);
                CHECK(memcmp(buf, good, n) != 0);
                spill(P("swap.st"), buf, n);
                refused(&c, P("swap.st"), DSC_CORRUPT, "checksum mismatch");
            }
        }
    }
    /* One flipped bit in every byte position of the data section and in a
     * sample of header bytes. */
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)(unsigned char)good[i] << (8 * i);
    int all_refused = 1;
    for (size_t pos = 8 + (size_t)hl; pos < n; pos++) {
        memcpy(buf, good, n);
        buf[pos] ^= (char)(1 << (pos % 8));
        spill(P("bit.st"), buf, n);
        if (dsc_optimizer_load(c.o, P("bit.st")) != DSC_CORRUPT) all_refused = 0;
    }
    for (size_t pos = 8; pos < 8 + (size_t)hl; pos += 7) {
        memcpy(buf, good, n);
        buf[pos] ^= 0x01;
        spill(P("bit.st"), buf, n);
        if (dsc_optimizer_load(c.o, P("bit.st")) == DSC_OK) all_refused = 0;
    }
    CHECK(all_refused);
    CHECK_EQ_INT(dsc_optimizer_step_count(c.o), 0);
    /* Truncated by one byte, one byte appended. */
    spill(P("short.st"), good, n - 1);
    refused(&c, P("short.st"), DSC_CORRUPT, "checksum mismatch");
    memcpy(buf, good, n);
    buf[n] = 0;
    spill(P("long.st"), buf, n + 1);
    refused(&c, P("long.st"), DSC_CORRUPT, "checksum mismatch");
    /* A file with the checksum field removed (renamed) is refused too. */
    memcpy(buf, good, n + 1);
    if (edit(buf, "\"checksum\":", "\"checksux\":")) {
        spill(P("nock.st"), buf, n);
        refused(&c, P("nock.st"), DSC_CORRUPT, "whole-file checksum");
    }

    /* Past the checksum: values that are well-formed JSON but not valid. */
    struct {
        const char *from, *to, *needle;
        dsc_status want;
    } bad[] = {
        {"\"shape\":[6]", "\"shape\":[1e300]", "shape entry 0 is not an integer", DSC_CORRUPT},
        {"\"shape\":[6]", "\"shape\":[1.5]", "shape entry 0 is not an integer", DSC_CORRUPT},
        {"\"data_offsets\":[0,24]", "\"data_offsets\":[0,24.5]", "malformed", DSC_CORRUPT},
        {"\"data_offsets\":[0,24]", "\"data_offsets\":[4,28]", "overlap or leave gaps",
         DSC_CORRUPT},
        {"\\\"shape\\\":[2,3]", "\\\"shape\\\":[1e300]", "shape entry 0 is not an integer",
         DSC_CORRUPT},
        {"\\\"shape\\\":[2,3]", "\\\"shape\\\":[2.5,3]", "shape entry 0 is not an integer",
         DSC_CORRUPT},
        {"\"step\":\"3\"", "\"step\":\"x\"", "step counters", DSC_CORRUPT},
        {"\\\"warmup\\\":2,", "\\\"warmup\\\":.5,", "configuration unreadable", DSC_CORRUPT},
        {"\\\"total\\\":20,", "\\\"total\\\":2.5,", "fractional or out-of-range", DSC_CORRUPT},
        {"\\\"total\\\":20,", "\\\"total\\\":1e99,", "fractional or out-of-range", DSC_CORRUPT},
        {"\\\"lr\\\":0.01,", "\\\"lr\\\":1e999,", "configuration unreadable", DSC_CORRUPT},
    };
    for (size_t e = 0; e < sizeof bad / sizeof bad[0]; e++) {
        memcpy(buf, good, n + 1);
        size_t len = n;
        char *p = strstr(buf + 8, bad[e].from);
        CHECK(p != NULL);
        if (!p) continue;
        /* Same-length edits only (the header length stays right); pad the
         * rest with spaces where the new text is shorter... */
        size_t lf = strlen(bad[e].from), lt = strlen(bad[e].to);
        if (lt > lf) {
            /* ...or take the extra room from the header's trailing padding. */
            memmove(p + lt, p + lf, len - (size_t)(p - buf) - lf);
            memcpy(p, bad[e].to, lt);
            len += lt - lf;
            uint64_t h = hl + (lt - lf);
            for (int i = 0; i < 8; i++) buf[i] = (char)(h >> (8 * i));
        } else {
            memcpy(p, bad[e].to, lt);
            memset(p + lt, ' ', lf - lt); /* JSON whitespace inside the object */
        }
        buf[len] = 0;
        resign(buf, len);
        spill(P("bad.st"), buf, len);
        refused(&c, P("bad.st"), bad[e].want, bad[e].needle);
    }
    free(buf);
    free(good);
    dsc_optimizer_free(a.o);
    dsc_optimizer_free(b.o);
    dsc_optimizer_free(c.o);
}

/* A file written by the library before the whole-file checksum. */
static void test_version1(void)
{
    rig a, b;
    if (!rig_init(&a) || !rig_init(&b)) {
        CHECK(0);
        return;
    }
    CHECK_STATUS(dsc_optimizer_load(a.o, "tests/data/ckpt_v1.safetensors"), DSC_OK, a.o);
    CHECK_EQ_INT(dsc_optimizer_step_count(a.o), 3);
    /* b runs the same three steps; then both continue and must agree bit
     * for bit (a's parameters are restored by hand: a checkpoint holds the
     * optimizer state, the caller owns the weights). */
    for (int s = 0; s < 3; s++) rig_step(&b, s);
    memcpy(a.w1, b.w1, sizeof a.w1);
    memcpy(a.w2, b.w2, sizeof a.w2);
    memcpy(a.b, b.b, sizeof a.b);
    for (int s = 3; s < 6; s++) {
        rig_step(&a, s);
        rig_step(&b, s);
    }
    CHECK(!memcmp(a.w1, b.w1, sizeof a.w1) && !memcmp(a.w2, b.w2, sizeof a.w2) &&
          !memcmp(a.b, b.b, sizeof a.b));
    /* A version 1 file with one data bit flipped is still refused. */
    size_t n;
    char *buf = check_slurp("tests/data/ckpt_v1.safetensors", &n);
    CHECK(buf != NULL);
    if (buf) {
        buf[n - 3] ^= 0x10;
        spill(P("v1bad.st"), buf, n);
        refused(&b, P("v1bad.st"), DSC_CORRUPT, "checksum mismatch");
        free(buf);
    }
    dsc_optimizer_free(a.o);
    dsc_optimizer_free(b.o);
}

static void test_paths(void)
{
    rig r;
    if (!rig_init(&r)) {
        CHECK(0);
        return;
    }
    refused(&r, DIR_, DSC_IO, "is a directory");
    refused(&r, "/dev/null", DSC_IO, "not a regular file");
    refused(&r, "", DSC_INVALID_ARGUMENT, "path is empty");
    refused(&r, P("missing.st"), DSC_IO, "No such file");
    CHECK_STATUS(dsc_optimizer_save(r.o, ""), DSC_INVALID_ARGUMENT, r.o);
    CHECK(strstr(dsc_optimizer_error(r.o), "path is empty") != NULL);
    CHECK_STATUS(dsc_optimizer_save(r.o, DIR_), DSC_IO, r.o);
    CHECK(strstr(dsc_optimizer_error(r.o), "is a directory") != NULL);
    dsc_optimizer_free(r.o);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_edits();
    test_version1();
    test_paths();
    const char *names[] = {"before.st", "after.st", "good.st", "edit.st", "swap.st", "bit.st",
                           "short.st", "long.st", "nock.st", "bad.st", "v1bad.st"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(P(names[i]));
    rmdir(tmpdir);
    return check_report("test_ckfile");
}
