/*
 * usage.h - usage rules of a channel (Schedule III C.6: boxes that record
 * programmes have copy protection): the copy-control setting the operator
 * gives a channel in the SMS, carried to the box in the channel's ECMs and
 * enforced by the box's recorder (stb/pvr.h).
 *
 * Copy control takes the two-bit values of DTCP's and CI Plus's copy
 * control information (CCI): 00 copy freely, 10 copy one generation,
 * 11 copy never (01 "copy no more" is what a copy_once recording becomes,
 * never sent). A retention limit (seconds a recording may be played after
 * it was made, 0 = no limit) goes with it.
 *
 * In the ECM the rules are one entry of the extension block (cas/ecm.h,
 * docs/ecm-format.md "Extension block"): tag ECM_EXT_USAGE (0x02), len 5,
 *   copy_control u8 (0, 2 or 3) | retention_s u32 BE (0..CAS_MAX_RETENTION_S)
 * at most once. The block lies inside the GCM AAD and inside D, which every
 * package's wrap MAC covers: an ECM whose entry was stripped, added or
 * changed gives no CW (CE_MAC). An ECM without the entry means copy_free
 * with no limit (what every ECM meant before this entry existed).
 */
#ifndef CASTELLAN_CAS_USAGE_H
#define CASTELLAN_CAS_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define ECM_EXT_USAGE 0x02         /* extension-block tag (cas/ecm.h) */
#define CAS_USAGE_BYTES 5          /* copy_control u8 | retention_s u32 */
#define CAS_MAX_RETENTION_S (10u * 366u * 24u * 3600u) /* ten years */

enum cas_copy {
	CAS_COPY_FREE = 0,         /* record, play and export freely */
	CAS_COPY_NO_MORE = 1,      /* a copy_once recording: no further copy (never sent) */
	CAS_COPY_ONCE = 2,         /* record once (bound to this box), no re-recording */
	CAS_COPY_NEVER = 3,        /* no recording */
};

struct cas_usage {
	uint8_t copy_control;      /* enum cas_copy */
	uint32_t retention_s;      /* 0: no limit */
};

/* "copy_free", "copy_no_more", "copy_once", "copy_never", "?" */
const char *cas_copy_name(uint8_t copy_control);
/* The reverse (the three a head-end may set): 0 or CE_ARG. */
int cas_copy_parse(const char *name, uint8_t *copy_control) WARN_UNUSED;
/* 0, or CE_RANGE (unknown copy_control, COPY_NO_MORE, retention too long). */
int cas_usage_check(const struct cas_usage *u) WARN_UNUSED;

struct ecm_params;
struct ecm_view;
/* Add the usage entry to p's extension block: 0, CE_EXISTS (one already),
 * CE_RANGE, CE_OVERFLOW. */
int ecm_ext_add_usage(struct ecm_params *p, const struct cas_usage *u) WARN_UNUSED;
/* The usage entry of a parsed ECM (bounded walk of its block): 0 and
 * *found (false: *u is copy_free, no limit), or CE_FORMAT (twice, a wrong
 * length, a bad value, a broken block). Trust it only after the ECM was
 * accepted (ecm_open, the card or the chip): the MACs cover it. */
int ecm_ext_usage(const struct ecm_view *v, struct cas_usage *u, bool *found) WARN_UNUSED;

#endif
