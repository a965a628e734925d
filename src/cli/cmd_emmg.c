/*
 * cmd_emmg.c - `castellan emmg`: an EMMG that connects to a MUX (EMMG<=>MUX,
 * ETSI TS 103 197) and sends the EMM sections of a file in a loop, at the
 * bandwidth the MUX grants, reconnecting when the MUX goes away. The client
 * is src/headend/emmg.h; docs/emmg.md is the operator's page.
 *
 * File format: one section per line in hex (blank lines and lines starting
 * with '#' ignored), each a whole section of at most 4096 bytes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "headend/emmg.h"
#include "lib/log.h"
#include "lib/util.h"
#include "ts/psi.h"
#include "ts/secfile.h"

/* The only mutable static: what a signal handler may touch. */
static volatile sig_atomic_t emmg_stop;

static void on_signal(int sig)
{
	(void)sig;
	emmg_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan emmg --mux HOST:PORT --client-id ID --emm-file FILE [options]\n\n"
		"Connect to a MUX as an EMMG (DVB SimulCrypt EMMG<=>MUX) and send the EMM sections of\n"
		"FILE (one hex section per line; '#' comments) in a loop at the granted bandwidth.\n"
		"Reconnects by itself when the MUX goes away. Ctrl-C closes the session politely.\n\n"
		"options:\n"
		"  --mux HOST:PORT      the MUX (TCP; with --udp, data_provision goes to the same port over UDP)\n"
		"  --client-id ID       client_id, e.g. 0x4ADC0001 (high 16 bits: CA_system_id)\n"
		"  --emm-file FILE      the EMM sections\n"
		"  --udp                send data_provision over UDP\n"
		"  --packets            send TS packets (section_TSpkt_flag 1) instead of sections\n"
		"  --bandwidth KBPS     bandwidth to ask for (default %u kbit/s; 0 = do not say)\n"
		"  --channel-id N       data_channel_id (default 1)\n"
		"  --stream-id N        data_stream_id (default 1)\n"
		"  --data-id N          data_id (default 1)\n"
		"  --version N          EMMG<=>MUX protocol version 1..5 (default 2)\n"
		"  --loops N            send the file N times, then close (default 0 = until stopped)\n"
		"  --log-level L        error | warn | info | debug (default info)\n",
		EMMG_DEFAULT_KBPS);
}

int cmd_emmg(int argc, char **argv)
{
	struct emmg_config cfg;
	struct emmg *e = NULL;
	struct secfile sf = { 0 };
	size_t bad = 0;
	struct emmg_stats st;
	const char *file = NULL, *mux = NULL;
	bool have_client = false;
	uint64_t v, loops = 0, done_loops = 0;
	enum log_level lvl = LOG_LEVEL_INFO;
	int rc = 1, r;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	emmg_config_init(&cfg);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--udp") == 0) {
			cfg.udp = true;
			continue;
		}
		if (strcmp(o, "--packets") == 0) {
			cfg.packet_mode = true;
			continue;
		}
		if (!val) {
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(o, "--mux") == 0) {
			mux = val;
		} else if (strcmp(o, "--emm-file") == 0) {
			file = val;
		} else if (strcmp(o, "--client-id") == 0) {
			if (cli_u64("emmg", "--client-id", val, 0xFFFFFFFFu, &v) != 0)
				return 2;
			cfg.client_id = (uint32_t)v;
			have_client = true;
		} else if (strcmp(o, "--bandwidth") == 0) {
			if (cli_u64("emmg", "--bandwidth", val, 0xFFFF, &v) != 0)
				return 2;
			cfg.bandwidth_kbps = (uint16_t)v;
		} else if (strcmp(o, "--channel-id") == 0) {
			if (cli_u64("emmg", "--channel-id", val, 0xFFFF, &v) != 0)
				return 2;
			cfg.channel_id = (uint16_t)v;
		} else if (strcmp(o, "--stream-id") == 0) {
			if (cli_u64("emmg", "--stream-id", val, 0xFFFF, &v) != 0)
				return 2;
			cfg.stream_id = (uint16_t)v;
		} else if (strcmp(o, "--data-id") == 0) {
			if (cli_u64("emmg", "--data-id", val, 0xFFFF, &v) != 0)
				return 2;
			cfg.data_id = (uint16_t)v;
		} else if (strcmp(o, "--version") == 0) {
			if (cli_u64("emmg", "--version", val, 5, &v) != 0 || v < 1)
				return 2;
			cfg.version = (uint8_t)v;
		} else if (strcmp(o, "--loops") == 0) {
			if (cli_u64("emmg", "--loops", val, UINT32_MAX, &loops) != 0)
				return 2;
		} else if (strcmp(o, "--log-level") == 0) {
			if (log_level_parse(val, &lvl) != 0) {
				fprintf(stderr, "emmg: bad --log-level '%s'\n", val);
				return 2;
			}
		} else {
			fprintf(stderr, "emmg: unknown option '%s'\n", o);
			usage(stderr);
			return 2;
		}
	}
	if (!mux || !file || !have_client) {
		fprintf(stderr, "emmg: --mux, --client-id and --emm-file are required\n");
		usage(stderr);
		return 2;
	}
	if (strlen(mux) >= sizeof(cfg.mux)) {
		fprintf(stderr, "emmg: --mux too long\n");
		return 2;
	}
	memcpy(cfg.mux, mux, strlen(mux) + 1);
	log_set_level(lvl);
	if ((r = secfile_load(file, SECFILE_MAX_SECTIONS, &sf, &bad)) != 0) {
		if (r == CE_FORMAT && bad)
			fprintf(stderr, "emmg: %s line %zu: not one whole section in hex\n", file, bad);
		else
			fprintf(stderr, "emmg: %s: %s\n", file, r == CE_FORMAT ? "holds no section" : err_str(r));
		return 1;
	}
	if ((r = emmg_new(&cfg, &e)) != 0) {
		fprintf(stderr, "emmg: bad --mux '%s' or options: %s\n", mux, err_str(r));
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	LOG_INFO("emmg", "%zu sections from %s to MUX %s, client_id 0x%08x", sf.n, file, mux, cfg.client_id);
	while (!emmg_stop && (loops == 0 || done_loops < loops)) {
		size_t at = 0;

		while (at < sf.n && !emmg_stop) {
			size_t sent = 0;

			r = emmg_send(e, (const uint8_t *const *)sf.sec + at, sf.len + at, sf.n - at, 500, &sent);
			at += sent;
			if (r == CE_TIMEOUT || r == 0)
				continue;
			if (r == CE_ARG || r == CE_LIMIT) {
				fprintf(stderr, "emmg: cannot send: %s\n", err_str(r));
				goto out;
			}
			/* connection trouble: emmg_send reconnects with back-off */
			usleep(100000);
		}
		if (at == sf.n)
			done_loops++;
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
