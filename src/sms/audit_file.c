/*
 * audit_file.c - the audit export and the checkpoint file (audit_file.h).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "lib/cursor.h"
#include "crypto/pk.h"
#include "lib/util.h"
#include "sms/audit_key.h"
#include "sms/audit_file.h"

/* ---- export ------------------------------------------------------------ */

#define EXPORT_BATCH 10000
#define EXPORT_CP_BATCH 256

struct exp {
	FILE *f;
	bool json;
	json_t *entries;
};

static void csv_field(FILE *f, const char *t, bool last)
{
	if (strpbrk(t, ",\"\r\n")) {
		fputc('"', f);
		for (; *t; t++) {
			if (*t == '"')
				fputc('"', f);
			fputc(*t, f);
		}
		fputc('"', f);
	} else {
		fputs(t, f);
	}
	fputc(last ? '\n' : ',', f);
}

static int exp_entry(void *ctx, const struct sms_audit_entry *e)
{
	struct exp *x = ctx;

	if (x->json) {
		json_t *o = json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "seq", (json_int_t)e->seq, "at_ms",
				      (json_int_t)e->at_ms, "who", e->who, "action", e->action, "object", e->object,
				      "details", e->details, "snapshot", e->snapshot, "prev_hash", e->prev_hex, "hash",
				      e->hash_hex);

		return o && json_array_append_new(x->entries, o) == 0 ? 0 : CE_NOMEM;
	}
	fprintf(x->f, "entry,%" PRId64 ",%" PRId64 ",", e->seq, e->at_ms);
	csv_field(x->f, e->who, false);
	csv_field(x->f, e->action, false);
	csv_field(x->f, e->object, false);
	csv_field(x->f, e->details, false);
	csv_field(x->f, e->snapshot, false);
	csv_field(x->f, e->prev_hex, false);
	csv_field(x->f, e->hash_hex, true);
	return ferror(x->f) ? CE_IO : 0;
}

/* Every checkpoint (signed heads): "checkpoint,seq,at_ms,key_id,,,,sig,,hash" in CSV. */
static int exp_checkpoints(struct sms_store *s, struct exp *x, json_t *cps)
{
	struct sms_audit_checkpoint cp[EXPORT_CP_BATCH];
	int64_t after = 0;
	int r;

	for (;;) {
		size_t n = 0;

		if ((r = sms_audit_checkpoints(s, after, cp, EXPORT_CP_BATCH, &n)) != 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			char h[65], sig[129];

			hex_encode(cp[i].hash, 32, h);
			hex_encode(cp[i].sig, 64, sig);
			if (x->json) {
				if (json_array_append_new(cps, json_pack("{s:I,s:I,s:s,s:s,s:s}", "seq", (json_int_t)cp[i].seq,
								    "at_ms", (json_int_t)cp[i].at_ms, "hash", h, "key_id",
								    cp[i].key_id, "sig", sig)) != 0)
					return CE_NOMEM;
			} else {
				fprintf(x->f, "checkpoint,%" PRId64 ",%" PRId64 ",%s,,,,%s,,%s\n", cp[i].seq, cp[i].at_ms,
					cp[i].key_id, sig, h);
			}
		}
		if (n < EXPORT_CP_BATCH)
			return 0;
		after = cp[n - 1].seq;
	}
}

int sms_audit_export(struct sms_store *s, int64_t from_seq, int64_t to_seq, bool json, FILE *f)
{
	struct exp x = { .f = f, .json = json };
	json_t *cps = NULL;
	int64_t after = from_seq > 0 ? from_seq - 1 : 0;
	int r = CE_NOMEM;

	if (from_seq < 0 || to_seq < 0)
		return CE_ARG;
	if (json && (!(x.entries = json_array()) || !(cps = json_array())))
		goto out;
	if (!json)
		fprintf(f, "record,seq,at_ms,who,action,object,details,snapshot,prev_hash,hash\n");
	for (;;) {
		size_t n = 0;

		if ((r = sms_audit_range(s, after, to_seq, EXPORT_BATCH, exp_entry, &x, &n)) != 0)
			goto out;
		if (n < EXPORT_BATCH)
			break;
		after += (int64_t)n;
	}
	if ((r = exp_checkpoints(s, &x, cps)) != 0)
		goto out;
	if (json) {
		json_t *root = json_pack("{s:s,s:s,s:s,s:o,s:o}", "format", "castellan-audit-1", "hash",
					 "SHA-256(\"CSTLAUD1\" || prev_hash || seq u64 BE || at_ms i64 BE || for who, action,"
					 " object, details, snapshot: len u32 BE || UTF-8 bytes); first prev_hash = 0^32",
					 "checkpoint_signature",
					 "Ed25519 over \"CSTLACP1\" || seq u64 BE || hash[32] || at_ms i64 BE",
					 "entries", x.entries, "checkpoints", cps);

		x.entries = cps = NULL;
		if (!root || json_dumpf(root, f, JSON_INDENT(1)) != 0)
			r = CE_IO;
		fputc('\n', f);
		json_decref(root);
	}
out:
	json_decref(x.entries);
	json_decref(cps);
	if (fflush(f) != 0 && r == 0)
		r = CE_IO;
	return r;
}

/* ---- the checkpoint file ---------------------------------------------- */

#define CP_LINE_MAX 400

int sms_audit_check_file(struct sms_store *s, const uint8_t *buf, size_t len, const uint8_t *pub,
	struct sms_audit_verify *v, size_t *matched, size_t *bad_line)
{
	struct cur c;
	size_t lineno = 0;
	int r;

	*matched = 0;
	*bad_line = 0;
	cur_init(&c, buf, len);
	while (cur_left(&c) && !v->bad_seq) {
		char ln[CP_LINE_MAX];
		struct sms_audit_checkpoint cp;
		struct cur line;

		lineno++;
		if (cur_line(&c, &line) != 0)
			return CE_FORMAT;
		if (cur_left(&line) == 0)
			continue;
		if (cur_text(&line, ln, sizeof(ln)) != 0 || sms_audit_checkpoint_parse(ln, &cp) != 0) {
			*bad_line = lineno;
			return CE_FORMAT;
		}
		if ((r = sms_audit_check_checkpoint(s, &cp, pub, v)) != 0)
			return r;
		(*matched)++;
	}
	return 0;
}

int sms_audit_checkpoint_append(const char *path, const struct sms_audit_checkpoint *cp)
{
	char line[300];
	size_t n;
	int fd, r;

	if ((r = sms_audit_checkpoint_line(cp, line, sizeof(line))) != 0)
		return r;
	n = strlen(line);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		return CE_IO;
	r = write(fd, line, n) == (ssize_t)n && fsync(fd) == 0 ? 0 : CE_IO;
	if (close(fd) != 0)
		r = CE_IO;
	return r;
}

int sms_audit_verify_report(struct sms_store *s, const uint8_t *pub, const char *cp_path, FILE *out, bool *intact)
{
	struct sms_audit_verify v;
	char head[65];
	size_t from_file = 0, line = 0, len = 0;
	uint8_t *buf = NULL;
	int r;

	*intact = false;
	if ((r = sms_audit_verify(s, pub, &v)) != 0)
		return r;
	if (!v.bad_seq && cp_path) {
		if ((r = file_read_all(cp_path, SMS_AUDIT_CP_FILE_MAX, &buf, &len)) != 0) {
			fprintf(stderr, "audit: %s: %s\n", cp_path, err_str(r));
			return r;
		}
		r = sms_audit_check_file(s, buf, len, pub, &v, &from_file, &line);
		free(buf);
		if (r == CE_FORMAT && line)
			fprintf(stderr, "audit: %s line %zu: not a checkpoint line\n", cp_path, line);
		if (r != 0)
			return r;
	}
	hex_encode(v.head, 32, head);
	if (v.bad_seq) {
		fprintf(out, "audit log BROKEN at entry %" PRId64 ": %s\n", v.bad_seq, v.why);
		fprintf(out, "  %" PRId64 " entries checked before it\n", v.entries);
		return 0;
	}
	*intact = true;
	fprintf(out, "audit log intact: %" PRId64 " entries, head %s\n", v.entries, v.entries ? head : "-");
	fprintf(out, "  checkpoints: %" PRId64 " matched (%zu from %s), newest at entry %" PRId64 ", signatures %s\n",
		v.checkpoints, from_file, cp_path ? cp_path : "no file", v.checkpoint_seq,
		pub ? "verified" : "NOT checked (no --pub)");
	if (v.checkpoint_seq < v.last_seq)
		fprintf(out, "  entries after %" PRId64 " are not covered by a signed checkpoint yet\n", v.checkpoint_seq);
	return 0;
}

/* ---- the commands' work ------------------------------------------------- */

int sms_audit_checkpoint_run(struct sms_store *s, const char *key_path, const char *pfile, const char *who,
	const char *out_path, char *line, size_t cap, bool *key_bad)
{
	struct sms_audit_checkpoint cp;
	uint8_t priv[32];
	int r;

	*key_bad = false;
	if ((r = sms_audit_key_load(key_path, pfile, priv)) != 0) {
		*key_bad = true;
		return r;
	}
	r = sms_audit_checkpoint(s, priv, who, true, &cp);
	secret_wipe(priv, sizeof(priv));
	if (r != 0 || (r = sms_audit_checkpoint_line(&cp, line, cap)) != 0)
		return r;
	if (out_path && (r = sms_audit_checkpoint_append(out_path, &cp)) != 0)
		return r;
	return 0;
}

int sms_audit_verify_files(struct sms_store *s, const char *pub_path, const char *cp_path, FILE *out, bool *intact,
	bool *pub_bad)
{
	uint8_t pub[32];
	int r;

	*intact = false;
	*pub_bad = false;
	if (pub_path && (r = pk_read_file(pub_path, pub)) != 0) {
		*pub_bad = true;
		return r;
	}
	return sms_audit_verify_report(s, pub_path ? pub : NULL, cp_path, out, intact);
}

int sms_audit_export_file(struct sms_store *s, int64_t from_seq, int64_t to_seq, bool json, const char *out_path)
{
	FILE *f = out_path ? fopen(out_path, "w") : stdout;
	int r;

	if (!f)
		return CE_IO;
	r = sms_audit_export(s, from_seq, to_seq, json, f);
	if (out_path && fclose(f) != 0 && r == 0)
		r = CE_IO;
	return r;
}
