/* pending.c - placeholders while the remaining experiments are written. */
#include "theory.h"
int th_run_scaling(const th_ctx *c, th_scaling_result *res) { (void)c; (void)res; return -1; }
int th_run_heavy_tail(const th_ctx *c, th_heavy_result *res) { (void)c; (void)res; return -1; }
int th_run_lion_box(const th_ctx *c, th_lion_result *res) { (void)c; (void)res; return -1; }
int th_run_matrix(const th_ctx *c, th_matrix_result *res) { (void)c; (void)res; return -1; }
int th_run_noise_density(const th_ctx *c, th_density_result *res) { (void)c; (void)res; return -1; }
int th_run_all(const th_ctx *c) { (void)c; return -1; }
