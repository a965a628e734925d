/*
 * chan_usage.h - the head-end's copy of the channels' usage rules
 * (Schedule III C.6; sms/store_usage.h): loaded by the EMM thread with the
 * channels table, read by the ECMG thread (ecmg_config.usage_lookup) for
 * every ECM it builds, lock-free (one atomic word per service id).
 */
#ifndef CASTELLAN_HEADEND_CHAN_USAGE_H
#define CASTELLAN_HEADEND_CHAN_USAGE_H

#include <stdint.h>
#include "lib/err.h"
#include "cas/usage.h"

struct sms_store;
struct chan_usage;

int chan_usage_new(struct chan_usage **out) WARN_UNUSED;
void chan_usage_free(struct chan_usage *cu);
/* Read channel_usage (rows gone are cleared). 0 or the store's error (the
 * old rules stay). */
int chan_usage_load(struct chan_usage *cu, struct sms_store *st) WARN_UNUSED;
/* ecmg_config.usage_lookup: ctx is the chan_usage. 0 and *u, or
 * CE_NOT_FOUND (copy_free). */
int chan_usage_lookup(void *ctx, uint16_t ecm_id, struct cas_usage *u);

#endif
