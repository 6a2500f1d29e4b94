/* cmd_theory.c - `descent theory`: the theory lab's experiments
 * (lab/theory/), each printing a summary table and writing a CSV and a plot;
 * `all` also writes a Markdown report. */
#include "cli.h"

#include "labfile.h"
#include "theory/theory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(const th_ctx *c);
} experiment;

static int run_det(const th_ctx *c) { return th_run_deterministic(c, NULL); }
static int run_sparse(const th_ctx *c) { return th_run_sparse_noise(c, NULL); }
static int run_scaling(const th_ctx *c) { return th_run_scaling(c, NULL); }
static int run_heavy(const th_ctx *c) { return th_run_heavy_tail(c, NULL); }
static int run_lion(const th_ctx *c) { return th_run_lion_box(c, NULL); }
static int run_matrix(const th_ctx *c) { return th_run_matrix(c, NULL); }
static int run_density(const th_ctx *c) { return th_run_noise_density(c, NULL); }

static const experiment experiments[] = {
    {"deterministic", "ill-conditioned quadratic, no noise: best-lr SGD vs SignSGD", run_det},
    {"sparse-noise", "noise on one coordinate: SGD vs SignSGD over 42 seeds", run_sparse},
    {"scaling", "gradients to l1-stationarity vs d and noise density phi", run_scaling},
    {"heavy-tail", "Student-t and alpha-stable noise: six optimizers", run_heavy},
    {"lion-box", "Lion with weight decay stays in / enters the box |x| <= 1/lambda", run_lion},
    {"matrix", "Muon vs SGD, rank-one vs spread matrix noise", run_matrix},
    {"noise-density", "dsc_noise_density on synthetic noise with known phi", run_density},
};
#define NEXP ((int)(sizeof experiments / sizeof experiments[0]))

int cmd_theory(int argc, char **argv)
{
    th_ctx c = th_ctx_default();
    c.log = stdout;
    const char *out = "out/theory";
    const char *which[16];
    int nwhich = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--full")) c.size = TH_SIZE_FULL;
        else if (!strcmp(a, "--quick")) c.size = TH_SIZE_TEST;
        else if (!strcmp(a, "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(a, "--seed") && i + 1 < argc) {
            char *end;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (*end || end == argv[i]) {
                fprintf(stderr, "descent theory: --seed wants an integer, got \"%s\"\n", argv[i]);
                return CLI_USAGE;
            }
            c.seed = v;
        } else if (!strcmp(a, "--plots") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "auto")) c.plot = LAB_PLOT_AUTO;
            else if (!strcmp(v, "png")) c.plot = LAB_PLOT_PNG;
            else if (!strcmp(v, "svg")) c.plot = LAB_PLOT_SVG;
            else if (!strcmp(v, "none")) c.plot = LAB_PLOT_NONE;
            else {
                fprintf(stderr, "descent theory: --plots wants auto, png, svg or none\n");
                return CLI_USAGE;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "descent theory: unknown option \"%s\" (see descent help theory)\n",
                    a);
            return CLI_USAGE;
        } else if (nwhich < 16) {
            which[nwhich++] = a;
        }
    }
    if (nwhich == 0) {
        fprintf(stderr, "descent theory: name an experiment (or `all`, `list`)\n");
        cli_print_usage(stderr, cli_find("theory"));
        return CLI_USAGE;
    }
    if (nwhich == 1 && !strcmp(which[0], "list")) {
        for (int e = 0; e < NEXP; e++)
            printf("  %-14s %s\n", experiments[e].name, experiments[e].summary);
        return CLI_OK;
    }
    for (int w = 0; w < nwhich; w++) {
        int known = !strcmp(which[w], "all");
        for (int e = 0; e < NEXP; e++) known |= !strcmp(which[w], experiments[e].name);
        if (!known) {
            fprintf(stderr, "descent theory: unknown experiment \"%s\" (descent theory list)\n",
                    which[w]);
            return CLI_USAGE;
        }
    }
    if (lab_mkdirs(out) != 0) {
        fprintf(stderr, "descent theory: cannot create the output folder \"%s\"\n", out);
        return CLI_USAGE;
    }
    c.out_dir = out;
    /* The problems are small: one thread avoids OpenMP start-up per step
     * (results do not depend on the thread count). */
    dsc_set_num_threads(1);
    int rc = CLI_OK;
    for (int w = 0; w < nwhich; w++) {
        if (!strcmp(which[w], "all")) {
            int r = th_run_all(&c);
            if (r < 0) rc = CLI_FAILED;
            continue;
        }
        for (int e = 0; e < NEXP; e++) {
            if (strcmp(which[w], experiments[e].name)) continue;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int r = experiments[e].run(&c);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            printf("\n[%s: %.1f s%s]\n", experiments[e].name,
                   (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
                   r > 0 ? ", parts skipped: optimizer not registered" : "");
            if (r < 0) rc = CLI_FAILED;
        }
    }
    return rc;
}

const char cmd_theory_usage[] =
    "usage: descent theory [OPTIONS] EXPERIMENT...\n"
    "  Reproduces when and why sign-based optimizers beat SGD, with libdescent's own\n"
    "  optimizers (Tao, Yu, Zhang, arXiv 2605.06615; Yu, Tao et al., arXiv 2602.07425;\n"
    "  \"Lion Secretly Solves Constrained Optimization\"). Each experiment prints a\n"
    "  summary table (Markdown) and writes a CSV and a plot into the output folder.\n"
    "  Seeds are fixed: the same command prints the same numbers.\n"
    "\n"
    "experiments:\n"
    "  deterministic  f = 1/2 sum L_i x_i^2, d = 5000, L_1 = 1000, others 1; x0 ~ N(0, I)\n"
    "                 with x0_1 / 1000; 3000 steps; SGD and SignSGD at their best lr in\n"
    "                 {1e-2..1e-8} (lowest final loss not above the start).\n"
    "  sparse-noise   f = 1/2 ||x||^2, d = 100, noise N(0, 100^2) on x_1 only; 3000 steps,\n"
    "                 42 seeds; SGD lr 1e-3, SignSGD lr 1e-2; mean loss, 10-90% band.\n"
    "  scaling        stochastic gradients each method needs to reach a target\n"
    "                 l1-stationarity (min over t of the seed-mean of ||grad f(x_t)||_1),\n"
    "                 lr tuned on a grid, for d in {10, 100, 1000} (--full adds 10000)\n"
    "                 and noise density phi from 1/d to 1 at fixed ||sigma||_2, on an\n"
    "                 ill-conditioned quadratic (one stiff coordinate) and an isotropic\n"
    "                 control; prints SGD/SignSGD beside the bound ratio 1/phi and the\n"
    "                 fitted log-log slope in d.\n"
    "  heavy-tail     Student-t and symmetric alpha-stable noise (tail index 1.2..2):\n"
    "                 SGD, clipped SGD, SignSGD, Signum, Lion, AdamW at their best lr;\n"
    "                 median and 10-90% quantiles of the final loss over seeds.\n"
    "  lion-box       Lion with weight decay lambda on a quadratic whose optimum lies\n"
    "                 outside ||x||_inf <= 1/lambda: max |x_i| lambda over the run,\n"
    "                 the step it enters the box, distance to the box-constrained optimum.\n"
    "  matrix         Muon vs SGD on a matrix quadratic with rank-one vs spread noise,\n"
    "                 gradients to a nuclear-norm stationarity target, as scaling does.\n"
    "  noise-density  dsc_noise_density() on synthetic noise with a known phi.\n"
    "  all            every experiment, plus OUT/report.md with the tables and plots.\n"
    "  list           list the experiments.\n"
    "\n"
    "options:\n"
    "  --out DIR      output folder (default out/theory; created if missing)\n"
    "  --full         the papers' sizes (slower); default sizes take under 2 minutes each\n"
    "  --quick        the reduced sizes the tests use\n"
    "  --seed N       base seed (default 42)\n"
    "  --plots KIND   auto (gnuplot PNG if installed, else SVG), png, svg or none;\n"
    "                 the environment variable DESCENT_PLOT=png|svg|none does the same\n"
    "\n"
    "  Optimizers that are not registered in this build are skipped, and the output\n"
    "  says so. Exit status: 0 success, 1 an experiment failed, 2 bad usage.\n";
