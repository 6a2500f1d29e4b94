/* plot.h - line plots for the lab's reports: gnuplot rendering PNG when it
 * is installed, else an SVG written directly (no dependency), or nothing.
 *
 * A plot is a set of series (x, y) with an optional band [lo, hi] drawn
 * shaded behind the line (quantile bands over seeds). Axes may be
 * logarithmic; points that cannot be drawn (NaN, Inf, <= 0 on a log axis)
 * are left out, and a line is broken there.
 *
 *     lab_series s[2] = {{"SGD", n, t, loss, NULL, NULL}, ...};
 *     lab_plot p = {"title", "step", "loss", 0, 1, 2, s};
 *     char path[1024], msg[256];
 *     lab_plot_format f = lab_plot_write(&p, "out/theory/det", LAB_PLOT_AUTO,
 *                                        path, sizeof path, msg, sizeof msg);
 *
 * The format: LAB_PLOT_AUTO is gnuplot PNG if `gnuplot` runs, else SVG; the
 * environment variable DESCENT_PLOT=png|svg|none overrides AUTO. Files are
 * written atomically. Never aborts: failures return LAB_PLOT_NONE with a
 * message. */
#ifndef DESCENT_PLOT_H
#define DESCENT_PLOT_H

#include <stddef.h>

typedef struct {
    const char *name;        /* legend text */
    int n;                   /* points */
    const double *x, *y;     /* n each */
    const double *lo, *hi;   /* optional band, n each, or NULL */
} lab_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int logx, logy;          /* 1: logarithmic axis */
    int nseries;
    const lab_series *series;
} lab_plot;

typedef enum { LAB_PLOT_AUTO = 0, LAB_PLOT_PNG, LAB_PLOT_SVG, LAB_PLOT_NONE } lab_plot_format;

/* Writes `base`.png or `base`.svg. Returns the format written (PNG or SVG)
 * and its path, or LAB_PLOT_NONE when skipped or failed (msg says why). */
lab_plot_format lab_plot_write(const lab_plot *p, const char *base, lab_plot_format want,
                               char *path, size_t pathlen, char *msg, size_t msglen);

/* The SVG writer alone (also the fallback). 0 on success. */
int lab_plot_svg(const lab_plot *p, const char *path);

/* 1 if `gnuplot` can be run (checked once per process). */
int lab_have_gnuplot(void);

#endif
