/*
 * test_replace.c - the commands of the CAS replacement (issue 4 item 6;
 * the demo itself is tests/e2e/test_demo_replace.c), and the item 7
 * claim: vendor A's key (K_v of A for a chip, what A's key file holds)
 * cannot open vendor B's ECMs for that chip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "client/chip_client.h"
#include "testutil.h"
#include "cas/ecm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "crypto/kdf.h"
#include "crypto/pk.h"
#include "stb/chip.h"

#define CASID_B 0x4AE1
#define VENDOR_A 0x4ADCu
#define VENDOR_B 0x4AE1u
#define EPOCH_S 3600u
#define T0_MS 1700000000000ull

static uint64_t fixed_clock(void *ctx)
{
	return *(const uint64_t *)ctx;
}

/* Exit status of castellan with a shell argument string (stdout/err dropped). */
static int run_status(const char *args)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char cmd[4200];
	int st;

	assert_non_null(bin);
	snprintf(cmd, sizeof(cmd), "'%s' %s >/dev/null 2>&1", bin, args);
	st = system(cmd);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* The new commands' option sets: refused with the usage status (2), or 1
 * for a chip not in the vendor's key file; --help works. */
static void test_replace_commands_bad_args(void **state)
{
	static const struct {
		const char *args;
		int status;
	} cases[] = {
		{ "stb --input x.ts --output y.ts --chip-socket s", 2 },                 /* no --chip-control */
		{ "stb --input x.ts --output y.ts --chip-otp o --module m", 2 },         /* no --module-dir */
		{ "stb --input x.ts --output y.ts --chip-otp o --module-dir d", 2 },     /* no module */
		{ "stb --input x.ts --output y.ts --chip-otp o --module-dir d --module m --boot-vendor 1", 2 },
		{ "stb --input x.ts --output y.ts --chip-otp o --chip-socket s --chip-control c --module-dir d --module m", 2 },
		{ "stb --input x.ts --output y.ts --cw 0011223344556677 --ota", 2 },    /* --ota needs a chip */
		{ "stb --input x.ts --output y.ts --entitlement e --chip-otp o --module-dir d --module m", 2 },
		{ "stb --input x.ts --output y.ts --chip-otp /nonexistent.otp --module-dir d --module m", 1 },
		{ "stb --input x.ts --output y.ts --chip-otp o --module-dir d --boot-vendor zz", 2 },
		{ "module carousel m --pid 0x1FC0 --out o --into i", 2 },                  /* no --program */
		{ "module carousel m --pid 0x1FC0 --out o --into i --program 1 --pmt-pid 0x1FC0", 2 },
		{ "module carousel m --pid 0x1FC0 --out o --every 0", 2 },
		{ "provision --protect e --vendor-keys k --out o", 2 },                   /* no --chip */
		{ "provision --protect e --vendor-keys k --chip nothex --out o", 2 },
		{ "stb --help", 0 },
		{ "module --help", 0 },
		{ "provision --help", 0 },
	};
	char dir[] = "/tmp/castellan-trep-XXXXXX", args[1024], csv[600], ent[600], out[600];
	FILE *f;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = run_status(cases[i].args);

		if (st != cases[i].status)
			fprintf(stderr, "case %zu '%s': exit %d, want %d\n", i, cases[i].args, st, cases[i].status);
		assert_int_equal(st, cases[i].status);
	}
	/* a chip not in the vendor's key file: nothing written, exit 1 */
	assert_non_null(mkdtemp(dir));
	snprintf(csv, sizeof(csv), "%s/B.csv", dir);
	snprintf(ent, sizeof(ent), "%s/ent.json", dir);
	snprintf(out, sizeof(out), "%s/keys.json", dir);
	f = fopen(csv, "w");
	assert_non_null(f);
	fprintf(f, "0x0000ca57e11a0002,00112233445566778899aabbccddeeff\n");
	fclose(f);
	snprintf(args, sizeof(args), "provision --protect %s --vendor-keys %s --chip 0x0000ca57e11a0001 --out %s", ent,
		csv, out);
	assert_int_equal(run_status(args), 1);
	assert_null(fopen(out, "r"));
	remove(csv);
	assert_int_equal(rmdir(dir), 0);
}

/* B's ECM and B's per-chip protected entitlement, with a chip running A's
 * module (so its ladder holds K_v(A)): refused. The same ECM with the
 * chip running B: opened. And in software: E^-1_{K_v(A)}(ek2_B) is not B's
 * package key. */
static void test_vendor_a_key_cannot_open_b_ecm(void **state)
{
	static struct entitlement ent, clear_ent;
	struct chip_otp otp;
	struct keystore *ks = NULL;
	struct ecm_params p;
	struct chip_link *ctl, *host;
	struct cas_client cl;
	struct cas_host h;
	uint8_t sec[ECM_MAX_SECTION], kva[16], kvb[16], pub[32], priv[32];
	size_t sec_len = 0;
	uint64_t now = T0_MS + 1000;
	pid_t pid;

	(void)state;
	memset(&otp, 0, sizeof(otp));
	otp.chip_id = 0x0000CA57E11A0001ull;
	assert_int_equal(RAND_bytes(otp.root, 16), 1);
	assert_int_equal(pk_ed25519_generate(priv, pub), 0);
	pk_hash(pub, otp.trust_root_hash);
	assert_int_equal(kms_vendor_key(otp.root, VENDOR_A, kva), 0);
	assert_int_equal(kms_vendor_key(otp.root, VENDOR_B, kvb), 0);
	assert_memory_not_equal(kva, kvb, 16);

	assert_int_equal(keystore_generate(CASID_B, EPOCH_S, &ks), 0);
	memset(&p, 0, sizeof(p));
	p.alg = CW_ALG_CSA2;
	p.ecm_id = 1;
	p.ca_system_id = CASID_B;
	p.cp_number = 1;
	p.timestamp_ms = T0_MS;
	p.epoch = (uint32_t)(T0_MS / 1000u / EPOCH_S);
	p.ac_len = 4;
	p.ac[3] = 1;
	p.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	assert_int_equal(RAND_bytes(p.cw_even, 8), 1);
	assert_int_equal(RAND_bytes(p.cw_odd, 8), 1);
	assert_int_equal(ecm_build(ks, &p, sec, sizeof(sec), &sec_len), 0);
	ecm_params_wipe(&p);
	ent.ca_system_id = CASID_B;
	ent.card_serial = 2100000001ull;
	ent.packages = 1;
	ent.start_s = T0_MS / 1000u - 3600;
	ent.finish_s = T0_MS / 1000u + 3600;
	assert_int_equal(entitlement_issue(ks, &ent), 0);
	clear_ent = ent;
	for (size_t i = 0; i < ent.nkeys; i++)
		assert_int_equal(chip_protect_key(kvb, ent.keys[i].key), 0);
	/* software: A's key turns B's protected keys into something else */
	for (size_t i = 0; i < ent.nkeys; i++) {
		uint8_t tmp[16];

		memcpy(tmp, clear_ent.keys[i].key, 16);
		assert_int_equal(chip_protect_key(kva, tmp), 0);
		assert_memory_not_equal(tmp, ent.keys[i].key, 16);
	}
	keystore_free(ks);

	assert_int_equal(chip_spawn(&otp, &ctl, &host, &pid), 0);
	chip_link_host(host, fixed_clock, &now, &h);
	assert_int_equal(ladder_client_from(&ent, &cl), 0);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_A), 0);
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, sec, sec_len), CE_MAC);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_B), 0);
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, sec, sec_len), 0);
	cas_client_free(&cl);
	chip_link_free(ctl);
	chip_link_free(host);
	assert_int_equal(chip_wait(pid), 0);
	entitlement_wipe(&ent);
	entitlement_wipe(&clear_ent);
	secret_wipe(kva, 16);
	secret_wipe(kvb, 16);
	secret_wipe(priv, 32);
	chip_otp_wipe(&otp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vendor_a_key_cannot_open_b_ecm),
		cmocka_unit_test(test_replace_commands_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
