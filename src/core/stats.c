/* stats.c - gradient-noise statistics computed from sample gradients.
 *
 * dsc_noise_density: the noise density of Tao, Yu and Zhang ("When and Why
 * SignSGD Outperforms SGD", arXiv 2605.06615; official code
 * Dingzhen230/SignSGD_Outperforms_SGD), phi = ||sigma||_1^2 / (d ||sigma||_2^2)
 * with sigma_i the standard deviation of coordinate i over K mini-batch
 * gradients. phi is 1/d when all the noise sits on one coordinate and 1 when
 * every coordinate is equally noisy; SignSGD's advantage over SGD predicted
 * by the paper's bounds is the factor 1/phi.
 *
 * Arithmetic: float64 throughout. Each coordinate's variance is computed in
 * two passes (mean, then squared deviations) over its K samples, so there
 * is no cancellation; it is still clamped at 0 as the official code does.
 * The per-coordinate loop reads K arrays in step, so nothing is allocated.
 * Sums run in index order: the result does not depend on threads. */
#include "internal.h"

#include <math.h>

dsc_status dsc_noise_density(const float *const *grads, int k, size_t d, double *phi)
{
    if (!grads || !phi) return DSC_NULL_POINTER;
    if (k < 2 || d == 0) return DSC_INVALID_ARGUMENT;
    for (int j = 0; j < k; j++)
        if (!grads[j]) return DSC_NULL_POINTER;
    double sum_sigma = 0.0, sum_var = 0.0;
    for (size_t i = 0; i < d; i++) {
        double mean = 0.0;
        for (int j = 0; j < k; j++) {
            double g = (double)grads[j][i];
            if (!isfinite(g)) return DSC_NONFINITE;
            mean += g;
        }
        mean /= (double)k;
        double ss = 0.0;
        for (int j = 0; j < k; j++) {
            double dev = (double)grads[j][i] - mean;
            ss += dev * dev;
        }
        double var = ss / (double)(k - 1);
        if (var < 0.0) var = 0.0;
        sum_sigma += sqrt(var);
        sum_var += var;
    }
    /* No variation at all: the density is undefined; report 0 ("no noise"). */
    *phi = sum_var > 0.0 ? sum_sigma * sum_sigma / ((double)d * sum_var) : 0.0;
    return DSC_OK;
}
