/*
 * metrics.h - Prometheus metrics: one process-wide registry of castellan_*
 * counters, gauges and histograms, and their text exposition (format
 * 0.0.4: https://prometheus.io/docs/instrumenting/exposition_formats/).
 * docs/metrics.md lists every series and what moves it.
 *
 * The families are fixed at build time (METRICS below); a family may carry
 * up to two labels whose values are given at the update. Updates are cheap
 * enough for hot paths: a relaxed atomic add on a per-thread shard (no lock,
 * no shared cache line between threads); a labelled update first finds its
 * series by a short scan (a lock only the first time a label set is seen).
 * At most METRICS_SERIES_MAX label sets per family: further ones are counted
 * in castellan_metrics_series_dropped_total, never allocated.
 *
 * The registry is global (a process has one /metrics); metrics_reset()
 * zeroes it for tests, and must not run beside updates.
 */
#ifndef CASTELLAN_LIB_METRICS_H
#define CASTELLAN_LIB_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

/* X(id, kind, name, labels, buckets, help). labels: "" or "a" or "a,b". */
#define METRICS(X) \
	X(MET_ECM_REQUESTS, COUNTER, "castellan_ecm_requests_total", "", NULL, \
	  "CW_provision messages received by the ECMG") \
	X(MET_ECM_DURATION, HISTOGRAM, "castellan_ecm_request_duration_seconds", "", metrics_buckets_ecm, \
	  "Time from a CW_provision to its ECM_response being queued") \
	X(MET_ECM_ERRORS, COUNTER, "castellan_ecm_errors_total", "code,error", NULL, \
	  "channel_error/stream_error sent by the ECMG, by SimulCrypt error status") \
	X(MET_EMM_SENT, COUNTER, "castellan_emm_sections_sent_total", "", NULL, \
	  "EMM sections sent by the EMMG to its MUX (data_provision)") \
	X(MET_CAROUSEL_CYCLE, HISTOGRAM, "castellan_carousel_cycle_seconds", "", metrics_buckets_cycle, \
	  "Time of one complete EMM carousel cycle over the card base") \
	X(MET_LINK_UP, GAUGE, "castellan_link_up", "kind,peer", NULL, \
	  "1 while a SimulCrypt link is up: kind emmg (EMMG to MUX), mux (an EMMG at the MUX), ecmg (SCS to ECMG)") \
	X(MET_LINK_CHANGES, COUNTER, "castellan_link_changes_total", "kind,state", NULL, \
	  "SimulCrypt links coming up or going down") \
	X(MET_API_REQUESTS, COUNTER, "castellan_api_requests_total", "route,status", NULL, \
	  "HTTP API requests answered, by route and status") \
	X(MET_API_DURATION, HISTOGRAM, "castellan_api_request_duration_seconds", "route", metrics_buckets_api, \
	  "HTTP API request handling time, by route") \
	X(MET_CSV_IMPORTS, COUNTER, "castellan_csv_imports_total", "result", NULL, \
	  "CSV imports, by result (ok, failed)") \
	X(MET_CSV_ROWS, COUNTER, "castellan_csv_rows_imported_total", "", NULL, \
	  "CSV rows applied by successful imports") \
	X(MET_SCRAMBLED_PKTS, COUNTER, "castellan_scrambled_packets_total", "", NULL, \
	  "TS packets scrambled") \
	X(MET_CP_CHANGES, COUNTER, "castellan_cp_changes_total", "", NULL, \
	  "Crypto-period changes done by the scrambler (all services)") \
	X(MET_CP_FAILURES, COUNTER, "castellan_cp_failures_total", "", NULL, \
	  "Crypto-period changes refused because no ECM arrived in time") \
	X(MET_FAILOVERS, COUNTER, "castellan_ecmg_failovers_total", "", NULL, \
	  "ECMG connections made to the backup ECMG after the main one failed") \
	X(MET_CLEAR_PKTS, COUNTER, "castellan_clear_packets_total", "", NULL, \
	  "Packets that should have been scrambled but went out clear (--on-failure clear)") \
	X(MET_CLEAR_START_PKTS, COUNTER, "castellan_clear_start_packets_total", "", NULL, \
	  "Packets sent clear on purpose during --clear-start") \
	X(MET_DROPPED_SERIES, COUNTER, "castellan_metrics_series_dropped_total", "", NULL, \
	  "Metric updates dropped: their family already had METRICS_SERIES_MAX label sets")

enum metric_id {
#define MET_ENUM(id, kind, name, labels, buckets, help) id,
	METRICS(MET_ENUM)
#undef MET_ENUM
	MET_N
};

#define METRICS_SERIES_MAX 128  /* label sets per family */
#define METRICS_BUCKETS_MAX 16  /* histogram upper bounds, +Inf excluded */
#define METRICS_LABEL_MAX 64    /* bytes of one label value kept (longer: cut) */

/* Histogram upper bounds in microseconds, ascending, 0-terminated. */
extern const uint64_t metrics_buckets_ecm[];
extern const uint64_t metrics_buckets_api[];
extern const uint64_t metrics_buckets_cycle[];

/* Counters: add n to the series with label values a, b (NULL when the
 * family has fewer labels). */
void metric_add(enum metric_id id, const char *a, const char *b, uint64_t n);
static inline void metric_inc(enum metric_id id)
{
	metric_add(id, NULL, NULL, 1);
}
/* A counter whose first label is a 16-bit code ("0x000B"), second a name. */
void metric_add_code(enum metric_id id, unsigned code, const char *name);
/* Gauges: set the series' value. */
void metric_set(enum metric_id id, const char *a, const char *b, int64_t v);
/* Histograms: one observation of us microseconds. */
void metric_observe_us(enum metric_id id, const char *a, const char *b, uint64_t us);
/* An API request: MET_API_REQUESTS{route,status} and MET_API_DURATION{route}
 * from t0_us (now_mono_us() at its start). */
void metric_api_done(const char *route, int status, uint64_t t0_us);
/* A link's state: MET_LINK_UP{kind,peer} and, on a change, MET_LINK_CHANGES. */
void metric_link(const char *kind, const char *peer, int up);
/* The same with a 32-bit id as the peer ("0x0000002A": an EMMG's client_id). */
void metric_link_id(const char *kind, uint32_t id, int up);

/* The current value of a counter or gauge series (tests; 0 if absent). */
uint64_t metric_value(enum metric_id id, const char *a, const char *b);

/* The whole registry in the text exposition format, into a malloc'ed
 * buffer (*out, *len; free with free()). 0 or CE_NOMEM. */
int metrics_render(char **out, size_t *len) WARN_UNUSED;
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Zero every series and forget label sets (tests; no concurrent updates). */
void metrics_reset(void);

#endif
