/*
 * store_usage.h - the usage rules of a channel (Schedule III C.6, schema
 * 8): its copy control (copy_free / copy_once / copy_never) and retention
 * limit, set by the operator (`castellan sms copy-control`), read by the
 * head-end into every ECM of the channel (cas/usage.h, the ECM's extension
 * block) and enforced by the box's recorder (stb/pvr.h).
 *
 * Table channel_usage: service_id (key, 1..65535), copy_control (0, 2, 3),
 * retention_s (0..CAS_MAX_RETENTION_S), updated_ms. No row: copy_free, no
 * limit (setting copy_free with no limit deletes the row). Every change is
 * one audit entry ("channel.usage").
 */
#ifndef CASTELLAN_SMS_STORE_USAGE_H
#define CASTELLAN_SMS_STORE_USAGE_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/usage.h"

struct sms_store;

/* Schema 8's table (idempotent). */
int store_usage_migrate8(struct sms_store *s) WARN_UNUSED;
/* 0, CE_RANGE (service 0, a bad rule), or the store's error. */
int sms_usage_set(struct sms_store *s, uint16_t service_id, const struct cas_usage *u, const char *who) WARN_UNUSED;
/* 0 and *u, or CE_NOT_FOUND (*u copy_free: the default). */
int sms_usage_get(struct sms_store *s, uint16_t service_id, struct cas_usage *u) WARN_UNUSED;
/* Every channel with rules, by service id; *count how many. */
int sms_usage_list(struct sms_store *s, int (*fn)(void *ctx, uint16_t service_id, const struct cas_usage *u),
	void *ctx, size_t *count) WARN_UNUSED;

#endif
