/*
 * cmd_emmg.c - `castellan emmg`: an EMMG that connects to a MUX (EMMG<=>MUX,
 * ETSI TS 103 197) and sends the EMM sections of a file in a loop
 * (src/headend/emmg.h emmg_send_loop), at the bandwidth the MUX grants,
 * reconnecting when the MUX goes away. docs/emmg.md is the operator's page.
 * File format (ts/secfile.h): one section per line in hex.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "headend/emmg.h"
#include "lib/log.h"
#include "ts/secfile.h"

struct emmg_args {
	struct emmg_config cfg;
	const char *mux, *file;
	uint64_t loops;
};

#define A struct emmg_args
static const struct opt emmg_opts[] = {
	OPT_STR("--mux", "HOST:PORT", OPT_REQUIRED, A, mux,
		"the MUX (TCP; with --udp, data_provision goes to the same port over UDP)"),
	OPT_NUM("--client-id", "ID", OPT_REQUIRED, A, cfg.client_id, 0, UINT32_MAX,
		"client_id, e.g. 0x4ADC0001 (high 16 bits: CA_system_id)"),
	OPT_STR("--emm-file", "FILE", OPT_REQUIRED, A, file, "the EMM sections"),
	OPT_FLAG("--udp", A, cfg.udp, "send data_provision over UDP"),
	OPT_FLAG("--packets", A, cfg.packet_mode, "send TS packets (section_TSpkt_flag 1) instead of sections"),
	OPT_NUM("--bandwidth", "KBPS", 0, A, cfg.bandwidth_kbps, 0, 0xFFFF,
		"bandwidth to ask for (default 100 kbit/s; 0 = do not say)"),
	OPT_NUM("--channel-id", "N", 0, A, cfg.channel_id, 0, 0xFFFF, "data_channel_id (default 1)"),
	OPT_NUM("--stream-id", "N", 0, A, cfg.stream_id, 0, 0xFFFF, "data_stream_id (default 1)"),
	OPT_NUM("--data-id", "N", 0, A, cfg.data_id, 0, 0xFFFF, "data_id (default 1)"),
	OPT_NUM("--version", "N", 0, A, cfg.version, 1, 5, "EMMG<=>MUX protocol version 1..5 (default 2)"),
	OPT_NUM("--loops", "N", 0, A, loops, 0, UINT32_MAX, "send the file N times, then close (default 0 = until stopped)"),
	CLI_OPT_LOG_LEVEL,
	OPT_END,
};
#undef A

static const struct opt_cmd emmg_cmd = {
	.name = "emmg",
	.about = "Connect to a MUX as an EMMG (DVB SimulCrypt EMMG<=>MUX) and send the EMM sections of\n"
		 "FILE (one hex section per line; '#' comments) in a loop at the granted bandwidth.\n"
		 "Reconnects by itself when the MUX goes away. Ctrl-C closes the session politely.",
	.opts = emmg_opts,
};

int cmd_emmg(int argc, char **argv)
{
	struct emmg_args a = { 0 };
	struct emmg *e = NULL;
	struct secfile sf = { 0 };
	struct emmg_stats st;
	size_t bad = 0;
	int rc = 1, r;

	emmg_config_init(&a.cfg);
	if ((r = opt_parse(&emmg_cmd, &a, argc, argv, 1, NULL, NULL)) != OPT_GO)
		return r;
	if (strlen(a.mux) >= sizeof(a.cfg.mux)) {
		fprintf(stderr, "castellan emmg: --mux too long\n");
		return 2;
	}
	memcpy(a.cfg.mux, a.mux, strlen(a.mux) + 1);
	if ((r = secfile_load(a.file, SECFILE_MAX_SECTIONS, &sf, &bad)) != 0) {
		if (r == CE_FORMAT && bad)
			fprintf(stderr, "emmg: %s line %zu: not one whole section in hex\n", a.file, bad);
		else
			fprintf(stderr, "emmg: %s: %s\n", a.file, r == CE_FORMAT ? "holds no section" : err_str(r));
		return 1;
	}
	if ((r = emmg_new(&a.cfg, &e)) != 0) {
		fprintf(stderr, "emmg: bad --mux '%s' or options: %s\n", a.mux, err_str(r));
		goto out;
	}
	LOG_INFO("emmg", "%zu sections from %s to MUX %s, client_id 0x%08x", sf.n, a.file, a.mux, a.cfg.client_id);
	if ((r = emmg_send_loop(e, (const uint8_t *const *)sf.sec, sf.len, sf.n, a.loops, cli_stop_on_signals())) != 0) {
		fprintf(stderr, "emmg: cannot send: %s\n", err_str(r));
		goto out;
	}
	rc = 0;
out:
	if (e) {
		(void)emmg_close(e);
		emmg_stats(e, &st);
		fprintf(stderr,
			"emmg: %llu sessions, %llu disconnects, %llu data_provision, %llu sections, %llu bytes, "
			"%llu errors from the MUX\n",
			(unsigned long long)st.connects, (unsigned long long)st.disconnects,
			(unsigned long long)st.data_provisions, (unsigned long long)st.sections_sent,
			(unsigned long long)st.bytes_sent, (unsigned long long)st.errors_received);
	}
	emmg_free(e);
	secfile_free(&sf);
	return rc;
}
