/*
 * cmd_module.c - `castellan module sign | verify | inspect | carousel |
 * collect`: signed CAS client modules (src/cas/module.h) and their OTA
 * carousel (src/headend/ota.h). Options and printing only: the work is
 * src/headend/module_tool.c. The KMS's `castellan kms module sign` may call
 * module_sign the same way. docs/modules.md, docs/ota.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cas/cert.h"
#include "headend/module_tool.h"
#include "lib/err.h"
#include "lib/util.h"

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
	const struct module_sign_req q = { .vendor = a->vendor, .version = a->version, .rollback = a->rollback,
		.ca_system_id = a->casid, .keys_file = a->keys, .ta_pub = a->ta_pub, .cert = a->cert, .key = a->key,
		.out = a->out };
	enum module_step step;
	size_t len;
	int r = module_tool_sign(&q, &len, &step);

	if (step == MODULE_STEP_ARG) {
		fprintf(stderr, "castellan module: --keys-file must be 1..%d of [A-Za-z0-9._-]\n", MODULE_MAX_NAME);
		return 2;
	}
	if (r != 0) {
		fprintf(stderr, step == MODULE_STEP_READ ? "castellan module: cannot read keys/certificate: %s\n"
							 : "castellan module: sign: %s\n", err_str(r));
		return 1;
	}
	printf("wrote %s (%zu bytes): vendor 0x%08x version %u rollback %u\n", a->out, len, a->vendor, a->version,
		a->rollback);
	return 0;
}

static int do_verify(const struct module_args *a, const char *path, bool inspect)
{
	struct module_file f;
	enum module_step step = MODULE_STEP_READ;
	int r, rc = 1;

	if (!inspect && !a->ta_pub == !a->hash) {
		fprintf(stderr, "castellan module verify: give --ta-pub or --trust-root-hash\n");
		return 2;
	}
	r = inspect ? module_tool_inspect(path, &f) : module_tool_verify(path, a->ta_pub, a->hash, a->crl, a->now, &f, &step);
	if (r == 0) {
		print_manifest(&f.v, f.has_payload ? &f.p : NULL);
		printf(inspect ? "(not verified: use `castellan module verify`)\n"
			       : "OK: signed by a certified operator under the given trust root\n");
		rc = 0;
	} else if (step == MODULE_STEP_REFUSED) {
		printf("REFUSED: %s\n", err_str(r));
	} else if (step == MODULE_STEP_TRUST) {
		fprintf(stderr, "castellan module: %s\n", err_str(r));
	} else {
		fprintf(stderr, "castellan module: %s: %s\n", path, err_str(r));
	}
	module_file_free(&f);
	return rc;
}

static int do_carousel(const struct module_args *a, const char *path)
{
	const struct module_carousel_req q = { .p = { .car = { .pid = a->pid, .carousel_id = a->carousel_id,
		.version = a->car_version }, .program = a->program, .pmt_pid = a->pmt_pid, .start = a->start,
		.cycles = a->cycles, .every = a->every }, .module = path, .into = a->into, .out = a->out };
	struct module_carousel_res res;
	const char *failed;
	int r;

	if (a->into && (!a->program || !a->pmt_pid || a->pmt_pid < 0x10 || a->pid < 0x10 || a->pmt_pid == a->pid)) {
		fprintf(stderr, "castellan module carousel: --into needs --program and --pmt-pid (PIDs 0x10.., apart)\n");
		return 2;
	}
	if ((r = module_tool_carousel(&q, &res, &failed)) != 0) {
		if (failed)
			fprintf(stderr, "castellan module: %s: %s\n", failed, err_str(r));
		else
			fprintf(stderr, "castellan module: carousel %s: %s\n", a->out, err_str(r));
		return r == CE_RANGE && a->into && !failed ? 2 : 1;
	}
	if (a->into)
		printf("wrote %s: %zu input packets + %zu inserted (PMT and %zu-packet cycle, %llu times), program %u in "
		       "the PAT\n", a->out, res.nin, res.n - res.nin, res.ncar,
		       (unsigned long long)(res.n - res.nin) / (res.ncar + 1), (unsigned)a->program);
	else
		printf("wrote %s: %zu carousel packets on PID 0x%04x (version %u)\n", a->out, res.ncar, (unsigned)a->pid,
		       (unsigned)a->car_version);
	return 0;
}

static int do_collect(const struct module_args *a, const char *path)
{
	struct module_collect_res res;
	enum module_step step;
	int r = module_tool_collect(path, a->out, &res, &step);

	if (r != 0 && step == MODULE_STEP_READ)
		fprintf(stderr, "castellan module: %s: %s\n", path, err_str(r));
	else if (r != 0 && step == MODULE_STEP_MISSING)
		fprintf(stderr, "castellan module: no complete module (%llu good, %llu bad sections)\n",
			(unsigned long long)res.sections_ok, (unsigned long long)res.sections_bad);
	if (r != 0)
		return 1;
	printf("collected %zu bytes for vendor 0x%08x from PID 0x%04x -> %s (verify before use)\n", res.len,
		res.vendor_id, res.pid, a->out);
	return 0;
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
