/* labfile.c - atomic file writes and mkdir -p for the lab (see labfile.h). */
#include "labfile.h"

#include <errno.h>
#include <stdarg.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lab_file_open(lab_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp, "wb");
    return f->fp ? 0 : -1;
}

int lab_file_commit(lab_file *f)
{
    if (!f->fp) return -1;
    int bad = ferror(f->fp) != 0;
    if (fflush(f->fp) != 0) bad = 1;
    if (!bad && fsync(fileno(f->fp)) != 0) bad = 1;
    if (fclose(f->fp) != 0) bad = 1;
    f->fp = NULL;
    if (!bad && rename(f->tmp, f->path) != 0) bad = 1;
    if (bad) {
        remove(f->tmp);
        return -1;
    }
    return 0;
}

void lab_file_abort(lab_file *f)
{
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    remove(f->tmp);
}

int lab_file_write_text(const char *path, const char *text)
{
    lab_file f;
    if (lab_file_open(&f, path) != 0) return -1;
    fputs(text, f.fp);
    return lab_file_commit(&f);
}

int lab_mkdirs(const char *dir)
{
    char buf[1024];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char keep = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        buf[i] = keep;
    }
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

FILE *lab_open_input(const char *path, const char *what, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!path || !path[0]) {
        snprintf(err, errlen, "%s: no file name given (the path is empty)", what);
        return NULL;
    }
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "%s \"%s\": cannot open: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s \"%s\": cannot stat: %s", what, path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s \"%s\" is %s, not a regular file", what, path,
                 S_ISDIR(st.st_mode) ? "a directory"
                 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                 : S_ISFIFO(st.st_mode) ? "a pipe"
                 : S_ISSOCK(st.st_mode) ? "a socket" : "a special file");
        close(fd);
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        snprintf(err, errlen, "%s \"%s\": %s", what, path, strerror(errno));
        close(fd);
    }
    return f;
}

/* The writer's pid when `name` ends in ".tmp.<digits>", else 0. */
static long tmp_owner(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t) return 0;
    while (strstr(t + 1, ".tmp.")) t = strstr(t + 1, ".tmp.");
    const char *d = t + 5;
    if (!*d || strspn(d, "0123456789") != strlen(d) || strlen(d) > 9) return 0;
    return strtol(d, NULL, 10);
}

int lab_remove_stale_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int removed = 0;
    struct dirent *e;
    char path[2048];
    while ((e = readdir(d))) {
        long pid = tmp_owner(e->d_name);
        if (pid <= 0 || pid == (long)getpid()) continue;
        /* kill(pid, 0) sends nothing: it only asks whether pid exists.
         * EPERM means it exists under another user: not ours to judge. */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0) removed++;
    }
    closedir(d);
    return removed;
}

void lab_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
