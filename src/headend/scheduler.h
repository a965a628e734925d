/*
 * scheduler.h - the head-end's time-driven jobs, without cron: subscription
 * start and expiry, epoch key rotation, EMM regeneration.
 *
 * Owns: the injectable clock (tests drive time by hand), a min-heap of
 * per-card events (the next moment a card's entitlement changes by itself:
 * a subscription starting or finishing), at most ONE pending per card (the
 * earliest; memory does not grow with carousel cycles), the epoch watch (the epoch in
 * force changed: every card's EMM must be rebuilt) and the pure rule that
 * turns a card's subscriptions into the grant in force at a given time.
 *
 * Key rotation ahead of time: every unique EMM carries the package keys of
 * the current AND the next epoch (cas/emm.h), so a box holds the keys of
 * epoch E+1 during the whole of epoch E. When E+1 begins the scheduler
 * reports the rotation and the carousel regenerates the base, adding E+2:
 * the lead time of a key is one whole epoch (a week by default). The
 * carousel must cycle the base in less than that; headend warns if not.
 *
 * No I/O, no threads, no globals: one struct sched per carousel thread.
 */
#ifndef CASTELLAN_SCHEDULER_H
#define CASTELLAN_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/emm.h"

#define SCHED_MAX_EVENTS (64u * 1024u * 1024u) /* cards pending at most; beyond, events are dropped (counted) */
/* Memory: a 16-byte table slot per pending card (the table at most 70 %
 * full, doubled when it would pass: 23 to 46 B per card, twice that for
 * a moment while doubling) plus a 4-byte heap entry (capacity doubled). */
#define SCHED_NO_EVENT INT64_MAX

/* Unix time in milliseconds; ctx is sched_config.clock_ctx. */
typedef uint64_t (*sched_clock_fn)(void *ctx);

struct sched_config {
	sched_clock_fn clock;    /* NULL = the wall clock (now_wall_ms) */
	void *clock_ctx;
	uint32_t epoch_seconds;  /* the keystore's key epoch length (> 0) */
};

/* One subscription as the scheduler sees it (package id, unix seconds). */
struct sched_sub {
	uint32_t package;
	int64_t start_s, finish_s;   /* in force for start <= t < finish */
};

struct sched_stats {
	uint64_t events_added;       /* cards that got a pending event */
	uint64_t events_merged;      /* later/equal events of a card already pending: ignored */
	uint64_t events_moved;       /* earlier events of a pending card: its time moved up */
	uint64_t events_fired, events_dropped;
	uint64_t rotations;          /* epoch changes seen */
	size_t pending;              /* cards with a pending event */
	size_t bytes;                /* memory of the table and heap */
};

struct sched;

/* 0, CE_ARG (epoch_seconds 0), CE_NOMEM. */
int sched_new(const struct sched_config *cfg, struct sched **out) WARN_UNUSED;
void sched_free(struct sched *s);

/* The clock, in ms / s. */
uint64_t sched_now_ms(const struct sched *s);

/* Remember that card `serial` (> 0) must be rebuilt at when_s (unix
 * seconds; kept as uint32: a time past 2106 is clamped to UINT32_MAX, one
 * before 1970 to 0). SCHED_NO_EVENT is ignored. A card holds at most one
 * pending event, the earliest: a later or equal one is ignored (when the
 * pending one fires the card is rebuilt and schedules its next change
 * again), an earlier one replaces it. O(log n). 0, or CE_ARG (serial 0),
 * CE_LIMIT when SCHED_MAX_EVENTS cards are pending (counted; the cycle
 * still covers the card), CE_NOMEM. */
int sched_at(struct sched *s, uint64_t serial, int64_t when_s);

/* Pop the cards whose event time has come (<= now), at most max, into
 * serials; returns how many. */
size_t sched_due(struct sched *s, uint64_t *serials, size_t max);

/* True once each time the epoch in force changed since the previous call
 * (the first call only records it and returns false); *epoch gets the
 * epoch in force. */
bool sched_rotation_due(struct sched *s, uint32_t *epoch);

/* Seconds until the next epoch begins. */
int64_t sched_seconds_to_rotation(const struct sched *s);

/* When the earliest per-card event is due (unix seconds), SCHED_NO_EVENT
 * if none is pending (the status endpoint shows it). */
int64_t sched_next_event(const struct sched *s);

void sched_stats(const struct sched *s, struct sched_stats *out);

/*
 * The grant in force at now_s from a card's subscriptions: the packages
 * 0..31 of subscriptions with start <= now < finish make the mask, the
 * other package ids go to g->ext (at most EMM_MAX_EXT_PACKAGES, then
 * ignored); the period is the intersection of those subscriptions' periods
 * (latest start, earliest finish), so the grant is exact until its finish,
 * when the scheduler rebuilds it. No subscription in force: packages 0
 * (revokes everything) and the period [now, now]. *next_s gets the next
 * time after now when the grant changes by itself (a start or a finish),
 * SCHED_NO_EVENT if never.
 */
void sched_grant_at(const struct sched_sub *subs, size_t n, int64_t now_s, struct emm_grant *g, int64_t *next_s);

#endif
