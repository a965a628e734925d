/*
 * carousel.h - the EMM carousel: which card's unique EMM goes on air next.
 *
 * Owns: the per-card EMM state (sequence number, a digest of the content
 * last numbered, whether the card was last sent blocked), the queue of
 * changed cards (sent first, each once, in the order they changed), the
 * cycle over the whole base (in serial order, page by page from the
 * source, then again from the start), the bandwidth budget (a token bucket
 * counted in TS bytes on the EMM PID, as the MUX packetizes: a section
 * takes ceil((len + 1) / 184) packets of 188 bytes), and the counters.
 *
 * Sequence numbers: a card accepts an EMM only if its seq is above the last
 * it accepted (cas/emm.h). The carousel gives a card a new seq only when
 * its content changes (grant, state, or the key epoch); an unchanged card is
 * re-sent with the same seq (a fresh nonce), which a box that already has
 * it ignores and a box that missed it accepts. Every new seq is handed to
 * source->save before the EMM carrying it is emitted, so after a restart
 * (carousel_restore) numbering continues above it.
 *
 * Content of a card's EMM (cas/emm.h):
 *   active card: emm_build_unique (grant, K_pkg of the current and next
 *                epoch); if it was last sent blocked, an UNBLOCK command
 *                EMM goes first (seq n, then the grant at n + 1);
 *   blocked, retired or deleted: one EMM with the empty grant (revokes
 *                every package and key) and the BLOCK command.
 *   pairing required (SMS pair = 1, docs/smartcard.md "Pairing required"):
 *                the grant EMM also carries PAIR with the box's id and
 *                K_pair = kms_pairing_key(K_v(box chip), serial) (the card
 *                then hands CWs out only under K_pair, which only that
 *                chip derives); with no box to pair with (no chip id, or
 *                none of the head-end's vendor keys is its chip's) the
 *                grant goes without package keys: no CW in any box. A card
 *                that was sent paired and is no longer gets UNPAIR in its
 *                EMMs (until a restart: the flag is not persisted).
 *
 * Group EMMs (on by default; config no_group turns them off): the cards a
 * tick sends are built with one timestamp (the tick's now) and their unique
 * EMMs, K_card or vendor-sealed alike, are packed without re-encrypting
 * into group sections 0x83 (emm_group_pack: up to EMM_MAX_SECTION bytes and
 * EMM_MAX_GROUP_CARDS cards). A group holds changed cards only or cycle
 * cards only, so changed cards still go in the first section of the tick
 * and never wait behind a large cycle section (a single changed card goes
 * alone, as a unique 0x82, as before). A group never holds two records of
 * one card, never crosses a page of the source, and is closed when the
 * budget is spent (the bucket goes below 0 by one section at most). A card that needs UNBLOCK first
 * gets its two EMMs as two unique sections (one card, two records). A
 * batch of one card goes unique: a group of one saves nothing.
 *
 * Not thread-safe: one carousel is driven by one thread. No globals.
 */
#ifndef CASTELLAN_CAROUSEL_H
#define CASTELLAN_CAROUSEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/emm.h"

#define CAROUSEL_DEFAULT_PAGE 1000        /* cards asked of the source at once */
#define CAROUSEL_MAX_PAGE 10000
#define CAROUSEL_DEFAULT_QUEUE (1u << 20) /* changed cards waiting; beyond, dropped (the cycle covers them) */
#define CAROUSEL_DEFAULT_BURST_MS 200     /* bucket depth */
#define CAROUSEL_MAX_PER_TICK 4096        /* EMMs built in one carousel_tick at most */

enum carousel_card_state {
	CAROUSEL_ACTIVE = 0,
	CAROUSEL_BLOCKED = 1,  /* sms BLOCKED */
	CAROUSEL_RETIRED = 2,  /* sms RETIRED */
	CAROUSEL_DELETED = 3,  /* no longer in the store */
};

enum carousel_pair {
	CAROUSEL_PAIR_OFF = 0,    /* no pairing required */
	CAROUSEL_PAIR_CHIP = 1,   /* PAIR stb_id | K_pair (from pair_kv) */
	CAROUSEL_PAIR_NO_BOX = 2, /* required, no box known: grant without keys */
};

/* What the source says of one card at time now. */
struct carousel_card {
	uint64_t serial;
	enum carousel_card_state state;
	struct emm_grant grant;   /* in force now (scheduler.h sched_grant_at) */
	const void *seal_key;     /* non-NULL: every EMM of this card is handed to
	                           * the seal hook (carousel_set_seal); borrowed */
	/* OSD items for this card (issue 13: its messages and fingerprints, in
	 * priority order), borrowed from the source until its next call. An
	 * active card's EMM carries them with its grant (emm_build_unique_osd)
	 * as far as they fit; they are part of the content, so a new or
	 * removed item gives the card a new seq. */
	size_t nosd;
	const struct osd_item *osd[EMM_MAX_OSD];
	enum carousel_pair pair;
	uint64_t pair_stb_id;     /* with CAROUSEL_PAIR_CHIP: the box (its chip id) */
	const uint8_t *pair_kv;   /* with CAROUSEL_PAIR_CHIP: K_v of that chip, 16
	                           * bytes, borrowed (the head-end's vendor keys) */
};

/* Where cards come from (the SMS store in the head-end, an array in tests
 * and the benchmark) and where sequence numbers are kept. Each callback
 * returns 0 or a CE_* code. */
struct carousel_source {
	void *ctx;
	/* Up to max cards with serial > after, ascending, as of now_s. *n = 0:
	 * the end of the base. */
	int (*page)(void *ctx, uint64_t after, int64_t now_s, struct carousel_card *out, size_t max, size_t *n);
	/* One card as of now_s; a card that is gone: state CAROUSEL_DELETED. */
	int (*get)(void *ctx, uint64_t serial, int64_t now_s, struct carousel_card *out);
	/* Persist a card's new seq (and digest and blocked flag) before it is
	 * used. *seq comes in as the carousel's proposal (its last + step);
	 * the source may raise it (another node on the same base numbered the
	 * card meanwhile: the store's atomic increment) and the carousel uses
	 * what comes back (never lower). g: the grant the EMM numbered
	 * carries (NULL for a blocked, retired or deleted card), kept for
	 * `castellan sms reconcile`. May be NULL (nothing persisted: tests,
	 * bench). */
	int (*save)(void *ctx, uint64_t serial, uint32_t step, uint64_t digest, bool blocked, const struct emm_grant *g,
		    uint32_t *seq);
};

struct carousel_config {
	uint32_t epoch_seconds;   /* the keystore's key epoch (required) */
	uint32_t kbps;            /* EMM bandwidth (TS bits); 0 = unlimited */
	uint32_t burst_ms;        /* bucket depth; 0 = CAROUSEL_DEFAULT_BURST_MS */
	size_t page;              /* 0 = CAROUSEL_DEFAULT_PAGE */
	size_t max_queue;         /* 0 = CAROUSEL_DEFAULT_QUEUE */
	bool no_cycle;            /* send changed cards only (tests) */
	uint32_t min_cycle_ms;    /* a cycle starts at most this often (a small base is not
	                           * repeated back to back); 0 = no minimum */
	bool no_group;            /* every card's EMM in its own unique section (0x82);
	                           * false (default): pack them into group EMMs (0x83) */
};

struct carousel_stats {
	uint64_t emms;            /* sections emitted (unique or group) */
	uint64_t ts_bytes;        /* their cost on air */
	uint64_t records;         /* card EMMs in them (a unique: 1, a group: its cards) */
	uint64_t group_sections;  /* of the sections, group EMMs (0x83) */
	uint64_t changed_emms;    /* card EMMs from the changed queue */
	uint64_t seq_bumps;       /* new sequence numbers given */
	uint64_t cycles;          /* whole-base cycles completed */
	uint64_t last_cycle_ms;   /* duration of the last complete cycle */
	uint64_t last_cycle_cards;/* cards in it */
	double cycle_emms_per_s;  /* card EMMs (records)/s over the last cycle */
	uint64_t queue_dropped;   /* changes dropped (queue full) */
	uint64_t errors;          /* source or build failures (card skipped) */
	size_t queue;             /* changed cards waiting now */
	size_t cards;             /* cards with EMM state */
	uint64_t cycle_pos;       /* serial the cycle has reached */
	uint64_t osd_left_out;    /* OSD items that did not fit their card's EMM (issue 13) */
};

/* Emit one EMM section (len bytes, valid during the call). Non-zero stops
 * the tick and is returned by carousel_tick. */
typedef int (*carousel_emit_fn)(void *ctx, const uint8_t *sec, size_t len);

struct carousel;

/* is and src->ctx are borrowed and must outlive the carousel. 0, CE_ARG,
 * CE_NOMEM. */
int carousel_new(const struct carousel_config *cfg, struct emm_issuer *is, const struct carousel_source *src,
	struct carousel **out) WARN_UNUSED;
void carousel_free(struct carousel *c);

/* Load a card's persisted state (at start-up, before the first tick). */
int carousel_restore(struct carousel *c, uint64_t serial, uint32_t seq, uint64_t digest, bool blocked) WARN_UNUSED;
/* Queue a changed card (no-op if already queued). 0, CE_LIMIT (queue full:
 * counted, the cycle still covers it), CE_NOMEM. */
int carousel_mark_changed(struct carousel *c, uint64_t serial);
/* The key epoch changed: nothing to do beyond noting it (every digest
 * includes the epoch, so the cycle renumbers each card); restarts the
 * cycle at the start of the base so the regeneration starts now. */
void carousel_rotate(struct carousel *c);

/*
 * Spend the bandwidth accrued up to now_ms: emit changed cards first, then
 * the cycle, while the bucket has tokens (and at most
 * CAROUSEL_MAX_PER_TICK card EMMs built). *emitted (may be NULL) = sections
 * emitted. 0, or the emit callback's non-zero value (the changed cards of
 * a section it refused go back to the head of the queue, in order; cycle
 * cards come again next tick), or CE_IO when source->save failed (what
 * was built before is still emitted). Other source and build failures skip
 * the card (counted in errors).
 */
int carousel_tick(struct carousel *c, uint64_t now_ms, carousel_emit_fn emit, void *ctx, size_t *emitted);

/* Re-seal a card's EMM (card->seal_key non-NULL) in place: buf holds *len
 * bytes of a K_card EMM, cap in all; *len = the new length (vendor EMMs,
 * headend.c). A card whose seal fails is skipped (counted in errors).
 * Without a hook seal_key is ignored. The content digest includes whether a
 * card is sealed, so a card that starts or stops being sealed gets a new seq. */
typedef int (*carousel_seal_fn)(void *ctx, const struct carousel_card *card, uint8_t *buf, size_t cap, size_t *len);
void carousel_set_seal(struct carousel *c, carousel_seal_fn fn, void *ctx);

/* Change the bandwidth (the MUX granted another figure). 0 = unlimited. */
void carousel_set_kbps(struct carousel *c, uint32_t kbps);
/* A card's current seq (0 = none yet). */
uint32_t carousel_seq(const struct carousel *c, uint64_t serial);
/* TS bytes a section of len bytes takes on the EMM PID. */
size_t carousel_ts_cost(size_t len);
void carousel_stats(const struct carousel *c, struct carousel_stats *out);

#endif
