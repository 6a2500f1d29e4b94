/* tensorfile.h - named tensors in and out of files other programs write:
 * safetensors and numpy .npz (a zip of .npy files), for `descent convert`
 * (docs/convert.md). Readers work on a buffer in memory and check
 * everything (sizes, offsets, dtypes, shapes, CRCs, duplicate names) before
 * they return a set; tests/fuzz/fuzz_tensorfile.c feeds them arbitrary
 * bytes. Writers replace their target atomically (temporary file, fsync,
 * rename).
 *
 * Both formats carry JSON (the safetensors header, the metadata): it is
 * read by util/json.h, the reader libdescent uses for its checkpoints. */
#ifndef DESCENT_TENSORFILE_H
#define DESCENT_TENSORFILE_H

#include "json.h"

#include <stddef.h>
#include <stdint.h>

/* A growable string for writing JSON. */
typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} tf_str;

void tf_str_puts(tf_str *s, const char *text);
void tf_str_printf(tf_str *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void tf_str_json(tf_str *s, const char *text); /* a quoted, escaped JSON string */
void tf_str_free(tf_str *s);

/* --------------------------------------------------------------- tensors */

#define TF_MAX_NDIM 8

typedef enum { TF_F64, TF_F32, TF_F16, TF_BF16, TF_I64, TF_I32, TF_I16, TF_I8, TF_U8, TF_BOOL,
               TF_NDTYPES } tf_dtype;

const char *tf_dtype_name(tf_dtype d); /* safetensors' names: "F32", "I64", ... */
size_t tf_dtype_size(tf_dtype d);

typedef struct {
    char *name;
    tf_dtype dtype;
    int ndim;                    /* 0 for a scalar */
    int64_t shape[TF_MAX_NDIM];
    size_t count;                /* elements: the product of the shape (1 for a scalar) */
    size_t bytes;                /* count times the element size */
    unsigned char *data;         /* little-endian, owned by the set */
} tf_tensor;

/* Tensors in file order, and the string -> string metadata (safetensors'
 * "__metadata__"; in an .npz, the member "__metadata__": a uint8 vector
 * holding the UTF-8 JSON of that same object). */
typedef struct {
    int n, cap;
    tf_tensor *t;
    int nmeta, metacap;
    char **meta_key, **meta_val;
} tf_set;

void tf_free(tf_set *s); /* and zeroes it; a zeroed set is empty */
const tf_tensor *tf_find(const tf_set *s, const char *name);
const char *tf_meta(const tf_set *s, const char *key);
/* Copies name, shape and data in. 0 on success, -1 out of memory or a
 * duplicate name or a bad shape (err says which). */
int tf_add(tf_set *s, const char *name, tf_dtype dtype, int ndim, const int64_t *shape,
           const void *data, char *err, size_t errlen);
int tf_set_meta(tf_set *s, const char *key, const char *value, char *err, size_t errlen);

/* Readers: 0 and a filled set (free it), or -1 with the reason in err and
 * the set left empty. Size limits: 2^40 bytes of data, 2^20 tensors. */
int tf_read_safetensors(const unsigned char *buf, size_t len, tf_set *out, char *err,
                        size_t errlen);
/* Members stored or deflated (np.savez, np.savez_compressed); each member
 * "NAME.npy" becomes tensor NAME. Refused: encryption, zip64 archives of
 * more than 65,534 members, big-endian or Fortran-order arrays, object and
 * string dtypes, CRC mismatches. */
int tf_read_npz(const unsigned char *buf, size_t len, tf_set *out, char *err, size_t errlen);
/* By content: a zip ("PK\3\4") is read as .npz, anything else as
 * safetensors. */
int tf_read_file(const char *path, tf_set *out, char *err, size_t errlen);

/* Writers (atomic). The .npz writer stores members uncompressed, as
 * np.savez does, each a version 1.0 .npy. */
int tf_write_safetensors(const char *path, const tf_set *s, char *err, size_t errlen);
int tf_write_npz(const char *path, const tf_set *s, char *err, size_t errlen);

#endif
