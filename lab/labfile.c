/* labfile.c - atomic file writes and mkdir -p for the lab (see labfile.h). */
#include "labfile.h"

#include <errno.h>
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
