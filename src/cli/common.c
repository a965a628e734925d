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
