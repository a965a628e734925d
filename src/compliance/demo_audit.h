/*
 * demo_audit.h - `castellan demo-audit`: walk the regulator's audit
 * checklist (docs/compliance.md, TRAI Schedule III) on the demo stream.
 * In a fresh work directory it runs this very binary's commands as an
 * auditor would (SMS on SQLite, the head-end with its ECMG and EMMG into
 * a small in-process MUX, the scrambler, reference boxes, reports, the
 * audit log) and judges each item from their exit statuses and output
 * files; every item gets PASS, FAIL (with the reason: a failed check, or a
 * feature this build does not have) or SKIP (shown elsewhere: a benchmark
 * or another demo, named).
 */
#ifndef CASTELLAN_DEMO_AUDIT_H
#define CASTELLAN_DEMO_AUDIT_H

#include <stdbool.h>
#include <stdio.h>

enum demo_audit_verdict { DEMO_AUDIT_PASS, DEMO_AUDIT_FAIL, DEMO_AUDIT_SKIP };

struct demo_audit_opts {
	const char *self;        /* this castellan binary */
	const char *input;       /* clear TS with two services (the demo stream) */
	const char *json_out;    /* NULL, or write every item's verdict here (JSON) */
	bool keep;               /* keep the work directory */
};

/* Run the checklist, one line per item on out. Returns 0 if no item
 * FAILed, 1 if any did or the run could not be set up. */
int demo_audit_run(const struct demo_audit_opts *o, FILE *out);

#endif
