/*
 * demo.h - the demo scenarios of castellan-demo (castellan_demo.c holds the
 * table). A scenario drives real castellan processes through the harness
 * (e2e.h), prints what happens for a reader, records its results in the
 * run's JSON summary (the tests check that, and the files it leaves, never
 * the prose), and returns 0 only if every expectation held, else 1.
 */
#ifndef CASTELLAN_DEMO_H
#define CASTELLAN_DEMO_H

#include <stdbool.h>
#include "e2e.h"

/* Every scenario's options; castellan_demo.c says which one takes which. */
struct demo_args {
	char *input;           /* clear TS with two services (from argv) */
	char *algo;            /* scrambled: csa2 | cissa */
	unsigned cp_seconds;   /* scrambled: crypto-period */
	bool no_pcsc;          /* card: the card in-process even if pcscd is there */
};

int demo_scrambled(struct e2e *e, const struct demo_args *a);
int demo_card(struct e2e *e, const struct demo_args *a);
int demo_replace(struct e2e *e, const struct demo_args *a);

#endif
