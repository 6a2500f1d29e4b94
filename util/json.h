/* json.h - the one JSON reader of descent (RFC 8259: objects, arrays,
 * strings with every escape, surrogate pairs included, numbers,
 * true/false/null), used by the library for checkpoint headers
 * (src/core/checkpoint.c) and by the command for safetensors and .npz
 * metadata (tools/cli/tensorfile.c, tools/cli/cmd_convert.c).
 *
 * Why it lives in util/, the bottom layer, and not in the public API: it
 * is an implementation detail of two file formats, not something an
 * optimizer library should promise to its users, yet both the library and
 * the command need the same strict reader (two copies had drifted apart:
 * one refused surrogate pairs that the other decoded). util/ depends on
 * libc alone, is compiled into libdescent with hidden visibility (so the
 * shared library does not export it) and reaches the command through the
 * static library it links; tests/layering.sh lets every layer include
 * util/ and util/ include nothing of the project's.
 *
 * Strict, for untrusted input: nesting deeper than 32 containers,
 * duplicate object keys, numbers that are malformed or overflow a double,
 * control characters in strings, \u0000 and unpaired surrogates are
 * refused. Every allocation goes through the caller's allocator (the
 * library passes its hook, so tests can make it fail) and a failure frees
 * what was built. */
#ifndef DESCENT_UTIL_JSON_H
#define DESCENT_UTIL_JSON_H

#include <stddef.h>

typedef enum {
    DJSON_NULL,
    DJSON_BOOL,
    DJSON_NUMBER,
    DJSON_STRING,
    DJSON_ARRAY,
    DJSON_OBJECT
} djson_type;

typedef struct djson {
    djson_type type;
    double number;       /* NUMBER; BOOL: 1 or 0 */
    char *string;        /* STRING: NUL-terminated UTF-8, unescaped */
    size_t count;        /* ARRAY, OBJECT: number of items */
    char **keys;         /* OBJECT: keys, in file order */
    struct djson *items; /* ARRAY, OBJECT: values */
} djson;

/* malloc and free, or the caller's pair. NULL where one is asked for
 * means malloc/free. The same allocator must free what it parsed. */
typedef struct {
    void *(*alloc)(size_t);
    void (*release)(void *);
} djson_allocator;

/* Parses text[0..len) (one value, whitespace around it allowed). Returns
 * NULL on error with a message starting "JSON: " in err (may be NULL) and
 * *oom (may be NULL) set to 1 when the error was a failed allocation. */
djson *djson_parse(const char *text, size_t len, const djson_allocator *a, char *err,
                   size_t errlen, int *oom);
void djson_free(djson *v, const djson_allocator *a); /* NULL is a no-op */
/* The member `key` of an object, or NULL (absent, or obj not an object). */
const djson *djson_get(const djson *obj, const char *key);

#endif
