/*
 * ecm.h - Castellan's ECM format, version 2 (docs/ecm-format.md has the byte
 * table). An ECM is one MPEG private section:
 *
 *   table_id 0x80 (CP_number even) / 0x81 (odd), section_syntax_indicator 0,
 *   then a body that carries: format version, scrambling algorithm, ECM_id,
 *   CA_system_id, CP_number, timestamp, key epoch, access criteria (the
 *   32-bit package mask of the free CAS, in a length-prefixed field so it can
 *   grow), a mask of which CWs are present, a nonce, the CW pair encrypted
 *   with AES-128-GCM under a random per-ECM key K_ecm (the header as AAD),
 *   and last one wrapped copy of K_ecm for each package in the access
 *   criteria (AES key wrap, RFC 3394, under K_pkg(epoch, pkg)) whose
 *   integrity value is a CMAC of every byte before the wraps under a key
 *   derived from K_pkg.
 *
 * So only a holder of a package key of one of the channel's packages, for
 * the current epoch, can recover the CWs (the entitlement is enforced by
 * keys, not by a flag the client could skip), and only the holder of
 * package B's key (the head-end) can make an ECM that B's key opens: a
 * subscriber of package A, who learns K_ecm, cannot re-seal it for B.
 */
#ifndef CASTELLAN_ECM_H
#define CASTELLAN_ECM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cipher/cipher.h"
#include "cas/keys.h"
#include "cas/entitlement.h"

#define ECM_TABLE_EVEN 0x80
#define ECM_TABLE_ODD 0x81
#define ECM_FORMAT_VERSION 0x02 /* v1 (0x01) is refused: docs/ecm-format.md */
#define ECM_FORMAT_V3 0x03      /* v2 + extended packages: AC lists ids >= 32, wraps name u16 ids */
#define ECM_MAX_AC_BYTES 32
/* Extended package ids (u16) after the 4-byte mask in the AC: 14. */
#define ECM_MAX_EXT_PACKAGES ((ECM_MAX_AC_BYTES - 4) / 2)
#define ECM_WRAP_ENTRY_V2 (1 + 24) /* pkg u8 | wrap */
#define ECM_WRAP_ENTRY_V3 (2 + 24) /* pkg u16 | wrap */
#define ECM_MAX_SECTION 1024
#define ECM_WRAP_BYTES 24   /* RFC 3394 wrap of a 16-byte key */
#define ECM_NONCE_BYTES 12
#define ECM_TAG_BYTES 16

#define ECM_HAS_EVEN 0x01
#define ECM_HAS_ODD 0x02

/* ---- extension block (issue 13: fingerprints; docs/ecm-format.md
 * "Extension block") ----
 * Bit 7 of the cw_mask byte says an extension block follows the nonce:
 *   ext_len u16 (1..ECM_MAX_EXT_BLOCK_BYTES) | ext_len bytes of entries
 *   entry = tag u8 | len u8 | value[len]
 * It lies inside the GCM AAD and inside D, so every package MAC covers it:
 * an ECM whose block was stripped, added or changed gives no CW (CE_MAC).
 * ecm_build sets the bit when p->ext_block_len > 0; ecm_parse clears it from
 * v->cw_mask and sets v->ext_block / v->ext_block_len. */
#define ECM_HAS_EXT_BLOCK 0x80
#define ECM_MAX_EXT_BLOCK_BYTES 128
#define ECM_EXT_FINGERPRINT 0x01 /* value: an osd.h fingerprint (OSD_FP_BYTES) */
/* ---- end of the extension block definitions ---- */

/* What the ECMG puts in an ECM. */
struct ecm_params {
	enum cw_alg alg;
	uint16_t ecm_id;
	uint16_t ca_system_id;
	uint16_t cp_number;
	uint64_t timestamp_ms;  /* unix time of generation */
	uint32_t epoch;
	uint8_t ac_len;
	uint8_t ac[ECM_MAX_AC_BYTES]; /* first 4 bytes: package mask, big-endian; then
	                              * extended package ids u16 BE, ascending, >= 32
	                              * (ac_len even): the ECM is then format v3 */
	uint8_t cw_mask;        /* ECM_HAS_EVEN | ECM_HAS_ODD */
	uint8_t cw_even[CW_MAX_BYTES];
	uint8_t cw_odd[CW_MAX_BYTES];
	uint16_t ext_block_len; /* extension block (0: none); ecm_ext_* fill it */
	uint8_t ext_block[ECM_MAX_EXT_BLOCK_BYTES];
};
void ecm_params_wipe(struct ecm_params *p);

/* Access criteria as an ECM carries them: 4..ECM_MAX_AC_BYTES bytes, even,
 * the mask then extended ids ascending and >= 32, at least one package.
 * 0 or CE_ARG. (The ECMG checks an SCS's access_criteria with it.) */
int ecm_ac_check(const uint8_t *ac, size_t len) WARN_UNUSED;

/* Build an ECM section. One wrap per package bit set in the first 4 bytes
 * of ac and per extended id after them (at least one package: CE_ARG
 * otherwise; ids not ascending, < 32 or an odd ac_len: CE_ARG). Format v2
 * when ac_len is 4, v3 when it lists extended packages. */
int ecm_build(const struct keystore *ks, const struct ecm_params *p,
	uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;

/*
 * Package-key cache for ECM generators. ecm_build derives K_pkg (an
 * SP 800-108 KDF) and sets up AES key schedules for every package of every
 * ECM; a cache keeps, for the current epoch only, each used package's key
 * as a ready AES-128 schedule (the RFC 3394 wrap then costs 12 AES blocks)
 * and one reusable GCM context. Keys of the previous epoch are wiped as
 * soon as an ECM of another epoch is built. The output is the same format
 * as ecm_build's (fresh random K_ecm and nonce every call).
 *
 * Not thread-safe: one cache per thread (the ECMG has one event thread).
 * The keystore must outlive the cache.
 */
struct ecm_keycache;
/* 0, CE_ARG, CE_NOMEM, CE_CRYPTO. */
int ecm_keycache_new(const struct keystore *ks, struct ecm_keycache **out) WARN_UNUSED;
/* Wipes every cached key. NULL is fine. */
void ecm_keycache_free(struct ecm_keycache *kc);
/* Forget (and wipe) the cached keys now; the next ECM derives again. */
void ecm_keycache_flush(struct ecm_keycache *kc);
/* How many package keys the cache has derived since it was created. */
uint64_t ecm_keycache_derivations(const struct ecm_keycache *kc);
/* ecm_build with the cache's keys: same arguments, checks and errors. */
int ecm_build_cached(struct ecm_keycache *kc, const struct ecm_params *p,
	uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;

/* The parsed, still encrypted ECM: no secrets, points into the section. */
struct ecm_view {
	uint8_t table_id;
	enum cw_alg alg;
	uint16_t ecm_id;
	uint16_t ca_system_id;
	uint16_t cp_number;
	uint64_t timestamp_ms;
	uint32_t epoch;
	uint8_t ac_len;
	const uint8_t *ac;
	uint8_t version;        /* ECM_FORMAT_VERSION (2) or ECM_FORMAT_V3 */
	uint32_t package_mask;  /* first 4 bytes of ac, 0 if ac_len < 4 */
	uint8_t nxpkg;          /* v3: extended package ids in ac after the mask, */
	uint16_t xpkg[ECM_MAX_EXT_PACKAGES]; /* ascending */
	uint8_t wrap_bytes;     /* one wrap entry: ECM_WRAP_ENTRY_V2 or _V3 */
	uint8_t cw_mask;
	uint8_t nwraps;
	const uint8_t *wraps;   /* nwraps x (pkg u8 (v2) or u16 (v3), wrapped key 24 bytes) */
	const uint8_t *nonce;
	const uint8_t *ct;
	size_t ct_len;
	const uint8_t *tag;
	const uint8_t *aad;     /* = the section start; GCM's AAD: aad_len bytes (before ct) */
	size_t aad_len;
	size_t auth_len;        /* the bytes every wrap's MAC covers: all before the wraps */
	const uint8_t *ext_block; /* extension block entries (authenticated once ecm_open succeeded) */
	uint16_t ext_block_len; /* 0: none */
};
/* Bounded parse, no crypto: every field checked, no trailing bytes. */
int ecm_parse(const uint8_t *sec, size_t len, struct ecm_view *v) WARN_UNUSED;
/* The package of the i-th wrap (i < nwraps): the mask's bits ascending,
 * then the extended ids. */
unsigned ecm_wrap_pkg(const struct ecm_view *v, unsigned i);
/* The 24-byte wrap of package pkg, NULL if the ECM has none. */
const uint8_t *ecm_wrap_of(const struct ecm_view *v, unsigned pkg);
/* True if the ECM lists package pkg (mask bit or extended id). */
bool ecm_has_pkg(const struct ecm_view *v, unsigned pkg);
/* The key of e that opens v: the first of the ECM's packages (mask bits
 * ascending, then extended ids) that e grants and holds a key of v's
 * epoch for. CE_NOT_ENTITLED (no package in common), CE_NO_KEY. */
int ecm_pick_key(const struct ecm_view *v, const struct entitlement *e, const struct pkg_key **out) WARN_UNUSED;

/* The recovered CWs. Wipe with ecm_cws_wipe. */
struct ecm_cws {
	uint8_t cw_mask;
	size_t cw_len;
	uint8_t even[CW_MAX_BYTES];
	uint8_t odd[CW_MAX_BYTES];
};
void ecm_cws_wipe(struct ecm_cws *c);

/* Decrypt with one package key: CE_NOT_ENTITLED if the ECM has no wrap for
 * key->pkg, CE_NO_KEY if the epochs differ, CE_MAC if unwrap or GCM
 * authentication fails. */
int ecm_open(const struct ecm_view *v, const struct pkg_key *key, struct ecm_cws *out) WARN_UNUSED;

/* ---- extension block helpers ----
 * Add a fingerprint entry to p's extension block: 0, CE_EXISTS (one
 * already), CE_OVERFLOW, or osd_fp_encode's code. */
struct osd_fingerprint;
int ecm_ext_add_fingerprint(struct ecm_params *p, const struct osd_fingerprint *fp) WARN_UNUSED;
/* The fingerprint of a parsed ECM's block: 0 (*found says whether there is
 * one), or CE_FORMAT. Trust it only after ecm_open (or the card / chip)
 * accepted the ECM: the MACs cover it. */
int ecm_ext_fingerprint(const struct ecm_view *v, struct osd_fingerprint *fp, bool *found) WARN_UNUSED;

#endif
