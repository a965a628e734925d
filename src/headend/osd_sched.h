/*
 * osd_sched.h - the head-end's fingerprints and messages in force (issue
 * 13): read from the SMS store (sms/store_osd.h) by the EMM thread every
 * few seconds, and handed out
 *   - to the ECMG thread (osd_sched_fp_for_ecm, the ecmg_config.fp_lookup):
 *     the fingerprint of an ECM stream's service, else of one of its
 *     packages (the lowest id wins), under a mutex;
 *   - to the carousel source on the EMM thread (osd_sched_card): a card's
 *     OSD items in priority order (its own fingerprint, its own message,
 *     its packages' messages, global messages; the newest of each first),
 *     at most EMM_MAX_OSD, pointing into the loaded set (valid until the
 *     next osd_sched_load on that thread).
 * A load that fails keeps the previous set. No globals.
 */
#ifndef CASTELLAN_HEADEND_OSD_SCHED_H
#define CASTELLAN_HEADEND_OSD_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/osd.h"
#include "headend/carousel.h"

#define OSD_SCHED_MAX_FP 4096      /* fingerprints in force at once (more: the oldest kept) */
#define OSD_SCHED_MAX_MSG 4096     /* messages in force at once */

struct sms_store;
struct osd_sched;

int osd_sched_new(struct osd_sched **out) WARN_UNUSED;
void osd_sched_free(struct osd_sched *os);
/* Read what is in force at now_s. 0 or the store's error (the old set stays). */
int osd_sched_load(struct osd_sched *os, struct sms_store *st, int64_t now_s) WARN_UNUSED;
/* ecmg_config.fp_lookup: ctx is the osd_sched. 0 and *fp, or CE_NOT_FOUND. */
int osd_sched_fp_for_ecm(void *ctx, uint16_t ecm_id, uint32_t mask, uint64_t now_ms, struct osd_fingerprint *fp);
/* Fill k->osd / k->nosd for card serial with packages (grant mask) at now_s. */
void osd_sched_card(const struct osd_sched *os, uint64_t serial, uint32_t packages, int64_t now_s,
	struct carousel_card *k);
/* Counts of the loaded set (tests, status). */
void osd_sched_counts(const struct osd_sched *os, size_t *ecm_fps, size_t *card_fps, size_t *msgs);

#endif
