/*
 * bench/chip.c - the secure chip's numbers (issue 4, item 9):
 *   1. module verification at boot: module_verify alone (SHA-256, two
 *      Ed25519 verifications, CRL check) and loader_boot (read the stored
 *      module, verify, build the client, SET_VENDOR in the chip process);
 *   2. ladder operation: one ECM handed to the ladder client until both CWs
 *      are in the chip's slots (parse, 2 LOAD_ECW round trips to the chip
 *      process, K_v ECB + RFC 3394 unwrap + GCM inside), next to the plain
 *      cardless path in one process (parse, unwrap, GCM, load_cw) measured in
 *      the same run. Median and p99 in microseconds.
 * Writes a markdown section to argv[1] (or stdout).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "lib/bytes.h"
#include "client/cardless.h"
#include "cas/client.h"
#include "cas/ecm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "cas/cert.h"
#include "crypto/kdf.h"
#include "cas/module.h"
#include "crypto/pk.h"
#include "lib/cursor.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/descrambler.h"
#include "client/loader.h"

#define N 2000
#define CASID 0x4AE1
#define VENDOR 0x0A01u
#define T0_S 1750000000ull

static uint64_t now_ms_v = T0_S * 1000u;

static uint64_t clk(void *ctx)
{
	(void)ctx;
	return now_ms_v;
}

static uint64_t ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void stats(uint64_t *v, size_t n, double *med_us, double *p99_us)
{
	qsort(v, n, sizeof(*v), cmp);
	*med_us = (double)v[n / 2] / 1000.0;
	*p99_us = (double)v[n * 99 / 100] / 1000.0;
}

#define CHECK(x) do { if ((x) != 0) { fprintf(stderr, "bench_chip: %s failed\n", #x); return 1; } } while (0)

int main(int argc, char **argv)
{
	static uint64_t t[N];
	static struct entitlement e, pe;
	uint8_t ta_priv[32], ta_pub[32], op_priv[32], op_pub[32], cert[CERT_MAX_BYTES], pl[64], kv[16];
	static uint8_t sec[N][ECM_MAX_SECTION];
	size_t sec_len[N], cert_len, pl_len, mod_len;
	uint8_t *mod = NULL;
	struct cert c;
	struct module_manifest m = { .vendor_id = VENDOR, .version = 1, .rollback = 1 };
	struct module_payload p = { .kind = MODULE_KIND_LADDER, .vendor_id = VENDOR, .ca_system_id = CASID };
	struct module_view v;
	struct chip_otp otp;
	struct chip_link *ctl, *host;
	struct loader *ld;
	struct keystore *ks;
	struct descrambler *d;
	struct descrambler_config dc = { .csa2_reduce = true, .now_ms = clk };
	struct cas_client cl;
	struct cas_host h;
	char dir[128], path[256], cmd[200];
	double verify_med, verify_p99, boot_med, boot_p99, lad_med, lad_p99, plain_med, plain_p99;
	FILE *out = stdout;
	pid_t pid;

	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && !(out = fopen(argv[1], "w"))) {
		perror(argv[1]);
		return 1;
	}
	/* operator, TA, module */
	CHECK(pk_ed25519_generate(ta_priv, ta_pub));
	CHECK(pk_ed25519_generate(op_priv, op_pub));
	memset(&c, 0, sizeof(c));
	c.role = CERT_ROLE_OPERATOR;
	c.serial = 1;
	c.not_after = T0_S + 86400;
	memcpy(c.subject_pub, op_pub, 32);
	snprintf(c.name, sizeof(c.name), "bench operator");
	CHECK(cert_sign(&c, ta_priv, cert, &cert_len));
	snprintf(p.keys_file, sizeof(p.keys_file), "keys.json");
	CHECK(module_payload_encode(&p, pl, sizeof(pl), &pl_len));
	CHECK(module_sign(&m, pl, pl_len, ta_pub, cert, cert_len, op_priv, &mod, &mod_len));
	/* chip and box state */
	memset(&otp, 0, sizeof(otp));
	otp.chip_id = 1;
	memset(otp.root, 0x5C, 16);
	pk_hash(ta_pub, otp.trust_root_hash);
	snprintf(dir, sizeof(dir), "/tmp/castellan-bench-chip-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0 || mkdir(dir, 0700) != 0)
		return 1;
	CHECK(keystore_generate(CASID, 3600, &ks));
	e.ca_system_id = CASID;
	e.packages = 1;
	e.start_s = T0_S - 3600;
	e.finish_s = T0_S + 7200;
	CHECK(entitlement_issue(ks, &e));
	pe = e;
	CHECK(kms_vendor_key(otp.root, VENDOR, kv));
	for (size_t i = 0; i < pe.nkeys; i++)
		CHECK(chip_protect_key(kv, pe.keys[i].key));
	snprintf(path, sizeof(path), "%s/keys.json", dir);
	CHECK(entitlement_save(&pe, path));
	CHECK(chip_spawn(&otp, &ctl, &host, &pid));
	CHECK(loader_open(dir, ctl, clk, NULL, &ld));
	CHECK(loader_install(ld, mod, mod_len));

	for (size_t i = 0; i < 200; i++) {
		uint64_t a = ns();

		CHECK(module_verify(mod, mod_len, otp.trust_root_hash, T0_S, NULL, 0, &v, NULL));
		t[i] = ns() - a;
	}
	stats(t, 200, &verify_med, &verify_p99);
	for (size_t i = 0; i < 200; i++) {
		uint64_t a = ns();

		CHECK(loader_boot(ld, VENDOR));
		t[i] = ns() - a;
	}
	stats(t, 200, &boot_med, &boot_p99);

	/* N distinct ECMs (each new: no identical-ECM shortcut) */
	for (size_t i = 0; i < N; i++) {
		struct ecm_params ep;

		memset(&ep, 0, sizeof(ep));
		ep.alg = CW_ALG_CSA2;
		ep.ecm_id = 1;
		ep.ca_system_id = CASID;
		ep.cp_number = (uint16_t)i;
		ep.timestamp_ms = T0_S * 1000u + i;
		ep.epoch = (uint32_t)(T0_S / 3600);
		ep.ac_len = 4;
		put_be32(ep.ac, 1);
		ep.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
		memset(ep.cw_even, (int)i, 8);
		memset(ep.cw_odd, (int)(i + 1), 8);
		CHECK(ecm_build(ks, &ep, sec[i], ECM_MAX_SECTION, &sec_len[i]));
	}
	/* ladder path */
	chip_link_host(host, clk, NULL, &h);
	{
		struct cas_client *lc = loader_client(ld);

		for (size_t i = 0; i < N; i++) {
			uint64_t a = ns();

			CHECK(lc->ops->ecm(lc->self, &h, 1, sec[i], sec_len[i]));
			t[i] = ns() - a;
		}
	}
	stats(t, N, &lad_med, &lad_p99);
	/* plain cardless path (clear CW in this process), same ECMs */
	CHECK(descrambler_new(&dc, &d));
	descrambler_host(d, &h);
	CHECK(cardless_client_from(&e, &cl));
	for (size_t i = 0; i < N; i++) {
		uint64_t a = ns();

		CHECK(cl.ops->ecm(cl.self, &h, 1, sec[i], sec_len[i]));
		t[i] = ns() - a;
	}
	stats(t, N, &plain_med, &plain_p99);

	fprintf(out, "## Secure chip, signed modules (bench/chip.c)\n\n");
	fprintf(out, "| operation | median µs | p99 µs |\n|---|---:|---:|\n");
	fprintf(out, "| module_verify (SHA-256 + 2 Ed25519 verify), %zu-byte module | %.1f | %.1f |\n", mod_len,
		verify_med, verify_p99);
	fprintf(out, "| loader_boot (read, verify, client from keys file, SET_VENDOR in chip) | %.1f | %.1f |\n",
		boot_med, boot_p99);
	fprintf(out, "| ECM -> both CWs in slot, ladder client + chip process (2 IPC round trips) | %.1f | %.1f |\n",
		lad_med, lad_p99);
	fprintf(out, "| ECM -> both CWs in slot, plain cardless client, in-process | %.1f | %.1f |\n", plain_med,
		plain_p99);
	fprintf(out, "\nladder / plain (median): %.2fx, same %d ECMs, same run.\n", lad_med / plain_med, N);

	cas_client_free(&cl);
	descrambler_free(d);
	loader_free(ld);
	chip_link_free(ctl);
	chip_link_free(host);
	(void)chip_wait(pid);
	keystore_free(ks);
	entitlement_wipe(&e);
	entitlement_wipe(&pe);
	free(mod);
	secret_wipe(ta_priv, 32);
	secret_wipe(op_priv, 32);
	secret_wipe(kv, 16);
	chip_otp_wipe(&otp);
	if (system(cmd) != 0)
		return 1;
	if (out != stdout)
		fclose(out);
	return 0;
}
