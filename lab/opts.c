/* opts.c - see opts.h. */
#include "opts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_opts_begin(void)
{
    /* glibc: optind = 0 re-initializes getopt completely (permutation state
     * included), which optind = 1 does not. We print our own messages. */
    optind = 0;
    opterr = 0;
}

int cli_opts_next(const char *cmd, int argc, char **argv, const struct option *longs)
{
    return cli_opts_next_short(cmd, argc, argv, "", longs);
}

int cli_opts_next_short(const char *cmd, int argc, char **argv, const char *shorts,
                        const struct option *longs)
{
    /* Leading ':' makes a missing value return ':' instead of '?'; short
     * options other than `shorts` ("-x") are reported as unknown. */
    char spec[32];
    snprintf(spec, sizeof spec, ":%s", shorts);
    int c = getopt_long(argc, argv, spec, longs, NULL);
    if (c != '?' && c != ':') return c;
    /* The offending word is the one getopt just stepped over. A
     * subcommand ("gpt2 train") explains itself with --help. */
    const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    char hint[96];
    if (strchr(cmd, ' ')) snprintf(hint, sizeof hint, "see descent %s --help", cmd);
    else snprintf(hint, sizeof hint, "see descent help %s", cmd);
    if (c == ':')
        fprintf(stderr, "descent %s: option \"%s\" needs a value (%s)\n", cmd, word, hint);
    else if (strncmp(word, "--", 2) == 0 && strchr(word, '='))
        fprintf(stderr, "descent %s: bad option \"%s\" (unknown, or takes no value; %s)\n",
                cmd, word, hint);
    else
        fprintf(stderr, "descent %s: unknown option \"%s\" (%s)\n", cmd, word, hint);
    return CLI_OPTS_BAD;
}

int cli_int(const char *cmd, const char *opt, const char *text, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "descent %s: %s needs an integer in [%ld, %ld], not \"%s\"\n", cmd, opt,
                lo, hi, text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_double(const char *cmd, const char *opt, const char *text, double lo, double hi,
               double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "descent %s: %s needs a number in [%g, %g], not \"%s\"\n", cmd, opt, lo,
                hi, text);
        return -1;
    }
    *out = v;
    return 0;
}
