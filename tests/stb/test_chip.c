/*
 * test_chip.c - the emulated secure chip: K-LAD and ECM ladders through a
 * real chip process, the control/host channel split, vendor binding, bad
 * requests, the paired-card ladder op (chain 0x03: only the paired chip
 * opens the card's CW), and the proof that the box process never holds a CW (a scan of
 * its whole writable memory after descrambling).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include "lib/bytes.h"
#include "client/chip_client.h"
#include "ecmforge.h"
#include "testutil.h"
#include "cas/ecm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "cipher/cipher.h"
#include "crypto/kdf.h"
#include "kms/otp.h"
#include "crypto/pk.h"
#include "lib/cursor.h"
#include "stb/chip.h"
#include "stb/descrambler.h"
#include "stb/pvr.h"

#define CASID 0x4AE1
#define EPOCH_S 3600u
#define T0_MS 1700000000000ull
#define NPKT 32
#define VENDOR_A 0x00000A01u
#define VENDOR_B 0x00000B02u

static void rnd(uint8_t *p, size_t n)
{
	assert_int_equal(RAND_bytes(p, (int)n), 1);
}

static uint64_t fixed_clock(void *ctx)
{
	return *(const uint64_t *)ctx;
}

static void make_otp(struct chip_otp *o)
{
	uint8_t priv[32], pub[32];

	memset(o, 0, sizeof(*o));
	o->chip_id = 0x0000C0FFEE000001ull;
	for (int i = 0; i < 16; i++)
		o->root[i] = (uint8_t)(0x30 + 7 * i);
	assert_int_equal(pk_ed25519_generate(priv, pub), 0);
	pk_hash(pub, o->trust_root_hash);
	secret_wipe(priv, sizeof(priv));
}

/* NPKT clear PES packets on PID 0x100 (payload starts 00 00 01). */
static void make_clear(uint8_t *pkts)
{
	for (int i = 0; i < NPKT; i++) {
		uint8_t *p = pkts + i * 188;

		p[0] = 0x47;
		p[1] = 0x41;
		p[2] = 0x00;
		p[3] = (uint8_t)(0x10 | (i & 15));
		for (int j = 4; j < 188; j++)
			p[j] = (uint8_t)(i * 31 + j);
		p[4] = 0;
		p[5] = 0;
		p[6] = 1;
	}
}

static void scramble(enum cw_alg alg, const uint8_t *cw, enum cw_parity par, uint8_t *pkts)
{
	struct ts_cipher *c = ts_cipher_new(alg, true);
	uint8_t *v[NPKT];

	assert_non_null(c);
	assert_int_equal(ts_cipher_set_key(c, par, cw, cw_alg_key_bytes(alg)), 0);
	for (int i = 0; i < NPKT; i++)
		v[i] = pkts + i * 188;
	assert_int_equal(ts_cipher_scramble(c, v, NPKT, par), 0);
	ts_cipher_free(c);
}

static void test_klad_ladder(void **state)
{
	struct chip_otp otp;
	struct chip_link *ctl, *host;
	struct chip_info info;
	uint8_t kv[16], ks[16], cw[16], chain[64], clear[NPKT * 188], buf[NPKT * 188];
	size_t chain_len, done, missing;
	pid_t pid;

	(void)state;
	make_otp(&otp);
	assert_int_equal(chip_spawn(&otp, &ctl, &host, &pid), 0);
	assert_int_equal(chip_link_info(host, &info), 0);
	assert_true(info.chip_id == otp.chip_id);
	assert_false(info.vendor_set);
	assert_memory_equal(info.trust_root_hash, otp.trust_root_hash, 32);

	/* the vendor side: K_v from the KMS, a session key and a CW */
	assert_int_equal(kms_vendor_key(otp.root, VENDOR_A, kv), 0);
	for (int i = 0; i < 16; i++) {
		ks[i] = (uint8_t)(0xA0 ^ i);
		cw[i] = (uint8_t)(0x5A + 3 * i);
	}
	assert_int_equal(chip_chain_klad(kv, ks, cw, 16, chain, sizeof(chain), &chain_len), 0);
	assert_int_equal(chain_len, 33);
	make_clear(clear);
	memcpy(buf, clear, sizeof(buf));
	scramble(CW_ALG_CISSA, cw, CW_ODD, buf);

	/* no vendor yet: the ladder refuses */
	assert_int_equal(chip_link_load_ecw(host, 1, DESCR_TAG_SERVICE, CW_ALG_CISSA, CW_ODD, chain, chain_len), CE_STATE);
	/* the host channel cannot choose the vendor */
	assert_int_equal(chip_link_set_vendor(host, VENDOR_A), CE_STATE);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_A), 0);
	assert_int_equal(chip_link_info(ctl, &info), 0);
	assert_true(info.vendor_set);
	assert_int_equal(info.vendor_id, VENDOR_A);
	/* the control channel cannot load or descramble */
	assert_int_equal(chip_link_load_ecw(ctl, 1, DESCR_TAG_SERVICE, CW_ALG_CISSA, CW_ODD, chain, chain_len), CE_STATE);

	assert_int_equal(chip_link_load_ecw(host, 1, DESCR_TAG_SERVICE, CW_ALG_CISSA, CW_ODD, chain, chain_len), 0);
	assert_int_equal(chip_link_descramble(host, 1, DESCR_TAG_SERVICE, buf, NPKT, &done, &missing), 0);
	assert_int_equal(done, NPKT);
	assert_int_equal(missing, 0);
	assert_memory_equal(buf, clear, sizeof(buf));

	/* another vendor's module: slots dropped, and the same chain gives a
	 * different (wrong) CW: K_v is bound to the running vendor */
	memcpy(buf, clear, sizeof(buf));
	scramble(CW_ALG_CISSA, cw, CW_ODD, buf);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_B), 0);
	assert_int_equal(chip_link_descramble(host, 1, DESCR_TAG_SERVICE, buf, NPKT, &done, &missing), 0);
	assert_int_equal(done, 0);
	assert_int_equal(missing, NPKT);
	assert_int_equal(chip_link_load_ecw(host, 1, DESCR_TAG_SERVICE, CW_ALG_CISSA, CW_ODD, chain, chain_len), 0);
	assert_int_equal(chip_link_descramble(host, 1, DESCR_TAG_SERVICE, buf, NPKT, &done, &missing), 0);
	assert_int_equal(done, NPKT);
	assert_memory_not_equal(buf, clear, sizeof(buf));

	/* CSA2: an 8-byte CW padded to one block */
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_A), 0);
	assert_int_equal(chip_chain_klad(kv, ks, cw, 8, chain, sizeof(chain), &chain_len), 0);
	memcpy(buf, clear, sizeof(buf));
	{
		uint8_t cw8[8];

		memcpy(cw8, cw, 8);
		csa2_reduce(cw8);
		scramble(CW_ALG_CSA2, cw8, CW_EVEN, buf);
	}
	assert_int_equal(chip_link_load_ecw(host, 7, 0x0123, CW_ALG_CSA2, CW_EVEN, chain, chain_len), 0);
	assert_int_equal(chip_link_descramble(host, 7, 0x0123, buf, NPKT, &done, NULL), 0);
	assert_int_equal(done, NPKT);
	assert_memory_equal(buf, clear, sizeof(buf));
	assert_int_equal(chip_link_drop(host, 7), 0);

	chip_link_free(ctl);
	chip_link_free(host);
	assert_int_equal(chip_wait(pid), 0);
	secret_wipe(kv, sizeof(kv));
	chip_otp_wipe(&otp);
}

/* Head-end + vendor side of the ECM path: keystore, an ECM for packages,
 * the box's protected entitlement (ek2 = E_{K_v}(K_pkg)). */
struct ecm_fixture {
	uint8_t sec[ECM_MAX_SECTION];
	size_t sec_len;
	uint8_t clear[NPKT * 188];
	uint8_t scr[NPKT * 188];
	struct entitlement ent; /* protected */
	uint8_t cw_masked[16], mask[16];
	uint8_t k0[16];         /* K_pkg(epoch, 0): what a package-0 forger holds */
};

/* ecm_ext / card_ext: one extended package (>= 32) of the channel / of the
 * card besides the masks, 0 for none. */
static void ecm_fixture_x(const struct chip_otp *otp, uint32_t vendor, uint32_t ecm_pkgs, uint16_t ecm_ext,
	uint32_t card_pkgs, uint16_t card_ext, struct ecm_fixture *f)
{
	struct keystore *ks = NULL;
	struct ecm_params p;
	uint8_t kv[16];

	memset(f, 0, sizeof(*f));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	memset(&p, 0, sizeof(p));
	p.alg = CW_ALG_CISSA;
	p.ecm_id = 1;
	p.ca_system_id = CASID;
	p.cp_number = 3;
	p.timestamp_ms = T0_MS;
	p.epoch = (uint32_t)(T0_MS / 1000u / EPOCH_S);
	p.ac_len = 4;
	put_be32(p.ac, ecm_pkgs);
	if (ecm_ext) { /* format v3 */
		p.ac_len = 6;
		put_be16(p.ac + 4, ecm_ext);
	}
	p.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	rnd(p.cw_even, 16);
	rnd(p.cw_odd, 16);
	assert_int_equal(ecm_build(ks, &p, f->sec, sizeof(f->sec), &f->sec_len), 0);
	{
		struct pkg_key k0;

		assert_int_equal(keystore_package_key(ks, p.epoch, 0, &k0), 0);
		memcpy(f->k0, k0.key, 16);
		pkg_key_wipe(&k0);
	}
	make_clear(f->clear);
	memcpy(f->scr, f->clear, sizeof(f->scr));
	scramble(CW_ALG_CISSA, p.cw_odd, CW_ODD, f->scr);
	rnd(f->mask, 16);
	for (int i = 0; i < 16; i++)
		f->cw_masked[i] = p.cw_odd[i] ^ f->mask[i];
	ecm_params_wipe(&p);

	f->ent.ca_system_id = CASID;
	f->ent.card_serial = 2100000001ull;
	f->ent.packages = card_pkgs;
	f->ent.next = card_ext ? 1 : 0;
	f->ent.ext[0] = card_ext;
	f->ent.start_s = T0_MS / 1000u - 3600;
	f->ent.finish_s = T0_MS / 1000u + 3600;
	assert_int_equal(entitlement_issue(ks, &f->ent), 0);
	assert_int_equal(kms_vendor_key(otp->root, vendor, kv), 0);
	for (size_t i = 0; i < f->ent.nkeys; i++)
		assert_int_equal(chip_protect_key(kv, f->ent.keys[i].key), 0);
	secret_wipe(kv, sizeof(kv));
	keystore_free(ks);
}

static void ecm_fixture(const struct chip_otp *otp, uint32_t vendor, uint32_t ecm_pkgs, uint32_t card_pkgs,
	struct ecm_fixture *f)
{
	ecm_fixture_x(otp, vendor, ecm_pkgs, 0, card_pkgs, 0, f);
}

/* Issue 16 item 8 through the secure chip: a channel in package 40 only
 * (ECM v3); the box of package 40 descrambles through its chip (chain 0x02
 * with a u16 package); the box of 41 is refused by its client
 * (CE_NOT_ENTITLED), and a patched client that hands the chip 41's
 * protected key as package 40's gets CE_MAC from the chip. */
static void test_ecm_ladder_extended(void **state)
{
	static struct ecm_fixture f;
	struct chip_otp otp;
	struct chip_link *ctl, *host;
	struct cas_client cl;
	struct cas_host h;
	uint64_t now = T0_MS + 1000;
	uint8_t buf[NPKT * 188];
	size_t done;
	pid_t pid;

	(void)state;
	make_otp(&otp);
	ecm_fixture_x(&otp, VENDOR_A, 0, 40, 0, 40, &f);
	assert_int_equal(f.sec[3], ECM_FORMAT_V3);
	assert_true(f.ent.nkeys >= 1);
	for (size_t i = 0; i < f.ent.nkeys; i++)
		assert_int_equal(f.ent.keys[i].pkg, 40);
	assert_int_equal(chip_spawn(&otp, &ctl, &host, &pid), 0);
	chip_link_host(host, fixed_clock, &now, &h);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_A), 0);
	assert_int_equal(ladder_client_from(&f.ent, &cl), 0);
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), 0);
	memcpy(buf, f.scr, sizeof(buf));
	assert_int_equal(chip_link_descramble(host, 101, DESCR_TAG_SERVICE, buf, NPKT, &done, NULL), 0);
	assert_int_equal(done, NPKT);
	assert_memory_equal(buf, f.clear, sizeof(buf));
	cas_client_free(&cl);
	chip_link_free(ctl);
	chip_link_free(host);
	assert_int_equal(chip_wait(pid), 0);

	/* the box of package 41 only (same channel) */
	ecm_fixture_x(&otp, VENDOR_A, 0, 40, 0, 41, &f);
	assert_int_equal(chip_spawn(&otp, &ctl, &host, &pid), 0);
	chip_link_host(host, fixed_clock, &now, &h);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_A), 0);
	assert_int_equal(ladder_client_from(&f.ent, &cl), 0);
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), CE_NOT_ENTITLED);
	cas_client_free(&cl);
	/* patched: 41's protected key presented as package 40's */
	f.ent.ext[0] = 40;
	for (size_t i = 0; i < f.ent.nkeys; i++)
		f.ent.keys[i].pkg = 40;
	assert_int_equal(ladder_client_from(&f.ent, &cl), 0);
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), CE_MAC);
	memcpy(buf, f.scr, sizeof(buf));
	(void)chip_link_descramble(host, 101, DESCR_TAG_SERVICE, buf, NPKT, &done, NULL);
	assert_memory_not_equal(buf, f.clear, sizeof(buf));
	cas_client_free(&cl);
	chip_link_free(ctl);
	chip_link_free(host);
	assert_int_equal(chip_wait(pid), 0);
	chip_otp_wipe(&otp);
}

static void test_ecm_ladder_client(void **state)
{
	static struct ecm_fixture f;
	struct chip_otp otp;
	struct chip_link *ctl, *host;
	struct cas_client cl;
	struct cas_host h;
	uint64_t now = T0_MS + 1000;
	uint8_t buf[NPKT * 188], bad[ECM_MAX_SECTION];
	size_t done;
	pid_t pid;

	(void)state;
	make_otp(&otp);
	ecm_fixture(&otp, VENDOR_A, 0x00000002, 0x00000003, &f);
	assert_int_equal(chip_spawn(&otp, &ctl, &host, &pid), 0);
	chip_link_host(host, fixed_clock, &now, &h);
	assert_null(h.load_cw); /* by construction: no clear-CW path on a ladder box */
	assert_int_equal(ladder_client_from(&f.ent, &cl), 0);
	assert_int_equal(cl.ops->ca_system_id(cl.self), CASID);

	/* no module running: the chip refuses */
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), CE_STATE);
	/* vendor B's module running: the protected keys were made for A's K_v */
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_B), 0);
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), CE_MAC);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_A), 0);
	/* tampered ECM: parse passes, the chip's GCM check refuses */
	memcpy(bad, f.sec, f.sec_len);
	bad[f.sec_len - 20] ^= 0x01;
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, bad, f.sec_len), CE_MAC);
	/* a just-started box whose clock is 11 minutes past the ECM: stale
	 * (issue 12 item 10), refused before the chip */
	now = T0_MS + 11ull * 60 * 1000;
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), CE_REPLAY);
	/* box clock outside the subscription */
	now = T0_MS + 7200ull * 1000u;
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), CE_EXPIRED);
	now = T0_MS + 1000;

	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), 0);
	memcpy(buf, f.scr, sizeof(buf));
	assert_int_equal(chip_link_descramble(host, 101, DESCR_TAG_SERVICE, buf, NPKT, &done, NULL), 0);
	assert_int_equal(done, NPKT);
	assert_memory_equal(buf, f.clear, sizeof(buf));
	cas_client_free(&cl);

	/* a card without the channel's package: refused before the chip */
	f.ent.packages = 0x00000001;
	assert_int_equal(ladder_client_from(&f.ent, &cl), 0);
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), CE_NOT_ENTITLED);
	cas_client_free(&cl);
	/* a client that skips the check still has only protected keys for
	 * package 0: the chip cannot open the ECM with them (no wrap for it) */

	chip_link_free(ctl);
	chip_link_free(host);
	assert_int_equal(chip_wait(pid), 0);
	chip_otp_wipe(&otp);
}

/* Issue 12 item 9 through the secure chip: a subscriber of package 0 re-seals
 * an ECM of packages 0 and 1 (its own CWs, a later timestamp, package 0's
 * wrap made again); the box holds package 1 only, and its chip refuses the
 * forgery (CE_MAC): the chip gets the whole section and checks package 1's
 * MAC of it. */
static void test_ecm_ladder_forgery(void **state)
{
	static struct ecm_fixture f;
	struct chip_otp otp;
	struct chip_link *ctl, *host;
	struct cas_client cl;
	struct cas_host h;
	uint64_t now = T0_MS + 1000;
	uint8_t forged[ECM_MAX_SECTION], evil[32];
	pid_t pid;

	(void)state;
	make_otp(&otp);
	ecm_fixture(&otp, VENDOR_A, 0x00000003, 0x00000002, &f);
	assert_int_equal(chip_spawn(&otp, &ctl, &host, &pid), 0);
	chip_link_host(host, fixed_clock, &now, &h);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_A), 0);
	assert_int_equal(ladder_client_from(&f.ent, &cl), 0);
	memset(evil, 0xEE, sizeof(evil));
	assert_true(tu_ecm_forge(f.sec, f.sec_len, 0, f.k0, 0x0777, T0_MS + 2000, evil, true, forged));
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, forged, f.sec_len), CE_MAC);
	/* control: the genuine ECM loads */
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), 0);
	cas_client_free(&cl);
	chip_link_free(ctl);
	chip_link_free(host);
	assert_int_equal(chip_wait(pid), 0);
	chip_otp_wipe(&otp);
}

/* Scan this process's writable memory for the CW without ever forming it:
 * compare mem ^ mask against the masked CW. Unreadable pages are skipped
 * (pread on /proc/self/mem returns EIO). Returns the number of hits. */
static size_t scan_memory(const uint8_t masked[16], const uint8_t mask[16])
{
	FILE *maps = fopen("/proc/self/maps", "r");
	int mem = open("/proc/self/mem", O_RDONLY);
	static uint8_t chunk[1 << 16];
	char line[512];
	size_t hits = 0;

	assert_non_null(maps);
	assert_true(mem >= 0);
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];

		char *end = NULL, *sp;

		lo = strtoul(line, &end, 16);
		if (!end || *end != '-')
			continue;
		hi = strtoul(end + 1, &end, 16);
		sp = end ? strchr(end, ' ') : NULL;
		if (!sp || strlen(sp) < 3)
			continue;
		memcpy(perms, sp + 1, 2);
		if (perms[0] != 'r' || perms[1] != 'w')
			continue;
		if (hi - lo > (256ul << 20))
			continue;
		for (unsigned long a = lo; a < hi; a += sizeof(chunk) - 15) {
			size_t want = hi - a < sizeof(chunk) ? hi - a : sizeof(chunk);
			ssize_t got = pread(mem, chunk, want, (off_t)a);

			if (got < 16)
				break;
			for (ssize_t i = 0; i + 16 <= got; i++) {
				int j = 0;

				while (j < 16 && (uint8_t)(chunk[i + j] ^ mask[j]) == masked[j])
					j++;
				if (j == 16)
					hits++;
			}
			if ((size_t)got < want)
				break;
		}
	}
	memset(chunk, 0, sizeof(chunk));
	close(mem);
	fclose(maps);
	return hits;
}

static void test_box_never_holds_cw(void **state)
{
	static struct ecm_fixture f;
	struct chip_otp otp;
	struct chip_link *ctl, *host;
	struct cas_client cl;
	struct cas_host h;
	uint64_t now = T0_MS + 1000;
	uint8_t buf[NPKT * 188];
	uint8_t *plant;
	size_t done, got = 0;
	int fd[2];
	pid_t pid, child;

	(void)state;
	make_otp(&otp);
	/* the head-end and the vendor run in another process: this one (the
	 * box: host + client) only ever receives the ECM, the protected
	 * entitlement, the stream and the CW masked with a random pad */
	assert_int_equal(pipe(fd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		static struct ecm_fixture cf;
		const uint8_t *p = (const uint8_t *)&cf;
		size_t left = sizeof(cf);

		close(fd[0]);
		ecm_fixture(&otp, VENDOR_A, 0x00000001, 0x00000001, &cf);
		while (left) {
			ssize_t k = write(fd[1], p, left);

			if (k <= 0)
				_exit(1);
			p += k;
			left -= (size_t)k;
		}
		_exit(0);
	}
	close(fd[1]);
	while (got < sizeof(f)) {
		ssize_t k = read(fd[0], (uint8_t *)&f + got, sizeof(f) - got);

		assert_true(k > 0);
		got += (size_t)k;
	}
	close(fd[0]);
	assert_int_equal(waitpid(child, NULL, 0), child);

	assert_int_equal(chip_spawn(&otp, &ctl, &host, &pid), 0);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_A), 0);
	chip_link_host(host, fixed_clock, &now, &h);
	assert_int_equal(ladder_client_from(&f.ent, &cl), 0);
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, f.sec, f.sec_len), 0);
	memcpy(buf, f.scr, sizeof(buf));
	assert_int_equal(chip_link_descramble(host, 101, DESCR_TAG_SERVICE, buf, NPKT, &done, NULL), 0);
	assert_int_equal(done, NPKT);
	assert_memory_equal(buf, f.clear, sizeof(buf)); /* the CW was used... */
	assert_int_equal(scan_memory(f.cw_masked, f.mask), 0); /* ...and is nowhere in the box */

	/* the scanner works: plant the CW on the heap and it is found */
	plant = malloc(64);
	assert_non_null(plant);
	for (int i = 0; i < 16; i++)
		plant[8 + i] = f.cw_masked[i] ^ f.mask[i];
	assert_true(scan_memory(f.cw_masked, f.mask) >= 1);
	secret_wipe(plant, 64);
	free(plant);

	cas_client_free(&cl);
	chip_link_free(ctl);
	chip_link_free(host);
	assert_int_equal(chip_wait(pid), 0);
	chip_otp_wipe(&otp);
}

/* Requests straight into the chip's handler: every malformed one refused. */
static void test_bad_requests(void **state)
{
	struct chip_otp otp;
	struct chip *c;
	static uint8_t resp[CHIP_MAX_BODY];
	size_t rl;
	static const struct {
		enum chip_role role;
		uint8_t op;
		const char *hex;
		int want;
	} cases[] = {
		{ CHIP_ROLE_HOST, 0x7F, "", CE_UNSUPPORTED },
		{ CHIP_ROLE_HOST, CHIP_OP_INFO, "00", CE_TRAILING },
		{ CHIP_ROLE_CONTROL, CHIP_OP_SET_VENDOR, "000A01", CE_TRUNCATED },
		{ CHIP_ROLE_CONTROL, CHIP_OP_SET_VENDOR, "00000A0100", CE_TRAILING },
		{ CHIP_ROLE_HOST, CHIP_OP_SET_VENDOR, "00000A01", CE_STATE },
		{ CHIP_ROLE_HOST, CHIP_OP_CLEAR_VENDOR, "", CE_STATE },
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "0001", CE_TRUNCATED },
		/* chain length beyond the body */
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "00011FFF02010021" "01", CE_TRUNCATED },
		/* parity 2 */
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "00011FFF02020001" "01", CE_ARG },
		/* tag beyond 13 bits */
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "00012000020100 01" "01", CE_ARG },
		{ CHIP_ROLE_CONTROL, CHIP_OP_LOAD_ECW, "00011FFF02010001" "01", CE_STATE },
		/* unknown chain type / short K-LAD chain / bad alg (vendor set below) */
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "00011FFF02010001" "09", CE_UNSUPPORTED },
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "00011FFF02010002" "0100", CE_TRUNCATED },
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "00011FFF07010001" "01", CE_ARG },
		/* ECM chain (ek2 | pkg u16 | sec_len | section): a 1-byte section /
		 * a byte after the section / the section cut short */
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW,
		  "00011FFF02010016" "02" "00000000000000000000000000000000" "0000" "0001" "80", CE_TRUNCATED },
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW,
		  "00011FFF02010016" "02" "00000000000000000000000000000000" "0000" "0000" "80", CE_TRAILING },
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW,
		  "00011FFF02010016" "02" "00000000000000000000000000000000" "0000" "0002" "80", CE_TRUNCATED },
		/* paired chain: no ECW / card serial 0 / a byte too many */
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "00011FFF02010009" "03" "000000007D2B7520", CE_TRUNCATED },
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "00011FFF02010019" "03" "0000000000000000"
		  "00000000000000000000000000000000", CE_FORMAT },
		{ CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, "00011FFF0201001A" "03" "000000007D2B7520"
		  "00000000000000000000000000000000" "00", CE_TRAILING },
		{ CHIP_ROLE_HOST, CHIP_OP_DESCRAMBLE, "000100010081", CE_LIMIT },
		{ CHIP_ROLE_HOST, CHIP_OP_DESCRAMBLE, "0001000100010047", CE_TRUNCATED },
		{ CHIP_ROLE_CONTROL, CHIP_OP_DESCRAMBLE, "000100010000", CE_STATE },
		{ CHIP_ROLE_HOST, CHIP_OP_DROP, "00", CE_TRUNCATED },
	};

	(void)state;
	make_otp(&otp);
	assert_int_equal(chip_new(&otp, true, &c), 0);
	assert_int_equal(chip_handle(c, CHIP_ROLE_CONTROL, CHIP_OP_SET_VENDOR, (const uint8_t *)"\0\0\x0a\x01", 4, resp,
		sizeof(resp), &rl), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t body[512];
		char hex[1024];
		size_t n = 0, k = 0;

		for (const char *s = cases[i].hex; *s; s++)
			if (*s != ' ')
				hex[k++] = *s;
		hex[k] = '\0';
		assert_int_equal(hex_decode_var(hex, body, sizeof(body), &n), 0);
		int r = chip_handle(c, cases[i].role, cases[i].op, body, n, resp, sizeof(resp), &rl);
		if (r != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, r, cases[i].want);
		assert_int_equal(rl, 0);
	}
	chip_free(c);
	chip_otp_wipe(&otp);
}

/* ---- "load paired ECW": a paired smartcard's CW for one chip ---- */

#define CARD_SERIAL 2100000032ull

/* K_pair by hand: one AES-128-CMAC over the SP 800-108 counter-mode input
 * [1]_32 || label || 0x00 || serial u64 || [128]_32 (EVP_MAC, not EVP_KDF:
 * an independent computation of what chip_pairing_key derives). */
static void pairing_key_by_hand(const uint8_t kv[16], uint64_t serial, uint8_t out[16])
{
	static const char label[] = "castellan pairing key";
	uint8_t msg[64];
	size_t n = 0, outl = 0;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
	EVP_MAC_CTX *x = EVP_MAC_CTX_new(mac);
	OSSL_PARAM prm[2] = { OSSL_PARAM_construct_utf8_string("cipher", (char *)"AES-128-CBC", 0),
		OSSL_PARAM_construct_end() };

	put_be32(msg, 1);
	n = 4;
	memcpy(msg + n, label, sizeof(label) - 1);
	n += sizeof(label) - 1;
	msg[n++] = 0;
	put_be32(msg + n, (uint32_t)(serial >> 32));
	put_be32(msg + n + 4, (uint32_t)serial);
	n += 8;
	put_be32(msg + n, 128);
	n += 4;
	assert_non_null(x);
	assert_int_equal(EVP_MAC_init(x, kv, 16, prm), 1);
	assert_int_equal(EVP_MAC_update(x, msg, n), 1);
	assert_int_equal(EVP_MAC_final(x, out, &outl, 16), 1);
	assert_int_equal(outl, 16);
	EVP_MAC_CTX_free(x);
	EVP_MAC_free(mac);
}

/* What the paired card sends: E_{K_pair}(CW || 0-padding). */
static void card_ecw(const uint8_t kpair[16], const uint8_t *cw, size_t cw_len, uint8_t ecw[16])
{
	uint8_t blk[16] = { 0 };
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int l = 0;

	memcpy(blk, cw, cw_len);
	assert_non_null(x);
	assert_int_equal(EVP_EncryptInit_ex(x, EVP_aes_128_ecb(), NULL, kpair, NULL), 1);
	EVP_CIPHER_CTX_set_padding(x, 0);
	assert_int_equal(EVP_EncryptUpdate(x, ecw, &l, blk, 16), 1);
	assert_int_equal(l, 16);
	EVP_CIPHER_CTX_free(x);
}

static void test_paired_ladder(void **state)
{
	struct chip_otp otp1, otp2;
	struct chip_link *ctl1, *host1, *ctl2, *host2;
	pid_t pid1, pid2;
	uint8_t kv1[16], kv2[16], kp[16], kp2[16], kp_hand[16], cw[16], cw8[8], ecw[16], chain[64];
	static uint8_t clear[NPKT * 188], buf[NPKT * 188];
	size_t chain_len = 0, done = 0, missing = 0;

	(void)state;
	make_otp(&otp1);
	make_otp(&otp2);
	otp2.chip_id = otp1.chip_id + 1;
	otp2.root[0] ^= 0x80; /* another chip: another OTP root */
	assert_int_equal(chip_spawn(&otp1, &ctl1, &host1, &pid1), 0);
	assert_int_equal(chip_spawn(&otp2, &ctl2, &host2, &pid2), 0);
	assert_int_equal(chip_link_set_vendor(ctl1, VENDOR_A), 0);
	assert_int_equal(chip_link_set_vendor(ctl2, VENDOR_A), 0);

	/* head-end: K_v(chip 1) from the vendor key file -> K_pair for the card */
	assert_int_equal(kms_vendor_key(otp1.root, VENDOR_A, kv1), 0);
	assert_int_equal(kms_vendor_key(otp2.root, VENDOR_A, kv2), 0);
	assert_int_equal(chip_pairing_key(kv1, CARD_SERIAL, kp), 0);
	pairing_key_by_hand(kv1, CARD_SERIAL, kp_hand);
	assert_memory_equal(kp, kp_hand, 16); /* KBKDF as specified, not just self-consistent */
	assert_int_equal(chip_pairing_key(kv2, CARD_SERIAL, kp2), 0);
	assert_memory_not_equal(kp, kp2, 16);
	assert_int_equal(chip_pairing_key(kv1, CARD_SERIAL + 1, kp2), 0);
	assert_memory_not_equal(kp, kp2, 16);

	/* CISSA: the card's ECW -> chip 1 descrambles */
	rnd(cw, 16);
	card_ecw(kp, cw, 16, ecw);
	assert_int_equal(chip_chain_paired(CARD_SERIAL, ecw, chain, sizeof(chain), &chain_len), 0);
	assert_int_equal(chain_len, CHIP_CHAIN_PAIRED_BYTES);
	assert_int_equal(chain[0], CHIP_CHAIN_PAIRED);
	make_clear(clear);
	memcpy(buf, clear, sizeof(buf));
	scramble(CW_ALG_CISSA, cw, CW_EVEN, buf);
	assert_int_equal(chip_link_load_ecw(host1, 3, DESCR_TAG_SERVICE, CW_ALG_CISSA, CW_EVEN, chain, chain_len), 0);
	assert_int_equal(chip_link_descramble(host1, 3, DESCR_TAG_SERVICE, buf, NPKT, &done, &missing), 0);
	assert_int_equal(done, NPKT);
	assert_memory_equal(buf, clear, sizeof(buf));

	/* the same card in another box: chip 2 loads garbage (16-byte CW, no
	 * redundancy to check) and the packets stay scrambled */
	memcpy(buf, clear, sizeof(buf));
	scramble(CW_ALG_CISSA, cw, CW_EVEN, buf);
	assert_int_equal(chip_link_load_ecw(host2, 3, DESCR_TAG_SERVICE, CW_ALG_CISSA, CW_EVEN, chain, chain_len), 0);
	assert_int_equal(chip_link_descramble(host2, 3, DESCR_TAG_SERVICE, buf, NPKT, &done, &missing), 0);
	assert_memory_not_equal(buf + 4, clear + 4, 184);

	/* CSA2 (8-byte CW, zero padding inside the block): chip 1 loads it,
	 * chip 2 refuses it, so does chip 1 with another card serial */
	memcpy(cw8, cw, 8);
	csa2_reduce(cw8);
	card_ecw(kp, cw8, 8, ecw);
	assert_int_equal(chip_chain_paired(CARD_SERIAL, ecw, chain, sizeof(chain), &chain_len), 0);
	memcpy(buf, clear, sizeof(buf));
	scramble(CW_ALG_CSA2, cw8, CW_ODD, buf);
	assert_int_equal(chip_link_load_ecw(host1, 4, DESCR_TAG_SERVICE, CW_ALG_CSA2, CW_ODD, chain, chain_len), 0);
	assert_int_equal(chip_link_descramble(host1, 4, DESCR_TAG_SERVICE, buf, NPKT, &done, &missing), 0);
	assert_int_equal(done, NPKT);
	assert_memory_equal(buf, clear, sizeof(buf));
	assert_int_equal(chip_link_load_ecw(host2, 4, DESCR_TAG_SERVICE, CW_ALG_CSA2, CW_ODD, chain, chain_len), CE_MAC);
	assert_int_equal(chip_chain_paired(CARD_SERIAL + 1, ecw, chain, sizeof(chain), &chain_len), 0);
	assert_int_equal(chip_link_load_ecw(host1, 4, DESCR_TAG_SERVICE, CW_ALG_CSA2, CW_ODD, chain, chain_len), CE_MAC);
	/* K_pair is bound to the running vendor too: another module's K_v fails */
	assert_int_equal(chip_chain_paired(CARD_SERIAL, ecw, chain, sizeof(chain), &chain_len), 0);
	assert_int_equal(chip_link_set_vendor(ctl1, VENDOR_B), 0);
	assert_int_equal(chip_link_load_ecw(host1, 4, DESCR_TAG_SERVICE, CW_ALG_CSA2, CW_ODD, chain, chain_len), CE_MAC);
	assert_int_equal(chip_link_clear_vendor(ctl1), 0);
	assert_int_equal(chip_link_load_ecw(host1, 4, DESCR_TAG_SERVICE, CW_ALG_CSA2, CW_ODD, chain, chain_len),
		CE_STATE);
	/* builder arguments */
	assert_int_equal(chip_chain_paired(0, ecw, chain, sizeof(chain), &chain_len), CE_ARG);
	assert_int_equal(chip_chain_paired(CARD_SERIAL, ecw, chain, 24, &chain_len), CE_ARG);

	chip_link_free(ctl1);
	chip_link_free(host1);
	chip_link_free(ctl2);
	chip_link_free(host2);
	assert_int_equal(chip_wait(pid1), 0);
	assert_int_equal(chip_wait(pid2), 0);
	secret_wipe(kv1, sizeof(kv1));
	secret_wipe(kv2, sizeof(kv2));
	secret_wipe(kp, sizeof(kp));
	chip_otp_wipe(&otp1);
	chip_otp_wipe(&otp2);
}

/* C.6: recordings sealed inside the chip with its OTP root's recording
 * branch (no vendor needed) play back on that chip only: another chip
 * refuses them (another id: before any key; the same id, another root:
 * CE_MAC), and the derivation is the documented one (stb/pvr_key.h: a
 * device keyer on the same root and id opens the chip's recording). */
struct pvr_back {
	uint8_t *buf;
	size_t n;
};

static int pvr_sink(void *ctx, const uint8_t *p, size_t n)
{
	struct pvr_back *b = ctx;

	memcpy(b->buf + b->n * 188, p, n * 188);
	b->n += n;
	return 0;
}

static void test_pvr_chip(void **state)
{
	struct chip_otp otp1, otp2;
	struct chip_link *ctl1, *host1, *ctl2, *host2;
	struct pvr_keyer k1, k2, kdev;
	struct pvr_rec *rec = NULL;
	struct pvr_rec_stats rst;
	pid_t pid1, pid2;
	static uint8_t pkts[150 * 188], back[150 * 188];
	char dir[] = "/tmp/test-pvrchip-XXXXXX", path[128];
	uint8_t tag[16] = { 0 }, nonce[16] = { 0 }, blk[16] = { 0 };
	FILE *f;

	(void)state;
	make_otp(&otp1);
	make_otp(&otp2);
	otp2.root[0] ^= 0x80; /* another chip that claims the same id */
	assert_int_equal(chip_spawn(&otp1, &ctl1, &host1, &pid1), 0);
	assert_int_equal(chip_spawn(&otp2, &ctl2, &host2, &pid2), 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rec.pvr", dir);
	rnd(pkts, sizeof(pkts));
	for (size_t i = 0; i < 150; i++) {
		pkts[i * 188] = 0x47;
		pkts[i * 188 + 3] &= 0x3F; /* clear */
	}
	assert_int_equal(pvr_keyer_chip(host1, &k1), 0);
	assert_int_equal(k1.source, PVR_SRC_CHIP);
	assert_int_equal(k1.box_id, otp1.chip_id);
	assert_int_equal(pvr_rec_open(path, &k1, 0, T0_MS, &rec), 0);
	assert_int_equal(pvr_rec_feed(rec, NULL, pkts, 150), 0);
	assert_int_equal(pvr_rec_close(rec, &rst), 0);
	assert_int_equal(rst.packets, 150);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(pvr_play(&k1, f, T0_MS, pvr_sink, &(struct pvr_back){ back, 0 }, NULL), 0);
	assert_memory_equal(back, pkts, sizeof(pkts));
	/* chip 2, same id, another root */
	memset(back, 0, sizeof(back));
	assert_int_equal(pvr_keyer_chip(host2, &k2), 0);
	rewind(f);
	assert_int_equal(pvr_play(&k2, f, T0_MS, pvr_sink, &(struct pvr_back){ back, 0 }, NULL), CE_MAC);
	/* chip 2 under its own id: refused before any key */
	k2.box_id = otp1.chip_id + 1;
	rewind(f);
	assert_int_equal(pvr_play(&k2, f, T0_MS, pvr_sink, &(struct pvr_back){ back, 0 }, NULL), CE_NOT_ENTITLED);
	/* the documented derivation from K_otp and the chip id */
	assert_int_equal(pvr_keyer_device(otp1.root, sizeof(otp1.root), otp1.chip_id, &kdev), 0);
	kdev.source = PVR_SRC_CHIP;
	rewind(f);
	assert_int_equal(pvr_play(&kdev, f, T0_MS, pvr_sink, &(struct pvr_back){ back, 0 }, NULL), 0);
	assert_memory_equal(back, pkts, sizeof(pkts));
	fclose(f);
	/* the op is the host channel's; a bad tag is CE_MAC */
	assert_int_equal(chip_link_pvr_crypt(ctl1, 1, nonce, 0, NULL, 0, blk, 16, tag), CE_STATE);
	assert_int_equal(chip_link_pvr_crypt(host1, 1, nonce, 0, NULL, 0, blk, 16, tag), 0);
	tag[0] ^= 1;
	assert_int_equal(chip_link_pvr_crypt(host1, 0, nonce, 0, NULL, 0, blk, 16, tag), CE_MAC);
	assert_int_equal(chip_link_pvr_crypt(host1, 2, nonce, 0, NULL, 0, blk, 16, tag), CE_ARG);
	pvr_keyer_free(&kdev);
	pvr_keyer_free(&k1);
	pvr_keyer_free(&k2);
	unlink(path);
	rmdir(dir);
	chip_link_free(ctl1);
	chip_link_free(host1);
	chip_link_free(ctl2);
	chip_link_free(host2);
	assert_int_equal(chip_wait(pid1), 0);
	assert_int_equal(chip_wait(pid2), 0);
	chip_otp_wipe(&otp1);
	chip_otp_wipe(&otp2);
}

/* fuzz/corpus/chip replayed as fuzz/fuzz_chip.c does: role u8 | op u8 | body
 * into a chip with vendor 0x4ADC; known seeds have known answers, any other
 * file (a fuzzer finding) must only replay without a crash. */
static void test_fuzz_corpus_chip(void **state)
{
	static const struct {
		const char *name;
		int want;
	} known[] = {
		{ "info", 0 }, { "paired-ecw", CE_MAC }, { "paired-short", CE_TRUNCATED }, { "klad", 0 },
		{ "descramble-empty", 0 }, { "set-vendor-host", CE_STATE },
	};
	static const uint8_t vendor[4] = { 0, 0, 0x4A, 0xDC };
	static uint8_t resp[CHIP_MAX_BODY];
	char dir[4096], path[4600];
	size_t nknown = 0;
	struct dirent *e;
	DIR *d;

	(void)state;
	snprintf(dir, sizeof(dir), "%s", tu_testdata("../../fuzz/corpus/chip"));
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		struct chip_otp otp;
		struct chip *c = NULL;
		uint8_t *buf;
		size_t len = 0, rl = 0;
		int r;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		buf = tu_read(path, &len);
		memset(&otp, 0, sizeof(otp));
		otp.chip_id = 0xC0FFEE;
		memset(otp.root, 0x42, sizeof(otp.root));
		assert_int_equal(chip_new(&otp, true, &c), 0);
		assert_int_equal(chip_handle(c, CHIP_ROLE_CONTROL, CHIP_OP_SET_VENDOR, vendor, 4, resp, sizeof(resp), &rl), 0);
		r = len < 2 ? 0 : chip_handle(c, (buf[0] & 1) ? CHIP_ROLE_HOST : CHIP_ROLE_CONTROL, buf[1], buf + 2,
			len - 2, resp, sizeof(resp), &rl);
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
			if (strcmp(known[k].name, e->d_name) != 0)
				continue;
			if (r != known[k].want)
				fail_msg("corpus %s: %d, want %d", e->d_name, r, known[k].want);
			nknown++;
		}
		chip_free(c);
		free(buf);
	}
	closedir(d);
	assert_int_equal(nknown, sizeof(known) / sizeof(known[0]));
}

/* `castellan chip` as its own process on unix sockets, from an OTP file. */
static void test_cli_chip(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	struct otp_image img;
	struct chip_link *ctl = NULL, *host = NULL;
	struct chip_info info;
	char dir[128], otp_path[200], sock[200], ctlp[200], cmd[256];
	uint8_t kv[16], ks[16] = { 1 }, cw[16] = { 2 }, chain[64], clear[NPKT * 188], buf[NPKT * 188];
	size_t chain_len, done;
	pid_t pid;

	(void)state;
	if (!bin)
		skip();
	snprintf(dir, sizeof(dir), "/tmp/castellan-chip-cli-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -m 700 '%s'", dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(otp_path, sizeof(otp_path), "%s/otp.bin", dir);
	snprintf(sock, sizeof(sock), "%s/host.sock", dir);
	snprintf(ctlp, sizeof(ctlp), "%s/control.sock", dir);
	memset(&img, 0, sizeof(img));
	img.version = OTP_VERSION;
	img.chip_id = 0xABCDEF;
	memset(img.root_key, 0x77, 16);
	memset(img.trust_root_hash, 0x42, 32);
	assert_int_equal(otp_write_file(otp_path, &img), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(bin, bin, "chip", "--otp", otp_path, "--socket", sock, "--control", ctlp, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && (!ctl || !host); i++) {
		if (!ctl && chip_link_connect(ctlp, &ctl) != 0)
			ctl = NULL;
		if (!host && chip_link_connect(sock, &host) != 0)
			host = NULL;
		if (!ctl || !host)
			usleep(20000);
	}
	assert_non_null(ctl);
	assert_non_null(host);
	assert_int_equal(chip_link_info(host, &info), 0);
	assert_true(info.chip_id == 0xABCDEF);
	assert_int_equal(info.trust_root_hash[0], 0x42);
	assert_int_equal(chip_link_set_vendor(host, VENDOR_A), CE_STATE);
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_A), 0);
	assert_int_equal(kms_vendor_key(img.root_key, VENDOR_A, kv), 0);
	assert_int_equal(chip_chain_klad(kv, ks, cw, 16, chain, sizeof(chain), &chain_len), 0);
	make_clear(clear);
	memcpy(buf, clear, sizeof(buf));
	scramble(CW_ALG_CISSA, cw, CW_EVEN, buf);
	assert_int_equal(chip_link_load_ecw(host, 5, DESCR_TAG_SERVICE, CW_ALG_CISSA, CW_EVEN, chain, chain_len), 0);
	assert_int_equal(chip_link_descramble(host, 5, DESCR_TAG_SERVICE, buf, NPKT, &done, NULL), 0);
	assert_int_equal(done, NPKT);
	assert_memory_equal(buf, clear, sizeof(buf));
	chip_link_free(ctl);
	chip_link_free(host);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	otp_image_wipe(&img);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_klad_ladder),
		cmocka_unit_test(test_ecm_ladder_client),
		cmocka_unit_test(test_ecm_ladder_extended),
		cmocka_unit_test(test_ecm_ladder_forgery),
		cmocka_unit_test(test_box_never_holds_cw),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_paired_ladder),
		cmocka_unit_test(test_pvr_chip),
		cmocka_unit_test(test_fuzz_corpus_chip),
		cmocka_unit_test(test_cli_chip),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
