/*
 * bench/metrics.c - what one metrics update costs (lib/metrics.h), to set
 * against the work it counts: ns per call of each update kind on one
 * thread, then the same counter from 2 threads at once (shards: no shared
 * cache line), and one render of a registry with 100 API series.
 *
 * Usage: bench_metrics [N]   (N calls per measurement, default 10000000)
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/metrics.h"
#include "lib/util.h"

static unsigned long n_calls = 10000000;

static double ns_per(uint64_t t0)
{
	return (double)(now_mono_us() - t0) * 1000.0 / (double)n_calls;
}

static void *two(void *arg)
{
	(void)arg;
	for (unsigned long i = 0; i < n_calls; i++)
		metric_inc(MET_SCRAMBLED_PKTS);
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t t0;
	pthread_t th[2];
	char *text = NULL;
	size_t len = 0;

	if (argc > 1) {
		uint64_t v = 0;

		if (parse_u64(argv[1], ULONG_MAX, &v) != 0 || v == 0) {
			fprintf(stderr, "usage: bench_metrics [CALLS]  (CALLS: a positive number)\n");
			return 2;
		}
		n_calls = (unsigned long)v;
	}
	metrics_reset();
	printf("## Metrics (bench/metrics.c)\n\nOne update of each kind, %lu calls in a loop (ns per call); then 2 threads "
	       "on one counter; one render.\n\n| update | cost |\n|---|---|\n", n_calls);
	t0 = now_mono_us();
	for (unsigned long i = 0; i < n_calls; i++)
		metric_inc(MET_SCRAMBLED_PKTS);
	printf("| metric_inc (unlabelled counter) | %.1f ns |\n", ns_per(t0));
	t0 = now_mono_us();
	for (unsigned long i = 0; i < n_calls; i++)
		metric_observe_us(MET_ECM_DURATION, NULL, NULL, i & 4095);
	printf("| metric_observe_us (histogram) | %.1f ns |\n", ns_per(t0));
	for (int r = 0; r < 12; r++) /* a realistic table: 12 routes x 8 statuses */
		for (int s = 0; s < 8; s++) {
			char rt[16], st[8];

			snprintf(rt, sizeof(rt), "/api/v1/r%d", r);
			snprintf(st, sizeof(st), "%d", 200 + s);
			metric_add(MET_API_REQUESTS, rt, st, 1);
		}
	t0 = now_mono_us();
	for (unsigned long i = 0; i < n_calls; i++)
		metric_api_done("/api/v1/r11", 207, 0);
	printf("| metric_api_done (2 labelled series, 96 in the table, + histogram) | %.1f ns |\n", ns_per(t0));
	t0 = now_mono_us();
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, two, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("| metric_inc, 2 threads at once (wall per call per thread) | %.1f ns |\n", ns_per(t0));
	t0 = now_mono_us();
	if (metrics_render(&text, &len) != 0)
		return 1;
	printf("| metrics_render (%zu bytes) | %llu us |\n", len, (unsigned long long)(now_mono_us() - t0));
	free(text);
	return 0;
}
