/*
 * tvcas.c - the free CAS's card table (tvcas.h) from a MariaDB/MySQL dump
 * or a CSV/TSV export, through one bounded cursor over the whole file.
 *
 * The dump: statements are skipped whole (quotes, backquotes and comments
 * honoured) unless they are CREATE TABLE `tvcas_smartcards` (its column
 * names, one per line as mysqldump and phpMyAdmin write them) or INSERT /
 * REPLACE INTO `tvcas_smartcards` [(columns)] VALUES (...), ...; whose
 * tuples are rows. Values: NULL, numbers, 'strings' and "strings" with
 * MySQL's backslash escapes (\0 \' \" \b \n \r \t \Z \\ \% \_) and doubled
 * quotes, 0x hex. Without a CREATE TABLE or a column list, the columns are
 * the free CAS's own order (TVCAS_DEFAULT_COLS).
 *
 * CSV (RFC 4180 quoting) and TSV (mysql --batch: backslash escapes): a
 * header line names the columns; an unquoted NULL or \N is SQL NULL.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "sms/tvcas.h"
#include "lib/cursor.h"
#include "lib/util.h"

#define ROW_SCRATCH (4u * (TVCAS_VALUE_MAX + 1u)) /* bytes of one row's unescaped values */
#define NAME_MAX_BYTES 64			     /* a column name */

/* The columns of tvcas_smartcards in the free CAS's schema (tvcas.sql of
 * its server, MariaDB 10.3). */
static const char *const default_cols[] = { "id", "serial_no", "name", "info", "network_id", "key",
					    "access_criteria", "status", "cn", "type", "pair", "start",
					    "finish", "c_time", "edit", "uid", "subscription_slot1",
					    "subscription_slot2" };
#define NDEFAULT (sizeof(default_cols) / sizeof(default_cols[0]))

enum field { F_SERIAL, F_NAME, F_INFO, F_AC, F_PAIR, F_START, F_FINISH, F_STATUS, F_N };
static const char *const field_names[F_N] = { "serial_no", "name", "info", "access_criteria",
					      "pair", "start", "finish", "status" };

struct val {
	bool null;
	size_t off, len; /* in scratch */
};

struct parser {
	struct cur c;
	enum tvcas_format fmt;
	/* line counting: line of byte line_off */
	size_t line_off, line;
	int col_of[F_N];  /* the row position of each field, -1: absent */
	int ncols;        /* columns a row must have (0: unknown) */
	uint8_t *scratch;
	size_t used;
	struct val v[TVCAS_COLS_MAX];
	int nv;
	struct tvcas_card *card;
	int (*fn)(void *ctx, const struct tvcas_card *c);
	void *ctx;
	size_t rows;
	size_t err_line;
	char *why;
	size_t why_cap;
};

static int peek(const struct cur *c)
{
	return cur_left(c) ? c->buf[c->off] : -1;
}

static int peek_at(const struct cur *c, size_t k)
{
	return cur_left(c) > k ? c->buf[c->off + k] : -1;
}

static void adv(struct cur *c, size_t n)
{
	(void)cur_skip(c, n);
}

static size_t line_at(struct parser *p, size_t off)
{
	if (off < p->line_off) { /* never goes back in practice; recount */
		p->line_off = 0;
		p->line = 1;
	}
	for (size_t i = p->line_off; i < off && i < p->c.len; i++)
		if (p->c.buf[i] == '\n')
			p->line++;
	p->line_off = off;
	return p->line;
}

static int fail(struct parser *p, size_t off, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(struct parser *p, size_t off, int r, const char *fmt, ...)
{
	va_list ap;

	p->err_line = line_at(p, off);
	if (p->why_cap) {
		va_start(ap, fmt);
		vsnprintf(p->why, p->why_cap, fmt, ap);
		va_end(ap);
	}
	return r;
}

static bool word_ci(const struct cur *c, const char *w)
{
	size_t n = strlen(w);

	if (cur_left(c) < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int a = c->buf[c->off + i], b = (unsigned char)w[i];

		if (a >= 'a' && a <= 'z')
			a -= 32;
		if (b >= 'a' && b <= 'z')
			b -= 32;
		if (a != b)
			return false;
	}
	/* a whole word */
	if (cur_left(c) > n) {
		int nx = c->buf[c->off + n];

		if ((nx >= 'A' && nx <= 'Z') || (nx >= 'a' && nx <= 'z') || (nx >= '0' && nx <= '9') || nx == '_')
			return false;
	}
	return true;
}

/* Spaces and comments (-- x, # x, / * x * /) of SQL. */
static int skip_space(struct parser *p)
{
	for (;;) {
		int ch = peek(&p->c);

		if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
			adv(&p->c, 1);
		} else if ((ch == '-' && peek_at(&p->c, 1) == '-') || ch == '#') {
			while (peek(&p->c) >= 0 && peek(&p->c) != '\n')
				adv(&p->c, 1);
		} else if (ch == '/' && peek_at(&p->c, 1) == '*') {
			size_t at = p->c.off;

			adv(&p->c, 2);
			while (peek(&p->c) >= 0 && !(peek(&p->c) == '*' && peek_at(&p->c, 1) == '/'))
				adv(&p->c, 1);
			if (peek(&p->c) < 0)
				return fail(p, at, CE_FORMAT, "a comment is not closed");
			adv(&p->c, 2);
		} else {
			return 0;
		}
	}
}

/* After an item of a parenthesised list (where: "in a row", ...): ',' (*more
 * true) or ')' (*more false), spaces around; else the error. */
static int list_sep(struct parser *p, const char *where, bool *more)
{
	int r;

	if ((r = skip_space(p)) != 0)
		return r;
	if (peek(&p->c) != ',' && peek(&p->c) != ')')
		return fail(p, p->c.off, CE_FORMAT, "',' or ')' expected %s", where);
	*more = peek(&p->c) == ',';
	adv(&p->c, 1);
	return 0;
}

/* A quoted string (q: ' " or `) into scratch as p->v[p->nv] (or, with
 * keep false, only skipped). MySQL escapes inside ' and ". */
static int quoted(struct parser *p, bool keep)
{
	size_t at = p->c.off;
	int q = peek(&p->c);
	struct val *v = keep ? &p->v[p->nv] : NULL;

	adv(&p->c, 1);
	if (v) {
		v->null = false;
		v->off = p->used;
		v->len = 0;
	}
	for (;;) {
		int ch = peek(&p->c), out;

		if (ch < 0)
			return fail(p, at, CE_FORMAT, "a quoted value is not closed");
		adv(&p->c, 1);
		if (ch == q) {
			if (peek(&p->c) == q) { /* doubled quote */
				adv(&p->c, 1);
				out = q;
			} else {
				break;
			}
		} else if (ch == '\\' && q != '`') {
			int e = peek(&p->c);

			if (e < 0)
				return fail(p, at, CE_FORMAT, "a quoted value ends in a backslash");
			adv(&p->c, 1);
			switch (e) {
			case '0': out = 0; break;
			case 'b': out = '\b'; break;
			case 'n': out = '\n'; break;
			case 'r': out = '\r'; break;
			case 't': out = '\t'; break;
			case 'Z': out = 0x1a; break;
			case '%': case '_': /* MySQL keeps the backslash before these */
				if (v) {
					if (v->len >= TVCAS_VALUE_MAX || p->used >= ROW_SCRATCH)
						return fail(p, at, CE_LIMIT, "a value over %u bytes", TVCAS_VALUE_MAX);
					p->scratch[p->used++] = '\\';
					v->len++;
				}
				out = e;
				break;
			default: out = e; break;
			}
		} else {
			out = ch;
		}
		if (v) {
			if (v->len >= TVCAS_VALUE_MAX || p->used >= ROW_SCRATCH)
				return fail(p, at, CE_LIMIT, "a value over %u bytes", TVCAS_VALUE_MAX);
			p->scratch[p->used++] = (uint8_t)out;
			v->len++;
		}
	}
	return 0;
}

/* An unquoted SQL value: NULL, a number, 0x hex, TRUE/FALSE. */
static int bare_value(struct parser *p)
{
	size_t at = p->c.off, n = 0;
	struct val *v = &p->v[p->nv];

	while (peek(&p->c) >= 0) {
		int ch = peek(&p->c);

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' ||
		      ch == '+' || ch == '.' || ch == '_'))
			break;
		adv(&p->c, 1);
		if (++n > 64)
			return fail(p, at, CE_LIMIT, "an unquoted value over 64 bytes");
	}
	if (n == 0)
		return fail(p, at, CE_FORMAT, "a value expected");
	if (n == 4 && memcmp(p->c.buf + at, "NULL", 4) == 0) {
		*v = (struct val){ .null = true };
		return 0;
	}
	if (p->used + n > ROW_SCRATCH)
		return fail(p, at, CE_LIMIT, "a row over %u bytes", ROW_SCRATCH);
	memcpy(p->scratch + p->used, p->c.buf + at, n);
	*v = (struct val){ .null = false, .off = p->used, .len = n };
	p->used += n;
	return 0;
}

/* ---- a row to a card ------------------------------------------------------ */

/* The value of field f as a NUL-terminated string in out (cap bytes):
 * 1 = present, 0 = NULL or no such column. CE_RANGE: too long or a NUL. */
static int field_str(struct parser *p, enum field f, char *out, size_t cap)
{
	int k = p->col_of[f];
	const struct val *v;

	out[0] = '\0';
	if (k < 0 || k >= p->nv || p->v[k].null)
		return 0;
	v = &p->v[k];
	if (v->len >= cap || memchr(p->scratch + v->off, 0, v->len))
		return CE_RANGE;
	memcpy(out, p->scratch + v->off, v->len);
	out[v->len] = '\0';
	return 1;
}

/* Tabs and line breaks to spaces (the free CAS's TEXT held them; a
 * Castellan name or info may not). true if any was changed. */
static bool clean_breaks(char *t)
{
	bool any = false;

	for (; *t; t++)
		if (*t == '\t' || *t == '\n' || *t == '\r') {
			*t = ' ';
			any = true;
		}
	return any;
}

static int row_done(struct parser *p, size_t at)
{
	struct tvcas_card *c = p->card;
	char num[72];
	int r;

	if (p->ncols && p->nv != p->ncols)
		return fail(p, at, CE_FORMAT, "a row of %d values, the table has %d columns", p->nv, p->ncols);
	if (++p->rows > TVCAS_ROWS_MAX)
		return fail(p, at, CE_LIMIT, "more than %u rows", TVCAS_ROWS_MAX);
	memset(c, 0, offsetof(struct tvcas_card, info));
	c->info[0] = '\0';
	c->line = line_at(p, at);
	if ((r = field_str(p, F_SERIAL, num, sizeof(num))) <= 0 || parse_u64(num, INT64_MAX, &c->serial) != 0 ||
	    c->serial == 0)
		return fail(p, at, CE_RANGE, "serial_no: not a card serial (1..2^63-1): '%.24s'", r > 0 ? num : "NULL");
	if ((r = field_str(p, F_NAME, c->name, sizeof(c->name))) >= 0)
		c->cleaned |= clean_breaks(c->name);
	if (r < 0 || !sms_text_valid(c->name) ||
	    !sms_name_fits(c->name))
		return fail(p, at, CE_RANGE, "card %" PRIu64 ": name: not UTF-8 text of at most %d characters",
			    c->serial, SMS_NAME_CHARS);
	if ((r = field_str(p, F_INFO, c->info, sizeof(c->info))) >= 0)
		c->cleaned |= clean_breaks(c->info);
	if (r < 0 || !sms_text_valid(c->info))
		return fail(p, at, CE_RANGE, "card %" PRIu64 ": info: not UTF-8 text of at most %d bytes", c->serial,
			    SMS_INFO_MAX);
	if ((r = field_str(p, F_AC, num, sizeof(num))) < 0)
		return fail(p, at, CE_RANGE, "card %" PRIu64 ": access_criteria: too long", c->serial);
	if (r > 0) {
		uint8_t b[4];
		struct cur bc;

		if (strlen(num) != 8 || hex_decode(num, b, 4) != 0)
			return fail(p, at, CE_RANGE, "card %" PRIu64 ": access_criteria: not 8 hex digits: '%.16s'",
				    c->serial, num);
		cur_init(&bc, b, sizeof(b));
		if (cur_u32(&bc, &c->access_criteria) != 0)
			return fail(p, at, CE_INTERNAL, "card %" PRIu64 ": access_criteria", c->serial);
	}
	if ((r = field_str(p, F_PAIR, num, sizeof(num))) < 0 || (r > 0 && strcmp(num, "0") && strcmp(num, "1")))
		return fail(p, at, CE_RANGE, "card %" PRIu64 ": pair: not 0 or 1", c->serial);
	c->pair = r > 0 && num[0] == '1';
	for (int k = 0; k < 2; k++) {
		enum field f = k ? F_FINISH : F_START;
		int64_t *t = k ? &c->finish : &c->start;
		bool *has = k ? &c->has_finish : &c->has_start;

		if ((r = field_str(p, f, num, sizeof(num))) < 0 ||
		    (r > 0 && (strlen(num) > 11 || parse_s64(num, 0, 99999999999, t) != 0)))
			return fail(p, at, CE_RANGE, "card %" PRIu64 ": %s: not unix seconds", c->serial,
				    field_names[f]);
		*has = r > 0;
	}
	if (c->has_start && c->has_finish && c->finish < c->start)
		return fail(p, at, CE_RANGE, "card %" PRIu64 ": finish before start", c->serial);
	if ((r = field_str(p, F_STATUS, num, sizeof(num))) < 0)
		return fail(p, at, CE_RANGE, "card %" PRIu64 ": status: too long", c->serial);
	if (r > 0) {
		uint64_t st;

		if (parse_u64(num, 255, &st) != 0)
			return fail(p, at, CE_RANGE, "card %" PRIu64 ": status: not 0..255", c->serial);
		c->disabled = st == 0;
	}
	if (p->fn && (r = p->fn(p->ctx, c)) != 0)
		return fail(p, at, r, "card %" PRIu64 ": %s", c->serial, err_str(r));
	return 0;
}

/* Column names: where each known field is. */
static int set_columns(struct parser *p, char names[][NAME_MAX_BYTES], int n, size_t at)
{
	for (int f = 0; f < F_N; f++)
		p->col_of[f] = -1;
	for (int i = 0; i < n; i++)
		for (int f = 0; f < F_N; f++)
			if (strcmp(names[i], field_names[f]) == 0)
				p->col_of[f] = i;
	p->ncols = n;
	if (p->col_of[F_SERIAL] < 0)
		return fail(p, at, CE_FORMAT, "no serial_no column");
	return 0;
}

static int default_columns(struct parser *p)
{
	char names[NDEFAULT][NAME_MAX_BYTES];

	for (size_t i = 0; i < NDEFAULT; i++)
		snprintf(names[i], NAME_MAX_BYTES, "%s", default_cols[i]);
	return set_columns(p, names, (int)NDEFAULT, 0);
}

/* ---- the dump ---------------------------------------------------------------- */

/* `name` or name, compared with want (a table or column). */
static int ident(struct parser *p, char *out, size_t cap)
{
	size_t at = p->c.off, n = 0;

	if (peek(&p->c) == '`') {
		adv(&p->c, 1);
		while (peek(&p->c) >= 0 && peek(&p->c) != '`') {
			if (n + 1 >= cap)
				return fail(p, at, CE_LIMIT, "a name over %zu bytes", cap - 1);
			out[n++] = (char)peek(&p->c);
			adv(&p->c, 1);
		}
		if (peek(&p->c) != '`')
			return fail(p, at, CE_FORMAT, "a `name` is not closed");
		adv(&p->c, 1);
	} else {
		while (peek(&p->c) >= 0) {
			int ch = peek(&p->c);

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			      ch == '_' || ch == '$'))
				break;
			if (n + 1 >= cap)
				return fail(p, at, CE_LIMIT, "a name over %zu bytes", cap - 1);
			out[n++] = (char)ch;
			adv(&p->c, 1);
		}
	}
	out[n] = '\0';
	if (n == 0)
		return fail(p, at, CE_FORMAT, "a name expected");
	return 0;
}

/* The table name, maybe db.`table`: its last part. */
static int table_name(struct parser *p, char *out, size_t cap)
{
	int r = ident(p, out, cap);

	while (r == 0 && peek(&p->c) == '.') {
		adv(&p->c, 1);
		r = ident(p, out, cap);
	}
	if (r == 0) {
		char *dot = strrchr(out, '.');

		if (dot)
			memmove(out, dot + 1, strlen(dot + 1) + 1);
	}
	return r;
}

/* Skip to after the statement's ';' (or the end). */
static int skip_statement(struct parser *p)
{
	int r;

	while (peek(&p->c) >= 0) {
		int ch = peek(&p->c);

		if (ch == ';') {
			adv(&p->c, 1);
			return 0;
		}
		if (ch == '\'' || ch == '"' || ch == '`') {
			if ((r = quoted(p, false)) != 0)
				return r;
		} else if ((ch == '-' && peek_at(&p->c, 1) == '-') || ch == '#' || (ch == '/' && peek_at(&p->c, 1) == '*')) {
			if ((r = skip_space(p)) != 0)
				return r;
		} else {
			adv(&p->c, 1);
		}
	}
	return 0;
}

/* CREATE TABLE `tvcas_smartcards` ( `col` ...,\n ... ): the column names. */
static int create_table(struct parser *p)
{
	char names[TVCAS_COLS_MAX][NAME_MAX_BYTES];
	size_t at = p->c.off;
	int n = 0, r;

	if ((r = skip_space(p)) != 0)
		return r;
	if (peek(&p->c) != '(')
		return fail(p, at, CE_FORMAT, "CREATE TABLE " TVCAS_TABLE ": '(' expected");
	adv(&p->c, 1);
	for (;;) {
		if ((r = skip_space(p)) != 0)
			return r;
		if (peek(&p->c) != '`')
			break; /* PRIMARY KEY, KEY, ")": no more columns */
		if (n >= TVCAS_COLS_MAX)
			return fail(p, at, CE_LIMIT, "more than %d columns", TVCAS_COLS_MAX);
		if ((r = ident(p, names[n], NAME_MAX_BYTES)) != 0)
			return r;
		n++;
		/* the rest of the definition: to the end of its line (quotes
		 * honoured: a DEFAULT may hold a comma) */
		while (peek(&p->c) >= 0 && peek(&p->c) != '\n') {
			if (peek(&p->c) == '\'' || peek(&p->c) == '"') {
				if ((r = quoted(p, false)) != 0)
					return r;
			} else {
				adv(&p->c, 1);
			}
		}
	}
	if ((r = set_columns(p, names, n, at)) != 0)
		return r;
	return skip_statement(p);
}

/* INSERT INTO `tvcas_smartcards` [(cols)] VALUES (...), (...); */
static int insert_rows(struct parser *p)
{
	size_t at = p->c.off;
	bool more;
	int r;

	if ((r = skip_space(p)) != 0)
		return r;
	if (peek(&p->c) == '(') { /* a column list */
		char names[TVCAS_COLS_MAX][NAME_MAX_BYTES];
		int n = 0;

		adv(&p->c, 1);
		for (;;) {
			if ((r = skip_space(p)) != 0)
				return r;
			if (n >= TVCAS_COLS_MAX)
				return fail(p, at, CE_LIMIT, "more than %d columns", TVCAS_COLS_MAX);
			if ((r = ident(p, names[n], NAME_MAX_BYTES)) != 0)
				return r;
			n++;
			if ((r = list_sep(p, "in the column list", &more)) != 0)
				return r;
			if (!more)
				break;
		}
		if ((r = set_columns(p, names, n, at)) != 0)
			return r;
		if ((r = skip_space(p)) != 0)
			return r;
	} else if (p->ncols == 0 && (r = default_columns(p)) != 0) {
		return r;
	}
	if (!word_ci(&p->c, "VALUES") && !word_ci(&p->c, "VALUE"))
		return fail(p, p->c.off, CE_FORMAT, "VALUES expected");
	adv(&p->c, word_ci(&p->c, "VALUES") ? 6 : 5);
	for (;;) {
		size_t row_at;

		if ((r = skip_space(p)) != 0)
			return r;
		row_at = p->c.off;
		if (peek(&p->c) != '(')
			return fail(p, row_at, CE_FORMAT, "'(' expected before a row");
		adv(&p->c, 1);
		p->nv = 0;
		p->used = 0;
		for (;;) {
			if ((r = skip_space(p)) != 0)
				return r;
			if (p->nv >= TVCAS_COLS_MAX)
				return fail(p, row_at, CE_LIMIT, "a row of more than %d values", TVCAS_COLS_MAX);
			if (peek(&p->c) == '\'' || peek(&p->c) == '"')
				r = quoted(p, true);
			else
				r = bare_value(p);
			if (r != 0)
				return r;
			p->nv++;
			if ((r = list_sep(p, "in a row", &more)) != 0)
				return r;
			if (!more)
				break;
		}
		if ((r = row_done(p, row_at)) != 0)
			return r;
		if ((r = skip_space(p)) != 0)
			return r;
		if (peek(&p->c) == ',') {
			adv(&p->c, 1);
			continue;
		}
		if (peek(&p->c) == ';') {
			adv(&p->c, 1);
			return 0;
		}
		if (peek(&p->c) < 0)
			return 0;
		/* ON DUPLICATE KEY UPDATE ...: the rest of the statement */
		return skip_statement(p);
	}
}

static int parse_dump(struct parser *p)
{
	char name[NAME_MAX_BYTES];
	int r;

	for (;;) {
		if ((r = skip_space(p)) != 0)
			return r;
		if (peek(&p->c) < 0)
			return 0;
		if (word_ci(&p->c, "CREATE")) {
			adv(&p->c, 6);
			if ((r = skip_space(p)) != 0)
				return r;
			if (word_ci(&p->c, "TABLE")) {
				adv(&p->c, 5);
				if ((r = skip_space(p)) != 0)
					return r;
				if (word_ci(&p->c, "IF")) { /* IF NOT EXISTS */
					for (int k = 0; k < 3 && (r = skip_space(p)) == 0; k++)
						if ((r = ident(p, name, sizeof(name))) != 0)
							return r;
					if (r != 0 || (r = skip_space(p)) != 0)
						return r;
				}
				if ((r = table_name(p, name, sizeof(name))) != 0)
					return r;
				if (strcmp(name, TVCAS_TABLE) == 0) {
					if ((r = create_table(p)) != 0)
						return r;
					continue;
				}
			}
		} else if (word_ci(&p->c, "INSERT") || word_ci(&p->c, "REPLACE")) {
			adv(&p->c, word_ci(&p->c, "INSERT") ? 6 : 7);
			if ((r = skip_space(p)) != 0)
				return r;
			if (word_ci(&p->c, "IGNORE")) {
				adv(&p->c, 6);
				if ((r = skip_space(p)) != 0)
					return r;
			}
			if (word_ci(&p->c, "INTO")) {
				adv(&p->c, 4);
				if ((r = skip_space(p)) != 0 || (r = table_name(p, name, sizeof(name))) != 0)
					return r;
				if (strcmp(name, TVCAS_TABLE) == 0) {
					if ((r = insert_rows(p)) != 0)
						return r;
					continue;
				}
			}
		}
		if ((r = skip_statement(p)) != 0)
			return r;
	}
}

/* ---- CSV / TSV ----------------------------------------------------------------- */

/* One field of a CSV or TSV line into p->v[p->nv]; *eol set at the end of
 * the line (or file). */
static int text_field(struct parser *p, char sep, bool *eol)
{
	struct val *v = &p->v[p->nv];
	size_t at = p->c.off;
	bool quoted_f = false;

	*v = (struct val){ .null = false, .off = p->used, .len = 0 };
	*eol = false;
	if (p->fmt == TVCAS_CSV && peek(&p->c) == '"') {
		quoted_f = true;
		adv(&p->c, 1);
	}
	for (;;) {
		int ch = peek(&p->c), out;

		if (ch < 0) {
			if (quoted_f)
				return fail(p, at, CE_FORMAT, "a quoted field is not closed");
			*eol = true;
			break;
		}
		if (quoted_f) {
			adv(&p->c, 1);
			if (ch == '"') {
				if (peek(&p->c) == '"') {
					adv(&p->c, 1);
					out = '"';
				} else {
					quoted_f = false; /* closed: a separator or the end must follow */
					int nx = peek(&p->c);

					if (nx >= 0 && nx != sep && nx != '\n' && nx != '\r')
						return fail(p, at, CE_FORMAT, "text after a closing quote");
					continue;
				}
			} else {
				out = ch;
			}
		} else {
			if (ch == sep) {
				adv(&p->c, 1);
				break;
			}
			if (ch == '\n' || ch == '\r') {
				adv(&p->c, 1);
				if (ch == '\r' && peek(&p->c) == '\n')
					adv(&p->c, 1);
				*eol = true;
				break;
			}
			adv(&p->c, 1);
			out = ch;
			if (p->fmt == TVCAS_TSV && ch == '\\') {
				int e = peek(&p->c);

				if (e < 0)
					return fail(p, at, CE_FORMAT, "a field ends in a backslash");
				adv(&p->c, 1);
				out = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '0' ? 0 : e == 'N' ? -2 : e;
				if (out == -2) { /* \N: NULL (SELECT ... INTO OUTFILE) */
					if (v->len != 0)
						return fail(p, at, CE_FORMAT, "\\N inside a field");
					v->null = true;
					continue;
				}
			}
		}
		if (v->null)
			return fail(p, at, CE_FORMAT, "\\N inside a field");
		if (v->len >= TVCAS_VALUE_MAX || p->used >= ROW_SCRATCH)
			return fail(p, at, CE_LIMIT, "a value over %u bytes", TVCAS_VALUE_MAX);
		p->scratch[p->used++] = (uint8_t)out;
		v->len++;
	}
	/* unquoted NULL or \N (CSV) */
	if (!v->null && v->len == 4 && memcmp(p->scratch + v->off, "NULL", 4) == 0 &&
	    !(p->fmt == TVCAS_CSV && p->c.buf[at] == '"'))
		v->null = true;
	if (!v->null && v->len == 2 && memcmp(p->scratch + v->off, "\\N", 2) == 0 && p->fmt == TVCAS_CSV &&
	    p->c.buf[at] != '"')
		v->null = true;
	return 0;
}

static int text_line(struct parser *p, char sep)
{
	bool eol = false;
	int r;

	p->nv = 0;
	p->used = 0;
	while (!eol) {
		if (p->nv >= TVCAS_COLS_MAX)
			return fail(p, p->c.off, CE_LIMIT, "a line of more than %d fields", TVCAS_COLS_MAX);
		if ((r = text_field(p, sep, &eol)) != 0)
			return r;
		p->nv++;
	}
	return 0;
}

static int parse_text(struct parser *p)
{
	char sep = p->fmt == TVCAS_TSV ? '\t' : ',';
	char names[TVCAS_COLS_MAX][NAME_MAX_BYTES];
	int r;

	if (peek(&p->c) == 0xEF && peek_at(&p->c, 1) == 0xBB && peek_at(&p->c, 2) == 0xBF)
		adv(&p->c, 3); /* a UTF-8 byte order mark */
	if ((r = text_line(p, sep)) != 0)
		return r;
	for (int i = 0; i < p->nv; i++) {
		if (p->v[i].null || p->v[i].len >= NAME_MAX_BYTES)
			return fail(p, 0, CE_FORMAT, "the header line: field %d is not a column name", i + 1);
		memcpy(names[i], p->scratch + p->v[i].off, p->v[i].len);
		names[i][p->v[i].len] = '\0';
	}
	if ((r = set_columns(p, names, p->nv, 0)) != 0)
		return r;
	while (peek(&p->c) >= 0) {
		size_t at = p->c.off;

		if (peek(&p->c) == '\n' || (peek(&p->c) == '\r' && peek_at(&p->c, 1) == '\n')) {
			adv(&p->c, peek(&p->c) == '\r' ? 2 : 1); /* an empty line */
			continue;
		}
		if ((r = text_line(p, sep)) != 0 || (r = row_done(p, at)) != 0)
			return r;
	}
	return 0;
}

static enum tvcas_format sniff(const uint8_t *buf, size_t len)
{
	static const char *const sql_starts[] = { "--", "/*", "#", "CREATE", "INSERT", "DROP", "SET", "LOCK", "USE",
						  "REPLACE", "START", "BEGIN" };
	size_t i = 0;

	while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t'))
		i++;
	for (size_t k = 0; k < sizeof(sql_starts) / sizeof(sql_starts[0]); k++) {
		size_t n = strlen(sql_starts[k]);

		if (len - i >= n && strncasecmp((const char *)buf + i, sql_starts[k], n) == 0)
			return TVCAS_SQL;
	}
	for (; i < len && buf[i] != '\n'; i++)
		if (buf[i] == '\t')
			return TVCAS_TSV;
	return TVCAS_CSV;
}

int tvcas_parse(const uint8_t *buf, size_t len, enum tvcas_format fmt,
		int (*fn)(void *ctx, const struct tvcas_card *c), void *ctx, size_t *rows, size_t *err_line,
		char *why, size_t why_cap)
{
	struct parser p;
	int r;

	*rows = 0;
	*err_line = 0;
	if (why_cap)
		why[0] = '\0';
	memset(&p, 0, sizeof(p));
	if (len > TVCAS_FILE_MAX) {
		snprintf(why, why_cap, "a file over %u bytes", TVCAS_FILE_MAX);
		return CE_LIMIT;
	}
	cur_init(&p.c, buf, len);
	p.fmt = fmt == TVCAS_AUTO ? sniff(buf, len) : fmt;
	p.line = 1;
	p.fn = fn;
	p.ctx = ctx;
	p.why = why;
	p.why_cap = why_cap;
	for (int f = 0; f < F_N; f++)
		p.col_of[f] = -1;
	p.scratch = malloc(ROW_SCRATCH);
	p.card = malloc(sizeof(*p.card));
	if (!p.scratch || !p.card) {
		r = CE_NOMEM;
		goto out;
	}
	r = p.fmt == TVCAS_SQL ? parse_dump(&p) : parse_text(&p);
	if (r == 0 && p.fmt == TVCAS_SQL && p.rows == 0 && p.ncols == 0) {
		snprintf(why, why_cap, "no table " TVCAS_TABLE " in the dump");
		r = CE_FORMAT;
	}
	*rows = p.rows;
	*err_line = p.err_line;
out:
	free(p.scratch);
	free(p.card);
	return r;
}
