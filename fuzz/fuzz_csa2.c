/*
 * fuzz_csa2.c - libFuzzer target: our CSA2 engine against libdvbcsa (the
 * independent reference) on arbitrary input. Byte 0 picks the engine
 * (avx512, avx2, sse2, portable; one the CPU lacks falls back to portable)
 * and the direction, bytes 1..8 are the CW, then each payload is a length
 * byte (mod 185) and that many bytes (zeros when the input runs out), up to
 * 1100 payloads: several batches, partial ones, short payloads left clear.
 * Any difference from dvbcsa_encrypt/dvbcsa_decrypt aborts.
 */
#include <stdlib.h>
#include <string.h>
#include <dvbcsa/dvbcsa.h>
#include "cipher/csa2_bs.h"

#define MAX_PL 1100

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "avx512", "avx2", "sse2", "portable" };
	static uint8_t ours[MAX_PL][CSA2_PAYLOAD_MAX], theirs[MAX_PL][CSA2_PAYLOAD_MAX];
	static struct cipher_payload pl[MAX_PL];
	static unsigned len[MAX_PL];
	const struct csa2_impl *im;
	struct dvbcsa_key_s *ref;
	struct csa2_key k;
	void *work;
	size_t off = 9, n = 0, m = 0;
	bool enc;

	if (size < 9)
		return 0;
	im = csa2_impl_by_name(names[data[0] & 3]);
	if (!im)
		im = &csa2_impl_portable;
	enc = data[0] & 4;
	work = aligned_alloc(64, (im->work_bytes + 63) & ~(size_t)63);
	ref = dvbcsa_key_alloc();
	if (!work || !ref)
		abort();
	csa2_key_set(&k, data + 1);
	dvbcsa_key_set(data + 1, ref);
	while (off < size && n < MAX_PL) {
		size_t take;

		len[n] = data[off++] % (CSA2_PAYLOAD_MAX + 1);
		take = size - off < len[n] ? size - off : len[n];
		memset(ours[n], 0, CSA2_PAYLOAD_MAX);
		memcpy(ours[n], data + off, take);
		off += take;
		memcpy(theirs[n], ours[n], CSA2_PAYLOAD_MAX);
		if (enc)
			dvbcsa_encrypt(ref, theirs[n], len[n]);
		else
			dvbcsa_decrypt(ref, theirs[n], len[n]);
		if (len[n] >= 8) {
			pl[m].p = ours[n];
			pl[m].len = len[n];
			m++;
		}
		n++;
	}
	for (size_t i = 0; i < m; i += im->lanes)
		im->run(&k, pl + i, m - i < im->lanes ? m - i : im->lanes, enc, work);
	for (size_t i = 0; i < n; i++)
		if (memcmp(ours[i], theirs[i], CSA2_PAYLOAD_MAX) != 0)
			abort();
	dvbcsa_key_free(ref);
	free(work);
	return 0;
}
