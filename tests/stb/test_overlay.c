/*
 * test_overlay.c - the box's OSD snapshots (src/stb/overlay.h): the JSON
 * item reader (good document, table of bad ones), and PNG frames judged by
 * their pixels: the fingerprint's box differs from the same frame without
 * overlay, the rest of the frame does not; global items reach every
 * service, per-service ones only theirs; `castellan stb --overlay-snapshot`
 * on a scrambled capture draws on the descrambled video.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "stb/overlay.h"
#include "testutil.h"

#define CAP_CLEAR "ts-clear-2svc.ts"
#define CAP_CSA2 "simulcrypt/captures/ts-csa2-svc101-cw0123456789abcdef.ts"

static void test_json_good(void **st)
{
	static const char doc[] =
		"{\"packets\": 5, \"osd\": ["
		"{\"kind\":\"fingerprint\",\"overt\":false,\"text\":\"CARD 2100000001\",\"service\":101,\"x_pct\":12,"
		"\"y_pct\":80,\"fg\":\"#FF8000\",\"bg\":\"#10203040\",\"font_px\":30,\"start_ms\":1200,"
		"\"duration_ms\":500,\"style\":\"overlay\",\"forced\":true,\"future_key\":[1,2]},"
		"{\"kind\":\"message\",\"text\":\"caf\\u00e9\",\"start_ms\":0,\"duration_ms\":1}]}";
	struct osd_list l;
	long bad = 7;

	(void)st;
	osd_list_init(&l);
	assert_int_equal(osd_list_from_json(&l, doc, strlen(doc), &bad), 0);
	assert_int_equal(bad, -1);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].kind, OSD_FINGERPRINT);
	assert_false(l.v[0].overt);
	assert_true(l.v[0].forced);
	assert_string_equal(l.v[0].text, "CARD 2100000001");
	assert_int_equal(l.v[0].service, 101);
	assert_int_equal(l.v[0].x_pct, 12);
	assert_int_equal(l.v[0].y_pct, 80);
	assert_int_equal(l.v[0].fg[0], 0xFF);
	assert_int_equal(l.v[0].fg[1], 0x80);
	assert_int_equal(l.v[0].fg[2], 0x00);
	assert_int_equal(l.v[0].bg[0], 0x10);
	assert_int_equal(l.v[0].bg[3], 0x40);
	assert_int_equal(l.v[0].font_px, 30);
	assert_int_equal(l.v[0].start_ms, 1200);
	assert_int_equal(l.v[0].duration_ms, 500);
	assert_int_equal(l.v[0].style, OSD_STYLE_OVERLAY);
	/* defaults */
	assert_int_equal(l.v[1].kind, OSD_MESSAGE);
	assert_int_equal(l.v[1].style, OSD_STYLE_POPUP);
	assert_true(l.v[1].overt);
	assert_false(l.v[1].forced);
	assert_int_equal(l.v[1].service, 0);
	assert_int_equal(l.v[1].font_px, 24);
	assert_string_equal(l.v[1].text, "caf\xc3\xa9");
	/* a report without items; a bare array appends */
	assert_int_equal(osd_list_from_json(&l, "{\"packets\":1}", 13, &bad), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(osd_list_from_json(&l, "[{\"kind\":\"message\",\"text\":\"x\",\"start_ms\":3,\"duration_ms\":9,"
		"\"style\":\"scroll\"}]", 77, &bad), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[2].style, OSD_STYLE_SCROLL);
	osd_list_cleanup(&l);
}

#define IT(extra) "[{\"kind\":\"fingerprint\",\"text\":\"A\",\"start_ms\":0,\"duration_ms\":10" extra "}]"

static void test_json_bad(void **st)
{
	static const struct {
		const char *doc;
		int err;
		long index;
	} bad[] = {
		{ "", CE_FORMAT, -1 },
		{ "{\"osd\": 5}", CE_FORMAT, -1 },
		{ "\"osd\"", CE_FORMAT, -1 },
		{ "{\"osd\": [], \"osd\": []}", CE_FORMAT, -1 },                   /* duplicate key */
		{ "[5]", CE_FORMAT, 0 },
		{ "[{\"text\":\"A\",\"start_ms\":0,\"duration_ms\":10}]", CE_FORMAT, 0 }, /* no kind */
		{ IT(",\"kind\":\"logo\""), CE_FORMAT, -1 },                         /* duplicate kind */
		{ "[{\"kind\":\"logo\",\"text\":\"A\",\"start_ms\":0,\"duration_ms\":10}]", CE_FORMAT, 0 },
		{ "[{\"kind\":\"message\",\"start_ms\":0,\"duration_ms\":10}]", CE_FORMAT, 0 }, /* no text */
		{ "[{\"kind\":\"message\",\"text\":\"\",\"start_ms\":0,\"duration_ms\":10}]", CE_FORMAT, 0 },
		{ "[{\"kind\":\"message\",\"text\":\"a\\u0000b\",\"start_ms\":0,\"duration_ms\":10}]", CE_FORMAT, -1 }, /* jansson refuses NUL */
		{ "[{\"kind\":\"message\",\"text\":7,\"start_ms\":0,\"duration_ms\":10}]", CE_FORMAT, 0 },
		{ "[{\"kind\":\"message\",\"text\":\"A\",\"duration_ms\":10}]", CE_FORMAT, 0 }, /* no start */
		{ "[{\"kind\":\"message\",\"text\":\"A\",\"start_ms\":0}]", CE_FORMAT, 0 },       /* no duration */
		{ IT(",\"x_pct\":101"), CE_RANGE, 0 },
		{ IT(",\"y_pct\":-1"), CE_RANGE, 0 },
		{ IT(",\"x_pct\":1.5"), CE_FORMAT, 0 },
		{ IT(",\"font_px\":7"), CE_RANGE, 0 },
		{ IT(",\"font_px\":201"), CE_RANGE, 0 },
		{ "[{\"kind\":\"fingerprint\",\"text\":\"A\",\"start_ms\":-1,\"duration_ms\":10}]", CE_RANGE, 0 },
		{ "[{\"kind\":\"fingerprint\",\"text\":\"A\",\"start_ms\":0,\"duration_ms\":0}]", CE_RANGE, 0 },
		{ "[{\"kind\":\"fingerprint\",\"text\":\"A\",\"start_ms\":0,\"duration_ms\":86400001}]", CE_RANGE, 0 },
		{ IT(",\"service\":65536"), CE_RANGE, 0 },
		{ IT(",\"service\":\"101\""), CE_FORMAT, 0 },
		{ IT(",\"fg\":\"#FFF\""), CE_FORMAT, 0 },
		{ IT(",\"fg\":\"FFFFFF0\""), CE_FORMAT, 0 },
		{ IT(",\"fg\":\"#11223344\""), CE_FORMAT, 0 },                      /* fg has no alpha */
		{ IT(",\"bg\":\"#GG0000\""), CE_FORMAT, 0 },
		{ IT(",\"bg\":\"#1122334\""), CE_FORMAT, 0 },
		{ IT(",\"style\":\"blink\""), CE_FORMAT, 0 },
		{ IT(",\"style\":1"), CE_FORMAT, 0 },
		{ IT(",\"overt\":\"yes\""), CE_FORMAT, 0 },
		{ IT(",\"forced\":1"), CE_FORMAT, 0 },
	};
	struct osd_list l;
	char *big;
	size_t blen;
	long idx;

	(void)st;
	osd_list_init(&l);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = osd_list_from_json(&l, bad[i].doc, strlen(bad[i].doc), &idx);

		if (r != bad[i].err || l.n != 0 || idx != bad[i].index)
			fail_msg("case %zu (%s): %s, index %ld, %zu items", i, bad[i].doc, err_str(r), idx, l.n);
	}
	/* a good item then a bad one: nothing appended */
	{
		static const char two[] = "[{\"kind\":\"message\",\"text\":\"A\",\"start_ms\":0,\"duration_ms\":1},5]";

		assert_int_equal(osd_list_from_json(&l, two, strlen(two), &idx), CE_FORMAT);
	}
	assert_int_equal(idx, 1);
	assert_int_equal(l.n, 0);
	/* the box's own report: bad items skipped and counted, good ones kept */
	{
		static const char mixed[] = "{\"osd\":[{\"kind\":\"message\",\"text\":\"A\",\"start_ms\":0,"
			"\"duration_ms\":1},{\"kind\":\"fingerprint\",\"text\":\"\",\"start_ms\":0,\"duration_ms\":5},"
			"{\"kind\":\"fingerprint\",\"text\":\"B\",\"start_ms\":0,\"duration_ms\":0},5,"
			"{\"kind\":\"fingerprint\",\"text\":\"C\",\"start_ms\":9,\"duration_ms\":5}]}";
		size_t skipped = 99;

		assert_int_equal(osd_list_from_json_skip(&l, mixed, strlen(mixed), &skipped), 0);
		assert_int_equal(skipped, 3);
		assert_int_equal(l.n, 2);
		assert_string_equal(l.v[0].text, "A");
		assert_string_equal(l.v[1].text, "C");
		assert_int_equal(osd_list_from_json_skip(&l, "{\"osd\":7}", 9, &skipped), CE_FORMAT);
		assert_int_equal(l.n, 2);
		l.n = 0;
	}
	/* text of OSD_TEXT_MAX_BYTES + 1 bytes */
	big = malloc(OSD_TEXT_MAX_BYTES + 200);
	assert_non_null(big);
	blen = (size_t)snprintf(big, 100, "[{\"kind\":\"message\",\"start_ms\":0,\"duration_ms\":1,\"text\":\"");
	memset(big + blen, 'x', OSD_TEXT_MAX_BYTES + 1);
	blen += OSD_TEXT_MAX_BYTES + 1;
	memcpy(big + blen, "\"}]", 4);
	blen += 3;
	assert_int_equal(osd_list_from_json(&l, big, blen, &idx), CE_LIMIT);
	/* exactly the maximum is fine */
	memmove(big + blen - 4, big + blen - 3, 4);
	assert_int_equal(osd_list_from_json(&l, big, blen - 1, &idx), 0);
	assert_int_equal(strlen(l.v[0].text), OSD_TEXT_MAX_BYTES);
	free(big);
	osd_list_cleanup(&l);
}

/* The one file in dir whose name starts with prefix and ends with suffix
 * (the time in the middle is the decoder's); its full path into out. */
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

/* Pixels of a and b that differ (any channel by more than 8), inside the
 * box [x0,x1) x [y0,y1) and outside it. */
static void diff_regions(const struct overlay_image *a, const struct overlay_image *b, int x0, int y0, int x1,
	int y1, size_t *in, size_t *out)
{
	*in = *out = 0;
	assert_int_equal(a->w, b->w);
	assert_int_equal(a->h, b->h);
	for (int y = 0; y < a->h; y++)
		for (int x = 0; x < a->w; x++) {
			const uint8_t *p = a->rgb + (size_t)y * a->stride + 3 * (size_t)x;
			const uint8_t *q = b->rgb + (size_t)y * b->stride + 3 * (size_t)x;
			bool d = abs(p[0] - q[0]) > 8 || abs(p[1] - q[1]) > 8 || abs(p[2] - q[2]) > 8;

			if (x >= x0 && x < x1 && y >= y0 && y < y1)
				*in += d;
			else
				*out += d;
		}
}

static const char items_json[] =
	"[{\"kind\":\"fingerprint\",\"text\":\"STB 0042 CARD 2100000001\",\"service\":101,\"x_pct\":10,"
	"\"y_pct\":20,\"fg\":\"#FFFFFF\",\"bg\":\"#000000FF\",\"font_px\":28,\"start_ms\":200,\"duration_ms\":400},"
	"{\"kind\":\"message\",\"text\":\"Global notice: this message goes to every service.\",\"style\":\"scroll\","
	"\"bg\":\"#0000C0FF\",\"font_px\":20,\"start_ms\":0,\"duration_ms\":1000},"
	"{\"kind\":\"fingerprint\",\"text\":\"after the end\",\"service\":102,\"start_ms\":900000,"
	"\"duration_ms\":1000}]";

/* The fingerprint's frame against the same frame without overlay: its box
 * changed (opaque black with white text), nothing else but the scroll band
 * of the global message shown at the same time. */
static void check_fingerprint(const char *with, const char *clean, const struct osd_list *l)
{
	struct overlay_image a, b;
	struct overlay_font *font;
	int x0, y0, x1, y1, sx0, sy0, sx1, sy1;
	size_t in, out, black = 0;

	assert_int_equal(overlay_png_read(with, &a), 0);
	assert_int_equal(overlay_png_read(clean, &b), 0);
	assert_int_equal(a.w, 640);
	assert_int_equal(a.h, 360);
	assert_int_equal(overlay_font_open(NULL, &font), 0);
	assert_int_equal(overlay_item_box(&a, font, &l->v[0], 400, &x0, &y0, &x1, &y1), 0);
	assert_int_equal(x0, 64);  /* 10 % of 640 */
	assert_int_equal(y0, 72);  /* 20 % of 360 */
	assert_true(x1 - x0 > 200 && y1 - y0 > 28);
	diff_regions(&a, &b, x0, y0, x1, y1, &in, &out);
	/* most of the box differs (the test pattern is not black there) */
	assert_true(in > (size_t)((x1 - x0) * (y1 - y0)) / 2);
	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++) {
			const uint8_t *p = a.rgb + (size_t)y * a.stride + 3 * (size_t)x;

			black += p[0] < 8 && p[1] < 8 && p[2] < 8;
		}
	assert_true(black > (size_t)((x1 - x0) * (y1 - y0)) / 2);
	/* outside: only the scroll band (its box is the bottom band) */
	assert_int_equal(overlay_item_box(&a, font, &l->v[1], 400, &sx0, &sy0, &sx1, &sy1), 0);
	assert_true(sy0 >= 180); /* lower half */
	assert_int_equal(sx0, 0);
	assert_int_equal(sx1, 640);
	{
		size_t band_in, band_out, fp_in, fp_out;

		diff_regions(&a, &b, sx0, sy0, sx1, sy1, &band_in, &band_out);
		assert_true(band_in > 0);
		/* the differences outside the scroll band are all in the fingerprint box */
		diff_regions(&a, &b, x0, y0, x1, y1, &fp_in, &fp_out);
		assert_int_equal(fp_out, band_in);
		assert_int_equal(band_out, fp_in);
	}
	overlay_font_free(font);
	overlay_image_cleanup(&a);
	overlay_image_cleanup(&b);
}

static void test_snapshot_pixels(void **st)
{
	char dir[] = "/tmp/test-overlay-XXXXXX", with[4300], clean[4300], p2[4300];
	struct overlay_opts opts = { .write_clean = true };
	struct overlay_result res;
	struct osd_list l;
	long idx;

	(void)st;
	assert_non_null(mkdtemp(dir));
	osd_list_init(&l);
	assert_int_equal(osd_list_from_json(&l, items_json, strlen(items_json), &idx), 0);
	assert_int_equal(overlay_snapshot(tu_testdata(CAP_CLEAR), &l, dir, &opts, &res), 0);
	assert_int_equal(res.nservices, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_true(res.svc[i].has_video);
		assert_true(res.svc[i].frames >= 30); /* 1.6 s at 25 fps */
	}
	assert_int_equal(res.svc[0].service_id, 101);
	assert_int_equal(res.svc[0].pngs, 2);       /* fingerprint0, message1 */
	assert_int_equal(res.svc[0].items_missed, 0);
	assert_int_equal(res.svc[1].service_id, 102);
	assert_int_equal(res.svc[1].pngs, 1);       /* message1; fingerprint2 is after the end */
	assert_int_equal(res.svc[1].items_missed, 1);
	assert_int_equal(res.pngs, 6);              /* each with its clean twin */
	assert_true(find_png(dir, "svc101-", "-fingerprint0.png", with, sizeof(with)));
	assert_true(find_png(dir, "svc101-", "-fingerprint0-clean.png", clean, sizeof(clean)));
	/* the frame in the middle of the fingerprint's 200..600 ms */
	assert_non_null(strstr(with, "svc101-00000400ms-"));
	check_fingerprint(with, clean, &l);
	/* the global message on 102 too, the fingerprint of 101 not */
	assert_true(find_png(dir, "svc102-", "-message1.png", p2, sizeof(p2)));
	assert_false(find_png(dir, "svc102-", "-fingerprint0.png", p2, sizeof(p2)));
	assert_false(find_png(dir, "svc102-", "-fingerprint2.png", p2, sizeof(p2)));
	osd_list_cleanup(&l);
	assert_int_equal(tu_run("rm -rf '%s'", dir), 0);
}

/* No items: one plain frame per service; a still-scrambled service (the
 * capture read as it is) decodes nothing and gets no file. */
static void test_snapshot_plain_and_scrambled(void **st)
{
	char dir[] = "/tmp/test-overlay-XXXXXX", p[4300];
	struct overlay_result res;
	struct osd_list l;

	(void)st;
	assert_non_null(mkdtemp(dir));
	osd_list_init(&l);
	assert_int_equal(overlay_snapshot(tu_testdata(CAP_CSA2), &l, dir, NULL, &res), 0);
	assert_int_equal(res.nservices, 2);
	assert_int_equal(res.svc[0].service_id, 101);
	assert_int_equal(res.svc[0].frames, 0);
	assert_int_equal(res.svc[0].pngs, 0);
	assert_int_equal(res.svc[1].service_id, 102);
	assert_true(res.svc[1].frames > 0);
	assert_int_equal(res.svc[1].pngs, 1);
	assert_true(find_png(dir, "svc102-", "-plain.png", p, sizeof(p)));
	assert_false(find_png(dir, "svc101-", ".png", p, sizeof(p)));
	assert_int_equal(overlay_snapshot("/nonexistent.ts", &l, dir, NULL, &res), CE_FORMAT);
	assert_int_equal(tu_run("rm -rf '%s'", dir), 0);
}

/* castellan stb --overlay-snapshot on the scrambled capture with its CW:
 * the fingerprint is drawn on the descrambled service 101; its PNG equals
 * (outside the overlays) the clean frame of the clear stream. */
static void test_stb_cli(void **st)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char dir[] = "/tmp/test-overlay-XXXXXX", ref[] = "/tmp/test-overlay-ref-XXXXXX";
	char with[4300], clean[4300], p[4300];
	struct overlay_opts opts = { .write_clean = true };
	struct overlay_result res;
	struct osd_list l;
	long idx;

	(void)st;
	if (!bin)
		skip();
	assert_non_null(mkdtemp(dir));
	assert_non_null(mkdtemp(ref));
	{
		char items[4200];

		snprintf(items, sizeof(items), "%s/items.json", dir);
		assert_int_equal(file_write_atomic(items, items_json, strlen(items_json), 0644), 0);
		assert_int_equal(tu_run("'%s' stb --input '%s' --output '%s/out.ts' --cw 0123456789abcdef "
			"--overlay-snapshot '%s/png' --osd-json '%s' 2>/dev/null", bin, tu_testdata(CAP_CSA2), dir, dir,
			items), 0);
		/* a bad item file: usage error before anything runs */
		assert_int_equal(tu_run("echo '[5]' > '%s/bad.json' && '%s' stb --input '%s' --output /dev/null "
			"--cw 0123456789abcdef --overlay-snapshot '%s/png2' --osd-json '%s/bad.json' 2>/dev/null", dir, bin,
			tu_testdata(CAP_CSA2), dir, dir), 2);
	}
	snprintf(p, sizeof(p), "%s/png", dir);
	assert_true(find_png(p, "svc101-", "-fingerprint0.png", with, sizeof(with)));
	assert_true(find_png(p, "svc102-", "-message1.png", clean, sizeof(clean)));
	assert_false(find_png(p, "svc101-", "-clean.png", clean, sizeof(clean)));
	/* the reference: the clear stream's same frame without overlay */
	osd_list_init(&l);
	assert_int_equal(osd_list_from_json(&l, items_json, strlen(items_json), &idx), 0);
	assert_int_equal(overlay_snapshot(tu_testdata(CAP_CLEAR), &l, ref, &opts, &res), 0);
	{
		const char *name = strrchr(with, '/') + 1;
		char base[4300];

		snprintf(base, sizeof(base), "%s", name);
		base[strlen(base) - 4] = '\0';
		snprintf(clean, sizeof(clean), "%s/%s-clean.png", ref, base);
	}
	check_fingerprint(with, clean, &l);
	osd_list_cleanup(&l);
	assert_int_equal(tu_run("rm -rf '%s' '%s'", dir, ref), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_good),
		cmocka_unit_test(test_json_bad),
		cmocka_unit_test(test_snapshot_pixels),
		cmocka_unit_test(test_snapshot_plain_and_scrambled),
		cmocka_unit_test(test_stb_cli),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
