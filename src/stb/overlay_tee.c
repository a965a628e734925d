/*
 * overlay_tee.c - the box's --overlay-snapshot session (overlay_tee.h):
 * keep the descrambled stream, then draw the OSD items on its frames.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib/util.h"
#include "stb/overlay.h"
#include "stb/overlay_tee.h"
#include "stb/ui.h"
#include "ts/ts.h"

struct overlay_tee {
	char dir[4096];
	struct osd_list extra;  /* --osd-json's items */
	char path[4096];        /* the kept stream; "" when none */
	FILE *f;
	uint64_t bytes;
	bool full;              /* OVERLAY_TEE_MAX_BYTES reached */
};

static int load_extra(struct overlay_tee *t, const char *osd_json)
{
	uint8_t *doc = NULL;
	size_t len = 0;
	long bad = -1;
	int r;

	if ((r = file_read_all(osd_json, OSD_JSON_MAX_BYTES, &doc, &len)) != 0) {
		fprintf(stderr, "stb: --osd-json %s: %s\n", osd_json, err_str(r));
		return CE_ARG;
	}
	r = osd_list_from_json(&t->extra, (const char *)doc, len, &bad);
	free(doc);
	if (r != 0) {
		if (bad >= 0)
			fprintf(stderr, "stb: --osd-json %s: item %ld: %s\n", osd_json, bad, err_str(r));
		else
			fprintf(stderr, "stb: --osd-json %s: %s\n", osd_json, err_str(r));
		return CE_ARG;
	}
	return 0;
}

int overlay_tee_open(const char *dir, const char *osd_json, struct overlay_tee **out)
{
	struct overlay_tee *t;
	int r, n;

	*out = NULL;
	if (!dir || strlen(dir) >= sizeof(t->dir))
		return CE_ARG;
	if (!(t = calloc(1, sizeof(*t))))
		return CE_NOMEM;
	osd_list_init(&t->extra);
	memcpy(t->dir, dir, strlen(dir) + 1);
	if (osd_json && (r = load_extra(t, osd_json)) != 0)
		goto fail;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "stb: --overlay-snapshot %s: %s\n", dir, strerror(errno));
		r = CE_IO;
		goto fail;
	}
	n = snprintf(t->path, sizeof(t->path), "%s/%s", dir, OVERLAY_TEE_NAME);
	if (n < 0 || (size_t)n >= sizeof(t->path) || !(t->f = fopen(t->path, "wb"))) {
		fprintf(stderr, "stb: --overlay-snapshot %s: cannot write %s\n", dir, OVERLAY_TEE_NAME);
		t->path[0] = '\0';
		r = CE_IO;
		goto fail;
	}
	*out = t;
	return 0;
fail:
	overlay_tee_free(t);
	return r;
}

int overlay_tee_write(struct overlay_tee *t, const uint8_t *pkts, size_t n)
{
	size_t bytes = n * TS_PACKET_BYTES;

	if (!t->f || t->full)
		return 0;
	if (t->bytes + bytes > OVERLAY_TEE_MAX_BYTES) {
		t->full = true;
		return 0;
	}
	if (fwrite(pkts, 1, bytes, t->f) != bytes) {
		fprintf(stderr, "stb: overlay: write %s: %s\n", t->path, err_str(CE_IO));
		return CE_IO;
	}
	t->bytes += bytes;
	return 0;
}

static void say_services(const struct overlay_result *res)
{
	for (size_t i = 0; i < res->nservices; i++) {
		const struct overlay_service_result *s = &res->svc[i];

		if (!s->has_video)
			fprintf(stderr, "stb: overlay service %u: no video stream\n", s->service_id);
		else if (s->frames == 0)
			fprintf(stderr, "stb: overlay service %u: no decodable video (still scrambled?); %u PNG of its items "
				"on the black not-entitled screen\n", s->service_id, s->pngs);
		else
			fprintf(stderr, "stb: overlay service %u: %llu frames decoded, %u PNG, %u items drawn, "
				"%u not shown before the video ended\n", s->service_id, (unsigned long long)s->frames,
				s->pngs, s->items_drawn, s->items_missed);
	}
}

int overlay_tee_finish(struct overlay_tee *t, const char *report_json, const struct ui_script *ui)
{
	struct overlay_result *res = calloc(1, sizeof(*res));
	struct ui_script none = { 0 };
	struct overlay_opts opts = { 0 };
	struct ui_snapshot us = { 0 };
	struct osd_list l;
	size_t skipped = 0;
	int r = CE_NOMEM;

	osd_list_init(&l);
	if (!res)
		goto out;
	r = t->f && fclose(t->f) == 0 ? 0 : CE_IO;
	t->f = NULL;
	if (r != 0) {
		fprintf(stderr, "stb: overlay: %s: %s\n", t->path, err_str(r));
		goto out;
	}
	if ((r = osd_list_from_json_skip(&l, report_json, strlen(report_json), &skipped)) != 0) {
		fprintf(stderr, "stb: overlay: the report's osd items: %s\n", err_str(r));
		goto out;
	}
	if (skipped)
		fprintf(stderr, "stb: overlay: %zu of the box's OSD items not drawable (bad field), skipped\n", skipped);
	for (size_t i = 0; i < t->extra.n && r == 0; i++)
		r = osd_list_add(&l, &t->extra.v[i]);
	if (r == 0 && (r = ui_snapshot_init(&us, ui ? ui : &none, &l, &opts)) == 0) /* the box's states under the items */
		r = overlay_snapshot(t->path, &l, t->dir, &opts, res);
	if (r != 0) {
		fprintf(stderr, "stb: overlay snapshot %s: %s\n", t->dir, err_str(r));
		goto out;
	}
	fprintf(stderr, "stb: overlay snapshot: %u PNG in %s, %zu OSD items%s\n", res->pngs, t->dir, l.n,
		t->full ? " (only the first 2 GiB of the stream decoded)" : "");
	say_services(res);
out:
	ui_snapshot_cleanup(&us);
	osd_list_cleanup(&l);
	free(res);
	return r;
}

void overlay_tee_free(struct overlay_tee *t)
{
	if (!t)
		return;
	if (t->f)
		(void)fclose(t->f);
	if (t->path[0])
		(void)unlink(t->path);
	osd_list_cleanup(&t->extra);
	free(t);
}
