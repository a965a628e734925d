/*
 * pvr_box.c - the box command's recorder and player (pvr_box.h): picks the
 * box's recording key (chip or card file), runs stb/pvr.h, reports.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cas/card.h"
#include "lib/util.h"
#include "stb/pvr.h"
#include "stb/pvr_box.h"
#include "stb/stb.h"
#include "ts/tsio.h"

struct pvr_box {
	struct pvr_keyer k;
	struct pvr_rec *rec;
	char *path;
};

static int box_keyer(struct chip_link *chip, const char *card_path, struct pvr_keyer *k)
{
	struct card_identity id;
	int r;

	if (chip)
		r = pvr_keyer_chip(chip, k);
	else if (card_path) {
		if ((r = card_load(card_path, &id)) == 0)
			r = pvr_keyer_device(id.key, sizeof(id.key), id.serial, k);
		card_identity_wipe(&id);
	} else
		r = CE_UNSUPPORTED;
	if (r == CE_UNSUPPORTED)
		fprintf(stderr, "stb: recording needs a box key of its own: a chip (--chip-otp / --chip-socket) "
			"or a card file (--card)\n");
	else if (r != 0)
		fprintf(stderr, "stb: recording key: %s\n", err_str(r));
	return r;
}

int pvr_box_record(const char *path, struct chip_link *chip, const char *card_path, uint16_t service_id,
	struct pvr_box **out)
{
	struct pvr_box *b = calloc(1, sizeof(*b));
	int r = CE_NOMEM;

	*out = NULL;
	if (!b || !(b->path = strdup(path)))
		goto fail;
	if ((r = box_keyer(chip, card_path, &b->k)) != 0)
		goto fail;
	if ((r = pvr_rec_open(path, &b->k, service_id, now_wall_ms(), &b->rec)) != 0) {
		fprintf(stderr, "stb: --record %s: %s\n", path, err_str(r));
		goto fail;
	}
	*out = b;
	return 0;
fail:
	pvr_box_abort(b);
	return r;
}

int pvr_box_feed(struct pvr_box *b, struct stb *box, const uint8_t *pkts, size_t n)
{
	int r = pvr_rec_feed(b->rec, box, pkts, n);

	if (r != 0)
		fprintf(stderr, "stb: --record %s: %s\n", b->path, err_str(r));
	return r;
}

void pvr_box_abort(struct pvr_box *b)
{
	if (!b)
		return;
	pvr_rec_abort(b->rec);
	pvr_keyer_free(&b->k);
	free(b->path);
	free(b);
}

int pvr_box_finish(struct pvr_box *b)
{
	struct pvr_rec_stats st;
	int r = pvr_rec_close(b->rec, &st);

	b->rec = NULL;
	if (r != 0)
		fprintf(stderr, "stb: --record %s: %s (recording removed)\n", b->path, err_str(r));
	else
		fprintf(stderr, "stb: recorded %llu packets in %s for box %s %llu (%s%s), %llu left out as "
			"copy_never, %llu still scrambled\n", (unsigned long long)st.packets, b->path,
			b->k.source == PVR_SRC_CHIP ? "chip" : "card", (unsigned long long)b->k.box_id,
			cas_copy_name(st.copy_control), st.retention_s ? ", retention limited" : "",
			(unsigned long long)st.refused_copy_never, (unsigned long long)st.dropped_scrambled);
	pvr_box_abort(b);
	return r;
}

struct play_sink {
	const char *uri;
	struct ts_out *out;
	int err;
	uint64_t pkts;
};

static int play_sink(void *ctx, const uint8_t *pkts, size_t n)
{
	struct play_sink *s = ctx;
	int r;

	if (!s->out && (r = ts_out_open(s->uri, &s->out)) != 0) {
		fprintf(stderr, "stb: output %s: %s\n", s->uri, err_str(r));
		return s->err = r;
	}
	if (n && (r = ts_out_write(s->out, pkts, n)) != 0) {
		fprintf(stderr, "stb: write %s: %s\n", s->uri, err_str(r));
		return s->err = r;
	}
	s->pkts += n;
	return 0;
}

int pvr_box_playback(const char *path, struct chip_link *chip, const char *card_path, const char *output_uri)
{
	struct play_sink s = { .uri = output_uri };
	struct pvr_keyer k;
	struct pvr_info info;
	FILE *f = NULL;
	int r, rc = 1;

	if (box_keyer(chip, card_path, &k) != 0)
		return 1;
	if (!(f = fopen(path, "rb"))) {
		fprintf(stderr, "stb: --playback %s: cannot open\n", path);
		goto out;
	}
	r = pvr_play(&k, f, now_wall_ms(), play_sink, &s, &info);
	if (r == 0 && !s.out && (r = play_sink(&s, NULL, 0)) != 0)
		goto out;
	if (r == CE_NOT_ENTITLED)
		fprintf(stderr, "stb: --playback %s refused: recorded by %s %llu, this box is %s %llu; nothing written\n",
			path, info.source == PVR_SRC_CHIP ? "chip" : "card", (unsigned long long)info.box_id,
			k.source == PVR_SRC_CHIP ? "chip" : "card", (unsigned long long)k.box_id);
	else if (r != 0 && !s.err)
		fprintf(stderr, "stb: --playback %s refused: %s%s; nothing written\n", path, err_str(r),
			r == CE_MAC ? " (not this box's recording, or altered)" : r == CE_EXPIRED ?
			" (past its retention limit)" : "");
	if (r != 0)
		goto out;
	fprintf(stderr, "stb: played back %llu packets of %s (recorded by this box, %s)\n",
		(unsigned long long)s.pkts, path, cas_copy_name(info.copy_control));
	rc = 0;
out:
	if (s.out && ts_out_close(s.out) != 0 && rc == 0) {
		fprintf(stderr, "stb: close %s failed\n", output_uri);
		rc = 1;
	}
	if (f)
		(void)fclose(f);
	pvr_keyer_free(&k);
	return rc;
}
