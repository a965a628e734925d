/*
 * card_admin.c - program, erase, info and emm through a card transport
 * (card_admin.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "card/applet.h"
#include "card/eeprom.h"
#include "card/perso.h"
#include "cas/client.h"
#include "cas/keys.h"
#include "client/card_admin.h"
#include "client/smartcard.h"
#include "lib/util.h"
#include "ts/secfile.h"

#define CARD_PCSC_WAIT_MS 5000
#define CARD_PERSO_FILE_MAX_BYTES 4096

/* A card to talk to: in-process on an EEPROM file, or through PC/SC. */
struct card_conn {
	struct card_eeprom_file eef;
	struct card_eeprom ee;
	struct card_applet *a;
	struct card_transport t;
};

static int conn_open(const struct card_target *o, struct card_conn *c)
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
	return card_pcsc_open(o->reader, CARD_PCSC_WAIT_MS, &c->t);
}

static void conn_close(struct card_conn *c)
{
	card_transport_close(&c->t);
	if (c->a) {
		card_applet_wipe(c->a);
		free(c->a);
	}
}

int card_admin_program(const struct card_target *t, const char *path, const char *tpass)
{
	struct card_conn c;
	struct card_perso p;
	uint8_t rec[CARD_PERSO_BYTES], out[CARD_MAX_RESP], *file = NULL;
	size_t len = 0, n;
	uint16_t sw = 0;
	int r;

	memset(&c, 0, sizeof(c));
	memset(&p, 0, sizeof(p));
	if ((r = file_read_all(path, CARD_PERSO_FILE_MAX_BYTES, &file, &len)) != 0 ||
	    (r = card_perso_open(file, len, tpass, &p)) != 0) {
		fprintf(stderr, "card program: %s: %s\n", path, err_str(r));
		goto out;
	}
	if ((r = conn_open(t, &c)) != 0) {
		fprintf(stderr, "card program: no card: %s\n", err_str(r));
		goto out;
	}
	card_perso_encode(&p, rec);
	r = card_transceive(&c.t, CARD_INS_PERSONALIZE, rec, sizeof(rec), out, sizeof(out), &n, &sw);
	secret_wipe(rec, sizeof(rec));
	if (r != 0 || sw != SW_OK) {
		fprintf(stderr, "card program: refused (SW %04X: %s)%s\n", sw, err_str(r ? r : card_sw_to_err(sw)),
			sw == SW_STATE ? ": the card is programmed and protected; erase it first" : "");
		r = r ? r : card_sw_to_err(sw);
		goto out;
	}
	printf("card %llu programmed and protected\n", (unsigned long long)p.serial);
out:
	conn_close(&c);
	secret_wipe(&p, sizeof(p));
	if (file)
		secret_free(file, len);
	return r;
}

/* The erase token for the card serial: --token's, or from the keystore. */
static int erase_token(const char *token_hex, const struct card_keys_src *keys, uint64_t serial,
	uint8_t tok[CARD_TOKEN_BYTES])
{
	struct keystore *ks = NULL;
	uint8_t k_card[CARD_KEY_BYTES];
	int r;

	if (token_hex) {
		if (hex_decode(token_hex, tok, CARD_TOKEN_BYTES) != 0) {
			fprintf(stderr, "card erase: --token must be 32 hex digits\n");
			return CE_ARG;
		}
		return 0;
	}
	if ((r = keys->open(keys->ctx, &ks)) == 0 && (r = keystore_card_key(ks, serial, k_card)) == 0)
		r = card_erase_token(k_card, serial, tok);
	secret_wipe(k_card, sizeof(k_card));
	keystore_free(ks);
	return r;
}

int card_admin_erase(const struct card_target *t, const char *token_hex, const struct card_keys_src *keys)
{
	struct card_conn c;
	struct card_info info;
	uint8_t tok[CARD_TOKEN_BYTES], out[CARD_MAX_RESP];
	size_t n;
	uint16_t sw = 0;
	int r;

	memset(tok, 0, sizeof(tok));
	if ((r = conn_open(t, &c)) != 0) {
		fprintf(stderr, "card erase: no card: %s\n", err_str(r));
		goto out;
	}
	if ((r = card_read_info(&c.t, &info)) != 0)
		goto out;
	if (info.life == CARD_LIFE_BLANK) {
		printf("card is blank\n");
		goto out;
	}
	if ((r = erase_token(token_hex, keys, info.serial, tok)) != 0)
		goto out;
	r = card_transceive(&c.t, CARD_INS_ERASE, tok, sizeof(tok), out, sizeof(out), &n, &sw);
	if (r != 0 || sw != SW_OK) {
		fprintf(stderr, "card erase: refused (SW %04X: %s)\n", sw, err_str(r ? r : card_sw_to_err(sw)));
		r = r ? r : card_sw_to_err(sw);
		goto out;
	}
	printf("card %llu erased: blank\n", (unsigned long long)info.serial);
out:
	secret_wipe(tok, sizeof(tok));
	conn_close(&c);
	return r;
}

int card_admin_info(const struct card_target *t)
{
	struct card_conn c;
	struct card_info i;
	int r;

	if ((r = conn_open(t, &c)) != 0 || (r = card_read_info(&c.t, &i)) != 0) {
		fprintf(stderr, "card info: %s\n", err_str(r));
		conn_close(&c);
		return r;
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

int card_admin_emm(const struct card_target *t, const char *file)
{
	struct card_conn c = { 0 };
	struct cas_client cl = { 0 };
	struct secfile sf;
	size_t bad = 0;
	int r;

	if ((r = secfile_load(file, SECFILE_MAX_SECTIONS, &sf, &bad)) != 0) {
		if (r == CE_FORMAT && bad)
			fprintf(stderr, "card emm: %s line %zu: not a hex EMM section\n", file, bad);
		else
			fprintf(stderr, "card emm: %s: %s\n", file, r == CE_FORMAT ? "holds no EMM" : err_str(r));
		return r;
	}
	if ((r = conn_open(t, &c)) != 0 || (r = smartcard_client_new(&c.t, &cl)) != 0) {
		fprintf(stderr, "card emm: %s\n", err_str(r));
		goto out;
	}
	for (size_t i = 0; i < sf.n; i++) {
		if ((r = cl.ops->emm(cl.self, sf.sec[i], sf.len[i])) != 0) {
			fprintf(stderr, "card emm: %s EMM %zu: refused: %s\n", file, i + 1, err_str(r));
			goto out;
		}
	}
	printf("%zu EMM%s accepted\n", sf.n, sf.n == 1 ? "" : "s");
out:
	if (cl.ops)
		cas_client_free(&cl);
	conn_close(&c);
	secfile_free(&sf);
	return r;
}
