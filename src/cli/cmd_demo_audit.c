/*
 * cmd_demo_audit.c - `castellan demo-audit`: the options, then
 * demo_audit_run (demo_audit.h) walks the Schedule III checklist.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "compliance/demo_audit.h"

#ifndef CASTELLAN_SOURCE_DIR
#define CASTELLAN_SOURCE_DIR "."
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan demo-audit [--input FILE] [--json FILE] [--keep]\n\n"
		"Walk the regulator's audit checklist (TRAI Schedule III, docs/compliance.md) on the demo\n"
		"stream: an SMS on SQLite with four cards, the head-end (ECMG, EMMG into a MUX of its own),\n"
		"the stream scrambled with the head-end's ECMs, two reference boxes, blacklists, reports,\n"
		"reconcile and the audit log (verified, then a copy with one entry edited). Prints PASS,\n"
		"FAIL (with the reason, also for what this build does not have) or SKIP (shown by a\n"
		"benchmark or another demo, named) per item. Exit 0 if no item failed, 1 otherwise.\n\n"
		"  --input FILE   clear TS with services 101 and 102 (default: tests/data/ts-clear-2svc.ts)\n"
		"  --json FILE    also write every item's verdict as JSON\n"
		"  --keep         keep the work directory (store, keystore, logs, reports, snapshots)\n");
}

int cmd_demo_audit(int argc, char **argv)
{
	static char input[4096], self[4096];
	struct demo_audit_opts o = { 0 };
	ssize_t n;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	snprintf(input, sizeof(input), "%s/tests/data/ts-clear-2svc.ts", CASTELLAN_SOURCE_DIR);
	o.input = input;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
			o.input = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
			o.json_out = argv[++i];
		} else if (strcmp(argv[i], "--keep") == 0) {
			o.keep = true;
		} else {
			usage(stderr);
			return 2;
		}
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "demo-audit: cannot find own executable\n");
		return 1;
	}
	self[n] = '\0';
	o.self = self;
	return demo_audit_run(&o, stdout);
}
