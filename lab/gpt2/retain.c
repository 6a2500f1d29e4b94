/* retain.c - see retain.h. */
#include "gpt2/retain.h"

#include "labfile.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    long step;
    int complete;
} ckpt_entry;

/* The step of a folder named ckpt_<8 digits>, else -1. */
static long ckpt_step(const char *name)
{
    if (strncmp(name, "ckpt_", 5) || strlen(name) != 13 || strspn(name + 5, "0123456789") != 8)
        return -1;
    return strtol(name + 5, NULL, 10);
}

static int by_step_desc(const void *a, const void *b)
{
    const ckpt_entry *x = a, *y = b;
    return x->step < y->step ? 1 : x->step > y->step ? -1 : 0;
}

/* Delete one checkpoint folder: trainer.txt first, so that from the first
 * unlink on it no longer counts as a checkpoint; then the other files the
 * trainer writes and dead writers' temporary files; then the folder. */
static int remove_ckpt(const char *out_dir, long step)
{
    static const char *const files[] = {"trainer.txt", "model.bin", "optimizer.safetensors"};
    char dir[2048], path[2200];
    snprintf(dir, sizeof dir, "%s/ckpt_%08ld", out_dir, step);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    lab_remove_stale_tmp(dir);
    return rmdir(dir) == 0;
}

int gpt2_ckpt_retain(const char *out_dir, int keep)
{
    if (keep <= 0) return 0;
    DIR *d = opendir(out_dir);
    if (!d) return -1;
    ckpt_entry *e = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    char path[2200];
    while ((de = readdir(d))) {
        long step = ckpt_step(de->d_name);
        if (step < 0) continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            ckpt_entry *ne = realloc(e, ncap * sizeof *ne);
            if (!ne) break; /* out of memory: retention is best effort */
            e = ne;
            cap = ncap;
        }
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/trainer.txt", out_dir, de->d_name);
        e[n].step = step;
        e[n].complete = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        n++;
    }
    closedir(d);
    /* the checkpoint --resume would use */
    long latest = -1;
    snprintf(path, sizeof path, "%s/latest", out_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char name[64] = "";
        if (fgets(name, sizeof name, f)) {
            name[strcspn(name, "\r\n")] = 0;
            latest = ckpt_step(name);
        }
        fclose(f);
    }
    if (n) qsort(e, n, sizeof *e, by_step_desc);
    int kept = 0, removed = 0;
    long newest_complete = -1;
    for (size_t i = 0; i < n; i++)
        if (e[i].complete) {
            newest_complete = e[i].step;
            break;
        }
    for (size_t i = 0; i < n; i++) {
        if (e[i].step == latest) { /* always kept; counts towards `keep` */
            kept++;
            continue;
        }
        if (e[i].complete) {
            if (kept < keep) {
                kept++;
                continue;
            }
        } else if (e[i].step >= newest_complete) {
            continue; /* possibly being written right now */
        }
        removed += remove_ckpt(out_dir, e[i].step);
    }
    free(e);
    return removed;
}
