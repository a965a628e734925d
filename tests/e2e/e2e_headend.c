/*
 * e2e_headend.c - the harness's head-end: `castellan headend` on SQLite in
 * the work dir, on free loopback ports, ready when its ready file and
 * ports are. See e2e.h.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "e2e.h"
#include "lib/err.h"
#include "lib/util.h"

#define HEADEND_MAX_ARGS 48

int e2e_headend_start(struct e2e *e, const char *keystore, const char *passphrase, char *const extra[],
	unsigned timeout_ms, struct e2e_headend *h)
{
	char ks[1024], pf[1024], dir[1024], keyf[1024], ready[1024];
	char *args[HEADEND_MAX_ARGS];
	uint8_t *key = NULL;
	size_t n = 0, klen = 0;
	uint16_t ports[2];
	int r;

	memset(h, 0, sizeof(*h));
	if (e2e_free_port(&h->ecmg_port) || e2e_free_port(&h->http_port) || e2e_free_port(&h->mux_port))
		return CE_IO;
	snprintf(h->ecmg, sizeof(h->ecmg), "127.0.0.1:%u", h->ecmg_port);
	snprintf(h->http, sizeof(h->http), "127.0.0.1:%u", h->http_port);
	snprintf(h->mux, sizeof(h->mux), "127.0.0.1:%u", h->mux_port);
	{
		char *base[] = { "castellan", "headend", "--data-dir", e2e_path(e, "headend-data", dir, sizeof(dir)),
			"--keystore", e2e_path(e, keystore, ks, sizeof(ks)), "--passphrase-file",
			e2e_path(e, passphrase, pf, sizeof(pf)), "--http", h->http, "--ecmg", h->ecmg, "--mux", h->mux,
			"--admin-key-file", e2e_path(e, "admin-key", keyf, sizeof(keyf)), "--ready-file",
			e2e_path(e, "headend.ready", ready, sizeof(ready)) };

		for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
			args[n++] = base[i];
	}
	for (size_t i = 0; extra && extra[i]; i++) {
		if (n + 1 >= HEADEND_MAX_ARGS)
			return CE_RANGE;
		args[n++] = extra[i];
	}
	args[n] = NULL;
	remove(ready); /* a ready file of an earlier start in the same dir */
	if ((h->pid = e2e_spawn(e, "headend.log", args, -1, -1)) < 0) {
		h->pid = 0;
		return CE_IO;
	}
	ports[0] = h->ecmg_port;
	ports[1] = h->http_port;
	if ((r = e2e_wait_ready(h->pid, ready, ports, 2, timeout_ms)) != 0)
		return r;
	/* the admin key: written at the first start of this data dir */
	if (file_read_all(keyf, 256, &key, &klen) == 0) {
		if (klen >= 64)
			memcpy(h->admin_key, key, 64);
		secret_free(key, klen);
	}
	return 0;
}

void e2e_headend_stop(struct e2e_headend *h)
{
	e2e_stop(&h->pid, 2000);
	secret_wipe(h->admin_key, sizeof(h->admin_key));
}
