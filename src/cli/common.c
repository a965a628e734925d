/*
 * common.c - what several commands did each in its own copy: the
 * --log-level option, address and ACL checks for the option tables, the
 * keystore's passphrase, stopping on SIGINT/SIGTERM, the ready file, and
 * the log-level key of a config file's SIGHUP reload. Declared in cli.h.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "cas/keys.h"
#include "cli/cli.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/netacl.h"
#include "lib/util.h"

int cli_log_level(void *base, const char *v)
{
	enum log_level l;

	(void)base;
	if (log_level_parse(v, &l) != 0)
		return CE_ARG;
	log_set_level(l);
	return 0;
}

int cli_check_acl(const char *v)
{
	struct netacl acl;

	return netacl_parse(v, &acl);
}

int cli_check_addr(const char *v)
{
	char host[256];
	uint16_t port;

	return addr_split(v, host, sizeof(host), &port) != 0 || port == 0 ? CE_ARG : 0;
}

int cli_passphrase(const char *prog, const char *pfile, char **pass)
{
	char why[600];
	int r = passphrase_get(pfile, pass);

	if (r != 0)
		fprintf(stderr, "castellan %s: passphrase: %s (give --passphrase-file or set $%s)\n", prog,
			passphrase_why(pfile, r, why, sizeof(why)), KEYSTORE_PASSPHRASE_ENV);
	return r;
}

int cli_keystore_open(const char *prog, const char *path, const char *pfile, struct keystore **ks)
{
	char *pass = NULL;
	int r;

	*ks = NULL;
	if ((r = cli_passphrase(prog, pfile, &pass)) != 0)
		return r;
	r = keystore_load(path, pass, ks);
	secret_free(pass, strlen(pass));
	if (r != 0)
		fprintf(stderr, "castellan %s: cannot open keystore %s: %s\n", prog, path, err_str(r));
	return r;
}

/* The only mutable static of the CLI: what a signal handler may touch. */
static volatile sig_atomic_t cli_stop;

static void on_stop(int sig)
{
	(void)sig;
	cli_stop = 1;
}

volatile sig_atomic_t *cli_stop_on_signals(void)
{
	cli_stop = 0;
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGPIPE, SIG_IGN); /* a peer closing while we write must not kill us */
	return &cli_stop;
}

int cli_ready_file(const char *prog, const char *path, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n, r;

	if (!path)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return CE_LIMIT;
	if ((r = file_write_atomic(path, line, (size_t)n, 0644)) != 0)
		fprintf(stderr, "castellan %s: %s: %s\n", prog, path, err_str(r));
	return r;
}

int cli_apply_log_level(const char *key, const char *value)
{
	if (!value)
		return CE_UNSUPPORTED; /* removed from the file: the value stays */
	if (strcmp(key, "log-level") != 0)
		return CE_ARG;
	return cli_log_level(NULL, value);
}

int cli_password_read(const char *file, char *pw, size_t cap)
{
	uint8_t *buf = NULL;
	size_t n = 0, k = 0;
	int r;

	pw[0] = '\0';
	if (!file) {
		if (!fgets(pw, (int)cap, stdin))
			return CE_IO;
		pw[strcspn(pw, "\r\n")] = '\0';
		return 0;
	}
	if ((r = file_read_all(file, 4096, &buf, &n)) != 0)
		return r;
	while (k < n && buf[k] != '\n' && buf[k] != '\r')
		k++;
	r = k < cap ? 0 : CE_LIMIT;
	if (r == 0) {
		memcpy(pw, buf, k);
		pw[k] = '\0';
	}
	secret_free(buf, n);
	return r;
}

/* ---- argv helpers around the tables: -h anywhere, a number in a value the
 * table keeps as text, the leading --db / --db-file of sms and audit ---- */

bool cli_wants_help(int argc, char **argv)
{
	return opt_wants_help(argc, argv, 1);
}

int cli_u64(const char *cmd, const char *opt, const char *v, uint64_t max, uint64_t *out)
{
	if (parse_u64(v, max, out) != 0) {
		fprintf(stderr, "%s: bad value for %s: '%s'\n", cmd, opt, v);
		return CE_ARG;
	}
	return 0;
}

int cli_db_args(int argc, char **argv, const char **db, const char **db_file)
{
	int i = 1;

	for (; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--db") == 0)
			*db = argv[i + 1];
		else if (strcmp(argv[i], "--db-file") == 0)
			*db_file = argv[i + 1];
		else
			break;
	}
	return i;
}
