/* fuzz_tensorfile.c - the readers behind `descent convert` on arbitrary
 * bytes: the first byte picks the reader (even: safetensors, odd: .npz),
 * the rest is the file. Properties: a refusal leaves a message and an
 * empty set; an accepted set survives a write and a read in both formats
 * unchanged (bfloat16 aside: .npz has no such dtype); and the torch ->
 * descent conversion of an accepted set either refuses with a message or
 * writes a checkpoint that converts back to torch's layout. */
#include "fuzz.h"

#include "convert.h"
#include "tensorfile.h"

static char scratch[3][300];

static void scratch_remove(void)
{
    for (int i = 0; i < 3; i++)
        if (scratch[i][0]) unlink(scratch[i]);
}

static void scratch_init(void)
{
    if (scratch[0][0]) return;
    const char *dir = getenv("TMPDIR");
    static const char *const ext[3] = {"safetensors", "npz", "ck.safetensors"};
    for (int i = 0; i < 3; i++)
        snprintf(scratch[i], sizeof scratch[i], "%s/descent-fuzz-tf-%ld.%s",
                 dir && *dir ? dir : "/tmp", (long)getpid(), ext[i]);
    atexit(scratch_remove);
}

static int same_sets(const tf_set *a, const tf_set *b)
{
    if (a->n != b->n || a->nmeta != b->nmeta) return 0;
    for (int i = 0; i < a->n; i++) {
        const tf_tensor *t = tf_find(b, a->t[i].name);
        if (!t || t->dtype != a->t[i].dtype || t->ndim != a->t[i].ndim ||
            t->bytes != a->t[i].bytes || memcmp(t->data, a->t[i].data, t->bytes))
            return 0;
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] != a->t[i].shape[d]) return 0;
    }
    for (int i = 0; i < a->nmeta; i++) {
        const char *v = tf_meta(b, a->meta_key[i]);
        if (!v || strcmp(v, a->meta_val[i])) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 16)) return 0;
    scratch_init();
    char err[1024] = "";
    tf_set s;
    int npz = data[0] & 1;
    int rc = npz ? tf_read_npz(data + 1, size - 1, &s, err, sizeof err)
                 : tf_read_safetensors(data + 1, size - 1, &s, err, sizeof err);
    if (rc != 0) {
        FUZZ_ASSERT(err[0] != '\0');
        FUZZ_ASSERT(s.n == 0 && s.nmeta == 0 && s.t == NULL);
        return 0;
    }
    int has_bf16 = 0;
    for (int i = 0; i < s.n; i++) has_bf16 |= s.t[i].dtype == TF_BF16;
    for (int fmt = 0; fmt < 2; fmt++) {
        if (fmt == 1 && has_bf16) continue;
        int w = fmt ? tf_write_npz(scratch[1], &s, err, sizeof err)
                    : tf_write_safetensors(scratch[0], &s, err, sizeof err);
        if (w != 0) { /* only for sizes over the .npz limits */
            FUZZ_ASSERT(fmt == 1 && err[0] != '\0');
            continue;
        }
        tf_set back;
        FUZZ_ASSERT(tf_read_file(scratch[fmt], &back, err, sizeof err) == 0);
        FUZZ_ASSERT(same_sets(&s, &back));
        tf_free(&back);
    }
    convert_opts o = {0};
    o.quiet = 1;
    err[0] = '\0';
    if (convert_torch_set(&s, scratch[2], &o, err, sizeof err) == 0) {
        /* what was written is a descent checkpoint; back to torch's layout */
        FUZZ_ASSERT(convert_file(scratch[2], scratch[0], &o, err, sizeof err) == 0);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    tf_free(&s);
    return 0;
}
