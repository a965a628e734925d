/*
 * opt.h - one declarative option table per command. A command declares its
 * options once (name, kind of value, where it is stored, one line of help,
 * required or not); opt_parse reads argv from that table and opt_help
 * writes --help from the same table, so the help and the parser cannot
 * disagree. lib/config.c reads the same --help to learn a command's
 * config-file keys, so a table entry is also a key of `--config FILE`.
 *
 * Values are stored at an offset into a struct the command passes as base
 * (its own options struct or a part's config struct).
 * Numbers are strict (lib/util.h parse_u64 / parse_s64: the whole string,
 * decimal or 0x-hex, within the range the table gives). An option given
 * twice keeps the last value (a config file's key, then the command line
 * that overrides it); OPT_FN options see every occurrence, in order.
 *
 * Errors, all on stderr, all exit status 2: "castellan CMD: bad value for
 * --X: 'V'", "... --X needs a value", "... unknown option '--X'", "...
 * --X is required", "... too many arguments" / "... missing FILE".
 */
#ifndef CASTELLAN_LIB_OPT_H
#define CASTELLAN_LIB_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum opt_kind {
	OPT_K_FLAG,   /* no value: the bool at off becomes true */
	OPT_K_STR,    /* const char * at off: the value (points into argv) */
	OPT_K_NUM,    /* an integer field of size 1, 2, 4 or 8 at off: lo..hi (signed field if lo < 0) */
	OPT_K_CHOICE, /* an integer field at off: the value of the matching choice */
	OPT_K_FN,     /* fn(base, value) for every occurrence (value NULL for a switch) */
	OPT_K_HEX,    /* a byte array at off: exactly size bytes in hex, an optional leading '#' (colours) */
};

#define OPT_REQUIRED 1u /* must be given */
#define OPT_SECRET 2u   /* never echoed in a message; its argv string is wiped once parsed */
#define OPT_SWITCH 4u   /* OPT_K_FN without a value */

struct opt_choice {
	const char *name;
	int value;
};

struct opt {
	const char *name;                     /* "--listen"; NULL ends a table */
	const char *arg;                      /* the value's name in --help ("ADDR:PORT"); NULL for a switch */
	enum opt_kind kind;
	unsigned flags;                       /* OPT_REQUIRED, OPT_SECRET, OPT_SWITCH */
	size_t off, size;                     /* where in base, and the field's size */
	int64_t lo;                           /* OPT_K_NUM: the range */
	uint64_t hi;
	const struct opt_choice *choices;     /* OPT_K_CHOICE: ends with a NULL name */
	int (*fn)(void *base, const char *v); /* OPT_K_FN: 0, or an error (said as a bad value) */
	int (*check)(const char *v);          /* OPT_K_STR: NULL, or 0 if v is good (else a bad value) */
	const char *help;                     /* one line; a '\n' continues it, aligned */
};

/* Table entries; T is the struct base points to, f the field. */
#define OPT_FLAG(n, T, f, h) { .name = n, .kind = OPT_K_FLAG, OPT_AT(T, f), .help = h }
#define OPT_STR(n, a, fl, T, f, h) { .name = n, .arg = a, .kind = OPT_K_STR, .flags = fl, OPT_AT(T, f), .help = h }
#define OPT_STRV(n, a, fl, T, f, chk, h)                                                                   \
	{ .name = n, .arg = a, .kind = OPT_K_STR, .flags = fl, OPT_AT(T, f), .check = chk, .help = h }
#define OPT_NUM(n, a, fl, T, f, l, hh, h)                                                                   \
	{ .name = n, .arg = a, .kind = OPT_K_NUM, .flags = fl, OPT_AT(T, f), .lo = l, .hi = hh, .help = h }
#define OPT_CHOICE(n, a, T, f, ch, h) { .name = n, .arg = a, .kind = OPT_K_CHOICE, OPT_AT(T, f), .choices = ch, .help = h }
#define OPT_HEX(n, a, T, f, h) { .name = n, .arg = a, .kind = OPT_K_HEX, OPT_AT(T, f), .help = h }
#define OPT_FN(n, a, fl, func, h) { .name = n, .arg = a, .kind = OPT_K_FN, .flags = fl, .fn = func, .help = h }
#define OPT_END { .name = NULL }
#define OPT_AT(T, f) .off = offsetof(T, f), .size = sizeof(((T *)0)->f)

/* A command (or one subcommand): the table and the words around it. */
struct opt_cmd {
	const char *name;        /* "ecmg", "keys init": messages say "castellan NAME: ..." */
	const char *synopsis;    /* after "usage: castellan NAME "; NULL: the required options, then [options] */
	const char *about;       /* the description paragraph (may be NULL) */
	const struct opt *opts;  /* ends with OPT_END */
	const char *args;        /* the positional arguments' names ("FILE"), NULL for none */
	int min_args, max_args;  /* how many positional arguments */
	const char *footer;      /* text after the options (may be NULL) */
};

#define OPT_GO (-1)

/*
 * Parse argv[first..argc) into base by c's table. Positional arguments go
 * to args[0..max_args) (*nargs of them; args may be NULL when max_args is
 * 0); "--" ends the options. -h/--help anywhere: the help on stdout, 0.
 * Returns OPT_GO to go on, else the exit status (0 after --help, 2 after a
 * usage error, said on stderr).
 */
int opt_parse(const struct opt_cmd *c, void *base, int argc, char **argv, int first, const char **args,
	int *nargs);

/* c's --help: the usage line, the description, the options, the footer. */
void opt_help(FILE *f, const struct opt_cmd *c);
/* The help of a command with subcommands: every subs[] (NULL-terminated)
 * one after the other, under one usage block; intro and footer may be NULL. */
void opt_help_subs(FILE *f, const char *intro, const struct opt_cmd *const *subs, const char *footer);

/* A command with subcommands (subs[i]->name "CMD WORD"): the index of the
 * one argv[1] names, or -1 with *rc the exit status when there is none to
 * run: 0 after -h/--help anywhere (opt_help_subs on stdout), 2 when argv[1]
 * is missing or names none (said on stderr). */
int opt_sub(const char *intro, const struct opt_cmd *const *subs, const char *footer, int argc, char **argv,
	int *rc);

/* true if argv[first..] has -h or --help before any "--". */
bool opt_wants_help(int argc, char **argv, int first);

#endif
