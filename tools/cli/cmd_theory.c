/* cmd_theory.c - `descent theory`: the theory lab's experiments
 * (lab/theory/), each printing a summary table and writing a CSV and a plot;
 * `all` also writes a Markdown report. */
#include "cli.h"

#include "labfile.h"
#include "opts.h"
#include "theory/theory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *name;
    const char *summary;
} experiments[] = {
    {"deterministic", "ill-conditioned quadratic, no noise: paper grid and fair tuning"},
    {"sparse-noise", "noise on one coordinate: paper lrs and fair tuning"},
    {"scaling", "geometry x noise placement x phi x d, with no-noise baselines"},
    {"heavy-tail", "heavy-tailed noise: sign methods vs tuned clipped/normalized SGD"},
    {"lion-box", "Lion with weight decay stays in / enters the box |x| <= 1/lambda"},
    {"matrix", "Muon vs SGD with no-noise, spread-spectrum and noise-placement controls"},
    {"noise-density", "dsc_noise_density on synthetic noise with known phi"},
};
#define NEXP ((int)(sizeof experiments / sizeof experiments[0]))

int cmd_theory(int argc, char **argv)
{
    th_ctx c = th_ctx_default();
    c.log = stdout;
    const char *out = "out/theory";
    enum { O_OUT = 1, O_LARGE, O_QUICK, O_SEED, O_PLOTS, O_RESUME, O_FULL, O_HELP };
    static const struct option opts[] = {
        {"out", required_argument, NULL, O_OUT},     {"large", no_argument, NULL, O_LARGE},
        {"quick", no_argument, NULL, O_QUICK},       {"seed", required_argument, NULL, O_SEED},
        {"plots", required_argument, NULL, O_PLOTS}, {"resume", no_argument, NULL, O_RESUME},
        {"full", no_argument, NULL, O_FULL},         {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    cli_opts_begin();
    int ch;
    while ((ch = cli_opts_next("theory", argc, argv, opts)) != -1) {
        switch (ch) {
        case O_OUT: out = optarg; break;
        case O_LARGE: c.size = TH_SIZE_LARGE; break;
        case O_QUICK: c.size = TH_SIZE_TEST; break;
        case O_RESUME: c.resume = 1; break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || end == optarg || optarg[0] == '-' || errno) {
                fprintf(stderr, "descent theory: --seed wants a non-negative integer, got \"%s\"\n",
                        optarg);
                return CLI_USAGE;
            }
            c.seed = v;
            break;
        }
        case O_PLOTS:
            if (!strcmp(optarg, "auto")) c.plot = LAB_PLOT_AUTO;
            else if (!strcmp(optarg, "png")) c.plot = LAB_PLOT_PNG;
            else if (!strcmp(optarg, "svg")) c.plot = LAB_PLOT_SVG;
            else if (!strcmp(optarg, "none")) c.plot = LAB_PLOT_NONE;
            else {
                fprintf(stderr, "descent theory: --plots wants auto, png, svg or none, got \"%s\"\n",
                        optarg);
                return CLI_USAGE;
            }
            break;
        case O_FULL:
            fprintf(stderr, "descent theory: --full was renamed --large (the papers have no such "
                            "sizes; see descent help theory)\n");
            return CLI_USAGE;
        case O_HELP: cli_print_usage(stdout, cli_find("theory")); return CLI_OK;
        default: return CLI_USAGE; /* CLI_OPTS_BAD: the message is printed */
        }
    }
    const char *which[16];
    int nwhich = 0;
    for (int i = optind; i < argc; i++) {
        if (nwhich == 16) {
            fprintf(stderr, "descent theory: at most 16 experiments per call\n");
            return CLI_USAGE;
        }
        which[nwhich++] = argv[i];
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
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int r = th_run_named(&c, which[w]);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("\n[%s: %.1f s%s]\n", which[w],
               (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
               r > 0 ? ", parts skipped: optimizer not registered" : "");
        if (r < 0) rc = CLI_FAILED;
    }
    return rc;
}

const char cmd_theory_usage[] =
    "usage: descent theory [OPTIONS] EXPERIMENT...\n"
    "  Tests when and why sign-based optimizers beat SGD, with libdescent's own\n"
    "  optimizers (Tao, Yu, Zhang, arXiv 2605.06615; Yu, Tao et al., arXiv 2602.07425;\n"
    "  \"Lion Secretly Solves Constrained Optimization\"). Every learning rate is tuned\n"
    "  by one tuner (4 per decade, extended until the best is interior; grid-edge hits\n"
    "  are flagged), every stochastic figure is a median over independent draws with a\n"
    "  bootstrap 90% interval, and every experiment ends with verdicts (supported,\n"
    "  contradicted, inconclusive) computed from its numbers by the rules in\n"
    "  docs/theory.md. Each experiment prints Markdown tables and writes a CSV, plots,\n"
    "  OUT/<experiment>.json (claims, intervals, verdicts, edge hits) and\n"
    "  OUT/<experiment>.section.md. Seeds are fixed: the same command prints the same\n"
    "  numbers.\n"
    "\n"
    "experiments:\n"
    "  deterministic  f = 1/2 sum L_i x_i^2, d = 5000, L_1 = 1000, others 1: the paper's\n"
    "                 grid (labelled paper-exact) beside fair tuning over 10 x0 draws.\n"
    "  sparse-noise   f = 1/2 ||x||^2, d = 100, noise N(0, 100^2) on x_1: the paper's lrs\n"
    "                 (paper-exact) beside fair tuning; per-seed SGD/SignSGD factor.\n"
    "  scaling        steps to l1-stationarity, SGD vs SignSGD, in a factorial design:\n"
    "                 geometry {iso, one stiff coordinate, graded spectrum} x noise\n"
    "                 placement {stiff, flat, spread} x phi {1/d, d^-1/2, 1} x d {10, 100,\n"
    "                 1000; --large adds 10000}, each with its no-noise baseline; the\n"
    "                 bounds' predicted factor per cell; slopes in d with intervals.\n"
    "  heavy-tail     Student-t and alpha-stable noise: SignSGD, Signum, Lion against SGD,\n"
    "                 clipped SGD (clip level tuned) and normalized SGD; steps to target,\n"
    "                 \"did not reach\" never turned into a ratio.\n"
    "  lion-box       Lion with weight decay lambda stays in / enters ||x||_inf <= 1/lambda.\n"
    "  matrix         Muon vs SGD to nuclear-norm stationarity, geometry {stiff, graded} x\n"
    "                 noise {none, rank-one, spread}, m up to 32 (--large: 64).\n"
    "  noise-density  dsc_noise_density() on synthetic noise with a known phi.\n"
    "  all            every experiment, plus OUT/report.md with the tables and plots.\n"
    "  list           list the experiments.\n"
    "\n"
    "options:\n"
    "  --out DIR      output folder (default out/theory; created if missing)\n"
    "  --large        larger sizes (more dimensions and seeds; `all` takes under an hour\n"
    "                 on one core); the default takes about 10 minutes in all\n"
    "  --quick        the reduced sizes the tests use\n"
    "  --resume       reuse finished experiments and cells cached in DIR by an earlier\n"
    "                 run of the same size and seed (an interrupted run continues)\n"
    "  --seed N       base seed (default 42)\n"
    "  --plots KIND   auto (gnuplot PNG if installed, else SVG), png, svg or none;\n"
    "                 the environment variable DESCENT_PLOT=png|svg|none does the same\n"
    "\n"
    "  Optimizers that are not registered in this build are skipped, and the output\n"
    "  says so. Exit status: 0 success, 1 an experiment failed, 2 bad usage.\n";
