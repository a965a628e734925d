/*
 * fuzz_ecmg.c - libFuzzer target for the ECMG session (src/headend/ecmg.c):
 * the input is the byte stream an SCS sends on one connection (framing,
 * channel/stream state machine, CW_provision -> ECM). Every answer must be a
 * whole message that decodes as ECMG<=>SCS; the session must end when the
 * peer closes. Seeds: fuzz/corpus/ecmg (TSDuck's SCS side of the captures).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cas/keys.h"
#include "headend/ecmg.h"
#include "lib/log.h"
#include "simulcrypt/simulcrypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct keystore *ks;
	static struct sc_msg m;
	static uint8_t rx[1 << 17];
	static const uint8_t root[KEYSTORE_ROOT_BYTES] = { 1 };
	struct ecmg_config cfg;
	struct ecmg *g = NULL;
	size_t have = 0, sent = 0;
	int sv[2];
	bool eof = false;

	if (!ks) {
		log_set_level(LOG_LEVEL_ERROR);
		if (keystore_from_root(0x4ADC, 0, root, &ks) != 0)
			abort();
	}
	ecmg_config_init(&cfg);
	cfg.ks = ks;
	cfg.version = size && data[0] == 3 ? 3 : 2;
	cfg.idle_timeout_ms = 0;
	cfg.setup_timeout_ms = 0;
	if (ecmg_new(&cfg, &g) != 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0 ||
	    ecmg_adopt(g, sv[0]) != 0)
		abort();
	for (int round = 0; round < 100000 && !eof; round++) {
		ssize_t r;

		if (sent < size) {
			r = send(sv[1], data + sent, size - sent, MSG_NOSIGNAL);
			if (r > 0)
				sent += (size_t)r;
			if (sent == size)
				shutdown(sv[1], SHUT_WR);
		} else if (size == 0 && round == 0) {
			shutdown(sv[1], SHUT_WR);
		}
		if (ecmg_poll(g) != 0)
			abort();
		r = recv(sv[1], rx + have, sizeof(rx) - have, 0);
		if (r == 0)
			eof = true;
		if (r > 0)
			have += (size_t)r;
		/* every complete answer decodes */
		while (have >= SC_HEADER_BYTES && sc_frame_len(rx) <= have) {
			size_t fl = sc_frame_len(rx);

			if (sc_decode(SC_ECMG_SCS, cfg.version, rx, fl, &m, NULL) != 0)
				abort();
			memmove(rx, rx + fl, have - fl);
			have -= fl;
		}
		if (have == sizeof(rx))
			abort();
	}
	if (!eof || have != 0)
		abort(); /* the session did not end, or ended mid-message */
	close(sv[1]);
	ecmg_free(g);
	return 0;
}
