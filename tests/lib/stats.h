/* Order statistics for the benchmark programs: the median of several runs and latency
 * percentiles.  Both sort v in place. */
#ifndef FERRY_TESTS_LIB_STATS_H
#define FERRY_TESTS_LIB_STATS_H

#include <stddef.h>

/* Median of n > 0 values (mean of the middle two when n is even). */
double stats_median(double *v, size_t n);
/* The p-quantile (0 <= p <= 1) of n > 0 values, nearest rank. */
double stats_percentile(double *v, size_t n, double p);

#endif
