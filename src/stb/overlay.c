/*
 * overlay.c - the box's on-screen display drawn on decoded frames; see
 * overlay.h. Three parts: the item list and its JSON reader (outside data:
 * every field checked, counts and lengths capped before anything is kept),
 * the drawing (FreeType glyphs alpha-blended on an RGB24 picture), and the
 * snapshot (libavformat demuxes the TS per program, libavcodec decodes the
 * video and encodes PNG, libswscale converts to RGB24).
 */
#include <ft2build.h>
#include FT_FREETYPE_H
#include <errno.h>
#include <jansson.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "overlay.h"
#include "lib/util.h"

#define OSD_LINES_MAX 32
#define PNG_FILE_MAX_BYTES (64u << 20)

/* ---- the list and its JSON ------------------------------------------- */

void osd_list_init(struct osd_list *l)
{
	memset(l, 0, sizeof(*l));
}

void osd_list_cleanup(struct osd_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static bool item_ok(const struct overlay_item *it)
{
	size_t tl = strnlen(it->text, sizeof(it->text));

	return (it->kind == OSD_FINGERPRINT || it->kind == OSD_MESSAGE) &&
	       (it->style == OSD_STYLE_OVERLAY || it->style == OSD_STYLE_SCROLL || it->style == OSD_STYLE_POPUP) &&
	       it->x_pct <= 100 && it->y_pct <= 100 && it->font_px >= OSD_FONT_PX_MIN &&
	       it->font_px <= OSD_FONT_PX_MAX && it->duration_ms >= 1 && it->duration_ms <= OSD_DURATION_MS_MAX &&
	       tl > 0 && tl <= OSD_TEXT_MAX_BYTES;
}

int osd_list_add(struct osd_list *l, const struct overlay_item *it)
{
	if (!item_ok(it))
		return CE_ARG;
	if (l->n >= OSD_ITEMS_MAX)
		return CE_LIMIT;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct overlay_item *v;

		if (cap > OSD_ITEMS_MAX)
			cap = OSD_ITEMS_MAX;
		if (!(v = realloc(l->v, cap * sizeof(*v))))
			return CE_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *it;
	return 0;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "#RRGGBB" or "#RRGGBBAA" (alpha only when with_alpha; absent = FF). */
static int parse_colour(const json_t *v, bool with_alpha, uint8_t *out)
{
	const char *s;
	size_t n, bytes;

	if (!json_is_string(v))
		return CE_FORMAT;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 7)
		bytes = 3;
	else if (n == 9 && with_alpha)
		bytes = 4;
	else
		return CE_FORMAT;
	if (s[0] != '#')
		return CE_FORMAT;
	for (size_t i = 0; i < bytes; i++) {
		int hi = hex_nibble(s[1 + 2 * i]), lo = hex_nibble(s[2 + 2 * i]);

		if (hi < 0 || lo < 0)
			return CE_FORMAT;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (with_alpha && bytes == 3)
		out[3] = 0xFF;
	return 0;
}

/* An integer field in [lo, hi]; absent: *out unchanged unless required. */
static int get_int(const json_t *o, const char *key, bool required, json_int_t lo, json_int_t hi, json_int_t *out)
{
	const json_t *v = json_object_get(o, key);

	if (!v)
		return required ? CE_FORMAT : 0;
	if (!json_is_integer(v))
		return CE_FORMAT;
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return CE_RANGE;
	*out = json_integer_value(v);
	return 0;
}

static int get_bool(const json_t *o, const char *key, bool *out)
{
	const json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return CE_FORMAT;
	*out = json_is_true(v);
	return 0;
}

static int item_from_json(const json_t *o, struct overlay_item *it)
{
	const json_t *v;
	json_int_t n;
	int r;

	memset(it, 0, sizeof(*it));
	if (!json_is_object(o))
		return CE_FORMAT;
	it->overt = true;
	it->x_pct = it->y_pct = 5;
	memset(it->fg, 0xFF, sizeof(it->fg));
	it->bg[3] = 0xA0;
	it->font_px = 24;
	v = json_object_get(o, "kind");
	if (!json_is_string(v))
		return CE_FORMAT;
	if (strcmp(json_string_value(v), "fingerprint") == 0)
		it->kind = OSD_FINGERPRINT;
	else if (strcmp(json_string_value(v), "message") == 0)
		it->kind = OSD_MESSAGE;
	else
		return CE_FORMAT;
	it->style = it->kind == OSD_FINGERPRINT ? OSD_STYLE_OVERLAY : OSD_STYLE_POPUP;
	if ((v = json_object_get(o, "style")) != NULL) {
		const char *s = json_is_string(v) ? json_string_value(v) : "";

		if (strcmp(s, "overlay") == 0)
			it->style = OSD_STYLE_OVERLAY;
		else if (strcmp(s, "scroll") == 0)
			it->style = OSD_STYLE_SCROLL;
		else if (strcmp(s, "popup") == 0)
			it->style = OSD_STYLE_POPUP;
		else
			return CE_FORMAT;
	}
	v = json_object_get(o, "text");
	if (!json_is_string(v))
		return CE_FORMAT;
	n = (json_int_t)json_string_length(v);
	if (n == 0 || strlen(json_string_value(v)) != (size_t)n)
		return CE_FORMAT; /* empty, or a \u0000 inside */
	if (n > OSD_TEXT_MAX_BYTES)
		return CE_LIMIT;
	memcpy(it->text, json_string_value(v), (size_t)n);
	if ((r = get_bool(o, "overt", &it->overt)) != 0 || (r = get_bool(o, "forced", &it->forced)) != 0)
		return r;
	n = 0;
	if ((r = get_int(o, "service", false, 0, 0xFFFF, &n)) != 0)
		return r;
	it->service = (uint16_t)n;
	n = it->x_pct;
	if ((r = get_int(o, "x_pct", false, 0, 100, &n)) != 0)
		return r;
	it->x_pct = (uint8_t)n;
	n = it->y_pct;
	if ((r = get_int(o, "y_pct", false, 0, 100, &n)) != 0)
		return r;
	it->y_pct = (uint8_t)n;
	n = it->font_px;
	if ((r = get_int(o, "font_px", false, OSD_FONT_PX_MIN, OSD_FONT_PX_MAX, &n)) != 0)
		return r;
	it->font_px = (uint16_t)n;
	if ((r = get_int(o, "start_ms", true, 0, (json_int_t)1 << 53, &n)) != 0)
		return r;
	it->start_ms = (uint64_t)n;
	if ((r = get_int(o, "duration_ms", true, 1, OSD_DURATION_MS_MAX, &n)) != 0)
		return r;
	it->duration_ms = (uint32_t)n;
	if ((v = json_object_get(o, "fg")) != NULL && (r = parse_colour(v, false, it->fg)) != 0)
		return r;
	if ((v = json_object_get(o, "bg")) != NULL && (r = parse_colour(v, true, it->bg)) != 0)
		return r;
	return 0;
}

static int from_json(struct osd_list *l, const char *json, size_t len, long *bad_index, size_t *skipped)
{
	json_error_t jerr;
	json_t *doc = NULL;
	const json_t *arr;
	size_t n0 = l->n;
	int r = CE_FORMAT;

	*bad_index = -1;
	if (len > OSD_JSON_MAX_BYTES)
		return CE_LIMIT;
	if (!(doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)))
		return CE_FORMAT;
	if (json_is_object(doc)) {
		arr = json_object_get(doc, "osd");
		if (!arr) {
			r = 0; /* a report without items */
			goto out;
		}
	} else {
		arr = doc;
	}
	if (!json_is_array(arr))
		goto out;
	if (json_array_size(arr) > OSD_ITEMS_MAX - l->n) {
		r = CE_LIMIT;
		goto out;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct overlay_item it;

		*bad_index = (long)i;
		r = item_from_json(json_array_get(arr, i), &it);
		if (r == CE_FORMAT || r == CE_RANGE || r == CE_LIMIT) {
			if (!skipped)
				goto out;
			(*skipped)++;
			continue;
		}
		if (r != 0 || (r = osd_list_add(l, &it)) != 0)
			goto out;
	}
	*bad_index = -1;
	r = 0;
out:
	if (r != 0)
		l->n = n0;
	json_decref(doc);
	return r;
}

int osd_list_from_json(struct osd_list *l, const char *json, size_t len, long *bad_index)
{
	return from_json(l, json, len, bad_index, NULL);
}

int osd_list_from_json_skip(struct osd_list *l, const char *json, size_t len, size_t *skipped)
{
	long bad;

	*skipped = 0;
	return from_json(l, json, len, &bad, skipped);
}

/* ---- pictures and PNG -------------------------------------------------- */

void overlay_image_cleanup(struct overlay_image *img)
{
	free(img->rgb);
	memset(img, 0, sizeof(*img));
}

static int image_alloc(struct overlay_image *img, int w, int h)
{
	memset(img, 0, sizeof(*img));
	if (w <= 0 || h <= 0 || w > 16384 || h > 16384)
		return CE_RANGE;
	img->w = w;
	img->h = h;
	img->stride = (size_t)w * 3;
	if (!(img->rgb = calloc((size_t)h, img->stride)))
		return CE_NOMEM;
	return 0;
}

/* A decoded AVFrame of any pixel format into *img (RGB24, allocated). */
static int image_from_frame(const AVFrame *f, struct SwsContext **sws, struct overlay_image *img)
{
	uint8_t *dst[4] = { 0 };
	int dst_ls[4] = { 0 };
	int r;

	if ((r = image_alloc(img, f->width, f->height)) != 0)
		return r;
	*sws = sws_getCachedContext(*sws, f->width, f->height, (enum AVPixelFormat)f->format, f->width, f->height,
		AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
	if (!*sws) {
		overlay_image_cleanup(img);
		return CE_UNSUPPORTED;
	}
	dst[0] = img->rgb;
	dst_ls[0] = (int)img->stride;
	sws_scale(*sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_ls);
	return 0;
}

int overlay_png_write(const char *path, const struct overlay_image *img)
{
	const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
	AVCodecContext *ctx = NULL;
	AVFrame *f = NULL;
	AVPacket *pkt = NULL;
	int r = CE_UNSUPPORTED;

	if (!codec)
		return CE_UNSUPPORTED;
	if (!(ctx = avcodec_alloc_context3(codec)) || !(f = av_frame_alloc()) || !(pkt = av_packet_alloc())) {
		r = CE_NOMEM;
		goto out;
	}
	ctx->width = img->w;
	ctx->height = img->h;
	ctx->pix_fmt = AV_PIX_FMT_RGB24;
	ctx->time_base = (AVRational){ 1, 25 };
	if (avcodec_open2(ctx, codec, NULL) < 0)
		goto out;
	f->format = AV_PIX_FMT_RGB24;
	f->width = img->w;
	f->height = img->h;
	f->data[0] = img->rgb;
	f->linesize[0] = (int)img->stride;
	if (avcodec_send_frame(ctx, f) < 0 || avcodec_receive_packet(ctx, pkt) < 0) {
		r = CE_FORMAT;
		goto out;
	}
	r = file_write_atomic(path, pkt->data, (size_t)pkt->size, 0644);
out:
	av_packet_free(&pkt);
	av_frame_free(&f);
	avcodec_free_context(&ctx);
	return r;
}

int overlay_png_read(const char *path, struct overlay_image *img)
{
	const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_PNG);
	AVCodecContext *ctx = NULL;
	AVFrame *f = NULL;
	AVPacket *pkt = NULL;
	struct SwsContext *sws = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	memset(img, 0, sizeof(*img));
	if (!codec)
		return CE_UNSUPPORTED;
	if ((r = file_read_all(path, PNG_FILE_MAX_BYTES, &data, &len)) != 0)
		return r;
	r = CE_NOMEM;
	if (!(ctx = avcodec_alloc_context3(codec)) || !(f = av_frame_alloc()) || !(pkt = av_packet_alloc()) ||
	    av_new_packet(pkt, (int)len) < 0)
		goto out;
	memcpy(pkt->data, data, len);
	r = CE_FORMAT;
	if (avcodec_open2(ctx, codec, NULL) < 0 || avcodec_send_packet(ctx, pkt) < 0 ||
	    avcodec_receive_frame(ctx, f) < 0)
		goto out;
	r = image_from_frame(f, &sws, img);
out:
	sws_freeContext(sws);
	av_packet_free(&pkt);
	av_frame_free(&f);
	avcodec_free_context(&ctx);
	free(data);
	return r;
}

/* ---- text ---------------------------------------------------------------- */

struct overlay_font {
	FT_Library lib;
	FT_Face face;
	unsigned px; /* the size set last */
};

int overlay_font_open(const char *path, struct overlay_font **out)
{
	struct overlay_font *f;

	*out = NULL;
	if (!path)
		path = OVERLAY_DEFAULT_FONT;
	if (access(path, R_OK) != 0)
		return CE_IO;
	if (!(f = calloc(1, sizeof(*f))))
		return CE_NOMEM;
	if (FT_Init_FreeType(&f->lib) != 0) {
		free(f);
		return CE_NOMEM;
	}
	if (FT_New_Face(f->lib, path, 0, &f->face) != 0) {
		FT_Done_FreeType(f->lib);
		free(f);
		return CE_UNSUPPORTED;
	}
	*out = f;
	return 0;
}

void overlay_font_free(struct overlay_font *f)
{
	if (!f)
		return;
	FT_Done_Face(f->face);
	FT_Done_FreeType(f->lib);
	free(f);
}

static void font_size(struct overlay_font *f, unsigned px)
{
	if (f->px != px && FT_Set_Pixel_Sizes(f->face, 0, px) == 0)
		f->px = px;
}

static int glyph_advance(struct overlay_font *f, uint32_t cp)
{
	if (FT_Load_Char(f->face, cp, FT_LOAD_DEFAULT) != 0)
		return 0;
	return (int)(f->face->glyph->advance.x >> 6);
}

/* UTF-8 to code points; a bad sequence is U+FFFD, one byte consumed. */
static size_t utf8_decode(const char *s, uint32_t *cp, size_t max)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = 0, len = strlen(s), i = 0;

	while (i < len && n < max) {
		uint32_t c = p[i];
		size_t need = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
		uint32_t min = need == 1 ? 0x80 : need == 2 ? 0x800 : 0x10000;

		if (need == 0) {
			cp[n++] = c;
			i++;
			continue;
		}
		if (need > 3 || need > len - i - 1) {
			cp[n++] = 0xFFFD;
			i++;
			continue;
		}
		c &= 0x3F >> need;
		for (size_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xC0) != 0x80) {
				c = 0xFFFFFFFF;
				break;
			}
			c = c << 6 | (p[i + k] & 0x3F);
		}
		if (c == 0xFFFFFFFF || c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
			cp[n++] = 0xFFFD;
			i++;
			continue;
		}
		cp[n++] = c;
		i += need + 1;
	}
	return n;
}

/* Where an item goes on a w x h picture at at_ms. */
struct layout {
	int x0, y0, x1, y1;          /* the background box */
	int pad, line_h, ascent;
	int text_x;                  /* scroll: the text's left edge (may be off the frame) */
	bool scroll;
	size_t nlines, line_from[OSD_LINES_MAX], line_to[OSD_LINES_MAX];
	size_t ncp;
	uint32_t cp[OSD_TEXT_MAX_BYTES];
};

static int line_width(struct overlay_font *f, const uint32_t *cp, size_t from, size_t to)
{
	int w = 0;

	for (size_t i = from; i < to; i++)
		w += glyph_advance(f, cp[i]);
	return w;
}

/* Greedy word wrap into lines no wider than max_w (a word wider than that
 * is cut between characters). */
static void wrap(struct overlay_font *f, struct layout *L, int max_w)
{
	size_t i = 0;

	L->nlines = 0;
	while (i < L->ncp && L->nlines < OSD_LINES_MAX) {
		size_t start = i, end, last_space = SIZE_MAX;
		int w = 0;

		while (i < L->ncp && L->cp[i] != '\n') {
			int aw = glyph_advance(f, L->cp[i]);

			if (w + aw > max_w && i > start) {
				if (last_space != SIZE_MAX && last_space > start)
					i = last_space;
				break;
			}
			if (L->cp[i] == ' ')
				last_space = i;
			w += aw;
			i++;
		}
		end = i;
		if (i < L->ncp && (L->cp[i] == ' ' || L->cp[i] == '\n'))
			i++;
		L->line_from[L->nlines] = start;
		L->line_to[L->nlines] = end;
		L->nlines++;
	}
}

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void lay_out(const struct overlay_image *img, struct overlay_font *f, const struct overlay_item *it,
	uint64_t at_ms, struct layout *L)
{
	int W = img->w, H = img->h, widest = 0, bw, bh;

	memset(L, 0, offsetof(struct layout, cp));
	font_size(f, it->font_px);
	L->ncp = utf8_decode(it->text, L->cp, OSD_TEXT_MAX_BYTES);
	L->line_h = (int)(f->face->size->metrics.height >> 6);
	L->ascent = (int)(f->face->size->metrics.ascender >> 6);
	L->pad = it->font_px / 4 + 2;
	if (it->style == OSD_STYLE_SCROLL) {
		uint64_t el = at_ms > it->start_ms ? at_ms - it->start_ms : 0;
		int tw;

		for (size_t i = 0; i < L->ncp; i++)
			if (L->cp[i] == '\n')
				L->cp[i] = ' ';
		L->scroll = true;
		L->nlines = 1;
		L->line_from[0] = 0;
		L->line_to[0] = L->ncp;
		tw = line_width(f, L->cp, 0, L->ncp);
		if (el > it->duration_ms)
			el = it->duration_ms;
		L->text_x = W - (int)((int64_t)(W + tw) * (int64_t)el / (int64_t)it->duration_ms);
		L->x0 = 0;
		L->x1 = W;
		L->y1 = H - H * 4 / 100;
		L->y0 = L->y1 - L->line_h - 2 * L->pad;
		if (L->y0 < H / 2) /* a huge font: still the lower half */
			L->y0 = H / 2;
		return;
	}
	if (it->style == OSD_STYLE_POPUP) {
		bw = W * 8 / 10;
		wrap(f, L, bw - 2 * L->pad);
		bh = (int)L->nlines * L->line_h + 2 * L->pad;
		L->x0 = (W - bw) / 2;
		L->y0 = clampi((H - bh) / 2, 0, H);
		L->x1 = L->x0 + bw;
		L->y1 = clampi(L->y0 + bh, 0, H);
		return;
	}
	wrap(f, L, W * 9 / 10 - 2 * L->pad);
	for (size_t i = 0; i < L->nlines; i++) {
		int w = line_width(f, L->cp, L->line_from[i], L->line_to[i]);

		if (w > widest)
			widest = w;
	}
	bw = widest + 2 * L->pad;
	bh = (int)L->nlines * L->line_h + 2 * L->pad;
	L->x0 = clampi(it->x_pct * W / 100, 0, W - bw > 0 ? W - bw : 0);
	L->y0 = clampi(it->y_pct * H / 100, 0, H - bh > 0 ? H - bh : 0);
	L->x1 = clampi(L->x0 + bw, 0, W);
	L->y1 = clampi(L->y0 + bh, 0, H);
}

static inline uint8_t blend(uint8_t dst, uint8_t src, unsigned a)
{
	return (uint8_t)((src * a + dst * (255 - a) + 127) / 255);
}

static void fill_box(struct overlay_image *img, const struct layout *L, const uint8_t rgba[4])
{
	for (int y = L->y0; y < L->y1; y++) {
		uint8_t *row = img->rgb + (size_t)y * img->stride;

		for (int x = L->x0; x < L->x1; x++)
			for (int c = 0; c < 3; c++)
				row[3 * x + c] = blend(row[3 * x + c], rgba[c], rgba[3]);
	}
}

/* One line of text with its pen at (x, baseline), clipped to the box. */
static void draw_line(struct overlay_image *img, struct overlay_font *f, const struct layout *L, size_t from,
	size_t to, int x, int baseline, const uint8_t fg[3])
{
	for (size_t i = from; i < to; i++) {
		FT_GlyphSlot g;

		if (x >= L->x1)
			break;
		if (FT_Load_Char(f->face, L->cp[i], FT_LOAD_RENDER) != 0)
			continue;
		g = f->face->glyph;
		for (unsigned r = 0; r < g->bitmap.rows; r++) {
			int y = baseline - g->bitmap_top + (int)r;

			if (y < L->y0 || y >= L->y1)
				continue;
			for (unsigned c = 0; c < g->bitmap.width; c++) {
				int px = x + g->bitmap_left + (int)c;
				unsigned a = g->bitmap.buffer[(size_t)r * (size_t)g->bitmap.pitch + c];
				uint8_t *p;

				if (px < L->x0 || px >= L->x1 || a == 0)
					continue;
				p = img->rgb + (size_t)y * img->stride + 3 * (size_t)px;
				for (int k = 0; k < 3; k++)
					p[k] = blend(p[k], fg[k], a);
			}
		}
		x += (int)(g->advance.x >> 6);
	}
}

static bool shown_at(const struct overlay_item *it, uint16_t service_id, uint64_t at_ms)
{
	return (it->service == 0 || it->service == service_id) && at_ms >= it->start_ms &&
	       at_ms - it->start_ms < it->duration_ms;
}

int overlay_item_box(const struct overlay_image *img, struct overlay_font *font, const struct overlay_item *it,
	uint64_t at_ms, int *x0, int *y0, int *x1, int *y1)
{
	struct layout *L;

	if (!img->rgb || !font || !item_ok(it) || !(L = malloc(sizeof(*L))))
		return CE_ARG;
	lay_out(img, font, it, at_ms, L);
	*x0 = L->x0;
	*y0 = L->y0;
	*x1 = L->x1;
	*y1 = L->y1;
	free(L);
	return 0;
}

size_t overlay_draw(struct overlay_image *img, struct overlay_font *font, const struct osd_list *l,
	uint16_t service_id, uint64_t at_ms)
{
	struct layout *L = malloc(sizeof(*L));
	size_t drawn = 0;

	if (!L)
		return 0;
	for (size_t k = 0; k < l->n; k++) {
		const struct overlay_item *it = &l->v[k];

		if (!shown_at(it, service_id, at_ms) || !item_ok(it))
			continue;
		lay_out(img, font, it, at_ms, L);
		fill_box(img, L, it->bg);
		for (size_t i = 0; i < L->nlines; i++) {
			int baseline = L->y0 + L->pad + L->ascent + (int)i * L->line_h;
			int x = L->scroll ? L->text_x : L->x0 + L->pad;

			draw_line(img, font, L, L->line_from[i], L->line_to[i], x, baseline, it->fg);
		}
		drawn++;
	}
	free(L);
	return drawn;
}

/* ---- snapshots ------------------------------------------------------------ */

struct target {
	size_t item;                 /* index in the list (an item's target) */
	const struct overlay_moment *moment; /* or a moment of opts (UI states) */
	uint64_t at_ms;              /* the frame wanted */
	AVFrame *cand;               /* the last frame seen while the item is shown ... */
	bool have_cand;              /* ... if any */
	uint64_t cand_ms;
	bool done;
};

struct svc {
	uint16_t id;
	int stream;                  /* -1: no video */
	AVCodecContext *dec;
	int64_t first_ts;
	bool have_first, plain_done;
	struct target *t;
	size_t nt;
	struct overlay_service_result *res;
};

struct snap {
	const struct osd_list *l;
	const char *dir;
	const struct overlay_opts *opts;
	struct overlay_font *font;
	struct SwsContext *sws;
	struct overlay_result *res;
	int w, h;                    /* the first decoded frame's size (blank frames) */
};

static const char *kind_name(enum osd_kind k)
{
	return k == OSD_FINGERPRINT ? "fingerprint" : "message";
}

/* Write the frame f at t_ms of service s: clean (if asked) and with the
 * items shown then. tag names the file ("fingerprint3", "plain"). */
static int snap_write_img(struct snap *S, struct svc *s, struct overlay_image *img_p, uint64_t t_ms,
	const char *tag, bool no_video)
{
	struct overlay_image img = *img_p;
	char path[4096];
	int n, r;

	if (S->opts->ui_layer) /* the box's UI state under the items */
		S->opts->ui_layer(S->opts->ui_ctx, &img, S->font, s->id, t_ms, no_video);
	if (S->opts->write_clean) {
		n = snprintf(path, sizeof(path), "%s/svc%u-%08llums-%s-clean.png", S->dir, s->id,
			(unsigned long long)t_ms, tag);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			r = CE_RANGE;
			goto out;
		}
		if ((r = overlay_png_write(path, &img)) != 0)
			goto out;
		S->res->pngs++;
	}
	s->res->items_drawn += (unsigned)overlay_draw(&img, S->font, S->l, s->id, t_ms);
	n = snprintf(path, sizeof(path), "%s/svc%u-%08llums-%s.png", S->dir, s->id, (unsigned long long)t_ms, tag);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		r = CE_RANGE;
		goto out;
	}
	if ((r = overlay_png_write(path, &img)) != 0)
		goto out;
	S->res->pngs++;
	s->res->pngs++;
out:
	return r;
}

static int snap_write(struct snap *S, struct svc *s, const AVFrame *f, uint64_t t_ms, const char *tag)
{
	struct overlay_image img;
	int r;

	if ((r = image_from_frame(f, &S->sws, &img)) != 0)
		return r;
	if (S->w == 0) {
		S->w = img.w;
		S->h = img.h;
	}
	r = snap_write_img(S, s, &img, t_ms, tag, false);
	overlay_image_cleanup(&img);
	return r;
}

static int target_finish(struct snap *S, struct svc *s, struct target *t)
{
	char tag[32];

	t->done = true;
	if (!t->have_cand) {
		if (!t->moment)
			s->res->items_missed++;
		return 0;
	}
	if (t->moment)
		snprintf(tag, sizeof(tag), "%s", t->moment->tag);
	else
		snprintf(tag, sizeof(tag), "%s%zu", kind_name(S->l->v[t->item].kind), t->item);
	return snap_write(S, s, t->cand, t->cand_ms, tag);
}

static int on_frame(struct snap *S, struct svc *s, AVFrame *f, AVRational tb)
{
	int64_t ts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
	uint64_t t_ms;
	int r;

	if (ts == AV_NOPTS_VALUE || (f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags)
		return 0;
	if (!s->have_first) {
		s->first_ts = ts;
		s->have_first = true;
	}
	if (ts < s->first_ts)
		return 0; /* reordered before the first: not a moment of ours */
	t_ms = (uint64_t)av_rescale_q(ts - s->first_ts, tb, (AVRational){ 1, 1000 });
	s->res->frames++;
	if (s->nt == 0 && !s->plain_done) {
		s->plain_done = true;
		return snap_write(S, s, f, t_ms, "plain");
	}
	for (size_t k = 0; k < s->nt; k++) {
		struct target *t = &s->t[k];

		if (t->done)
			continue;
		if (t->moment ? t_ms <= t->at_ms : shown_at(&S->l->v[t->item], s->id, t_ms)) {
			av_frame_unref(t->cand);
			if (av_frame_ref(t->cand, f) < 0)
				return CE_NOMEM;
			t->have_cand = true;
			t->cand_ms = t_ms;
		}
		if (t_ms >= t->at_ms && (r = target_finish(S, s, t)) != 0)
			return r;
		if (t->done)
			av_frame_free(&t->cand);
	}
	return 0;
}

/* A service without decodable video, when the box draws its UI: each item
 * for it at the middle of its time on a black frame with the UI layer
 * (not entitled), or one such frame at 0 if none applies. */
static int snap_blank(struct snap *S, struct svc *s)
{
	struct overlay_image img = { 0 };
	char tag[48];
	bool any = false;
	int r = 0;

	s->res->blank = true;
	for (size_t k = 0; k <= S->l->n && r == 0; k++) {
		const struct overlay_item *it = k < S->l->n ? &S->l->v[k] : NULL;
		uint64_t at = 0;

		if (it && it->service != 0 && it->service != s->id)
			continue;
		if (!it && any)
			break;
		if (it) {
			at = it->start_ms + it->duration_ms / 2;
			snprintf(tag, sizeof(tag), "not_entitled-%s%zu", kind_name(it->kind), k);
		} else {
			snprintf(tag, sizeof(tag), "not_entitled");
		}
		any = true;
		if ((r = image_alloc(&img, S->w ? S->w : 720, S->h ? S->h : 576)) != 0)
			break;
		memset(img.rgb, 0, img.stride * (size_t)img.h);
		r = snap_write_img(S, s, &img, at, tag, true);
		overlay_image_cleanup(&img);
	}
	return r;
}

static int decode_packet(struct snap *S, struct svc *s, const AVPacket *pkt, AVFrame *f, AVRational tb)
{
	int r = 0;

	if (avcodec_send_packet(s->dec, pkt) < 0)
		return 0; /* a broken packet (e.g. still scrambled): skipped */
	while (avcodec_receive_frame(s->dec, f) == 0) {
		r = on_frame(S, s, f, tb);
		av_frame_unref(f);
		if (r != 0)
			return r;
	}
	return 0;
}

static int svc_open(AVFormatContext *fmt, struct svc *s, const struct osd_list *l, const struct overlay_opts *o)
{
	const AVCodec *codec;
	AVStream *st;

	if (s->stream < 0)
		return 0;
	st = fmt->streams[s->stream];
	s->nt = o->moments ? o->nmoments : 0;
	for (size_t k = 0; k < l->n; k++)
		if (l->v[k].service == 0 || l->v[k].service == s->id)
			s->nt++;
	if (s->nt && !(s->t = calloc(s->nt, sizeof(*s->t))))
		return CE_NOMEM;
	s->nt = 0;
	for (size_t k = 0; k < l->n; k++) {
		struct target *t;

		if (l->v[k].service != 0 && l->v[k].service != s->id)
			continue;
		t = &s->t[s->nt++];
		t->item = k;
		t->at_ms = l->v[k].start_ms + l->v[k].duration_ms / 2;
		if (!(t->cand = av_frame_alloc()))
			return CE_NOMEM;
	}
	for (size_t k = 0; o->moments && k < o->nmoments; k++) {
		struct target *t = &s->t[s->nt++];

		t->moment = &o->moments[k];
		t->at_ms = o->moments[k].at_ms;
		if (!(t->cand = av_frame_alloc()))
			return CE_NOMEM;
	}
	if (!(codec = avcodec_find_decoder(st->codecpar->codec_id)))
		return 0; /* not decodable (unknown or no parameters): no frames */
	if (!(s->dec = avcodec_alloc_context3(codec)))
		return CE_NOMEM;
	if (avcodec_parameters_to_context(s->dec, st->codecpar) < 0 || avcodec_open2(s->dec, codec, NULL) < 0)
		avcodec_free_context(&s->dec);
	return 0;
}

int overlay_snapshot(const char *ts_path, const struct osd_list *l, const char *dir,
	const struct overlay_opts *opts, struct overlay_result *res)
{
	static const struct overlay_opts no_opts;
	struct snap S = { .l = l, .dir = dir, .opts = opts ? opts : &no_opts, .res = res };
	AVFormatContext *fmt = NULL;
	AVPacket *pkt = NULL;
	AVFrame *f = NULL;
	struct svc svc[OVERLAY_SERVICES_MAX];
	size_t nsvc = 0;
	int r;

	memset(res, 0, sizeof(*res));
	memset(svc, 0, sizeof(svc));
	av_log_set_level(AV_LOG_QUIET); /* a scrambled service's video is noise to the decoder */
	if ((r = overlay_font_open(S.opts->font_path, &S.font)) != 0)
		return r;
	r = CE_FORMAT;
	if (avformat_open_input(&fmt, ts_path, av_find_input_format("mpegts"), NULL) < 0)
		goto out;
	if (avformat_find_stream_info(fmt, NULL) < 0)
		goto out;
	for (unsigned i = 0; i < fmt->nb_streams; i++)
		fmt->streams[i]->discard = AVDISCARD_ALL;
	for (unsigned p = 0; p < fmt->nb_programs && nsvc < OVERLAY_SERVICES_MAX; p++) {
		const AVProgram *pg = fmt->programs[p];
		struct svc *s = &svc[nsvc];

		if (pg->program_num <= 0 || pg->program_num > 0xFFFF)
			continue;
		s->id = (uint16_t)pg->program_num;
		s->stream = -1;
		s->res = &res->svc[nsvc];
		s->res->service_id = s->id;
		for (unsigned k = 0; k < pg->nb_stream_indexes; k++) {
			unsigned si = pg->stream_index[k];

			if (si < fmt->nb_streams && fmt->streams[si]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
				s->stream = (int)si;
				fmt->streams[si]->discard = AVDISCARD_DEFAULT;
				s->res->has_video = true;
				break;
			}
		}
		nsvc++;
		if ((r = svc_open(fmt, s, l, S.opts)) != 0)
			goto out;
	}
	res->nservices = nsvc;
	r = CE_NOMEM;
	if (!(pkt = av_packet_alloc()) || !(f = av_frame_alloc()))
		goto out;
	while (av_read_frame(fmt, pkt) >= 0) {
		r = 0;
		for (size_t i = 0; i < nsvc && r == 0; i++)
			if (svc[i].dec && svc[i].stream == pkt->stream_index)
				r = decode_packet(&S, &svc[i], pkt, f, fmt->streams[pkt->stream_index]->time_base);
		av_packet_unref(pkt);
		if (r != 0)
			goto out;
	}
	for (size_t i = 0; i < nsvc; i++) {
		struct svc *s = &svc[i];

		if (s->dec && (r = decode_packet(&S, s, NULL, f, fmt->streams[s->stream]->time_base)) != 0)
			goto out; /* drain */
		for (size_t k = 0; k < s->nt; k++)
			if (!s->t[k].done && (r = target_finish(&S, s, &s->t[k])) != 0)
				goto out;
	}
	for (size_t i = 0; S.opts->ui_layer && i < nsvc; i++)
		if (svc[i].res->has_video && svc[i].res->frames == 0 && (r = snap_blank(&S, &svc[i])) != 0)
			goto out;
	r = 0;
out:
	for (size_t i = 0; i < OVERLAY_SERVICES_MAX; i++) {
		for (size_t k = 0; k < svc[i].nt; k++)
			av_frame_free(&svc[i].t[k].cand);
		free(svc[i].t);
		avcodec_free_context(&svc[i].dec);
	}
	av_frame_free(&f);
	av_packet_free(&pkt);
	avformat_close_input(&fmt);
	sws_freeContext(S.sws);
	overlay_font_free(S.font);
	return r;
}
