/*
 * cli.h - the `castellan` multi-command CLI. Each command lives in its own
 * cmd_*.c file with one entry point; main.c holds the table.
 * A command returns a process exit status (0 ok, 1 failure, 2 usage) and
 * answers --help / -h with its usage on stdout.
 */
#ifndef CASTELLAN_CLI_H
#define CASTELLAN_CLI_H

#include <stdbool.h>

struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

/* true if argv has -h or --help. */
bool cli_wants_help(int argc, char **argv);

int cmd_keys(int argc, char **argv);
int cmd_provision(int argc, char **argv);
int cmd_ecmg(int argc, char **argv);
int cmd_scramble(int argc, char **argv);
int cmd_emmg(int argc, char **argv);
int cmd_stb(int argc, char **argv);
int cmd_sms(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_headend(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_card(int argc, char **argv);
int cmd_demo_card(int argc, char **argv);
int cmd_kms(int argc, char **argv);
int cmd_blackbox(int argc, char **argv);
int cmd_web(int argc, char **argv);
int cmd_chip(int argc, char **argv);
int cmd_module(int argc, char **argv);
int cmd_demo_replace(int argc, char **argv);

#endif
