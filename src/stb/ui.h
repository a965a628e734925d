/*
 * ui.h - the reference box's screen states (Schedule III B.6: the
 * fingerprint appears in every state of the box). A real box is not always
 * on live video: the viewer opens the menu, the programme guide, the
 * settings, puts the box in standby (a blank screen), or tunes to a
 * service it is not entitled to (a black "not entitled" screen). The box
 * draws that UI layer itself; the OSD layer (fingerprints, messages) is
 * always composed on top of it, whatever the state.
 *
 * `castellan stb --ui-states SCRIPT` drives the states on the stream clock
 * (docs/stb.md): SCRIPT is "SECONDS:STATE,..." in increasing time, e.g.
 * "0:live,2:menu,4:epg,6:settings,8:standby" (seconds may have up to three
 * decimals); before the first entry, and with no script, the box is live.
 * A service the box cannot descramble is in the not_entitled state
 * wherever the script says live.
 *
 * This module owns the script, the state names, the UI layer's drawing
 * (FreeType text through overlay.h, panels blended over the picture, a
 * black frame for standby / not entitled) and the snapshot hook that puts
 * that layer under the items. No globals, no I/O.
 */
#ifndef CASTELLAN_STB_UI_H
#define CASTELLAN_STB_UI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define UI_SCRIPT_MAX 64            /* entries of a script */
#define UI_SCRIPT_MAX_S 86400u      /* a script entry's time: one day at most */

enum ui_state { UI_LIVE = 0, UI_MENU, UI_EPG, UI_SETTINGS, UI_STANDBY, UI_NOT_ENTITLED, UI_NSTATES };

/* A state script: entry i holds from start_ms[i] to start_ms[i + 1] (the
 * last one to the end of the stream). */
struct ui_script {
	size_t n;
	uint64_t start_ms[UI_SCRIPT_MAX];
	enum ui_state state[UI_SCRIPT_MAX];
};

/* Parse "S:STATE[,S:STATE...]" (S: seconds, up to 3 decimals, strictly
 * increasing; STATE: live, menu, epg, settings, standby, not_entitled).
 * *out is zeroed first. 0, CE_FORMAT (syntax, unknown state, times not
 * increasing), CE_RANGE (a time over UI_SCRIPT_MAX_S) or CE_LIMIT (more
 * than UI_SCRIPT_MAX entries). */
int ui_script_parse(const char *s, struct ui_script *out) WARN_UNUSED;
/* The scripted state at stream time ms (NULL script, or ms < 0 / before the
 * first entry: UI_LIVE). */
enum ui_state ui_state_at(const struct ui_script *sc, int64_t ms);
/* "live", "menu", "epg", "settings", "standby", "not_entitled". */
const char *ui_state_name(enum ui_state st);

struct overlay_image;
struct overlay_font;
struct overlay_opts;
struct overlay_moment;
/* Draw state st's UI layer on img (live: nothing; menu, epg, settings: a
 * panel with text; standby: black; not_entitled: black with a notice). */
void ui_draw(struct overlay_image *img, struct overlay_font *font, enum ui_state st);

/* The snapshot hook (overlay_opts.ui_layer, ui_ctx = the script, NULL
 * allowed): draws ui_state_at(at_ms), not_entitled instead of live on a
 * service without decodable video. */
void ui_layer(void *ctx, struct overlay_image *img, struct overlay_font *font, uint16_t service_id,
	uint64_t at_ms, bool no_video);

struct osd_list;
/* What overlay_snapshot needs to draw the box's states: the UI layer under
 * the items, and one moment per script entry ("ui-<state>": within the
 * entry, at the middle of the first item on screen then, else 500 ms in or
 * the entry's middle). Fill with ui_snapshot_init; opts points into it. */
struct ui_snapshot {
	struct overlay_opts *opts;
	struct overlay_moment *moments; /* UI_SCRIPT_MAX, malloc'd */
};
/* Set opts->ui_layer / ui_ctx / moments / nmoments for sc (NULL: the
 * layer only, no moments) and the items of l. u owns the moments until
 * ui_snapshot_cleanup. 0 or CE_NOMEM. */
int ui_snapshot_init(struct ui_snapshot *u, const struct ui_script *sc, const struct osd_list *l,
	struct overlay_opts *opts) WARN_UNUSED;
void ui_snapshot_cleanup(struct ui_snapshot *u);

/* ---- the report (ui_report.c) ---------------------------------------------- */

struct osd_log;
struct stb_report;
struct json_t;
/* The state an OSD showing happened in, for its "ui_state" in the report:
 * the scripted state at start_ms; not_entitled instead of live when the
 * showing is for one service (service != 0) that r says the box could not
 * descramble. */
enum ui_state ui_showing_state(const struct ui_script *sc, const struct stb_report *r, uint16_t service,
	int64_t start_ms);
/* The report's "ui_states" array (docs/stb.md): one object per script
 * entry (one "live" entry with no script; a "live" one first when the
 * script starts after 0) {"state", "start_ms", "end_ms" (-1: to the end),
 * "fingerprints", "messages"}: showings on screen during it (a showing
 * from before the first PCR, start_ms -1, counts from 0);
 * then one {"state": "not_entitled", "service", "start_ms": 0, "end_ms":
 * -1, "fingerprints", "messages"} per service of r the box could not
 * descramble (not_descrambled or wrong_key), counting the showings for it
 * or for every service. A new
 * reference, NULL on CE_NOMEM. */
struct json_t *ui_states_json(const struct ui_script *sc, const struct osd_log *l, const struct stb_report *r);

#endif
