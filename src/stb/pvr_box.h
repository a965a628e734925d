/*
 * pvr_box.h - `castellan stb --record FILE` / `--playback FILE`: the
 * recorder and the player (stb/pvr.h) as the box command runs them, so the
 * command itself (src/cli/cmd_stb.c) only calls these. The box's recording
 * keys: its secure chip when it has one (they stay in the chip), else the
 * device key of its card file (--card: a cardless box's own identity). A
 * box with neither (--entitlement, --cw, --smartcard without a chip) has
 * no key of its own and cannot record or play back. docs/stb.md
 * "Recording".
 */
#ifndef CASTELLAN_STB_PVR_BOX_H
#define CASTELLAN_STB_PVR_BOX_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

struct chip_link;
struct stb;
struct pvr_box;

/* Start recording into path with the box's key (chip, else card_path).
 * Prints why on stderr and returns non-zero on failure. */
int pvr_box_record(const char *path, struct chip_link *chip, const char *card_path, uint16_t service_id,
	struct pvr_box **out) WARN_UNUSED;
/* After every stb_feed. 0 or an error (printed). */
int pvr_box_feed(struct pvr_box *b, struct stb *box, const uint8_t *pkts, size_t n) WARN_UNUSED;
/* Finish: the header written, a summary on stderr. Frees b. 0 or an error. */
int pvr_box_finish(struct pvr_box *b) WARN_UNUSED;
/* Drop an unfinished recording (file removed). NULL is fine. */
void pvr_box_abort(struct pvr_box *b);
/* Play path back to output_uri on this box. The file is checked whole
 * before the output is opened: a recording of another box, a tampered or
 * truncated one, or one past its retention writes nothing. Returns the exit
 * status: 0, or 1 (refused / error, the reason on stderr). */
int pvr_box_playback(const char *path, struct chip_link *chip, const char *card_path, const char *output_uri);

#endif
