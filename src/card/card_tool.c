/*
 * card_tool.c - `card serve` and `card issue` (card_tool.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "card/applet.h"
#include "card/card_tool.h"
#include "card/perso.h"
#include "card/vpcd.h"
#include "cas/keys.h"
#include "cas/secret_src.h"
#include "lib/log.h"
#include "lib/util.h"

#define CARD_SERVE_RETRY_US (200 * 1000)
#define CARD_SERVE_CONNECT_MS 1000

int card_serve(const char *eeprom, const char *host, uint16_t port, volatile sig_atomic_t *stop)
{
	struct card_eeprom_file eef;
	struct card_eeprom ee;
	struct card_applet *a;
	uint64_t napdus = 0;
	int r;

	if ((r = card_eeprom_file_init(&eef, eeprom, &ee)) != 0)
		return r;
	if (!(a = calloc(1, sizeof(*a))))
		return CE_NOMEM;
	if ((r = card_applet_init(a, &ee)) != 0) {
		fprintf(stderr, "card serve: EEPROM %s: %s\n", eeprom, err_str(r));
		free(a);
		return r;
	}
	LOG_INFO("card", "serving %s %s on vpcd %s:%u", a->st.life ? "card" : "blank card", eeprom,
		host ? host : "127.0.0.1", (unsigned)port);
	while (!*stop) {
		int fd = vpcd_connect(host, port, CARD_SERVE_CONNECT_MS);

		if (fd < 0)
			continue; /* pcscd not (yet) listening: keep trying */
		LOG_INFO("card", "inserted in the vpcd reader");
		r = vpcd_serve(fd, a, stop, &napdus);
		close(fd);
		if (r != 0)
			LOG_WARN("card", "vpcd connection: %s", err_str(r));
		if (card_applet_reset(a) != 0)
			break;
		if (!*stop)
			usleep(CARD_SERVE_RETRY_US);
	}
	LOG_INFO("card", "stopped after %llu APDUs", (unsigned long long)napdus);
	card_applet_wipe(a);
	free(a);
	return 0;
}

int card_issue_file(const struct card_issue *c, const char *transport_pass)
{
	struct card_perso p;
	uint8_t file[CARD_PERSO_FILE_BYTES];
	int r;

	memset(&p, 0, sizeof(p));
	if ((r = card_perso_issue(c->ks, c->serial, (uint8_t)c->max_channels, (uint32_t)c->window_s,
		     (uint32_t)c->block_s, &p)) != 0 ||
	    (r = card_perso_seal(&p, transport_pass, CARD_PERSO_LOG2N, file)) != 0 ||
	    (r = file_write_atomic(c->out, file, sizeof(file), 0600)) != 0) {
		fprintf(stderr, "card issue: %s\n", err_str(r));
		goto out;
	}
	printf("card %llu: personalization file %s\n", (unsigned long long)c->serial, c->out);
out:
	secret_wipe(&p, sizeof(p));
	secret_wipe(file, sizeof(file));
	return r;
}

int card_transport_pass(const char *tool, const char *path, char **out)
{
	if (secret_get(path, CARD_TRANSPORT_ENV, out) == 0)
		return 0;
	fprintf(stderr, "card %s: no transport passphrase (--transport-file or $%s)\n", tool, CARD_TRANSPORT_ENV);
	return CE_ARG;
}
