/*
 * csv.c - CSV import/export of cards (csv.h, docs/csv.md): the RFC 4180
 * reader, the row checks, the two-pass import (check everything, then
 * apply in one store transaction) and the export that an import reads
 * back to the same state.
 */
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include "sms/csv.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"

/* ---- reader ------------------------------------------------------------ */

void csv_reader_init(struct csv_reader *r, const char *buf, size_t len)
{
	r->buf = buf;
	r->len = len;
	r->off = 0;
	r->line = 1;
	r->rec_line = 1;
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		r->off = 3;
}

#define CSV_FAIL(err, text) do { *why = (text); return (err); } while (0)

int csv_read(struct csv_reader *r, struct csv_record *rec, const char **why)
{
	size_t o = 0;

	*why = "";
	rec->n = 0;
	/* Skip lines holding nothing. */
	for (;;) {
		if (r->off >= r->len)
			return 0;
		if (r->buf[r->off] == '\n') {
			r->off++;
			r->line++;
		} else if (r->buf[r->off] == '\r' && r->len - r->off >= 2 && r->buf[r->off + 1] == '\n') {
			r->off += 2;
			r->line++;
		} else {
			break;
		}
	}
	r->rec_line = r->line;
	for (;;) { /* one field per turn */
		bool quoted = false, closed = false, end_rec = false;

		if (rec->n == CSV_FIELDS_MAX)
			CSV_FAIL(CE_LIMIT, "more than 16 fields");
		rec->field[rec->n] = rec->data + o;
		if (r->off < r->len && r->buf[r->off] == '"') {
			quoted = true;
			r->off++;
		}
		for (;;) {
			char c;

			if (r->off >= r->len) {
				if (quoted && !closed)
					CSV_FAIL(CE_FORMAT, "unterminated quoted field");
				end_rec = true;
				break;
			}
			c = r->buf[r->off];
			if (c == '\0')
				CSV_FAIL(CE_FORMAT, "NUL byte");
			if (quoted && !closed) {
				if (c == '"') {
					if (r->len - r->off >= 2 && r->buf[r->off + 1] == '"') {
						r->off++; /* "" is one quote */
					} else {
						r->off++;
						closed = true;
						continue;
					}
				} else if (c == '\n') {
					r->line++;
				}
			} else {
				if (c == ',') {
					r->off++;
					break;
				}
				if (c == '\n' || c == '\r') {
					if (c == '\r') {
						if (r->len - r->off < 2 || r->buf[r->off + 1] != '\n')
							CSV_FAIL(CE_FORMAT, "CR not followed by LF");
						r->off++;
					}
					r->off++;
					r->line++;
					end_rec = true;
					break;
				}
				if (closed)
					CSV_FAIL(CE_FORMAT, "text after a closing quote");
				if (c == '"')
					CSV_FAIL(CE_FORMAT, "quote inside an unquoted field");
			}
			if (CSV_RECORD_MAX - o < 2)
				CSV_FAIL(CE_LIMIT, "record longer than CSV_RECORD_MAX (81920) bytes");
			rec->data[o++] = c;
			r->off++;
		}
		if (o >= CSV_RECORD_MAX)
			CSV_FAIL(CE_LIMIT, "record longer than CSV_RECORD_MAX (81920) bytes");
		rec->data[o++] = '\0';
		rec->n++;
		if (end_rec)
			return 1;
	}
}

int csv_quote(const char *f, char *out, size_t cap, size_t *len)
{
	size_t n = strlen(f), o = *len;
	/* A leading BOM would be taken for the file's own at its start. */
	bool q = n && (f[0] == ' ' || f[n - 1] == ' ' || f[0] == '\xEF');

	for (size_t i = 0; i < n && !q; i++)
		q = f[i] == ',' || f[i] == '"' || f[i] == '\r' || f[i] == '\n';
	if (!q) {
		if (cap - o < n)
			return CE_OVERFLOW;
		memcpy(out + o, f, n);
		*len = o + n;
		return 0;
	}
	if (cap - o < 2)
		return CE_OVERFLOW;
	out[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (cap - o < (f[i] == '"' ? 3u : 2u))
			return CE_OVERFLOW;
		if (f[i] == '"')
			out[o++] = '"';
		out[o++] = f[i];
	}
	out[o++] = '"';
	*len = o;
	return 0;
}

/* ---- columns and rows -------------------------------------------------- */

enum col { C_SERIAL, C_NAME, C_INFO, C_AC, C_PAIR, C_START, C_FINISH, C_CHIP, C_STATE, C_PACKAGES, C_N };

static const char *const col_names[C_N] = {
	"serial_no", "name", "info", "access_criteria", "pair", "start", "finish", "chip_id", "state", "packages",
};

static const char *const state_names[] = { "active", "blocked", "retired" };

struct header {
	int idx[C_N]; /* field index of each column, -1 if absent */
	size_t n;     /* fields per record */
};

struct row {
	uint64_t serial;
	struct sms_card_change ch;
	bool has_packages;
	size_t npk;
	uint32_t pk[CSV_ROW_PACKAGES_MAX];
};

/* Known packages: which ids exist, and the names sorted for lookup. */
struct pkg_index {
	uint8_t exists[SMS_PACKAGES_MAX / 8];
	struct sms_package *byname;
	size_t n, cap;
};

static int pkg_add(void *ctx, const struct sms_package *p)
{
	struct pkg_index *pi = ctx;

	if (pi->n == pi->cap) {
		size_t nc = pi->cap ? pi->cap * 2 : 64;
		struct sms_package *v = realloc(pi->byname, nc * sizeof(*v));

		if (!v)
			return CE_NOMEM;
		pi->byname = v;
		pi->cap = nc;
	}
	pi->byname[pi->n++] = *p;
	pi->exists[p->id / 8] |= (uint8_t)(1u << (p->id % 8));
	return 0;
}

static int pkg_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sms_package *)a)->name, ((const struct sms_package *)b)->name);
}

static int pkg_load(struct sms_store *s, struct pkg_index *pi)
{
	int r = sms_package_list(s, -1, SMS_PACKAGES_MAX, pkg_add, pi, NULL);

	if (r == 0 && pi->n)
		qsort(pi->byname, pi->n, sizeof(*pi->byname), pkg_cmp);
	return r;
}

static int header_parse(const struct csv_record *rec, struct header *h, char *why, size_t cap)
{
	for (size_t c = 0; c < C_N; c++)
		h->idx[c] = -1;
	h->n = rec->n;
	for (size_t i = 0; i < rec->n; i++) {
		size_t c;

		for (c = 0; c < C_N; c++)
			if (strcmp(rec->field[i], col_names[c]) == 0)
				break;
		if (c == C_N) {
			snprintf(why, cap, "unknown column '%.40s' (field %zu)", rec->field[i], i + 1);
			return CE_FORMAT;
		}
		if (h->idx[c] >= 0) {
			snprintf(why, cap, "column %s given twice", col_names[c]);
			return CE_FORMAT;
		}
		h->idx[c] = (int)i;
	}
	if (h->idx[C_SERIAL] < 0) {
		snprintf(why, cap, "no serial_no column");
		return CE_FORMAT;
	}
	return 0;
}

static bool digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Text field into dst (cap includes the NUL). */
static int text_field(const char *v, char *dst, size_t cap, const char *col, char *why, size_t wcap)
{
	if (strlen(v) >= cap) {
		snprintf(why, wcap, "%s: longer than %zu bytes", col, cap - 1);
		return CE_FORMAT;
	}
	if (!sms_text_valid(v)) {
		snprintf(why, wcap, "%s: not UTF-8 text (or holds control characters)", col);
		return CE_FORMAT;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int packages_field(const char *v, const struct pkg_index *pi, struct row *w, char *why, size_t wcap)
{
	const char *p = v;

	w->has_packages = true;
	w->npk = 0;
	if (!*v)
		return 0;
	for (;;) {
		const char *e = strchr(p, ';');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char tok[SMS_NAME_MAX + 1];
		uint64_t id = 0;
		bool found = false;

		if (n == 0 || n > SMS_NAME_MAX) {
			snprintf(why, wcap, "packages: empty or over-long entry");
			return CE_FORMAT;
		}
		if (w->npk == CSV_ROW_PACKAGES_MAX) {
			snprintf(why, wcap, "packages: more than %d", CSV_ROW_PACKAGES_MAX);
			return CE_FORMAT;
		}
		memcpy(tok, p, n);
		tok[n] = '\0';
		if (digits(tok, 1, 5) && parse_u64(tok, SMS_PACKAGES_MAX - 1, &id) == 0) {
			found = !pi || (pi->exists[id / 8] >> (id % 8) & 1);
		} else if (pi && pi->n) {
			struct sms_package key;
			const struct sms_package *hit;

			memcpy(key.name, tok, n + 1);
			hit = bsearch(&key, pi->byname, pi->n, sizeof(*pi->byname), pkg_cmp);
			if (hit) {
				id = hit->id;
				found = true;
			}
		}
		if (!found) {
			snprintf(why, wcap, "packages: no package '%.60s'", tok);
			return CE_FORMAT;
		}
		w->pk[w->npk++] = (uint32_t)id;
		if (!e)
			return 0;
		p = e + 1;
	}
}

static int u64_field(const char *v, const char *col, size_t maxdig, uint64_t *out, char *why, size_t wcap)
{
	if (!digits(v, 1, maxdig) || parse_u64(v, INT64_MAX, out) != 0) {
		snprintf(why, wcap, "%s: not 1-%zu decimal digits", col, maxdig);
		return CE_FORMAT;
	}
	return 0;
}

/* Check one record into *w. Empty numeric fields keep the card's value. */
static int row_parse(const struct csv_record *rec, const struct header *h, const struct pkg_index *pi,
		     struct row *w, char *why, size_t wcap)
{
	struct sms_card_change *ch = &w->ch;
	uint64_t v;
	int r;

	sms_card_change_init(ch);
	w->has_packages = false;
	w->npk = 0;
	if (rec->n != h->n) {
		snprintf(why, wcap, "%zu fields, the header has %zu", rec->n, h->n);
		return CE_FORMAT;
	}
	for (size_t c = 0; c < C_N; c++) {
		const char *f;

		if (h->idx[c] < 0)
			continue;
		f = rec->field[h->idx[c]];
		if (!*f && c != C_NAME && c != C_INFO && c != C_CHIP && c != C_PACKAGES) {
			if (c == C_SERIAL) {
				snprintf(why, wcap, "serial_no: empty");
				return CE_FORMAT;
			}
			continue; /* keep */
		}
		switch ((enum col)c) {
		case C_SERIAL:
			if ((r = u64_field(f, "serial_no", 19, &w->serial, why, wcap)) != 0)
				return r;
			if (w->serial == 0) {
				snprintf(why, wcap, "serial_no: 0");
				return CE_FORMAT;
			}
			break;
		case C_NAME:
			ch->has_name = true;
			if ((r = text_field(f, ch->name, sizeof(ch->name), "name", why, wcap)) != 0)
				return r;
			if (!sms_name_fits(ch->name)) {
				snprintf(why, wcap, "name: longer than %d characters", SMS_NAME_CHARS);
				return CE_FORMAT;
			}
			break;
		case C_INFO:
			ch->has_info = true;
			if ((r = text_field(f, ch->info, sizeof(ch->info), "info", why, wcap)) != 0)
				return r;
			break;
		case C_CHIP:
			ch->has_chip = true;
			if ((r = text_field(f, ch->chip_id, sizeof(ch->chip_id), "chip_id", why, wcap)) != 0)
				return r;
			break;
		case C_AC: {
			uint8_t m[4];

			if (hex_decode(f, m, sizeof(m)) != 0) {
				snprintf(why, wcap, "access_criteria: not 8 hex digits");
				return CE_FORMAT;
			}
			ch->has_ac = true;
			ch->access_criteria = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
			break;
		}
		case C_PAIR:
			if (strcmp(f, "0") != 0 && strcmp(f, "1") != 0) {
				snprintf(why, wcap, "pair: not 0 or 1");
				return CE_FORMAT;
			}
			ch->has_pair = true;
			ch->pair = f[0] == '1';
			break;
		case C_START:
		case C_FINISH:
			if ((r = u64_field(f, col_names[c], 11, &v, why, wcap)) != 0)
				return r;
			if (c == C_START) {
				ch->has_start = true;
				ch->start = (int64_t)v;
			} else {
				ch->has_finish = true;
				ch->finish = (int64_t)v;
			}
			break;
		case C_STATE: {
			size_t i;

			for (i = 0; i < 3; i++)
				if (strcmp(f, state_names[i]) == 0 || (f[0] == (char)('0' + i) && !f[1]))
					break;
			if (i == 3) {
				snprintf(why, wcap, "state: not active, blocked or retired");
				return CE_FORMAT;
			}
			ch->has_state = true;
			ch->state = (enum sms_card_state)i;
			break;
		}
		case C_PACKAGES:
			if ((r = packages_field(f, pi, w, why, wcap)) != 0)
				return r;
			break;
		case C_N:
			break;
		}
	}
	if (ch->has_start && ch->has_finish && ch->finish < ch->start) {
		snprintf(why, wcap, "finish before start");
		return CE_FORMAT;
	}
	/* With a packages column the card's subscriptions become exactly the
	 * listed packages (plus the access_criteria mask if given): packages
	 * 0..31 go through the mask. */
	if (w->has_packages) {
		uint32_t m = ch->has_ac ? ch->access_criteria : 0;

		for (size_t i = 0; i < w->npk; i++)
			if (w->pk[i] < 32)
				m |= 1u << w->pk[i];
		ch->has_ac = true;
		ch->access_criteria = m;
	}
	return 0;
}

/* ---- import ------------------------------------------------------------ */

struct seen {
	uint64_t serial;
	size_t line;
};

static int seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	if (x->serial != y->serial)
		return x->serial < y->serial ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* The apply pass works on batches of rows: one statement tells which
 * cards exist, new cards go through the store's bulk path (multi-row
 * INSERTs), existing ones through sms_card_change. */
#define APPLY_BATCH SMS_BULK_ROWS

struct import_ctx {
	struct csv_record rec;
	struct row row;
	struct header hdr;
	struct pkg_index pi;
	struct sms_subscription *subs; /* SMS_PACKAGES_MAX, apply pass */
	struct row *batch;             /* APPLY_BATCH rows, apply pass */
	size_t line[APPLY_BATCH];
	uint64_t serial[APPLY_BATCH];
	bool exists[APPLY_BATCH];
	struct sms_bulk *bulk;
};

/* Pass 1: every record checked, serials collected for duplicates. */
static int check_pass(struct import_ctx *x, const char *buf, size_t len, bool with_pkgs, csv_progress_fn progress,
		      void *pctx, struct csv_result *res)
{
	struct csv_reader rd;
	struct seen *seen = NULL;
	size_t nseen = 0, cap = 0;
	const char *why;
	int r;

	csv_reader_init(&rd, buf, len);
	r = csv_read(&rd, &x->rec, &why);
	if (r <= 0) {
		res->line = rd.rec_line;
		snprintf(res->why, sizeof(res->why), "%s", r == 0 ? "empty file: no header line" : why);
		return r == 0 ? CE_FORMAT : r;
	}
	if ((r = header_parse(&x->rec, &x->hdr, res->why, sizeof(res->why))) != 0) {
		res->line = rd.rec_line;
		return r;
	}
	for (;;) {
		if ((r = csv_read(&rd, &x->rec, &why)) == 0)
			break;
		if (r < 0) {
			res->line = rd.rec_line;
			snprintf(res->why, sizeof(res->why), "%s", why);
			goto out;
		}
		if ((r = row_parse(&x->rec, &x->hdr, with_pkgs ? &x->pi : NULL, &x->row, res->why,
				   sizeof(res->why))) != 0) {
			res->line = rd.rec_line;
			goto out;
		}
		if (nseen == cap) {
			size_t nc = cap ? cap * 2 : 1024;
			struct seen *v = realloc(seen, nc * sizeof(*v));

			if (!v) {
				r = CE_NOMEM;
				goto out;
			}
			seen = v;
			cap = nc;
		}
		seen[nseen].serial = x->row.serial;
		seen[nseen++].line = rd.rec_line;
		if (progress && (nseen & 4095) == 0)
			progress(pctx, "check", rd.off, len);
	}
	res->rows = nseen;
	if (nseen > 1) {
		qsort(seen, nseen, sizeof(*seen), seen_cmp);
		for (size_t i = 1; i < nseen; i++) {
			if (seen[i].serial == seen[i - 1].serial) {
				res->line = seen[i].line;
				snprintf(res->why, sizeof(res->why), "serial_no %" PRIu64 " already on line %zu",
					 seen[i].serial, seen[i - 1].line);
				r = CE_FORMAT;
				goto out;
			}
		}
	}
	if (progress)
		progress(pctx, "check", len, len);
	r = 0;
out:
	free(seen);
	return r;
}

/* A card with packages needs a period: without start/finish it would get
 * 0..0, subscribed but never in force. */
static int period_given(int64_t finish, uint32_t access_criteria, size_t npk, struct csv_result *res)
{
	if (finish != 0 || (access_criteria == 0 && npk == 0))
		return 0;
	snprintf(res->why, sizeof(res->why), "packages without a period: give start and finish "
		 "(UNIX seconds), else the card is subscribed but never in force");
	return CE_FORMAT;
}

/* A card that exists: the row's changes, then its packages >= 32 become
 * exactly the listed ones (with a packages column). */
static int apply_update(struct sms_store *s, struct import_ctx *x, const struct row *w, const char *who,
			struct csv_result *res)
{
	struct sms_card cur;
	int r;

	if ((r = sms_card_change(s, w->serial, &w->ch, who, &cur)) != 0)
		return r;
	if ((r = period_given(cur.finish, w->ch.has_ac ? cur.access_criteria : 0, w->npk, res)) != 0)
		return r;
	res->updated++;
	if (w->has_packages) {
		size_t n = 0;

		if ((r = sms_subscription_list(s, w->serial, x->subs, SMS_PACKAGES_MAX, &n)) != 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			bool keep = x->subs[i].package < 32;

			for (size_t k = 0; k < w->npk && !keep; k++)
				keep = w->pk[k] == x->subs[i].package;
			if (!keep && (r = sms_unsubscribe(s, w->serial, x->subs[i].package, who)) != 0)
				return r;
		}
	}
	for (size_t k = 0; k < w->npk; k++) {
		struct sms_subscription sub = { w->serial, w->pk[k], cur.start, cur.finish };

		if (w->pk[k] >= 32 && (r = sms_subscribe(s, &sub, who)) != 0)
			return r;
	}
	return 0;
}

/* A new card: queued on the store's bulk path (written by batches). */
static int apply_new(struct import_ctx *x, const struct row *w, struct csv_result *res)
{
	struct sms_card c = { .serial = w->serial };
	int r;

	if (w->ch.has_chip)
		memcpy(c.chip_id, w->ch.chip_id, sizeof(c.chip_id));
	if (w->ch.has_name)
		memcpy(c.name, w->ch.name, sizeof(c.name));
	if (w->ch.has_info)
		memcpy(c.info, w->ch.info, sizeof(c.info));
	c.state = w->ch.has_state ? w->ch.state : SMS_CARD_ACTIVE;
	c.pair = w->ch.has_pair && w->ch.pair;
	c.start = w->ch.has_start ? w->ch.start : 0;
	c.finish = w->ch.has_finish ? w->ch.finish : 0;
	c.access_criteria = w->ch.has_ac ? w->ch.access_criteria : 0;
	if ((r = period_given(c.finish, c.access_criteria, w->npk, res)) != 0)
		return r;
	if ((r = sms_bulk_card_add(x->bulk, &c, w->pk, w->npk)) != 0)
		return r;
	res->added++;
	return 0;
}

/* Apply x->batch[0..n); on failure *line is the row at fault. */
static int apply_batch(struct sms_store *s, struct import_ctx *x, size_t n, const char *who, struct csv_result *res,
		       size_t *line)
{
	int r;

	*line = x->line[0];
	if ((r = sms_cards_exist(s, x->serial, n, x->exists)) != 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		*line = x->line[i];
		r = x->exists[i] ? apply_update(s, x, &x->batch[i], who, res) : apply_new(x, &x->batch[i], res);
		if (r != 0)
			return r;
	}
	return 0;
}

static int apply_pass(struct sms_store *s, struct import_ctx *x, const char *buf, size_t len, const char *who,
		      csv_progress_fn progress, void *pctx, struct csv_result *res)
{
	struct csv_reader rd;
	const char *why;
	size_t n = 0, nb = 0, line = 0;
	int r;

	csv_reader_init(&rd, buf, len);
	if ((r = csv_read(&rd, &x->rec, &why)) != 1) /* the header, checked */
		return r < 0 ? r : CE_INTERNAL;
	if ((r = sms_tx_begin(s)) != 0)
		return r;
	if ((r = sms_bulk_new(s, who, &x->bulk)) != 0)
		goto end;
	while ((r = csv_read(&rd, &x->rec, &why)) == 1) {
		if ((r = row_parse(&x->rec, &x->hdr, &x->pi, &x->batch[nb], res->why, sizeof(res->why))) != 0) {
			line = rd.rec_line;
			break;
		}
		x->line[nb] = rd.rec_line;
		x->serial[nb] = x->batch[nb].serial;
		if (++nb == APPLY_BATCH) {
			r = apply_batch(s, x, nb, who, res, &line);
			nb = 0;
			if (r != 0)
				break;
		}
		if (progress && (++n & 4095) == 0)
			progress(pctx, "apply", rd.off, len);
	}
	if (r == 0 && nb)
		r = apply_batch(s, x, nb, who, res, &line);
	if (r == 0 && (r = sms_bulk_flush(x->bulk)) != 0)
		line = rd.rec_line;
	if (r == 0) {
		/* One summary row: which file (by its SHA-256), how many rows. */
		uint8_t h[SHA256_DIGEST_LENGTH];
		char hex[2 * SHA256_DIGEST_LENGTH + 1], what[200];

		SHA256((const unsigned char *)buf, len, h);
		hex_encode(h, sizeof(h), hex);
		snprintf(what, sizeof(what), "csv import %zu rows (%zu added, %zu updated) sha256=%s", res->rows,
			 res->added, res->updated, hex);
		r = sms_audit_add(s, who, what);
	}
	if (r != 0) {
		res->line = line;
		if (r == CE_BLOCKED)
			snprintf(res->why, sizeof(res->why), "blacklisted card or box: it cannot be activated or re-deployed");
		else if (!res->why[0] || r != CE_FORMAT)
			snprintf(res->why, sizeof(res->why), "refused by the database: %s", err_str(r));
	}
end:
	sms_bulk_free(x->bulk);
	x->bulk = NULL;
	r = sms_tx_end(s, r);
	if (r == 0 && progress)
		progress(pctx, "apply", len, len);
	if (r != 0 && !res->why[0]) {
		res->line = 0;
		snprintf(res->why, sizeof(res->why), "commit failed: %s", err_str(r));
	}
	if (r != 0)
		res->added = res->updated = 0;
	return r;
}

int csv_import(struct sms_store *s, const char *buf, size_t len, const char *who, csv_progress_fn progress,
	       void *pctx, struct csv_result *res)
{
	struct import_ctx *x;
	int r;

	memset(res, 0, sizeof(*res));
	if (len > CSV_FILE_MAX) {
		snprintf(res->why, sizeof(res->why), "file over %u bytes", CSV_FILE_MAX);
		return CE_LIMIT;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return CE_NOMEM;
	if ((r = pkg_load(s, &x->pi)) != 0) {
		snprintf(res->why, sizeof(res->why), "cannot read packages: %s", err_str(r));
		goto out;
	}
	if ((r = check_pass(x, buf, len, true, progress, pctx, res)) != 0)
		goto out;
	x->subs = malloc(SMS_PACKAGES_MAX * sizeof(*x->subs));
	x->batch = malloc(APPLY_BATCH * sizeof(*x->batch));
	if (!x->subs || !x->batch) {
		r = CE_NOMEM;
		goto out;
	}
	r = apply_pass(s, x, buf, len, who, progress, pctx, res);
out:
	metric_add(MET_CSV_IMPORTS, r == 0 ? "ok" : "failed", NULL, 1);
	metric_add(MET_CSV_ROWS, NULL, NULL, r == 0 ? res->added + res->updated : 0);
	free(x->batch);
	free(x->subs);
	free(x->pi.byname);
	free(x);
	return r;
}

int csv_check(const char *buf, size_t len, struct csv_result *res)
{
	struct import_ctx *x;
	int r;

	memset(res, 0, sizeof(*res));
	if (len > CSV_FILE_MAX)
		return CE_LIMIT;
	x = calloc(1, sizeof(*x));
	if (!x)
		return CE_NOMEM;
	r = check_pass(x, buf, len, false, NULL, NULL, res);
	free(x);
	return r;
}

/* ---- export ------------------------------------------------------------ */

struct export_ctx {
	struct sms_card *page;
	size_t n;
};

static int page_add(void *ctx, const struct sms_card *c)
{
	struct export_ctx *e = ctx;

	/* Up to info, then info's bytes: not the whole 64 KiB buffer. */
	memcpy(&e->page[e->n], c, offsetof(struct sms_card, info));
	memcpy(e->page[e->n++].info, c->info, strlen(c->info) + 1);
	return 0;
}

#define EXPORT_PAGE 1000

static int export_row(const struct sms_card *c, const struct sms_subscription *subs, size_t nsubs, char *line,
		      size_t cap, size_t *len)
{
	char num[32];
	size_t o = 0;
	int r = 0;

#define PUT(s) do { size_t n_ = strlen(s); if (cap - o < n_ + 1) return CE_OVERFLOW; memcpy(line + o, s, n_); \
		o += n_; } while (0)
	snprintf(num, sizeof(num), "%" PRIu64 ",", c->serial);
	PUT(num);
	if ((r = csv_quote(c->name, line, cap, &o)) != 0)
		return r;
	PUT(",");
	if ((r = csv_quote(c->info, line, cap, &o)) != 0)
		return r;
	snprintf(num, sizeof(num), ",%08" PRIX32 ",%d,", c->access_criteria, (int)c->pair);
	PUT(num);
	snprintf(num, sizeof(num), "%" PRId64 ",%" PRId64 ",", c->start, c->finish);
	PUT(num);
	if ((r = csv_quote(c->chip_id, line, cap, &o)) != 0)
		return r;
	PUT(",");
	PUT(state_names[(unsigned)c->state <= 2 ? c->state : 0]);
	PUT(",");
	for (size_t i = 0, k = 0; i < nsubs; i++) {
		if (subs[i].package < 32)
			continue;
		snprintf(num, sizeof(num), "%s%" PRIu32, k++ ? ";" : "", subs[i].package);
		PUT(num);
	}
	PUT("\r\n");
#undef PUT
	*len = o;
	return 0;
}

int csv_export(struct sms_store *s, int (*out)(void *ctx, const char *p, size_t n), void *ctx, size_t *rows)
{
	static const char header[] = "serial_no,name,info,access_criteria,pair,start,finish,chip_id,state,packages\r\n";
	struct export_ctx e = { 0 };
	struct sms_subscription *subs = NULL;
	char *line = NULL;
	const size_t line_cap = 4 * (SMS_NAME_MAX + SMS_INFO_MAX + SMS_CHIP_ID_MAX) + 8 * SMS_PACKAGES_MAX;
	uint64_t after = 0;
	int r;

	*rows = 0;
	e.page = malloc(EXPORT_PAGE * sizeof(*e.page));
	subs = malloc(SMS_PACKAGES_MAX * sizeof(*subs));
	line = malloc(line_cap);
	if (!e.page || !subs || !line) {
		r = CE_NOMEM;
		goto out;
	}
	if ((r = out(ctx, header, sizeof(header) - 1)) != 0)
		goto out;
	for (;;) {
		size_t n = 0;

		e.n = 0;
		if ((r = sms_card_list(s, after, EXPORT_PAGE, page_add, &e, &n)) != 0)
			goto out;
		for (size_t i = 0; i < e.n; i++) {
			size_t ns = 0, len = 0;

			if ((r = sms_subscription_list(s, e.page[i].serial, subs, SMS_PACKAGES_MAX, &ns)) != 0 ||
			    (r = export_row(&e.page[i], subs, ns, line, line_cap, &len)) != 0 ||
			    (r = out(ctx, line, len)) != 0)
				goto out;
			(*rows)++;
		}
		if (e.n < EXPORT_PAGE)
			break;
		after = e.page[e.n - 1].serial;
	}
	r = 0;
out:
	free(line);
	free(subs);
	free(e.page);
	return r;
}
