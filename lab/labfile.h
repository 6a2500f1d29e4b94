/* labfile.h - files written by the lab (theory experiments, GPT-2 trainer):
 * atomic writes (temporary file in the same folder, fflush, fsync, rename)
 * so a reader never sees half a CSV or report, and `mkdir -p`.
 *
 *     lab_file f;
 *     if (lab_file_open(&f, "out/x.csv") == 0) {
 *         fprintf(f.fp, "step,loss\n");
 *         lab_file_commit(&f);          // or lab_file_abort(&f)
 *     }
 */
#ifndef DESCENT_LABFILE_H
#define DESCENT_LABFILE_H

#include <stdio.h>

typedef struct {
    FILE *fp;          /* write here */
    char path[1024];   /* final name */
    char tmp[1040];    /* temporary name: path + ".tmp.<pid>" */
} lab_file;

/* 0 on success; -1 (errno set) if the temporary file cannot be created. */
int lab_file_open(lab_file *f, const char *path);
/* Flush, fsync, close and rename onto the final name. 0 on success; on
 * failure the temporary file is removed and -1 returned. */
int lab_file_commit(lab_file *f);
/* Close and remove the temporary file. */
void lab_file_abort(lab_file *f);

/* Write a whole text atomically. 0 on success. */
int lab_file_write_text(const char *path, const char *text);

/* Create a folder and its parents (mode 0777 & umask). 0 if it exists after. */
int lab_mkdirs(const char *dir);

#endif
