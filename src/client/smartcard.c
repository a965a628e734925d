/*
 * smartcard_client.c - the smartcard CAS client (client/smartcard.h): the
 * box's half of the card. PC/SC transport through libpcsclite
 * (SCardEstablishContext / SCardConnect / SCardTransmit), an in-process
 * transport to the applet, APDU chaining, and the cas_client_ops that
 * send ECMs and EMMs to the card. A paired card's CW blocks go to the
 * box's chip as ladder chain CHIP_CHAIN_PAIRED (card serial | block): the
 * chip derives K_pair itself, so this client never holds a CW or K_pair.
 *
 * Normative references: PC/SC Workgroup specifications part 5 (the
 * SCard* API, as pcsc-lite implements it), ISO/IEC 7816-4 5.1.1 (command
 * chaining), docs/smartcard.md.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <winscard.h>
#include <wintypes.h>
#include "client/smartcard.h"
#include "cas/ecm.h"
#include "lib/cursor.h"
#include "lib/log.h"
#include "lib/util.h"
#include "stb/chip.h"

#define SC_LAST_SLOTS 8
#define SC_CHUNK 255
#define SC_APDU_MAX (5 + SC_CHUNK + 1)
#define SC_RESP_MAX (CARD_MAX_RESP + 2)

/* ---------------------------------------------------------------- PC/SC */

struct pcsc {
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD proto;
};

static int pcsc_transmit(void *ctx, const uint8_t *apdu, size_t len, uint8_t *resp, size_t cap, size_t *rlen)
{
	struct pcsc *p = ctx;
	const SCARD_IO_REQUEST *pci = p->proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
	DWORD n = (DWORD)cap;
	LONG rv;

	*rlen = 0;
	rv = SCardTransmit(p->card, pci, apdu, (DWORD)len, NULL, resp, &n);
	if (rv == SCARD_W_RESET_CARD) { /* another app reset it: reconnect once */
		if (SCardReconnect(p->card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD,
			&p->proto) != SCARD_S_SUCCESS)
			return CE_IO;
		pci = p->proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
		n = (DWORD)cap;
		rv = SCardTransmit(p->card, pci, apdu, (DWORD)len, NULL, resp, &n);
	}
	if (rv == SCARD_W_REMOVED_CARD || rv == SCARD_E_NO_SMARTCARD)
		return CE_CLOSED;
	if (rv != SCARD_S_SUCCESS || n < 2 || n > cap)
		return CE_IO;
	*rlen = n;
	return 0;
}

static void pcsc_close(void *ctx)
{
	struct pcsc *p = ctx;

	if (!p)
		return;
	if (p->card)
		SCardDisconnect(p->card, SCARD_LEAVE_CARD);
	if (p->ctx)
		SCardReleaseContext(p->ctx);
	free(p);
}

/* Pick a reader: name contains want (or any), and a card is present. */
static int pcsc_pick(struct pcsc *p, const char *want, char *name, size_t cap)
{
	char *list = NULL;
	DWORD n = 0;
	int r = CE_NOT_FOUND;

	if (SCardListReaders(p->ctx, NULL, NULL, &n) != SCARD_S_SUCCESS || n == 0 || n > 65536)
		return CE_NOT_FOUND;
	if (!(list = calloc(1, n + 1)))
		return CE_NOMEM;
	if (SCardListReaders(p->ctx, NULL, list, &n) != SCARD_S_SUCCESS)
		goto out;
	for (const char *s = list; *s; s += strlen(s) + 1) {
		SCARD_READERSTATE st;

		if (want && *want && !strstr(s, want))
			continue;
		memset(&st, 0, sizeof(st));
		st.szReader = s;
		st.dwCurrentState = SCARD_STATE_UNAWARE;
		if (SCardGetStatusChange(p->ctx, 0, &st, 1) != SCARD_S_SUCCESS || !(st.dwEventState & SCARD_STATE_PRESENT))
			continue;
		if (strlen(s) >= cap)
			continue;
		memcpy(name, s, strlen(s) + 1);
		r = 0;
		break;
	}
out:
	free(list);
	return r;
}

int card_pcsc_open(const char *reader, unsigned wait_ms, struct card_transport *out)
{
	uint64_t deadline = now_mono_ms() + wait_ms;
	struct pcsc *p;
	char name[512];
	int r;

	memset(out, 0, sizeof(*out));
	if (!(p = calloc(1, sizeof(*p))))
		return CE_NOMEM;
	/* pcscd may still be starting: retry until the deadline */
	while (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->ctx) != SCARD_S_SUCCESS) {
		if (now_mono_ms() >= deadline) {
			free(p);
			return CE_IO;
		}
		usleep(100 * 1000);
	}
	for (;;) {
		r = pcsc_pick(p, reader, name, sizeof(name));
		if (r == 0) {
			LONG rv = SCardConnect(p->ctx, name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
				&p->card, &p->proto);

			if (rv == SCARD_S_SUCCESS)
				break;
			r = CE_NOT_FOUND;
		}
		if (r != CE_NOT_FOUND || now_mono_ms() >= deadline) {
			pcsc_close(p);
			return r;
		}
		usleep(100 * 1000);
	}
	LOG_INFO("card", "PC/SC reader \"%s\", protocol T=%d", name, p->proto == SCARD_PROTOCOL_T0 ? 0 : 1);
	out->ctx = p;
	out->transmit = pcsc_transmit;
	out->close = pcsc_close;
	return 0;
}

/* ------------------------------------------------------------- in-process */

static int local_transmit(void *ctx, const uint8_t *apdu, size_t len, uint8_t *resp, size_t cap, size_t *rlen)
{
	*rlen = card_applet_apdu(ctx, apdu, len, resp, cap);
	return *rlen >= 2 ? 0 : CE_IO;
}

void card_local_transport(struct card_applet *a, struct card_transport *out)
{
	memset(out, 0, sizeof(*out));
	out->ctx = a;
	out->transmit = local_transmit;
}

void card_transport_close(struct card_transport *t)
{
	if (t && t->close)
		t->close(t->ctx);
	if (t)
		memset(t, 0, sizeof(*t));
}

int card_transceive(const struct card_transport *t, uint8_t ins, const uint8_t *data, size_t len, uint8_t *out,
	size_t cap, size_t *out_len, uint16_t *sw)
{
	uint8_t apdu[SC_APDU_MAX], resp[SC_RESP_MAX];
	size_t off = 0, rlen = 0;
	int r = 0;

	*out_len = 0;
	*sw = 0;
	if (!t || !t->transmit || (len && !data))
		return CE_ARG;
	do {
		size_t n = len - off > SC_CHUNK ? SC_CHUNK : len - off;
		bool last = off + n == len;
		size_t alen = 4;

		apdu[0] = (uint8_t)(CARD_CLA | (last ? 0 : CARD_CLA_CHAIN));
		apdu[1] = ins;
		apdu[2] = 0;
		apdu[3] = 0;
		if (n) {
			apdu[4] = (uint8_t)n;
			memcpy(apdu + 5, data + off, n);
			alen = 5 + n;
		}
		if (last)
			apdu[alen++] = 0x00; /* Le: up to 256 */
		off += n;
		if ((r = t->transmit(t->ctx, apdu, alen, resp, sizeof(resp), &rlen)) != 0)
			goto out;
		if (rlen < 2 || cur_u16_at(resp, rlen, rlen - 2, sw) != 0) {
			r = CE_PROTO;
			goto out;
		}
		if (!last && *sw != SW_OK)
			goto out;
	} while (off < len);
	if (rlen - 2 > cap) {
		r = CE_OVERFLOW;
		goto out;
	}
	memcpy(out, resp, rlen - 2);
	*out_len = rlen - 2;
out:
	OPENSSL_cleanse(apdu, sizeof(apdu));
	OPENSSL_cleanse(resp, sizeof(resp));
	return r;
}

int card_read_info(const struct card_transport *t, struct card_info *info)
{
	uint8_t buf[CARD_MAX_RESP];
	size_t n;
	uint16_t sw;
	int r;

	memset(info, 0, sizeof(*info));
	if ((r = card_transceive(t, CARD_INS_INFO, NULL, 0, buf, sizeof(buf), &n, &sw)) != 0)
		return r;
	if (sw != SW_OK)
		return card_sw_to_err(sw);
	return card_info_parse(buf, n, info);
}

/* ------------------------------------------------------------------ client */

struct sc_last {
	bool used;
	uint16_t service_id;
	uint8_t table_id;
	size_t len;
	uint8_t sec[ECM_MAX_SECTION];
};

struct smartcard {
	struct card_transport t;
	struct card_info info;
	bool have_pair_key;
	uint8_t pair_key[CARD_PAIR_KEY_BYTES]; /* secret: chip stand-in */
	struct sc_last last[SC_LAST_SLOTS];
	size_t last_next;
};

static uint16_t sc_ca_system_id(void *self)
{
	return ((struct smartcard *)self)->info.ca_system_id;
}

static struct sc_last *last_find(struct smartcard *sc, uint16_t service_id, uint8_t table_id)
{
	for (size_t i = 0; i < SC_LAST_SLOTS; i++)
		if (sc->last[i].used && sc->last[i].service_id == service_id && sc->last[i].table_id == table_id)
			return &sc->last[i];
	return NULL;
}

static void remember(struct smartcard *sc, uint16_t service_id, const uint8_t *sec, size_t len)
{
	struct sc_last *l = last_find(sc, service_id, sec[0]);

	if (!l) {
		l = &sc->last[sc->last_next];
		sc->last_next = (sc->last_next + 1) % SC_LAST_SLOTS;
	}
	l->used = true;
	l->service_id = service_id;
	l->table_id = sec[0];
	l->len = len;
	memcpy(l->sec, sec, len);
}

static int load_one(struct smartcard *sc, const struct cas_host *host, uint16_t service_id, uint8_t form,
	enum cw_alg alg, enum cw_parity parity, const uint8_t blk[16], size_t cw_len)
{
	uint8_t cw[16];
	int r;

	if (form == CARD_CW_CLEAR)
		return host->load_cw ? host->load_cw(host->ctx, service_id, alg, parity, blk, cw_len) : CE_UNSUPPORTED;
	if (host->load_ecw) {
		/* the chip derives K_pair from its own K_v and the card serial */
		uint8_t chain[CHIP_CHAIN_PAIRED_BYTES];
		size_t clen = 0;

		if ((r = chip_chain_paired(sc->info.serial, blk, chain, sizeof(chain), &clen)) == 0)
			r = host->load_ecw(host->ctx, service_id, alg, parity, chain, clen);
		OPENSSL_cleanse(chain, sizeof(chain));
		return r;
	}
	if (!sc->have_pair_key || !host->load_cw)
		return CE_UNSUPPORTED; /* a paired card in a box that cannot open its CWs */
	if ((r = card_paired_cw_open(sc->pair_key, blk, cw)) == 0)
		r = host->load_cw(host->ctx, service_id, alg, parity, cw, cw_len);
	OPENSSL_cleanse(cw, sizeof(cw));
	return r;
}

static int sc_ecm(void *self, const struct cas_host *host, uint16_t service_id, const uint8_t *sec, size_t len)
{
	struct smartcard *sc = self;
	struct sc_last *l;
	uint8_t resp[CARD_MAX_RESP];
	size_t n = 0, cw_len;
	uint16_t sw;
	uint8_t form, alg, mask;
	int r;

	if (!host || !sec || len == 0 || len > ECM_MAX_SECTION)
		return CE_ARG;
	if ((l = last_find(sc, service_id, sec[0])) != NULL && l->len == len && memcmp(l->sec, sec, len) == 0)
		return 0;
	if ((r = card_transceive(&sc->t, CARD_INS_ECM, sec, len, resp, sizeof(resp), &n, &sw)) != 0)
		goto out;
	if (sw != SW_OK) {
		r = card_sw_to_err(sw);
		goto out;
	}
	if (n != CARD_CW_RESP_BYTES) {
		r = CE_PROTO;
		goto out;
	}
	form = resp[0];
	alg = resp[1];
	mask = resp[2];
	cw_len = resp[3];
	if (form > CARD_CW_PAIRED || cw_len == 0 || cw_len > 16 || (alg != CW_ALG_CSA2 && alg != CW_ALG_CISSA)) {
		r = CE_PROTO;
		goto out;
	}
	if ((mask & ECM_HAS_EVEN) &&
	    (r = load_one(sc, host, service_id, form, (enum cw_alg)alg, CW_EVEN, resp + 4, cw_len)) != 0)
		goto out;
	if ((mask & ECM_HAS_ODD) &&
	    (r = load_one(sc, host, service_id, form, (enum cw_alg)alg, CW_ODD, resp + 20, cw_len)) != 0)
		goto out;
	remember(sc, service_id, sec, len);
	r = 0;
out:
	OPENSSL_cleanse(resp, sizeof(resp));
	return r;
}

static int sc_emm(void *self, const uint8_t *sec, size_t len)
{
	struct smartcard *sc = self;
	uint8_t resp[CARD_MAX_RESP];
	size_t n;
	uint16_t sw;
	int r;

	if (!sec || len == 0)
		return CE_ARG;
	if ((r = card_transceive(&sc->t, CARD_INS_EMM, sec, len, resp, sizeof(resp), &n, &sw)) != 0)
		return r;
	if (sw != SW_OK)
		return card_sw_to_err(sw);
	/* refresh what the box shows (packages, block, pairing) */
	if (card_read_info(&sc->t, &sc->info) != 0)
		LOG_WARN("card", "card info unreadable after EMM");
	return 0;
}

static void sc_destroy(void *self)
{
	struct smartcard *sc = self;

	if (!sc)
		return;
	card_transport_close(&sc->t);
	OPENSSL_cleanse(sc, sizeof(*sc));
	free(sc);
}

static const struct cas_client_ops smartcard_ops = {
	.name = "smartcard",
	.ca_system_id = sc_ca_system_id,
	.ecm = sc_ecm,
	.emm = sc_emm,
	.destroy = sc_destroy,
};

int smartcard_client_new(struct card_transport *t, struct cas_client *out)
{
	struct smartcard *sc;
	int r;

	memset(out, 0, sizeof(*out));
	if (!t || !t->transmit)
		return CE_ARG;
	if (!(sc = calloc(1, sizeof(*sc))))
		return CE_NOMEM;
	sc->t = *t;
	memset(t, 0, sizeof(*t));
	if ((r = card_read_info(&sc->t, &sc->info)) != 0)
		goto fail;
	if (sc->info.life != CARD_LIFE_PERSONALIZED) {
		r = CE_STATE;
		goto fail;
	}
	out->ops = &smartcard_ops;
	out->self = sc;
	return 0;
fail:
	sc_destroy(sc);
	return r;
}

int smartcard_client_new_pcsc(const char *reader, struct cas_client *out)
{
	struct card_transport t;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = card_pcsc_open(reader, 5000, &t)) != 0)
		return r;
	return smartcard_client_new(&t, out);
}

int smartcard_client_set_pair_key(struct cas_client *c, const uint8_t k_pair[CARD_PAIR_KEY_BYTES])
{
	struct smartcard *sc;

	if (!c || c->ops != &smartcard_ops || !k_pair)
		return CE_ARG;
	sc = c->self;
	memcpy(sc->pair_key, k_pair, CARD_PAIR_KEY_BYTES);
	sc->have_pair_key = true;
	return 0;
}

int smartcard_client_info(struct cas_client *c, struct card_info *out)
{
	memset(out, 0, sizeof(*out));
	if (!c || c->ops != &smartcard_ops)
		return CE_ARG;
	*out = ((struct smartcard *)c->self)->info;
	return 0;
}
