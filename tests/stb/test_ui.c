/*
 * test_ui.c - the box's screen states (src/stb/ui.h, Schedule III B.6):
 * the --ui-states script (good and bad), the snapshot of every state with
 * the fingerprint on top (its box differs from the same state drawn without
 * the overlay, and the state itself is drawn), a service the box cannot
 * descramble still shows the card's EMM fingerprint on its black "not
 * entitled" screen, and the box's report gives each showing its state and
 * lists every state. Streams: tests/data ts-clear-2svc.ts and the CSA2
 * capture of service 101, looped with ts_loop to a few seconds.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <jansson.h>
#include "testutil.h"
#include "cas/client.h"
#include "lib/util.h"
#include "stb/overlay.h"
#include "stb/stb.h"
#include "stb/ui.h"
#include "ts/ts.h"
#include "ts/ts_loop.h"

#define CAP_CLEAR "ts-clear-2svc.ts"
#define CAP_CSA2 "simulcrypt/captures/ts-csa2-svc101-cw0123456789abcdef.ts"
#define SCRIPT "0:live,0.5:menu,1:epg,1.5:settings,2:standby"

static const char *const scripted[] = { "live", "menu", "epg", "settings", "standby" };

static void test_ui_script(void **st)
{
	struct ui_script sc;
	static const struct {
		const char *s;
		int want;
	} bad[] = {
		{ "", CE_FORMAT }, { "live", CE_FORMAT }, { "0:", CE_FORMAT }, { ":live", CE_FORMAT },
		{ "0:tv", CE_FORMAT }, { "0:live,", CE_FORMAT }, { "2:menu,1:epg", CE_FORMAT },
		{ "1:menu,1:epg", CE_FORMAT }, { "0.:live", CE_FORMAT }, { "0.1234:live", CE_FORMAT },
		{ "-1:live", CE_FORMAT }, { "1e3:live", CE_FORMAT }, { "0:live ", CE_FORMAT },
		{ "86401:menu", CE_RANGE }, { "99999999999999999999:menu", CE_RANGE }, { "0:LIVE", CE_FORMAT },
	};

	(void)st;
	assert_int_equal(ui_script_parse("0:live,2:menu,4.5:epg,6.25:settings,8:standby,9.001:not_entitled", &sc), 0);
	assert_int_equal(sc.n, 6);
	assert_int_equal(sc.start_ms[2], 4500);
	assert_int_equal(sc.start_ms[3], 6250);
	assert_int_equal(sc.start_ms[5], 9001);
	assert_int_equal(sc.state[5], UI_NOT_ENTITLED);
	assert_int_equal(ui_state_at(&sc, -1), UI_LIVE);
	assert_int_equal(ui_state_at(&sc, 1999), UI_LIVE);
	assert_int_equal(ui_state_at(&sc, 2000), UI_MENU);
	assert_int_equal(ui_state_at(&sc, 8999), UI_STANDBY);
	assert_int_equal(ui_state_at(&sc, 100000), UI_NOT_ENTITLED);
	assert_int_equal(ui_state_at(NULL, 5000), UI_LIVE);
	assert_int_equal(ui_script_parse("3:menu", &sc), 0);
	assert_int_equal(ui_state_at(&sc, 2999), UI_LIVE); /* live before the first entry */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = ui_script_parse(bad[i].s, &sc);

		if (r != bad[i].want)
			fail_msg("'%s': got %d want %d", bad[i].s, r, bad[i].want);
		assert_int_equal(sc.n, 0);
	}
	{
		char big[UI_SCRIPT_MAX * 12 + 16];
		size_t at = 0;

		for (int i = 0; i <= UI_SCRIPT_MAX; i++)
			at += (size_t)snprintf(big + at, sizeof(big) - at, "%s%d:menu", i ? "," : "", i);
		assert_int_equal(ui_script_parse(big, &sc), CE_LIMIT);
	}
	assert_string_equal(ui_state_name(UI_NOT_ENTITLED), "not_entitled");
}

/* The capture looped times times into a file under dir. */
static void looped(const char *cap, unsigned times, const char *dir, char *path, size_t cap_len)
{
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0, olen = 0;

	assert_int_equal(file_read_all(tu_testdata(cap), 64u << 20, &in, &len), 0);
	assert_int_equal(ts_loop(in, len, times, 64u << 20, &out, &olen, NULL), 0);
	snprintf(path, cap_len, "%s/looped.ts", dir);
	assert_int_equal(file_write_atomic(path, out, olen, 0644), 0);
	free(in);
	free(out);
}

static bool find_png(const char *dir, const char *prefix, const char *suffix, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name), pl = strlen(prefix), sl = strlen(suffix);

		if (n > pl + sl && strncmp(e->d_name, prefix, pl) == 0 && strcmp(e->d_name + n - sl, suffix) == 0) {
			snprintf(out, cap, "%s/%s", dir, e->d_name);
			found++;
		}
	}
	closedir(d);
	return found == 1;
}

/* The ms of a snapshot's name svc<ID>-<ms>ms-... */
static uint64_t png_ms(const char *path)
{
	const char *b = strrchr(path, '/') + 1, *dash = strchr(b, '-');
	char digits[16];
	uint64_t v = 0;

	assert_non_null(dash);
	snprintf(digits, sizeof(digits), "%.8s", dash + 1); /* %08llu */
	assert_int_equal(parse_u64(digits, UINT64_MAX, &v), 0);
	return v;
}

/* In the fingerprint's box, pixels of with that differ from clean (more
 * than half), and the share of clean's pixels at (x_pct, y_pct) region that
 * are black. */
static size_t box_diff(const struct overlay_image *a, const struct overlay_image *b, int x0, int y0, int x1, int y1)
{
	size_t d = 0;

	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++) {
			const uint8_t *p = a->rgb + (size_t)y * a->stride + 3 * (size_t)x;
			const uint8_t *q = b->rgb + (size_t)y * b->stride + 3 * (size_t)x;

			d += abs(p[0] - q[0]) > 8 || abs(p[1] - q[1]) > 8 || abs(p[2] - q[2]) > 8;
		}
	return d;
}

static bool all_black(const struct overlay_image *a)
{
	for (int y = 0; y < a->h; y++)
		for (int x = 0; x < a->w; x++) {
			const uint8_t *p = a->rgb + (size_t)y * a->stride + 3 * (size_t)x;

			if (p[0] > 8 || p[1] > 8 || p[2] > 8)
				return false;
		}
	return true;
}

/* One fingerprint for every service (as an EMM's), on screen for the whole
 * script: a yellow-on-black box at 10 %, 70 %. */
static const char fp_json[] =
	"[{\"kind\":\"fingerprint\",\"text\":\"2100000042\",\"service\":0,\"x_pct\":10,\"y_pct\":70,"
	"\"fg\":\"#FFFF00\",\"bg\":\"#000000C0\",\"font_px\":28,\"start_ms\":100,\"duration_ms\":2800}]";

static void check_state_png(const char *dir, uint16_t svc, const char *tag, const struct osd_list *l,
	struct overlay_font *font, const char *state)
{
	char prefix[32], suffix[64], with[4300], clean[4300];
	struct overlay_image a, b;
	int x0, y0, x1, y1;
	size_t in;

	snprintf(prefix, sizeof(prefix), "svc%u-", svc);
	snprintf(suffix, sizeof(suffix), "-%s.png", tag);
	if (!find_png(dir, prefix, suffix, with, sizeof(with)))
		fail_msg("no %s*%s in %s", prefix, suffix, dir);
	snprintf(suffix, sizeof(suffix), "-%s-clean.png", tag);
	assert_true(find_png(dir, prefix, suffix, clean, sizeof(clean)));
	assert_int_equal(overlay_png_read(with, &a), 0);
	assert_int_equal(overlay_png_read(clean, &b), 0);
	assert_int_equal(overlay_item_box(&a, font, &l->v[0], png_ms(with), &x0, &y0, &x1, &y1), 0);
	in = box_diff(&a, &b, x0, y0, x1, y1);
	/* over a picture the whole box changes; on a black screen its
	 * background is black too and the yellow glyphs are what differs */
	if (in <= (size_t)((x1 - x0) * (y1 - y0)) / (all_black(&b) || strcmp(state, "not_entitled") == 0 ? 20 : 4))
		fail_msg("%s: the fingerprint box differs in only %zu of %d pixels", with, in, (x1 - x0) * (y1 - y0));
	/* the state itself is drawn under it */
	if (strcmp(state, "standby") == 0 || strcmp(state, "not_entitled") == 0) {
		assert_true(all_black(&b) || strcmp(state, "not_entitled") == 0);
		assert_false(all_black(&a)); /* the fingerprint on the black screen */
	}
	if (strcmp(state, "menu") == 0) { /* the panel at 38 %, 88 %: blue over the picture */
		const uint8_t *p = b.rgb + (size_t)(b.h * 88 / 100) * b.stride + 3 * (size_t)(b.w * 38 / 100);

		assert_true(p[2] > p[0] && p[2] > p[1]);
	}
	overlay_image_cleanup(&a);
	overlay_image_cleanup(&b);
}

/* Every scripted state gets its snapshot with the fingerprint on top. */
static void test_ui_snapshot_states(void **st)
{
	char dir[] = "/tmp/test-ui-XXXXXX", ts[4200], png[4300], tag[40];
	struct overlay_opts opts = { .write_clean = true };
	struct overlay_result res;
	struct overlay_font *font;
	struct ui_snapshot u;
	struct ui_script sc;
	struct osd_list l;
	long idx;

	(void)st;
	assert_non_null(mkdtemp(dir));
	looped(CAP_CLEAR, 3, dir, ts, sizeof(ts));
	snprintf(png, sizeof(png), "%s/png", dir);
	assert_int_equal(mkdir(png, 0755), 0);
	osd_list_init(&l);
	assert_int_equal(osd_list_from_json(&l, fp_json, strlen(fp_json), &idx), 0);
	assert_int_equal(ui_script_parse(SCRIPT, &sc), 0);
	assert_int_equal(ui_snapshot_init(&u, &sc, &l, &opts), 0);
	assert_int_equal(opts.nmoments, 5);
	assert_int_equal(overlay_snapshot(ts, &l, png, &opts, &res), 0);
	assert_int_equal(overlay_font_open(NULL, &font), 0);
	for (size_t i = 0; i < 5; i++) {
		snprintf(tag, sizeof(tag), "ui-%s", scripted[i]);
		for (uint16_t svc = 101; svc <= 102; svc++)
			check_state_png(png, svc, tag, &l, font, scripted[i]);
		/* the moment lies inside its state */
		assert_true(opts.moments[i].at_ms >= sc.start_ms[i]);
		assert_true(i == 4 || opts.moments[i].at_ms < sc.start_ms[i + 1]);
	}
	/* the item's own snapshot (at 1500 ms: settings) has the state under it too */
	check_state_png(png, 101, "fingerprint0", &l, font, "settings");
	overlay_font_free(font);
	ui_snapshot_cleanup(&u);
	osd_list_cleanup(&l);
	assert_int_equal(tu_run("rm -rf '%s'", dir), 0);
}

/* Service 101 of the CSA2 capture read as it is cannot be descrambled: it
 * still gets the card's fingerprint, on the black not-entitled screen. */
static void test_ui_not_entitled_snapshot(void **st)
{
	char dir[] = "/tmp/test-ui-XXXXXX", p[4300];
	struct overlay_opts opts = { .write_clean = true };
	struct overlay_result res;
	struct overlay_font *font;
	struct ui_snapshot u;
	struct osd_list l;
	long idx;

	(void)st;
	assert_non_null(mkdtemp(dir));
	osd_list_init(&l);
	assert_int_equal(osd_list_from_json(&l, fp_json, strlen(fp_json), &idx), 0);
	l.v[0].start_ms = 0;
	l.v[0].duration_ms = 600;
	assert_int_equal(ui_snapshot_init(&u, NULL, &l, &opts), 0); /* no script: live */
	assert_int_equal(opts.nmoments, 0);
	assert_int_equal(overlay_snapshot(tu_testdata(CAP_CSA2), &l, dir, &opts, &res), 0);
	assert_int_equal(res.svc[0].service_id, 101);
	assert_int_equal(res.svc[0].frames, 0);
	assert_true(res.svc[0].blank);
	assert_int_equal(res.svc[0].pngs, 1);
	assert_int_equal(res.svc[0].items_drawn, 1);
	assert_false(res.svc[1].blank);
	assert_int_equal(overlay_font_open(NULL, &font), 0);
	check_state_png(dir, 101, "not_entitled-fingerprint0", &l, font, "not_entitled");
	assert_true(find_png(dir, "svc101", "00300ms-not_entitled-fingerprint0.png", p, sizeof(p)));
	overlay_font_free(font);
	ui_snapshot_cleanup(&u);
	/* without the UI layer the old behaviour: nothing for 101 */
	assert_int_equal(tu_run("rm -rf '%s'/*", dir), 0);
	assert_int_equal(overlay_snapshot(tu_testdata(CAP_CSA2), &l, dir, NULL, &res), 0);
	assert_int_equal(res.svc[0].pngs, 0);
	assert_false(res.svc[0].blank);
	osd_list_cleanup(&l);
	assert_int_equal(tu_run("rm -rf '%s'", dir), 0);
}

/* ---- the report: a client whose EMMs bring a fingerprint ---- */

struct fake {
	const struct cas_host *host;
};

static uint16_t fk_casid(void *self)
{
	(void)self;
	return 0x4ADC;
}

static int fk_ecm(void *self, const struct cas_host *h, uint16_t sid, const uint8_t *sec, size_t len)
{
	(void)self, (void)h, (void)sid, (void)sec, (void)len;
	return CE_NOT_ENTITLED;
}

static int fk_emm(void *self, const uint8_t *sec, size_t len)
{
	(void)self, (void)sec, (void)len;
	return CE_NOT_FOUND;
}

static void fk_set_host(void *self, const struct cas_host *h)
{
	((struct fake *)self)->host = h;
}

static const struct cas_client_ops fk_ops = { .name = "fake", .ca_system_id = fk_casid, .ecm = fk_ecm,
	.emm = fk_emm, .set_host = fk_set_host };

/* The CSA2 capture looped 3 times (service 101 stays scrambled: the box
 * is not entitled to it), the card's EMM fingerprint delivered 12 times
 * along it (repeat 12, interval 0: each delivery a showing). */
static void test_ui_report(void **st)
{
	char dir[] = "/tmp/test-ui-XXXXXX", ts[4200];
	struct fake fk = { 0 };
	struct cas_client client = { &fk_ops, &fk };
	struct osd_fingerprint fp = { .flags = OSD_FP_SERIAL, .fp_id = 7, .x_pct = 10, .y_pct = 70, .fg = { 255, 255, 0 },
		.bg = { 0, 0, 0, 0xC0 }, .font_px = 28, .duration_ms = 200, .repeat = 12, .interval_s = 0 };
	struct ui_script sc;
	struct stb_config cfg = { .client = &client, .csa2_reduce = true, .ui = &sc };
	struct stb_report *rep = calloc(1, sizeof(*rep));
	struct stb *box = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, npk, i;
	bool seen[5] = { false };
	char *json = NULL;
	json_t *j, *e;
	json_error_t err;
	int ne = 0;

	(void)st;
	assert_non_null(rep);
	assert_non_null(mkdtemp(dir));
	looped(CAP_CSA2, 3, dir, ts, sizeof(ts));
	assert_int_equal(file_read_all(ts, 64u << 20, &buf, &len), 0);
	npk = len / TS_PACKET_BYTES;
	assert_int_equal(ui_script_parse(SCRIPT, &sc), 0);
	assert_int_equal(stb_new(&cfg, &box), 0);
	assert_non_null(fk.host);
	for (size_t k = 0; k < 12; k++) {
		size_t from = npk * k / 12, to = npk * (k + 1) / 12;

		assert_int_equal(stb_feed(box, buf + from * TS_PACKET_BYTES, to - from, buf + from * TS_PACKET_BYTES), 0);
		fk.host->on_fingerprint(fk.host->ctx, 0, &fp, "2100000042");
	}
	assert_int_equal(stb_report(box, rep), 0);
	assert_int_equal(stb_report_json_osd(rep, box, &json), 0);
	j = json_loads(json, 0, &err);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "osd")), 12);
	json_array_foreach(json_object_get(j, "osd"), i, e) {
		const char *s = json_string_value(json_object_get(e, "ui_state"));
		json_int_t at = json_integer_value(json_object_get(e, "start_ms"));

		assert_non_null(s);
		/* the state the script gives at the showing's stream time */
		assert_string_equal(s, ui_state_name(ui_state_at(&sc, at)));
		for (size_t k = 0; k < 5; k++)
			seen[k] |= strcmp(s, scripted[k]) == 0;
	}
	for (size_t k = 0; k < 5; k++)
		if (!seen[k])
			fail_msg("no showing in state %s", scripted[k]);
	/* ui_states: the five scripted entries, then service 101 not entitled */
	assert_int_equal(json_array_size(json_object_get(j, "ui_states")), 6);
	json_array_foreach(json_object_get(j, "ui_states"), i, e) {
		const char *s = json_string_value(json_object_get(e, "state"));

		assert_true(json_integer_value(json_object_get(e, "fingerprints")) >= 1);
		if (i < 5) {
			assert_string_equal(s, scripted[i]);
			assert_int_equal(json_integer_value(json_object_get(e, "start_ms")), (json_int_t)sc.start_ms[i]);
		} else {
			assert_string_equal(s, "not_entitled");
			assert_int_equal(json_integer_value(json_object_get(e, "service")), 101);
			/* the card's EMM fingerprint reaches the service it cannot descramble */
			assert_int_equal(json_integer_value(json_object_get(e, "fingerprints")), 12);
			ne++;
		}
	}
	assert_int_equal(ne, 1);
	json_decref(j);
	free(json);
	stb_free(box);
	free(buf);
	free(rep);
	assert_int_equal(tu_run("rm -rf '%s'", dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ui_script),
		cmocka_unit_test(test_ui_snapshot_states),
		cmocka_unit_test(test_ui_not_entitled_snapshot),
		cmocka_unit_test(test_ui_report),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
