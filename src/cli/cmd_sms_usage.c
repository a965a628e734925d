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

const char cli_sms_usage_usage[] =
	"  copy-control SID copy_free|copy_once|copy_never [--retention-s S]\n"
	"                                 a channel's copy control, carried in its ECMs: copy_never = boxes\n"
	"                                 do not record it, copy_once = recordings stay on the box (no copy\n"
	"                                 of a copy); --retention-s: recordings play that long (0: no limit)\n"
	"  copy-control list              every channel with rules\n";

static int print_usage_row(void *ctx, uint16_t sid, const struct cas_usage *u)
{
	(void)ctx;
	printf("%u\t%s\t%" PRIu32 "\n", (unsigned)sid, cas_copy_name(u->copy_control), u->retention_s);
	return 0;
}

int cli_sms_usage(struct sms_store *s, int argc, char **argv)
{
	struct cas_usage u = { 0 };
	uint64_t sid = 0, ret = 0;
	size_t n = 0;
	int r;

	if (argc == 1 && strcmp(argv[0], "list") == 0) {
		printf("service_id\tcopy_control\tretention_s\n");
		return sms_usage_list(s, print_usage_row, NULL, &n);
	}
	if ((argc != 2 && argc != 4) || parse_u64(argv[0], 65535, &sid) != 0 || sid == 0 ||
	    cas_copy_parse(argv[1], &u.copy_control) != 0 ||
	    (argc == 4 && (strcmp(argv[2], "--retention-s") != 0 || parse_u64(argv[3], CAS_MAX_RETENTION_S, &ret) != 0))) {
		fprintf(stderr, "usage: castellan sms copy-control SID copy_free|copy_once|copy_never [--retention-s S]"
			" | list\n");
		return CE_ARG;
	}
	u.retention_s = (uint32_t)ret;
	if ((r = sms_usage_set(s, (uint16_t)sid, &u, "cli")) != 0)
		return r;
	printf("channel %" PRIu64 ": %s%s\n", sid, cas_copy_name(u.copy_control), ret ? ", retention limited" : "");
	return 0;
}
