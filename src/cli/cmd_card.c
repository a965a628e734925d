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
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "card/applet.h"
#include "card/perso.h"
#include "client/smartcard.h"
#include "card/vpcd.h"
#include "cas/emm.h"
#include "cas/keys.h"
#include "cli/cli.h"
#include "lib/log.h"
#include "lib/util.h"
#include "ts/secfile.h"

#define TRANSPORT_ENV "CASTELLAN_TRANSPORT_PASSPHRASE"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

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

/* The transport passphrase: --transport-file (first line) or the env. */
static int transport_pass(const char *path, char **out)
{
	const char *env;

	*out = NULL;
	if (path)
		return passphrase_get(path, out);
	env = getenv(TRANSPORT_ENV);
	if (!env || !*env)
		return CE_ARG;
	*out = strdup(env);
	return *out ? 0 : CE_NOMEM;
}

/* A card to talk to: in-process on an EEPROM file, or through PC/SC. */
struct card_conn {
	struct card_eeprom_file eef;
	struct card_eeprom ee;
	struct card_applet *a;
	struct card_transport t;
};

static int conn_open(const struct card_cli *o, struct card_conn *c)
{
	int r;

	memset(c, 0, sizeof(*c));
	if (o->eeprom) {
		if ((r = card_eeprom_file_init(&c->eef, o->eeprom, &c->ee)) != 0)
			return r;
		if (!(c->a = calloc(1, sizeof(*c->a))))
			return CE_NOMEM;
		if ((r = card_applet_init(c->a, &c->ee)) != 0)
			return r;
		card_local_transport(c->a, &c->t);
		return 0;
	}
	return card_pcsc_open(o->reader, 5000, &c->t);
}

static void conn_close(struct card_conn *c)
{
	card_transport_close(&c->t);
	if (c->a) {
		card_applet_wipe(c->a);
		free(c->a);
	}
}

static int load_keystore(const struct card_cli *o, struct keystore **ks)
{
	char *pass = NULL;
	int r;

	*ks = NULL;
	if ((r = passphrase_get(o->pfile, &pass)) != 0) {
		fprintf(stderr, "card: no keystore passphrase (--passphrase-file or $%s)\n", KEYSTORE_PASSPHRASE_ENV);
		return r;
	}
	r = keystore_load(o->keys, pass, ks);
	secret_free(pass, strlen(pass));
	if (r != 0)
		fprintf(stderr, "card: keystore %s: %s\n", o->keys, err_str(r));
	return r;
}

static int do_serve(const struct card_cli *o)
{
	struct card_eeprom_file eef;
	struct card_eeprom ee;
	struct card_applet *a;
	uint64_t napdus = 0;
	int r;

	if (!o->eeprom) {
		fprintf(stderr, "card serve: --eeprom FILE is required\n");
		return 2;
	}
	if (card_eeprom_file_init(&eef, o->eeprom, &ee) != 0 || !(a = calloc(1, sizeof(*a))))
		return 1;
	if ((r = card_applet_init(a, &ee)) != 0) {
		fprintf(stderr, "card serve: EEPROM %s: %s\n", o->eeprom, err_str(r));
		free(a);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	LOG_INFO("card", "serving %s %s on vpcd %s:%u", a->st.life ? "card" : "blank card", o->eeprom,
		o->host ? o->host : "127.0.0.1", (unsigned)o->port);
	while (!g_stop) {
		int fd = vpcd_connect(o->host, (uint16_t)o->port, 1000);

		if (fd < 0)
			continue; /* pcscd not (yet) listening: keep trying */
		LOG_INFO("card", "inserted in the vpcd reader");
		r = vpcd_serve(fd, a, &g_stop, &napdus);
		close(fd);
		if (r != 0)
			LOG_WARN("card", "vpcd connection: %s", err_str(r));
		if (card_applet_reset(a) != 0)
			break;
		if (!g_stop)
			usleep(200 * 1000);
	}
	LOG_INFO("card", "stopped after %llu APDUs", (unsigned long long)napdus);
	card_applet_wipe(a);
	free(a);
	return 0;
}

static int do_issue(const struct card_cli *o)
{
	struct keystore *ks = NULL;
	struct card_perso p;
	uint8_t file[CARD_PERSO_FILE_BYTES];
	char *tpass = NULL;
	int r, rc = 1;

	if (!o->keys || !o->serial || !o->out) {
		fprintf(stderr, "card issue: --keys, --serial and --out are required\n");
		return 2;
	}
	if (transport_pass(o->tfile, &tpass) != 0) {
		fprintf(stderr, "card issue: no transport passphrase (--transport-file or $%s)\n", TRANSPORT_ENV);
		return 2;
	}
	if (load_keystore(o, &ks) != 0)
		goto out;
	if ((r = card_perso_issue(ks, o->serial, (uint8_t)o->max_channels, (uint32_t)o->window_s, (uint32_t)o->block_s,
		     &p)) != 0 ||
	    (r = card_perso_seal(&p, tpass, CARD_PERSO_LOG2N, file)) != 0 ||
	    (r = file_write_atomic(o->out, file, sizeof(file), 0600)) != 0) {
		fprintf(stderr, "card issue: %s\n", err_str(r));
		goto out;
	}
	printf("card %llu: personalization file %s\n", (unsigned long long)o->serial, o->out);
	rc = 0;
out:
	secret_wipe(&p, sizeof(p));
	if (tpass)
		secret_free(tpass, strlen(tpass));
	keystore_free(ks);
	return rc;
}

static int do_program(const struct card_cli *o)
{
	struct card_conn c;
	struct card_perso p;
	uint8_t rec[CARD_PERSO_BYTES], out[CARD_MAX_RESP], *file = NULL;
	size_t len = 0, n;
	char *tpass = NULL;
	uint16_t sw = 0;
	int r, rc = 1;

	memset(&c, 0, sizeof(c));
	memset(&p, 0, sizeof(p));
	if (!o->file) {
		fprintf(stderr, "card program: the personalization FILE is required\n");
		return 2;
	}
	if (transport_pass(o->tfile, &tpass) != 0) {
		fprintf(stderr, "card program: no transport passphrase (--transport-file or $%s)\n", TRANSPORT_ENV);
		return 2;
	}
	if ((r = file_read_all(o->file, 4096, &file, &len)) != 0 || (r = card_perso_open(file, len, tpass, &p)) != 0) {
		fprintf(stderr, "card program: %s: %s\n", o->file, err_str(r));
		goto out;
	}
	if ((r = conn_open(o, &c)) != 0) {
		fprintf(stderr, "card program: no card: %s\n", err_str(r));
		goto out;
	}
	card_perso_encode(&p, rec);
	r = card_transceive(&c.t, CARD_INS_PERSONALIZE, rec, sizeof(rec), out, sizeof(out), &n, &sw);
	secret_wipe(rec, sizeof(rec));
	if (r != 0 || sw != SW_OK) {
		fprintf(stderr, "card program: refused (SW %04X: %s)%s\n", sw, err_str(r ? r : card_sw_to_err(sw)),
			sw == SW_STATE ? ": the card is programmed and protected; erase it first" : "");
		goto out;
	}
	printf("card %llu programmed and protected\n", (unsigned long long)p.serial);
	rc = 0;
out:
	conn_close(&c);
	secret_wipe(&p, sizeof(p));
	if (file)
		secret_free(file, len);
	if (tpass)
		secret_free(tpass, strlen(tpass));
	return rc;
}

static int do_erase(const struct card_cli *o)
{
	struct card_conn c;
	struct card_info info;
	struct keystore *ks = NULL;
	uint8_t tok[CARD_TOKEN_BYTES], k_card[CARD_KEY_BYTES], out[CARD_MAX_RESP];
	size_t n;
	uint16_t sw = 0;
	int r, rc = 1;

	if (!o->token == !o->keys) {
		fprintf(stderr, "card erase: give --token HEX or --keys KEYSTORE\n");
		return 2;
	}
	if ((r = conn_open(o, &c)) != 0) {
		fprintf(stderr, "card erase: no card: %s\n", err_str(r));
		goto out;
	}
	if ((r = card_read_info(&c.t, &info)) != 0)
		goto out;
	if (info.life == CARD_LIFE_BLANK) {
		printf("card is blank\n");
		rc = 0;
		goto out;
	}
	if (o->token) {
		if (hex_decode(o->token, tok, sizeof(tok)) != 0) {
			fprintf(stderr, "card erase: --token must be 32 hex digits\n");
			goto out;
		}
	} else {
		if (load_keystore(o, &ks) != 0)
			goto out;
		if ((r = keystore_card_key(ks, info.serial, k_card)) != 0 ||
		    (r = card_erase_token(k_card, info.serial, tok)) != 0)
			goto out;
	}
	r = card_transceive(&c.t, CARD_INS_ERASE, tok, sizeof(tok), out, sizeof(out), &n, &sw);
	if (r != 0 || sw != SW_OK) {
		fprintf(stderr, "card erase: refused (SW %04X: %s)\n", sw, err_str(r ? r : card_sw_to_err(sw)));
		goto out;
	}
	printf("card %llu erased: blank\n", (unsigned long long)info.serial);
	rc = 0;
out:
	secret_wipe(tok, sizeof(tok));
	secret_wipe(k_card, sizeof(k_card));
	keystore_free(ks);
	conn_close(&c);
	return rc;
}

static int do_info(const struct card_cli *o)
{
	struct card_conn c;
	struct card_info i;
	int r;

	if ((r = conn_open(o, &c)) != 0 || (r = card_read_info(&c.t, &i)) != 0) {
		fprintf(stderr, "card info: %s\n", err_str(r));
		conn_close(&c);
		return 1;
	}
	conn_close(&c);
	if (i.life == CARD_LIFE_BLANK) {
		printf("blank card\n");
		return 0;
	}
	printf("serial %llu, CA_system_id 0x%04X%s\n", (unsigned long long)i.serial, i.ca_system_id,
		i.protect ? ", protected" : "");
	printf("packages %08X, from %llu to %llu, %u package keys, EMM sequence %u\n", i.packages,
		(unsigned long long)i.start_s, (unsigned long long)i.finish_s, i.nkeys, i.last_seq);
	printf("request counter: %u of at most %u channels in %u s (block %u s)\n", i.nchan, i.max_channels, i.window_s,
		i.block_s);
	if (i.blocked)
		printf("BLOCKED%s%llu\n", i.blocked_until_ms ? " until card time (ms) " : " by the head-end",
			(unsigned long long)i.blocked_until_ms);
	if (i.paired)
		printf("paired with box %llu\n", (unsigned long long)i.paired_stb_id);
	printf("card time %llu ms\n", (unsigned long long)i.time_ms);
	return 0;
}

/* card emm FILE: each section of FILE (hex, one a line) to the card as an
 * EMM, in order; a file with a bad line sends nothing. */
static int do_emm(const struct card_cli *o)
{
	struct card_conn c = { 0 };
	struct cas_client cl = { 0 };
	struct secfile sf;
	size_t bad = 0;
	int r, rc = 1;

	if (!o->file) {
		fprintf(stderr, "card emm: give the EMM file\n");
		return 2;
	}
	if ((r = secfile_load(o->file, SECFILE_MAX_SECTIONS, &sf, &bad)) != 0) {
		if (r == CE_FORMAT && bad)
			fprintf(stderr, "card emm: %s line %zu: not a hex EMM section\n", o->file, bad);
		else
			fprintf(stderr, "card emm: %s: %s\n", o->file, r == CE_FORMAT ? "holds no EMM" : err_str(r));
		return 1;
	}
	if ((r = conn_open(o, &c)) != 0 || (r = smartcard_client_new(&c.t, &cl)) != 0) {
		fprintf(stderr, "card emm: %s\n", err_str(r));
		goto out;
	}
	for (size_t i = 0; i < sf.n; i++) {
		if ((r = cl.ops->emm(cl.self, sf.sec[i], sf.len[i])) != 0) {
			fprintf(stderr, "card emm: %s EMM %zu: refused: %s\n", o->file, i + 1, err_str(r));
			goto out;
		}
	}
	printf("%zu EMM%s accepted\n", sf.n, sf.n == 1 ? "" : "s");
	rc = 0;
out:
	if (cl.ops)
		cas_client_free(&cl);
	conn_close(&c);
	secfile_free(&sf);
	return rc;
}

int cmd_card(int argc, char **argv)
{
	struct card_cli o;
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
	if (strcmp(sub, "serve") == 0)
		return do_serve(&o);
	if (strcmp(sub, "issue") == 0)
		return do_issue(&o);
	if (strcmp(sub, "program") == 0)
		return do_program(&o);
	if (strcmp(sub, "erase") == 0)
		return do_erase(&o);
	if (strcmp(sub, "info") == 0)
		return do_info(&o);
	if (strcmp(sub, "emm") == 0)
		return do_emm(&o);
	fprintf(stderr, "card: unknown subcommand '%s'\n", sub);
	usage(stderr);
	return 2;
}
