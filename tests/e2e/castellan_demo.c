/*
 * castellan_demo.c - castellan-demo: the end-to-end demos, one scenario
 * per file of tests/e2e (demo_*.c) over the harness (e2e.h). Runs the real
 * castellan commands as separate processes, as an operator would, prints
 * the story, checks every result itself and exits 0 only if all held.
 * --summary-json writes the results for tests and scripts to read.
 *
 * A new demo: a demo_<name>.c with `int demo_<name>(struct e2e *, const
 * struct demo_args *)` (demo.h), one line in scenarios[] below, its file in
 * tests/e2e/meson.build and a test of its summary (docs/architecture.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "demo.h"
#include "lib/util.h"

#ifndef CASTELLAN_SOURCE_DIR
#define CASTELLAN_SOURCE_DIR "."
#endif

/* Scenario options beyond the common ones: each listed in the scenarios
 * that take it (opts, space-separated). */
struct scenario {
	const char *name;
	int (*run)(struct e2e *e, const struct demo_args *a);
	const char *opts;
	const char *about;
};

static const struct scenario scenarios[] = {
	/* DEMO_SCENARIOS: one line per demo; the first is the default */
	{ "scrambled", demo_scrambled, "--algo --cp-duration",
		"the head-end (SMS GET API, ECMG, EMMG, scheduler) and a two-service TS scrambled over\n"
		"DVB SimulCrypt; box A (packages 1+2) and box B (package 1) descramble it: A gets both\n"
		"services back bit-identical, B the first and not the second. Then the stream is looped\n"
		"through a scrambler with a MUX to box C (a card, no local entitlement); C is subscribed\n"
		"through the GET API and its package removed again, timing how long the box took to\n"
		"start and stop descrambling." },
	{ "card", demo_card, "--no-pcsc",
		"the set-top box with a smartcard: the ECMG, the stream scrambled over SimulCrypt\n"
		"(service 1 in package 1, service 2 in package 2), a card issued and programmed\n"
		"(`castellan card issue`, `card program`), an entitlement EMM for package 1 sent to it,\n"
		"the card served to pcscd through the vsmartcard vpcd reader (`castellan card serve`)\n"
		"and the box descrambling through PC/SC: service 1 back, service 2 refused as not\n"
		"entitled. As root it starts a pcscd of its own, otherwise it uses the running pcscd's\n"
		"\"Virtual PCD\" reader; without pcscd / vsmartcard-vpcd it says so and runs the same\n"
		"card in-process." },
	{ "replace", demo_replace, "",
		"change CAS vendor on a running box (docs/replaceable-cas.md, section 5): the KMS\n"
		"orders chips and the black box burns their OTPs; vendor A (0x4ADC) and vendor B\n"
		"(0x4AE1) get their key files and one ECMG each; the operator signs both client\n"
		"modules; the scrambler runs SimulCrypt with both ECMGs; the box (its chip a separate\n"
		"`castellan chip` process) runs A's module; B's module goes over the air, the box's\n"
		"loader installs it and switches to B while the stream plays; then ECMG A is stopped\n"
		"and B alone scrambles. Counts, per crypto-period, that no packet went undescrambled." },
};

#define NSCEN (sizeof(scenarios) / sizeof(scenarios[0]))

static void usage(FILE *f, const struct scenario *s)
{
	fprintf(f, "usage: castellan-demo [SCENARIO] [--input CLEAR.ts] [--keep] [--dir DIR] [--summary-json FILE]\n"
		   "                      [--castellan PATH] [scenario options]\n\n"
		   "End-to-end demos on this machine: the real castellan commands as separate processes,\n"
		   "every result checked against the clear input; exit 0 only if all held.\n\n");
	for (size_t i = 0; i < NSCEN; i++) {
		if (s && s != &scenarios[i])
			continue;
		fprintf(f, "%s%s:\n%s\n\n", scenarios[i].name, i == 0 ? " (default)" : "", scenarios[i].about);
	}
	fprintf(f, "options:\n"
		   "  --input FILE         clear TS with two services (default: tests/data/ts-clear-2svc.ts)\n"
		   "  --keep               keep the work directory (keys, TS files, logs)\n"
		   "  --dir DIR            work in DIR (existing; never removed) instead of a new /tmp dir\n"
		   "  --summary-json FILE  write the results as JSON (\"ok\", \"work_dir\", the scenario's figures)\n"
		   "  --castellan PATH     the castellan binary to run (default: this build's, or $CASTELLAN_BIN)\n");
	if (!s || strstr(s->opts, "--algo"))
		fprintf(f, "  --algo ALG           scrambled: csa2 (default) or cissa\n");
	if (!s || strstr(s->opts, "--cp-duration"))
		fprintf(f, "  --cp-duration S      scrambled: crypto-period in seconds (default 4)\n");
	if (!s || strstr(s->opts, "--no-pcsc"))
		fprintf(f, "  --no-pcsc            card: run the card in-process even if pcscd is there\n");
}

/* Does s take option opt (a scenario option)? */
static bool takes(const struct scenario *s, const char *opt)
{
	size_t n = strlen(opt);

	for (const char *p = strstr(s->opts, opt); p; p = strstr(p + 1, opt))
		if ((p == s->opts || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static char def_input[4096];
	const struct scenario *s = &scenarios[0];
	struct demo_args a = { .algo = "csa2", .cp_seconds = 4 };
	const char *dir = NULL, *bin = NULL, *summary = NULL;
	bool keep = false, help = false, named = false;
	struct e2e e;
	int i = 1, rc;

	if (argc > 1 && argv[1][0] != '-') {
		s = NULL;
		for (size_t k = 0; k < NSCEN; k++)
			if (strcmp(argv[1], scenarios[k].name) == 0)
				s = &scenarios[k];
		if (!s) {
			fprintf(stderr, "castellan-demo: unknown scenario '%s'\n", argv[1]);
			usage(stderr, NULL);
			return 2;
		}
		i = 2;
		named = true;
	}
	snprintf(def_input, sizeof(def_input), "%s/tests/data/ts-clear-2svc.ts", CASTELLAN_SOURCE_DIR);
	a.input = def_input;
	for (; i < argc; i++) {
		const char *o = argv[i];
		bool val = i + 1 < argc;
		uint64_t v;

		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			help = true;
		} else if (strcmp(o, "--keep") == 0) {
			keep = true;
		} else if (strcmp(o, "--no-pcsc") == 0 && takes(s, o)) {
			a.no_pcsc = true;
		} else if (!val) {
			break;
		} else if (strcmp(o, "--input") == 0) {
			a.input = argv[++i];
		} else if (strcmp(o, "--dir") == 0) {
			dir = argv[++i];
		} else if (strcmp(o, "--summary-json") == 0) {
			summary = argv[++i];
		} else if (strcmp(o, "--castellan") == 0) {
			bin = argv[++i];
		} else if (strcmp(o, "--algo") == 0 && takes(s, o)) {
			a.algo = argv[++i];
			if (strcmp(a.algo, "csa2") != 0 && strcmp(a.algo, "cissa") != 0)
				break;
		} else if (strcmp(o, "--cp-duration") == 0 && takes(s, o)) {
			if (parse_u64(argv[++i], 3600, &v) != 0 || v == 0)
				break;
			a.cp_seconds = (unsigned)v;
		} else {
			break;
		}
	}
	if (help) {
		usage(stdout, named ? s : NULL);
		return 0;
	}
	if (i < argc) {
		fprintf(stderr, "castellan-demo %s: bad or unknown option '%s'\n", s->name, argv[i]);
		usage(stderr, s);
		return 2;
	}
	if ((rc = e2e_init(&e, "castellan-demo", bin, dir)) != 0) {
		fprintf(stderr, "castellan-demo: cannot set up the work directory%s%s\n", dir ? " " : "", dir ? dir : "");
		return 1;
	}
	e.keep = keep;
	if (summary)
		snprintf(e.summary_path, sizeof(e.summary_path), "%s", summary);
	json_object_set_new(e.summary, "scenario", json_string(s->name));
	json_object_set_new(e.summary, "input", json_string(a.input));
	rc = s->run(&e, &a);
	if (rc == 0 && (keep || dir))
		printf("  files kept in %s\n", e.dir);
	e2e_finish(&e, rc == 0);
	return rc;
}
