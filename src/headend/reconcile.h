/*
 * reconcile.h - `castellan sms reconcile`: the CAS side against the SMS,
 * card by card (TRAI Schedule III A.6: "the auditor reconciles the two
 * databases and expects no difference").
 *
 * The CAS side is what the head-end last numbered and sent to each card:
 * the emm_seq row (blocked flag, and from schema 4 the grant: the 32-bit
 * package mask, period and extended package ids). The SMS side is what the
 * head-end would send now: the card's state and the grant in force at now_s
 * from its subscriptions (sched_grant_at, the head-end's own rule). Kinds of
 * difference:
 *   not_sent   the SMS grants the card something; the CAS never sent it any EMM
 *   cas_only   the CAS last sent an active grant to a card the SMS no longer has
 *   state      active in one, blocked in the other
 *   packages   the package mask differs
 *   ext        the extended package ids differ
 *   period     the grant's period differs
 *   unknown    the CAS row predates schema 4 (no grant recorded): unchecked
 * A head-end that is running catches up within its change-feed poll and
 * scheduler delay; a difference that stays is a fault.
 */
#ifndef CASTELLAN_HEADEND_RECONCILE_H
#define CASTELLAN_HEADEND_RECONCILE_H

#include <stddef.h>
#include <stdint.h>
#include "sms/store.h"

struct reconcile_diff {
	uint64_t serial;
	const char *kind;
	char sms[512], cas[512];   /* what each side says, as text */
};

struct reconcile_stats {
	size_t sms_cards, cas_cards, same, diffs;
};

/* Walk both sides in serial order; fn for each difference (non-zero stops
 * and is returned). 0 or a CE_* code of the store. */
int reconcile_run(struct sms_store *s, int64_t now_s, int (*fn)(void *ctx, const struct reconcile_diff *d),
		  void *ctx, struct reconcile_stats *st) WARN_UNUSED;

#endif
