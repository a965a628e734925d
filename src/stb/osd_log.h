/*
 * osd_log.h - what the reference box put on screen: every fingerprint and
 * message showing, with its timing (stream time from PCR, box wall time)
 * and geometry, for `castellan stb --report-json` ("osd" array, the shape
 * docs/stb.md fixes) and for the PNG snapshots drawn from it.
 *
 * Owns the box's OSD policy, which a real box's UI would also apply:
 *  - a fingerprint is shown when first received, then again each time it
 *    is received at least interval_s after its last showing, at most
 *    `repeat` showings per (fp_id, service); stream time when known (a
 *    showing from before the first PCR counts as at 0), else the box clock;
 *  - OSD_FP_RANDOM_POS: the box draws x/y at random (RAND_bytes), 0..90 %;
 *  - a message is shown once per msg_id: a scroll at the bottom of the
 *    screen (x 0, y 90) or a pop-up (x 10, y 35), for duration_s.
 * No I/O, no globals; a log is capped at OSD_LOG_MAX_EVENTS (the rest
 * counted as dropped).
 */
#ifndef CASTELLAN_STB_OSD_LOG_H
#define CASTELLAN_STB_OSD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/osd.h"

#define OSD_LOG_MAX_EVENTS 4096
#define OSD_LOG_MAX_TRACKED 256   /* (fp_id, service) / msg_id remembered */

enum osd_style { OSD_STYLE_OVERLAY = 0, OSD_STYLE_SCROLL, OSD_STYLE_POPUP };

struct osd_event {
	uint8_t kind;              /* OSD_KIND_* */
	bool overt;
	bool covert_encoded;       /* text is the covert code */
	uint16_t service;          /* 0: every service */
	uint32_t id;               /* fp_id / msg_id */
	uint8_t x_pct, y_pct;
	uint8_t fg[3], bg[4];
	uint8_t font_px;
	int64_t start_ms;          /* stream time (PCR) since the stream's start; -1 unknown */
	uint64_t wall_ms;          /* box clock (unix ms) */
	uint32_t duration_ms;
	enum osd_style style;
	bool forced;
	uint8_t scope;             /* messages: enum osd_scope */
	uint64_t expiry_s;         /* messages */
	uint16_t showing;          /* 1-based showing number (fingerprints) */
	char text[OSD_MAX_TEXT_BYTES + 1];
};

struct osd_log;
/* 0, CE_ARG, CE_NOMEM. */
int osd_log_new(struct osd_log **out) WARN_UNUSED;
void osd_log_free(struct osd_log *l);
/* Record a fingerprint received at stream time start_ms (-1 unknown) /
 * wall_ms; true if it produced a showing. */
bool osd_log_fingerprint(struct osd_log *l, int64_t start_ms, uint64_t wall_ms, uint16_t service,
	const struct osd_fingerprint *fp, const char *text);
bool osd_log_message(struct osd_log *l, int64_t start_ms, uint64_t wall_ms, const struct osd_message *m);
size_t osd_log_count(const struct osd_log *l);
uint64_t osd_log_dropped(const struct osd_log *l);
/* The i-th event, NULL past the end. */
const struct osd_event *osd_log_get(const struct osd_log *l, size_t i);
/* "fingerprint" / "message", "overlay" / "scroll" / "popup". */
const char *osd_kind_name(uint8_t kind);
const char *osd_style_name(enum osd_style s);

#endif
