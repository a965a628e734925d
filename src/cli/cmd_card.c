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
#include "cli/cli.h"
#include "client/card_admin.h"
#include "cas/keys.h"
#include "lib/util.h"

#define TRANSPORT_ENV CARD_TRANSPORT_ENV

struct card_cli {
	const char *eeprom, *host, *reader, *keys, *out, *pfile, *tfile, *token;
	uint64_t port, serial, max_channels, window_s, block_s;
};

#define A struct card_cli
static const struct opt card_opts[] = {
	OPT_STR("--reader", "NAME", 0, A, reader, "PC/SC reader whose name contains NAME (default: first with a card)"),
	OPT_STR("--eeprom", "FILE", 0, A, eeprom, "serve: the card's EEPROM file; program/erase/info/emm: talk to a card\n"
		"file in-process instead of through PC/SC"),
	OPT_STR("--host", "H", 0, A, host, "serve: vpcd's host (default 127.0.0.1)"),
	OPT_NUM("--port", "P", 0, A, port, 0, 65535, "serve: vpcd's port"),
	OPT_STR("--keys", "KEYSTORE", 0, A, keys, "issue, erase: the head-end keystore"),
	OPT_NUM("--serial", "N", 0, A, serial, 0, UINT64_MAX, "issue: the card's serial"),
	OPT_STR("--out", "FILE", 0, A, out, "issue: the personalization file to write (0600)"),
	OPT_NUM("--max-channels", "N", 0, A, max_channels, 0, CARD_MAX_CHANNELS, "issue: request counter's channels"),
	OPT_NUM("--window", "S", 0, A, window_s, 0, UINT32_MAX, "issue: request counter's window in seconds"),
	OPT_NUM("--block", "S", 0, A, block_s, 0, UINT32_MAX, "issue: seconds blocked when over the counter"),
	OPT_STR("--token", "HEX", 0, A, token, "erase: the head-end's erase token for the card (32 hex digits)"),
	OPT_STR("--passphrase-file", "F", 0, A, pfile, "keystore passphrase (first line; default $CASTELLAN_PASSPHRASE)"),
	OPT_STR("--transport-file", "F", 0, A, tfile, "transport passphrase of personalization files (first line;\n"
		"default $" TRANSPORT_ENV ")"),
	CLI_OPT_LOG_LEVEL,
	OPT_END,
};
#undef A

#define CARD_ABOUT \
	"The Castellan smartcard (docs/smartcard.md).\n" \
	"  serve    run the card application on the EEPROM file FILE (created blank if absent)\n" \
	"           as a virtual card in pcscd's vsmartcard reader (vpcd, default\n" \
	"           127.0.0.1:%u); reconnects when pcscd restarts; stops on SIGINT/SIGTERM\n" \
	"  issue    head-end: the personalization file of card N (serial, K_card, request\n" \
	"           counter: at most --max-channels channels (default %u) in --window seconds\n" \
	"           (default %u), else blocked for --block seconds (default %u)), encrypted\n" \
	"           with the transport passphrase\n" \
	"  program  programming tool: decrypt FILE and write it into a blank card; the card is\n" \
	"           then protected (no re-programming until erased)\n" \
	"  erase    blank a programmed card: needs the head-end's erase token for its serial\n" \
	"           (--token, or computed here from the keystore with --keys)\n" \
	"  info     serial, packages, period, block, pairing, counter of the card\n" \
	"  emm      send the card each EMM of FILE (hex, one section per line, as written by\n" \
	"           castellan provision --emm-out / --pair-emm-out); stops at the first refusal"

/* The table and its words; about holds the defaults (CARD_ABOUT). */
static void card_cmd(struct opt_cmd *c, char *about, size_t cap)
{
	snprintf(about, cap, CARD_ABOUT, VPCD_DEFAULT_PORT, CARD_DEFAULT_MAX_CHANNELS, CARD_DEFAULT_WINDOW_S,
		CARD_DEFAULT_BLOCK_S);
	memset(c, 0, sizeof(*c));
	c->name = "card";
	c->synopsis = "serve --eeprom FILE [--host H] [--port P]\n"
		"       castellan card issue --keys KEYSTORE --serial N --out FILE [--max-channels N]\n"
		"                            [--window S] [--block S] [--passphrase-file F] [--transport-file F]\n"
		"       castellan card program FILE [--reader NAME | --eeprom FILE] [--transport-file F]\n"
		"       castellan card erase (--token HEX | --keys KEYSTORE [--passphrase-file F])\n"
		"                            [--reader NAME | --eeprom FILE]\n"
		"       castellan card info [--reader NAME | --eeprom FILE]\n"
		"       castellan card emm FILE [--reader NAME | --eeprom FILE]";
	c->about = about;
	c->opts = card_opts;
	c->args = "FILE";
	c->max_args = 1;
}

static int do_serve(const struct card_cli *o)
{
	if (!o->eeprom) {
		fprintf(stderr, "card serve: --eeprom FILE is required\n");
		return 2;
	}
	return card_serve(o->eeprom, o->host, (uint16_t)o->port, cli_stop_on_signals()) == 0 ? 0 : 1;
}

static int do_issue(const struct card_cli *o)
{
	struct card_issue c = { .serial = o->serial, .out = o->out, .max_channels = o->max_channels,
		.window_s = o->window_s, .block_s = o->block_s };
	struct keystore *ks = NULL;
	char *tpass = NULL;
	int r;

	if (!o->keys || !o->serial || !o->out) {
		fprintf(stderr, "card issue: --keys, --serial and --out are required\n");
		return 2;
	}
	if (card_transport_pass("issue", o->tfile, &tpass) != 0)
		return 2;
	if ((r = cli_keystore_open("card", o->keys, o->pfile, &ks)) == 0) {
		c.ks = ks;
		r = card_issue_file(&c, tpass);
	}
	secret_free(tpass, strlen(tpass));
	keystore_free(ks);
	return r == 0 ? 0 : 1;
}

static int do_program(const struct card_cli *o, const char *file, const struct card_target *t)
{
	char *tpass = NULL;
	int r;

	if (!file) {
		fprintf(stderr, "card program: the personalization FILE is required\n");
		return 2;
	}
	if (card_transport_pass("program", o->tfile, &tpass) != 0)
		return 2;
	r = card_admin_program(t, file, tpass);
	secret_free(tpass, strlen(tpass));
	return r == 0 ? 0 : 1;
}

/* card erase --keys: the keystore, opened only for a card that is not blank. */
static int erase_keys(void *ctx, struct keystore **ks)
{
	const struct card_cli *o = ctx;

	return cli_keystore_open("card", o->keys, o->pfile, ks);
}

int cmd_card(int argc, char **argv)
{
	struct card_cli o = { .port = VPCD_DEFAULT_PORT };
	struct card_target t;
	struct card_keys_src keys = { erase_keys, &o };
	struct opt_cmd c;
	char about[2048];
	const char *sub, *file = NULL;
	int n = 0, r;

	card_cmd(&c, about, sizeof(about));
	if (opt_wants_help(argc, argv, 1) || argc < 2) {
		opt_help(argc < 2 ? stderr : stdout, &c);
		return argc < 2 ? 2 : 0;
	}
	sub = argv[1];
	if ((r = opt_parse(&c, &o, argc, argv, 2, &file, &n)) != OPT_GO)
		return r;
	t.reader = o.reader;
	t.eeprom = o.eeprom;
	if (strcmp(sub, "serve") == 0)
		return do_serve(&o);
	if (strcmp(sub, "issue") == 0)
		return do_issue(&o);
	if (strcmp(sub, "program") == 0)
		return do_program(&o, file, &t);
	if (strcmp(sub, "erase") == 0) {
		if (!o.token == !o.keys) {
			fprintf(stderr, "card erase: give --token HEX or --keys KEYSTORE\n");
			return 2;
		}
		return card_admin_erase(&t, o.token, &keys) == 0 ? 0 : 1;
	}
	if (strcmp(sub, "info") == 0)
		return card_admin_info(&t) == 0 ? 0 : 1;
	if (strcmp(sub, "emm") == 0) {
		if (!file) {
			fprintf(stderr, "card emm: give the EMM file\n");
			return 2;
		}
		return card_admin_emm(&t, file) == 0 ? 0 : 1;
	}
	fprintf(stderr, "card: unknown subcommand '%s'\n", sub);
	opt_help(stderr, &c);
	return 2;
}
