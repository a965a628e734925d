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
#include "headend/ota.h"
#include "cas/cert.h"
#include "cas/module.h"
#include "crypto/pk.h"
#include "lib/err.h"
#include "lib/util.h"
#include "ts/psi.h"
#include "ts/ts.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan module sign --vendor N --version N --rollback N --ca-system-id N\n"
		"                             --keys-file NAME --ta-pub FILE --cert FILE --key FILE --out FILE\n"
		"       castellan module verify (--ta-pub FILE | --trust-root-hash HEX64) [--crl FILE] [--now UNIX] FILE\n"
		"       castellan module inspect FILE\n"
		"       castellan module carousel FILE --pid N --out TS [--version 0..31] [--carousel-id N]\n"
		"                             [--program N --pmt-pid N]   (adds a PAT + PMT announcing it)\n"
		"       castellan module carousel FILE --pid N --out TS --into IN.ts --program N --pmt-pid N\n"
		"                             [--start-packet K] [--cycles R] [--every P] [--version V]\n"
		"       castellan module collect TS --out FILE\n\n"
		"sign:     build a module whose payload runs the built-in ladder client with the box's\n"
		"          protected keys file NAME (from the box's state dir), sign it with the operator's\n"
		"          Ed25519 key FILE, certified by --cert (from castellan kms), under TA key --ta-pub.\n"
		"verify:   check the chain against a trust root (as a box with that OTP would) and print\n"
		"          the manifest; exit 1 with the reason when refused. Rollback is the box's check.\n"
		"carousel: the module as TS packets of one carousel cycle on --pid (repeat the file to\n"
		"          loop it); collect: the box side, from a TS file.\n"
		"          --into: multiplex it into IN.ts instead: every PAT of IN.ts gets program N\n"
		"          (PMT on --pmt-pid announcing the carousel), and after input packet K, K+P, ...\n"
		"          (R times; default K 0, R 1, P 1) the PMT and one carousel cycle are inserted.\n"
		"          Every other packet is kept, in order (PIDs must be free in IN.ts).\n"
		"Numbers are decimal or 0x-hex. docs/modules.md and docs/ota.md have the formats.\n");
}

/* The first argument after the subcommand that is not an option or its value. */
static const char *positional(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			i++;
			continue;
		}
		return argv[i];
	}
	return NULL;
}

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

static int do_sign(int argc, char **argv)
{
	uint64_t vendor = 0, version = 0, rollback = 0, casid = 0;
	const char *keys = cli_opt(argc, argv, 2, "--keys-file"), *out = cli_opt(argc, argv, 2, "--out");
	const char *tap = cli_opt(argc, argv, 2, "--ta-pub"), *certp = cli_opt(argc, argv, 2, "--cert"), *keyp = cli_opt(argc, argv, 2, "--key");
	struct module_manifest m;
	struct module_payload p;
	uint8_t ta_pub[32], op_priv[32], pl[256], *cert = NULL, *mod = NULL;
	size_t cert_len = 0, pl_len, mod_len;
	int r, rc = 1;

	if (cli_opt_u64(argc, argv, 2, "--vendor", UINT32_MAX, true, &vendor) || cli_opt_u64(argc, argv, 2, "--version", UINT32_MAX, true, &version) ||
	    cli_opt_u64(argc, argv, 2, "--rollback", UINT32_MAX, true, &rollback) ||
	    cli_opt_u64(argc, argv, 2, "--ca-system-id", 0xFFFF, true, &casid) || !keys || !out || !tap || !certp || !keyp) {
		usage(stderr);
		return 2;
	}
	memset(&m, 0, sizeof(m));
	memset(&p, 0, sizeof(p));
	m.vendor_id = (uint32_t)vendor;
	m.version = (uint32_t)version;
	m.rollback = (uint32_t)rollback;
	p.kind = MODULE_KIND_LADDER;
	p.vendor_id = (uint32_t)vendor;
	p.ca_system_id = (uint16_t)casid;
	if (strlen(keys) > MODULE_MAX_NAME) {
		fprintf(stderr, "castellan module: keys file name too long\n");
		return 2;
	}
	memcpy(p.keys_file, keys, strlen(keys) + 1);
	if ((r = module_payload_encode(&p, pl, sizeof(pl), &pl_len)) != 0) {
		fprintf(stderr, "castellan module: keys file name must be [A-Za-z0-9._-]: %s\n", err_str(r));
		return 2;
	}
	if ((r = pk_read_file(tap, ta_pub)) != 0 || (r = pk_read_file(keyp, op_priv)) != 0 ||
	    (r = file_read_all(certp, CERT_MAX_BYTES, &cert, &cert_len)) != 0) {
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

static int do_verify(int argc, char **argv, bool inspect)
{
	const char *path = positional(argc, argv), *tap = cli_opt(argc, argv, 2, "--ta-pub");
	const char *hash = cli_opt(argc, argv, 2, "--trust-root-hash"), *crlp = cli_opt(argc, argv, 2, "--crl");
	uint8_t trust[32], ta_pub[32], *mod = NULL, *crl = NULL;
	size_t len = 0, crl_len = 0;
	struct module_view v;
	struct module_payload p;
	uint64_t now = now_wall_ms() / 1000u;
	int r, rc = 1;

	if (!path || (!inspect && !tap == !hash) || cli_opt_u64(argc, argv, 2, "--now", UINT64_MAX, false, &now)) {
		usage(stderr);
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
	if ((r = module_verify(mod, len, trust, now, crl, crl_len, &v, &p)) != 0) {
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

/* module carousel --into: the carousel multiplexed into a TS file. */
static int carousel_into(const char *in_path, const char *out, const uint8_t *car, size_t ncar, const uint8_t psi[376],
	uint16_t prog, uint16_t pmt_pid, uint64_t start, uint64_t cycles, uint64_t every)
{
	uint8_t *in = NULL, *o = NULL;
	size_t len = 0, nin, no = 0;
	int r;

	if ((r = file_read_all(in_path, 1u << 30, &in, &len)) != 0) {
		fprintf(stderr, "castellan module: %s: %s\n", in_path, err_str(r));
		return 1;
	}
	nin = len / TS_PACKET_BYTES;
	r = ota_mux_into(in, nin, car, ncar, psi, prog, pmt_pid, start, cycles, every, &o, &no);
	free(in);
	if (r == CE_RANGE)
		return 2;
	if (r == 0)
		r = file_write_atomic(out, o, no * TS_PACKET_BYTES, 0644);
	if (r == 0)
		printf("wrote %s: %zu input packets + %zu inserted (PMT and %zu-packet cycle, %llu times), program %u in the PAT\n",
			out, nin, no - nin, ncar, (unsigned long long)(no - nin) / (ncar + 1), (unsigned)prog);
	else
		fprintf(stderr, "castellan module: %s: %s\n", out, err_str(r));
	free(o);
	return r == 0 ? 0 : 1;
}

static int do_carousel(int argc, char **argv)
{
	const char *path = positional(argc, argv), *out = cli_opt(argc, argv, 2, "--out");
	uint64_t pid = 0, ver = 0, cid = 1, prog = 0, pmt = 0, start = 0, cycles = 1, every = 1;
	const char *into = cli_opt(argc, argv, 2, "--into");
	struct module_view v;
	struct ota_params op;
	uint8_t *mod = NULL, *pkts = NULL, psi[376], cc = 15;
	size_t len = 0, n = 0;
	FILE *f = NULL;
	int r, rc = 1;

	if (!path || !out || cli_opt_u64(argc, argv, 2, "--pid", 0x1FFE, true, &pid) ||
	    cli_opt_u64(argc, argv, 2, "--version", 31, false, &ver) || cli_opt_u64(argc, argv, 2, "--carousel-id", 0xFFFF, false, &cid) ||
	    cli_opt_u64(argc, argv, 2, "--program", 0xFFFF, false, &prog) || cli_opt_u64(argc, argv, 2, "--pmt-pid", 0x1FFE, false, &pmt) ||
	    cli_opt_u64(argc, argv, 2, "--start-packet", UINT32_MAX, false, &start) ||
	    cli_opt_u64(argc, argv, 2, "--cycles", 100000, false, &cycles) || cli_opt_u64(argc, argv, 2, "--every", UINT32_MAX, false, &every) ||
	    every == 0 || (into && (!prog || !pmt || pmt < 0x10 || pid < 0x10 || pmt == pid))) {
		usage(stderr);
		return 2;
	}
	if ((r = file_read_all(path, MODULE_MAX_BYTES, &mod, &len)) != 0 || (r = module_parse(mod, len, &v)) != 0) {
		fprintf(stderr, "castellan module: %s: %s\n", path, err_str(r));
		goto out;
	}
	op = (struct ota_params){ .pid = (uint16_t)pid, .carousel_id = (uint16_t)cid, .version = (uint8_t)ver,
		.vendor_id = v.m.vendor_id };
	if ((r = ota_carousel_build(&op, mod, len, &cc, &pkts, &n)) != 0) {
		fprintf(stderr, "castellan module: carousel: %s\n", err_str(r));
		goto out;
	}
	if (into) {
		if ((r = ota_psi_build(1, (uint16_t)prog, (uint16_t)pmt, (uint16_t)pid, psi)) != 0)
			goto out;
		rc = carousel_into(into, out, pkts, n, psi, (uint16_t)prog, (uint16_t)pmt, start, cycles, every);
		goto out;
	}
	if (!(f = fopen(out, "wb")))
		goto out;
	if (prog && pmt) {
		if ((r = ota_psi_build(1, (uint16_t)prog, (uint16_t)pmt, (uint16_t)pid, psi)) != 0 || fwrite(psi, 1, 376, f) != 376)
			goto out;
	}
	if (fwrite(pkts, TS_PACKET_BYTES, n, f) != n)
		goto out;
	printf("wrote %s: %zu carousel packets on PID 0x%04x (version %u)\n", out, n, (unsigned)pid, (unsigned)ver);
	rc = 0;
out:
	if (f && fclose(f) != 0)
		rc = 1;
	free(mod);
	free(pkts);
	return rc;
}

static int do_collect(int argc, char **argv)
{
	const char *path = positional(argc, argv), *out = cli_opt(argc, argv, 2, "--out");
	struct ota_rx *rx = NULL;
	struct ota_rx_stats st;
	uint8_t *ts = NULL, *mod = NULL;
	size_t len = 0, mlen = 0;
	uint32_t vid = 0;
	int r, rc = 1;

	if (!path || !out) {
		usage(stderr);
		return 2;
	}
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
	if (cli_wants_help(argc, argv) || argc < 2) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "sign") == 0)
		return do_sign(argc, argv);
	if (strcmp(argv[1], "verify") == 0)
		return do_verify(argc, argv, false);
	if (strcmp(argv[1], "inspect") == 0)
		return do_verify(argc, argv, true);
	if (strcmp(argv[1], "carousel") == 0)
		return do_carousel(argc, argv);
	if (strcmp(argv[1], "collect") == 0)
		return do_collect(argc, argv);
	usage(stderr);
	return 2;
}
