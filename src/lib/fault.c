/*
 * fault.c - FAULT_POINT (lib/fault.h): SIGKILL at the named point's
 * COUNT-th pass when $CASTELLAN_FAULT_AT=name:COUNT says so. Built only
 * with fault points (CASTELLAN_FAULT_POINTS).
 */
#include "lib/fault.h"

#ifdef CASTELLAN_FAULT_POINTS
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "lib/util.h"

static atomic_ulong fault_hits;

void fault_reset(void) { atomic_store(&fault_hits, 0); }

void fault_point(const char *name)
{
	const char *v = getenv("CASTELLAN_FAULT_AT"), *colon;
	size_t n;
	uint64_t want = 1;

	if (!v || !*v)
		return;
	colon = strchr(v, ':');
	n = colon ? (size_t)(colon - v) : strlen(v);
	if (n != strlen(name) || memcmp(v, name, n) != 0)
		return;
	if (colon && colon[1] && parse_u64(colon + 1, UINT32_MAX, &want) != 0)
		return; /* not a count: no kill */
	if (atomic_fetch_add(&fault_hits, 1) + 1 == want)
		raise(SIGKILL);
}
#endif
