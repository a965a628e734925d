/*
 * config.h - `--config FILE` for `castellan headend` and `castellan
 * scramble`: an INI file (parsed by Debian's libinih) whose keys are the
 * command's long options without the dashes. In lib (not in src/cli,
 * which holds commands only) so every daemon's command can use it; the
 * names keep their cli_ prefix: they configure a command line.
 *
 * One source: the keys a command accepts, and whether each takes a value
 * or is a switch, are read from the command's own --help text (its lines
 * "  --name VALUE  ..." and "  --switch   ..."), so an option added to a
 * command gets its config key with nothing else to edit, and the file is
 * turned into the same argv the command line gives (file first, then the
 * command line: a flag given on the command line overrides the file).
 *
 * File syntax: `key = value` (or `key: value`), `;` or `#` comments at the
 * start of a line, ` ;` comments after a value, optional section [CMD]
 * (the command's name), `_` and `-` alike in keys, a value in double quotes
 * loses them, a switch takes true/false (yes/no, on/off, 1/0), a key given
 * twice is the option given twice. docs/configuration.md is the
 * operator's page.
 *
 * Outside data: the file is read whole (at most CLI_CONFIG_MAX_BYTES) and
 * fed to libinih line by line through a bounded reader that counts lines,
 * so every error carries its line number; a syntax error does not stop the
 * parse (every error is reported, up to CLI_CONFIG_MAX_ERRORS).
 *
 * SIGHUP: cli_config_begin blocks SIGHUP in the calling thread (so in every
 * thread it starts afterwards) and cli_config_reload_start runs a thread
 * that waits for it, re-reads the file, applies the keys the command says
 * can change live (through its callback) and logs every other changed key
 * as needing a restart. No globals: the state is the caller's struct.
 */
#ifndef CASTELLAN_LIB_CONFIG_H
#define CASTELLAN_LIB_CONFIG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "err.h"

#define CLI_CONFIG_MAX_BYTES (64u * 1024u)
#define CLI_CONFIG_MAX_ENTRIES 512u
#define CLI_CONFIG_MAX_ERRORS 64u
#define CLI_CONFIG_KEY_MAX 48u
#define CLI_CONFIG_MAX_OPTS 128u

struct cli_opt {
	char name[CLI_CONFIG_KEY_MAX]; /* without the dashes */
	bool is_switch;                /* no value */
};

struct cli_config_entry {
	char key[CLI_CONFIG_KEY_MAX];  /* the option's name (dashes) */
	char *value;                   /* NULL for a switch set true */
	unsigned line;
};

struct cli_config_error {
	unsigned line;
	char msg[200];
};

struct cli_config {
	struct cli_config_entry *e;
	size_t n;
	struct cli_config_error err[CLI_CONFIG_MAX_ERRORS];
	size_t nerr;
	bool more_errors;              /* errors past CLI_CONFIG_MAX_ERRORS */
};

/* A command's options, read from its usage text. 0, CE_NOMEM, CE_FORMAT
 * (no option lines). */
int cli_opts_from_usage(void (*usage)(FILE *f), struct cli_opt *opts, size_t cap, size_t *n) WARN_UNUSED;

/* Parse text (len bytes, not NUL-terminated) as cmd's config. 0 with the
 * entries and any errors in out (cli_config_free it either way), CE_RANGE
 * (more than CLI_CONFIG_MAX_BYTES), CE_NOMEM. */
int cli_config_parse(const char *cmd, const struct cli_opt *opts, size_t nopts, const char *text, size_t len,
	struct cli_config *out) WARN_UNUSED;

/* Read and parse FILE. Also CE_IO (cannot read it). */
int cli_config_load(const char *cmd, const struct cli_opt *opts, size_t nopts, const char *path,
	struct cli_config *out) WARN_UNUSED;

void cli_config_free(struct cli_config *c);

/* A command's parser run on part of an argv: mode CLI_CHECK_ONE (one
 * option, no other checks) or CLI_CHECK_ALL (the whole merged argv, with
 * the checks across options). Returns 0 if accepted; prints why not. */
#define CLI_CHECK_ONE 1
#define CLI_CHECK_ALL 2
typedef int (*cli_check_fn)(int argc, char **argv, int mode);

/* Applies a key that can change live (value: its new value, "true" for a
 * switch; NULL: the key was removed from the file, back to the default if
 * the command can, else an error and the value stays). 0 or an error
 * (logged by the caller). */
typedef int (*cli_apply_fn)(void *ctx, const char *key, const char *value);

struct cli_config_args {
	const char *cmd;
	char path[4096];               /* --config FILE, "" if none */
	struct cli_opt opts[CLI_CONFIG_MAX_OPTS];
	size_t nopts;
	struct cli_config cfg;         /* the file as read at start */
	int argc;                      /* file options then the command line */
	char **argv;                   /* argv[1..nfile]: copies of the file's, owned */
	int nfile;
	int cmd_argc;                  /* the command line as given */
	char **cmd_argv;
	/* reload */
	const char *const *live;       /* keys applied on SIGHUP */
	cli_apply_fn apply;
	void *ctx;
	char *live_now[16];            /* the value applied for each live key */
	pthread_t thr;
	bool thr_started;
	atomic_int thr_stop;
	unsigned reloads;              /* SIGHUPs handled */
};

/*
 * At the start of a command: find `--config FILE` (and `--check-config`)
 * in the argc and argv given. Without --config: *argv unchanged. With it: the file is
 * read and argc, argv become argv[0], the file's options, the rest of the
 * command line (owned by ca until cli_config_end). With --check-config
 * (needs check and --config): every error is printed as FILE:LINE: ...,
 * then the whole is checked; returns the exit status (0 if clean, 1 if
 * not). Returns -1 when the command should go on, else an exit status (a
 * file error is printed and gives 1, a usage error 2). Blocks SIGHUP.
 */
int cli_config_begin(const char *cmd, void (*usage)(FILE *f), cli_check_fn check, int *argc, char ***argv,
	struct cli_config_args *ca);

/* Start the SIGHUP thread: keys in live (NULL-terminated, at most 16) go to
 * apply(ctx, key, value) when their value in the file changed (unless the
 * command line gave them: it wins), others are logged as needing a
 * restart. 0 or CE_NOMEM / CE_IO. */
int cli_config_reload_start(struct cli_config_args *ca, const char *const *live, cli_apply_fn apply, void *ctx)
	WARN_UNUSED;

/* The same without the thread (tests, then cli_config_reload). */
int cli_config_live(struct cli_config_args *ca, const char *const *live, cli_apply_fn apply, void *ctx)
	WARN_UNUSED;

/* One reload as SIGHUP does it (tests call it directly). 0, or the error
 * that left the running values as they were. */
int cli_config_reload(struct cli_config_args *ca);

/* Stop the SIGHUP thread (before freeing what its callback uses). Safe
 * twice, and on NULL. */
void cli_config_reload_stop(struct cli_config_args *ca);

/* Stop the thread, free everything. Call it after every cli_config_begin,
 * whatever it returned. */
void cli_config_end(struct cli_config_args *ca);

#endif
