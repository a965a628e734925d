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
#include "lib/log.h"
#include "lib/metrics_http.h"
#include "lib/netacl.h"
#include "lib/util.h"
#include "scrambler/scrambler.h"

static volatile sig_atomic_t scramble_stop;
static volatile sig_atomic_t scramble_stats_req;

static void on_stop(int sig)
{
	(void)sig;
	scramble_stop = 1;
}

static void on_usr1(int sig)
{
	(void)sig;
	scramble_stats_req = 1;
}

/* "N[,N...]": ECM_ids 1..65535, at most SCR_MAX_SERVICES. 0 or -1. */
static int parse_ecm_ids(const char *val, uint16_t *ids, size_t *n)
{
	const char *p = val;

	*n = 0;
	while (*p) {
		char num[8];
		size_t k = 0;
		uint64_t v;

		while (p[k] && p[k] != ',')
			k++;
		if (k == 0 || k >= sizeof(num) || *n >= SCR_MAX_SERVICES)
			return -1;
		memcpy(num, p, k);
		num[k] = '\0';
		if (parse_u64(num, 0xFFFF, &v) != 0 || v == 0)
			return -1;
		ids[(*n)++] = (uint16_t)v;
		p += k;
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	return *n ? 0 : -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan scramble --input URI --output URI --service ID[:ac=HEX8][:pids=PID,...] ...\n"
		"         (--ecmg HOST:PORT[,BACKUP:PORT] --super-cas-id ID [--ecm-pid PID] [--channel-id N]) ...\n"
		"         | --fixed-cw HEX\n"
		"         [options]\n\n"
		"Scramble services of a transport stream with DVB-CSA2 or DVB-CISSA, getting ECMs\n"
		"from one or more ECMGs over DVB SimulCrypt (ETSI TS 103 197).\n\n"
		"input/output:\n"
		"  --input URI            file, '-' (stdin) or udp://[group@][addr]:port\n"
		"  --output URI           file, '-' (stdout) or udp://[local@]host:port[?ttl=N&pkts=N]\n"
		"  --service SPEC         service to scramble (repeat for more): ID, then optional\n"
		"                         :ac=HEX8 access criteria (package mask, default 00000001)\n"
		"                         :pids=0x100,0x101 scramble only these components\n"
		"CAS (repeat the group for SimulCrypt of several CAS):\n"
		"  --ecmg HOST:PORT[,BACKUP:PORT]  ECMG main (and backup) address; starts a CAS\n"
		"  --super-cas-id ID      Super_CAS_id of that CAS (CA_system_id << 16 | subsystem)\n"
		"  --ecm-pid PID          its ECM PID (default: first unused PID after the PMT PID)\n"
		"  --channel-id N         its ECM_channel_id (default 1)\n"
		"  --ecm-id N[,N...]      ECM_id of each --service, in order (default 1, 2, ...); unique\n"
		"                         across every scrambler of an ECMG (docs/scrambler.md)\n"
		"  --fixed-cw HEX         no ECMG: scramble with this CW (BISS-like, even parity)\n"
		"scrambling:\n"
		"  --algo csa2|cissa      algorithm (default csa2)\n"
		"  --no-entropy-reduction CSA2: do not set the CW checksum bytes 3 and 7\n"
		"  --cp-duration S        crypto-period, seconds (decimals allowed; default 10)\n"
		"  --clear-start S        leave everything clear for S seconds at the start\n"
		"  --ecm-rep-ms MS        ECM repetition (default: ECM_rep_period of the ECMG, else 100)\n"
		"  --ecm-timeout-ms MS    wait this long for an ECM (default max_comp_time + 500)\n"
		"  --policy any|all       scramble a CP if any / all CAS delivered its ECM (default any)\n"
		"  --on-failure keep|clear  no ECM in time: keep the last CW, or go clear (default keep)\n"
		"  --version 2|3          ECMG<=>SCS protocol version (default 2)\n"
		"EMM and insertion:\n"
		"  --mux-listen ADDR:PORT accept EMMGs (EMMG<=>MUX); adds a CAT on PID 1\n"
		"  --allow CIDR[,CIDR...] EMMGs allowed on --mux-listen (e.g. 10.1.0.0/24); others are closed\n"
		"                         before any message, their UDP datagrams dropped (default: anyone)\n"
		"  --emm-pid PID          EMM PID (default 0x1FF0)\n"
		"  --emm-max-kbps N       EMM bandwidth granted to EMMGs (default 100)\n"
		"  --max-extra-kbps N     packets added when no null packet is free (default 1000)\n"
		"  --nulls-only           only replace null packets, never raise the bitrate\n"
		"other:\n"
		"  --realtime             pace the output to the PCR (default: as fast as possible)\n"
		"  --live                 do not wait for ECMs (default for udp:// input)\n"
		"  --bitrate BPS          stream time for input without PCR (default 10000000)\n"
		"  --max-delay-ms MS      CSA2: a packet waits at most MS of stream time for a full\n"
		"                         cipher batch (default 200; more = faster, more latency)\n"
		"  --ecmg-retry-ms MS     an ECMG unreachable at start is retried after MS, doubling\n"
		"                         up to 4000 (default 250)\n"
		"  --stats-json FILE      write the counters as JSON at the end\n"
		"  --metrics ADDR:PORT    Prometheus metrics at http://ADDR:PORT/metrics (no auth: loopback\n"
		"                         or a management network)\n"
		"  --log-level LEVEL      error|warn|info|debug\n"
		"  --config FILE          read options from FILE (INI: key = value, keys are these options'\n"
		"                         names, repeat a key to repeat its option; the command line comes\n"
		"                         after it; docs/configuration.md)\n"
		"Signals: SIGUSR1 prints the counters; SIGINT/SIGTERM stop cleanly; SIGHUP re-reads\n"
		"--config FILE (log-level changes live, other changes are logged as needing a restart).\n");
}

/* "S" or "S.fff" seconds -> ms. */
static int parse_seconds_ms(const char *s, uint32_t *ms)
{
	char ip[32];
	const char *dot = strchr(s, '.');
	size_t il = dot ? (size_t)(dot - s) : strlen(s);
	uint64_t whole = 0, frac = 0;
	size_t fl = 0;

	*ms = 0;
	if (il == 0 || il >= sizeof(ip))
		return CE_ARG;
	memcpy(ip, s, il);
	ip[il] = '\0';
	if (ip[0] < '0' || ip[0] > '9' || parse_u64(ip, 4000000, &whole) != 0)
		return CE_ARG;
	if (dot) {
		fl = strlen(dot + 1);
		if (fl == 0 || fl > 3)
			return CE_ARG;
		for (size_t i = 0; i < fl; i++) {
			if (dot[1 + i] < '0' || dot[1 + i] > '9')
				return CE_ARG;
			frac = frac * 10 + (uint64_t)(dot[1 + i] - '0');
		}
		while (fl++ < 3)
			frac *= 10;
	}
	*ms = (uint32_t)(whole * 1000 + frac);
	return 0;
}

/* What SIGHUP may change live (config.h). */
static const char *const scramble_live_keys[] = { "log-level", NULL };

static int scramble_apply(void *ctx, const char *key, const char *value)
{
	enum log_level l;

	(void)ctx;
	if (!value)
		return CE_UNSUPPORTED; /* removed from the file: the value stays */
	if (strcmp(key, "log-level") != 0 || log_level_parse(value, &l) != 0)
		return CE_ARG;
	log_set_level(l);
	return 0;
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
	struct scrambler_config *cfg = NULL;
	struct scrambler *s = NULL;
	struct metrics_http *mh = NULL;
	const char *metrics_addr = NULL;
	bool super_set[SCR_MAX_CAS] = { false };
	bool live = false;
	uint16_t ecm_ids[SCR_MAX_SERVICES];
	size_t necm_ids = 0;
	int rc = 2, r;
	uint64_t v;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return 1;
	scrambler_config_init(cfg);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		struct scr_cas_cfg *cas = cfg->ncas ? &cfg->cas[cfg->ncas - 1] : NULL;

#define NEED_VAL() do { if (!val) { fprintf(stderr, "scramble: %s needs a value\n", o); goto out; } i++; } while (0)
#define NEED_CAS() do { if (!cas) { fprintf(stderr, "scramble: %s must follow --ecmg\n", o); goto out; } } while (0)
		if (strcmp(o, "--input") == 0) {
			NEED_VAL();
			cfg->input_uri = val;
		} else if (strcmp(o, "--output") == 0) {
			NEED_VAL();
			cfg->output_uri = val;
		} else if (strcmp(o, "--service") == 0) {
			NEED_VAL();
			if (cfg->nservices == SCR_MAX_SERVICES) {
				fprintf(stderr, "scramble: at most %d services\n", SCR_MAX_SERVICES);
				goto out;
			}
			if (scr_service_parse(val, &cfg->services[cfg->nservices]) != 0) {
				fprintf(stderr, "scramble: bad --service '%s' (ID[:ac=HEX8][:pids=PID,...])\n", val);
				goto out;
			}
			cfg->nservices++;
		} else if (strcmp(o, "--ecmg") == 0) {
			NEED_VAL();
			if (cfg->ncas == SCR_MAX_CAS) {
				fprintf(stderr, "scramble: at most %d CAS\n", SCR_MAX_CAS);
				goto out;
			}
			cas = &cfg->cas[cfg->ncas];
			memset(cas, 0, sizeof(*cas));
			if (scr_ecmg_parse(val, cas) != 0) {
				fprintf(stderr, "scramble: bad --ecmg '%s' (HOST:PORT[,BACKUP:PORT])\n", val);
				goto out;
			}
			cas->channel_id = 1;
			cfg->ncas++;
		} else if (strcmp(o, "--super-cas-id") == 0) {
			NEED_VAL();
			NEED_CAS();
			if (cli_u64("scramble", o, val, 0xFFFFFFFFu, &v) != 0)
				goto out;
			cas->super_cas_id = (uint32_t)v;
			super_set[cfg->ncas - 1] = true;
		} else if (strcmp(o, "--ecm-pid") == 0) {
			NEED_VAL();
			NEED_CAS();
			if (cli_u64("scramble", o, val, 0x1FFE, &v) != 0 || v < 0x20) {
				fprintf(stderr, "scramble: --ecm-pid must be 0x0020..0x1FFE\n");
				goto out;
			}
			cas->ecm_pid = (uint16_t)v;
		} else if (strcmp(o, "--ecm-id") == 0) {
			NEED_VAL();
			if (parse_ecm_ids(val, ecm_ids, &necm_ids) != 0) {
				fprintf(stderr, "scramble: --ecm-id wants N[,N...] (1..65535, at most %u)\n",
					(unsigned)SCR_MAX_SERVICES);
				goto out;
			}
		} else if (strcmp(o, "--channel-id") == 0) {
			NEED_VAL();
			NEED_CAS();
			if (cli_u64("scramble", o, val, 0xFFFF, &v) != 0)
				goto out;
			cas->channel_id = (uint16_t)v;
		} else if (strcmp(o, "--fixed-cw") == 0) {
			size_t len = 0;

			NEED_VAL();
			if (hex_decode_var(val, cfg->fixed_cw, sizeof(cfg->fixed_cw), &len) != 0 ||
				(len != 8 && len != 16)) {
				fprintf(stderr, "scramble: --fixed-cw needs 16 (CSA2) or 32 (CISSA) hex digits\n");
				goto out;
			}
			cfg->has_fixed_cw = true;
			cfg->fixed_cw_len = len;
			secret_wipe(argv[i], strlen(argv[i])); /* not visible in ps any more */
		} else if (strcmp(o, "--algo") == 0) {
			NEED_VAL();
			if (cw_alg_parse(val, &cfg->alg) != 0) {
				fprintf(stderr, "scramble: --algo must be csa2 or cissa\n");
				goto out;
			}
		} else if (strcmp(o, "--no-entropy-reduction") == 0) {
			cfg->no_entropy_reduction = true;
		} else if (strcmp(o, "--cp-duration") == 0) {
			NEED_VAL();
			if (parse_seconds_ms(val, &cfg->cp_duration_ms) != 0 || cfg->cp_duration_ms < SCR_MIN_CP_MS ||
				cfg->cp_duration_ms > SCR_MAX_CP_MS) {
				fprintf(stderr, "scramble: --cp-duration must be 0.1 .. 6553.5 seconds\n");
				goto out;
			}
		} else if (strcmp(o, "--clear-start") == 0) {
			NEED_VAL();
			if (parse_seconds_ms(val, &cfg->clear_start_ms) != 0) {
				fprintf(stderr, "scramble: bad --clear-start '%s'\n", val);
				goto out;
			}
		} else if (strcmp(o, "--ecm-rep-ms") == 0) {
			NEED_VAL();
			if (cli_u64("scramble", o, val, 60000, &v) != 0 || v < 10) {
				fprintf(stderr, "scramble: --ecm-rep-ms must be 10..60000\n");
				goto out;
			}
			cfg->ecm_rep_ms = (uint32_t)v;
		} else if (strcmp(o, "--ecm-timeout-ms") == 0) {
			NEED_VAL();
			if (cli_u64("scramble", o, val, 600000, &v) != 0 || v == 0)
				goto out;
			cfg->ecm_timeout_ms = (uint32_t)v;
		} else if (strcmp(o, "--policy") == 0) {
			NEED_VAL();
			if (strcmp(val, "any") == 0)
				cfg->policy = SCR_POLICY_ANY;
			else if (strcmp(val, "all") == 0)
				cfg->policy = SCR_POLICY_ALL;
			else {
				fprintf(stderr, "scramble: --policy must be any or all\n");
				goto out;
			}
		} else if (strcmp(o, "--on-failure") == 0) {
			NEED_VAL();
			if (strcmp(val, "keep") == 0)
				cfg->on_failure = SCR_FAIL_KEEP;
			else if (strcmp(val, "clear") == 0)
				cfg->on_failure = SCR_FAIL_CLEAR;
			else {
				fprintf(stderr, "scramble: --on-failure must be keep or clear\n");
				goto out;
			}
		} else if (strcmp(o, "--mux-listen") == 0) {
			char host[256];
			uint16_t port;

			NEED_VAL();
			if (addr_split(val, host, sizeof(host), &port) != 0 || port == 0) {
				fprintf(stderr, "scramble: bad --mux-listen '%s' (ADDR:PORT)\n", val);
				goto out;
			}
			cfg->mux_listen = val;
		} else if (strcmp(o, "--allow") == 0) {
			struct netacl acl;

			NEED_VAL();
			if (netacl_parse(val, &acl) != 0) {
				fprintf(stderr, "scramble: bad --allow '%s' (CIDR[,CIDR...], e.g. 10.1.0.0/24,192.0.2.7)\n", val);
				goto out;
			}
			cfg->mux_allow = val;
		} else if (strcmp(o, "--emm-pid") == 0) {
			NEED_VAL();
			if (cli_u64("scramble", o, val, 0x1FFE, &v) != 0 || v < 0x20) {
				fprintf(stderr, "scramble: --emm-pid must be 0x0020..0x1FFE\n");
				goto out;
			}
			cfg->emm_pid = (uint16_t)v;
		} else if (strcmp(o, "--emm-max-kbps") == 0) {
			NEED_VAL();
			if (cli_u64("scramble", o, val, 100000, &v) != 0 || v == 0)
				goto out;
			cfg->emm_max_kbps = (uint32_t)v;
		} else if (strcmp(o, "--max-extra-kbps") == 0) {
			NEED_VAL();
			if (cli_u64("scramble", o, val, 1000000, &v) != 0 || v == 0)
				goto out;
			cfg->max_extra_kbps = (uint32_t)v;
		} else if (strcmp(o, "--nulls-only") == 0) {
			cfg->nulls_only = true;
		} else if (strcmp(o, "--realtime") == 0) {
			cfg->realtime = true;
		} else if (strcmp(o, "--live") == 0) {
			live = true;
		} else if (strcmp(o, "--bitrate") == 0) {
			NEED_VAL();
			if (cli_u64("scramble", o, val, 1000000000, &v) != 0 || v < 10000)
				goto out;
			cfg->bitrate_bps = (uint32_t)v;
		} else if (strcmp(o, "--max-delay-ms") == 0) {
			NEED_VAL();
			if (cli_u64("scramble", o, val, 60000, &v) != 0 || v == 0) {
				fprintf(stderr, "scramble: --max-delay-ms must be 1..60000\n");
				goto out;
			}
			cfg->max_delay_ms = (uint32_t)v;
		} else if (strcmp(o, "--ecmg-retry-ms") == 0) {
			NEED_VAL();
			if (cli_u64("scramble", o, val, SCR_MAX_RETRY_MS, &v) != 0 || v < 10) {
				fprintf(stderr, "scramble: --ecmg-retry-ms must be 10..%u\n", SCR_MAX_RETRY_MS);
				goto out;
			}
			cfg->retry_ms = (uint32_t)v;
		} else if (strcmp(o, "--stats-json") == 0) {
			NEED_VAL();
			cfg->stats_json = val;
		} else if (strcmp(o, "--metrics") == 0) {
			NEED_VAL();
			metrics_addr = val;
		} else if (strcmp(o, "--version") == 0) {
			NEED_VAL();
			if (strcmp(val, "2") != 0 && strcmp(val, "3") != 0) {
				fprintf(stderr, "scramble: --version must be 2 or 3\n");
				goto out;
			}
			cfg->version = (uint8_t)(val[0] - '0');
		} else if (strcmp(o, "--log-level") == 0) {
			enum log_level lvl;

			NEED_VAL();
			if (log_level_parse(val, &lvl) != 0) {
				fprintf(stderr, "scramble: bad --log-level\n");
				goto out;
			}
			log_set_level(lvl);
		} else {
			fprintf(stderr, "scramble: unknown option '%s'\n", o);
			goto out;
		}
#undef NEED_VAL
#undef NEED_CAS
	}
	if (!cfg->input_uri || !cfg->output_uri || cfg->nservices == 0) {
		fprintf(stderr, "scramble: --input, --output and at least one --service are required\n");
		goto out;
	}
	if (necm_ids) {
		if (necm_ids != cfg->nservices) {
			fprintf(stderr, "scramble: --ecm-id gives %zu ECM_ids for %zu services: give one per --service\n",
				necm_ids, cfg->nservices);
			goto out;
		}
		for (size_t i = 0; i < necm_ids; i++)
			cfg->services[i].ecm_id = ecm_ids[i];
	}
	if (cfg->has_fixed_cw == (cfg->ncas > 0)) {
		fprintf(stderr, "scramble: give either --ecmg ... or --fixed-cw\n");
		goto out;
	}
	for (size_t c = 0; c < cfg->ncas; c++) {
		if (!super_set[c]) {
			fprintf(stderr, "scramble: --ecmg %s needs a --super-cas-id\n", cfg->cas[c].main_addr);
			goto out;
		}
	}
	if (cfg->has_fixed_cw && cfg->fixed_cw_len != cw_alg_key_bytes(cfg->alg)) {
		fprintf(stderr, "scramble: --fixed-cw has %zu bytes, %s needs %zu\n", cfg->fixed_cw_len,
			cw_alg_name(cfg->alg), cw_alg_key_bytes(cfg->alg));
		goto out;
	}
	if (cfg->nulls_only && cfg->max_extra_kbps) {
		fprintf(stderr, "scramble: --nulls-only and --max-extra-kbps exclude each other\n");
		goto out;
	}
	if (live)
		cfg->sync = SCR_SYNC_OFF;
	scramble_stop = 0;
	scramble_stats_req = 0;
	cfg->stop = &scramble_stop;
	cfg->stats_request = &scramble_stats_req;
	if ((r = scrambler_new(cfg, &s)) != 0) {
		fprintf(stderr, "scramble: bad configuration: %s\n", err_str(r));
		goto out;
	}
	if (metrics_addr && (r = metrics_http_start(metrics_addr, &mh)) != 0) {
		fprintf(stderr, "scramble: --metrics %s: %s\n", metrics_addr, err_str(r));
		rc = 1;
		goto out;
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGUSR1, on_usr1);
	signal(SIGPIPE, SIG_IGN);
	if ((r = cli_config_reload_start(ca, scramble_live_keys, scramble_apply, NULL)) != 0)
		fprintf(stderr, "scramble: SIGHUP thread: %s\n", err_str(r));
	r = scrambler_run(s);
	cli_config_reload_stop(ca);
	scrambler_stats_print(s, stderr);
	if (r == CE_NO_KEY) {
		fprintf(stderr, "scramble: incomplete output: the ECMGs did not serve every crypto-period "
			"(counters above; exit 1)\n");
		rc = 1;
	} else if (r != 0) {
		fprintf(stderr, "scramble: %s\n", err_str(r));
		rc = 1;
	} else {
		rc = 0;
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
out:
	metrics_http_free(mh);
	scrambler_free(s);
	if (cfg) {
		secret_wipe(cfg->fixed_cw, sizeof(cfg->fixed_cw));
		free(cfg);
	}
	return rc;
}
