/* plot.c - gnuplot PNG or hand-written SVG line plots (see plot.h).
 *
 * gnuplot: the data go to a temporary file (one block per series: x y lo
 * hi), the script to another; `gnuplot script` renders a temporary PNG that
 * is renamed onto the final name, so a failed render leaves nothing. The
 * SVG writer draws the same plot with its own axes, decade ticks on log
 * axes, shaded bands and a legend. */
#include "plot.h"

#include "labfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const palette[] = {"#1f77b4", "#2ca02c", "#d62728", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                      "#bcbd22", "#17becf"};
#define NPALETTE ((int)(sizeof palette / sizeof palette[0]))

static void set_msg(char *msg, size_t n, const char *text)
{
    if (msg && n) snprintf(msg, n, "%s", text);
}

int lab_have_gnuplot(void)
{
    static int known = -1;
    if (known < 0) known = system("gnuplot --version >/dev/null 2>&1") == 0;
    return known;
}

static int drawable(double v, int logaxis)
{
    return isfinite(v) && (!logaxis || v > 0.0);
}

/* ------------------------------------------------------------- gnuplot */

/* Text safe inside a gnuplot double-quoted string. */
static void gp_quote(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_png(const lab_plot *p, const char *png, char *msg, size_t msglen)
{
    char dat[1100], gp[1100], tmp[1100];
    long pid = (long)getpid();
    snprintf(dat, sizeof dat, "%s.%ld.dat", png, pid);
    snprintf(gp, sizeof gp, "%s.%ld.gp", png, pid);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp.png", png, pid);
    FILE *fd = fopen(dat, "w"), *fs = fopen(gp, "w");
    if (!fd || !fs) {
        if (fd) fclose(fd);
        if (fs) fclose(fs);
        remove(dat);
        set_msg(msg, msglen, "cannot write gnuplot temporary files");
        return -1;
    }
    for (int s = 0; s < p->nseries; s++) {
        const lab_series *se = &p->series[s];
        for (int i = 0; i < se->n; i++) {
            double x = se->x[i], y = se->y[i];
            if (!drawable(x, p->logx) || !drawable(y, p->logy)) {
                fprintf(fd, "\n"); /* break the line */
                continue;
            }
            double lo = se->lo ? se->lo[i] : y, hi = se->hi ? se->hi[i] : y;
            if (!drawable(lo, p->logy)) lo = y;
            if (!drawable(hi, p->logy)) hi = y;
            fprintf(fd, "%.9g %.9g %.9g %.9g\n", x, y, lo, hi);
        }
        fprintf(fd, "\n\n");
    }
    fclose(fd);
    fprintf(fs, "set terminal pngcairo size 900,560 enhanced font 'sans,11'\n");
    fprintf(fs, "set output ");
    gp_quote(fs, tmp);
    fprintf(fs, "\nset title ");
    gp_quote(fs, p->title ? p->title : "");
    fprintf(fs, " noenhanced\nset xlabel ");
    gp_quote(fs, p->xlabel ? p->xlabel : "");
    fprintf(fs, " noenhanced\nset ylabel ");
    gp_quote(fs, p->ylabel ? p->ylabel : "");
    fprintf(fs, " noenhanced\nset grid\nset key outside right top noenhanced\n");
    if (p->logx) fprintf(fs, "set logscale x\nset format x '10^{%%L}'\n");
    if (p->logy) fprintf(fs, "set logscale y\nset format y '10^{%%L}'\n");
    fprintf(fs, "plot ");
    int first = 1;
    for (int s = 0; s < p->nseries; s++) {
        const lab_series *se = &p->series[s];
        const char *col = palette[s % NPALETTE];
        if (se->lo && se->hi) {
            fprintf(fs, "%s", first ? "" : ", \\\n     ");
            gp_quote(fs, dat);
            fprintf(fs, " index %d using 1:3:4 with filledcurves fc rgb '%s' "
                        "fs transparent solid 0.2 noborder notitle", s, col);
            first = 0;
        }
        fprintf(fs, "%s", first ? "" : ", \\\n     ");
        gp_quote(fs, dat);
        fprintf(fs, " index %d using 1:2 with %s lw 2 lc rgb '%s' title ", s,
                se->n <= 12 ? "linespoints pt 7 ps 0.8" : "lines", col);
        gp_quote(fs, se->name ? se->name : "");
        first = 0;
    }
    fprintf(fs, "\nset output\n");
    fclose(fs);
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' >/dev/null 2>&1", gp);
    int rc = strchr(gp, '\'') ? -1 : system(cmd);
    remove(dat);
    remove(gp);
    if (rc != 0) {
        remove(tmp);
        set_msg(msg, msglen, "gnuplot failed");
        return -1;
    }
    FILE *chk = fopen(tmp, "rb");
    if (chk) {
        fsync(fileno(chk));
        fclose(chk);
    }
    if (rename(tmp, png) != 0) {
        remove(tmp);
        set_msg(msg, msglen, "cannot rename the rendered PNG");
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------------------- SVG */

static void svg_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

typedef struct {
    double lo, hi;  /* data range (log10 values on a log axis) */
    int log;
    double p0, p1;  /* pixel range */
} axis;

static double tr(const axis *a, double v)
{
    double u = a->log ? log10(v) : v;
    return a->p0 + (u - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

static void range(const lab_plot *p, int yaxis, double *lo, double *hi)
{
    int logaxis = yaxis ? p->logy : p->logx;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int s = 0; s < p->nseries; s++) {
        const lab_series *se = &p->series[s];
        for (int i = 0; i < se->n; i++) {
            double vals[3] = {yaxis ? se->y[i] : se->x[i], NAN, NAN};
            if (yaxis && se->lo) vals[1] = se->lo[i];
            if (yaxis && se->hi) vals[2] = se->hi[i];
            for (int k = 0; k < 3; k++) {
                double v = vals[k];
                if (!drawable(v, logaxis)) continue;
                double u = logaxis ? log10(v) : v;
                if (u < *lo) *lo = u;
                if (u > *hi) *hi = u;
            }
        }
    }
    if (!(*lo <= *hi)) *lo = 0, *hi = 1;
    if (*hi - *lo < 1e-12) *lo -= 0.5, *hi += 0.5;
    if (logaxis) {
        *lo = floor(*lo);
        *hi = ceil(*hi);
        if (*hi - *lo < 1) *hi = *lo + 1;
    } else {
        double pad = 0.03 * (*hi - *lo);
        *lo -= pad;
        *hi += pad;
    }
}

/* Tick positions: decades on a log axis (thinned to at most ~10), else
 * 1-2-5 steps. */
static int ticks(const axis *a, double *out, int max)
{
    int n = 0;
    if (a->log) {
        int span = (int)(a->hi - a->lo), every = span / 9 + 1;
        for (int e = (int)a->lo; e <= (int)a->hi && n < max; e += every) out[n++] = pow(10, e);
        return n;
    }
    double raw = (a->hi - a->lo) / 6, mag = pow(10, floor(log10(raw))), step = mag;
    if (raw / mag > 5) step = 10 * mag;
    else if (raw / mag > 2) step = 5 * mag;
    else if (raw / mag > 1) step = 2 * mag;
    for (double v = ceil(a->lo / step) * step; v <= a->hi + 1e-9 * step && n < max; v += step)
        out[n++] = fabs(v) < 1e-12 * step ? 0.0 : v;
    return n;
}

static void tick_label(char *buf, size_t n, double v, int logaxis)
{
    if (logaxis) snprintf(buf, n, "1e%d", (int)lround(log10(v)));
    else snprintf(buf, n, "%g", v);
}

int lab_plot_svg(const lab_plot *p, const char *path)
{
    const double W = 900, H = 560, L = 80, R = 660, T = 40, B = 500;
    axis ax = {0, 0, p->logx, L, R}, ay = {0, 0, p->logy, B, T};
    range(p, 0, &ax.lo, &ax.hi);
    range(p, 1, &ay.lo, &ay.hi);
    lab_file lf;
    if (lab_file_open(&lf, path) != 0) return -1;
    FILE *f = lf.fp;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
               "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n",
            W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%g\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">", (L + R) / 2);
    svg_text(f, p->title);
    fprintf(f, "</text>\n");
    double tk[64];
    char lab[32];
    int nt = ticks(&ax, tk, 64);
    for (int i = 0; i < nt; i++) {
        double x = tr(&ax, tk[i]);
        tick_label(lab, sizeof lab, tk[i], ax.log);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#ddd\"/>"
                   "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                x, T, x, B, x, B + 16, lab);
    }
    nt = ticks(&ay, tk, 64);
    for (int i = 0; i < nt; i++) {
        double y = tr(&ay, tk[i]);
        tick_label(lab, sizeof lab, tk[i], ay.log);
        fprintf(f, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                L, y, R, y, L - 6, y + 4, lab);
    }
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
               "stroke=\"black\"/>\n", L, T, R - L, B - T);
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", (L + R) / 2, B + 36);
    svg_text(f, p->xlabel);
    fprintf(f, "</text>\n<text x=\"18\" y=\"%g\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 18 %g)\">", (T + B) / 2, (T + B) / 2);
    svg_text(f, p->ylabel);
    fprintf(f, "</text>\n");
    for (int s = 0; s < p->nseries; s++) {
        const lab_series *se = &p->series[s];
        const char *col = palette[s % NPALETTE];
        if (se->lo && se->hi) { /* band: upper edge forward, lower edge back */
            fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.2\" stroke=\"none\" points=\"", col);
            for (int i = 0; i < se->n; i++)
                if (drawable(se->x[i], p->logx) && drawable(se->hi[i], p->logy))
                    fprintf(f, "%.1f,%.1f ", tr(&ax, se->x[i]), tr(&ay, se->hi[i]));
            for (int i = se->n - 1; i >= 0; i--)
                if (drawable(se->x[i], p->logx) && drawable(se->lo[i], p->logy))
                    fprintf(f, "%.1f,%.1f ", tr(&ax, se->x[i]), tr(&ay, se->lo[i]));
            fprintf(f, "\"/>\n");
        }
        int open = 0;
        for (int i = 0; i < se->n; i++) {
            if (!drawable(se->x[i], p->logx) || !drawable(se->y[i], p->logy)) {
                if (open) fprintf(f, "\"/>\n");
                open = 0;
                continue;
            }
            if (!open)
                fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                        col);
            open = 1;
            fprintf(f, "%.1f,%.1f ", tr(&ax, se->x[i]), tr(&ay, se->y[i]));
        }
        if (open) fprintf(f, "\"/>\n");
        if (se->n <= 12)
            for (int i = 0; i < se->n; i++)
                if (drawable(se->x[i], p->logx) && drawable(se->y[i], p->logy))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                            tr(&ax, se->x[i]), tr(&ay, se->y[i]), col);
        double ly = T + 14 + 20 * s;
        fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
                   "stroke-width=\"3\"/><text x=\"%g\" y=\"%g\">", R + 14, ly, R + 38, ly, col,
                R + 44, ly + 4);
        svg_text(f, se->name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    return lab_file_commit(&lf);
}

/* ------------------------------------------------------------ dispatch */

lab_plot_format lab_plot_write(const lab_plot *p, const char *base, lab_plot_format want,
                               char *path, size_t pathlen, char *msg, size_t msglen)
{
    set_msg(msg, msglen, "");
    if (path && pathlen) path[0] = '\0';
    if (want == LAB_PLOT_AUTO) {
        const char *env = getenv("DESCENT_PLOT");
        if (env && !strcmp(env, "png")) want = LAB_PLOT_PNG;
        else if (env && !strcmp(env, "svg")) want = LAB_PLOT_SVG;
        else if (env && !strcmp(env, "none")) want = LAB_PLOT_NONE;
    }
    if (want == LAB_PLOT_NONE) {
        set_msg(msg, msglen, "plots disabled");
        return LAB_PLOT_NONE;
    }
    char file[1024];
    if (want != LAB_PLOT_SVG) {
        if (lab_have_gnuplot()) {
            snprintf(file, sizeof file, "%s.png", base);
            if (write_png(p, file, msg, msglen) == 0) {
                if (path) snprintf(path, pathlen, "%s", file);
                return LAB_PLOT_PNG;
            }
        } else {
            set_msg(msg, msglen, "gnuplot not found: SVG written instead");
        }
    }
    snprintf(file, sizeof file, "%s.svg", base);
    if (lab_plot_svg(p, file) == 0) {
        if (path) snprintf(path, pathlen, "%s", file);
        return LAB_PLOT_SVG;
    }
    set_msg(msg, msglen, "cannot write the SVG plot: plot skipped");
    return LAB_PLOT_NONE;
}
