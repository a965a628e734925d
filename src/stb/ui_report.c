/*
 * ui_report.c - the box's screen states in its report (ui.h): the state of
 * each OSD showing and the "ui_states" array of `stb --report-json`.
 */
#include <jansson.h>
#include "stb/osd_log.h"
#include "stb/stb.h"
#include "stb/ui.h"

/* What a viewer gets on it is the black not-entitled screen: nothing
 * descrambled, or nothing descrambled right. */
static bool blank_state(enum stb_svc_state st)
{
	return st == STB_SVC_NOT_DESCRAMBLED || st == STB_SVC_WRONG_KEY;
}

static bool not_entitled(const struct stb_report *r, uint16_t service)
{
	for (size_t i = 0; r && i < r->nservices && i < STB_MAX_SERVICES; i++)
		if (r->svc[i].service_id == service)
			return blank_state(r->svc[i].state);
	return false;
}

enum ui_state ui_showing_state(const struct ui_script *sc, const struct stb_report *r, uint16_t service,
	int64_t start_ms)
{
	enum ui_state st = ui_state_at(sc, start_ms);

	if (st == UI_LIVE && service != 0 && not_entitled(r, service))
		st = UI_NOT_ENTITLED;
	return st;
}

/* Showings of l on screen during [from, to) (to < 0: to the end) for
 * service (0: any), counted per kind. */
static void count(const struct osd_log *l, int64_t from, int64_t to, bool one_service, uint16_t service,
	json_int_t *fps, json_int_t *msgs)
{
	*fps = *msgs = 0;
	for (size_t i = 0; i < osd_log_count(l); i++) {
		const struct osd_event *e = osd_log_get(l, i);
		int64_t s = e->start_ms < 0 ? 0 : e->start_ms, end = s + (int64_t)e->duration_ms;

		if (one_service && e->service != 0 && e->service != service)
			continue;
		if ((to >= 0 && s >= to) || end <= from)
			continue;
		if (e->kind == OSD_KIND_FINGERPRINT)
			(*fps)++;
		else
			(*msgs)++;
	}
}

static json_t *entry(const char *state, int64_t from, int64_t to, json_int_t fps, json_int_t msgs)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I}", "state", state, "start_ms", (json_int_t)from, "end_ms",
		(json_int_t)to, "fingerprints", fps, "messages", msgs);
}

json_t *ui_states_json(const struct ui_script *sc, const struct osd_log *l, const struct stb_report *r)
{
	json_t *arr = json_array(), *o;
	json_int_t fps, msgs;
	size_t n = sc && sc->n ? sc->n : 1;

	if (!arr)
		return NULL;
	if (sc && sc->n && sc->start_ms[0] > 0) { /* live before the first entry */
		count(l, 0, (int64_t)sc->start_ms[0], false, 0, &fps, &msgs);
		o = entry(ui_state_name(UI_LIVE), 0, (int64_t)sc->start_ms[0], fps, msgs);
		if (!o || json_array_append_new(arr, o) != 0)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t from = sc && sc->n ? (int64_t)sc->start_ms[i] : 0;
		int64_t to = sc && i + 1 < sc->n ? (int64_t)sc->start_ms[i + 1] : -1;

		count(l, from, to, false, 0, &fps, &msgs);
		o = entry(ui_state_name(sc && sc->n ? sc->state[i] : UI_LIVE), from, to, fps, msgs);
		if (!o || json_array_append_new(arr, o) != 0)
			goto fail;
	}
	for (size_t i = 0; r && i < r->nservices && i < STB_MAX_SERVICES; i++) {
		if (!blank_state(r->svc[i].state))
			continue;
		count(l, 0, -1, true, r->svc[i].service_id, &fps, &msgs);
		o = entry(ui_state_name(UI_NOT_ENTITLED), 0, -1, fps, msgs);
		if (!o || json_object_set_new(o, "service", json_integer(r->svc[i].service_id)) != 0 ||
		    json_array_append_new(arr, o) != 0) {
			json_decref(o);
			goto fail;
		}
	}
	return arr;
fail:
	json_decref(arr);
	return NULL;
}
