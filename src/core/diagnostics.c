/* diagnostics.c - public entry points to kernels that are measured on their
 * own (descent.h, "matrix diagnostics"): argument checks, then the kernel
 * the optimizers run, unchanged. */
#include "internal.h"
#include "../kernels/newton_schulz.h"

size_t dsc_newton_schulz_work_floats(size_t m, size_t n) { return dsc_ns5_work_floats(m, n); }

dsc_status dsc_newton_schulz(const float *g, float *out, size_t batch, size_t m, size_t n,
                             int steps, int flags, float *work)
{
    if (!g || !out || !work) return DSC_NULL_POINTER;
    if (batch == 0 || m == 0 || n == 0) return DSC_INVALID_ARGUMENT;
    if (flags & ~(DSC_NS_REFERENCE | DSC_NS_BF16)) return DSC_INVALID_ARGUMENT;
    if (steps < 0 || steps > 1000) return DSC_OUT_OF_RANGE;
    dsc_ns5(g, out, batch, m, n, steps, (flags & DSC_NS_REFERENCE) != 0, (flags & DSC_NS_BF16) != 0,
            work);
    return DSC_OK;
}
