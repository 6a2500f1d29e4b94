/* opts.h - option parsing for the `descent` commands and the lab commands they
 * run (it lives in the lab, below tools/, so that both can use it), on
 * glibc's getopt_long:
 * `--steps 3` and `--steps=3` both work, options may come before or after
 * the operands (getopt permutes them to the end), unambiguous prefixes of a
 * long option are accepted, and `--` ends the options.
 *
 *     static const struct option longs[] = {{"steps", required_argument, 0, 's'},
 *                                           {"ref", no_argument, 0, 'r'}, {0, 0, 0, 0}};
 *     int c;
 *     cli_opts_begin();
 *     while ((c = cli_opts_next("polar", argc, argv, longs)) != -1) {
 *         if (c == CLI_OPTS_BAD) return CLI_USAGE;        // message printed
 *         if (c == 's' && cli_int("polar", "--steps", optarg, 0, 100, &steps)) return CLI_USAGE;
 *         ...
 *     }
 *     // operands: argv[optind .. argc-1]
 *
 * Messages name the command ("descent polar: ..."), so the caller only maps
 * a bad option to its usage exit status. */
#ifndef DESCENT_CLI_OPTS_H
#define DESCENT_CLI_OPTS_H

#include <getopt.h>

enum { CLI_OPTS_BAD = -2 };

/* Resets getopt's state: each command parses its own argv from the start. */
void cli_opts_begin(void);

/* The next option's value (the `val` of its entry in longs), -1 after the
 * last option, or CLI_OPTS_BAD after printing why (unknown option, missing
 * or unexpected value). Long options only; optarg holds the value. */
int cli_opts_next(const char *cmd, int argc, char **argv, const struct option *longs);

/* The same with short options too (getopt's string without the leading
 * ':', e.g. "B:T:" for -B N and -T N). The `descent gpt2` subcommands
 * (lab/gpt2) parse through this, with cmd "gpt2 train" and so on. */
int cli_opts_next_short(const char *cmd, int argc, char **argv, const char *shorts,
                        const struct option *longs);

/* Parse an integer in [lo, hi] (decimal, whole string) into *out: 0 on
 * success; otherwise prints "descent CMD: OPT needs ..." and returns -1. */
int cli_int(const char *cmd, const char *opt, const char *text, long lo, long hi, int *out);

/* The same for a finite number in [lo, hi]. */
int cli_double(const char *cmd, const char *opt, const char *text, double lo, double hi,
               double *out);

#endif
