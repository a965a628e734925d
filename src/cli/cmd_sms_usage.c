/*
 * cmd_sms_usage.c - `castellan sms copy-control ...` (Schedule III C.6):
 * a channel's copy control and retention limit (sms/store_usage.h), which
 * the head-end puts in the channel's ECMs and the boxes' recorders obey.
 * The store writes the audit entry. docs/sms.md "Copy control".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "lib/util.h"
#include "sms/store.h"
#include "sms/store_usage.h"

struct usage_args {
	uint64_t retention_s;
};

static const struct opt set_opts[] = {
	OPT_NUM("--retention-s", "S", 0, struct usage_args, retention_s, 0, CAS_MAX_RETENTION_S,
		"recordings play that long (default 0: no limit)"),
	OPT_END,
};
static const struct opt no_opts[] = { OPT_END };

const struct opt_cmd cli_sms_usage_set_cmd = { .name = "sms copy-control", .opts = set_opts,
	.synopsis = "SID copy_free|copy_once|copy_never [--retention-s S]",
	.args = "SID copy_free|copy_once|copy_never", .min_args = 2, .max_args = 2,
	.about = "a channel's copy control, carried in its ECMs: copy_never = boxes do not record it,\n"
		 "copy_once = recordings stay on the box (no copy of a copy)" };
const struct opt_cmd cli_sms_usage_list_cmd = { .name = "sms copy-control list", .opts = no_opts,
	.about = "every channel with rules" };

static int print_usage_row(void *ctx, uint16_t sid, const struct cas_usage *u)
{
	(void)ctx;
	printf("%u\t%s\t%" PRIu32 "\n", (unsigned)sid, cas_copy_name(u->copy_control), u->retention_s);
	return 0;
}

int cli_sms_usage(struct sms_store *s, int argc, char **argv)
{
	struct usage_args a = { 0 };
	struct cas_usage u = { 0 };
	const char *args[2] = { NULL, NULL };
	uint64_t sid = 0;
	size_t n = 0;
	int r, na = 0;

	if (argc == 1 && strcmp(argv[0], "list") == 0) {
		printf("service_id\tcopy_control\tretention_s\n");
		return sms_usage_list(s, print_usage_row, NULL, &n);
	}
	/* argv[0] is the SID: the table reads from "copy-control" (one word before) */
	if ((r = opt_parse(&cli_sms_usage_set_cmd, &a, argc + 1, argv - 1, 1, args, &na)) != OPT_GO)
		return r == 0 ? 0 : CE_ARG;
	if (parse_u64(args[0], 65535, &sid) != 0 || sid == 0 || cas_copy_parse(args[1], &u.copy_control) != 0) {
		fprintf(stderr, "castellan sms copy-control: SID 1..65535, then copy_free, copy_once or copy_never\n");
		return CE_ARG;
	}
	u.retention_s = (uint32_t)a.retention_s;
	if ((r = sms_usage_set(s, (uint16_t)sid, &u, "cli")) != 0)
		return r;
	printf("channel %" PRIu64 ": %s%s\n", sid, cas_copy_name(u.copy_control), a.retention_s ? ", retention limited" : "");
	return 0;
}
