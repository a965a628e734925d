/*
 * bench/kms.c - KMS throughput: chip-order issuance (random root keys,
 * encrypted order file written), vendor key-file export (KBKDF per chip +
 * seal + sign), black-box export. Runs on N chips (argv[2], default 100000)
 * and extrapolates to 1 million by rate. Figures to argv[1] or stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "crypto/kdf.h"
#include "kms/kms.h"
#include "crypto/pk.h"
#include "cas/cert.h"
#include "lib/util.h"

int main(int argc, char **argv)
{
	FILE *out = argc > 1 ? fopen(argv[1], "a") : stdout;
	uint64_t nchips = 100000;
	char dir[] = "/tmp/bench_kms.XXXXXX", kdir[64], cmd[128];
	struct kms *k = NULL;
	uint8_t ta[32], tapub[32], bb[32], bbpub[32], v[32], vpub[32], cert[CERT_MAX_BYTES], *file = NULL;
	size_t len = 0, n = 0, clen = 0;
	uint32_t order = 0;
	char *csv;
	uint64_t t0, t1, t2, t3, t4;

	if (!out || (argc > 2 && parse_u64(argv[2], 10000000, &nchips) != 0) || !mkdtemp(dir))
		return 2;
	snprintf(kdir, sizeof(kdir), "%s/kms", dir);
	csv = malloc(nchips * 20 + 1);
	for (uint64_t i = 0; i < nchips; i++)
		len += (size_t)snprintf(csv + len, 21, "0x%llx\n", (unsigned long long)(0x100000000ull + i * 7));
	if (kms_init(kdir, "bench", 10) != 0 || kms_open(kdir, "bench", &k) != 0 ||
	    pk_ed25519_generate(ta, tapub) != 0 || kms_operator_certify(k, ta, "bench", 1, 1, cert, &clen) != 0 ||
	    pk_x25519_generate(bb, bbpub) != 0 || pk_x25519_generate(v, vpub) != 0 || kms_vendor_add(k, 0x4adc, vpub) != 0)
		return 1;
	t0 = now_mono_us();
	if (kms_order_import(k, (uint8_t *)csv, len, &order, &n) != 0)
		return 1;
	t1 = now_mono_us();
	if (kms_vendor_export(k, 0x4adc, order, &file, &len) != 0)
		return 1;
	t2 = now_mono_us();
	free(file);
	if (kms_blackbox_export(k, order, bbpub, &file, &len) != 0)
		return 1;
	t3 = now_mono_us();
	free(file);
	{
		uint8_t root[16] = {1}, kv[16];
		struct kms_vkdf *d = NULL;
		if (kms_vkdf_new(&d) != 0)
			return 1;
		for (int i = 0; i < 100000; i++)
			if (kms_vkdf_derive(d, root, (uint32_t)i, kv) != 0)
				return 1;
		t4 = now_mono_us();
		kms_vkdf_free(d);
	}
	double imp = (double)n / ((t1 - t0) / 1e6), vex = (double)n / ((t2 - t1) / 1e6),
	       bbx = (double)n / ((t3 - t2) / 1e6), kdf = 100000.0 / ((t4 - t3) / 1e6);
	fprintf(out, "kms chips=%zu (1M figures extrapolated by rate)\n", n);
	fprintf(out, "kms order_import_keys_per_s=%.0f  est_1M_s=%.2f\n", imp, 1e6 / imp);
	fprintf(out, "kms vendor_export_keys_per_s=%.0f  est_1M_s=%.2f\n", vex, 1e6 / vex);
	fprintf(out, "kms blackbox_export_keys_per_s=%.0f  est_1M_s=%.2f\n", bbx, 1e6 / bbx);
	fprintf(out, "kms raw_vendor_kdf_per_s=%.0f\n", kdf);
	kms_close(k);
	free(csv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	if (out != stdout)
		fclose(out);
	return 0;
}
