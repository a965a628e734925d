/*
 * cmd_card.c - `castellan card`: the virtual smartcard and its tools
 * (docs/smartcard.md).
 *
 *   card serve --eeprom FILE      run the card behind pcscd's vpcd reader
 *   card issue ...                head-end: write a card's personalization file
 *   card program FILE             programming tool: write it into a blank card
 *   card erase                    with the head-end's erase token: blank the card
 *   card info                     print what the card says about itself
 *   card emm FILE                 send the EMMs of FILE (hex, one per line)
 *
 * program / erase / info talk to the card through PC/SC (--reader) like a
 * box does, or, with --eeprom, to a card file directly (no pcscd).
 * The work is card/card_tool.c (serve, issue) and client/card_admin.c
 * (program, erase, info, emm); this file parses and dispatches.
 */
#include <stdio.h>
#include <string.h>
#include "card/applet.h"
#include "card/card_tool.h"
#include "card/vpcd.h"
#include "cas/secret_src.h"
#include "cli/cli.h"
#include "client/card_admin.h"
#include "lib/log.h"
#include "lib/sigstop.h"
#include "lib/util.h"

#define TRANSPORT_ENV CARD_TRANSPORT_ENV

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan card serve --eeprom FILE [--host H] [--port P]\n"
		"       castellan card issue --keys KEYSTORE --serial N --out FILE [--max-channels N]\n"
		"                            [--window S] [--block S] [--passphrase-file F] [--transport-file F]\n"
		"       castellan card program FILE [--reader NAME | --eeprom FILE] [--transport-file F]\n"
		"       castellan card erase (--token HEX | --keys KEYSTORE [--passphrase-file F])\n"
		"                            [--reader NAME | --eeprom FILE]\n"
		"       castellan card info [--reader NAME | --eeprom FILE]\n"
		"       castellan card emm FILE [--reader NAME | --eeprom FILE]\n\n"
		"The Castellan smartcard (docs/smartcard.md).\n"
		"  serve    run the card application on the EEPROM file FILE (created blank if absent)\n"
		"           as a virtual card in pcscd's vsmartcard reader (vpcd, default\n"
		"           127.0.0.1:%u); reconnects when pcscd restarts; stops on SIGINT/SIGTERM\n"
		"  issue    head-end: the personalization file of card N (serial, K_card, request\n"
		"           counter: at most --max-channels channels (default %u) in --window seconds\n"
		"           (default %u), else blocked for --block seconds (default %u)), encrypted\n"
		"           with the transport passphrase\n"
		"  program  programming tool: decrypt FILE and write it into a blank card; the card is\n"
		"           then protected (no re-programming until erased)\n"
		"  erase    blank a programmed card: needs the head-end's erase token for its serial\n"
		"           (--token, or computed here from the keystore with --keys)\n"
		"  info     serial, packages, period, block, pairing, counter of the card\n"
		"  emm      send the card each EMM of FILE (hex, one section per line, as written by\n"
		"           castellan provision --emm-out / --pair-emm-out); stops at the first refusal\n\n"
		"  --reader NAME          PC/SC reader whose name contains NAME (default: first with a card)\n"
		"  --eeprom FILE          talk to a card file in-process instead of through PC/SC\n"
		"  --passphrase-file F    keystore passphrase (first line; default $CASTELLAN_PASSPHRASE)\n"
		"  --transport-file F     transport passphrase of personalization files (first line;\n"
		"                         default $" TRANSPORT_ENV ")\n"
		"  --log-level L          error | warn | info (default) | debug\n",
		VPCD_DEFAULT_PORT, CARD_DEFAULT_MAX_CHANNELS, CARD_DEFAULT_WINDOW_S, CARD_DEFAULT_BLOCK_S);
}

struct card_cli {
	const char *eeprom, *host, *reader, *keys, *out, *pfile, *tfile, *token, *file;
	uint64_t port, serial, max_channels, window_s, block_s;
};

static int parse_args(int argc, char **argv, struct card_cli *o)
{
	o->port = VPCD_DEFAULT_PORT;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		bool v = i + 1 < argc;
		int r = 0;

		if (strcmp(a, "--eeprom") == 0 && v)
			o->eeprom = argv[++i];
		else if (strcmp(a, "--host") == 0 && v)
			o->host = argv[++i];
		else if (strcmp(a, "--port") == 0 && v)
			r = parse_u64(argv[++i], 65535, &o->port);
		else if (strcmp(a, "--reader") == 0 && v)
			o->reader = argv[++i];
		else if (strcmp(a, "--keys") == 0 && v)
			o->keys = argv[++i];
		else if (strcmp(a, "--out") == 0 && v)
			o->out = argv[++i];
		else if (strcmp(a, "--passphrase-file") == 0 && v)
			o->pfile = argv[++i];
		else if (strcmp(a, "--transport-file") == 0 && v)
			o->tfile = argv[++i];
		else if (strcmp(a, "--token") == 0 && v)
			o->token = argv[++i];
		else if (strcmp(a, "--serial") == 0 && v)
			r = parse_u64(argv[++i], UINT64_MAX, &o->serial);
		else if (strcmp(a, "--max-channels") == 0 && v)
			r = parse_u64(argv[++i], CARD_MAX_CHANNELS, &o->max_channels);
		else if (strcmp(a, "--window") == 0 && v)
			r = parse_u64(argv[++i], UINT32_MAX, &o->window_s);
		else if (strcmp(a, "--block") == 0 && v)
			r = parse_u64(argv[++i], UINT32_MAX, &o->block_s);
		else if (strcmp(a, "--log-level") == 0 && v) {
			enum log_level l;

			r = log_level_parse(argv[++i], &l);
			if (r == 0)
				log_set_level(l);
		} else if (a[0] != '-' && !o->file)
			o->file = a;
		else {
			fprintf(stderr, "card: unknown or incomplete option '%s'\n", a);
			return 2;
		}
		if (r != 0) {
			fprintf(stderr, "card: bad value for %s: '%s'\n", a, argv[i]);
			return 2;
		}
	}
	return 0;
}

/* The transport passphrase (--transport-file or the env), or 2 (said). */
static int transport_pass(const char *tool, const char *path, char **out)
{
	if (secret_get(path, TRANSPORT_ENV, out) == 0)
		return 0;
	fprintf(stderr, "card %s: no transport passphrase (--transport-file or $%s)\n", tool, TRANSPORT_ENV);
	return 2;
}

static int do_serve(const struct card_cli *o)
{
	static volatile sig_atomic_t stop;
	int r;

	if (!o->eeprom) {
		fprintf(stderr, "card serve: --eeprom FILE is required\n");
		return 2;
	}
	sigstop_catch(&stop, true);
	r = card_serve(o->eeprom, o->host, (uint16_t)o->port, &stop);
	sigstop_release();
	return r == 0 ? 0 : 1;
}

static int do_issue(const struct card_cli *o)
{
	struct card_issue c = { .keys = o->keys, .pfile = o->pfile, .serial = o->serial, .out = o->out,
		.max_channels = o->max_channels, .window_s = o->window_s, .block_s = o->block_s };
	char *tpass = NULL;
	int r;

	if (!o->keys || !o->serial || !o->out) {
		fprintf(stderr, "card issue: --keys, --serial and --out are required\n");
		return 2;
	}
	if (transport_pass("issue", o->tfile, &tpass) != 0)
		return 2;
	r = card_issue_file(&c, tpass);
	secret_free(tpass, strlen(tpass));
	return r == 0 ? 0 : 1;
}

static int do_program(const struct card_cli *o, const struct card_target *t)
{
	char *tpass = NULL;
	int r;

	if (!o->file) {
		fprintf(stderr, "card program: the personalization FILE is required\n");
		return 2;
	}
	if (transport_pass("program", o->tfile, &tpass) != 0)
		return 2;
	r = card_admin_program(t, o->file, tpass);
	secret_free(tpass, strlen(tpass));
	return r == 0 ? 0 : 1;
}

int cmd_card(int argc, char **argv)
{
	struct card_cli o;
	struct card_target t;
	const char *sub;
	int r;

	if (cli_wants_help(argc, argv) || argc < 2) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	memset(&o, 0, sizeof(o));
	sub = argv[1];
	if ((r = parse_args(argc, argv, &o)) != 0)
		return r;
	t.reader = o.reader;
	t.eeprom = o.eeprom;
	if (strcmp(sub, "serve") == 0)
		return do_serve(&o);
	if (strcmp(sub, "issue") == 0)
		return do_issue(&o);
	if (strcmp(sub, "program") == 0)
		return do_program(&o, &t);
	if (strcmp(sub, "erase") == 0) {
		if (!o.token == !o.keys) {
			fprintf(stderr, "card erase: give --token HEX or --keys KEYSTORE\n");
			return 2;
		}
		return card_admin_erase(&t, o.token, o.keys, o.pfile) == 0 ? 0 : 1;
	}
	if (strcmp(sub, "info") == 0)
		return card_admin_info(&t) == 0 ? 0 : 1;
	if (strcmp(sub, "emm") == 0) {
		if (!o.file) {
			fprintf(stderr, "card emm: give the EMM file\n");
			return 2;
		}
		return card_admin_emm(&t, o.file) == 0 ? 0 : 1;
	}
	fprintf(stderr, "card: unknown subcommand '%s'\n", sub);
	usage(stderr);
	return 2;
}
