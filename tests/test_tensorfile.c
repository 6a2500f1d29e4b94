/* test_tensorfile.c - the safetensors and .npz readers and writers of
 * `descent convert` (tools/cli/tensorfile.c): round trips, files built by
 * hand the way numpy and zip write them (stored and deflated members,
 * zip64 extra fields), and one refusal per check the readers make. The
 * end-to-end conversions against torch are tests/python/test_convert_torch.py. */
#include "check.h"
#include "tensorfile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char err[512];

/* ---------------------------------------------------------- zip builder */

typedef struct {
    unsigned char b[1 << 16];
    size_t n;
} bytes;

static void put(bytes *o, const void *d, size_t n)
{
    memcpy(o->b + o->n, d, n);
    o->n += n;
}
static void p16(bytes *o, uint32_t v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(o, x, 2);
}
static void p32(bytes *o, uint32_t v)
{
    p16(o, v & 0xFFFF);
    p16(o, v >> 16);
}

/* One .npy v1.0 file: header dict padded to 64, then data. */
static size_t npy(unsigned char *out, const char *dict, const void *data, size_t n)
{
    size_t dl = strlen(dict), total = 10 + dl + 1;
    while (total % 64) total++;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)((total - 10) & 0xFF);
    out[9] = (unsigned char)((total - 10) >> 8);
    memcpy(out + 10, dict, dl);
    memset(out + 10 + dl, ' ', total - 10 - dl - 1);
    out[total - 1] = '\n';
    memcpy(out + total, data, n);
    return total + n;
}

/* A zip of members (name, content), method 0 or 8; zip64 1 puts the sizes
 * in a zip64 extra field of the local header as numpy's savez does
 * (force_zip64), the directory holding the real sizes. */
typedef struct {
    const char *name;
    const unsigned char *data;
    size_t n;
} member;

static void zip(bytes *o, const member *m, int count, int method, int zip64, int bad_crc)
{
    uint32_t off[8], crc[8], csz[8];
    unsigned char comp[8][4096];
    o->n = 0;
    for (int i = 0; i < count; i++) {
        crc[i] = (uint32_t)crc32(0, m[i].data, (uInt)m[i].n) ^ (uint32_t)bad_crc;
        const unsigned char *payload = m[i].data;
        csz[i] = (uint32_t)m[i].n;
        if (method == 8) {
            z_stream z;
            memset(&z, 0, sizeof z);
            deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
            z.next_in = (unsigned char *)(uintptr_t)m[i].data;
            z.avail_in = (uInt)m[i].n;
            z.next_out = comp[i];
            z.avail_out = sizeof comp[i];
            deflate(&z, Z_FINISH);
            csz[i] = (uint32_t)z.total_out;
            deflateEnd(&z);
            payload = comp[i];
        }
        off[i] = (uint32_t)o->n;
        size_t nl = strlen(m[i].name);
        p32(o, 0x04034b50);
        p16(o, 45);
        p16(o, 0);
        p16(o, (uint32_t)method);
        p16(o, 0);
        p16(o, 0x21);
        p32(o, crc[i]);
        p32(o, zip64 ? 0xFFFFFFFFu : csz[i]);
        p32(o, zip64 ? 0xFFFFFFFFu : (uint32_t)m[i].n);
        p16(o, (uint32_t)nl);
        p16(o, zip64 ? 20 : 0);
        put(o, m[i].name, nl);
        if (zip64) {
            p16(o, 1);
            p16(o, 16);
            p32(o, (uint32_t)m[i].n);
            p32(o, 0);
            p32(o, csz[i]);
            p32(o, 0);
        }
        put(o, payload, csz[i]);
    }
    uint32_t cd = (uint32_t)o->n;
    for (int i = 0; i < count; i++) {
        size_t nl = strlen(m[i].name);
        p32(o, 0x02014b50);
        p16(o, 45);
        p16(o, 45);
        p16(o, 0);
        p16(o, (uint32_t)method);
        p16(o, 0);
        p16(o, 0x21);
        p32(o, crc[i]);
        p32(o, csz[i]);
        p32(o, (uint32_t)m[i].n);
        p16(o, (uint32_t)nl);
        p16(o, 0);
        p16(o, 0);
        p16(o, 0);
        p16(o, 0);
        p32(o, 0);
        p32(o, off[i]);
        put(o, m[i].name, nl);
    }
    uint32_t cds = (uint32_t)o->n - cd;
    p32(o, 0x06054b50);
    p16(o, 0);
    p16(o, 0);
    p16(o, (uint32_t)count);
    p16(o, (uint32_t)count);
    p32(o, cds);
    p32(o, cd);
    p16(o, 0);
}

static int npz_refused(const bytes *z, const char *expect)
{
    tf_set s;
    int rc = tf_read_npz(z->b, z->n, &s, err, sizeof err);
    if (rc == 0) {
        tf_free(&s);
        fprintf(stderr, "accepted, expected \"%s\"\n", expect);
        return 0;
    }
    if (!strstr(err, expect)) fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err, expect);
    return strstr(err, expect) != NULL && s.n == 0;
}

static void test_npz_by_hand(void)
{
    float w[6] = {1, -2, 3.5f, 0, -0.25f, 7};
    unsigned char f1[512], f2[512], f3[512];
    size_t n1 = npy(f1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", w, 24);
    float step = 12;
    size_t n2 = npy(f2, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &step, 4);
    const char meta[] = "{\"format\":\"torch-optimizer-state\",\"optimizer\":\"adamw\"}";
    char dict[96];
    snprintf(dict, sizeof dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (%zu,), }",
             strlen(meta));
    size_t n3 = npy(f3, dict, meta, strlen(meta));
    member m[3] = {{"state.0.exp_avg.npy", f1, n1}, {"state.0.step.npy", f2, n2},
                   {"__metadata__.npy", f3, n3}};
    static bytes z;
    for (int method = 0; method <= 8; method += 8)
        for (int zip64 = 0; zip64 <= 1; zip64++) {
            zip(&z, m, 3, method, zip64, 0);
            tf_set s;
            CHECK(tf_read_npz(z.b, z.n, &s, err, sizeof err) == 0);
            CHECK_EQ_INT(s.n, 2);
            const tf_tensor *t = tf_find(&s, "state.0.exp_avg");
            CHECK(t && t->dtype == TF_F32 && t->ndim == 2 && t->shape[0] == 2 &&
                  t->shape[1] == 3 && !memcmp(t->data, w, 24));
            t = tf_find(&s, "state.0.step");
            CHECK(t && t->ndim == 0 && t->count == 1 && !memcmp(t->data, &step, 4));
            CHECK(tf_meta(&s, "optimizer") && !strcmp(tf_meta(&s, "optimizer"), "adamw"));
            tf_free(&s);
        }
    zip(&z, m, 3, 0, 1, 1);
    CHECK(npz_refused(&z, "CRC"));
    zip(&z, m, 3, 0, 0, 0);
    z.b[z.n - 22 + 16] ^= 0x40; /* directory offset */
    CHECK(npz_refused(&z, "central directory"));
    zip(&z, m, 3, 8, 0, 0);
    z.b[60] ^= 0xFF; /* inside the first deflate stream */
    CHECK(npz_refused(&z, "npz: member"));
    CHECK(npz_refused(&(bytes){.n = 10}, "not a zip archive"));

    /* .npy headers numpy would not accept, or we do not */
    static const struct {
        const char *dict, *expect;
    } bad[] = {
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", "big-endian"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", "Fortran order"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (6,), }", "not supported"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }", "holds 24 data bytes"},
        {"{'descr': '<f4', 'shape': (6,), }", "malformed"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,), }",
         "repeated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", "unexpected"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", "malformed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = npy(f1, bad[i].dict, w, 24);
        member one = {"x.npy", f1, n};
        zip(&z, &one, 1, 0, 0, 0);
        CHECK(npz_refused(&z, bad[i].expect));
    }
    member dup[2] = {{"a.npy", f2, n2}, {"a.npy", f2, n2}};
    zip(&z, dup, 2, 0, 0, 0);
    CHECK(npz_refused(&z, "two tensors are named"));
    member notnpy = {"a.txt", f2, n2};
    zip(&z, &notnpy, 1, 0, 0, 0);
    CHECK(npz_refused(&z, "not a .npy"));
}

static int st_refused(const char *header, size_t data, const char *expect)
{
    static unsigned char b[4096];
    size_t hl = strlen(header);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    memset(b + 8 + hl, 0, data);
    tf_set s;
    int rc = tf_read_safetensors(b, 8 + hl + data, &s, err, sizeof err);
    if (rc == 0) {
        tf_free(&s);
        fprintf(stderr, "accepted %s\n", header);
        return 0;
    }
    if (!strstr(err, expect)) fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err, expect);
    return strstr(err, expect) != NULL;
}

static void test_safetensors_refusals(void)
{
    CHECK(st_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12,
                     "after the last tensor"));
    CHECK(st_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                     "do not hold"));
    CHECK(st_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
                     "overlap"));
    CHECK(st_refused("{\"a\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
                     "dtype"));
    CHECK(st_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
                     "duplicate key"));
    CHECK(st_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
                     "shape entry"));
    CHECK(st_refused("{\"__metadata__\":{\"x\":1}}", 0, "not a string"));
    CHECK(st_refused("[1,2]", 0, "not a JSON object"));
    CHECK(st_refused("{\"a\":", 0, "JSON"));
    CHECK(st_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300,1e300],\"data_offsets\":[0,8]}}",
                     8, "shape entry"));
    tf_set s;
    unsigned char tiny[8] = {200, 0, 0, 0, 0, 0, 0, 0};
    CHECK(tf_read_safetensors(tiny, 8, &s, err, sizeof err) == -1 && strstr(err, "header length"));
}

static void test_round_trips(void)
{
    char dir[] = "/tmp/descent-tf-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    tf_set s = {0};
    float a[12];
    for (int i = 0; i < 12; i++) a[i] = (float)i * 0.5f - 2;
    int64_t shape[3] = {2, 3, 2}, one = 1;
    double d = 3.25;
    int64_t i64 = -7;
    CHECK(tf_add(&s, "state.0.exp_avg", TF_F32, 3, shape, a, err, sizeof err) == 0);
    CHECK(tf_add(&s, "state.0.step", TF_F32, 0, NULL, a + 5, err, sizeof err) == 0);
    CHECK(tf_add(&s, "x.f64", TF_F64, 1, &one, &d, err, sizeof err) == 0);
    CHECK(tf_add(&s, "n", TF_I64, 1, &one, &i64, err, sizeof err) == 0);
    CHECK(tf_add(&s, "n", TF_I64, 1, &one, &i64, err, sizeof err) == -1); /* duplicate */
    CHECK(tf_set_meta(&s, "param_groups", "[{\"params\": [0], \"lr\": 0.1}]", err, sizeof err) ==
          0);
    CHECK(tf_set_meta(&s, "quote\"d", "back\\slash\n", err, sizeof err) == 0);
    for (int fmt = 0; fmt < 2; fmt++) {
        char path[96];
        snprintf(path, sizeof path, "%s/out.%s", dir, fmt ? "npz" : "safetensors");
        CHECK(fmt ? tf_write_npz(path, &s, err, sizeof err) == 0
                  : tf_write_safetensors(path, &s, err, sizeof err) == 0);
        tf_set r;
        CHECK(tf_read_file(path, &r, err, sizeof err) == 0);
        CHECK_EQ_INT(r.n, s.n);
        for (int i = 0; i < s.n && i < r.n; i++) {
            const tf_tensor *t = tf_find(&r, s.t[i].name);
            CHECK(t && t->dtype == s.t[i].dtype && t->ndim == s.t[i].ndim &&
                  t->bytes == s.t[i].bytes && !memcmp(t->data, s.t[i].data, t->bytes));
        }
        CHECK(tf_meta(&r, "quote\"d") && !strcmp(tf_meta(&r, "quote\"d"), "back\\slash\n"));
        CHECK(tf_meta(&r, "param_groups") != NULL);
        tf_free(&r);
        unlink(path);
        char tmp[128];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
        CHECK(access(tmp, F_OK) != 0); /* no temporary left behind */
    }
    /* a bfloat16 tensor has no .npy form: refused, nothing written */
    uint16_t bf = 0x3f80;
    CHECK(tf_add(&s, "bf", TF_BF16, 1, &one, &bf, err, sizeof err) == 0);
    char path[96];
    snprintf(path, sizeof path, "%s/bf.npz", dir);
    CHECK(tf_write_npz(path, &s, err, sizeof err) == -1 && strstr(err, "bfloat16"));
    CHECK(access(path, F_OK) != 0);
    CHECK(tf_write_safetensors(dir, &s, err, sizeof err) == -1 && strstr(err, "directory"));
    tf_free(&s);
    rmdir(dir);
}

static void test_json(void)
{
    static const char *const bad[] = {"{\"a\":1,}", "[1,]", "01", "1.", "\"\\u0000\"",
                                      "\"\\ud800\"", "nul", "1e999", "{\"a\" 1}", "[1] 2",
                                      "\"tab\there\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        djson *v = djson_parse(bad[i], strlen(bad[i]), NULL, err, sizeof err, NULL);
        CHECK(v == NULL);
        djson_free(v, NULL);
    }
    char deep[80];
    memset(deep, '[', 40);
    memset(deep + 40, ']', 40);
    CHECK(djson_parse(deep, 80, NULL, err, sizeof err, NULL) == NULL && strstr(err, "nested"));
    const char ok[] = " {\"s\":\"\\u00e9\\ud83d\\ude00\",\"t\":true,\"f\":false,\"n\":null,"
                      "\"x\":-1.5e2,\"a\":[]} ";
    djson *v = djson_parse(ok, strlen(ok), NULL, err, sizeof err, NULL);
    CHECK(v && v->type == DJSON_OBJECT && v->count == 6);
    CHECK(v && !strcmp(djson_get(v, "s")->string, "\xc3\xa9\xf0\x9f\x98\x80"));
    CHECK(v && djson_get(v, "t")->number == 1 && djson_get(v, "f")->number == 0);
    CHECK(v && djson_get(v, "n")->type == DJSON_NULL && djson_get(v, "x")->number == -150);
    djson_free(v, NULL);
}

int main(void)
{
    test_json();
    test_npz_by_hand();
    test_safetensors_refusals();
    test_round_trips();
    return check_report("test_tensorfile");
}
