/*
 * blackbox.c - black-box burning (blackbox.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kms/blackbox.h"
#include "kms/otp.h"
#include "kms/seal.h"
#include "lib/log.h"
#include "lib/util.h"

static int ledger_has(const char *ledger, const char hex[33])
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r, found = 0;

	r = file_read_all(ledger, 64u << 20, &buf, &len);
	if (r != 0)
		return access(ledger, F_OK) != 0 ? 0 : r;
	for (size_t off = 0; off + 32 <= len; off += 33)
		if (memcmp(buf + off, hex, 32) == 0 && (off + 32 == len || buf[off + 32] == '\n'))
			found = 1;
	free(buf);
	return found ? CE_REPLAY : 0;
}

static const struct seal_record *find(const struct seal_record *recs, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (recs[mid].chip_id == id)
			return &recs[mid];
		if (recs[mid].chip_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int blackbox_burn(const uint8_t *file, size_t len, const uint8_t kms_pub[32], const uint8_t box_priv[32],
	const uint64_t *chips, size_t n, const char *out_dir, const char *ledger, size_t *burned)
{
	struct seal_header h;
	struct seal_record *recs = NULL;
	char fid[33], path[4096];
	size_t todo;
	FILE *f;
	int r;

	*burned = 0;
	if ((r = seal_open(file, len, kms_pub, box_priv, &h, &recs)) != 0)
		return r;
	if (h.kind != SEAL_KIND_BLACKBOX) {
		r = CE_FORMAT;
		goto out;
	}
	hex_encode(h.file_id, 16, fid);
	if ((r = ledger_has(ledger, fid)) != 0) {
		LOG_ERR("blackbox", "file %s was burned before", fid);
		goto out;
	}
	todo = n ? n : h.count;
	for (size_t i = 0; i < n; i++)
		if (!find(recs, h.count, chips[i])) {
			LOG_ERR("blackbox", "chip %016llx is not in this file", (unsigned long long)chips[i]);
			r = CE_NOT_FOUND;
			goto out;
		}
	if (mkdir(out_dir, 0700) != 0 && errno != EEXIST) {
		r = CE_IO;
		goto out;
	}
	/* Ledger first: a crash mid-burn must not allow a second burn. */
	if (!(f = fopen(ledger, "a"))) {
		r = CE_IO;
		goto out;
	}
	fprintf(f, "%s\n", fid);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		r = CE_IO;
	if (fclose(f) != 0)
		r = CE_IO;
	if (r != 0)
		goto out;
	for (size_t i = 0; i < todo; i++) {
		const struct seal_record *rec = n ? find(recs, h.count, chips[i]) : &recs[i];
		struct otp_image img = {.version = OTP_VERSION, .chip_id = rec->chip_id};
		int k;

		memcpy(img.root_key, rec->key, 16);
		memcpy(img.trust_root_hash, h.trust_root_hash, 32);
		k = snprintf(path, sizeof(path), "%s/%016llx.otp", out_dir, (unsigned long long)rec->chip_id);
		if (k < 0 || (size_t)k >= sizeof(path))
			r = CE_RANGE;
		else
			r = otp_write_file(path, &img);
		otp_image_wipe(&img);
		if (r != 0)
			goto out;
		(*burned)++;
	}
	r = 0;
out:
	seal_records_free(recs, h.count);
	return r;
}
