/* datadir.c - see datadir.h. The build passes three strings for this file
 * only: DESCENT_BIN_TO_DATA (bindir -> datadir/descent, relative),
 * DESCENT_INSTALL_DATADIR (absolute datadir/descent of the configured
 * prefix) and DESCENT_SOURCE_DIR (the source tree). */
#include "datadir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DESCENT_BIN_TO_DATA
#define DESCENT_BIN_TO_DATA "../share/descent"
#endif
#ifndef DESCENT_INSTALL_DATADIR
#define DESCENT_INSTALL_DATADIR "/usr/local/share/descent"
#endif
#ifndef DESCENT_SOURCE_DIR
#define DESCENT_SOURCE_DIR "."
#endif

enum { PATH_MAX_ = 4096 };

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The folder of the running executable, from /proc/self/exe (Linux); "" when
 * unknown, so the exe-relative place is skipped. */
static const char *exe_dir(void)
{
    static char dir[PATH_MAX_];
    static int done;
    if (done) return dir;
    done = 1;
    ssize_t len = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (len <= 0) {
        dir[0] = 0;
        return dir;
    }
    dir[len] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else dir[0] = 0;
    return dir;
}

/* Writes dir + "/" + name into buf; 0 if it fits. */
static int join(char *buf, size_t n, const char *dir, const char *name)
{
    int w = snprintf(buf, n, "%s/%s", dir, name);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* The installed folders to try, in order (1, 2 and 5 of datadir.h); NULL
 * entries are skipped. */
static void installed_dirs(const char *dirs[3], char *exe_rel, size_t n)
{
    const char *env = getenv("DESCENT_DATADIR");
    dirs[0] = env && *env ? env : NULL;
    dirs[1] = NULL;
    if (*exe_dir() && join(exe_rel, n, exe_dir(), DESCENT_BIN_TO_DATA) == 0) dirs[1] = exe_rel;
    dirs[2] = DESCENT_INSTALL_DATADIR;
}

int lab_data_path(const char *installed, const char *in_tree, char *buf, size_t n)
{
    char exe_rel[PATH_MAX_];
    const char *dirs[3];
    installed_dirs(dirs, exe_rel, sizeof exe_rel);
    /* 1 and 2: an override or the install this executable belongs to. */
    for (int i = 0; i < 2; i++)
        if (dirs[i] && join(buf, n, dirs[i], installed) == 0 && is_file(buf)) return 0;
    /* 3 and 4: a clone. */
    if (snprintf(buf, n, "%s", in_tree) < (int)n && is_file(buf)) return 0;
    if (join(buf, n, DESCENT_SOURCE_DIR, in_tree) == 0 && is_file(buf)) return 0;
    /* 5: the configured prefix (an install this binary was not run from). */
    if (join(buf, n, dirs[2], installed) == 0 && is_file(buf)) return 0;
    snprintf(buf, n, "%s", in_tree);
    return -1;
}

const char *lab_data_dir(void)
{
    static char found[PATH_MAX_];
    char exe_rel[PATH_MAX_];
    const char *dirs[3];
    installed_dirs(dirs, exe_rel, sizeof exe_rel);
    for (int i = 0; i < 3; i++) {
        /* After 1 and 2, a clone serves before the configured prefix (3-5). */
        if (i == 2 && (is_dir("tests/data") || is_dir(DESCENT_SOURCE_DIR "/tests/data")))
            return NULL;
        if (dirs[i] && is_dir(dirs[i])) {
            /* realpath makes "bin/../share/descent" readable; keep the
             * spelling as given if it fails. */
            char *r = realpath(dirs[i], NULL);
            snprintf(found, sizeof found, "%s", r ? r : dirs[i]);
            free(r);
            return found;
        }
    }
    return NULL;
}
