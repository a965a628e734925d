/*
 * cmd_module.c - `castellan module sign | verify | inspect | carousel |
 * collect`: signed CAS client modules (src/cas/module.h) and their OTA
 * carousel (src/headend/ota.h). The KMS's `castellan kms module sign` may
 * call module_sign the same way. docs/modules.md, docs/ota.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "headend/ota_ts.h"
#include "cas/cert.h"
#include "cas/module.h"
#include "crypto/pk.h"
#include "lib/err.h"
#include "lib/util.h"
#include "ts/psi.h"
#include "ts/ts.h"

struct module_args {
	uint32_t vendor, version, rollback, start, every;
	uint16_t casid, pid, carousel_id, program, pmt_pid;
	uint8_t car_version;
	uint64_t now, cycles;
	const char *keys, *out, *ta_pub, *cert, *key, *hash, *crl, *into;
};

#define A struct module_args
static const struct opt sign_opts[] = {
	OPT_NUM("--vendor", "N", OPT_REQUIRED, A, vendor, 0, UINT32_MAX, "the vendor id"),
	OPT_NUM("--version", "N", OPT_REQUIRED, A, version, 0, UINT32_MAX, "the module's version"),
	OPT_NUM("--rollback", "N", OPT_REQUIRED, A, rollback, 0, UINT32_MAX, "its rollback counter (the box refuses lower)"),
	OPT_NUM("--ca-system-id", "N", OPT_REQUIRED, A, casid, 0, 0xFFFF, "the ladder client's CA_system_id"),
	OPT_STR("--keys-file", "NAME", OPT_REQUIRED, A, keys, "the box's protected keys file (in its state dir)"),
	OPT_STR("--ta-pub", "FILE", OPT_REQUIRED, A, ta_pub, "the trust anchor's public key"),
	OPT_STR("--cert", "FILE", OPT_REQUIRED, A, cert, "the operator's certificate (castellan kms)"),
	OPT_STR("--key", "FILE", OPT_REQUIRED, A, key, "the operator's Ed25519 key"),
	OPT_STR("--out", "FILE", OPT_REQUIRED, A, out, "the signed module"),
	OPT_END,
};
static const struct opt verify_opts[] = {
	OPT_STR("--ta-pub", "FILE", 0, A, ta_pub, "the trust root: the trust anchor's public key"),
	OPT_STR("--trust-root-hash", "HEX64", 0, A, hash, "or its hash, as a box's OTP holds it"),
	OPT_STR("--crl", "FILE", 0, A, crl, "a certificate revocation list"),
	OPT_NUM("--now", "UNIX", 0, A, now, 0, UINT64_MAX, "the time to check validity at (default now)"),
	OPT_END,
};
static const struct opt carousel_opts[] = {
	OPT_NUM("--pid", "N", OPT_REQUIRED, A, pid, 0, 0x1FFE, "the carousel's PID"),
	OPT_STR("--out", "TS", OPT_REQUIRED, A, out, "the TS file written"),
	OPT_NUM("--version", "0..31", 0, A, car_version, 0, 31, "the carousel's version (default 0)"),
	OPT_NUM("--carousel-id", "N", 0, A, carousel_id, 0, 0xFFFF, "its id (default 1)"),
	OPT_NUM("--program", "N", 0, A, program, 0, 0xFFFF, "with --pmt-pid: add a PAT + PMT announcing it"),
	OPT_NUM("--pmt-pid", "N", 0, A, pmt_pid, 0, 0x1FFE, "that PMT's PID"),
	OPT_STR("--into", "IN.ts", 0, A, into, "multiplex it into IN.ts (needs --program and --pmt-pid)"),
	OPT_NUM("--start-packet", "K", 0, A, start, 0, UINT32_MAX, "--into: first insertion after input packet K (default 0)"),
	OPT_NUM("--cycles", "R", 0, A, cycles, 0, 100000, "--into: R insertions (default 1)"),
	OPT_NUM("--every", "P", 0, A, every, 1, UINT32_MAX, "--into: every P input packets (default 1)"),
	OPT_END,
};
static const struct opt collect_opts[] = {
	OPT_STR("--out", "FILE", OPT_REQUIRED, A, out, "the module collected"),
	OPT_END,
};
#undef A

static const struct opt_cmd sign_cmd = { .name = "module sign", .opts = sign_opts,
	.about = "build a module whose payload runs the built-in ladder client with the box's\n"
		 "protected keys file NAME, sign it with the operator's Ed25519 key, certified by --cert\n"
		 "(from castellan kms), under the trust anchor --ta-pub." };
static const struct opt_cmd verify_cmd = { .name = "module verify", .opts = verify_opts, .args = "FILE",
	.min_args = 1, .max_args = 1, .synopsis = "(--ta-pub FILE | --trust-root-hash HEX64) [--crl FILE] [--now UNIX] FILE",
	.about = "check the chain against a trust root (as a box with that OTP would) and print\n"
		 "the manifest; exit 1 with the reason when refused. Rollback is the box's check." };
static const struct opt_cmd inspect_cmd = { .name = "module inspect", .opts = collect_opts + 1, .args = "FILE",
	.min_args = 1, .max_args = 1, .about = "print the manifest, unverified." };
static const struct opt_cmd carousel_cmd = { .name = "module carousel", .opts = carousel_opts, .args = "FILE",
	.min_args = 1, .max_args = 1,
	.about = "the module as TS packets of one carousel cycle on --pid (repeat the file to loop it).\n"
		 "--into: every PAT of IN.ts gets program N (PMT on --pmt-pid announcing the carousel), and\n"
		 "after input packet K, K+P, ... (R times) the PMT and one carousel cycle are inserted.\n"
		 "Every other packet is kept, in order (PIDs must be free in IN.ts)." };
static const struct opt_cmd collect_cmd = { .name = "module collect", .opts = collect_opts, .args = "TS",
	.min_args = 1, .max_args = 1, .about = "the box side: the module from a TS file." };
static const struct opt_cmd *const module_subs[] = { &sign_cmd, &verify_cmd, &inspect_cmd, &carousel_cmd,
	&collect_cmd, NULL };

static void print_manifest(const struct module_view *v, const struct module_payload *p)
{
	struct cert c;

	printf("vendor_id      0x%08x\nversion        %u\nrollback       %u\n", v->m.vendor_id, v->m.version,
		v->m.rollback);
	if (p)
		printf("client         ladder, CA_system_id 0x%04x, keys file %s\n", p->ca_system_id, p->keys_file);
	if (cert_parse(v->cert, v->cert_len, &c) == 0)
		printf("signed by      %s (certificate serial %llu, valid %llu..%llu)\n", c.name,
			(unsigned long long)c.serial, (unsigned long long)c.not_before, (unsigned long long)c.not_after);
}

static int do_sign(const struct module_args *a)
{
	const char *out = a->out;
	struct module_manifest m = { .vendor_id = a->vendor, .version = a->version, .rollback = a->rollback };
	uint8_t ta_pub[32], op_priv[32], pl[256], *cert = NULL, *mod = NULL;
	size_t cert_len = 0, pl_len, mod_len;
	int r, rc = 1;

	if (module_ladder_payload(a->vendor, a->casid, a->keys, pl, sizeof(pl), &pl_len) != 0) {
		fprintf(stderr, "castellan module: --keys-file must be 1..%d of [A-Za-z0-9._-]\n", MODULE_MAX_NAME);
		return 2;
	}
	if ((r = pk_read_file(a->ta_pub, ta_pub)) != 0 || (r = pk_read_file(a->key, op_priv)) != 0 ||
	    (r = file_read_all(a->cert, CERT_MAX_BYTES, &cert, &cert_len)) != 0) {
		fprintf(stderr, "castellan module: cannot read keys/certificate: %s\n", err_str(r));
		goto out;
	}
	if ((r = module_sign(&m, pl, pl_len, ta_pub, cert, cert_len, op_priv, &mod, &mod_len)) != 0 ||
	    (r = file_write_atomic(out, mod, mod_len, 0644)) != 0) {
		fprintf(stderr, "castellan module: sign: %s\n", err_str(r));
		goto out;
	}
	printf("wrote %s (%zu bytes): vendor 0x%08x version %u rollback %u\n", out, mod_len, m.vendor_id, m.version,
		m.rollback);
	rc = 0;
out:
	secret_wipe(op_priv, sizeof(op_priv));
	free(cert);
	free(mod);
	return rc;
}

static int do_verify(const struct module_args *a, const char *path, bool inspect)
{
	const char *tap = a->ta_pub, *hash = a->hash, *crlp = a->crl;
	uint8_t trust[32], ta_pub[32], *mod = NULL, *crl = NULL;
	size_t len = 0, crl_len = 0;
	struct module_view v;
	struct module_payload p;
	int r, rc = 1;

	if (!inspect && !tap == !hash) {
		fprintf(stderr, "castellan module verify: give --ta-pub or --trust-root-hash\n");
		return 2;
	}
	if ((r = file_read_all(path, MODULE_MAX_BYTES, &mod, &len)) != 0) {
		fprintf(stderr, "castellan module: %s: %s\n", path, err_str(r));
		return 1;
	}
	if (inspect) {
		if ((r = module_parse(mod, len, &v)) != 0) {
			fprintf(stderr, "castellan module: %s: %s\n", path, err_str(r));
			goto out;
		}
		print_manifest(&v, module_payload_parse(v.payload, v.payload_len, &p) == 0 ? &p : NULL);
		printf("(not verified: use `castellan module verify`)\n");
		rc = 0;
		goto out;
	}
	if (tap) {
		if ((r = pk_read_file(tap, ta_pub)) != 0)
			goto bad;
		pk_hash(ta_pub, trust);
	} else if ((r = hex_decode(hash, trust, 32)) != 0) {
		goto bad;
	}
	if (crlp && (r = file_read_all(crlp, 1u << 20, &crl, &crl_len)) != 0)
		goto bad;
	if ((r = module_verify(mod, len, trust, a->now, crl, crl_len, &v, &p)) != 0) {
		printf("REFUSED: %s\n", err_str(r));
		goto out;
	}
	print_manifest(&v, &p);
	printf("OK: signed by a certified operator under the given trust root\n");
	rc = 0;
	goto out;
bad:
	fprintf(stderr, "castellan module: %s\n", err_str(r));
out:
	free(mod);
	free(crl);
	return rc;
}

static int do_carousel(const struct module_args *a, const char *path)
{
	struct ota_ts_params p = { .car = { .pid = a->pid, .carousel_id = a->carousel_id, .version = a->car_version },
		.program = a->program, .pmt_pid = a->pmt_pid, .start = a->start, .cycles = a->cycles, .every = a->every };
	uint8_t *mod = NULL, *in = NULL, *ts = NULL;
	size_t len = 0, inlen = 0, n = 0, ncar = 0;
	struct module_view v;
	int r;

	if (a->into && (!p.program || !p.pmt_pid || p.pmt_pid < 0x10 || p.car.pid < 0x10 || p.pmt_pid == p.car.pid)) {
		fprintf(stderr, "castellan module carousel: --into needs --program and --pmt-pid (PIDs 0x10.., apart)\n");
		return 2;
	}
	if ((r = file_read_all(path, MODULE_MAX_BYTES, &mod, &len)) != 0 || (r = module_parse(mod, len, &v)) != 0 ||
	    (a->into && (path = a->into, r = file_read_all(a->into, 1u << 30, &in, &inlen)) != 0)) {
		fprintf(stderr, "castellan module: %s: %s\n", path, err_str(r));
		goto out;
	}
	p.car.vendor_id = v.m.vendor_id;
	p.in = in;
	p.nin = inlen / TS_PACKET_BYTES;
	if ((r = ota_ts_build(&p, mod, len, &ts, &n, &ncar)) != 0 ||
	    (r = file_write_atomic(a->out, ts, n * TS_PACKET_BYTES, 0644)) != 0) {
		fprintf(stderr, "castellan module: carousel %s: %s\n", a->out, err_str(r));
		goto out;
	}
	if (in)
		printf("wrote %s: %zu input packets + %zu inserted (PMT and %zu-packet cycle, %llu times), program %u in "
		       "the PAT\n", a->out, p.nin, n - p.nin, ncar, (unsigned long long)(n - p.nin) / (ncar + 1),
		       (unsigned)p.program);
	else
		printf("wrote %s: %zu carousel packets on PID 0x%04x (version %u)\n", a->out, ncar, (unsigned)p.car.pid,
		       (unsigned)p.car.version);
out:
	free(mod);
	free(in);
	free(ts);
	return r == CE_RANGE && in ? 2 : r ? 1 : 0;
}

static int do_collect(const struct module_args *a, const char *path)
{
	const char *out = a->out;
	struct ota_rx *rx = NULL;
	struct ota_rx_stats st;
	uint8_t *ts = NULL, *mod = NULL;
	size_t len = 0, mlen = 0;
	uint32_t vid = 0;
	int r, rc = 1;

	if ((r = file_read_all(path, 1u << 30, &ts, &len)) != 0 || (r = ota_rx_new(&rx)) != 0 ||
	    (r = ota_rx_feed(rx, ts, len / TS_PACKET_BYTES)) != 0) {
		fprintf(stderr, "castellan module: %s: %s\n", path, err_str(r));
		goto out;
	}
	ota_rx_stats(rx, &st);
	if (ota_rx_take(rx, &mod, &mlen, &vid) != 0) {
		fprintf(stderr, "castellan module: no complete module (%llu good, %llu bad sections)\n",
			(unsigned long long)st.sections_ok, (unsigned long long)st.sections_bad);
		goto out;
	}
	if ((r = file_write_atomic(out, mod, mlen, 0644)) != 0)
		goto out;
	printf("collected %zu bytes for vendor 0x%08x from PID 0x%04x -> %s (verify before use)\n", mlen, vid, st.pid, out);
	rc = 0;
out:
	free(ts);
	free(mod);
	ota_rx_free(rx);
	return rc;
}

int cmd_module(int argc, char **argv)
{
	struct module_args a = { .now = now_wall_ms() / 1000u, .carousel_id = 1, .cycles = 1, .every = 1 };
	const char *path = NULL;
	int sub, r, n = 0;

	if ((sub = opt_sub(NULL, module_subs, "Numbers are decimal or 0x-hex. docs/modules.md and docs/ota.md have the "
			   "formats.\n", argc, argv, &r)) < 0)
		return r;
	if ((r = opt_parse(module_subs[sub], &a, argc, argv, 2, &path, &n)) != OPT_GO)
		return r;
	switch (sub) {
	case 0: return do_sign(&a);
	case 1: return do_verify(&a, path, false);
	case 2: return do_verify(&a, path, true);
	case 3: return do_carousel(&a, path);
	default: return do_collect(&a, path);
	}
}
