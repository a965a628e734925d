/*
 * ui.c - the box's screen states (ui.h): the script, and the UI layer
 * drawn under the OSD items.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stb/overlay.h"
#include "stb/ui.h"

static const char *const ui_names[UI_NSTATES] = { "live", "menu", "epg", "settings", "standby", "not_entitled" };

const char *ui_state_name(enum ui_state st)
{
	return (unsigned)st < UI_NSTATES ? ui_names[st] : "unknown";
}

/* "S[.mmm]" of len bytes into ms. */
static int parse_ms(const char *s, size_t len, uint64_t *ms)
{
	uint64_t whole = 0, frac = 0;
	size_t i = 0, nd = 0, nf = 0;

	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++) {
		whole = whole * 10u + (uint64_t)(s[i] - '0');
		if (whole > UI_SCRIPT_MAX_S)
			return CE_RANGE;
	}
	if (nd == 0)
		return CE_FORMAT;
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nf++) {
			if (nf == 3)
				return CE_FORMAT;
			frac = frac * 10u + (uint64_t)(s[i] - '0');
		}
		if (nf == 0)
			return CE_FORMAT;
		for (size_t k = nf; k < 3; k++)
			frac *= 10u;
	}
	if (i != len)
		return CE_FORMAT;
	*ms = whole * 1000u + frac;
	return *ms > (uint64_t)UI_SCRIPT_MAX_S * 1000u ? CE_RANGE : 0;
}

int ui_script_parse(const char *s, struct ui_script *out)
{
	const char *p = s;
	int r;

	if (!out)
		return CE_ARG;
	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return CE_FORMAT;
	for (;;) {
		const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
		const char *colon = memchr(p, ':', (size_t)(end - p));
		size_t k;
		uint64_t ms;

		if (!colon)
			goto bad;
		if ((r = parse_ms(p, (size_t)(colon - p), &ms)) != 0)
			goto fail;
		for (k = 0; k < UI_NSTATES; k++)
			if (strlen(ui_names[k]) == (size_t)(end - colon - 1) &&
			    strncmp(colon + 1, ui_names[k], (size_t)(end - colon - 1)) == 0)
				break;
		if (k == UI_NSTATES || (out->n && ms <= out->start_ms[out->n - 1]))
			goto bad;
		if (out->n == UI_SCRIPT_MAX) {
			r = CE_LIMIT;
			goto fail;
		}
		out->start_ms[out->n] = ms;
		out->state[out->n] = (enum ui_state)k;
		out->n++;
		if (!comma)
			return 0;
		p = comma + 1;
	}
bad:
	r = CE_FORMAT;
fail:
	memset(out, 0, sizeof(*out));
	return r;
}

enum ui_state ui_state_at(const struct ui_script *sc, int64_t ms)
{
	enum ui_state st = UI_LIVE;

	if (!sc || ms < 0)
		return UI_LIVE;
	for (size_t i = 0; i < sc->n && sc->start_ms[i] <= (uint64_t)ms; i++)
		st = sc->state[i];
	return st;
}

/* ---- the UI layer ---------------------------------------------------------- */

static void fill(struct overlay_image *img, int pct_x0, int pct_y0, int pct_x1, int pct_y1, const uint8_t rgba[4])
{
	int x0 = img->w * pct_x0 / 100, x1 = img->w * pct_x1 / 100, y0 = img->h * pct_y0 / 100,
	    y1 = img->h * pct_y1 / 100;

	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++) {
			uint8_t *p = img->rgb + (size_t)y * img->stride + 3 * (size_t)x;

			for (int k = 0; k < 3; k++)
				p[k] = (uint8_t)((p[k] * (255u - rgba[3]) + rgba[k] * (unsigned)rgba[3] + 127u) / 255u);
		}
}

/* Lines of text at (x_pct, y_pct + i * step) in the frame, no background. */
static void text(struct overlay_image *img, struct overlay_font *font, int x_pct, int y_pct, int step_pct,
	const char *const *lines, size_t n, const uint8_t fg[3])
{
	static const struct overlay_item proto = { .kind = OSD_MESSAGE, .style = OSD_STYLE_OVERLAY, .overt = true,
		.duration_ms = 1, .bg = { 0, 0, 0, 0 } };
	struct osd_list l = { 0 };
	struct overlay_item *it = calloc(1, sizeof(*it));

	if (!it)
		return;
	l.v = it;
	l.n = 1;
	l.cap = 1;
	for (size_t i = 0; i < n; i++) {
		*it = proto;
		it->x_pct = (uint8_t)x_pct;
		it->y_pct = (uint8_t)(y_pct + (int)i * step_pct);
		memcpy(it->fg, fg, 3);
		it->font_px = (uint16_t)(img->h / 18 < OSD_FONT_PX_MIN ? OSD_FONT_PX_MIN : img->h / 18);
		snprintf(it->text, sizeof(it->text), "%s", lines[i]);
		(void)overlay_draw(img, font, &l, 0, 0);
	}
	free(it);
}

void ui_draw(struct overlay_image *img, struct overlay_font *font, enum ui_state st)
{
	static const uint8_t panel[4] = { 0x10, 0x20, 0x50, 0xE0 }, black[4] = { 0, 0, 0, 0xFF },
			     white[3] = { 0xFF, 0xFF, 0xFF }, grey[3] = { 0xB0, 0xB0, 0xB0 };
	static const char *const menu[] = { "MENU", "Channels", "Programme guide", "Settings", "Mail" };
	static const char *const epg[] = { "PROGRAMME GUIDE", "101  20:00 News       21:00 Film",
		"102  20:00 Sport      22:00 Music" };
	static const char *const set[] = { "SETTINGS", "Language: English", "Parental control: off",
		"Box information" };
	static const char *const ne[] = { "Service not entitled" };

	if (!img || !img->rgb || img->w <= 0 || img->h <= 0)
		return;
	switch (st) {
	case UI_MENU:
		fill(img, 4, 6, 40, 94, panel);
		text(img, font, 7, 10, 12, menu, sizeof(menu) / sizeof(menu[0]), white);
		break;
	case UI_EPG:
		fill(img, 4, 45, 96, 94, panel);
		text(img, font, 7, 50, 13, epg, sizeof(epg) / sizeof(epg[0]), white);
		break;
	case UI_SETTINGS:
		fill(img, 25, 20, 75, 80, panel);
		text(img, font, 29, 25, 12, set, sizeof(set) / sizeof(set[0]), white);
		break;
	case UI_STANDBY:
		fill(img, 0, 0, 100, 100, black);
		break;
	case UI_NOT_ENTITLED:
		fill(img, 0, 0, 100, 100, black);
		text(img, font, 30, 45, 0, ne, 1, grey);
		break;
	case UI_LIVE:
	default:
		break;
	}
}

void ui_layer(void *ctx, struct overlay_image *img, struct overlay_font *font, uint16_t service_id,
	uint64_t at_ms, bool no_video)
{
	enum ui_state st = ui_state_at(ctx, at_ms > INT64_MAX ? INT64_MAX : (int64_t)at_ms);

	(void)service_id;
	if (no_video && st == UI_LIVE)
		st = UI_NOT_ENTITLED;
	ui_draw(img, font, st);
}

/* ---- snapshots ---------------------------------------------------------------- */

/* Where in [from, to) (to 0: open) to take the state's snapshot. */
static uint64_t moment_at(const struct osd_list *l, uint64_t from, uint64_t to)
{
	for (int pass = 0; pass < 2; pass++) /* fingerprints first, then messages */
		for (size_t k = 0; l && k < l->n; k++) {
			const struct overlay_item *it = &l->v[k];
			uint64_t a = it->start_ms > from ? it->start_ms : from, b = it->start_ms + it->duration_ms;

			if ((pass == 0) != (it->kind == OSD_FINGERPRINT))
				continue;
			if (to && b > to)
				b = to;
			if (a < b)
				return a + (b - a) / 2;
		}
	return to && to - from < 1000u ? from + (to - from) / 2 : from + 500u;
}

int ui_snapshot_init(struct ui_snapshot *u, const struct ui_script *sc, const struct osd_list *l,
	struct overlay_opts *opts)
{
	memset(u, 0, sizeof(*u));
	u->opts = opts;
	opts->ui_layer = ui_layer;
	opts->ui_ctx = (void *)(uintptr_t)sc; /* read only: ui_layer takes it as const */
	opts->moments = NULL;
	opts->nmoments = 0;
	if (!sc || sc->n == 0)
		return 0;
	if (!(u->moments = calloc(UI_SCRIPT_MAX, sizeof(*u->moments))))
		return CE_NOMEM;
	for (size_t i = 0; i < sc->n && i < UI_SCRIPT_MAX; i++) {
		uint64_t from = sc->start_ms[i], to = i + 1 < sc->n ? sc->start_ms[i + 1] : 0;

		u->moments[i].at_ms = moment_at(l, from, to);
		snprintf(u->moments[i].tag, sizeof(u->moments[i].tag), "ui-%s", ui_state_name(sc->state[i]));
	}
	opts->moments = u->moments;
	opts->nmoments = sc->n;
	return 0;
}

void ui_snapshot_cleanup(struct ui_snapshot *u)
{
	if (!u)
		return;
	free(u->moments);
	u->moments = NULL;
	if (u->opts) {
		u->opts->moments = NULL;
		u->opts->nmoments = 0;
	}
}
