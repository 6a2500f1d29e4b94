/* test_gpt2_study.c - the optimizer study (lab/gpt2/study.h):
 * - phi per group against a known phi (two gradients mu +- s have sample
 *   variance 2 s^2 per coordinate exactly, so phi = ||s||_1^2 / (d ||s||_2^2));
 * - the compact and top-N vocabularies;
 * - the whole study at a tiny size on real SOTU tokens (tests/data): every
 *   tuning run and seed, the tables and plots written, the tuner's best lr
 *   interior or flagged;
 * - resume: an interrupted study (one run folder without run.txt, one run
 *   missing) redoes exactly those and leaves every finished run untouched;
 * - the Fashion-MNIST study at a tiny size when the Debian package
 *   dataset-fashion-mnist is installed (skipped, with a message, when not). */
#include "check.h"

#include "classify/fashion.h"
#include "gpt2/data.h"
#include "gpt2/study.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[256];

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int exists_in(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return exists(p);
}

static void test_phi_known(void)
{
    /* d = 10: group 1 = [0, 4), group 2 = [4, 6) u [8, 10), group 3 = [6, 8) */
    enum { D = 10 };
    const double s[D] = {1, 1, 1, 1, 3, 0.5, 2, 2, 0, 0.25};
    const double mu[D] = {0.3, -1, 2, 0, 5, -2, 1, 1, 0.5, -0.5};
    float g0[D], g1[D];
    for (int j = 0; j < D; j++) {
        g0[j] = (float)(mu[j] + s[j]);
        g1[j] = (float)(mu[j] - s[j]);
    }
    const float *g[2] = {g0, g1};
    study_seg segs[4] = {{0, 4, 1}, {4, 2, 2}, {8, 2, 2}, {6, 2, 3}};
    double phi[4], snr;
    char err[256];
    CHECK(study_phi_groups(g, 2, D, segs, 4, 4, phi, &snr, err, sizeof err) == 0);
    /* exact phi of a set of |s| */
    int sets[4][D] = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 1, 2, 3}, {4, 5, 8, 9}, {6, 7}};
    int sizes[4] = {D, 4, 4, 2};
    for (int k = 0; k < 4; k++) {
        double s1 = 0, s2 = 0;
        for (int i = 0; i < sizes[k]; i++) {
            double v = s[sets[k][i]];
            s1 += v, s2 += v * v;
        }
        double want = s1 * s1 / (sizes[k] * s2);
        CHECK_NEAR(phi[k], want, 1e-6);
    }
    CHECK_NEAR(phi[1], 1.0, 1e-9);   /* equal noise: phi = 1 */
    CHECK_NEAR(phi[3], 1.0, 1e-9);
    /* snr: ||mean||^2 / sum of variances (2 s^2 each) */
    double m2 = 0, v = 0;
    for (int j = 0; j < D; j++) {
        double m = ((double)g0[j] + g1[j]) / 2, e = (double)g0[j] - m;
        m2 += m * m;
        v += 2 * e * e;
    }
    CHECK_NEAR(snr, m2 / v, 1e-9 * (m2 / v));
    /* one noisy coordinate: phi = 1/d */
    float h0[D] = {0}, h1[D] = {0};
    h0[3] = 1, h1[3] = -1;
    const float *h[2] = {h0, h1};
    CHECK(study_phi_groups(h, 2, D, NULL, 0, 1, phi, NULL, err, sizeof err) == 0);
    CHECK_NEAR(phi[0], 1.0 / D, 1e-12);
    /* bad input: a segment past d, a group out of range, k < 2 */
    study_seg bad[1] = {{8, 4, 1}};
    CHECK(study_phi_groups(g, 2, D, bad, 1, 2, phi, NULL, err, sizeof err) == -1);
    study_seg bad2[1] = {{0, 4, 5}};
    CHECK(study_phi_groups(g, 2, D, bad2, 1, 2, phi, NULL, err, sizeof err) == -1);
    CHECK(study_phi_groups(g, 1, D, NULL, 0, 1, phi, NULL, err, sizeof err) == -1);
}

/* SOTU 2021 head: 902 real GPT-2 ids; 700 for training, 202 for validation */
static int write_tokens(const char *dir)
{
    FILE *f = fopen("tests/data/sotu_2021_head.ids", "r");
    if (!f) return -1;
    uint16_t ids[1024];
    int n = 0, v;
    while (n < 1024 && fscanf(f, "%d", &v) == 1) ids[n++] = (uint16_t)v;
    fclose(f);
    if (n < 900) return -1;
    char p[512], err[256];
    snprintf(p, sizeof p, "%s/train.bin", dir);
    if (gpt2_tokens_write(p, ids, 700, err, sizeof err)) return -1;
    snprintf(p, sizeof p, "%s/val.bin", dir);
    return gpt2_tokens_write(p, ids + 700, (size_t)(n - 700), err, sizeof err);
}

static void test_compact(void)
{
    char src[300], dst[300], err[256];
    snprintf(src, sizeof src, "%s/src", tmp);
    mkdir(src, 0777);
    CHECK(write_tokens(src) == 0);
    snprintf(dst, sizeof dst, "%s/compact", tmp);
    int V = 0;
    CHECK(study_compact_corpus(src, dst, 0, &V, err, sizeof err) == 0);
    uint16_t *a, *b, *x, *y;
    size_t na, nb, nx, ny;
    char p[400];
    snprintf(p, sizeof p, "%s/train.bin", src);
    CHECK(gpt2_tokens_read(p, 0, &a, &na, err, sizeof err) == 0);
    snprintf(p, sizeof p, "%s/train.bin", dst);
    CHECK(gpt2_tokens_read(p, V, &x, &nx, err, sizeof err) == 0);
    snprintf(p, sizeof p, "%s/val.bin", src);
    CHECK(gpt2_tokens_read(p, 0, &b, &nb, err, sizeof err) == 0);
    snprintf(p, sizeof p, "%s/val.bin", dst);
    CHECK(gpt2_tokens_read(p, V, &y, &ny, err, sizeof err) == 0);
    CHECK(na == nx && nb == ny);
    /* vocab.txt maps every compact id back to its GPT-2 id */
    int map[4096], nm = 0;
    snprintf(p, sizeof p, "%s/vocab.txt", dst);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    while (f && nm < 4096 && fscanf(f, "%d", &map[nm]) == 1) nm++;
    if (f) fclose(f);
    CHECK_EQ_INT(nm, V);
    int ok = 1;
    for (size_t i = 0; i < na && nm == V; i++) ok &= map[x[i]] == a[i];
    for (size_t i = 0; i < nb && nm == V; i++) ok &= map[y[i]] == b[i];
    CHECK(ok);
    for (int i = 1; i < nm; i++) ok &= map[i] > map[i - 1]; /* GPT-2 order */
    CHECK(ok);
    free(x);
    free(y);
    /* top 8: the 7 most frequent training ids keep their own, the rest "rare" = 7 */
    snprintf(dst, sizeof dst, "%s/top8", tmp);
    CHECK(study_compact_corpus(src, dst, 8, &V, err, sizeof err) == 0);
    CHECK_EQ_INT(V, 8);
    snprintf(p, sizeof p, "%s/train.bin", dst);
    CHECK(gpt2_tokens_read(p, 8, &x, &nx, err, sizeof err) == 0);
    static unsigned cnt[65536];
    for (size_t i = 0; i < na; i++) cnt[a[i]]++;
    /* the 7th largest count: every kept id has at least it */
    unsigned c7 = 0;
    {
        unsigned top[7] = {0};
        for (int id = 0; id < 65536; id++) {
            unsigned c = cnt[id];
            for (int k = 0; k < 7; k++)
                if (c > top[k]) {
                    memmove(top + k + 1, top + k, sizeof(unsigned) * (size_t)(6 - k));
                    top[k] = c;
                    break;
                }
        }
        c7 = top[6];
    }
    size_t rare = 0, rare_want = 0;
    for (size_t i = 0; i < na; i++) {
        rare += x[i] == 7;
        if (x[i] != 7) ok &= cnt[a[i]] >= c7;
    }
    for (int id = 0; id < 65536; id++)
        if (cnt[id] < c7) rare_want += cnt[id];
    CHECK(ok);
    CHECK(rare >= rare_want && rare > 0);
    free(a);
    free(b);
    free(x);
}

static long count_runs(const char *root, char names[][512], struct timespec *mt, int max)
{
    /* every OUT/{tune,runs}/<method>/<run>/run.txt */
    int n = 0;
    const char *kinds[2] = {"tune", "runs"};
    for (int k = 0; k < 2; k++) {
        char d1[512];
        snprintf(d1, sizeof d1, "%s/%s", root, kinds[k]);
        DIR *a = opendir(d1);
        if (!a) continue;
        struct dirent *e;
        while ((e = readdir(a))) {
            if (e->d_name[0] == '.') continue;
            char d2[1024];
            snprintf(d2, sizeof d2, "%s/%s", d1, e->d_name);
            DIR *b = opendir(d2);
            if (!b) continue;
            struct dirent *r;
            while ((r = readdir(b))) {
                if (r->d_name[0] == '.') continue;
                char p[1400];
                snprintf(p, sizeof p, "%s/%s/run.txt", d2, r->d_name);
                struct stat st;
                if (stat(p, &st) == 0 && n < max) {
                    snprintf(names[n], 512, "%.500s", p + strlen(root));
                    mt[n] = st.st_mtim;
                    n++;
                }
            }
            closedir(b);
        }
        closedir(a);
    }
    return n;
}

static int run_cmd(int (*fn)(int, char **), char **argv)
{
    int argc = 0;
    while (argv[argc]) argc++;
    return fn(argc, argv);
}

static void test_gpt2_study(void)
{
    char src[300], out[300], t[400], v[400];
    snprintf(src, sizeof src, "%s/src", tmp);
    snprintf(out, sizeof out, "%s/gpt2", tmp);
    snprintf(t, sizeof t, "%s/train.bin", src);
    snprintf(v, sizeof v, "%s/val.bin", src);
    char *argv[] = {"study", "--preset", "tiny", "--train", t, "--val", v, "--out", out,
                    "--threads", "1", "--quiet", NULL};
    CHECK_EQ_INT(run_cmd(gpt2_cmd_study, argv), 0);
    const char *files[] = {"summary.md", "summary.csv", "tuning.csv", "runs.csv", "phi.csv",
                           "phi_trend.csv", "prediction.csv", "val_loss.svg", "phi_all.svg",
                           "phi_embeddings.svg", "phi_attention.svg", "phi_mlp.svg",
                           "phi_norms.svg", "prediction.svg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int ok = exists_in(out, files[i]);
        if (!ok) fprintf(stderr, "missing %s/%s\n", out, files[i]);
        CHECK(ok);
    }
    /* tuning: >= 3 lrs per method, one best each, edge flags present */
    char p[600], line[512];
    snprintf(p, sizeof p, "%s/tuning.csv", out);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    int per[STUDY_MAX_METHODS] = {0}, best[STUDY_MAX_METHODS] = {0};
    while (f && fgets(line, sizeof line, f)) {
        for (int m = 0; m < study_nmethods; m++) {
            size_t L = strlen(study_methods[m].name);
            if (!strncmp(line, study_methods[m].name, L) && line[L] == ',') {
                per[m]++;
                char *c = line;
                for (int k = 0; k < 3 && c; k++) c = strchr(c + 1, ',');
                if (c && c[1] == '1') best[m]++;
            }
        }
    }
    if (f) fclose(f);
    for (int m = 0; m < study_nmethods; m++) {
        CHECK(per[m] >= 3);
        CHECK_EQ_INT(best[m], 1);
    }
    /* 7 methods x 2 seeds of final runs, each with phi rows for 5 groups */
    for (int m = 0; m < study_nmethods; m++)
        for (int s = 1; s <= 2; s++) {
            snprintf(p, sizeof p, "%s/runs/%s/seed_%d/phi.csv", out, study_methods[m].name,
                     1000 + s);
            f = fopen(p, "r");
            CHECK(f != NULL);
            int rows = 0;
            if (f) {
                if (fgets(line, sizeof line, f))
                    CHECK(strstr(line, "phi_embeddings") && strstr(line, "phi_norms"));
                while (fgets(line, sizeof line, f)) rows++;
                fclose(f);
            }
            CHECK_EQ_INT(rows, 4); /* steps 0, 4, 8, 12 */
        }
    snprintf(p, sizeof p, "%s/summary.md", out);
    f = fopen(p, "r");
    int labels = 0, pred = 0;
    while (f && fgets(line, sizeof line, f)) {
        for (int m = 0; m < study_nmethods; m++)
            if (!strncmp(line, "| ", 2) && !strncmp(line + 2, study_methods[m].label,
                                                    strlen(study_methods[m].label)))
                labels++;
        pred += strstr(line, "Prediction against outcome") != NULL;
    }
    if (f) fclose(f);
    CHECK(labels >= 3 * study_nmethods); /* final, tuning and phi tables */
    CHECK_EQ_INT(pred, 1);

    /* resume: interrupt (one run without run.txt, one run gone), restart */
    static char before[256][512], after[256][512];
    static struct timespec mb[256], ma[256];
    long nb = count_runs(out, before, mb, 256);
    CHECK(nb >= 7 * 3 + 14);
    char victim1[600], victim2[600];
    snprintf(victim1, sizeof victim1, "%s/runs/signsgd/seed_1002/run.txt", out);
    snprintf(victim2, sizeof victim2, "rm -rf %s/runs/lion/seed_1001", out);
    CHECK(unlink(victim1) == 0);
    CHECK(system(victim2) == 0);
    snprintf(p, sizeof p, "%s/summary.md", out);
    unlink(p);
    CHECK_EQ_INT(run_cmd(gpt2_cmd_study, argv), 0);
    CHECK(exists(p));
    long na = count_runs(out, after, ma, 256);
    CHECK_EQ_INT(na, nb);
    int redone = 0, same = 0;
    for (long i = 0; i < na; i++)
        for (long j = 0; j < nb; j++)
            if (!strcmp(after[i], before[j])) {
                int changed = ma[i].tv_sec != mb[j].tv_sec || ma[i].tv_nsec != mb[j].tv_nsec;
                int victim = strstr(after[i], "signsgd/seed_1002") || strstr(after[i], "lion/seed_1001");
                if (changed) redone++;
                if (!changed && !victim) same++;
                if (changed && !victim) fprintf(stderr, "redone without need: %s\n", after[i]);
            }
    CHECK_EQ_INT(redone, 2);
    CHECK_EQ_INT(same, nb - 2);
    /* the split alone (another process's share of the work) reads AdamW's
     * tuning back for its rest, so it finds its own runs as they are */
    char *argv1[] = {"study", "--preset", "tiny", "--train", t, "--val", v, "--out", out,
                     "--methods", "muon", "--threads", "1", "--quiet", NULL};
    CHECK_EQ_INT(run_cmd(gpt2_cmd_study, argv1), 0);
    na = count_runs(out, after, ma, 256);
    CHECK_EQ_INT(na, nb);
    /* one seed's share: nothing left to do, no report written */
    unlink(p);
    char *argv6[] = {"study", "--preset", "tiny", "--train", t, "--val", v, "--out", out,
                     "--methods", "sgd,lion", "--only-seed", "2", "--threads", "1", "--quiet",
                     NULL};
    CHECK_EQ_INT(run_cmd(gpt2_cmd_study, argv6), 0);
    CHECK(!exists(p));
    na = count_runs(out, after, ma, 256);
    CHECK_EQ_INT(na, nb);
    char *argv7[] = {"study", "--preset", "tiny", "--only-seed", "3", NULL};
    CHECK_EQ_INT(run_cmd(gpt2_cmd_study, argv7), 2);
    /* a run folder made by another setup is refused, not mixed in */
    char *argv2[] = {"study", "--preset", "tiny", "--train", t, "--val", v, "--out", out,
                     "--steps", "10", "--threads", "1", "--quiet", NULL};
    CHECK_EQ_INT(run_cmd(gpt2_cmd_study, argv2), 1);
    /* bad flags */
    char *argv3[] = {"study", "--preset", "huge", NULL};
    CHECK_EQ_INT(run_cmd(gpt2_cmd_study, argv3), 2);
    char *argv4[] = {"study", "--seeds", "0", NULL};
    CHECK_EQ_INT(run_cmd(gpt2_cmd_study, argv4), 2);
    char *argv5[] = {"study", "--train", t, NULL};
    CHECK_EQ_INT(run_cmd(gpt2_cmd_study, argv5), 2);
}

static void test_fashion(void)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", fashion_default_dir());
    if (!exists(p)) {
        printf("SKIP Fashion-MNIST study: %s not found (Debian package dataset-fashion-mnist)\n",
               p);
        return;
    }
    char out[300];
    snprintf(out, sizeof out, "%s/fashion", tmp);
    char *argv[] = {"study", "--preset", "tiny", "--methods", "sgd,signsgd,muon", "--out", out,
                    "--quiet", NULL};
    CHECK_EQ_INT(run_cmd(classify_cmd_study, argv), 0);
    const char *files[] = {"summary.md", "summary.csv", "phi_first_layer.svg",
                           "phi_later_layers.svg", "phi_biases.svg", "prediction.csv"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) CHECK(exists_in(out, files[i]));
    /* the MLP's gradient against central differences on a few entries */
    fashion_set tr, va, te;
    char err[256];
    CHECK(fashion_load(NULL, &tr, &va, &te, err, sizeof err) == 0);
    CHECK_EQ_INT(tr.n, 55000);
    CHECK_EQ_INT(va.n, 5000);
    CHECK_EQ_INT(te.n, 10000);
    fashion_mlp m;
    CHECK(fashion_mlp_init(&m, 8, 6, 8, 3) == 0);
    int idx[4] = {0, 17, 123, 4000};
    fashion_mlp_grad(&m, &tr, idx, 4);
    float *g = malloc(sizeof(float) * m.num_params);
    memcpy(g, m.grads, sizeof(float) * m.num_params);
    size_t off[6], len[6];
    fashion_mlp_tensors(&m, off, len);
    int worst_ok = 1;
    for (int k = 0; k < 6; k++)
        for (size_t j = 0; j < len[k]; j += len[k] / 3 + 1) {
            size_t at = off[k] + j;
            float keep = m.params[at];
            double h = 1e-2;
            m.params[at] = (float)(keep + h);
            double lp = fashion_mlp_grad(&m, &tr, idx, 4);
            m.params[at] = (float)(keep - h);
            double lm = fashion_mlp_grad(&m, &tr, idx, 4);
            m.params[at] = keep;
            double fd = (lp - lm) / (2 * h);
            if (!(fabs(fd - g[at]) <= 2e-3 + 2e-2 * fabs(fd))) {
                fprintf(stderr, "tensor %d entry %zu: backward %g, differences %g\n", k, j,
                        g[at], fd);
                worst_ok = 0;
            }
        }
    CHECK(worst_ok);
    free(g);
    fashion_mlp_free(&m);
    fashion_free(&tr);
    fashion_free(&va);
    fashion_free(&te);
}

int main(void)
{
    setenv("DESCENT_PLOT", "svg", 1); /* no gnuplot needed, and fast */
    snprintf(tmp, sizeof tmp, "/tmp/descent_study_XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_phi_known();
    test_compact();
    test_gpt2_study();
    test_fashion();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return check_report("test_gpt2_study");
}
