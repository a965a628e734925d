/*
 * cmd_chip.c - `castellan chip --otp FILE --socket PATH --control PATH`:
 * run the emulated secure chip (src/stb/chip.h) as its own process, with
 * the OTP image burned by `castellan blackbox burn`. The host channel
 * (--socket) takes LOAD_ECW / DESCRAMBLE; the control channel (--control,
 * the loader's) sets the running vendor. docs/secure-chip.md.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "cli/cli.h"
#include "kms/otp.h"
#include "lib/err.h"
#include "lib/log.h"
#include "stb/chip.h"

struct chip_args {
	const char *otp, *sock, *ctl;
	bool no_reduce;
};

#define A struct chip_args
static const struct opt chip_opts[] = {
	OPT_STR("--otp", "FILE", OPT_REQUIRED, A, otp, "the OTP image (castellan blackbox burn)"),
	OPT_STR("--socket", "PATH", OPT_REQUIRED, A, sock, "the host channel (the CAS client host: load_ecw, descramble)"),
	OPT_STR("--control", "PATH", OPT_REQUIRED, A, ctl, "the loader's channel (which vendor's module runs)"),
	OPT_FLAG("--no-csa2-reduce", A, no_reduce, "CSA2: do not apply the entropy reduction to loaded CWs\n(default on; off for a head-end that does not reduce)"),
	OPT_END,
};
#undef A

static const struct opt_cmd chip_cmd = {
	.name = "chip",
	.about = "Run the emulated secure chip with the OTP image FILE (castellan blackbox burn).\n"
		 "Both channels are unix sockets created mode 0600; one connection per channel at a time.\n"
		 "Nothing the chip answers contains a key or a CW. Stops on SIGINT/SIGTERM.",
	.opts = chip_opts,
};

int cmd_chip(int argc, char **argv)
{
	struct chip_args a = { 0 };
	struct otp_image img;
	struct chip_otp otp;
	struct chip *c = NULL;
	int r;

	if ((r = opt_parse(&chip_cmd, &a, argc, argv, 1, NULL, NULL)) != OPT_GO)
		return r;
	if ((r = otp_read_file(a.otp, &img)) != 0) {
		fprintf(stderr, "castellan chip: %s: %s\n", a.otp, err_str(r));
		return 1;
	}
	/* the OTP image's file format (kms) to what the chip (stb) burns in */
	memset(&otp, 0, sizeof(otp));
	otp.chip_id = img.chip_id;
	memcpy(otp.root, img.root_key, 16);
	memcpy(otp.trust_root_hash, img.trust_root_hash, 32);
	otp_image_wipe(&img);
	r = chip_new(&otp, !a.no_reduce, &c);
	chip_otp_wipe(&otp);
	if (r != 0) {
		fprintf(stderr, "castellan chip: %s\n", err_str(r));
		return 1;
	}
	umask(077);
	LOG_INFO("chip", "serving host channel %s, control channel %s", a.sock, a.ctl);
	r = chip_serve_unix(c, a.sock, a.ctl, (volatile int *)cli_stop_on_signals());
	chip_free(c);
	return r == 0 ? 0 : 1;
}
