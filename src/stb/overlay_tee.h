/*
 * overlay_tee.h - the box's --overlay-snapshot session (docs/stb.md,
 * "On-screen display"): the descrambled stream is kept in DIR while the box
 * plays (up to OVERLAY_TEE_MAX_BYTES, then no more), and at the end the
 * box's own OSD items (its report JSON's "osd" array) plus the items of
 * --osd-json are drawn on its frames by overlay_snapshot (overlay.h). The
 * kept stream is removed when the session is freed.
 *
 * Messages go to stderr prefixed "stb: " (the box's voice); no secrets pass
 * through here.
 */
#ifndef CASTELLAN_STB_OVERLAY_TEE_H
#define CASTELLAN_STB_OVERLAY_TEE_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define OVERLAY_TEE_MAX_BYTES (2ull << 30)
#define OVERLAY_TEE_NAME ".stb-descrambled.ts"

struct overlay_tee;

/* Read osd_json (NULL: none; an stb report or an array of items), create
 * dir (0755) and the kept stream's file in it. 0; CE_ARG when osd_json is
 * unreadable or bad (a usage error: said on stderr); CE_IO / CE_NOMEM
 * otherwise (said). *out NULL on error; free with overlay_tee_free. */
int overlay_tee_open(const char *dir, const char *osd_json, struct overlay_tee **out) WARN_UNUSED;
/* Append n descrambled packets (silently stops at OVERLAY_TEE_MAX_BYTES).
 * 0 or CE_IO (said on stderr). */
int overlay_tee_write(struct overlay_tee *t, const uint8_t *pkts, size_t n) WARN_UNUSED;
/* Close the kept stream, draw report_json's "osd" items (undrawable ones
 * counted and skipped) and --osd-json's, over the box's screen states of
 * ui (stb/ui.h; NULL: none), into PNG files in dir, and say per service
 * what was drawn. 0 or CE_* (said on stderr). */
struct ui_script;
int overlay_tee_finish(struct overlay_tee *t, const char *report_json, const struct ui_script *ui) WARN_UNUSED;
/* Close and remove the kept stream; NULL is a no-op. */
void overlay_tee_free(struct overlay_tee *t);

#endif
