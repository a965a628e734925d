/*
 * descrambler.h - the emulated descrambler of the reference set-top box.
 *
 * Owns: the descrambler slots (one struct ts_cipher each, holding the even
 * and odd CW of one scrambled stream), the host side of the CAS client API
 * that fills them (struct cas_host.load_cw, cas/client.h), and batch
 * descrambling of a slot's packets.
 *
 * A slot is named by (service_id, tag). The tag is the ECM PID whose ECMs
 * feed the slot (per-component CWs: a service with ES-level CA_descriptors
 * has one slot per ECM PID), or DESCR_TAG_SERVICE for a whole-service slot.
 * The client API names only the service, so the box says which ECM it is
 * handing over with descrambler_set_tag() before calling the client; the
 * client then calls host.load_cw synchronously and the CW lands in
 * (service_id, tag). The slot interface is kept apart from the client so a
 * secure chip (key ladder, load_ecw) can replace load_cw without touching
 * either the box or the client.
 *
 * Normative references: ETSI TS 100 289 (DVB-CSA2), ETSI TS 103 127
 * (DVB-CISSA), ISO/IEC 13818-1 2.4.3 (transport_scrambling_control).
 * Keys are wiped when a slot is replaced or the descrambler freed (the
 * ciphers wipe on free); CWs are never logged.
 */
#ifndef CASTELLAN_STB_DESCRAMBLER_H
#define CASTELLAN_STB_DESCRAMBLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cipher/cipher.h"
#include "cas/client.h"

#define DESCR_MAX_SLOTS 128
#define DESCR_TAG_SERVICE 0x1FFF /* a slot for the whole service (no ECM PID) */

struct descrambler_config {
	/* Apply CSA2 entropy reduction (CW bytes 3 and 7 = checksums) to CSA2
	 * CWs as they are loaded. Idempotent on an already reduced CW, so on
	 * is right for every head-end that reduces (TSDuck's default); off
	 * only for streams scrambled with the full 64-bit CW. */
	bool csa2_reduce;
	/* The box clock for the client (unix ms); NULL = wall clock. */
	uint64_t (*now_ms)(void *ctx);
	void *clock_ctx;
};

struct descrambler;

/* New descrambler with no slots. 0, CE_ARG or CE_NOMEM; *out NULL on error.
 * Free with descrambler_free (wipes every CW). */
int descrambler_new(const struct descrambler_config *cfg, struct descrambler **out) WARN_UNUSED;
void descrambler_free(struct descrambler *d);

/* The host interface a CAS client is given: load_cw goes to the slot
 * (service_id, current tag); load_ecw is NULL (no key ladder yet). The
 * struct points at d: valid while d lives. */
void descrambler_host(struct descrambler *d, struct cas_host *host);
/* Which slot of a service the next load_cw fills (an ECM PID or
 * DESCR_TAG_SERVICE, the default). */
void descrambler_set_tag(struct descrambler *d, uint16_t tag);

/* Load a CW into slot (service_id, tag), creating the slot, or recreating
 * its cipher when alg changed (the other parity is then forgotten).
 * 0, CE_ARG (bad alg/length/parity), CE_LIMIT (DESCR_MAX_SLOTS), CE_NOMEM. */
int descrambler_load_cw(struct descrambler *d, uint16_t service_id, uint16_t tag, enum cw_alg alg,
	enum cw_parity parity, const uint8_t *cw, size_t len) WARN_UNUSED;

/* Descramble n packets of slot (service_id, tag) in place (each packet's
 * scrambling bits pick the key; clear packets are left alone). *done gets
 * the number descrambled, *missing the number left scrambled for want of a
 * key (all the scrambled ones when the slot has never had a CW). Either may
 * be NULL. Returns 0, or CE_FORMAT when a packet was not a valid TS packet
 * (skipped; the rest are processed). */
int descrambler_run(struct descrambler *d, uint16_t service_id, uint16_t tag, uint8_t *const *pkts,
	size_t n, size_t *done, size_t *missing);

/* Slot facts, for the box's report and for benchmarks. */
struct descr_slot_info {
	bool exists;
	enum cw_alg alg;
	bool has_even, has_odd;
	uint64_t cw_loads;        /* successful load_cw calls into this slot */
	uint64_t last_load_us;    /* monotonic time (now_mono_us) of the last load */
};
void descrambler_slot_info(const struct descrambler *d, uint16_t service_id, uint16_t tag,
	struct descr_slot_info *info);
/* Total successful CW loads into any slot (to tell whether a client call
 * loaded something). */
uint64_t descrambler_loads(const struct descrambler *d);
/* Drop every slot of a service (wipes its CWs). */
void descrambler_drop_service(struct descrambler *d, uint16_t service_id);

#endif
