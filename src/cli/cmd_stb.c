/*
 * cmd_stb.c - `castellan stb`: the reference set-top box on a transport
 * stream. Reads a TS (file, "-", udp://), descrambles the services it has
 * keys for (cardless client with an entitlement file, or a fixed CW) and
 * writes the whole TS out; prints one report line per service on stderr
 * and, with --report-json, the full counters. docs/stb.md.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cas/client.h"
#include "cas/entitlement.h"
#include "card/smartcard.h"
#include "cipher/cipher.h"
#include "cli/cli.h"
#include "lib/log.h"
#include "lib/util.h"
#include "stb/stb.h"
#include "ts/tsio.h"

#define STB_CLI_CHUNK_PKTS 512

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan stb --input URI --output URI\n"
		"                     (--entitlement FILE | --card FILE [--state FILE] |\n"
		"                      --cw HEX [--algo csa2|cissa] [--no-entropy-reduction])\n"
		"                     [--service ID] [--report-json FILE] [--log-level L]\n\n"
		"The reference set-top box: follows PAT, PMT and CAT, hands the ECMs and EMMs of\n"
		"its CA_system_id to the CAS client, descrambles what the client unlocks and writes\n"
		"the whole stream out (descrambled services clear, the rest as it came). One report\n"
		"line per service goes to stderr at the end.\n\n"
		"  --input URI            TS source: PATH, file:PATH, - (stdin), udp://[group@][addr]:port\n"
		"  --output URI           TS sink: PATH, file:PATH, - (stdout), udp://host:port[?ttl=N&pkts=N]\n"
		"  --entitlement FILE     cardless client with this entitlement file (castellan provision)\n"
		"  --card FILE            cardless client with this card file (provision --identity-out):\n"
		"                         entitlements and package keys come from the EMMs in the stream\n"
		"  --state FILE           with --card: keep the card state (EMM sequence, entitlement, keys)\n"
		"                         in FILE (0600) across restarts\n"
		"  --smartcard [READER]   smartcard client: the card in PC/SC reader READER (name contains;\n"
		"                         default the first with a card), e.g. `castellan card serve`\n"
		"  --cw HEX               fixed control word for every service, no ECMs (BISS-like):\n"
		"                         16 hex digits for csa2, 32 for cissa\n"
		"  --algo ALG             csa2 (default) or cissa, with --cw\n"
		"  --no-entropy-reduction use the CSA2 CW as given (default: bytes 3 and 7 are the\n"
		"                         checksums of the three bytes before them, as TSDuck does)\n"
		"  --service ID           only this service (program_number)\n"
		"  --report-json FILE     write the per-service counters as JSON\n"
		"  --log-level L          error | warn | info (default) | debug\n");
}

struct stb_cli {
	const char *input, *output, *entitlement, *cw_hex, *algo, *report_json, *card, *state;
	bool smartcard;            /* --smartcard [READER]: PC/SC card (docs/smartcard.md) */
	const char *reader;
	bool no_reduce, one_service;
	uint16_t service_id;
};

static int parse_args(int argc, char **argv, struct stb_cli *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;

		if (strcmp(a, "--input") == 0 && has_val) {
			o->input = argv[++i];
		} else if (strcmp(a, "--output") == 0 && has_val) {
			o->output = argv[++i];
		} else if (strcmp(a, "--entitlement") == 0 && has_val) {
			o->entitlement = argv[++i];
		} else if (strcmp(a, "--smartcard") == 0) {
			o->smartcard = true;
			if (has_val && strncmp(argv[i + 1], "--", 2) != 0)
				o->reader = argv[++i];
		} else if (strcmp(a, "--card") == 0 && has_val) {
			o->card = argv[++i];
		} else if (strcmp(a, "--state") == 0 && has_val) {
			o->state = argv[++i];
		} else if (strcmp(a, "--cw") == 0 && has_val) {
			o->cw_hex = argv[++i];
		} else if (strcmp(a, "--algo") == 0 && has_val) {
			o->algo = argv[++i];
		} else if (strcmp(a, "--no-entropy-reduction") == 0) {
			o->no_reduce = true;
		} else if (strcmp(a, "--service") == 0 && has_val) {
			uint64_t v;

			if (parse_u64(argv[++i], 0xFFFF, &v) != 0 || v == 0) {
				fprintf(stderr, "stb: bad --service '%s' (1..65535)\n", argv[i]);
				return 2;
			}
			o->one_service = true;
			o->service_id = (uint16_t)v;
		} else if (strcmp(a, "--report-json") == 0 && has_val) {
			o->report_json = argv[++i];
		} else if (strcmp(a, "--log-level") == 0 && has_val) {
			enum log_level l;

			if (log_level_parse(argv[++i], &l) != 0) {
				fprintf(stderr, "stb: bad --log-level '%s'\n", argv[i]);
				return 2;
			}
			log_set_level(l);
		} else {
			fprintf(stderr, "stb: unknown or incomplete option '%s'\n", a);
			return 2;
		}
	}
	if (!o->input || !o->output) {
		fprintf(stderr, "stb: --input and --output are required\n");
		return 2;
	}
	if (!!o->entitlement + !!o->cw_hex + !!o->card + !!o->smartcard != 1) {
		fprintf(stderr, "stb: give exactly one of --entitlement, --card, --smartcard or --cw\n");
		return 2;
	}
	if (o->state && !o->card) {
		fprintf(stderr, "stb: --state goes with --card\n");
		return 2;
	}
	if (!o->cw_hex && (o->algo || o->no_reduce)) {
		fprintf(stderr, "stb: --algo and --no-entropy-reduction go with --cw\n");
		return 2;
	}
	return 0;
}

/* Build the client; fills cfg's card facts. 0 or an exit status. */
static int make_client(const struct stb_cli *o, struct cas_client *client, struct stb_config *cfg)
{
	int r;

	if (o->cw_hex) {
		enum cw_alg alg = CW_ALG_CSA2;
		uint8_t cw[CW_MAX_BYTES];
		size_t klen;

		if (o->algo && cw_alg_parse(o->algo, &alg) != 0) {
			fprintf(stderr, "stb: --algo must be csa2 or cissa\n");
			return 2;
		}
		klen = cw_alg_key_bytes(alg);
		if (strlen(o->cw_hex) != 2 * klen || hex_decode(o->cw_hex, cw, klen) != 0) {
			fprintf(stderr, "stb: --cw must be %zu hex digits for %s\n", 2 * klen, cw_alg_name(alg));
			secret_wipe(cw, sizeof(cw));
			return 2;
		}
		r = stb_fixed_cw_client_new(alg, cw, klen, client);
		secret_wipe(cw, sizeof(cw));
		if (r != 0) {
			fprintf(stderr, "stb: %s\n", err_str(r));
			return 1;
		}
		return 0;
	}
	if (o->smartcard) {
		r = smartcard_client_new_pcsc(o->reader, client);
		if (r != 0) {
			fprintf(stderr, "stb: smartcard%s%s: %s\n", o->reader ? " in " : "", o->reader ? o->reader : "",
				err_str(r));
			return 1;
		}
		return 0;
	}
	if (o->card) {
		r = cardless_client_new_card(o->card, o->state, client);
		if (r != 0) {
			fprintf(stderr, "stb: card %s%s%s: %s\n", o->card, o->state ? ", state " : "",
				o->state ? o->state : "", err_str(r));
			return 1;
		}
		return 0;
	}
	{
		struct entitlement *e = calloc(1, sizeof(*e));

		if (!e)
			return 1;
		r = entitlement_load(o->entitlement, e);
		if (r == 0)
			r = cardless_client_from(e, client);
		if (r == 0) {
			cfg->have_card_packages = true;
			cfg->card_packages = e->packages;
			LOG_INFO("stb", "card %llu, packages %08X, CA_system_id 0x%04X",
				(unsigned long long)e->card_serial, (unsigned)e->packages, e->ca_system_id);
		}
		entitlement_wipe(e);
		free(e);
		if (r != 0) {
			fprintf(stderr, "stb: entitlement %s: %s\n", o->entitlement, err_str(r));
			return 1;
		}
	}
	return 0;
}

int cmd_stb(int argc, char **argv)
{
	struct stb_cli o = { 0 };
	struct stb_config cfg = { 0 };
	struct cas_client client = { 0 };
	struct stb *box = NULL;
	struct ts_in *in = NULL;
	struct ts_out *out = NULL;
	struct stb_report *rep = NULL;
	struct ts_io_stats ist;
	uint8_t *buf = NULL;
	int rc = 1, r;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if ((rc = parse_args(argc, argv, &o)) != 0) {
		if (rc == 2)
			usage(stderr);
		return rc;
	}
	rc = 1;
	if ((r = make_client(&o, &client, &cfg)) != 0)
		return r;
	cfg.client = &client;
	cfg.one_service = o.one_service;
	cfg.service_id = o.service_id;
	cfg.csa2_reduce = !o.no_reduce;
	buf = malloc((size_t)STB_CLI_CHUNK_PKTS * TS_PACKET_BYTES);
	rep = calloc(1, sizeof(*rep));
	if (!buf || !rep)
		goto out;
	if ((r = stb_new(&cfg, &box)) != 0) {
		fprintf(stderr, "stb: %s\n", err_str(r));
		goto out;
	}
	if ((r = ts_in_open(o.input, &in)) != 0) {
		fprintf(stderr, "stb: input %s: %s\n", o.input, err_str(r));
		goto out;
	}
	if ((r = ts_out_open(o.output, &out)) != 0) {
		fprintf(stderr, "stb: output %s: %s\n", o.output, err_str(r));
		goto out;
	}
	ts_in_set_timeout_ms(in, 500);
	g_stop = 0;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	LOG_INFO("stb", "client %s, CA_system_id 0x%04X, %s -> %s", client.ops->name,
		client.ops->ca_system_id(client.self), o.input, o.output);
	while (!g_stop) {
		size_t n = 0;

		r = ts_in_read(in, buf, STB_CLI_CHUNK_PKTS, &n);
		if (r == CE_TIMEOUT)
			continue;
		if (r != 0) {
			fprintf(stderr, "stb: read %s: %s\n", o.input, err_str(r));
			goto out;
		}
		if (n == 0)
			break;
		if ((r = stb_feed(box, buf, n, buf)) != 0) {
			fprintf(stderr, "stb: %s\n", err_str(r));
			goto out;
		}
		if ((r = ts_out_write(out, buf, n)) != 0) {
			fprintf(stderr, "stb: write %s: %s\n", o.output, err_str(r));
			goto out;
		}
	}
	r = ts_out_close(out);
	out = NULL;
	if (r != 0) {
		fprintf(stderr, "stb: close %s: %s\n", o.output, err_str(r));
		goto out;
	}
	if (stb_report(box, rep) != 0)
		goto out;
	ts_in_stats(in, &ist);
	fprintf(stderr, "stb: %llu packets (%llu invalid, %llu resyncs, %llu section errors); "
		"EMMs %llu seen, %llu accepted, %llu not for this card, %llu refused\n",
		(unsigned long long)rep->packets, (unsigned long long)rep->bad_packets,
		(unsigned long long)ist.resyncs, (unsigned long long)rep->section_errors,
		(unsigned long long)rep->emm_seen, (unsigned long long)rep->emm_accepted,
		(unsigned long long)rep->emm_not_addressed, (unsigned long long)rep->emm_refused);
	if (rep->nservices == 0)
		fprintf(stderr, "stb: no service found (no PAT/PMT%s)\n", o.one_service ? " for --service" : "");
	for (size_t i = 0; i < rep->nservices; i++) {
		char line[512];

		if (stb_report_line(rep, &rep->svc[i], line, sizeof(line)) == 0 || line[0])
			fprintf(stderr, "%s\n", line);
	}
	if (o.report_json) {
		char *json = NULL;

		if ((r = stb_report_json(rep, &json)) != 0 ||
		    (r = file_write_atomic(o.report_json, json, strlen(json), 0644)) != 0) {
			fprintf(stderr, "stb: report %s: %s\n", o.report_json, err_str(r));
			free(json);
			goto out;
		}
		free(json);
	}
	rc = 0;
out:
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (out)
		(void)ts_out_close(out);
	ts_in_close(in);
	stb_free(box);
	if (client.ops)
		cas_client_free(&client);
	free(buf);
	free(rep);
	return rc;
}
