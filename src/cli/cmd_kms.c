/*
 * cmd_kms.c - `castellan kms ...`: the operator's key management system
 * (src/kms/kms.h, docs/kms.md). Never prints key material: public keys and
 * fingerprints only. One option table for every subcommand; the work of
 * each (secrets, opening the KMS, init, keygen, the TA, module signing,
 * order import, revocation, new output files, the vendor's side of a key
 * file) is kms/kms_tool.c; this file parses, checks the options and
 * prints the results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cas/keys.h"
#include "cas/module.h"
#include "cli/cli.h"
#include "crypto/pk.h"
#include "kms/kms.h"
#include "kms/kms_tool.h"
#include "kms/p11.h"
#include "lib/err.h"
#include "lib/util.h"

#define TA_PASSPHRASE_ENV KMS_TA_PASSPHRASE_ENV
#define UNSET UINT64_MAX /* a number option not given (every such option's range is below it) */

struct kms_args {
	struct kms_open_params open; /* --dir, --passphrase-file, --pin-file, --pkcs11-module */
	const char *pkcs11_token, *out, *pub, *type, *ta, *ta_pfile, *name, *keys_file, *payload, *to, *file, *key,
		*kms_pub, *serial, *cert;
	bool pkcs11;
	uint64_t log2n, days, vendor, vendor_id, version, rollback, casid, order, id;
};

#define A struct kms_args
static const struct opt kms_opts[] = {
	OPT_STR("--dir", "KMSDIR", 0, A, open.dir, "the KMS directory (every command but keygen, ta init, vendor open)"),
	OPT_STR("--passphrase-file", "F", 0, A, open.passphrase_file, "the KMS passphrase (first line)"),
	OPT_FLAG("--pkcs11", A, pkcs11, "init: keep the master key under a PKCS#11 token key"),
	OPT_STR("--pkcs11-token", "LABEL", 0, A, pkcs11_token, "init --pkcs11: the token's label"),
	OPT_STR("--pkcs11-module", "SO", 0, A, open.pkcs11_module, "the PKCS#11 module"),
	OPT_STR("--pin-file", "F", 0, A, open.pin_file, "the token's user PIN (first line)"),
	OPT_NUM("--scrypt-log2n", "N", 0, A, log2n, 0, 18, "init, ta init: scrypt cost 10..18 (default 15)"),
	OPT_STR("--out", "FILE", 0, A, out, "the file to write (never overwritten)"),
	OPT_STR("--pub", "FILE", 0, A, pub, "keygen, ta init: the public key's file; vendor add: the vendor's key"),
	OPT_STR("--type", "x25519|ed25519", 0, A, type, "keygen: the key pair's type"),
	OPT_STR("--ta", "TA.key", 0, A, ta, "the trust authority's key (operator certify, revoke --cert)"),
	OPT_STR("--ta-passphrase-file", "F", 0, A, ta_pfile, "the trust authority key's passphrase (first line)"),
	OPT_STR("--name", "NAME", 0, A, name, "operator certify: the operator's name"),
	OPT_NUM("--days", "N", 0, A, days, 1, 36500, "operator certify: validity in days (default 3650)"),
	OPT_STR("--serial", "S", 0, A, serial, "operator certify: the certificate serial (default random)"),
	OPT_NUM("--vendor", "V", 0, A, vendor, 0, UINT32_MAX, "module sign: the module's vendor; revoke: the vendor"),
	OPT_NUM("--vendor-id", "V", 0, A, vendor_id, 0, UINT32_MAX, "module sign: the same as --vendor"),
	OPT_NUM("--version", "N", 0, A, version, 0, UINT32_MAX, "module sign: the module's version"),
	OPT_NUM("--rollback", "R", 0, A, rollback, 0, UINT32_MAX, "module sign: the module's rollback counter"),
	OPT_NUM("--ca-system-id", "C", 0, A, casid, 0, 0xFFFF, "module sign: the ladder payload's CA_system_id"),
	OPT_STR("--keys-file", "NAME", 0, A, keys_file, "module sign: the protected keys file the ladder payload names"),
	OPT_STR("--payload", "FILE", 0, A, payload, "module sign: a raw payload (v1) instead"),
	OPT_NUM("--order", "N", 0, A, order, 0, UINT32_MAX, "blackbox export, vendor export: the chip order"),
	OPT_STR("--to", "BB.pub", 0, A, to, "blackbox export: the black box's X25519 public key"),
	OPT_NUM("--id", "V", 0, A, id, 0, UINT32_MAX, "vendor add/export/open: the vendor id"),
	OPT_STR("--file", "F", 0, A, file, "vendor open: the vendor key file"),
	OPT_STR("--key", "VENDOR.key", 0, A, key, "vendor open: the vendor's X25519 private key"),
	OPT_STR("--kms-pub", "KMS.pub", 0, A, kms_pub, "vendor open: the KMS's Ed25519 public key"),
	OPT_STR("--cert", "SERIAL", 0, A, cert, "revoke: the operator certificate's serial"),
	OPT_END,
};
#undef A

static const char kms_about[] =
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
	"                                          the passphrase/PIN its anchor (truncation)";

static const char kms_footer[] =
	"The KMS passphrase is the first line of --passphrase-file, or $" KEYSTORE_PASSPHRASE_ENV ";\n"
	"the TA's is --ta-passphrase-file or $" TA_PASSPHRASE_ENV ". No defaults.\n"
	"PKCS#11 (master.key made with init --pkcs11): the user PIN is the first line of\n"
	"--pin-file or $" P11_PIN_ENV " (never an argument); module --pkcs11-module (default\n"
	P11_DEFAULT_MODULE "), token label --pkcs11-token (default \"" P11_DEFAULT_TOKEN "\", init only).\n";

static const struct opt_cmd kms_cmd = {
	.name = "kms",
	.synopsis = "<command> --dir KMSDIR [options]",
	.about = kms_about,
	.opts = kms_opts,
	.args = "CHIPS.csv",
	.max_args = 1,
	.footer = kms_footer,
};

/* The subcommands of two words ("ta init"): their options start after both. */
static bool two_words(const char *sub)
{
	static const char *const two[] = { "ta", "operator", "module", "order", "blackbox", "vendor", "audit", NULL };

	for (size_t i = 0; two[i]; i++)
		if (strcmp(sub, two[i]) == 0)
			return true;
	return false;
}

static int usage_err(void)
{
	opt_help(stderr, &kms_cmd);
	return 2;
}

/* A number option that must be there: said as before when it is not. */
static bool need(const char *name, uint64_t v)
{
	if (v == UNSET)
		fprintf(stderr, "castellan kms: %s is required\n", name);
	return v != UNSET;
}

/* "LABEL<the public key in hex>\n" */
static void print_pub(const char *label, const uint8_t key[32])
{
	char hex[65];

	hex_encode(key, 32, hex);
	printf("%s%s\n", label, hex);
}

/* `kms module sign`: the payload from --payload FILE or built from
 * --ca-system-id and --keys-file, signed (kms_module_sign_params). */
static int module_sign_cmd(const struct kms_args *a)
{
	uint64_t vendor = a->vendor != UNSET ? a->vendor : a->vendor_id;
	struct kms_module_params mp = { .keys_file = a->keys_file, .payload_file = a->payload, .out = a->out };
	struct module_manifest m;
	size_t mod_len = 0;
	int r;

	if (!need(a->vendor != UNSET ? "--vendor" : "--vendor-id", vendor) || !need("--version", a->version) ||
	    !need("--rollback", a->rollback) || !a->out || !a->payload == !a->keys_file ||
	    (a->keys_file && !need("--ca-system-id", a->casid)))
		return usage_err();
	mp.vendor = (uint32_t)vendor;
	mp.version = (uint32_t)a->version;
	mp.rollback = (uint32_t)a->rollback;
	mp.casid = (uint16_t)a->casid;
	if ((r = kms_module_sign_params(&a->open, &mp, &m, &mod_len)) == 0)
		printf("module signed by the KMS: vendor 0x%08x version %u rollback %u, %s (%zu bytes)\n", m.vendor_id,
			m.version, m.rollback, a->out, mod_len);
	return r;
}

/* audit verify: the chain, and the anchor when the passphrase or PIN is at hand. */
static int audit_verify_cmd(const struct kms_args *a)
{
	size_t n = 0, bad = 0;
	int r;

	if (!a->open.dir)
		return usage_err();
	if ((r = kms_audit_verify(a->open.dir, &n, &bad)) != 0) {
		fprintf(stderr, "kms: audit log broken at line %zu: %s\n", bad, err_str(r));
		return 1;
	}
	printf("audit log: %zu entries, chain intact\n", n);
	/* The anchor lives in the encrypted state: check it when the
	 * passphrase or PIN is at hand (kms_open checks it). */
	if (!kms_secret_at_hand(&a->open)) {
		printf("anchor not checked: give the KMS passphrase or PIN to detect truncation\n");
		return 0;
	}
	if (kms_audit_anchor_check(&a->open) != 0)
		return 1;
	printf("anchor: intact (the encrypted state's last entry is in the log)\n");
	return 0;
}

/* Every subcommand but module sign, vendor open and audit verify: the exit
 * status (2: usage or CE_ARG, as before). */
static int run(const char *sub, const char *sub2, const struct kms_args *a, const char *csv)
{
	uint64_t log2n = a->log2n == UNSET ? 15 : a->log2n, v = 0;
	uint8_t key[32];
	size_t len = 0;
	int r = CE_ARG;

	if (strcmp(sub, "init") == 0) {
		struct kms_init_params ip = { .open = &a->open, .pkcs11 = a->pkcs11, .token = a->pkcs11_token,
			.log2n = (unsigned)log2n };

		if (!a->open.dir || log2n < 10)
			return usage_err();
		if ((r = kms_tool_init(&ip, key)) == 1)
			return 1;
		if (r == 0) {
			printf("kms created in %s\n", a->open.dir);
			print_pub("signing key (Ed25519 public): ", key);
		} else {
			fprintf(stderr, "kms init: %s\n", err_str(r));
		}
	} else if (strcmp(sub, "keygen") == 0) {
		if (!a->type || !a->out || !a->pub || (strcmp(a->type, "x25519") != 0 && strcmp(a->type, "ed25519") != 0))
			return usage_err();
		if ((r = kms_keygen_files(a->type, a->out, a->pub)) != 0)
			fprintf(stderr, "kms keygen: %s\n", err_str(r));
	} else if (strcmp(sub, "ta") == 0 && strcmp(sub2, "init") == 0) {
		if (!a->out || !a->pub || log2n < 10)
			return usage_err();
		if ((r = kms_ta_init_files(a->out, a->pub, a->ta_pfile, (unsigned)log2n, key)) == 1)
			return 1;
		if (r == 0)
			print_pub("trust authority public key: ", key);
		else
			fprintf(stderr, "kms ta init: %s\n", err_str(r));
	} else if (strcmp(sub, "pub") == 0) {
		if ((r = kms_pub_get(&a->open, key)) == 0) {
			print_pub("", key);
			if (a->out)
				r = pk_write_file(a->out, key, 0);
		}
	} else if (strcmp(sub, "operator") == 0 && strcmp(sub2, "certify") == 0) {
		uint64_t days = a->days == UNSET ? 3650 : a->days, serial = 0;

		if (!a->name || (a->serial && cli_u64("kms", "--serial", a->serial, UINT64_MAX, &serial) != 0))
			return usage_err();
		if (serial == 0 && kms_serial_random(&serial) != 0)
			return 1;
		if ((r = kms_operator_certify_file(&a->open, a->ta, a->ta_pfile, a->name, (uint32_t)days, serial,
			     a->out)) == 0)
			printf("operator certificate serial %llu written\n", (unsigned long long)serial);
	} else if (strcmp(sub, "order") == 0 && strcmp(sub2, "import") == 0) {
		uint32_t order = 0;
		size_t n = 0;

		if (!csv)
			return usage_err();
		if ((r = kms_order_import_file(&a->open, csv, &order, &n)) == 1)
			return 1;
		if (r == 0)
			printf("order %u: %zu chips, root keys issued\n", order, n);
	} else if (strcmp(sub, "blackbox") == 0 && strcmp(sub2, "export") == 0) {
		if (!a->to || !need("--order", a->order))
			return usage_err();
		if ((r = kms_blackbox_export_file(&a->open, (uint32_t)a->order, a->to, a->out, &len)) == 0)
			printf("black-box file for order %llu written (%zu bytes)\n", (unsigned long long)a->order, len);
	} else if (strcmp(sub, "vendor") == 0 && (strcmp(sub2, "add") == 0 || strcmp(sub2, "export") == 0)) {
		if (!need("--id", a->id))
			return usage_err();
		if (strcmp(sub2, "add") == 0 && (r = kms_vendor_add_file(&a->open, (uint32_t)a->id, a->pub)) == 0)
			printf("vendor 0x%llx registered\n", (unsigned long long)a->id);
		else if (strcmp(sub2, "export") == 0 &&
			 (r = kms_vendor_export_file(&a->open, (uint32_t)a->id, a->order == UNSET ? 0 : (uint32_t)a->order,
				  a->out, &len)) == 0)
			printf("vendor 0x%llx key file written (%zu bytes)\n", (unsigned long long)a->id, len);
	} else if (strcmp(sub, "revoke") == 0) {
		if (a->vendor != UNSET) {
			if ((r = kms_revoke_vendor_dir(&a->open, (uint32_t)a->vendor)) == 0)
				printf("vendor 0x%llx revoked\n", (unsigned long long)a->vendor);
		} else if (a->cert) {
			if (cli_u64("kms", "--cert", a->cert, UINT64_MAX, &v) != 0)
				return 2;
			if ((r = kms_revoke_cert_file(&a->open, a->ta, a->ta_pfile, v, a->out)) == 0)
				printf("certificate %llu revoked (CRL in KMSDIR/crl.bin)\n", (unsigned long long)v);
		} else {
			return usage_err();
		}
	} else {
		return usage_err();
	}
	if (r != 0 && r != CE_ARG)
		fprintf(stderr, "kms %s: %s\n", sub, err_str(r));
	return r == 0 ? 0 : (r == CE_ARG ? 2 : 1);
}

int cmd_kms(int argc, char **argv)
{
	struct kms_args a = { .log2n = UNSET, .days = UNSET, .vendor = UNSET, .vendor_id = UNSET, .version = UNSET,
		.rollback = UNSET, .casid = UNSET, .order = UNSET, .id = UNSET };
	const char *sub = argc > 1 ? argv[1] : NULL, *sub2 = argc > 2 ? argv[2] : "", *csv = NULL;
	int n = 0, r;

	if (opt_wants_help(argc, argv, 1) || !sub) {
		opt_help(sub ? stdout : stderr, &kms_cmd);
		return sub ? 0 : 2;
	}
	if ((r = opt_parse(&kms_cmd, &a, argc, argv, two_words(sub) ? 3 : 2, &csv, &n)) != OPT_GO)
		return r;
	if (strcmp(sub, "module") == 0 && strcmp(sub2, "sign") == 0)
		return module_sign_cmd(&a);
	if (strcmp(sub, "audit") == 0 && strcmp(sub2, "verify") == 0)
		return audit_verify_cmd(&a);
	if (strcmp(sub, "vendor") == 0 && strcmp(sub2, "open") == 0) {
		if (!a.file || !a.key || !a.kms_pub)
			return usage_err();
		return kms_vendor_open_file(a.file, a.key, a.kms_pub, a.id == UNSET ? 0 : (uint32_t)a.id, a.out) == 0 ? 0 : 1;
	}
	return run(sub, sub2, &a, csv);
}
