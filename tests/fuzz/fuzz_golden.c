/* fuzz_golden.c - the golden-file reader (tools/cli/golden.c) on arbitrary
 * text; a file it accepts is replayed when it is small (a replay runs the
 * optimizer, which must cope with whatever values the file holds). */
#include "fuzz.h"

#include "golden.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 16)) return 0;
    const char *path = fuzz_file(data, size);
    golden_file g;
    char err[512] = "";
    if (golden_read(path, &g, err, sizeof err) == 0) {
        size_t total = 0;
        for (int i = 0; i < g.nparams; i++) total += g.params[i].numel;
        if (total <= 4096 && g.nsteps <= 16) {
            double max_err;
            golden_replay(&g, 0, &max_err, err, sizeof err);
        }
        golden_free(&g);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    return 0;
}
