/* panel_keys.c - the web panel's narrow access to the keystore (panel_keys.h). */
#include <string.h>
#include "card/perso.h"
#include "cas/keys.h"
#include "headend/panel_keys.h"
#include "lib/util.h"

static int pk_epochs(void *ctx, uint64_t now_s, struct web_epochs *out)
{
	const struct keystore *ks = ctx;

	if (!ks || !out)
		return CE_ARG;
	memset(out, 0, sizeof(*out));
	out->ca_system_id = keystore_ca_system_id(ks);
	out->epoch_seconds = keystore_epoch_seconds(ks);
	out->epoch = keystore_epoch_at(ks, now_s);
	keystore_fingerprint(ks, out->fingerprint);
	return 0;
}

static int pk_perso(void *ctx, uint64_t serial, uint8_t max_channels, uint32_t window_s, uint32_t block_s,
	const char *passphrase, uint8_t *out, size_t cap, size_t *len)
{
	const struct keystore *ks = ctx;
	struct card_perso p;
	int r;

	*len = 0;
	if (!ks || !passphrase || !out || cap < CARD_PERSO_FILE_BYTES)
		return CE_ARG;
	memset(&p, 0, sizeof(p));
	if ((r = card_perso_issue(ks, serial, max_channels, window_s, block_s, &p)) == 0 &&
	    (r = card_perso_seal(&p, passphrase, CARD_PERSO_LOG2N, out)) == 0)
		*len = CARD_PERSO_FILE_BYTES;
	secret_wipe(&p, sizeof(p));
	return r;
}

void headend_panel_keys(const struct keystore *ks, struct web_keys *out)
{
	memset(out, 0, sizeof(*out));
	if (!ks)
		return;
	out->ctx = (void *)(uintptr_t)ks;
	out->epochs = pk_epochs;
	out->perso = pk_perso;
}
