/*
 * overlay.h - the reference box's on-screen display, as pictures: draws the
 * fingerprints and messages a CAS client reported (issue 13 items 1-3) on
 * the top layer of decoded video frames and writes them as PNG files, so an
 * auditor can see what a viewer sees on every service, clear or scrambled.
 *
 * The items come as JSON (docs/stb.md, "On-screen display"): the "osd"
 * array of the box's --report-json, or a bare array of the same objects.
 * Decoding the transport stream's video and writing PNG are FFmpeg's
 * (libavformat, libavcodec, libswscale); text is drawn with FreeType from
 * a TrueType font (DejaVu Sans Mono Bold by default). Nothing here is a
 * codec of ours.
 *
 * Layout, in the frame's pixels: a fingerprint or an "overlay" message is a
 * box at (x_pct, y_pct) of the frame (moved in so it fits), text in fg on
 * bg (bg alpha blended); "popup" is centred, 80 % of the width, text
 * wrapped; "scroll" is a band at the bottom of the frame whatever y_pct
 * says (Schedule III B.11: scrolling messages only in the lower part), the
 * text moving right to left across the item's duration. Every item whose
 * time window holds the frame's time is drawn, in list order (later on
 * top), as a box would show them together.
 */
#ifndef CASTELLAN_OVERLAY_H
#define CASTELLAN_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define OSD_TEXT_MAX_BYTES 1024      /* UTF-8 text of one item (>= 120 characters of any script) */
#define OSD_ITEMS_MAX 4096           /* items one list may hold */
#define OSD_JSON_MAX_BYTES (8u << 20) /* the JSON document (a whole stb report) */
#define OSD_FONT_PX_MIN 8
#define OSD_FONT_PX_MAX 200
#define OSD_DURATION_MS_MAX 86400000u /* one day */
#define OVERLAY_SERVICES_MAX 64      /* as the box (stb.h) */
#define OVERLAY_DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"

enum osd_kind { OSD_FINGERPRINT, OSD_MESSAGE };
enum osd_style { OSD_STYLE_OVERLAY, OSD_STYLE_SCROLL, OSD_STYLE_POPUP };

/* One fingerprint or message, as the box reported it. */
struct overlay_item {
	enum osd_kind kind;
	enum osd_style style;
	bool overt;                  /* false: covert (drawn as sent; the box shows it for its duration) */
	bool forced;                 /* the viewer cannot dismiss it (drawn the same) */
	uint16_t service;            /* program_number it was sent for; 0 = every service */
	uint8_t x_pct, y_pct;        /* top-left corner, % of the frame (0..100) */
	uint8_t fg[3];               /* text colour, RGB */
	uint8_t bg[4];               /* background, RGBA (A 0 transparent .. 255 opaque) */
	uint16_t font_px;            /* text height in the frame's pixels */
	uint64_t start_ms;           /* since the stream's start */
	uint32_t duration_ms;        /* >= 1 */
	char text[OSD_TEXT_MAX_BYTES + 1]; /* UTF-8, NUL-terminated, no NUL inside */
};

/* A caller-owned list: osd_list_init, fill, osd_list_cleanup. */
struct osd_list {
	struct overlay_item *v;
	size_t n, cap;
};

void osd_list_init(struct osd_list *l);
void osd_list_cleanup(struct osd_list *l);
/* Append a copy of *it (checked as osd_list_from_json checks). 0, CE_ARG,
 * CE_LIMIT (OSD_ITEMS_MAX) or CE_NOMEM. */
int osd_list_add(struct osd_list *l, const struct overlay_item *it) WARN_UNUSED;

/* Append the items of a JSON document of len bytes: an object with an
 * "osd" array (an stb report; no "osd" key = no items), or an array.
 * Defaults for absent fields: overt true, forced false, service 0, x_pct
 * and y_pct 5, fg #FFFFFF, bg #000000A0, font_px 24, style "overlay" for a
 * fingerprint and "popup" for a message. kind, text, start_ms and
 * duration_ms are required. Unknown keys are ignored. On any error nothing
 * is appended and *bad_index says which item (-1: the document). 0,
 * CE_FORMAT (not JSON, wrong type, bad value), CE_RANGE (a number out of
 * range), CE_LIMIT (too long, too many) or CE_NOMEM. */
int osd_list_from_json(struct osd_list *l, const char *json, size_t len, long *bad_index) WARN_UNUSED;

/* The same, but an item with a bad field is skipped and counted in
 * *skipped instead of refusing the document (the box's own report: one
 * odd event must not cost the other snapshots). 0, or CE_FORMAT / CE_LIMIT
 * for the document itself, CE_NOMEM. */
int osd_list_from_json_skip(struct osd_list *l, const char *json, size_t len, size_t *skipped) WARN_UNUSED;

/* An RGB24 picture, rows of stride bytes; owned by whoever filled it
 * (overlay_image_cleanup frees rgb). */
struct overlay_image {
	int w, h;
	size_t stride;
	uint8_t *rgb;
};

void overlay_image_cleanup(struct overlay_image *img);
/* Decode a PNG file into *img (RGB24). 0, CE_IO, CE_FORMAT, CE_NOMEM. */
int overlay_png_read(const char *path, struct overlay_image *img) WARN_UNUSED;
/* Encode *img as a PNG file (written atomically, 0644). 0 or CE_*. */
int overlay_png_write(const char *path, const struct overlay_image *img) WARN_UNUSED;

struct overlay_font;
/* Open a TrueType font (NULL: OVERLAY_DEFAULT_FONT). 0, CE_IO (no such
 * font), CE_UNSUPPORTED (FreeType refused it), CE_NOMEM. */
int overlay_font_open(const char *path, struct overlay_font **out) WARN_UNUSED;
void overlay_font_free(struct overlay_font *f);

/* Draw the items of l for service_id that are shown at at_ms on *img.
 * Returns how many were drawn (0..l->n). */
size_t overlay_draw(struct overlay_image *img, struct overlay_font *font, const struct osd_list *l,
	uint16_t service_id, uint64_t at_ms);

/* Where an item was drawn: its box (pixels, x0 <= x < x1), for tests and
 * the report. Computed as overlay_draw lays it out; 0 or CE_ARG. */
int overlay_item_box(const struct overlay_image *img, struct overlay_font *font, const struct overlay_item *it,
	uint64_t at_ms, int *x0, int *y0, int *x1, int *y1) WARN_UNUSED;

/* An extra snapshot moment for every service with video (the box's UI
 * states, stb/ui.h): the frame at at_ms (or the last one before it),
 * written as svc<ID>-<ms>ms-<tag>.png. */
struct overlay_moment {
	uint64_t at_ms;
	char tag[32];
};

struct overlay_opts {
	const char *font_path;       /* NULL: OVERLAY_DEFAULT_FONT */
	bool write_clean;            /* also write each snapshot's frame without overlay ("-clean.png") */
	/* The box's UI layer (stb/ui.h ui_layer), NULL: none. Drawn on every
	 * snapshot before the items, so the items stay on top (and before the
	 * clean twin is written: "clean" = the same state without overlay).
	 * When set, a service without decodable video (not entitled, still
	 * scrambled) is no longer skipped: each of its items is drawn on a black
	 * frame (the size of the first decoded frame, else 720x576) with the UI
	 * layer called with no_video, as svc<ID>-<ms>ms-not_entitled-<kind><i>.png
	 * (svc<ID>-00000000ms-not_entitled.png if no item applies to it). */
	void (*ui_layer)(void *ctx, struct overlay_image *img, struct overlay_font *font, uint16_t service_id,
		uint64_t at_ms, bool no_video);
	void *ui_ctx;
	const struct overlay_moment *moments; /* extra snapshots, NULL: none */
	size_t nmoments;
};

/* What overlay_snapshot did, per service of the stream's PAT. */
struct overlay_result {
	size_t nservices;
	struct overlay_service_result {
		uint16_t service_id;
		bool has_video;          /* a video stream in its PMT */
		uint64_t frames;         /* decoded without error */
		unsigned pngs;           /* written (with overlay) */
		unsigned items_drawn;    /* items of this service's snapshots */
		unsigned items_missed;   /* items for it that no decoded frame shows */
		bool blank;              /* drawn on black frames (ui_layer set, no decodable video) */
	} svc[OVERLAY_SERVICES_MAX];
	unsigned pngs;               /* all PNG files written, clean ones included */
};

/* Decode the video of every service of the (descrambled) TS file ts_path
 * and write PNG snapshots into dir (which must exist):
 *   - per item that applies to the service, the frame at start_ms +
 *     duration_ms / 2 (or the last frame shown while the item is, if the
 *     video ends first), with every item shown then drawn:
 *     svc<ID>-<ms>ms-<kind><index>.png (index in l);
 *   - a service no item applies to: its first decoded frame,
 *     svc<ID>-<ms>ms-plain.png.
 * A frame's time is its PTS minus the first PTS of the service's video
 * (the box counts items from the stream's first PCR; the two differ by the
 * stream's PTS-PCR delay, well under a second in broadcast streams).
 * A service whose video does not decode (still scrambled) gets no file and
 * frames 0. 0, or CE_FORMAT (not a TS libavformat reads), CE_IO, CE_NOMEM,
 * or the font's error. */
int overlay_snapshot(const char *ts_path, const struct osd_list *l, const char *dir,
	const struct overlay_opts *opts, struct overlay_result *res) WARN_UNUSED;

#endif
