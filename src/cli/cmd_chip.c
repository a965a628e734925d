/*
 * cmd_chip.c - `castellan chip --otp FILE --socket PATH --control PATH`:
 * run the emulated secure chip (src/stb/chip.h) as its own process, with
 * the OTP image burned by `castellan blackbox burn`. The host channel
 * (--socket) takes LOAD_ECW / DESCRAMBLE; the control channel (--control,
 * the loader's) sets the running vendor. docs/secure-chip.md.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "cli/cli.h"
#include "kms/otp.h"
#include "lib/err.h"
#include "lib/log.h"
#include "stb/chip.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan chip --otp FILE --socket PATH --control PATH [--no-csa2-reduce]\n\n"
		"Run the emulated secure chip with the OTP image FILE (castellan blackbox burn).\n"
		"--socket:  the host channel (the CAS client host: load_ecw, descramble);\n"
		"--control: the loader's channel (which vendor's module runs). Both are unix\n"
		"           sockets created mode 0600; one connection per channel at a time.\n"
		"Nothing the chip answers contains a key or a CW. Stops on SIGINT/SIGTERM.\n");
}

int cmd_chip(int argc, char **argv)
{
	const char *otp_path = NULL, *sock = NULL, *ctl = NULL;
	bool reduce = true;
	struct otp_image img;
	struct chip_otp otp;
	struct chip *c = NULL;
	int r;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--otp") == 0 && i + 1 < argc)
			otp_path = argv[++i];
		else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			sock = argv[++i];
		else if (strcmp(argv[i], "--control") == 0 && i + 1 < argc)
			ctl = argv[++i];
		else if (strcmp(argv[i], "--no-csa2-reduce") == 0)
			reduce = false;
		else {
			usage(stderr);
			return 2;
		}
	}
	if (!otp_path || !sock || !ctl) {
		usage(stderr);
		return 2;
	}
	if ((r = otp_read_file(otp_path, &img)) != 0) {
		fprintf(stderr, "castellan chip: %s: %s\n", otp_path, err_str(r));
		return 1;
	}
	memset(&otp, 0, sizeof(otp));
	otp.chip_id = img.chip_id;
	memcpy(otp.root, img.root_key, 16);
	memcpy(otp.trust_root_hash, img.trust_root_hash, 32);
	otp_image_wipe(&img);
	r = chip_new(&otp, reduce, &c);
	chip_otp_wipe(&otp);
	if (r != 0) {
		fprintf(stderr, "castellan chip: %s\n", err_str(r));
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	LOG_INFO("chip", "serving host channel %s, control channel %s", sock, ctl);
	r = chip_serve_unix(c, sock, ctl, &stop_flag);
	chip_free(c);
	return r == 0 ? 0 : 1;
}
