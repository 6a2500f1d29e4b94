/* json.h - a small JSON reader for checkpoint headers (RFC 8259 subset:
 * objects, arrays, strings with escapes, numbers, true/false/null). The
 * core library keeps its dependencies to libc/libm, so it carries this
 * instead of a JSON library. Not for untrusted multi-megabyte documents of
 * deep nesting: depth is limited to 32. Strict: duplicate object keys,
 * non-finite or malformed numbers and \\u0000 are refused. */
#ifndef DESCENT_JSON_H
#define DESCENT_JSON_H

#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
    json_type type;
    double number;           /* NUMBER, BOOL */
    char *string;            /* STRING (NUL-terminated, unescaped) */
    size_t count;            /* ARRAY, OBJECT: number of items */
    char **keys;             /* OBJECT: keys */
    struct json_value *items; /* ARRAY, OBJECT: values */
} json_value;

/* Parses text[0..len). Returns NULL on error with a message in err and
 * *oom (may be NULL) set to 1 when the error was a failed allocation. */
json_value *json_parse(const char *text, size_t len, char *err, size_t errlen, int *oom);
void json_free(json_value *v);
/* Member of an object, or NULL. */
const json_value *json_get(const json_value *obj, const char *key);

#endif
