/*
 * cli.h - the `castellan` multi-command CLI. Each command lives in its own
 * cmd_*.c file with one entry point; main.c holds the table.
 * A command returns a process exit status (0 ok, 1 failure, 2 usage) and
 * answers --help / -h with its usage on stdout.
 */
#ifndef CASTELLAN_CLI_H
#define CASTELLAN_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/opt.h"

struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

/* true if argv has -h or --help. */
bool cli_wants_help(int argc, char **argv);
/* Leading --db URI / --db-file FILE pairs from argv[1..]: their values into
 * *db and *db_file (left as they were when absent); returns the index of the
 * first other argument. */
int cli_db_args(int argc, char **argv, const char **db, const char **db_file);
/* v, the value of option opt, as a number 0..max into *out: 0, or CE_ARG
 * said on stderr as "CMD: bad value for OPT: 'V'". */
int cli_u64(const char *cmd, const char *opt, const char *v, uint64_t max, uint64_t *out);

/* common.c: what several commands share. */
/* --log-level as an OPT_K_FN: sets the level at once. 0 or CE_ARG. */
int cli_log_level(void *base, const char *v);
#define CLI_OPT_LOG_LEVEL OPT_FN("--log-level", "LEVEL", 0, cli_log_level, "error | warn | info (default) | debug")
/* OPT_STRV checks: a CIDR[,CIDR...] list (lib/netacl.h); ADDR:PORT with a port. 0 if good. */
int cli_check_acl(const char *v);
int cli_check_addr(const char *v);
/* The keystore passphrase (--passphrase-file F, else $CASTELLAN_PASSPHRASE)
 * into *pass (secret_free it): 0, or the error said on stderr as
 * "castellan PROG: passphrase: WHY ...". */
int cli_passphrase(const char *prog, const char *pfile, char **pass);
/* The passphrase, then keystore_load(path): 0, or the error said. */
struct keystore;
int cli_keystore_open(const char *prog, const char *path, const char *pfile, struct keystore **ks);
/* SIGINT/SIGTERM set the returned flag (cleared now); SIGPIPE ignored. */
volatile sig_atomic_t *cli_stop_on_signals(void);
/* When path is not NULL: the printf-formatted line written to it atomically
 * (mode 0644). 0, or the error said. */
int cli_ready_file(const char *prog, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A config file's log-level key on SIGHUP (lib/config.h cli_apply_fn's key
 * and value): 0, CE_ARG, CE_UNSUPPORTED (key removed: the level stays). */
int cli_apply_log_level(const char *key, const char *value);
/* A password: the first line of file, or of stdin when file is NULL, into
 * pw (cap bytes, NUL-terminated; secret_wipe it). 0, CE_IO, CE_LIMIT (the
 * line does not fit). */
int cli_password_read(const char *file, char *pw, size_t cap);

int cmd_keys(int argc, char **argv);
int cmd_provision(int argc, char **argv);
int cmd_ecmg(int argc, char **argv);
int cmd_scramble(int argc, char **argv);
int cmd_emmg(int argc, char **argv);
int cmd_stb(int argc, char **argv);
int cmd_sms(int argc, char **argv);
int cmd_sms_migrate(int argc, char **argv); /* cmd_sms_migrate.c: `sms migrate` */
struct sms_store;
int sms_import_tvcas(struct sms_store *s, int argc, char **argv); /* cmd_sms_tvcas.c: exit status */
/* cmd_sms_osd.c: `sms fingerprint ...` (message false) / `sms message ...`. */
int cli_sms_osd(struct sms_store *s, bool message, int argc, char **argv);
/* The option tables of sms import-tvcas, migrate, fingerprint, message and
 * copy-control (NULL-terminated; fingerprint's three from [2], message's
 * from [5]), for `castellan sms --help` to print with its own. */
extern const struct opt_cmd cli_sms_tvcas_cmd, cli_sms_migrate_cmd, cli_sms_usage_set_cmd, cli_sms_usage_list_cmd;
extern const struct opt_cmd *const cli_sms_more_cmds[];
/* cmd_sms_usage.c: `castellan sms copy-control` (C.6). 0 or a CE_* code. */
int cli_sms_usage(struct sms_store *s, int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_headend(int argc, char **argv);
int cmd_card(int argc, char **argv);
int cmd_kms(int argc, char **argv);
int cmd_blackbox(int argc, char **argv);
int cmd_web(int argc, char **argv);
int cmd_chip(int argc, char **argv);
int cmd_module(int argc, char **argv);
int cmd_demo_audit(int argc, char **argv);

#endif
