/*
 * entitlement.h - the box-side entitlement record of one card: card serial,
 * package mask, validity period, and the package keys it was given.
 *
 * For now it is provisioned from a local file written by the head-end
 * (`castellan provision`); EMMs replace that file later, filling the same
 * struct. The file is JSON (docs/key-files.md), mode 0600, parsed with
 * jansson and bounded (size, key count, every field checked).
 * Only keys for epochs overlapping [start, finish] are ever written, so an
 * expired card has no key for the current epoch: expiry is enforced by keys.
 */
#ifndef CASTELLAN_ENTITLEMENT_H
#define CASTELLAN_ENTITLEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/keys.h"

#define ENT_MAX_KEYS 256
#define ENT_MAX_FILE_BYTES (256 * 1024)

struct entitlement {
	uint16_t ca_system_id;
	uint64_t card_serial;   /* e.g. 2100000000 */
	uint32_t packages;      /* 32-bit access-criteria mask */
	size_t next;            /* extended packages (ids >= 32) */
	uint16_t ext[CAS_MAX_EXT_PACKAGES];
	uint64_t start_s;       /* unix seconds */
	uint64_t finish_s;
	size_t nkeys;
	struct pkg_key keys[ENT_MAX_KEYS];
};
void entitlement_wipe(struct entitlement *e);

/* Head-end side: fill e->keys for every package in e->packages and every
 * epoch overlapping [start_s, finish_s] (at most ENT_MAX_KEYS: CE_LIMIT). */
int entitlement_issue(const struct keystore *ks, struct entitlement *e) WARN_UNUSED;
int entitlement_save(const struct entitlement *e, const char *path) WARN_UNUSED;
int entitlement_load(const char *path, struct entitlement *e) WARN_UNUSED;
/* JSON text <-> struct (for tests and fuzzing). encode: malloc'ed NUL-
 * terminated text, caller frees with secret_free(text, strlen(text)). */
int entitlement_decode(const char *json, size_t len, struct entitlement *e) WARN_UNUSED;
int entitlement_encode(const struct entitlement *e, char **json) WARN_UNUSED;
/* Key for (epoch, pkg) or NULL. */
const struct pkg_key *entitlement_find_key(const struct entitlement *e, uint32_t epoch, unsigned pkg);
/* True if e grants package pkg (a bit of the mask, or an extended id). */
bool entitlement_has_pkg(const struct entitlement *e, unsigned pkg);

#endif
