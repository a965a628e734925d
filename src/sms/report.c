/*
 * report.c - the audit reports of report.h: each card's state at a past
 * time read from the audit chain's snapshots, then counted, listed or aged;
 * tables rendered to CSV or JSON. The snapshots are the store's own text
 * ("state=S bl=B pair=P subs=PKG:START:FINISH,... chip=ID" or "deleted");
 * a snapshot that does not parse is an error (CE_FORMAT), never guessed.
 */
#define _DEFAULT_SOURCE /* timegm */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sms/report.h"
#include "sms/report_cas.h"
#include "sms/store_int.h"
#include "lib/util.h"

const char *const sms_report_names[] = { "summary", "subscribers", "blacklist", "monthly", "package-channels",
					 "active", "card", "ageing", "history", "cas-channels", "cas-match", NULL };

static const char *const status_names[] = { "active", "suspended", "deactivated", "blacklisted", "deleted" };

/* ---- tables ------------------------------------------------------------ */

static struct sms_table *t_new(const char *name, int64_t at_s)
{
	struct sms_table *t = calloc(1, sizeof(*t));

	if (t) {
		snprintf(t->name, sizeof(t->name), "%s", name);
		t->at_s = at_s;
	}
	return t;
}

static void t_col(struct sms_table *t, const char *name, bool num)
{
	if (t->ncols < REPORT_COLS_MAX) {
		t->num[t->ncols] = num;
		t->cols[t->ncols++] = name;
	}
}

/* A day column of monthly: "day_N". */
static void t_colday(struct sms_table *t, int v)
{
	const bool num = true;

	if (t->ncols < REPORT_COLS_MAX) {
		snprintf(t->colbuf[t->ncols], sizeof(t->colbuf[0]), "day_%d", v);
		t->num[t->ncols] = num;
		t->cols[t->ncols] = t->colbuf[t->ncols];
		t->ncols++;
	}
}

/* One row of t->ncols values. */
static int t_rowv(struct sms_table *t, const char *const *v)
{
	char **row;
	int r = 0;

	if (t->nrows >= REPORT_ROWS_MAX)
		return CE_LIMIT;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));

		if (!c)
			return CE_NOMEM;
		t->cells = c;
		t->cap = cap;
	}
	row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++)
		if (!(row[i] = strdup(v[i] ? v[i] : "")))
			r = CE_NOMEM;
	t->nrows++; /* counted even on failure: sms_table_free frees the cells written */
	return r;
}

/* One row of t->ncols values (const char *). */
static int t_row(struct sms_table *t, ...)
{
	const char *v[REPORT_COLS_MAX];
	va_list ap;

	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++)
		v[i] = va_arg(ap, const char *);
	va_end(ap);
	return t_rowv(t, v);
}

void sms_table_col(struct sms_table *t, const char *name, bool num)
{
	t_col(t, name, num);
}

int sms_table_row(struct sms_table *t, const char *const *v)
{
	return t_rowv(t, v);
}

void sms_table_free(struct sms_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

static int csv_cell(int (*out)(void *, const char *, size_t), void *ctx, const char *v, bool last)
{
	int r = 0;

	if (strpbrk(v, ",\"\r\n")) {
		if ((r = out(ctx, "\"", 1)) != 0)
			return r;
		for (const char *p = v; *p && r == 0; p++)
			r = *p == '"' ? out(ctx, "\"\"", 2) : out(ctx, p, 1);
		if (r == 0)
			r = out(ctx, "\"", 1);
	} else if (*v) {
		r = out(ctx, v, strlen(v));
	}
	return r ? r : out(ctx, last ? "\r\n" : ",", last ? 2 : 1);
}

int sms_table_csv(const struct sms_table *t, int (*out)(void *ctx, const char *p, size_t n), void *ctx)
{
	int r = 0;

	for (size_t c = 0; c < t->ncols && r == 0; c++)
		r = csv_cell(out, ctx, t->cols[c], c + 1 == t->ncols);
	for (size_t i = 0; i < t->nrows && r == 0; i++)
		for (size_t c = 0; c < t->ncols && r == 0; c++)
			r = csv_cell(out, ctx, t->cells[i * t->ncols + c], c + 1 == t->ncols);
	return r;
}

/* A cell of a numeric column (an SQL result): a JSON integer when it is
 * one whole decimal, a real when it is one whole finite decimal real (an
 * average), else the text as it is (never a number made of a prefix). */
static json_t *num_cell(const char *v)
{
	int64_t n;
	double d;
	char *end;

	if (parse_dec_s64(v, INT64_MIN, INT64_MAX, &n) == 0)
		return json_integer(n);
	errno = 0;
	d = strtod(v, &end);
	if (end != v && *end == '\0' && errno == 0 && isfinite(d) && v[0] != ' ' && v[0] != '\t')
		return json_real(d);
	return json_string(v);
}

json_t *sms_table_json(const struct sms_table *t)
{
	json_t *cols = json_array(), *rows = json_array(), *o;

	if (!cols || !rows)
		goto fail;
	for (size_t c = 0; c < t->ncols; c++)
		if (json_array_append_new(cols, json_string(t->cols[c])) != 0)
			goto fail;
	for (size_t i = 0; i < t->nrows; i++) {
		json_t *row = json_object();

		if (!row || json_array_append_new(rows, row) != 0)
			goto fail;
		for (size_t c = 0; c < t->ncols; c++) {
			const char *v = t->cells[i * t->ncols + c];
			json_t *jv;

			if (t->num[c] && *v) {
				jv = num_cell(v);
			} else {
				jv = json_string(v);
			}
			if (!jv || json_object_set_new(row, t->cols[c], jv) != 0)
				goto fail;
		}
	}
	o = json_pack("{s:s,s:o,s:o,s:o}", "report", t->name, "at", t->at_s ? json_integer(t->at_s) : json_null(),
		      "columns", cols, "rows", rows);
	return o;
fail:
	json_decref(cols);
	json_decref(rows);
	return NULL;
}

/* ---- parameters -------------------------------------------------------- */

void sms_report_params_init(struct sms_report_params *p)
{
	memset(p, 0, sizeof(*p));
	p->package = -1;
	p->channel = -1;
	p->status = -1;
}

static int num(const char *v, uint64_t max, uint64_t *out)
{
	return parse_u64(v, max, out) == 0 ? 0 : CE_RANGE;
}

int sms_report_param(struct sms_report_params *p, const char *name, const char *v)
{
	uint64_t n = 0;
	int r;

	if (!v)
		return CE_RANGE;
	if (strcmp(name, "at") == 0 || strcmp(name, "from") == 0 || strcmp(name, "to") == 0) {
		if ((r = num(v, (uint64_t)1 << 40, &n)) != 0)
			return r;
		if (name[0] == 'a')
			p->at_s = (int64_t)n;
		else if (name[0] == 'f')
			p->from_s = (int64_t)n;
		else
			p->to_s = (int64_t)n;
		return 0;
	}
	if (strcmp(name, "month") == 0) {
		uint64_t y, m;
		char ys[5], ms[3];

		if (strlen(v) != 7 || v[4] != '-')
			return CE_RANGE;
		memcpy(ys, v, 4);
		ys[4] = '\0';
		memcpy(ms, v + 5, 2);
		ms[2] = '\0';
		if (num(ys, 9999, &y) != 0 || y < 1970 || num(ms, 12, &m) != 0 || m < 1)
			return CE_RANGE;
		p->year = (int)y;
		p->month = (int)m;
		return 0;
	}
	if (strcmp(name, "days") == 0) {
		char buf[128];
		char *save = NULL;

		if (strlen(v) >= sizeof(buf))
			return CE_RANGE;
		snprintf(buf, sizeof(buf), "%s", v);
		p->ndays = 0;
		for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (num(t, 31, &n) != 0 || n < 1 || p->ndays >= 31)
				return CE_RANGE;
			p->days[p->ndays++] = (int)n;
		}
		return p->ndays ? 0 : CE_RANGE;
	}
	if (strcmp(name, "by") == 0) {
		if (strcmp(v, "package") != 0 && strcmp(v, "channel") != 0)
			return CE_RANGE;
		p->by_channel = v[0] == 'c';
		return 0;
	}
	if (strcmp(name, "package") == 0) {
		if ((r = num(v, SMS_PACKAGES_MAX - 1, &n)) != 0)
			return r;
		p->package = (int64_t)n;
		return 0;
	}
	if (strcmp(name, "channel") == 0) {
		if ((r = num(v, 65535, &n)) != 0)
			return r;
		p->channel = (int64_t)n;
		return 0;
	}
	if (strcmp(name, "card") == 0) {
		if ((r = num(v, INT64_MAX, &n)) != 0 || n == 0)
			return CE_RANGE;
		p->card = n;
		return 0;
	}
	if (strcmp(name, "box") == 0) {
		if (!*v || strlen(v) > SMS_CHIP_ID_MAX || !sms_text_valid(v))
			return CE_RANGE;
		snprintf(p->box, sizeof(p->box), "%s", v);
		return 0;
	}
	if (strcmp(name, "status") == 0) {
		for (int i = 0; i < 4; i++) {
			if (strcmp(v, status_names[i]) == 0) {
				p->status = i;
				return 0;
			}
		}
		return CE_RANGE;
	}
	return CE_NOT_FOUND;
}

/* ---- card states at a time, from the log ------------------------------- */

struct rsub {
	uint32_t pkg;
	int64_t start, finish;
};

struct rcard {
	uint64_t serial;
	int state;
	bool bl, deleted;
	size_t nsubs;
	struct rsub *subs;
};

struct rstates {
	struct rcard *c;
	size_t n, cap;
	int err;
};

static void states_free(struct rstates *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->c[i].subs);
	free(st->c);
	memset(st, 0, sizeof(*st));
}

/* A decimal at *p up to one of stops (or the end), parsed strictly
 * (parse_dec_s64, within lo..hi); *p moves past it. */
static bool take_dec(const char **p, const char *stops, int64_t lo, int64_t hi, int64_t *out)
{
	size_t n = strcspn(*p, stops);
	char num[24];

	if (n == 0 || n >= sizeof(num))
		return false;
	memcpy(num, *p, n);
	num[n] = '\0';
	if (parse_dec_s64(num, lo, hi, out) != 0)
		return false;
	*p += n;
	return true;
}

static bool take_int(const char **p, const char *prefix, int64_t *out)
{
	size_t n = strlen(prefix);

	if (strncmp(*p, prefix, n) != 0)
		return false;
	*p += n;
	return take_dec(p, " ", INT64_MIN, INT64_MAX, out);
}

/* Parse a snapshot (store_audit.c's text) into c. */
static int snap_parse(const char *t, struct rcard *c)
{
	const char *p = t;
	int64_t st, bl, pair;
	size_t cap = 0;

	c->nsubs = 0;
	c->subs = NULL;
	if (strcmp(t, "deleted") == 0) {
		c->deleted = true;
		return 0;
	}
	if (!take_int(&p, "state=", &st) || st < 0 || st > 2 || !take_int(&p, " bl=", &bl) ||
	    !take_int(&p, " pair=", &pair) || strncmp(p, " subs=", 6) != 0)
		return CE_FORMAT;
	p += 6;
	c->state = (int)st;
	c->bl = bl != 0;
	while (*p && *p != ' ') {
		int64_t pk, a, b;

		/* pk:start:finish, then ',' or the end of the list */
		if (!take_dec(&p, ":", 0, SMS_PACKAGES_MAX - 1, &pk) || *p++ != ':' ||
		    !take_dec(&p, ":", INT64_MIN, INT64_MAX, &a) || *p++ != ':' ||
		    !take_dec(&p, ", ", INT64_MIN, INT64_MAX, &b))
			goto bad;
		if (*p == ',')
			p++;
		if (c->nsubs == cap) {
			size_t nc = cap ? cap * 2 : 4;
			struct rsub *ns = realloc(c->subs, nc * sizeof(*ns));

			if (!ns) {
				free(c->subs);
				c->subs = NULL;
				return CE_NOMEM;
			}
			c->subs = ns;
			cap = nc;
		}
		c->subs[c->nsubs++] = (struct rsub){ (uint32_t)pk, a, b };
	}
	if (strncmp(p, " chip=", 6) != 0)
		goto bad;
	return 0;
bad:
	free(c->subs);
	c->subs = NULL;
	c->nsubs = 0;
	return CE_FORMAT;
}

static int row_state(void *ctx, int n, const char *const *cols)
{
	struct rstates *st = ctx;
	struct rcard c = { 0 };
	uint64_t serial;
	int r;

	if (n < 2 || !cols[0] || strncmp(cols[0], "card:", 5) != 0 || parse_u64(cols[0] + 5, INT64_MAX, &serial) != 0)
		return CE_FORMAT;
	if ((r = snap_parse(cols[1] ? cols[1] : "", &c)) != 0)
		return r;
	c.serial = serial;
	if (c.deleted) {
		free(c.subs);
		return 0; /* not in the base at that time */
	}
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 256;
		struct rcard *nc = realloc(st->c, cap * sizeof(*nc));

		if (!nc) {
			free(c.subs);
			return CE_NOMEM;
		}
		st->c = nc;
		st->cap = cap;
	}
	st->c[st->n++] = c;
	return 0;
}

static int cmp_card(const void *a, const void *b)
{
	const struct rcard *x = a, *y = b;

	return x->serial < y->serial ? -1 : x->serial > y->serial;
}

/* Every card in the base at at_s (end of that second), by serial. */
static int states_at(struct sms_store *s, int64_t at_s, struct rstates *st)
{
	struct db_val p[1] = { DBI(at_s * 1000 + 999) };
	int r;

	memset(st, 0, sizeof(*st));
	r = s->ops->exec(s, "SELECT object, snapshot FROM audit WHERE seq IN (SELECT MAX(seq) FROM audit"
			 " WHERE snapshot <> '' AND at_ms <= ? GROUP BY object)", p, 1, row_state, st, NULL);
	if (r != 0) {
		states_free(st);
		return r;
	}
	if (st->n)
		qsort(st->c, st->n, sizeof(st->c[0]), cmp_card);
	return 0;
}

static bool in_force(const struct rsub *u, int64_t t)
{
	return u->start <= t && t <= u->finish;
}

static int status_at(const struct rcard *c, int64_t t)
{
	if (c->deleted)
		return SMS_RS_DELETED;
	if (c->bl)
		return SMS_RS_BLACKLISTED;
	if (c->state == SMS_CARD_BLOCKED)
		return SMS_RS_SUSPENDED;
	if (c->state == SMS_CARD_RETIRED)
		return SMS_RS_DEACTIVATED;
	for (size_t i = 0; i < c->nsubs; i++)
		if (in_force(&c->subs[i], t))
			return SMS_RS_ACTIVE;
	return SMS_RS_DEACTIVATED;
}

/* Packages 0..31 in force on an active card (its channels' view). */
static uint32_t mask_at(const struct rcard *c, int64_t t)
{
	uint32_t m = 0;

	if (status_at(c, t) != SMS_RS_ACTIVE)
		return 0;
	for (size_t i = 0; i < c->nsubs; i++)
		if (c->subs[i].pkg < 32 && in_force(&c->subs[i], t))
			m |= 1u << c->subs[i].pkg;
	return m;
}

/* The subscription to pkg in force on an active card, or NULL. */
static const struct rsub *pkg_at(const struct rcard *c, uint32_t pkg, int64_t t)
{
	if (status_at(c, t) != SMS_RS_ACTIVE)
		return NULL;
	for (size_t i = 0; i < c->nsubs; i++)
		if (c->subs[i].pkg == pkg && in_force(&c->subs[i], t))
			return &c->subs[i];
	return NULL;
}

int sms_report_active_each(struct sms_store *s, int64_t at_s,
			   int (*fn)(void *ctx, uint64_t serial, const uint32_t *pkgs, size_t n), void *ctx)
{
	struct rstates st;
	uint32_t *pk = NULL;
	size_t cap = 0;
	int r;

	if ((r = states_at(s, at_s, &st)) != 0)
		return r;
	for (size_t i = 0; i < st.n && r == 0; i++) {
		const struct rcard *c = &st.c[i];
		size_t n = 0;

		if (status_at(c, at_s) != SMS_RS_ACTIVE)
			continue;
		if (c->nsubs > cap) {
			uint32_t *np = realloc(pk, c->nsubs * sizeof(*np));

			if (!np) {
				r = CE_NOMEM;
				break;
			}
			pk = np;
			cap = c->nsubs;
		}
		for (size_t k = 0; k < c->nsubs; k++)
			if (in_force(&c->subs[k], at_s))
				pk[n++] = c->subs[k].pkg;
		r = fn(ctx, c->serial, pk, n);
	}
	free(pk);
	states_free(&st);
	return r;
}

/* ---- packages and channels (current tables) ------------------------------ */

struct catalog {
	struct sms_package *pk;
	size_t npk;
	struct sms_channel *ch;
	size_t nch;
};

static int acc_pk(void *ctx, const struct sms_package *p)
{
	struct catalog *c = ctx;

	c->pk[c->npk++] = *p;
	return 0;
}

static int acc_ch(void *ctx, const struct sms_channel *ch)
{
	struct catalog *c = ctx;

	c->ch[c->nch++] = *ch;
	return 0;
}

static void catalog_free(struct catalog *c)
{
	free(c->pk);
	free(c->ch);
	memset(c, 0, sizeof(*c));
}

static int catalog_load(struct sms_store *s, struct catalog *c)
{
	int r;

	memset(c, 0, sizeof(*c));
	c->pk = calloc(SMS_PACKAGES_MAX, sizeof(*c->pk));
	c->ch = calloc(65536, sizeof(*c->ch));
	if (!c->pk || !c->ch) {
		catalog_free(c);
		return CE_NOMEM;
	}
	if ((r = sms_package_list(s, -1, 70000, acc_pk, c, NULL)) != 0 ||
	    (r = sms_channel_list(s, -1, 70000, acc_ch, c, NULL)) != 0)
		catalog_free(c);
	return r;
}

static const char *pkg_name(const struct catalog *c, uint32_t id)
{
	for (size_t i = 0; i < c->npk; i++)
		if (c->pk[i].id == id)
			return c->pk[i].name;
	return "";
}

/* ---- the reports ----------------------------------------------------------- */

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%" PRId64, (int64_t)(v)), (buf))

static int rep_summary(struct sms_store *s, int64_t at, struct sms_table *t)
{
	struct rstates st;
	int64_t n[5] = { 0 };
	char b[32];
	int r;

	t_col(t, "status", false);
	t_col(t, "cards", true);
	if ((r = states_at(s, at, &st)) != 0)
		return r;
	for (size_t i = 0; i < st.n; i++)
		n[status_at(&st.c[i], at)]++;
	states_free(&st);
	if ((r = t_row(t, "registered", I64(b, n[0] + n[1] + n[2] + n[3]))) != 0)
		return r;
	for (int k = 0; k < 4 && r == 0; k++)
		r = t_row(t, status_names[k], I64(b, n[k]));
	return r;
}

static int rep_subscribers(struct sms_store *s, int64_t at, int want, struct sms_table *t)
{
	struct rstates st;
	int r = 0;

	t_col(t, "serial_no", false);
	t_col(t, "status", false);
	t_col(t, "packages", false);
	if ((r = states_at(s, at, &st)) != 0)
		return r;
	for (size_t i = 0; i < st.n && r == 0; i++) {
		const struct rcard *c = &st.c[i];
		int k = status_at(c, at);
		char ser[24], pk[1024];
		size_t o = 0;

		if (want >= 0 && k != want)
			continue;
		pk[0] = '\0';
		for (size_t j = 0; j < c->nsubs && o + 8 < sizeof(pk); j++)
			if (k == SMS_RS_ACTIVE && in_force(&c->subs[j], at))
				o += (size_t)snprintf(pk + o, sizeof(pk) - o, "%s%" PRIu32, o ? " " : "", c->subs[j].pkg);
		snprintf(ser, sizeof(ser), "%" PRIu64, c->serial);
		r = t_row(t, ser, status_names[k], pk);
	}
	states_free(&st);
	return r;
}

struct bl_acc {
	struct sms_table *t;
};

static int acc_bl(void *ctx, const struct sms_blacklist_entry *b)
{
	struct bl_acc *a = ctx;
	char at[24];

	return t_row(a->t, b->kind == SMS_BL_CARD ? "card" : "box", b->id, b->reason, I64(at, b->at_ms), b->who);
}

static int rep_blacklist(struct sms_store *s, int64_t at, struct sms_table *t)
{
	struct bl_acc a = { t };

	t_col(t, "kind", false);
	t_col(t, "id", false);
	t_col(t, "reason", false);
	t_col(t, "at_ms", true);
	t_col(t, "who", false);
	return sms_blacklist_list(s, at * 1000 + 999, acc_bl, &a, NULL);
}

static int days_in_month(int y, int m)
{
	static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : d[m - 1];
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int rep_monthly(struct sms_store *s, const struct sms_report_params *p, struct sms_table *t)
{
	static const int def_days[4] = { 7, 14, 21, 28 };
	const int *days = p->ndays ? p->days : def_days;
	size_t nd = p->ndays ? p->ndays : 4, nrows;
	int y = p->year, m = p->month;
	struct catalog cat;
	int64_t *cnt = NULL;
	int r;

	if (!y) {
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		y = tm.tm_year + 1900;
		m = tm.tm_mon + 1;
	}
	for (size_t i = 0; i < nd; i++)
		if (days[i] > days_in_month(y, m))
			return CE_RANGE;
	if ((r = catalog_load(s, &cat)) != 0)
		return r;
	nrows = p->by_channel ? cat.nch : cat.npk;
	if (!(cnt = calloc(nrows * nd + 1, sizeof(*cnt)))) {
		catalog_free(&cat);
		return CE_NOMEM;
	}
	t_col(t, p->by_channel ? "service_id" : "package", true);
	t_col(t, "name", false);
	for (size_t i = 0; i < nd; i++)
		t_colday(t, days[i]);
	t_col(t, "average", true);
	for (size_t d = 0; d < nd && r == 0; d++) {
		struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = days[d], .tm_hour = 23, .tm_min = 59,
				 .tm_sec = 59 };
		int64_t at = (int64_t)timegm(&tm);
		struct rstates st;

		if ((r = states_at(s, at, &st)) != 0)
			break;
		if (p->by_channel) {
			/* cards by their mask of packages 0..31, then each channel once per distinct mask */
			uint32_t *mk = malloc((st.n + 1) * sizeof(*mk));
			size_t nm = 0;

			if (!mk) {
				r = CE_NOMEM;
				states_free(&st);
				break;
			}
			for (size_t i = 0; i < st.n; i++) {
				uint32_t x = mask_at(&st.c[i], at);

				if (x)
					mk[nm++] = x;
			}
			qsort(mk, nm, sizeof(*mk), cmp_u32);
			for (size_t i = 0; i < nm;) {
				size_t j = i;

				while (j < nm && mk[j] == mk[i])
					j++;
				for (size_t c = 0; c < cat.nch; c++)
					if (cat.ch[c].access_criteria & mk[i])
						cnt[c * nd + d] += (int64_t)(j - i);
				i = j;
			}
			free(mk);
		} else {
			for (size_t i = 0; i < st.n; i++) {
				const struct rcard *c = &st.c[i];

				if (status_at(c, at) != SMS_RS_ACTIVE)
					continue;
				for (size_t k = 0; k < c->nsubs; k++) {
					if (!in_force(&c->subs[k], at))
						continue;
					/* packages are listed by id: find its row */
					for (size_t q = 0; q < cat.npk; q++) {
						if (cat.pk[q].id == c->subs[k].pkg) {
							cnt[q * nd + d]++;
							break;
						}
					}
				}
			}
		}
		states_free(&st);
	}
	for (size_t i = 0; i < nrows && r == 0; i++) {
		const char *v[REPORT_COLS_MAX];
		char bufs[REPORT_COLS_MAX][32];
		int64_t sum = 0;
		size_t k = 0;

		v[k++] = I64(bufs[0], p->by_channel ? cat.ch[i].service_id : cat.pk[i].id);
		v[k++] = p->by_channel ? cat.ch[i].name : cat.pk[i].name;
		for (size_t d = 0; d < nd; d++, k++) {
			sum += cnt[i * nd + d];
			v[k] = I64(bufs[k], cnt[i * nd + d]);
		}
		snprintf(bufs[k], sizeof(bufs[k]), "%.2f", (double)sum / (double)nd);
		v[k] = bufs[k];
		k++;
		r = t_rowv(t, v);
	}
	free(cnt);
	catalog_free(&cat);
	return r;
}

static int rep_package_channels(struct sms_store *s, struct sms_table *t)
{
	struct catalog cat;
	int r;

	t_col(t, "package", true);
	t_col(t, "package_name", false);
	t_col(t, "service_id", true);
	t_col(t, "channel_name", false);
	if ((r = catalog_load(s, &cat)) != 0)
		return r;
	for (size_t i = 0; i < cat.npk && r == 0; i++) {
		char pid[16], sid[16];
		bool any = false;

		I64(pid, cat.pk[i].id);
		for (size_t c = 0; c < cat.nch && r == 0 && cat.pk[i].id < 32; c++) {
			if (!(cat.ch[c].access_criteria >> cat.pk[i].id & 1))
				continue;
			any = true;
			r = t_row(t, pid, cat.pk[i].name, I64(sid, cat.ch[c].service_id), cat.ch[c].name);
		}
		if (r == 0 && !any)
			r = t_row(t, pid, cat.pk[i].name, "", ""); /* a package with no channel (yet) */
	}
	catalog_free(&cat);
	return r;
}

/* The covering subscription of card c for the package or channel asked, or
 * NULL: for a channel, the earliest-started one in force among its packages. */
static const struct rsub *covering(const struct rcard *c, const struct sms_report_params *p, uint32_t chan_ac,
				   int64_t at)
{
	const struct rsub *best = NULL;

	if (p->package >= 0)
		return pkg_at(c, (uint32_t)p->package, at);
	if (!(mask_at(c, at) & chan_ac))
		return NULL;
	for (size_t i = 0; i < c->nsubs; i++) {
		const struct rsub *u = &c->subs[i];

		if (u->pkg < 32 && (chan_ac >> u->pkg & 1) && in_force(u, at) && (!best || u->start < best->start))
			best = u;
	}
	return best;
}

static int rep_active(struct sms_store *s, const struct sms_report_params *p, int64_t at, bool ageing,
		      struct sms_table *t)
{
	struct rstates st;
	uint32_t ac = 0;
	int r = 0;

	if ((p->package < 0) == (p->channel < 0))
		return CE_ARG; /* exactly one of package, channel */
	if (p->channel >= 0 && (r = sms_channel_get(s, (uint16_t)p->channel, &ac)) != 0)
		return r;
	t_col(t, "serial_no", false);
	t_col(t, "since", true);
	t_col(t, "until", true);
	if (ageing) {
		t_col(t, "age_days", true);
		t_col(t, "bucket", false);
	}
	if ((r = states_at(s, at, &st)) != 0)
		return r;
	for (size_t i = 0; i < st.n && r == 0; i++) {
		const struct rsub *u = covering(&st.c[i], p, ac, at);
		char ser[24], a[24], b[24], d[24];
		int64_t days;

		if (!u)
			continue;
		snprintf(ser, sizeof(ser), "%" PRIu64, st.c[i].serial);
		days = (at - u->start) / 86400;
		if (!ageing)
			r = t_row(t, ser, I64(a, u->start), I64(b, u->finish));
		else
			r = t_row(t, ser, I64(a, u->start), I64(b, u->finish), I64(d, days),
				  days <= 30 ? "0-30" : days <= 90 ? "31-90" : days <= 180 ? "91-180" : days <= 365 ? "181-365"
													  : ">365");
	}
	states_free(&st);
	return r;
}

static int rep_card(struct sms_store *s, const struct sms_report_params *p, int64_t at, struct sms_table *t)
{
	struct rstates st;
	struct catalog cat;
	const struct rcard *c = NULL;
	int r;

	if (!p->card)
		return CE_ARG;
	t_col(t, "kind", false);
	t_col(t, "id", true);
	t_col(t, "name", false);
	t_col(t, "start", true);
	t_col(t, "finish", true);
	if ((r = states_at(s, at, &st)) != 0)
		return r;
	if ((r = catalog_load(s, &cat)) != 0) {
		states_free(&st);
		return r;
	}
	for (size_t i = 0; i < st.n; i++)
		if (st.c[i].serial == p->card)
			c = &st.c[i];
	if (!c) {
		r = CE_NOT_FOUND;
		goto out;
	}
	{
		char b[24];

		if ((r = t_row(t, "status", "", status_names[status_at(c, at)], "", "")) != 0)
			goto out;
		for (size_t i = 0; i < c->nsubs && r == 0; i++) {
			char id[16], a[24];

			if (status_at(c, at) != SMS_RS_ACTIVE || !in_force(&c->subs[i], at))
				continue;
			r = t_row(t, "package", I64(id, c->subs[i].pkg), pkg_name(&cat, c->subs[i].pkg),
				  I64(a, c->subs[i].start), I64(b, c->subs[i].finish));
		}
		for (size_t k = 0; k < cat.nch && r == 0; k++) {
			const struct sms_channel *ch = &cat.ch[k];
			struct sms_report_params q;
			const struct rsub *u;
			char id[16], a[24];

			sms_report_params_init(&q);
			if (!(u = covering(c, &q, ch->access_criteria, at)))
				continue;
			r = t_row(t, "channel", I64(id, ch->service_id), ch->name, I64(a, u->start), I64(b, u->finish));
		}
	}
out:
	catalog_free(&cat);
	states_free(&st);
	return r;
}

struct hist {
	struct sms_table *t;
	int err;
};

static int acc_hist(void *ctx, const struct sms_audit_entry *e)
{
	struct hist *h = ctx;
	struct rcard c = { 0 };
	char seq[24], at[24];
	const char *status = "";
	int r;

	if (e->snapshot[0]) {
		if ((r = snap_parse(e->snapshot, &c)) != 0)
			return r;
		status = status_names[status_at(&c, e->at_ms / 1000)];
		free(c.subs);
	}
	return t_row(h->t, I64(seq, e->seq), I64(at, e->at_ms), e->who, e->action, status, e->details, e->snapshot,
		     e->object);
}

/* The chip id a snapshot names (its last field), or NULL ("deleted"). */
static const char *snap_chip(const char *snap)
{
	const char *c = strstr(snap, " chip=");

	for (const char *n; c && (n = strstr(c + 1, " chip=")) != NULL;)
		c = n;
	return c ? c + 6 : NULL;
}

/* A box's history: the entries of one card that lie in [from, to] and
 * were made while the card was in box (its snapshot names it) or took it
 * out (the entry before did). */
struct box_hist {
	struct sms_table *t;
	const char *box;
	int64_t from_ms;
	bool was_in; /* the card's previous entry named box */
};

static int acc_box_entry(void *ctx, const struct sms_audit_entry *e)
{
	struct box_hist *b = ctx;
	const char *chip = snap_chip(e->snapshot);
	bool in = chip && strcmp(chip, b->box) == 0, moved = b->was_in || in;
	struct hist h = { b->t, 0 };

	b->was_in = in;
	if (!moved || e->at_ms < b->from_ms)
		return 0;
	return acc_hist(&h, e);
}

struct serials {
	uint64_t *v;
	size_t n, cap;
};

static int add_serial(void *ctx, uint64_t serial)
{
	struct serials *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return CE_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = serial;
	return 0;
}

static int seq_cmp(const void *a, const void *b)
{
	int64_t x = 0, y = 0;

	(void)parse_dec_s64(*(char *const *)a, 0, INT64_MAX, &x);
	(void)parse_dec_s64(*(char *const *)b, 0, INT64_MAX, &y);
	return (x > y) - (x < y);
}

static int rep_history(struct sms_store *s, const struct sms_report_params *p, struct sms_table *t)
{
	int64_t from_ms = p->from_s * 1000, to_ms = p->to_s ? p->to_s * 1000 + 999 : INT64_MAX;
	struct hist h = { t, 0 };
	char obj[SMS_CHIP_ID_MAX + 8];
	int r;

	if (!p->card == !p->box[0])
		return CE_ARG; /* one of card and box */
	t_col(t, "seq", true);
	t_col(t, "at_ms", true);
	t_col(t, "who", false);
	t_col(t, "action", false);
	t_col(t, "status_after", false);
	t_col(t, "details", false);
	t_col(t, "snapshot", false);
	t_col(t, "object", false); /* card:SERIAL, box:CHIP */
	if (p->card) {
		snprintf(obj, sizeof(obj), "card:%" PRIu64, p->card);
		return sms_audit_object(s, obj, from_ms, to_ms, acc_hist, &h);
	}
	{
		/* the cards first (no query inside another's rows), then each one's entries */
		struct serials l = { 0 };
		struct box_hist b = { t, p->box, from_ms, false };

		r = sms_audit_box_cards(s, p->box, to_ms, add_serial, &l);
		for (size_t i = 0; r == 0 && i < l.n; i++) {
			snprintf(obj, sizeof(obj), "card:%" PRIu64, l.v[i]);
			b.was_in = false;
			r = sms_audit_object(s, obj, 0, to_ms, acc_box_entry, &b);
		}
		free(l.v);
		if (r != 0)
			return r;
	}
	snprintf(obj, sizeof(obj), "box:%s", p->box);
	if ((r = sms_audit_object(s, obj, from_ms, to_ms, acc_hist, &h)) != 0)
		return r;
	/* one card after the other above: in the log's order now */
	if (t->nrows > 1)
		qsort(t->cells, t->nrows, t->ncols * sizeof(*t->cells), seq_cmp);
	return 0;
}

int sms_report_run(struct sms_store *s, const char *name, const struct sms_report_params *p, struct sms_table **out)
{
	int64_t at = p->at_s ? p->at_s : (int64_t)(now_wall_ms() / 1000u);
	struct sms_table *t;
	int r;

	*out = NULL;
	if (!name)
		return CE_NOT_FOUND;
	if (!(t = t_new(name, at)))
		return CE_NOMEM;
	if (strcmp(name, "summary") == 0)
		r = rep_summary(s, at, t);
	else if (strcmp(name, "subscribers") == 0)
		r = rep_subscribers(s, at, p->status, t);
	else if (strcmp(name, "blacklist") == 0)
		r = rep_blacklist(s, at, t);
	else if (strcmp(name, "monthly") == 0)
		r = (t->at_s = 0, rep_monthly(s, p, t));
	else if (strcmp(name, "package-channels") == 0)
		r = (t->at_s = 0, rep_package_channels(s, t));
	else if (strcmp(name, "active") == 0)
		r = rep_active(s, p, at, false, t);
	else if (strcmp(name, "ageing") == 0)
		r = rep_active(s, p, at, true, t);
	else if (strcmp(name, "card") == 0)
		r = rep_card(s, p, at, t);
	else if (strcmp(name, "history") == 0)
		r = (t->at_s = 0, rep_history(s, p, t));
	else if (strcmp(name, "cas-channels") == 0 || strcmp(name, "cas-match") == 0)
		r = sms_report_cas(s, at, name[4] == 'm', t); /* report_cas.c */
	else
		r = CE_NOT_FOUND;
	if (r != 0) {
		sms_table_free(t);
		return r;
	}
	*out = t;
	return 0;
}
