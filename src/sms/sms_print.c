/*
 * sms_print.c - the store's listings, reports, CSV files and keys for the
 * command line (sms_print.h).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "lib/util.h"
#include "sms/csv.h"
#include "sms/report.h"
#include "sms/sms_print.h"
#include "sms/store.h"

#define PRINT_CARDS_PAGE 1000
#define IMPORT_BAR_MIN_BYTES (1u << 20)
#define BAR_WIDTH 40
#define SCOPES_MAX_BYTES 64
#define SUBSCRIBE_LIST_MAX_BYTES 1024

struct cards_ctx {
	FILE *f;
	uint64_t last;
};

static int print_card(void *ctx, const struct sms_card *c)
{
	struct cards_ctx *x = ctx;

	x->last = c->serial;
	fprintf(x->f, "%" PRIu64 "\t%s\t%s\tpair=%d\tac=%08" PRIX32 "\t%" PRId64 "..%" PRId64 "\t%s\n", c->serial,
		c->chip_id[0] ? c->chip_id : "-", c->state == SMS_CARD_ACTIVE ? "active" :
		c->state == SMS_CARD_BLOCKED ? "blocked" : "retired", (int)c->pair, c->access_criteria, c->start,
		c->finish, c->name);
	return 0;
}

int sms_print_cards(struct sms_store *s, uint64_t after, uint64_t limit, FILE *f)
{
	struct cards_ctx x = { .f = f };
	size_t n = 0;
	int r;

	while (limit > 0) {
		size_t page = limit > PRINT_CARDS_PAGE ? PRINT_CARDS_PAGE : (size_t)limit;

		if ((r = sms_card_list(s, after, page, print_card, &x, &n)) != 0)
			return r;
		limit -= n;
		if (n < page)
			break;
		after = x.last;
	}
	return 0;
}

static int print_bl(void *ctx, const struct sms_blacklist_entry *b)
{
	fprintf(ctx, "%s\t%s\t%" PRId64 "\t%s\t%s\n", b->kind == SMS_BL_CARD ? "card" : "box", b->id, b->at_ms, b->who,
		b->reason);
	return 0;
}

int sms_print_blacklist(struct sms_store *s, FILE *f)
{
	return sms_blacklist_list(s, 0, print_bl, f, NULL);
}

static int file_put(void *ctx, const char *p, size_t n)
{
	return fwrite(p, 1, n, ctx) == n ? 0 : CE_IO;
}

int sms_print_report(struct sms_store *s, const char *name, const struct sms_report_params *p, bool json,
	const char *path)
{
	struct sms_table *t = NULL;
	FILE *f = stdout;
	int r;

	if ((r = sms_report_run(s, name, p, &t)) != 0) {
		if (r == CE_ARG)
			fprintf(stderr, "castellan sms report %s: needs --package or --channel (active, ageing), --card"
				" (card), --card or --box (history)\n", name);
		return r;
	}
	if (path && !(f = fopen(path, "w"))) {
		sms_table_free(t);
		return CE_IO;
	}
	if (!json) {
		r = sms_table_csv(t, file_put, f);
	} else {
		json_t *j = sms_table_json(t);

		r = j && json_dumpf(j, f, JSON_INDENT(1)) == 0 ? 0 : CE_IO;
		fputc('\n', f);
		json_decref(j);
	}
	if (fflush(f) != 0 && r == 0)
		r = CE_IO;
	if (path && fclose(f) != 0 && r == 0)
		r = CE_IO;
	sms_table_free(t);
	return r;
}

/* A progress bar on stderr (only used when it is a terminal). */
static void progress_bar(void *ctx, const char *phase, size_t done, size_t total)
{
	int *last = ctx;
	int pct = total ? (int)(done * 100 / total) : 100;
	char bar[BAR_WIDTH + 1];

	if (pct == *last)
		return;
	*last = pct;
	memset(bar, ' ', BAR_WIDTH);
	memset(bar, '#', (size_t)pct * BAR_WIDTH / 100);
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r%-5s [%s] %3d%%", phase, bar, pct);
	if (done == total && strcmp(phase, "apply") == 0)
		fputc('\n', stderr);
	fflush(stderr);
}

int sms_import_csv_file(struct sms_store *s, const char *path)
{
	struct csv_result res;
	uint8_t *buf = NULL;
	size_t len = 0;
	int last = -1, r;
	bool bar = isatty(STDERR_FILENO);

	if ((r = file_read_all(path, CSV_FILE_MAX, &buf, &len)) != 0) {
		fprintf(stderr, "castellan sms: cannot read %s: %s\n", path, err_str(r));
		return r;
	}
	bar = bar && len > IMPORT_BAR_MIN_BYTES;
	r = csv_import(s, (const char *)buf, len, "cli:import", bar ? progress_bar : NULL, &last, &res);
	free(buf);
	if (bar && r != 0)
		fputc('\n', stderr);
	if (r != 0) {
		if (res.line)
			fprintf(stderr, "castellan sms: %s line %zu: %s; nothing was imported\n", path, res.line, res.why);
		else
			fprintf(stderr, "castellan sms: %s: %s; nothing was imported\n", path,
				res.why[0] ? res.why : err_str(r));
		return r;
	}
	printf("%zu rows imported: %zu cards added, %zu updated\n", res.rows, res.added, res.updated);
	return 0;
}

int sms_export_csv_file(struct sms_store *s, const char *path)
{
	FILE *f = path ? fopen(path, "wb") : stdout;
	size_t rows = 0;
	int r;

	if (!f) {
		fprintf(stderr, "castellan sms: cannot create %s\n", path);
		return CE_IO;
	}
	r = csv_export(s, file_put, f, &rows);
	if (fflush(f) != 0 && r == 0)
		r = CE_IO;
	if (path && fclose(f) != 0 && r == 0)
		r = CE_IO;
	if (r == 0 && path)
		fprintf(stderr, "%zu cards exported to %s\n", rows, path);
	return r;
}

int sms_print_search_index(struct sms_store *s, bool build, bool check)
{
	bool indexed = false;
	char why[320];
	int r;

	if (build) {
		if ((r = sms_search_index_build(s)) != 0)
			return r;
		printf("search index built\n");
	}
	if (check) {
		if ((r = sms_search_index_check(s)) != 0) {
			fprintf(stderr, "castellan sms: the search index does not match the subscribers: "
				"castellan sms search-index --build\n");
			return r;
		}
		printf("search index consistent\n");
	}
	if ((r = sms_search_index_state(s, &indexed, why, sizeof(why))) != 0)
		return r;
	if (indexed) {
		printf("%s: trigram index present (%s)\n", sms_store_backend(s),
		       strcmp(sms_store_backend(s), "sqlite") == 0 ? "FTS5 subscribers_fts" : "pg_trgm GIN");
		return 0;
	}
	printf("%s: no trigram index: %s\n", sms_store_backend(s), why);
	return CE_STATE;
}

int sms_print_new_apikey(struct sms_store *s, const char *user, unsigned scopes)
{
	char key[65];
	int r = sms_user_add(s, user, "cli", NULL);

	if (r != 0 && r != CE_EXISTS)
		return r;
	if ((r = sms_apikey_create(s, user, scopes, "cli", key)) != 0)
		return r;
	printf("api key for %s (store it now, it is not shown again): %s\n", user, key);
	secret_wipe(key, sizeof(key));
	return 0;
}

int sms_scopes_parse(const char *s, unsigned *out)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "read", SMS_SCOPE_READ }, { "write", SMS_SCOPE_WRITE },
		{ "admin", SMS_SCOPE_ADMIN }, { "metrics", SMS_SCOPE_METRICS },
	};
	size_t i = 0;

	*out = 0;
	if (strlen(s) >= SCOPES_MAX_BYTES)
		return CE_ARG;
	while (s[i]) {
		size_t n = strcspn(s + i, ","), k;

		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (strlen(names[k].name) == n && strncmp(s + i, names[k].name, n) == 0)
				break;
		if (n == 0 && s[i] == ',') {
			i++;
			continue;
		}
		if (k == sizeof(names) / sizeof(names[0]))
			return CE_ARG;
		*out |= names[k].bit;
		i += n;
	}
	return *out ? 0 : CE_ARG;
}

int sms_print_card_add(struct sms_store *s, uint64_t serial, const char *chip, const char *name, const char *info,
	bool pair)
{
	struct sms_card c = { .serial = serial, .pair = pair };
	int r;

	if ((chip && strlen(chip) > SMS_CHIP_ID_MAX) || (name && strlen(name) > SMS_NAME_MAX) ||
	    (info && strlen(info) > SMS_INFO_MAX))
		return CE_RANGE;
	snprintf(c.chip_id, sizeof(c.chip_id), "%s", chip ? chip : "");
	snprintf(c.name, sizeof(c.name), "%s", name ? name : "");
	snprintf(c.info, sizeof(c.info), "%s", info ? info : "");
	if ((r = sms_card_add(s, &c, "cli")) == 0)
		printf("card %" PRIu64 " added\n", c.serial);
	return r;
}

int sms_print_package(struct sms_store *s, bool add, uint32_t id, const char *name)
{
	int r = add ? sms_package_add(s, id, name, "cli") : sms_package_rename(s, id, name, "cli");

	if (r == 0)
		printf(add ? "package %" PRIu32 " '%s' added\n" : "package %" PRIu32 " renamed '%s'\n", id, name);
	else if (add && r == CE_EXISTS)
		fprintf(stderr, "castellan sms: package %" PRIu32 " exists%s: to name it, "
			"castellan sms package rename %" PRIu32 " NAME\n", id,
			id < 32 ? " (0..31, the access-criteria bits, are created with the store)" : "", id);
	else if (!add && r == CE_NOT_FOUND)
		fprintf(stderr, "castellan sms: package %" PRIu32 " not found: add it with "
			"castellan sms package add %" PRIu32 " NAME\n", id, id);
	else
		return r;
	return r == 0 ? 0 : CE_STATE;
}

int sms_print_subscribe(struct sms_store *s, uint64_t serial, const char *packages, int64_t start, int64_t finish)
{
	struct sms_subscription sub = { .serial = serial, .start = start, .finish = finish };
	char buf[SUBSCRIBE_LIST_MAX_BYTES];
	char *save = NULL;
	uint64_t v;
	int r;

	if (strlen(packages) >= sizeof(buf))
		return CE_ARG;
	memcpy(buf, packages, strlen(packages) + 1);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (parse_u64(t, SMS_PACKAGES_MAX - 1, &v) != 0)
			return CE_ARG;
		sub.package = (uint32_t)v;
		if ((r = sms_subscribe(s, &sub, "cli")) != 0) {
			fprintf(stderr, "castellan sms: package %" PRIu32 ": %s\n", sub.package, err_str(r));
			return r;
		}
		printf("card %" PRIu64 " package %" PRIu32 " %" PRId64 "..%" PRId64 "\n", sub.serial, sub.package,
		       sub.start, sub.finish);
	}
	return 0;
}
