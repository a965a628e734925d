/*
 * cmd_sms_tvcas.c - `castellan sms import-tvcas FILE`: the free CAS's card
 * table (sms/tvcas.h: a MariaDB dump or its CSV/TSV export) into the SMS
 * store. The whole file is read and checked first (a bad row: its line and
 * why, nothing imported; a serial twice: refused), then applied in one
 * transaction: a new card is added, a card the store has is changed to what
 * the file says (name, info, packages 0..31 from access_criteria with the
 * card's period, pair, period, state). docs/migration-from-tvcas.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "cli/cli.h"
#include "lib/util.h"
#include "sms/store.h"
#include "sms/tvcas.h"

#define WHO "import-tvcas"
#define WARN_LINES 20 /* rows without a period named one by one; the rest counted */

struct seen {
	uint64_t serial;
	size_t line;
};

struct check_ctx {
	struct seen *v;
	size_t n, cap;
	size_t no_period, disabled;
	size_t warned, cleaned;
};

static int check_row(void *ctx, const struct tvcas_card *c)
{
	struct check_ctx *k = ctx;

	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 4096;
		struct seen *nv = realloc(k->v, cap * sizeof(*nv));

		if (!nv)
			return CE_NOMEM;
		k->v = nv;
		k->cap = cap;
	}
	k->v[k->n++] = (struct seen){ c->serial, c->line };
	if (!c->has_start || !c->has_finish) {
		if (k->warned++ < WARN_LINES)
			fprintf(stderr, "castellan sms import-tvcas: line %zu: card %" PRIu64 " has no %s (NULL): "
				"imported with no period in force (0..0), as the free CAS treated it; give it one "
				"with castellan sms subscribe or the GET API\n", c->line, c->serial,
				!c->has_start && !c->has_finish ? "start and finish" : !c->has_start ? "start" : "finish");
		k->no_period++;
	}
	k->disabled += c->disabled;
	if (c->cleaned && k->cleaned++ < WARN_LINES)
		fprintf(stderr, "castellan sms import-tvcas: line %zu: card %" PRIu64 ": tabs or line breaks in "
			"name or info imported as spaces\n", c->line, c->serial);
	return 0;
}

static int by_serial(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	return x->serial < y->serial ? -1 : x->serial > y->serial ? 1 : x->line < y->line ? -1 : 1;
}

/* A row with start or finish NULL gets no period at all (0..0). */
static bool has_period(const struct tvcas_card *c)
{
	return c->has_start && c->has_finish;
}

struct apply_ctx {
	struct sms_store *s;
	size_t added, changed;
	struct sms_card_change *ch;
};

static int apply_row(void *ctx, const struct tvcas_card *c)
{
	struct apply_ctx *a = ctx;
	struct sms_card_change *ch = a->ch;
	struct sms_card cur;
	int r = sms_card_get(a->s, c->serial, &cur);

	if (r == CE_NOT_FOUND) {
		struct sms_card n;

		memset(&n, 0, offsetof(struct sms_card, info));
		n.info[0] = '\0';
		n.serial = c->serial;
		n.state = c->disabled ? SMS_CARD_BLOCKED : SMS_CARD_ACTIVE;
		n.pair = c->pair;
		n.start = has_period(c) ? c->start : 0;
		n.finish = has_period(c) ? c->finish : 0;
		if ((r = sms_card_add(a->s, &n, WHO)) != 0)
			return r;
		a->added++;
	} else if (r != 0) {
		return r;
	} else {
		a->changed++;
	}
	sms_card_change_init(ch);
	ch->has_name = ch->has_info = ch->has_pair = ch->has_start = ch->has_finish = ch->has_ac = true;
	ch->has_state = true;
	snprintf(ch->name, sizeof(ch->name), "%s", c->name);
	snprintf(ch->info, sizeof(ch->info), "%s", c->info);
	ch->pair = c->pair;
	ch->start = has_period(c) ? c->start : 0;
	ch->finish = has_period(c) ? c->finish : 0;
	ch->access_criteria = c->access_criteria;
	ch->state = c->disabled ? SMS_CARD_BLOCKED : SMS_CARD_ACTIVE;
	return sms_card_change(a->s, c->serial, ch, WHO, NULL);
}

static int parse_format(const char *s, enum tvcas_format *f)
{
	if (!s || strcmp(s, "auto") == 0)
		*f = TVCAS_AUTO;
	else if (strcmp(s, "sql") == 0)
		*f = TVCAS_SQL;
	else if (strcmp(s, "csv") == 0)
		*f = TVCAS_CSV;
	else if (strcmp(s, "tsv") == 0)
		*f = TVCAS_TSV;
	else
		return CE_ARG;
	return 0;
}

int sms_import_tvcas(struct sms_store *s, int argc, char **argv)
{
	const char *file = NULL, *fmt_s = NULL;
	bool dry = false;
	enum tvcas_format fmt;
	struct check_ctx k = { 0 };
	struct apply_ctx a = { .s = s };
	uint8_t *buf = NULL, md[32];
	unsigned mdl = 0;
	size_t len = 0, rows = 0, line = 0;
	char why[300], hex[65], what[512];
	int r, rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
			fmt_s = argv[++i];
		else if (strcmp(argv[i], "--dry-run") == 0)
			dry = true;
		else if (!file && argv[i][0] != '-')
			file = argv[i];
		else {
			fprintf(stderr, "castellan sms import-tvcas: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!file || parse_format(fmt_s, &fmt) != 0) {
		fprintf(stderr, "usage: castellan sms import-tvcas FILE [--format auto|sql|csv|tsv] [--dry-run]\n");
		return 2;
	}
	if ((r = file_read_all(file, TVCAS_FILE_MAX, &buf, &len)) != 0) {
		fprintf(stderr, "castellan sms import-tvcas: %s: %s\n", file, err_str(r));
		return 1;
	}
	/* pass 1: the whole file checked, nothing written */
	if ((r = tvcas_parse(buf, len, fmt, check_row, &k, &rows, &line, why, sizeof(why))) != 0) {
		fprintf(stderr, "castellan sms import-tvcas: %s line %zu: %s; nothing was imported\n", file, line,
			why[0] ? why : err_str(r));
		goto out;
	}
	if (k.warned > WARN_LINES)
		fprintf(stderr, "castellan sms import-tvcas: ... and %zu more rows without a period\n",
			k.warned - WARN_LINES);
	if (k.n)
		qsort(k.v, k.n, sizeof(*k.v), by_serial);
	for (size_t i = 1; i < k.n; i++) {
		if (k.v[i].serial == k.v[i - 1].serial) {
			fprintf(stderr, "castellan sms import-tvcas: %s: card %" PRIu64 " is on lines %zu and %zu; "
				"nothing was imported\n", file, k.v[i].serial, k.v[i - 1].line, k.v[i].line);
			goto out;
		}
	}
	if (dry) {
		printf("%s: %zu cards read and checked (%zu disabled, %zu without a period); nothing written "
		       "(--dry-run)\n", file, rows, k.disabled, k.no_period);
		rc = 0;
		goto out;
	}
	/* pass 2: applied in one transaction */
	if (!(a.ch = malloc(sizeof(*a.ch))))
		goto out;
	if ((r = sms_tx_begin(s)) != 0) {
		fprintf(stderr, "castellan sms import-tvcas: %s\n", err_str(r));
		goto out;
	}
	r = tvcas_parse(buf, len, fmt, apply_row, &a, &rows, &line, why, sizeof(why));
	if (r == 0 && EVP_Digest(buf, len, md, &mdl, EVP_sha256(), NULL) == 1) {
		hex_encode(md, sizeof(md), hex);
		snprintf(what, sizeof(what), "import-tvcas: %zu cards (%zu added, %zu changed), file sha256 %s", rows,
			 a.added, a.changed, hex);
		r = sms_audit_add(s, WHO, what);
	}
	if ((r = sms_tx_end(s, r)) != 0) {
		fprintf(stderr, "castellan sms import-tvcas: %s line %zu: %s; nothing was imported\n", file, line,
			why[0] ? why : err_str(r));
		if (r == CE_BLOCKED)
			fprintf(stderr, "castellan sms import-tvcas: a blacklisted card or box cannot be imported\n");
		goto out;
	}
	printf("%s: %zu cards imported: %zu added, %zu changed (%zu disabled -> blocked, %zu without a period)\n",
	       file, rows, a.added, a.changed, k.disabled, k.no_period);
	rc = 0;
out:
	free(a.ch);
	free(k.v);
	if (buf)
		secret_free(buf, len); /* the dump holds the old CAS's card keys: wiped */
	return rc;
}
