/*
 * search.h - the search workers: slow read-only requests (the REST API's
 * text searches) run on threads of their own, each with its own store
 * connection, so the loops that serve the billing API (/api.php) and the
 * other REST calls never wait behind them (docs/sms.md, "Search").
 *
 * Bounds: at most `workers` searches run at once and `queue` more wait;
 * one more is refused at once (sms_search_submit: CE_LIMIT, answered 503
 * by http.c). Every job has a deadline counted from its submission: a job
 * still queued at its deadline is not run, a running one is stopped by the
 * store (sms_store_set_deadline: CE_TIMEOUT). Worker threads run at nice
 * SEARCH_NICE so that, on a busy CPU, the serving loops come first.
 *
 * A job is the caller's: the worker calls job->run(store, job) with the
 * deadline armed, then writes the job's address to job->notify_fd (a
 * pipe the caller's loop reads) and never touches it again. A job queued
 * when the pool is freed is handed back the same way with cancelled set,
 * never run.
 */
#ifndef CASTELLAN_SMS_SEARCH_H
#define CASTELLAN_SMS_SEARCH_H

#include <stdbool.h>
#include <stdint.h>
#include "sms/store.h"

#define SMS_SEARCH_WORKERS_DEFAULT 2
#define SMS_SEARCH_QUEUE_DEFAULT 8
#define SMS_SEARCH_DEADLINE_MS_DEFAULT 5000
#define SMS_SEARCH_WORKERS_MAX 16
#define SEARCH_NICE 10

struct sms_search_limits {
	unsigned workers;      /* searches at once, 0: default */
	unsigned queue;        /* waiting beyond those, 0: default */
	unsigned deadline_ms;  /* from submission, 0: default */
};

struct sms_search_job {
	void (*run)(struct sms_store *s, struct sms_search_job *j); /* on a worker */
	int notify_fd;              /* the job's address is written here when done */
	bool cancelled;             /* out: not run (the pool was freed) */
	bool expired;               /* out: not run (its deadline passed in the queue) */
	uint64_t deadline_ms;       /* set by sms_search_submit (now_mono_ms() based) */
	struct sms_search_job *next;
};

struct sms_search_pool;

/* Start the workers, each opening db_uri. 0, CE_ARG, or the store's error. */
int sms_search_pool_new(const char *db_uri, const struct sms_search_limits *lim, struct sms_search_pool **out)
	WARN_UNUSED;
/* Stop: running jobs finish (their deadline bounds the wait), queued ones
 * are handed back cancelled. NULL is a no-op. */
void sms_search_pool_free(struct sms_search_pool *p);
/* Queue j. 0; CE_LIMIT (full: j untouched, the caller answers);
 * CE_STATE (stopping). From any thread. */
int sms_search_submit(struct sms_search_pool *p, struct sms_search_job *j) WARN_UNUSED;
/* The limits in force (defaults resolved). */
void sms_search_pool_limits(const struct sms_search_pool *p, struct sms_search_limits *out);
/* Counters since the start: run, refused (CE_LIMIT), expired in the queue. */
struct sms_search_stats {
	uint64_t run, refused, expired;
};
void sms_search_pool_stats(struct sms_search_pool *p, struct sms_search_stats *out);

#endif
