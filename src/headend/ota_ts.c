/*
 * ota_ts.c - a module's carousel as a whole TS (ota_ts.h).
 */
#include <stdlib.h>
#include <string.h>
#include "headend/ota_ts.h"
#include "ts/ts.h"

int ota_ts_build(const struct ota_ts_params *p, const uint8_t *mod, size_t len, uint8_t **out, size_t *nout,
	size_t *ncycle)
{
	uint8_t *pkts = NULL, psi[376], cc = 15;
	size_t n = 0;
	bool psi_too = p->program && p->pmt_pid;
	int r;

	*out = NULL;
	*nout = *ncycle = 0;
	if ((p->in && !psi_too) || (psi_too && (r = ota_psi_build(1, p->program, p->pmt_pid, p->car.pid, psi)) != 0))
		return CE_ARG;
	if ((r = ota_carousel_build(&p->car, mod, len, &cc, &pkts, &n)) != 0)
		return r;
	*ncycle = n;
	if (p->in) {
		r = ota_mux_into(p->in, p->nin, pkts, n, psi, p->program, p->pmt_pid, p->start, p->cycles, p->every, out,
			nout);
		free(pkts);
		return r;
	}
	if (!psi_too) {
		*out = pkts;
		*nout = n;
		return 0;
	}
	if (!(*out = malloc((n + 2) * TS_PACKET_BYTES))) {
		free(pkts);
		return CE_NOMEM;
	}
	memcpy(*out, psi, sizeof(psi));
	memcpy(*out + sizeof(psi), pkts, n * TS_PACKET_BYTES);
	*nout = n + 2;
	free(pkts);
	return 0;
}
