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
#include "lib/log.h"
#include "lib/metrics_http.h"
#include "lib/netacl.h"
#include "lib/util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan ecmg --keystore FILE [--passphrase-file F] [--listen ADDR:PORT] [options]\n\n"
		"Run the ECMG: a DVB SimulCrypt ECMG<=>SCS server (ETSI TS 103 197). Scramblers (SCS)\n"
		"connect, open one ECM channel per connection and ECM streams in it, and get an ECM\n"
		"(ECM_response) for every CW_provision. Stops on SIGINT/SIGTERM and prints counters.\n\n"
		"  --listen ADDR:PORT        where to listen (default %s: this host only; on the private\n"
		"                            SimulCrypt network give its address, e.g. 10.1.0.5:2222)\n"
		"  --allow CIDR[,CIDR...]    only these peers may connect (e.g. 10.1.0.0/24,192.0.2.7);\n"
		"                            others are closed before any message (default: anyone)\n"
		"  --keystore FILE           head-end keystore (castellan keys init)\n"
		"  --passphrase-file F       its passphrase (first line), else $%s\n"
		"  --version 2|3             ECMG<=>SCS protocol version (default 2; must match the SCS)\n"
		"  --ca-system-id ID         accepted Super_CAS_id >> 16 (default: the keystore's)\n"
		"  --ts-packets              ECMs as 188-byte TS packets (section_TSpkt_flag 1, default)\n"
		"  --sections                ECMs as sections (section_TSpkt_flag 0)\n"
		"  --cw-per-msg N            CWs per ECM, 1 or 2 (default 2)\n"
		"  --lead-cw N               CWs ahead of the current CP, 0..2 (default 1)\n"
		"  --delay-start MS          announced delay_start (default 200, may be negative)\n"
		"  --delay-stop MS           announced delay_stop (default 200)\n"
		"  --ecm-rep-period MS       announced ECM_rep_period (default 100)\n"
		"  --max-streams N           streams per channel, enforced (default 0 = up to %u)\n"
		"  --min-cp-duration N       minimum CP, in 100 ms (default 10), enforced\n"
		"  --max-comp-time MS        announced max_comp_time (default 100)\n"
		"  --max-channels N          channels on this ECMG (default 256)\n"
		"  --max-connections N       open TCP connections (default 512)\n"
		"  --max-channels-per-peer N channels one peer address may hold (default max-channels / 4)\n"
		"  --max-streams-per-peer N  streams one peer address may hold (default %u)\n"
		"  --max-streams-total N     streams on this ECMG (default %u)\n"
		"  --idle-timeout S          close a connection silent for S s (default 300, 0 = never)\n"
		"  --metrics ADDR:PORT       Prometheus metrics at http://ADDR:PORT/metrics (no auth: loopback\n"
		"                            or a management network)\n"
		"  --log-level L             error | warn | info (default) | debug\n",
		ECMG_DEFAULT_LISTEN, KEYSTORE_PASSPHRASE_ENV, ECMG_MAX_STREAMS_PER_CHANNEL,
		4u * ECMG_MAX_STREAMS_PER_CHANNEL, ECMG_DEFAULT_MAX_STREAMS_TOTAL);
}

/* The numeric options: name, accepted range, which field. */
enum num_id { N_VERSION, N_CASID, N_CWPM, N_LEAD, N_DSTART, N_DSTOP, N_REP, N_MAXST, N_MINCP, N_COMP,
	N_MAXCH, N_MAXCONN, N_IDLE, N_CHPEER, N_STPEER, N_STTOTAL };
struct num_opt {
	const char *name;
	int64_t lo, hi;
	enum num_id id;
};
static const struct num_opt NUM_OPTS[] = {
	{ "--version", 2, 3, N_VERSION },
	{ "--ca-system-id", 1, 0xFFFF, N_CASID },
	{ "--cw-per-msg", 1, 2, N_CWPM },
	{ "--lead-cw", 0, 2, N_LEAD },
	{ "--delay-start", INT16_MIN, INT16_MAX, N_DSTART },
	{ "--delay-stop", INT16_MIN, INT16_MAX, N_DSTOP },
	{ "--ecm-rep-period", 1, 0xFFFF, N_REP },
	{ "--max-streams", 0, ECMG_MAX_STREAMS_PER_CHANNEL, N_MAXST },
	{ "--min-cp-duration", 0, 0xFFFF, N_MINCP },
	{ "--max-comp-time", 1, 0xFFFF, N_COMP },
	{ "--max-channels", 1, 65536, N_MAXCH },
	{ "--max-connections", 1, 65536, N_MAXCONN },
	{ "--idle-timeout", 0, 86400, N_IDLE },
	{ "--max-channels-per-peer", 1, 65536, N_CHPEER },
	{ "--max-streams-per-peer", 1, 1 << 20, N_STPEER },
	{ "--max-streams-total", 1, 1 << 20, N_STTOTAL },
};

static const struct num_opt *find_num(const char *name)
{
	for (size_t i = 0; i < sizeof(NUM_OPTS) / sizeof(NUM_OPTS[0]); i++)
		if (strcmp(NUM_OPTS[i].name, name) == 0)
			return &NUM_OPTS[i];
	return NULL;
}

/* x is within the option's range (checked by the caller). */
static void set_num(struct ecmg_config *cfg, enum num_id id, int64_t x, int64_t *idle_s)
{
	switch (id) {
	case N_VERSION: cfg->version = (uint8_t)x; break;
	case N_CASID: cfg->ca_system_id = (uint16_t)x; break;
	case N_CWPM: cfg->cw_per_msg = (uint8_t)x; break;
	case N_LEAD: cfg->lead_cw = (uint8_t)x; break;
	case N_DSTART: cfg->delay_start_ms = (int16_t)x; break;
	case N_DSTOP: cfg->delay_stop_ms = (int16_t)x; break;
	case N_REP: cfg->ecm_rep_period_ms = (uint16_t)x; break;
	case N_MAXST: cfg->max_streams = (uint16_t)x; break;
	case N_MINCP: cfg->min_cp_duration = (uint16_t)x; break;
	case N_COMP: cfg->max_comp_time_ms = (uint16_t)x; break;
	case N_MAXCH: cfg->max_channels = (uint32_t)x; break;
	case N_MAXCONN: cfg->max_connections = (uint32_t)x; break;
	case N_IDLE: *idle_s = x; break;
	case N_CHPEER: cfg->max_channels_per_peer = (uint32_t)x; break;
	case N_STPEER: cfg->max_streams_per_peer = (uint32_t)x; break;
	case N_STTOTAL: cfg->max_streams_total = (uint32_t)x; break;
	}
}

static int bad_value(const char *opt, const char *v)
{
	fprintf(stderr, "ecmg: bad value for %s: '%s' (see castellan ecmg --help)\n", opt, v);
	return 2;
}

int cmd_ecmg(int argc, char **argv)
{
	struct ecmg_config cfg;
	const char *ks_path = NULL, *pfile = NULL, *metrics_addr = NULL;
	struct metrics_http *mh = NULL;
	struct keystore *ks = NULL;
	struct ecmg *g = NULL;
	struct ecmg_stats st;
	char *pass = NULL;
	int64_t idle_s = 300;
	int r, rc = 1;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	ecmg_config_init(&cfg);
	cfg.handle_signals = true;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int64_t x = 0;

		if (strcmp(o, "--ts-packets") == 0) {
			cfg.sections = false;
			continue;
		}
		if (strcmp(o, "--sections") == 0) {
			cfg.sections = true;
			continue;
		}
		if (!v) {
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(o, "--listen") == 0) {
			cfg.listen = v;
		} else if (strcmp(o, "--allow") == 0) {
			cfg.allow = v; /* checked by ecmg_new */
		} else if (strcmp(o, "--keystore") == 0) {
			ks_path = v;
		} else if (strcmp(o, "--passphrase-file") == 0) {
			pfile = v;
		} else if (strcmp(o, "--metrics") == 0) {
			metrics_addr = v;
		} else if (strcmp(o, "--log-level") == 0) {
			enum log_level l;

			if (log_level_parse(v, &l) != 0)
				return bad_value(o, v);
			log_set_level(l);
		} else {
			const struct num_opt *n = find_num(o);

			if (!n) {
				usage(stderr);
				return 2;
			}
			if (parse_s64(v, n->lo, n->hi, &x) != 0) /* strict: whole string, "-200", "0x10" */
				return bad_value(o, v);
			set_num(&cfg, n->id, x, &idle_s);
		}
	}
	cfg.idle_timeout_ms = (uint32_t)idle_s * 1000u;
	if (cfg.allow) {
		struct netacl acl;

		if (netacl_parse(cfg.allow, &acl) != 0)
			return bad_value("--allow", cfg.allow);
	}
	if (!ks_path) {
		fprintf(stderr, "ecmg: --keystore is required (create one with castellan keys init)\n");
		return 2;
	}
	r = passphrase_get(pfile, &pass);
	if (r != 0) {
		char pwhy[600];

		fprintf(stderr, "ecmg: passphrase: %s (give --passphrase-file or set $%s)\n",
			passphrase_why(pfile, r, pwhy, sizeof(pwhy)),
			KEYSTORE_PASSPHRASE_ENV);
		return 1;
	}
	r = keystore_load(ks_path, pass, &ks);
	secret_free(pass, strlen(pass));
	if (r != 0) {
		fprintf(stderr, "ecmg: cannot open keystore %s: %s\n", ks_path, err_str(r));
		return 1;
	}
	cfg.ks = ks;
	/* a peer closing while we write must not kill the server */
	signal(SIGPIPE, SIG_IGN);
	if ((r = ecmg_new(&cfg, &g)) != 0 || (r = ecmg_start(g)) != 0) {
		fprintf(stderr, "ecmg: %s\n", err_str(r));
		goto out;
	}
	if (metrics_addr && (r = metrics_http_start(metrics_addr, &mh)) != 0) {
		fprintf(stderr, "ecmg: --metrics %s: %s\n", metrics_addr, err_str(r));
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
