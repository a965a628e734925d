/*
 * fuzz_psi.c - libFuzzer target: one raw section through pat/pmt/cat_parse
 * (ISO/IEC 13818-1 2.4.4); whatever parses is rebuilt, re-parsed and must
 * come back equal, and the CA descriptor walkers run on every loop.
 */
#include <stdlib.h>
#include <string.h>
#include "ts/psi.h"

static struct pmt pmt, pmt2;
static uint8_t out[PSI_MAX_SECTION];

static void one(const uint8_t *data, size_t size);

/* The input as is, and again with a correct CRC so mutations reach the
 * table bodies instead of stopping at the CRC check. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t fixed[PSI_MAX_SECTION];

	one(data, size);
	if (size >= 12 && size <= sizeof(fixed)) {
		uint32_t crc;

		memcpy(fixed, data, size);
		crc = crc32_mpeg(fixed, size - 4);
		fixed[size - 4] = (uint8_t)(crc >> 24);
		fixed[size - 3] = (uint8_t)(crc >> 16);
		fixed[size - 2] = (uint8_t)(crc >> 8);
		fixed[size - 1] = (uint8_t)crc;
		one(fixed, size);
	}
	return 0;
}

static void one(const uint8_t *data, size_t size)
{
	struct pat pat, pat2;
	struct cat cat, cat2;
	struct ca_desc ca[PSI_MAX_CA];
	size_t ol, n;

	if (pat_parse(data, size, &pat) == 0) {
		if (pat_build(&pat, out, sizeof(out), &ol) != 0 || pat_parse(out, ol, &pat2) != 0 ||
		    pat2.nprog != pat.nprog || memcmp(pat2.prog, pat.prog, sizeof(pat.prog[0]) * pat.nprog))
			abort();
	}
	if (cat_parse(data, size, &cat) == 0) {
		if (cat_build(&cat, out, sizeof(out), &ol) != 0 || cat_parse(out, ol, &cat2) != 0 ||
		    memcmp(&cat, &cat2, sizeof(cat)) != 0)
			abort();
		/* the loop is well formed, but a CA descriptor may be too short
		 * for its fields (CE_FORMAT): either answer is fine, no crash */
		if (ca_desc_find(cat.info, cat.info_len, ca, PSI_MAX_CA, &n) == 0 && n > PSI_MAX_CA)
			abort();
		ca_desc_remove(cat.info, &cat.info_len, 0x4ADC);
	}
	if (pmt_parse(data, size, &pmt) == 0) {
		if (pmt_build(&pmt, out, sizeof(out), &ol) != 0 || pmt_parse(out, ol, &pmt2) != 0 ||
		    memcmp(&pmt, &pmt2, sizeof(pmt)) != 0)
			abort();
		for (size_t i = 0; i < pmt.nes; i++)
			if (ca_desc_find(pmt.es[i].info, pmt.es[i].info_len, ca, PSI_MAX_CA, &n) == 0 &&
			    n > PSI_MAX_CA)
				abort();
	}
}
