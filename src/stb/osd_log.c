/*
 * osd_log.c - the box's OSD showings (osd_log.h): repetition policy,
 * random placement, a capped event list.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>
#include "stb/osd_log.h"

struct osd_track {
	uint8_t kind;
	uint32_t id;
	uint16_t service;
	uint16_t shown;
	int64_t last_ms;     /* stream time of the last showing (-1 unknown) */
	uint64_t last_wall_ms;
};

struct osd_log {
	size_t n, cap;
	struct osd_event *ev;
	uint64_t dropped;
	size_t ntrack, track_next;
	struct osd_track track[OSD_LOG_MAX_TRACKED];
};

int osd_log_new(struct osd_log **out)
{
	if (!out)
		return CE_ARG;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : CE_NOMEM;
}

void osd_log_free(struct osd_log *l)
{
	if (!l)
		return;
	free(l->ev);
	free(l);
}

static struct osd_track *track_find(struct osd_log *l, uint8_t kind, uint32_t id, uint16_t service, bool create)
{
	struct osd_track *t;

	for (size_t i = 0; i < l->ntrack; i++)
		if (l->track[i].kind == kind && l->track[i].id == id && l->track[i].service == service)
			return &l->track[i];
	if (!create)
		return NULL;
	if (l->ntrack < OSD_LOG_MAX_TRACKED) {
		t = &l->track[l->ntrack++];
	} else { /* round-robin eviction: an evicted item may show again */
		t = &l->track[l->track_next];
		l->track_next = (l->track_next + 1) % OSD_LOG_MAX_TRACKED;
	}
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->id = id;
	t->service = service;
	t->last_ms = -1;
	return t;
}

static struct osd_event *push(struct osd_log *l)
{
	if (l->n >= OSD_LOG_MAX_EVENTS) {
		l->dropped++;
		return NULL;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct osd_event *e;

		if (cap > OSD_LOG_MAX_EVENTS)
			cap = OSD_LOG_MAX_EVENTS;
		e = realloc(l->ev, cap * sizeof(*e));
		if (!e) {
			l->dropped++;
			return NULL;
		}
		l->ev = e;
		l->cap = cap;
	}
	memset(&l->ev[l->n], 0, sizeof(l->ev[0]));
	return &l->ev[l->n++];
}

/* 0..90 from the CSPRNG (the position must not be predictable to a pirate
 * who would mask it); 45 if it fails. */
static uint8_t random_pct(void)
{
	uint8_t b = 0;

	if (RAND_bytes(&b, 1) != 1)
		return 45;
	return (uint8_t)(b % 91);
}

bool osd_log_fingerprint(struct osd_log *l, int64_t start_ms, uint64_t wall_ms, uint16_t service,
	const struct osd_fingerprint *fp, const char *text)
{
	struct osd_track *t;
	struct osd_event *e;
	bool due;

	if (!l || !fp || !text)
		return false;
	t = track_find(l, OSD_KIND_FINGERPRINT, fp->fp_id, service, true);
	if (t->shown >= fp->repeat)
		return false;
	if (t->shown == 0) {
		due = true;
	} else if (start_ms >= 0) {
		/* a showing from before the stream clock started (an ECM ahead of
		 * the first PCR: -1) was at the stream's start, 0; else the repeats
		 * would fall back to the box clock, which a file played faster than
		 * real time never advances far enough */
		int64_t last = t->last_ms >= 0 ? t->last_ms : 0;

		due = start_ms >= last && (uint64_t)(start_ms - last) >= (uint64_t)fp->interval_s * 1000u;
	} else { /* no stream clock: the box clock */
		due = wall_ms >= t->last_wall_ms && wall_ms - t->last_wall_ms >= (uint64_t)fp->interval_s * 1000u;
	}
	if (!due || !(e = push(l)))
		return false;
	t->shown++;
	t->last_ms = start_ms;
	t->last_wall_ms = wall_ms;
	e->kind = OSD_KIND_FINGERPRINT;
	e->overt = !(fp->flags & OSD_FP_COVERT);
	e->covert_encoded = (fp->flags & OSD_FP_ENCODED) != 0;
	e->service = service;
	e->id = fp->fp_id;
	if (fp->flags & OSD_FP_RANDOM_POS) {
		e->x_pct = random_pct();
		e->y_pct = random_pct();
	} else {
		e->x_pct = fp->x_pct;
		e->y_pct = fp->y_pct;
	}
	memcpy(e->fg, fp->fg, 3);
	memcpy(e->bg, fp->bg, 4);
	e->font_px = fp->font_px;
	e->start_ms = start_ms;
	e->wall_ms = wall_ms;
	e->duration_ms = fp->duration_ms;
	e->style = OSD_STYLE_OVERLAY;
	e->forced = true; /* a viewer cannot dismiss a fingerprint */
	e->showing = t->shown;
	strncpy(e->text, text, OSD_MAX_TEXT_BYTES);
	e->text[OSD_MAX_TEXT_BYTES] = 0;
	return true;
}

bool osd_log_message(struct osd_log *l, int64_t start_ms, uint64_t wall_ms, const struct osd_message *m)
{
	struct osd_track *t;
	struct osd_event *e;

	if (!l || !m || m->text_len > OSD_MAX_TEXT_BYTES)
		return false;
	t = track_find(l, OSD_KIND_MESSAGE, m->msg_id, 0, true);
	if (t->shown || !(e = push(l)))
		return false;
	t->shown = 1;
	t->last_ms = start_ms;
	t->last_wall_ms = wall_ms;
	e->kind = OSD_KIND_MESSAGE;
	e->overt = true;
	e->id = m->msg_id;
	e->style = (m->flags & OSD_MSG_POPUP) ? OSD_STYLE_POPUP : OSD_STYLE_SCROLL;
	e->x_pct = e->style == OSD_STYLE_POPUP ? 10 : 0;
	e->y_pct = e->style == OSD_STYLE_POPUP ? 35 : 90;
	memcpy(e->fg, m->fg, 3);
	memcpy(e->bg, m->bg, 4);
	e->font_px = m->font_px;
	e->start_ms = start_ms;
	e->wall_ms = wall_ms;
	e->duration_ms = (uint32_t)m->duration_s * 1000u;
	e->forced = (m->flags & OSD_MSG_FORCED) != 0;
	e->scope = m->scope;
	e->expiry_s = m->expiry_s;
	e->showing = 1;
	memcpy(e->text, m->text, m->text_len);
	e->text[m->text_len] = 0;
	return true;
}

size_t osd_log_count(const struct osd_log *l)
{
	return l ? l->n : 0;
}

uint64_t osd_log_dropped(const struct osd_log *l)
{
	return l ? l->dropped : 0;
}

const struct osd_event *osd_log_get(const struct osd_log *l, size_t i)
{
	return l && i < l->n ? &l->ev[i] : NULL;
}

const char *osd_kind_name(uint8_t kind)
{
	return kind == OSD_KIND_FINGERPRINT ? "fingerprint" : kind == OSD_KIND_MESSAGE ? "message" : "unknown";
}

const char *osd_style_name(enum osd_style s)
{
	return s == OSD_STYLE_SCROLL ? "scroll" : s == OSD_STYLE_POPUP ? "popup" : "overlay";
}
