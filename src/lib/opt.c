/*
 * opt.c - argv parsing and --help text from a command's option table
 * (opt.h). No state of its own: everything is in the caller's table and
 * base struct.
 */
#include <string.h>
#include "lib/opt.h"
#include "lib/err.h"
#include "lib/util.h"

#define OPT_MAX 128 /* options in one table (the seen[] counts) */
#define HELP_COL_MAX 30

bool opt_wants_help(int argc, char **argv, int first)
{
	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

static const struct opt *find(const struct opt *t, const char *name, size_t *idx)
{
	for (size_t i = 0; t[i].name; i++) {
		if (strcmp(t[i].name, name) == 0) {
			*idx = i;
			return &t[i];
		}
	}
	return NULL;
}

/* The table is the program's own: a field too small for its range, or a
 * switch on a field that is not a bool, is a bug caught at the first run. */
static bool entry_ok(const struct opt *o)
{
	switch (o->kind) {
	case OPT_K_FLAG:
		return o->size == sizeof(bool);
	case OPT_K_STR:
		return o->size == sizeof(const char *) && o->arg;
	case OPT_K_NUM:
		if (!o->arg || (o->size != 1 && o->size != 2 && o->size != 4 && o->size != 8))
			return false;
		if (o->lo < 0)
			return o->size == 8 || (o->lo >= -(INT64_C(1) << (8 * o->size - 1)) &&
						o->hi < (UINT64_C(1) << (8 * o->size - 1)));
		return o->size == 8 || o->hi < (UINT64_C(1) << (8 * o->size));
	case OPT_K_CHOICE:
		return o->choices && o->arg && o->size == sizeof(int);
	case OPT_K_FN:
		return o->fn && (!o->arg == !!(o->flags & OPT_SWITCH));
	case OPT_K_HEX:
		return o->arg && o->size > 0;
	}
	return false;
}

static void store(void *base, const struct opt *o, uint64_t bits)
{
	uint8_t *p = (uint8_t *)base + o->off;
	uint8_t u8 = (uint8_t)bits;
	uint16_t u16 = (uint16_t)bits;
	uint32_t u32 = (uint32_t)bits;

	switch (o->size) {
	case 1: memcpy(p, &u8, 1); break;
	case 2: memcpy(p, &u16, 2); break;
	case 4: memcpy(p, &u32, 4); break;
	default: memcpy(p, &bits, 8); break;
	}
}

static int bad_value(const struct opt_cmd *c, const struct opt *o, const char *v)
{
	if (o->flags & OPT_SECRET)
		fprintf(stderr, "castellan %s: bad value for %s (%s)\n", c->name, o->name, o->arg);
	else
		fprintf(stderr, "castellan %s: bad value for %s: '%s' (%s)\n", c->name, o->name, v, o->arg);
	return 2;
}

/* One value of option o into base: OPT_GO or an exit status. */
static int take(const struct opt_cmd *c, const struct opt *o, void *base, const char *v)
{
	uint64_t u = 0;
	int64_t s = 0;

	switch (o->kind) {
	case OPT_K_FLAG:
		store(base, o, 1);
		return OPT_GO;
	case OPT_K_STR:
		if (o->check && o->check(v) != 0)
			return bad_value(c, o, v);
		memcpy((uint8_t *)base + o->off, &v, sizeof(v));
		return OPT_GO;
	case OPT_K_NUM:
		if (o->lo >= 0) {
			if (parse_u64(v, o->hi, &u) != 0 || u < (uint64_t)o->lo)
				return bad_value(c, o, v);
			store(base, o, u);
		} else {
			if (parse_s64(v, o->lo, (int64_t)o->hi, &s) != 0)
				return bad_value(c, o, v);
			store(base, o, (uint64_t)s);
		}
		return OPT_GO;
	case OPT_K_CHOICE:
		for (size_t i = 0; o->choices[i].name; i++) {
			if (strcmp(o->choices[i].name, v) == 0) {
				int x = o->choices[i].value;

				memcpy((uint8_t *)base + o->off, &x, sizeof(x));
				return OPT_GO;
			}
		}
		return bad_value(c, o, v);
	case OPT_K_FN:
		return o->fn(base, v) == 0 ? OPT_GO : bad_value(c, o, v ? v : "");
	case OPT_K_HEX: {
		const char *h = v[0] == '#' ? v + 1 : v;

		if (strlen(h) != 2 * o->size || hex_decode(h, (uint8_t *)base + o->off, o->size) != 0)
			return bad_value(c, o, v);
		return OPT_GO;
	}
	}
	return 2;
}

int opt_parse(const struct opt_cmd *c, void *base, int argc, char **argv, int first, const char **args,
	int *nargs)
{
	unsigned seen[OPT_MAX] = { 0 };
	size_t n = 0, idx = 0;
	int na = 0, r;
	bool opts_done = false;

	if (nargs)
		*nargs = 0;
	for (n = 0; c->opts[n].name; n++) {
		if (n + 1 >= OPT_MAX || !entry_ok(&c->opts[n])) {
			fprintf(stderr, "castellan %s: internal error: option table entry %s\n", c->name, c->opts[n].name);
			return 1;
		}
	}
	if (opt_wants_help(argc, argv, first)) {
		opt_help(stdout, c);
		return 0;
	}
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *o;

		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = true;
			continue;
		}
		if (opts_done || a[0] != '-' || a[1] == '\0') {
			if (na >= c->max_args) {
				fprintf(stderr, "castellan %s: unexpected argument '%s' (see castellan %s --help)\n", c->name,
					a, c->name);
				return 2;
			}
			args[na++] = a;
			continue;
		}
		if (!(o = find(c->opts, a, &idx))) {
			fprintf(stderr, "castellan %s: unknown option '%s' (see castellan %s --help)\n", c->name, a,
				c->name);
			return 2;
		}
		seen[idx]++;
		if (o->kind == OPT_K_FLAG || (o->kind == OPT_K_FN && (o->flags & OPT_SWITCH))) {
			if ((r = take(c, o, base, NULL)) != OPT_GO)
				return r;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "castellan %s: %s needs a value (%s)\n", c->name, a, o->arg);
			return 2;
		}
		if ((r = take(c, o, base, argv[++i])) != OPT_GO)
			return r;
		if (o->flags & OPT_SECRET)
			secret_wipe(argv[i], strlen(argv[i])); /* not visible in ps any more */
	}
	for (size_t k = 0; k < n; k++) {
		if ((c->opts[k].flags & OPT_REQUIRED) && !seen[k]) {
			fprintf(stderr, "castellan %s: %s %s is required (see castellan %s --help)\n", c->name,
				c->opts[k].name, c->opts[k].arg ? c->opts[k].arg : "", c->name);
			return 2;
		}
	}
	if (na < c->min_args) {
		fprintf(stderr, "castellan %s: missing %s (see castellan %s --help)\n", c->name, c->args ? c->args : "argument",
			c->name);
		return 2;
	}
	if (nargs)
		*nargs = na;
	return OPT_GO;
}

/* ---- --help --------------------------------------------------------- */

static size_t left_len(const struct opt *o)
{
	return strlen(o->name) + (o->arg ? 1 + strlen(o->arg) : 0);
}

static void synopsis(FILE *f, const struct opt_cmd *c)
{
	bool optional = false;

	fprintf(f, "castellan %s", c->name);
	if (c->synopsis) {
		fprintf(f, " %s\n", c->synopsis);
		return;
	}
	for (size_t i = 0; c->opts[i].name; i++) {
		if (c->opts[i].flags & OPT_REQUIRED)
			fprintf(f, " %s%s%s", c->opts[i].name, c->opts[i].arg ? " " : "",
				c->opts[i].arg ? c->opts[i].arg : "");
		else
			optional = true;
	}
	if (optional)
		fputs(" [options]", f);
	if (c->args)
		fprintf(f, " %s", c->args);
	fputc('\n', f);
}

/* "  --name ARG" then the help at the table's column (two spaces at least:
 * lib/config.c tells a switch from an option with a value by that), each
 * '\n' of the help continued at the column. */
static void options(FILE *f, const struct opt *t)
{
	size_t col = 0;

	for (size_t i = 0; t[i].name; i++) {
		size_t l = 2 + left_len(&t[i]) + 2;

		if (l > col && l <= HELP_COL_MAX)
			col = l;
	}
	/* a wrapped option's value name must not start at the column, where
	 * lib/config.c would take it for the help of a switch */
	for (size_t i = 0; t[i].name; i++) {
		if (t[i].arg && 2 + strlen(t[i].name) + 1 == col) {
			col++;
			i = (size_t)-1;
		}
	}
	for (size_t i = 0; t[i].name; i++) {
		const struct opt *o = &t[i];
		size_t l = 2 + left_len(o);
		const char *h = o->help ? o->help : "";

		fprintf(f, "  %s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		if (l + 2 > col) {
			fputc('\n', f);
			l = 0;
		}
		fprintf(f, "%*s", (int)(col - l), "");
		for (; *h; h++) {
			fputc(*h, f);
			if (*h == '\n' && h[1])
				fprintf(f, "%*s", (int)col, "");
		}
		fputc('\n', f);
	}
}

void opt_help(FILE *f, const struct opt_cmd *c)
{
	fputs("usage: ", f);
	synopsis(f, c);
	if (c->about)
		fprintf(f, "\n%s\n", c->about);
	if (c->opts[0].name) {
		fputs("\noptions:\n", f);
		options(f, c->opts);
	}
	if (c->footer)
		fprintf(f, "\n%s", c->footer);
}

void opt_help_subs(FILE *f, const char *intro, const struct opt_cmd *const *subs, const char *footer)
{
	for (size_t i = 0; subs[i]; i++) {
		fputs(i ? "       " : "usage: ", f);
		synopsis(f, subs[i]);
	}
	if (intro)
		fprintf(f, "\n%s\n", intro);
	for (size_t i = 0; subs[i]; i++) {
		fprintf(f, "\n%s:%s%s\n", subs[i]->name, subs[i]->about ? " " : "", subs[i]->about ? subs[i]->about : "");
		options(f, subs[i]->opts);
	}
	if (footer)
		fprintf(f, "\n%s", footer);
}

int opt_sub(const char *intro, const struct opt_cmd *const *subs, const char *footer, int argc, char **argv,
	int *rc)
{
	if (opt_wants_help(argc, argv, 1)) {
		opt_help_subs(stdout, intro, subs, footer);
		*rc = 0;
		return -1;
	}
	for (int i = 0; argc > 1 && subs[i]; i++) {
		const char *w = strrchr(subs[i]->name, ' ');

		if (w && strcmp(w + 1, argv[1]) == 0)
			return i;
	}
	if (argc > 1)
		fprintf(stderr, "castellan %.*s: unknown command '%s'\n\n", (int)strcspn(subs[0]->name, " "),
			subs[0]->name, argv[1]);
	opt_help_subs(stderr, intro, subs, footer);
	*rc = 2;
	return -1;
}
