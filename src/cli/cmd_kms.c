/*
 * cmd_kms.c - `castellan kms ...`: the operator's key management system
 * (src/kms/kms.h, docs/kms.md). Never prints key material: public keys and
 * fingerprints only. Secrets, opening the KMS, new output files and the
 * vendor's side of a key file are kms/kms_tool.c; this file parses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "cas/keys.h"
#include "cli/cli.h"
#include "cas/cert.h"
#include "kms/kms.h"
#include "kms/kms_tool.h"
#include "cas/module.h"
#include "kms/p11.h"
#include "crypto/pk.h"
#include "lib/cursor.h"
#include "lib/err.h"
#include "lib/util.h"

#define TA_PASSPHRASE_ENV KMS_TA_PASSPHRASE_ENV

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan kms <command> --dir KMSDIR [options]\n\n"
		"  init [--scrypt-log2n N]                 create the KMS (master key, Ed25519 signing key)\n"
		"  init --pkcs11 [--pkcs11-token LABEL] [--pkcs11-module SO] [--pin-file F]\n"
		"                                          keep the master key under a PKCS#11 token key\n"
		"  pub [--out FILE]                        print/write the KMS Ed25519 public key (hex)\n"
		"  keygen --type x25519|ed25519 --out PRIV --pub PUB   a key pair (black box, vendor, tests)\n"
		"  ta init --out TA.key --pub TA.pub       create the trust authority's root key\n"
		"  operator certify --ta TA.key --name NAME [--days N] [--serial S] --out CERT\n"
		"                                          TA certifies the KMS/operator signing key\n"
		"  module sign --vendor V --version N --rollback R (--ca-system-id C --keys-file NAME |\n"
		"              --payload FILE) --out MODULE\n"
		"                                          sign a CAS client module with the KMS operator key;\n"
		"                                          embeds the TA key and the operator certificate\n"
		"                                          (refused if it expired or is in DIR/crl.bin)\n"
		"  order import CHIPS.csv                  import chip ids, issue a random root key each\n"
		"  blackbox export --order N --to BB.pub --out FILE\n"
		"  vendor add --id V --pub VENDOR.pub      register a CAS vendor's X25519 key\n"
		"  vendor export --id V [--order N] --out FILE   K_v(chip) for every chip (all orders)\n"
		"  vendor open --file F --key VENDOR.key --kms-pub KMS.pub [--id V] [--out KEYS.csv]\n"
		"                                          (vendor side, no --dir) verify + decrypt a key file\n"
		"  revoke --vendor V | --cert SERIAL --ta TA.key [--out CRL]\n"
		"  audit verify                            check the hash chain of DIR/audit.log, and with\n"
		"                                          the passphrase/PIN its anchor (truncation)\n\n"
		"The KMS passphrase is the first line of --passphrase-file, or $%s;\n"
		"the TA's is --ta-passphrase-file or $%s. No defaults.\n"
		"PKCS#11 (master.key made with init --pkcs11): the user PIN is the first line of\n"
		"--pin-file or $%s (never an argument); module --pkcs11-module (default\n"
		"%s), token label --pkcs11-token (default \"%s\", init only).\n",
		KEYSTORE_PASSPHRASE_ENV, TA_PASSPHRASE_ENV, P11_PIN_ENV, P11_DEFAULT_MODULE, P11_DEFAULT_TOKEN);
}

static int serial_random(uint64_t *s)
{
	uint8_t b[8];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return CE_CRYPTO;
	(void)cur_u64_at(b, sizeof(b), 0, s);
	*s >>= 1;
	if (*s == 0)
		*s = 1;
	return 0;
}

/* --dir, --passphrase-file, --pin-file, --pkcs11-module. */
static int open_kms(int argc, char **argv, struct kms **k)
{
	struct kms_open_params p = { .dir = cli_opt(argc, argv, 1, "--dir"),
		.passphrase_file = cli_opt(argc, argv, 1, "--passphrase-file"),
		.pin_file = cli_opt(argc, argv, 1, "--pin-file"),
		.pkcs11_module = cli_opt(argc, argv, 1, "--pkcs11-module") };

	return kms_open_dir(&p, k);
}

static int load_ta(int argc, char **argv, uint8_t priv[32])
{
	return kms_ta_open(cli_opt(argc, argv, 1, "--ta"), cli_opt(argc, argv, 1, "--ta-passphrase-file"), priv);
}

/* `kms module sign`: the payload from --payload FILE (raw payload v1 bytes)
 * or built from --ca-system-id and --keys-file (as `module sign`), signed
 * by kms_module_sign. Exit status as cmd_kms. */
static int module_sign_cmd(int argc, char **argv)
{
	const char *vend = cli_opt(argc, argv, 1, "--vendor") ? "--vendor" : "--vendor-id";
	const char *plf = cli_opt(argc, argv, 1, "--payload"), *keys = cli_opt(argc, argv, 1, "--keys-file");
	const char *out = cli_opt(argc, argv, 1, "--out");
	struct kms_open_params op = { .dir = cli_opt(argc, argv, 1, "--dir"),
		.passphrase_file = cli_opt(argc, argv, 1, "--passphrase-file"),
		.pin_file = cli_opt(argc, argv, 1, "--pin-file"),
		.pkcs11_module = cli_opt(argc, argv, 1, "--pkcs11-module") };
	uint64_t vendor = 0, version = 0, rollback = 0, casid = 0;
	struct module_manifest m = {0};
	struct module_payload p = {0};
	uint8_t pl[256], *plbuf = NULL;
	size_t pl_len = 0, mod_len = 0;
	int r;

	if (cli_opt_u64(argc, argv, 1, vend, UINT32_MAX, true, &vendor) != 0 ||
	    cli_opt_u64(argc, argv, 1, "--version", UINT32_MAX, true, &version) != 0 ||
	    cli_opt_u64(argc, argv, 1, "--rollback", UINT32_MAX, true, &rollback) != 0 || !out || !plf == !keys ||
	    (keys && cli_opt_u64(argc, argv, 1, "--ca-system-id", 0xFFFF, true, &casid) != 0)) {
		usage(stderr);
		return 2;
	}
	m.vendor_id = (uint32_t)vendor;
	m.version = (uint32_t)version;
	m.rollback = (uint32_t)rollback;
	if (keys) {
		p.kind = MODULE_KIND_LADDER;
		p.vendor_id = m.vendor_id;
		p.ca_system_id = (uint16_t)casid;
		if (strlen(keys) <= MODULE_MAX_NAME)
			memcpy(p.keys_file, keys, strlen(keys) + 1);
		if (strlen(keys) > MODULE_MAX_NAME || module_payload_encode(&p, pl, sizeof(pl), &pl_len) != 0) {
			fprintf(stderr, "kms: --keys-file must be 1..%d of [A-Za-z0-9._-], not starting with '.'\n",
				MODULE_MAX_NAME);
			return 2;
		}
	} else if ((r = file_read_all(plf, MODULE_MAX_PAYLOAD, &plbuf, &pl_len)) != 0) {
		fprintf(stderr, "kms: cannot read %s: %s\n", plf, err_str(r));
		return 1;
	}
	r = kms_module_sign_file(&op, &m, plbuf ? plbuf : pl, pl_len, out, &mod_len);
	free(plbuf);
	if (r == 0)
		printf("module signed by the KMS: vendor 0x%08x version %u rollback %u, %s (%zu bytes)\n", m.vendor_id,
			m.version, m.rollback, out, mod_len);
	return r == 0 ? 0 : 1;
}

/* Vendor side: `kms vendor open` (kms_vendor_open_file). */
static int vendor_open(int argc, char **argv)
{
	const char *file = cli_opt(argc, argv, 1, "--file"), *keyf = cli_opt(argc, argv, 1, "--key"),
		   *kmsf = cli_opt(argc, argv, 1, "--kms-pub");
	uint64_t want_id = 0;

	if (!file || !keyf || !kmsf || cli_opt_u64(argc, argv, 1, "--id", UINT32_MAX, false, &want_id) != 0) {
		usage(stderr);
		return 2;
	}
	return kms_vendor_open_file(file, keyf, kmsf, (uint32_t)want_id, cli_opt(argc, argv, 1, "--out")) == 0 ? 0 : 1;
}

int cmd_kms(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL, *sub2 = argc > 2 ? argv[2] : "";
	struct kms *k = NULL;
	uint8_t *buf = NULL, key[32], priv[32];
	size_t len = 0;
	char hex[65];
	int r = CE_ARG;

	if (cli_wants_help(argc, argv) || !sub) {
		usage(sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	if (strcmp(sub, "init") == 0) {
		const char *dir = cli_opt(argc, argv, 1, "--dir");
		uint64_t log2n = 15;
		char *pass = NULL;
		if (!dir || cli_opt_u64(argc, argv, 1, "--scrypt-log2n", 18, false, &log2n) != 0 || log2n < 10) {
			usage(stderr);
			return 2;
		}
		if (cli_flag(argc, argv, 1, "--pkcs11")) {
			struct p11_config cfg = {.module = cli_opt(argc, argv, 1, "--pkcs11-module"),
				.token = cli_opt(argc, argv, 1, "--pkcs11-token")};
			if (kms_pin_get(cli_opt(argc, argv, 1, "--pin-file"), &pass) != 0)
				return 1;
			cfg.pin = pass;
			r = kms_init_p11(dir, &cfg);
		} else {
			if ((r = kms_pass_get(cli_opt(argc, argv, 1, "--passphrase-file"), NULL, &pass)) != 0)
				return 1;
			r = kms_init(dir, pass, (unsigned)log2n);
		}
		kms_secret_free(pass);
		if (r == 0 && (r = open_kms(argc, argv, &k)) == 0) {
			kms_public_key(k, key);
			hex_encode(key, 32, hex);
			printf("kms created in %s\nsigning key (Ed25519 public): %s\n", dir, hex);
		} else if (r != 0)
			fprintf(stderr, "kms init: %s\n", err_str(r));
	} else if (strcmp(sub, "keygen") == 0) {
		const char *type = cli_opt(argc, argv, 1, "--type"), *out = cli_opt(argc, argv, 1, "--out"),
			   *pub = cli_opt(argc, argv, 1, "--pub");
		if (!type || !out || !pub || (strcmp(type, "x25519") != 0 && strcmp(type, "ed25519") != 0)) {
			usage(stderr);
			return 2;
		}
		r = strcmp(type, "x25519") == 0 ? pk_x25519_generate(priv, key) : pk_ed25519_generate(priv, key);
		if (r == 0 && access(out, F_OK) == 0)
			r = CE_EXISTS;
		if (r == 0 && (r = pk_write_file(out, priv, 1)) == 0)
			r = pk_write_file(pub, key, 0);
		secret_wipe(priv, sizeof(priv));
		if (r != 0)
			fprintf(stderr, "kms keygen: %s\n", err_str(r));
	} else if (strcmp(sub, "ta") == 0 && strcmp(sub2, "init") == 0) {
		const char *out = cli_opt(argc, argv, 1, "--out"), *pub = cli_opt(argc, argv, 1, "--pub");
		uint64_t log2n = 15;
		char *pass = NULL;
		if (!out || !pub || cli_opt_u64(argc, argv, 1, "--scrypt-log2n", 18, false, &log2n) != 0 || log2n < 10) {
			usage(stderr);
			return 2;
		}
		if ((r = kms_pass_get(cli_opt(argc, argv, 1, "--ta-passphrase-file"), TA_PASSPHRASE_ENV, &pass)) != 0)
			return 1;
		r = kms_ta_init(out, pass, (unsigned)log2n, key);
		kms_secret_free(pass);
		if (r == 0)
			r = pk_write_file(pub, key, 0);
		if (r == 0) {
			hex_encode(key, 32, hex);
			printf("trust authority public key: %s\n", hex);
		} else
			fprintf(stderr, "kms ta init: %s\n", err_str(r));
	} else if (strcmp(sub, "pub") == 0) {
		if ((r = open_kms(argc, argv, &k)) == 0) {
			kms_public_key(k, key);
			hex_encode(key, 32, hex);
			printf("%s\n", hex);
			if (cli_opt(argc, argv, 1, "--out"))
				r = pk_write_file(cli_opt(argc, argv, 1, "--out"), key, 0);
		}
	} else if (strcmp(sub, "operator") == 0 && strcmp(sub2, "certify") == 0) {
		uint64_t days = 3650, serial = 0;
		uint8_t cert[CERT_MAX_BYTES];
		const char *name = cli_opt(argc, argv, 1, "--name");
		if (!name || cli_opt_u64(argc, argv, 1, "--days", 36500, false, &days) != 0 || days == 0 ||
		    cli_opt_u64(argc, argv, 1, "--serial", UINT64_MAX, false, &serial) != 0) {
			usage(stderr);
			return 2;
		}
		if (serial == 0 && serial_random(&serial) != 0)
			return 1;
		if ((r = open_kms(argc, argv, &k)) != 0 || (r = load_ta(argc, argv, priv)) != 0)
			goto out;
		r = kms_operator_certify(k, priv, name, (uint32_t)days, serial, cert, &len);
		secret_wipe(priv, sizeof(priv));
		if (r == 0)
			r = kms_write_new(cli_opt(argc, argv, 1, "--out"), cert, len);
		if (r == 0)
			printf("operator certificate serial %llu written\n", (unsigned long long)serial);
	} else if (strcmp(sub, "module") == 0 && strcmp(sub2, "sign") == 0) {
		return module_sign_cmd(argc, argv);
	} else if (strcmp(sub, "order") == 0 && strcmp(sub2, "import") == 0) {
		uint32_t order = 0;
		size_t n = 0;
		const char *csv = NULL;
		for (int i = 3; i < argc; i++) {
			if (argv[i][0] == '-' && argv[i][1] == '-') {
				i++;
				continue;
			}
			csv = argv[i];
		}
		if (!csv) {
			usage(stderr);
			return 2;
		}
		if ((r = file_read_all(csv, KMS_MAX_CHIPS_FILE_BYTES, &buf, &len)) != 0) {
			fprintf(stderr, "kms: cannot read %s: %s\n", csv, err_str(r));
			return 1;
		}
		if ((r = open_kms(argc, argv, &k)) == 0 && (r = kms_order_import(k, buf, len, &order, &n)) == 0)
			printf("order %u: %zu chips, root keys issued\n", order, n);
	} else if (strcmp(sub, "blackbox") == 0 && strcmp(sub2, "export") == 0) {
		uint64_t order = 0;
		const char *to = cli_opt(argc, argv, 1, "--to");
		if (!to || cli_opt_u64(argc, argv, 1, "--order", UINT32_MAX, true, &order) != 0) {
			usage(stderr);
			return 2;
		}
		if ((r = pk_read_file(to, key)) != 0) {
			fprintf(stderr, "kms: black-box key %s: %s\n", to, err_str(r));
			goto out;
		}
		if ((r = open_kms(argc, argv, &k)) == 0 &&
		    (r = kms_blackbox_export(k, (uint32_t)order, key, &buf, &len)) == 0 &&
		    (r = kms_write_new(cli_opt(argc, argv, 1, "--out"), buf, len)) == 0)
			printf("black-box file for order %llu written (%zu bytes)\n", (unsigned long long)order, len);
	} else if (strcmp(sub, "vendor") == 0 && strcmp(sub2, "open") == 0) {
		return vendor_open(argc, argv);
	} else if (strcmp(sub, "vendor") == 0 && (strcmp(sub2, "add") == 0 || strcmp(sub2, "export") == 0)) {
		uint64_t id = 0, order = 0;
		if (cli_opt_u64(argc, argv, 1, "--id", UINT32_MAX, true, &id) != 0 ||
		    cli_opt_u64(argc, argv, 1, "--order", UINT32_MAX, false, &order) != 0) {
			usage(stderr);
			return 2;
		}
		if (strcmp(sub2, "add") == 0) {
			const char *pub = cli_opt(argc, argv, 1, "--pub");
			if (!pub || (r = pk_read_file(pub, key)) != 0) {
				fprintf(stderr, "kms: --pub VENDOR.pub: %s\n", err_str(r));
				goto out;
			}
			if ((r = open_kms(argc, argv, &k)) == 0 && (r = kms_vendor_add(k, (uint32_t)id, key)) == 0)
				printf("vendor 0x%llx registered\n", (unsigned long long)id);
		} else if ((r = open_kms(argc, argv, &k)) == 0 &&
			   (r = kms_vendor_export(k, (uint32_t)id, (uint32_t)order, &buf, &len)) == 0 &&
			   (r = kms_write_new(cli_opt(argc, argv, 1, "--out"), buf, len)) == 0)
			printf("vendor 0x%llx key file written (%zu bytes)\n", (unsigned long long)id, len);
	} else if (strcmp(sub, "revoke") == 0) {
		uint64_t v = 0;
		if (cli_opt(argc, argv, 1, "--vendor")) {
			if (cli_opt_u64(argc, argv, 1, "--vendor", UINT32_MAX, true, &v) != 0)
				return 2;
			if ((r = open_kms(argc, argv, &k)) == 0 && (r = kms_revoke_vendor(k, (uint32_t)v)) == 0)
				printf("vendor 0x%llx revoked\n", (unsigned long long)v);
		} else if (cli_opt(argc, argv, 1, "--cert")) {
			if (cli_opt_u64(argc, argv, 1, "--cert", UINT64_MAX, true, &v) != 0)
				return 2;
			if ((r = open_kms(argc, argv, &k)) != 0 || (r = load_ta(argc, argv, priv)) != 0)
				goto out;
			r = kms_revoke_cert(k, priv, v, &buf, &len);
			secret_wipe(priv, sizeof(priv));
			if (r == 0 && cli_opt(argc, argv, 1, "--out"))
				r = file_write_atomic(cli_opt(argc, argv, 1, "--out"), buf, len, 0644);
			if (r == 0)
				printf("certificate %llu revoked (CRL in KMSDIR/crl.bin)\n", (unsigned long long)v);
		} else {
			usage(stderr);
			return 2;
		}
	} else if (strcmp(sub, "audit") == 0 && strcmp(sub2, "verify") == 0) {
		const char *dir = cli_opt(argc, argv, 1, "--dir");
		size_t n = 0, bad = 0;
		if (!dir) {
			usage(stderr);
			return 2;
		}
		r = kms_audit_verify(dir, &n, &bad);
		if (r == 0)
			printf("audit log: %zu entries, chain intact\n", n);
		else {
			fprintf(stderr, "kms: audit log broken at line %zu: %s\n", bad, err_str(r));
			return 1;
		}
		/* The anchor lives in the encrypted state: check it when the
		 * passphrase or PIN is at hand (kms_open checks it). */
		if (!cli_opt(argc, argv, 1, "--passphrase-file") && !getenv(KEYSTORE_PASSPHRASE_ENV) &&
		    !cli_opt(argc, argv, 1, "--pin-file") && !getenv(P11_PIN_ENV)) {
			printf("anchor not checked: give the KMS passphrase or PIN to detect truncation\n");
			return 0;
		}
		if ((r = open_kms(argc, argv, &k)) != 0)
			return 1;
		printf("anchor: intact (the encrypted state's last entry is in the log)\n");
		kms_close(k);
		return 0;
	} else {
		usage(stderr);
		return 2;
	}
out:
	if (r != 0 && r != CE_ARG)
		fprintf(stderr, "kms %s: %s\n", sub, err_str(r));
	free(buf);
	kms_close(k);
	return r == 0 ? 0 : (r == CE_ARG ? 2 : 1);
}
