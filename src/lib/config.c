/*
 * config.c - `--config FILE` (see config.h): the command's options from
 * its --help text, the INI file through libinih with a line-counting
 * bounded reader, argv merging, --check-config and the SIGHUP thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "cursor.h"
#include "log.h"
#include "util.h"

/* ---- the command's options, from its usage text ----------------------- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* The column where an option line's description starts after a run of
 * spaces (the most common one), or 0. */
static size_t desc_column(const char *text, size_t len)
{
	unsigned hist[96] = { 0 };
	size_t i = 0, best = 0;

	while (i < len) {
		size_t eol = i, k;

		while (eol < len && text[eol] != '\n')
			eol++;
		if (eol - i > 4 && memcmp(text + i, "  --", 4) == 0) {
			for (k = i + 4; k + 1 < eol && !(text[k] == ' ' && text[k + 1] == ' '); k++)
				;
			while (k < eol && text[k] == ' ')
				k++;
			if (k < eol && k - i < sizeof(hist) / sizeof(hist[0]))
				hist[k - i]++;
		}
		i = eol + 1;
	}
	for (size_t c = 1; c < sizeof(hist) / sizeof(hist[0]); c++)
		if (hist[c] > hist[best])
			best = c;
	return best;
}

int cli_opts_from_usage(void (*usage)(FILE *f), struct cli_opt *opts, size_t cap, size_t *n)
{
	char *text = NULL;
	size_t len = 0, i = 0, dcol;
	FILE *f = open_memstream(&text, &len);

	*n = 0;
	if (!f)
		return CE_NOMEM;
	usage(f);
	if (fclose(f) != 0 || !text) {
		free(text);
		return CE_NOMEM;
	}
	dcol = desc_column(text, len);
	/* option lines: exactly two spaces, --name, then a value's name after
	 * one space (it takes a value), or the description: after two spaces,
	 * or after one space right at the description column (a long switch),
	 * or nothing (a switch) */
	while (i < len) {
		size_t eol = i, k, nl;

		while (eol < len && text[eol] != '\n')
			eol++;
		if (eol - i > 4 && memcmp(text + i, "  --", 4) == 0) {
			k = i + 4;
			while (k < eol && name_char(text[k]))
				k++;
			nl = k - (i + 4);
			if (nl > 0 && nl < CLI_CONFIG_KEY_MAX && *n < cap && (k == eol || text[k] == ' ')) {
				bool dup = false;

				for (size_t j = 0; j < *n; j++)
					dup = dup || (strlen(opts[j].name) == nl && memcmp(opts[j].name, text + i + 4, nl) == 0);
				if (!dup) {
					memcpy(opts[*n].name, text + i + 4, nl);
					opts[*n].name[nl] = '\0';
					opts[*n].is_switch = k == eol || k + 1 == eol || text[k + 1] == ' ' ||
							     (dcol && k + 1 - i == dcol);
					(*n)++;
				}
			}
		}
		i = eol + 1;
	}
	free(text);
	return *n ? 0 : CE_FORMAT;
}

/* ---- parsing ---------------------------------------------------------- */

struct pstate {
	const char *cmd;
	const struct cli_opt *opts;
	size_t nopts;
	struct cur c;           /* the file */
	unsigned line;          /* the line the reader gave last */
	const unsigned *skip;   /* lines inih called syntax errors: fed as blank */
	size_t nskip;
	struct cli_config *out;
	int err;                /* CE_NOMEM */
};

static void add_error(struct cli_config *c, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add_error(struct cli_config *c, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (c->nerr == CLI_CONFIG_MAX_ERRORS) {
		c->more_errors = true;
		return;
	}
	c->err[c->nerr].line = line;
	va_start(ap, fmt);
	vsnprintf(c->err[c->nerr].msg, sizeof(c->err[0].msg), fmt, ap);
	va_end(ap);
	c->nerr++;
}

static bool skipped(const struct pstate *s, unsigned line)
{
	for (size_t i = 0; i < s->nskip; i++)
		if (s->skip[i] == line)
			return true;
	return false;
}

/* libinih's reader: one line of the file per call, counted; a line too long
 * for libinih's buffer, a NUL byte or a line already reported as a syntax
 * error is given as an empty line (errors are recounted on every pass). */
static char *reader(char *str, int num, void *stream)
{
	struct pstate *s = stream;
	size_t left = cur_left(&s->c), len = 0;
	const uint8_t *p;

	if (left == 0 || num < 3)
		return NULL;
	p = s->c.buf + s->c.off;
	while (len < left && p[len] != '\n')
		len++;
	p = cur_ptr(&s->c, len < left ? len + 1 : len);
	if (!p)
		return NULL;
	s->line++;
	if (len > 0 && p[len - 1] == '\r')
		len--;
	if (skipped(s, s->line) || memchr(p, '\0', len) || len + 2 > (size_t)num) {
		char max[24];

		snprintf(max, sizeof(max), "%d", num - 3);
		if (memchr(p, '\0', len))
			add_error(s->out, s->line, "a NUL byte in the line");
		else if (!skipped(s, s->line))
			add_error(s->out, s->line, "line too long (at most %s bytes)", max);
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	memcpy(str, p, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static const struct cli_opt *find_opt(const struct pstate *s, const char *name)
{
	for (size_t i = 0; i < s->nopts; i++)
		if (strcmp(s->opts[i].name, name) == 0)
			return &s->opts[i];
	return NULL;
}

static int switch_value(const char *v, bool *on)
{
	static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*on = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*on = false;
			return 0;
		}
	}
	return CE_FORMAT;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct pstate *s = user;
	struct cli_config *c = s->out;
	char key[CLI_CONFIG_KEY_MAX];
	const struct cli_opt *o;
	size_t nl = strlen(name), vl = strlen(value);
	bool on = true;

	if (section[0] && strcmp(section, s->cmd) != 0) {
		add_error(c, s->line, "unknown section [%s] (use [%s] or none)", section, s->cmd);
		return 1;
	}
	if (nl == 0 || nl >= sizeof(key)) {
		add_error(c, s->line, nl ? "key too long" : "no key before '='");
		return 1;
	}
	for (size_t i = 0; i <= nl; i++)
		key[i] = name[i] == '_' ? '-' : name[i];
	if (strcmp(key, "config") == 0 || strcmp(key, "check-config") == 0 || strcmp(key, "help") == 0) {
		add_error(c, s->line, "'%s' cannot be set in the file", key);
		return 1;
	}
	if (!(o = find_opt(s, key))) {
		add_error(c, s->line, "unknown key '%s' (not an option of castellan %s)", key, s->cmd);
		return 1;
	}
	if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
		value++;
		vl -= 2;
	}
	if (o->is_switch) {
		char v[8] = "";

		if (vl < sizeof(v))
			memcpy(v, value, vl);
		if (vl >= sizeof(v) || switch_value(v, &on) != 0) {
			add_error(c, s->line, "'%s' is a switch: true or false", key);
			return 1;
		}
		if (!on)
			return 1;
	} else if (vl == 0) {
		add_error(c, s->line, "'%s' needs a value", key);
		return 1;
	}
	if (c->n == CLI_CONFIG_MAX_ENTRIES) {
		add_error(c, s->line, "too many keys");
		return 1;
	}
	memcpy(c->e[c->n].key, key, nl + 1);
	c->e[c->n].line = s->line;
	c->e[c->n].value = NULL;
	if (!o->is_switch) {
		if (!(c->e[c->n].value = strndup(value, vl))) {
			s->err = CE_NOMEM;
			return 1;
		}
	}
	c->n++;
	return 1;
}

static void clear_entries(struct cli_config *c)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->e[i].value) {
			secret_wipe(c->e[i].value, strlen(c->e[i].value));
			free(c->e[i].value);
		}
		c->e[i].value = NULL;
	}
	c->n = 0;
}

int cli_config_parse(const char *cmd, const struct cli_opt *opts, size_t nopts, const char *text, size_t len,
	struct cli_config *out)
{
	struct pstate s;
	unsigned skip[CLI_CONFIG_MAX_ERRORS];
	size_t nskip = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > CLI_CONFIG_MAX_BYTES)
		return CE_RANGE;
	if (!(out->e = calloc(CLI_CONFIG_MAX_ENTRIES, sizeof(*out->e))))
		return CE_NOMEM;
	/* no Python-style continuation lines: an indented key is a key */
	ini_allow_multiline = false;
	/* libinih reports the first syntax error's line; such a line is then
	 * fed as blank and the file parsed again, until no syntax error is
	 * left, so every one is reported. Key errors come from the last pass. */
	for (;;) {
		memset(&s, 0, sizeof(s));
		s.cmd = cmd;
		s.opts = opts;
		s.nopts = nopts;
		s.out = out;
		s.skip = skip;
		s.nskip = nskip;
		cur_init(&s.c, text, len);
		clear_entries(out);
		out->nerr = 0;
		out->more_errors = false;
		r = ini_parse_stream(reader, &s, handler, &s);
		if (s.err) {
			clear_entries(out);
			return s.err;
		}
		if (r <= 0 || nskip == CLI_CONFIG_MAX_ERRORS || skipped(&s, (unsigned)r))
			break;
		skip[nskip++] = (unsigned)r;
	}
	if (r < 0) {
		clear_entries(out);
		return CE_NOMEM;
	}
	if (r > 0)
		out->more_errors = true;
	/* the syntax errors, each at its line */
	for (size_t i = 0; i < nskip; i++)
		add_error(out, skip[i], "syntax error: expected 'key = value' or '[section]'");
	/* in line order */
	for (size_t i = 1; i < out->nerr; i++) {
		struct cli_config_error t = out->err[i];
		size_t j = i;

		while (j > 0 && out->err[j - 1].line > t.line) {
			out->err[j] = out->err[j - 1];
			j--;
		}
		out->err[j] = t;
	}
	return 0;
}

int cli_config_load(const char *cmd, const struct cli_opt *opts, size_t nopts, const char *path,
	struct cli_config *out)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = file_read_all(path, CLI_CONFIG_MAX_BYTES, &buf, &n)) != 0)
		return r == CE_RANGE ? CE_RANGE : CE_IO;
	r = cli_config_parse(cmd, opts, nopts, (const char *)buf, n, out);
	secret_free(buf, n);
	return r;
}

void cli_config_free(struct cli_config *c)
{
	if (!c->e)
		return;
	clear_entries(c);
	free(c->e);
	c->e = NULL;
}

/* ---- argv ------------------------------------------------------------- */

static void print_errors(const char *path, const struct cli_config *c)
{
	for (size_t i = 0; i < c->nerr; i++)
		fprintf(stderr, "%s:%u: %s\n", path, c->err[i].line, c->err[i].msg);
	if (c->more_errors)
		fprintf(stderr, "%s: more errors not shown\n", path);
}

/* argv for the entries [from, to) of c, after argv0: copies ("--key",
 * value), so the command may wipe a value it read (scramble wipes
 * --fixed-cw) without touching c. NULL on no memory. */
static void free_entries_argv(char **v, int argc);

static char **entries_argv(const struct cli_config *c, size_t from, size_t to, char *argv0, int *argc)
{
	char **v = calloc(2 * (to - from) + 2, sizeof(*v));
	int k = 1;

	if (!v)
		return NULL;
	v[0] = argv0;
	for (size_t i = from; i < to; i++) {
		size_t kl = strlen(c->e[i].key) + 3;

		if (!(v[k] = malloc(kl)))
			goto fail;
		snprintf(v[k++], kl, "--%s", c->e[i].key);
		if (c->e[i].value && !(v[k++] = strdup(c->e[i].value)))
			goto fail;
	}
	*argc = k;
	return v;
fail:
	free_entries_argv(v, 2 * (int)(to - from) + 1);
	return NULL;
}

/* Free (wiped) what entries_argv made: v[1..argc). */
static void free_entries_argv(char **v, int argc)
{
	for (int j = 1; v && j < argc; j++) {
		if (v[j]) {
			secret_wipe(v[j], strlen(v[j]));
			free(v[j]);
		}
	}
	free(v);
}

/* Run check on argv with its stderr caught into *text (malloc'ed, NULL if
 * it printed nothing). The check's return. */
static int check_caught(cli_check_fn check, int argc, char **argv, int mode, char **text)
{
	FILE *t = tmpfile();
	int saved = -1, r;
	char line[512];
	size_t len = 0;
	FILE *m = NULL;

	*text = NULL;
	fflush(stderr);
	if (t && (saved = dup(2)) >= 0 && dup2(fileno(t), 2) >= 0) {
		r = check(argc, argv, mode);
		fflush(stderr);
		dup2(saved, 2);
		rewind(t);
		while (fgets(line, sizeof(line), t)) {
			if (!m && !(m = open_memstream(text, &len)))
				break;
			fputs(line, m);
		}
		if (m)
			fclose(m);
	} else {
		r = check(argc, argv, mode);
	}
	if (saved >= 0)
		close(saved);
	if (t)
		fclose(t);
	return r;
}

/* Print text's lines, each after path:line: (line 0: path:). */
static void print_at(const char *path, unsigned line, const char *text)
{
	while (text && *text) {
		const char *nl = strchr(text, '\n');
		int n = nl ? (int)(nl - text) : (int)strlen(text);

		if (line)
			fprintf(stderr, "%s:%u: %.*s\n", path, line, n, text);
		else
			fprintf(stderr, "%s: %.*s\n", path, n, text);
		text += n + (nl ? 1 : 0);
	}
}

static int check_config(struct cli_config_args *ca, cli_check_fn check)
{
	size_t errors = ca->cfg.nerr + (ca->cfg.more_errors ? 1 : 0), ei = 0;
	char **msgs = calloc(ca->cfg.n + 1, sizeof(*msgs));

	if (!msgs)
		return 1;
	/* each key alone, through the command's own parser */
	for (size_t i = 0; i < ca->cfg.n; i++) {
		int n = 0;
		char **v = entries_argv(&ca->cfg, i, i + 1, ca->cmd_argv[0], &n);

		if (!v)
			break;
		if (check_caught(check, n, v, CLI_CHECK_ONE, &msgs[i]) != 0)
			errors++;
		free_entries_argv(v, n);
	}
	/* file errors and the parser's, in line order */
	for (size_t i = 0; i < ca->cfg.n || ei < ca->cfg.nerr; ) {
		if (ei < ca->cfg.nerr && (i == ca->cfg.n || ca->cfg.err[ei].line <= ca->cfg.e[i].line)) {
			fprintf(stderr, "%s:%u: %s\n", ca->path, ca->cfg.err[ei].line, ca->cfg.err[ei].msg);
			ei++;
		} else {
			print_at(ca->path, ca->cfg.e[i].line, msgs[i]);
			i++;
		}
	}
	if (ca->cfg.more_errors)
		fprintf(stderr, "%s: more errors not shown\n", ca->path);
	/* then the whole, file and command line together */
	if (errors == 0) {
		if (check_caught(check, ca->argc, ca->argv, CLI_CHECK_ALL, &msgs[ca->cfg.n]) != 0)
			errors++;
		print_at(ca->path, 0, msgs[ca->cfg.n]);
	}
	for (size_t i = 0; i <= ca->cfg.n; i++)
		free(msgs[i]);
	free(msgs);
	if (errors) {
		fprintf(stderr, "%s: %zu error%s\n", ca->path, errors, errors == 1 ? "" : "s");
		return 1;
	}
	printf("%s: OK (%zu keys)\n", ca->path, ca->cfg.n);
	return 0;
}

int cli_config_begin(const char *cmd, void (*usage)(FILE *f), cli_check_fn check, int *argc, char ***argv,
	struct cli_config_args *ca)
{
	const char *path = NULL;
	bool want_check = false;
	int k = 0, r, n = 0;
	char **v = NULL, **rest = NULL;
	sigset_t hup;

	memset(ca, 0, sizeof(*ca));
	ca->cmd = cmd;
	ca->cmd_argc = *argc;
	ca->cmd_argv = *argv;
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &hup, NULL);
	for (int i = 1; i < *argc; i++) {
		if (strcmp((*argv)[i], "--check-config") == 0) {
			want_check = true;
		} else if (strcmp((*argv)[i], "--config") == 0) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "%s: --config needs a file\n", cmd);
				return 2;
			}
			path = (*argv)[++i];
		}
	}
	if (!path && !want_check)
		return -1;
	if (!path || (want_check && !check)) {
		fprintf(stderr, "%s: --check-config needs --config FILE\n", cmd);
		return 2;
	}
	if (strlen(path) >= sizeof(ca->path)) {
		fprintf(stderr, "%s: --config: path too long\n", cmd);
		return 2;
	}
	snprintf(ca->path, sizeof(ca->path), "%s", path);
	if (cli_opts_from_usage(usage, ca->opts, CLI_CONFIG_MAX_OPTS, &ca->nopts) != 0)
		return 1;
	r = cli_config_load(cmd, ca->opts, ca->nopts, path, &ca->cfg);
	if (r != 0) {
		fprintf(stderr, "%s: %s: %s\n", cmd, path,
			r == CE_RANGE ? "larger than 64 KiB" : r == CE_IO ? strerror(errno) : err_str(r));
		return 1;
	}
	/* argv0, the file's options, the command line without --config FILE
	 * and --check-config */
	if (!(v = entries_argv(&ca->cfg, 0, ca->cfg.n, (*argv)[0], &n)))
		return 1;
	if (!(rest = calloc((size_t)n + (size_t)*argc + 1, sizeof(*rest)))) {
		free_entries_argv(v, n);
		return 1;
	}
	for (k = 0; k < n; k++)
		rest[k] = v[k];
	free(v);
	ca->nfile = n - 1; /* rest[1..n): ours */
	for (int i = 1; i < *argc; i++) {
		if (strcmp((*argv)[i], "--check-config") == 0)
			continue;
		if (strcmp((*argv)[i], "--config") == 0) {
			i++;
			continue;
		}
		rest[k++] = (*argv)[i];
	}
	ca->argv = rest;
	ca->argc = k;
	if (want_check)
		return check_config(ca, check);
	if (ca->cfg.nerr) {
		print_errors(path, &ca->cfg);
		return 1;
	}
	*argc = ca->argc;
	*argv = ca->argv;
	return -1;
}

/* ---- SIGHUP ----------------------------------------------------------- */

static bool on_command_line(const struct cli_config_args *ca, const char *key)
{
	for (int i = 1; i < ca->cmd_argc; i++)
		if (ca->cmd_argv[i][0] == '-' && ca->cmd_argv[i][1] == '-' && strcmp(ca->cmd_argv[i] + 2, key) == 0)
			return true;
	return false;
}

/* The key's values in c, joined by '\n' (a switch: "true"); NULL if absent
 * or no memory (*nomem says which). */
static char *values_of(const struct cli_config *c, const char *key, bool *nomem)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f;
	bool any = false;

	if (!(f = open_memstream(&s, &len))) {
		*nomem = true;
		return NULL;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->e[i].key, key) != 0)
			continue;
		fprintf(f, "%s%s", any ? "\n" : "", c->e[i].value ? c->e[i].value : "true");
		any = true;
	}
	if (fclose(f) != 0) {
		*nomem = true;
		free(s);
		return NULL;
	}
	if (!any) {
		free(s);
		return NULL;
	}
	return s;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int live_index(const struct cli_config_args *ca, const char *key)
{
	for (int i = 0; ca->live && ca->live[i] && i < 16; i++)
		if (strcmp(ca->live[i], key) == 0)
			return i;
	return -1;
}

int cli_config_reload(struct cli_config_args *ca)
{
	struct cli_config nc;
	bool nomem = false;
	int r, changed = 0;

	ca->reloads++;
	if (!ca->path[0]) {
		LOG_INFO("config", "SIGHUP: no --config file, nothing to reload");
		return 0;
	}
	r = cli_config_load(ca->cmd, ca->opts, ca->nopts, ca->path, &nc);
	if (r == 0 && nc.nerr) {
		for (size_t i = 0; i < nc.nerr; i++)
			LOG_ERR("config", "%s:%u: %s", ca->path, nc.err[i].line, nc.err[i].msg);
		r = CE_FORMAT;
	}
	if (r != 0) {
		LOG_ERR("config", "SIGHUP: %s not reloaded (%s): the running values stay", ca->path, err_str(r));
		cli_config_free(&nc);
		return r;
	}
	for (size_t o = 0; o < ca->nopts; o++) {
		const char *key = ca->opts[o].name;
		char *was = values_of(&ca->cfg, key, &nomem), *now = values_of(&nc, key, &nomem);
		int li = live_index(ca, key);

		if (li >= 0) {
			const char *cur = ca->live_now[li];

			if (!same(cur, now)) {
				changed++;
				if (on_command_line(ca, key)) {
					LOG_INFO("config", "%s changed in %s, but the command line's --%s stays", key,
						ca->path, key);
				} else if (!now) {
					if (ca->apply(ca->ctx, key, NULL) == 0) {
						LOG_INFO("config", "%s removed from %s: back to its default", key, ca->path);
						free(ca->live_now[li]);
						ca->live_now[li] = NULL;
					} else {
						LOG_WARN("config", "%s removed from %s: its value stays until a restart", key,
							ca->path);
					}
				} else if (strchr(now, '\n')) {
					LOG_WARN("config", "%s: given more than once; not applied", key);
				} else if ((r = ca->apply(ca->ctx, key, now)) != 0) {
					LOG_ERR("config", "%s = %s: not applied: %s", key, now, err_str(r));
				} else {
					LOG_INFO("config", "%s = %s applied", key, now);
					free(ca->live_now[li]);
					ca->live_now[li] = now;
					now = NULL;
				}
			}
		} else if (!same(was, now)) {
			changed++;
			LOG_WARN("config", "%s changed in %s: takes effect at the next restart", key, ca->path);
		}
		free(was);
		free(now);
	}
	if (!changed)
		LOG_INFO("config", "SIGHUP: %s re-read, nothing changed", ca->path);
	cli_config_free(&nc);
	return nomem ? CE_NOMEM : 0;
}

static void *reload_main(void *arg)
{
	struct cli_config_args *ca = arg;
	sigset_t hup;
	int sig = 0;

	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	for (;;) {
		if (sigwait(&hup, &sig) != 0)
			continue;
		if (atomic_load(&ca->thr_stop))
			break;
		(void)cli_config_reload(ca);
	}
	return NULL;
}

int cli_config_live(struct cli_config_args *ca, const char *const *live, cli_apply_fn apply, void *ctx)
{
	bool nomem = false;

	ca->live = live;
	ca->apply = apply;
	ca->ctx = ctx;
	for (int i = 0; live && live[i] && i < 16; i++) {
		free(ca->live_now[i]);
		ca->live_now[i] = values_of(&ca->cfg, live[i], &nomem);
		if (nomem)
			return CE_NOMEM;
	}
	return 0;
}

int cli_config_reload_start(struct cli_config_args *ca, const char *const *live, cli_apply_fn apply, void *ctx)
{
	int r;

	if ((r = cli_config_live(ca, live, apply, ctx)) != 0)
		return r;
	atomic_store(&ca->thr_stop, 0);
	if (pthread_create(&ca->thr, NULL, reload_main, ca) != 0)
		return CE_IO;
	ca->thr_started = true;
	return 0;
}

void cli_config_reload_stop(struct cli_config_args *ca)
{
	if (ca && ca->thr_started) {
		atomic_store(&ca->thr_stop, 1);
		pthread_kill(ca->thr, SIGHUP);
		pthread_join(ca->thr, NULL);
		ca->thr_started = false;
	}
}

void cli_config_end(struct cli_config_args *ca)
{
	cli_config_reload_stop(ca);
	for (size_t i = 0; i < 16; i++) {
		free(ca->live_now[i]);
		ca->live_now[i] = NULL;
	}
	if (ca->argv) {
		for (int i = 1; i <= ca->nfile; i++) {
			secret_wipe(ca->argv[i], strlen(ca->argv[i]));
			free(ca->argv[i]);
		}
		free(ca->argv);
		ca->argv = NULL;
	}
	cli_config_free(&ca->cfg);
}
