/*
 * main.c - `castellan <command> [options]`: dispatch to the commands of
 * every part. `castellan help` lists them; `castellan <cmd> --help` gives a
 * command's usage.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

static const struct cli_command commands[] = {
	/* CLI_COMMANDS: one line per command, in the order `help` shows them */
	{ "keys", "create or inspect the head-end keystore (keys init | keys show)", cmd_keys },
	{ "provision", "write a cardless box's entitlement file (packages, period, package keys)", cmd_provision },
	{ "ecmg", "the ECM generator: a DVB SimulCrypt ECMG<=>SCS TCP server (default port 2222)", cmd_ecmg },
	{ "stb", "reference set-top box: descramble a TS with a cardless client or a fixed CW", cmd_stb },
	{ "scramble", "SimulCrypt scrambler: scramble services with ECMs from ECMGs, insert EMMs", cmd_scramble },
	{ "emmg", "EMM generator client: send EMM sections from a file to a MUX (EMMG<=>MUX)", cmd_emmg },
	{ "sms", "subscriber management store: init, cards, packages, subscriptions, API keys", cmd_sms },
	{ "audit", "the tamper-evident audit log: keygen, signed checkpoints, verify, export for an auditor", cmd_audit },
	{ "headend", "the head-end in one process: SMS HTTP APIs, ECMG, EMMG with the EMM carousel, scheduler", cmd_headend },
	{ "card", "the virtual smartcard: serve it to pcscd, issue/program/erase, info", cmd_card },
	{ "kms", "operator key management: chip orders, root keys, black-box and vendor key files, TA", cmd_kms },
	{ "blackbox", "the chip maker's black box: verify a KMS black-box file and burn OTP images", cmd_blackbox },
	{ "web", "the web panel: its users (adduser, passwd, unlock...) and `web serve` (SMS APIs + panel)", cmd_web },
	{ "chip", "the emulated secure chip (OTP, key ladder, descrambler slots) as its own process", cmd_chip },
	{ "module", "signed CAS client modules: sign, verify, inspect; OTA carousel and collect", cmd_module },
	{ "demo-audit", "walk the regulator's audit checklist (TRAI Schedule III) on the demo stream: PASS/FAIL per item", cmd_demo_audit },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: castellan <command> [options]\n\n"
		"Castellan: an open, securely replaceable Conditional Access System.\n\n"
		"commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-12s %s\n", "help", "this list; `castellan <command> --help` for one command");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		if (argc > 2) {
			for (size_t i = 0; i < NCOMMANDS; i++) {
				if (strcmp(argv[2], commands[i].name) == 0) {
					char *hargv[] = { argv[2], (char *)"--help", NULL };

					return commands[i].run(2, hargv);
				}
			}
		}
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("castellan 0.1.0\n");
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "castellan: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
