/*
 * cmd_scramble.c - `castellan scramble`: the SimulCrypt scrambler (SCS) on
 * the command line. Parses the options into a struct scrambler_config and
 * runs the pipeline of src/scrambler/scrambler.h; SIGUSR1 prints the
 * counters, SIGINT/SIGTERM stop cleanly (counters and --stats-json still
 * written). docs/scrambler.md describes every option.
 * References: ETSI TS 103 197 (ECMG<=>SCS, EMMG<=>MUX), ISO/IEC 13818-1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "lib/config.h"
#include "lib/metrics_http.h"
#include "lib/util.h"
#include "scrambler/scrambler.h"

struct scr_args {
	struct scr_opts o; /* first: the option callbacks get the base as one */
	const char *metrics, *config;
};

/* A callback's result: the reason (if any) on stderr. */
static int said(int r, const char *why)
{
	if (r != 0 && why)
		fprintf(stderr, "castellan scramble: %s\n", why);
	return r;
}

static int add_service(void *base, const char *v)
{
	const char *why = NULL;
	int r = scr_opts_service(base, v, &why);

	return said(r, why); /* why read after the call */
}

static int add_ecmg(void *base, const char *v)
{
	const char *why = NULL;
	int r = scr_opts_ecmg(base, v, &why);

	return said(r, why); /* why read after the call */
}

static int cas_num(void *base, enum scr_cas_field f, const char *v)
{
	const char *why = NULL;
	int r = scr_opts_cas_num(base, f, v, &why);

	return said(r, why); /* why read after the call */
}

static int super_cas_id(void *base, const char *v) { return cas_num(base, SCR_CAS_SUPER_ID, v); }
static int ecm_pid(void *base, const char *v) { return cas_num(base, SCR_CAS_ECM_PID, v); }
static int channel_id(void *base, const char *v) { return cas_num(base, SCR_CAS_CHANNEL_ID, v); }
static int ecm_ids(void *base, const char *v) { return scr_opts_ecm_ids(base, v); }
static int fixed_cw(void *base, const char *v) { return scr_opts_fixed_cw(base, v); }
static int cp_duration(void *base, const char *v) { return scr_opts_cp_duration(base, v); }
static int clear_start(void *base, const char *v) { return scr_opts_clear_start(base, v); }

static int algo(void *base, const char *v)
{
	return cw_alg_parse(v, &((struct scr_args *)base)->o.cfg.alg);
}

static const struct opt_choice policies[] = { { "any", SCR_POLICY_ANY }, { "all", SCR_POLICY_ALL }, { NULL, 0 } };
static const struct opt_choice failures[] = { { "keep", SCR_FAIL_KEEP }, { "clear", SCR_FAIL_CLEAR }, { NULL, 0 } };

#define A struct scr_args
static const struct opt scramble_opts[] = {
	OPT_STR("--input", "URI", OPT_REQUIRED, A, o.cfg.input_uri, "file, '-' (stdin) or udp://[group@][addr]:port"),
	OPT_STR("--output", "URI", OPT_REQUIRED, A, o.cfg.output_uri,
		"file, '-' (stdout) or udp://[local@]host:port[?ttl=N&pkts=N]"),
	OPT_FN("--service", "SPEC", 0, add_service, "service to scramble (repeat for more): ID, then optional\n"
		":ac=HEX8 access criteria (package mask, default 00000001)\n:pids=0x100,0x101 scramble only these "
		"components"),
	OPT_FN("--ecmg", "HOST:PORT[,BACKUP:PORT]", 0, add_ecmg,
		"ECMG main (and backup) address; starts a CAS (repeat the group\nfor SimulCrypt of several CAS)"),
	OPT_FN("--super-cas-id", "ID", 0, super_cas_id, "Super_CAS_id of that CAS (CA_system_id << 16 | subsystem)"),
	OPT_FN("--ecm-pid", "PID", 0, ecm_pid, "its ECM PID, 0x0020..0x1FFE (default: first unused PID after the PMT PID)"),
	OPT_FN("--channel-id", "N", 0, channel_id, "its ECM_channel_id (default 1)"),
	OPT_FN("--ecm-id", "N[,N...]", 0, ecm_ids, "ECM_id of each --service, in order (default 1, 2, ...); unique\n"
		"across every scrambler of an ECMG (docs/scrambler.md)"),
	OPT_FN("--fixed-cw", "HEX", OPT_SECRET, fixed_cw,
		"no ECMG: scramble with this CW (BISS-like, even parity): 16 (CSA2)\nor 32 (CISSA) hex digits"),
	OPT_FN("--algo", "csa2|cissa", 0, algo, "algorithm (default csa2)"),
	OPT_FLAG("--no-entropy-reduction", A, o.cfg.no_entropy_reduction, "CSA2: do not set the CW checksum bytes 3 and 7"),
	OPT_FN("--cp-duration", "S", 0, cp_duration, "crypto-period, seconds 0.1 .. 6553.5 (decimals allowed; default 10)"),
	OPT_FN("--clear-start", "S", 0, clear_start, "leave everything clear for S seconds at the start"),
	OPT_NUM("--ecm-rep-ms", "MS", 0, A, o.cfg.ecm_rep_ms, 10, 60000,
		"ECM repetition (default: ECM_rep_period of the ECMG, else 100)"),
	OPT_NUM("--ecm-timeout-ms", "MS", 0, A, o.cfg.ecm_timeout_ms, 1, 600000,
		"wait this long for an ECM (default max_comp_time + 500)"),
	OPT_CHOICE("--policy", "any|all", A, o.cfg.policy, policies,
		"scramble a CP if any / all CAS delivered its ECM (default any)"),
	OPT_CHOICE("--on-failure", "keep|clear", A, o.cfg.on_failure, failures,
		"no ECM in time: keep the last CW, or go clear (default keep)"),
	OPT_NUM("--version", "2|3", 0, A, o.cfg.version, 2, 3, "ECMG<=>SCS protocol version (default 2)"),
	OPT_STRV("--mux-listen", "ADDR:PORT", 0, A, o.cfg.mux_listen, cli_check_addr,
		"accept EMMGs (EMMG<=>MUX); adds a CAT on PID 1"),
	OPT_STRV("--allow", "CIDR[,CIDR...]", 0, A, o.cfg.mux_allow, cli_check_acl,
		"EMMGs allowed on --mux-listen (e.g. 10.1.0.0/24); others are closed\nbefore any message, their UDP "
		"datagrams dropped (default: anyone)"),
	OPT_NUM("--emm-pid", "PID", 0, A, o.cfg.emm_pid, 0x20, 0x1FFE, "EMM PID (default 0x1FF0)"),
	OPT_NUM("--emm-max-kbps", "N", 0, A, o.cfg.emm_max_kbps, 1, 100000, "EMM bandwidth granted to EMMGs (default 100)"),
	OPT_NUM("--max-extra-kbps", "N", 0, A, o.cfg.max_extra_kbps, 1, 1000000,
		"packets added when no null packet is free (default 1000)"),
	OPT_FLAG("--nulls-only", A, o.cfg.nulls_only, "only replace null packets, never raise the bitrate"),
	OPT_FLAG("--realtime", A, o.cfg.realtime, "pace the output to the PCR (default: as fast as possible)"),
	OPT_FLAG("--live", A, o.live, "do not wait for ECMs (default for udp:// input)"),
	OPT_NUM("--bitrate", "BPS", 0, A, o.cfg.bitrate_bps, 10000, 1000000000,
		"stream time for input without PCR (default 10000000)"),
	OPT_NUM("--max-delay-ms", "MS", 0, A, o.cfg.max_delay_ms, 1, 60000,
		"CSA2: a packet waits at most MS of stream time for a full\ncipher batch (default 200; more = "
		"faster, more latency)"),
	OPT_NUM("--ecmg-retry-ms", "MS", 0, A, o.cfg.retry_ms, 10, SCR_MAX_RETRY_MS,
		"an ECMG unreachable at start is retried after MS, doubling\nup to 4000 (default 250)"),
	OPT_STR("--stats-json", "FILE", 0, A, o.cfg.stats_json, "write the counters as JSON at the end"),
	OPT_STR("--metrics", "ADDR:PORT", 0, A, metrics,
		"Prometheus metrics at http://ADDR:PORT/metrics (no auth: loopback\nor a management network)"),
	CLI_OPT_LOG_LEVEL,
	OPT_STR("--config", "FILE", 0, A, config, "read options from FILE (INI: key = value, keys are these options'\n"
		"names, repeat a key to repeat its option; the command line comes\nafter it; docs/configuration.md)"),
	OPT_END,
};
#undef A

static const struct opt_cmd scramble_cmd = {
	.name = "scramble",
	.synopsis = "--input URI --output URI --service ID[:ac=HEX8][:pids=PID,...] ...\n"
		    "         (--ecmg HOST:PORT[,BACKUP:PORT] --super-cas-id ID [--ecm-pid PID] [--channel-id N]) ...\n"
		    "         | --fixed-cw HEX\n"
		    "         [options]",
	.about = "Scramble services of a transport stream with DVB-CSA2 or DVB-CISSA, getting ECMs\n"
		 "from one or more ECMGs over DVB SimulCrypt (ETSI TS 103 197).",
	.opts = scramble_opts,
	.footer = "Signals: SIGUSR1 prints the counters; SIGINT/SIGTERM stop cleanly; SIGHUP re-reads\n"
		  "--config FILE (log-level changes live, other changes are logged as needing a restart).\n",
};

static void usage(FILE *f)
{
	opt_help(f, &scramble_cmd);
}

static volatile sig_atomic_t scramble_stats_req;

static void on_usr1(int sig)
{
	(void)sig;
	scramble_stats_req = 1;
}

/* What SIGHUP may change live (config.h). */
static const char *const scramble_live_keys[] = { "log-level", NULL };

static int scramble_apply(void *ctx, const char *key, const char *value)
{
	(void)ctx;
	return cli_apply_log_level(key, value);
}

static int scramble_main(int argc, char **argv, struct cli_config_args *ca);

int cmd_scramble(int argc, char **argv)
{
	struct cli_config_args ca;
	int r = cli_config_begin("scramble", usage, NULL, &argc, &argv, &ca);

	if (r < 0)
		r = scramble_main(argc, argv, &ca);
	cli_config_end(&ca);
	return r;
}

static int scramble_main(int argc, char **argv, struct cli_config_args *ca)
{
	struct scr_args *a = calloc(1, sizeof(*a));
	struct scrambler *s = NULL;
	struct metrics_http *mh = NULL;
	const char *why = NULL;
	int rc = 1, r;

	if (!a)
		return 1;
	scr_opts_init(&a->o);
	if ((rc = opt_parse(&scramble_cmd, a, argc, argv, 1, NULL, NULL)) != OPT_GO)
		goto out;
	if (scr_opts_finish(&a->o, &why) != 0) {
		rc = said(2, why);
		goto out;
	}
	rc = 2;
	scramble_stats_req = 0;
	a->o.cfg.stop = cli_stop_on_signals();
	a->o.cfg.stats_request = &scramble_stats_req;
	if ((r = scrambler_new(&a->o.cfg, &s)) != 0) {
		fprintf(stderr, "scramble: bad configuration: %s\n", err_str(r));
		goto out;
	}
	rc = 1;
	if (a->metrics && (r = metrics_http_start(a->metrics, &mh)) != 0) {
		fprintf(stderr, "scramble: --metrics %s: %s\n", a->metrics, err_str(r));
		goto out;
	}
	signal(SIGUSR1, on_usr1);
	if ((r = cli_config_reload_start(ca, scramble_live_keys, scramble_apply, NULL)) != 0)
		fprintf(stderr, "scramble: SIGHUP thread: %s\n", err_str(r));
	r = scrambler_run(s);
	cli_config_reload_stop(ca);
	scrambler_stats_print(s, stderr);
	if (r == CE_NO_KEY)
		fprintf(stderr, "scramble: incomplete output: the ECMGs did not serve every crypto-period "
			"(counters above; exit 1)\n");
	else if (r != 0)
		fprintf(stderr, "scramble: %s\n", err_str(r));
	rc = r != 0;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
out:
	metrics_http_free(mh);
	scrambler_free(s);
	secret_wipe(a, sizeof(*a));
	free(a);
	return rc;
}
