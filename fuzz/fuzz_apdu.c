/*
 * fuzz_apdu.c - libFuzzer target: hostile APDUs into the card applet
 * (personalized, with an in-memory EEPROM). The input is a sequence of
 * APDUs, each prefixed by a 2-byte big-endian length, so chaining and
 * state changes across commands are exercised. Also the EEPROM image
 * parser and the personalization record parser on the raw input.
 */
#include <stdint.h>
#include <string.h>
#include "card/applet.h"

struct mem_ee {
	uint8_t img[CARD_EEPROM_BYTES];
	size_t len;
};

static int mem_load(void *ctx, uint8_t *buf, size_t cap, size_t *len)
{
	struct mem_ee *m = ctx;

	if (m->len == 0)
		return CE_NOT_FOUND;
	if (m->len > cap)
		return CE_OVERFLOW;
	memcpy(buf, m->img, m->len);
	*len = m->len;
	return 0;
}

static int mem_store(void *ctx, const uint8_t *buf, size_t len)
{
	struct mem_ee *m = ctx;

	if (len > sizeof(m->img))
		return CE_IO;
	memcpy(m->img, buf, len);
	m->len = len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct card_applet a;
	static struct mem_ee m;
	static struct card_state st;
	struct card_eeprom ee = { .ctx = &m, .load = mem_load, .store = mem_store };
	struct card_perso p = { .ca_system_id = 0x4ADC, .serial = 2100000042, .max_channels = 2, .window_s = 60,
		.block_s = 86400 };
	uint8_t apdu[5 + CARD_PERSO_BYTES] = { CARD_CLA, CARD_INS_PERSONALIZE, 0, 0, CARD_PERSO_BYTES };
	uint8_t resp[CARD_MAX_RESP + 2];
	size_t off = 0;

	(void)card_state_decode(data, size, &st);
	(void)card_perso_decode(data, size, &p);
	memset(&m, 0, sizeof(m));
	memset(p.k_card, 0x5A, sizeof(p.k_card));
	p.ca_system_id = 0x4ADC;
	p.serial = 2100000042;
	p.max_channels = 2;
	p.window_s = 60;
	if (card_applet_init(&a, &ee) != 0)
		return 0;
	card_perso_encode(&p, apdu + 5);
	(void)card_applet_apdu(&a, apdu, sizeof(apdu), resp, sizeof(resp));
	while (size - off >= 2) {
		size_t n = ((size_t)data[off] << 8) | data[off + 1];

		off += 2;
		if (n > size - off)
			n = size - off;
		(void)card_applet_apdu(&a, data + off, n, resp, sizeof(resp));
		off += n;
	}
	return 0;
}
