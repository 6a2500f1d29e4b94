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

#include <stddef.h>
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

/* printf into a caller's error buffer (err may be NULL or errlen 0: then
 * nothing is written). The lab's loaders and trainers report through it. */
void lab_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Open an existing regular file for reading ("rb"), or say clearly why
 * not in err: no name given, no such file, no permission, a directory, or
 * a device, pipe or socket (e.g. /dev/null, which reads as empty and would
 * otherwise pass for a truncated file). `what` names the file's role in
 * the message ("token file"); the path is quoted. A FIFO is never waited
 * on. NULL on failure. */
FILE *lab_open_input(const char *path, const char *what, char *err, size_t errlen);

/* Remove the temporary files ("NAME.tmp.PID", as lab_file_open,
 * dsc_optimizer_save and gpt2_save write them) that writers which no longer
 * run left in `dir` when they were killed mid-write. Files of live
 * processes (this one included) are kept. Returns how many were removed,
 * -1 if the folder cannot be read. */
int lab_remove_stale_tmp(const char *dir);

#endif
