/*
 * cmd_ecmg.c - `castellan ecmg`: run the ECM generator (src/headend/ecmg.h)
 * as a DVB SimulCrypt ECMG<=>SCS TCP server until SIGINT/SIGTERM, then print
 * its counters. Options and behaviour: docs/ecmg.md.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "cas/keys.h"
#include "cli/cli.h"
#include "headend/ecmg.h"
#include "lib/err.h"
#include "lib/metrics_http.h"

struct ecmg_args {
	struct ecmg_config cfg;
	const char *keystore, *pfile, *metrics;
	uint32_t idle_s;
};

static int set_sections(void *base, const char *v)
{
	(void)v;
	((struct ecmg_args *)base)->cfg.sections = true;
	return 0;
}

static int set_ts_packets(void *base, const char *v)
{
	(void)v;
	((struct ecmg_args *)base)->cfg.sections = false;
	return 0;
}

#define A struct ecmg_args
static const struct opt ecmg_opts[] = {
	OPT_STR("--listen", "ADDR:PORT", 0, A, cfg.listen, "where to listen (default " ECMG_DEFAULT_LISTEN
		": this host only; on the private\nSimulCrypt network give its address, e.g. 10.1.0.5:2222)"),
	OPT_STRV("--allow", "CIDR[,CIDR...]", 0, A, cfg.allow, cli_check_acl,
		"only these peers may connect (e.g. 10.1.0.0/24,192.0.2.7);\nothers are closed before any "
		"message (default: anyone)"),
	OPT_STR("--keystore", "FILE", OPT_REQUIRED, A, keystore, "head-end keystore (castellan keys init)"),
	OPT_STR("--passphrase-file", "F", 0, A, pfile, "its passphrase (first line), else $" KEYSTORE_PASSPHRASE_ENV),
	OPT_NUM("--version", "2|3", 0, A, cfg.version, 2, 3, "ECMG<=>SCS protocol version (default 2; must match the SCS)"),
	OPT_NUM("--ca-system-id", "ID", 0, A, cfg.ca_system_id, 1, 0xFFFF, "accepted Super_CAS_id >> 16 (default: the keystore's)"),
	OPT_FN("--ts-packets", NULL, OPT_SWITCH, set_ts_packets, "ECMs as 188-byte TS packets (section_TSpkt_flag 1, default)"),
	OPT_FN("--sections", NULL, OPT_SWITCH, set_sections, "ECMs as sections (section_TSpkt_flag 0)"),
	OPT_NUM("--cw-per-msg", "N", 0, A, cfg.cw_per_msg, 1, 2, "CWs per ECM, 1 or 2 (default 2)"),
	OPT_NUM("--lead-cw", "N", 0, A, cfg.lead_cw, 0, 2, "CWs ahead of the current CP, 0..2 (default 1)"),
	OPT_NUM("--delay-start", "MS", 0, A, cfg.delay_start_ms, INT16_MIN, INT16_MAX,
		"announced delay_start (default 200, may be negative)"),
	OPT_NUM("--delay-stop", "MS", 0, A, cfg.delay_stop_ms, INT16_MIN, INT16_MAX, "announced delay_stop (default 200)"),
	OPT_NUM("--ecm-rep-period", "MS", 0, A, cfg.ecm_rep_period_ms, 1, 0xFFFF, "announced ECM_rep_period (default 100)"),
	OPT_NUM("--max-streams", "N", 0, A, cfg.max_streams, 0, ECMG_MAX_STREAMS_PER_CHANNEL,
		"streams per channel, enforced (default 0 = up to 1024)"),
	OPT_NUM("--min-cp-duration", "N", 0, A, cfg.min_cp_duration, 0, 0xFFFF, "minimum CP, in 100 ms (default 10), enforced"),
	OPT_NUM("--max-comp-time", "MS", 0, A, cfg.max_comp_time_ms, 1, 0xFFFF, "announced max_comp_time (default 100)"),
	OPT_NUM("--max-channels", "N", 0, A, cfg.max_channels, 1, 65536, "channels on this ECMG (default 256)"),
	OPT_NUM("--max-connections", "N", 0, A, cfg.max_connections, 1, 65536, "open TCP connections (default 512)"),
	OPT_NUM("--max-channels-per-peer", "N", 0, A, cfg.max_channels_per_peer, 1, 65536,
		"channels one peer address may hold (default max-channels / 4)"),
	OPT_NUM("--max-streams-per-peer", "N", 0, A, cfg.max_streams_per_peer, 1, 1 << 20,
		"streams one peer address may hold (default 4096)"),
	OPT_NUM("--max-streams-total", "N", 0, A, cfg.max_streams_total, 1, 1 << 20, "streams on this ECMG (default 32768)"),
	OPT_NUM("--idle-timeout", "S", 0, A, idle_s, 0, 86400, "close a connection silent for S s (default 300, 0 = never)"),
	OPT_STR("--metrics", "ADDR:PORT", 0, A, metrics, "Prometheus metrics at http://ADDR:PORT/metrics (no auth: "
		"loopback\nor a management network)"),
	CLI_OPT_LOG_LEVEL,
	OPT_END,
};
#undef A

static const struct opt_cmd ecmg_cmd = {
	.name = "ecmg",
	.about = "Run the ECMG: a DVB SimulCrypt ECMG<=>SCS server (ETSI TS 103 197). Scramblers (SCS)\n"
		 "connect, open one ECM channel per connection and ECM streams in it, and get an ECM\n"
		 "(ECM_response) for every CW_provision. Stops on SIGINT/SIGTERM and prints counters.",
	.opts = ecmg_opts,
};

int cmd_ecmg(int argc, char **argv)
{
	struct ecmg_args a = { .idle_s = 300 };
	struct metrics_http *mh = NULL;
	struct keystore *ks = NULL;
	struct ecmg *g = NULL;
	struct ecmg_stats st;
	int r, rc = 1;

	ecmg_config_init(&a.cfg);
	a.cfg.handle_signals = true;
	if ((r = opt_parse(&ecmg_cmd, &a, argc, argv, 1, NULL, NULL)) != OPT_GO)
		return r;
	a.cfg.idle_timeout_ms = a.idle_s * 1000u;
	if (cli_keystore_open("ecmg", a.keystore, a.pfile, &ks) != 0)
		return 1;
	a.cfg.ks = ks;
	signal(SIGPIPE, SIG_IGN); /* a peer closing while we write must not kill the server */
	if ((r = ecmg_new(&a.cfg, &g)) != 0 || (r = ecmg_start(g)) != 0) {
		fprintf(stderr, "ecmg: %s\n", err_str(r));
		goto out;
	}
	if (a.metrics && (r = metrics_http_start(a.metrics, &mh)) != 0) {
		fprintf(stderr, "ecmg: --metrics %s: %s\n", a.metrics, err_str(r));
		goto out;
	}
	if ((r = ecmg_run(g)) != 0) {
		fprintf(stderr, "ecmg: event loop: %s\n", err_str(r));
		goto out;
	}
	ecmg_stats(g, &st);
	fprintf(stderr,
		"ecmg: stopped: %llu connections, %llu channels, %llu streams, %llu CW_provision, %llu ECMs "
		"(%llu late, mean %.1f us), %llu errors sent, %llu received, %llu invalid messages, %llu timeouts, "
		"%llu peers not allowed, %llu quota refusals\n",
		(unsigned long long)st.connections, (unsigned long long)st.channels, (unsigned long long)st.streams,
		(unsigned long long)st.cw_provisions, (unsigned long long)st.ecms, (unsigned long long)st.ecms_late,
		st.ecms ? (double)st.ecm_us_total / (double)st.ecms : 0.0, (unsigned long long)st.errors_sent,
		(unsigned long long)st.errors_received, (unsigned long long)st.bad_messages,
		(unsigned long long)st.timeouts, (unsigned long long)st.connections_denied,
		(unsigned long long)st.quota_refusals);
	rc = 0;
out:
	metrics_http_free(mh);
	ecmg_free(g);
	keystore_free(ks);
	return rc;
}
