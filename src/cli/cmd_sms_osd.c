/*
 * cmd_sms_osd.c - `castellan sms fingerprint ...` and `castellan sms
 * message ...` (issue 13): the SMS's fingerprint schedules and messages
 * (sms/store_osd.h, which also holds their defaults). Every command goes
 * through the store, which writes its entry in the audit chain. docs/sms.md
 * "Fingerprints and messages".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "lib/util.h"
#include "sms/store.h"
#include "sms/osd_print.h"
#include "sms/store_osd.h"

struct osd_args {
	struct sms_fingerprint f;
	struct sms_message m;
	int ntargets;
	bool covert, encoded, random, popup, forced, active;
	uint32_t duration_ms; /* UINT32_MAX: the default for the kind */
	const char *text;
};

/* The targets: exactly one of them. */
static int fp_target(struct osd_args *a, enum sms_fp_target t, const char *v)
{
	a->ntargets++;
	a->f.target = t;
	return parse_u64(v, INT64_MAX, &a->f.value);
}

static int fp_service(void *b, const char *v) { return fp_target(b, SMS_FP_SERVICE, v); }
static int fp_package(void *b, const char *v) { return fp_target(b, SMS_FP_PACKAGE, v); }
static int fp_card(void *b, const char *v) { return fp_target(b, SMS_FP_CARD, v); }

static int msg_target(struct osd_args *a, enum osd_scope scope, const char *v, uint64_t max, uint64_t *out)
{
	a->ntargets++;
	a->m.msg.scope = (uint8_t)scope;
	return v && (parse_u64(v, max, out) != 0 || *out == 0) ? CE_ARG : 0;
}

static int msg_global(void *b, const char *v) { return msg_target(b, OSD_SCOPE_GLOBAL, v, 0, NULL); }
static int msg_card(void *b, const char *v) { return msg_target(b, OSD_SCOPE_INDIVIDUAL, v, INT64_MAX, &((struct osd_args *)b)->m.card); }

static int msg_group(void *b, const char *v)
{
	struct osd_args *a = b;
	uint64_t x = 0;
	int r = msg_target(a, OSD_SCOPE_GROUP, NULL, 0, NULL);

	if (parse_u64(v, 31, &x) != 0) /* packages 0..31 */
		r = CE_ARG;
	a->m.msg.group_id = (uint32_t)x;
	return r;
}

static const struct opt_choice shows[] = {
	{ "serial", OSD_FP_SERIAL }, { "box", OSD_FP_BOX }, { "both", OSD_FP_SERIAL | OSD_FP_BOX }, { NULL, 0 }
};

static int fp_show(void *b, const char *v)
{
	for (size_t i = 0; shows[i].name; i++) {
		if (strcmp(shows[i].name, v) == 0) {
			((struct osd_args *)b)->f.fp.flags = (uint8_t)shows[i].value;
			return 0;
		}
	}
	return CE_ARG;
}

#define A struct osd_args
static const struct opt fp_add_opts[] = {
	OPT_FN("--service", "SID", 0, fp_service, "a service's fingerprint, in its ECMs"),
	OPT_FN("--package", "ID", 0, fp_package, "a package's, in its services' ECMs"),
	OPT_FN("--card", "SERIAL", 0, fp_card, "one card's, in its EMMs"),
	OPT_FN("--show", "serial|box|both", 0, fp_show, "what it shows (default serial)"),
	OPT_FLAG("--covert", A, covert, "shown <= 200 ms"),
	OPT_FLAG("--encoded", A, encoded, "covert: a code only the operator can trace"),
	OPT_NUM("--x", "PCT", 0, A, f.fp.x_pct, 0, 100, "position, % of the width (default 5)"),
	OPT_NUM("--y", "PCT", 0, A, f.fp.y_pct, 0, 100, "position, % of the height (default 5)"),
	OPT_FLAG("--random", A, random, "the box picks the position"),
	OPT_HEX("--fg", "RRGGBB", A, f.fp.fg, "text colour (default FFFFFF)"),
	OPT_HEX("--bg", "RRGGBBAA", A, f.fp.bg, "background (default 00000080)"),
	OPT_NUM("--font-px", "N", 0, A, f.fp.font_px, 0, OSD_MAX_FONT_PX, "text size (default 24)"),
	OPT_NUM("--duration-ms", "MS", 0, A, duration_ms, 0, OSD_MAX_FP_DURATION_MS, "shown this long (default 5000, covert 80)"),
	OPT_NUM("--repeat", "N", 0, A, f.fp.repeat, 0, OSD_MAX_REPEAT, "showings (default 1)"),
	OPT_NUM("--interval", "S", 0, A, f.fp.interval_s, 0, OSD_MAX_INTERVAL_S, "between showings"),
	OPT_NUM("--start", "UNIX", 0, A, f.start_s, 0, INT64_MAX, "from (default now)"),
	OPT_NUM("--end", "UNIX", 0, A, f.end_s, 0, INT64_MAX, "until (default now + 24 h)"),
	OPT_END,
};
static const struct opt msg_add_opts[] = {
	OPT_FN("--global", NULL, OPT_SWITCH, msg_global, "to every card"),
	OPT_FN("--group", "PKG", 0, msg_group, "to a package's subscribers (0..31)"),
	OPT_FN("--card", "SERIAL", 0, msg_card, "to one card"),
	OPT_STR("--text", "TEXT", OPT_REQUIRED, A, text, "UTF-8, up to 720 bytes, no control characters"),
	OPT_FLAG("--popup", A, popup, "a pop-up (default: a scroll at the bottom)"),
	OPT_FLAG("--forced", A, forced, "cannot be dismissed for its duration"),
	OPT_NUM("--duration", "S", 0, A, m.msg.duration_s, 0, OSD_MAX_MSG_DURATION_S, "shown this long (default 30)"),
	OPT_NUM("--expiry", "UNIX", 0, A, m.msg.expiry_s, 0, INT64_MAX, "not shown after (default now + 7 days)"),
	OPT_NUM("--start", "UNIX", 0, A, m.start_s, 0, INT64_MAX, "not sent before (default now)"),
	OPT_HEX("--fg", "RRGGBB", A, m.msg.fg, "text colour (default FFFFFF)"),
	OPT_HEX("--bg", "RRGGBBAA", A, m.msg.bg, "background (default 101040D0)"),
	OPT_NUM("--font-px", "N", 0, A, m.msg.font_px, 0, OSD_MAX_FONT_PX, "text size (default 24)"),
	OPT_END,
};
static const struct opt list_opts[] = {
	OPT_FLAG("--active", A, active, "only those active now"),
	OPT_END,
};
#undef A

static const struct opt_cmd fp_add_cmd = { .name = "sms fingerprint add", .opts = fp_add_opts,
	.synopsis = "(--service SID | --package ID | --card SERIAL) [options]",
	.about = "schedule a fingerprint: a service's or package's rides in its ECMs, a card's in its EMMs;\n"
		 "covert: shown <= 200 ms, or with --encoded as a code only the operator can trace (docs/sms.md)" };
static const struct opt_cmd msg_add_cmd = { .name = "sms message add", .opts = msg_add_opts,
	.synopsis = "(--global | --group PKG | --card SERIAL) --text TEXT [options]",
	.about = "an OSD message in the EMMs of every card, of a package's subscribers or of one card" };
#define LIST(w) { .name = "sms " w " list", .opts = list_opts, .about = "every " w " (or those active now)" }
#define DELETE(w) { .name = "sms " w " delete", .opts = list_opts + 1, .args = "ID", .min_args = 1, .max_args = 1 }
static const struct opt_cmd fp_list_cmd = LIST("fingerprint"), msg_list_cmd = LIST("message");
static const struct opt_cmd fp_delete_cmd = DELETE("fingerprint"), msg_delete_cmd = DELETE("message");
#undef LIST
#undef DELETE

/* For `castellan sms --help` (cmd_sms.c): these subcommands' tables. */
const struct opt_cmd *const cli_sms_more_cmds[] = { &cli_sms_tvcas_cmd, &cli_sms_migrate_cmd, &fp_add_cmd,
	&fp_list_cmd, &fp_delete_cmd, &msg_add_cmd, &msg_list_cmd, &msg_delete_cmd, &cli_sms_usage_set_cmd,
	&cli_sms_usage_list_cmd, NULL };

static int fp_add(struct sms_store *s, int argc, char **argv)
{
	struct osd_args a = { .duration_ms = UINT32_MAX };
	int r;

	sms_fp_defaults(&a.f, (int64_t)(now_wall_ms() / 1000u));
	if (opt_parse(&fp_add_cmd, &a, argc, argv, 1, NULL, NULL) != OPT_GO)
		return CE_ARG;
	if (a.ntargets != 1) {
		fprintf(stderr, "castellan sms: fingerprint add needs one of --service, --package, --card\n");
		return CE_ARG;
	}
	a.f.fp.flags |= (a.covert ? OSD_FP_COVERT : 0) | (a.encoded ? OSD_FP_ENCODED : 0) |
		(a.random ? OSD_FP_RANDOM_POS : 0);
	a.f.fp.duration_ms = a.duration_ms != UINT32_MAX ? a.duration_ms : sms_fp_default_duration_ms(a.f.fp.flags);
	if (a.f.target == SMS_FP_SERVICE)
		a.f.fp.service = (uint16_t)(a.f.value <= 65535 ? a.f.value : 0);
	if ((r = sms_fp_add(s, &a.f, "cli")) != 0)
		return r;
	printf("fingerprint %" PRId64 " added\n", a.f.id);
	return 0;
}

static int msg_add(struct sms_store *s, int argc, char **argv)
{
	struct osd_args *a = calloc(1, sizeof(*a));
	int r = CE_NOMEM;

	if (!a)
		return r;
	sms_msg_defaults(&a->m, (int64_t)(now_wall_ms() / 1000u));
	if (opt_parse(&msg_add_cmd, a, argc, argv, 1, NULL, NULL) != OPT_GO) {
		r = CE_ARG;
	} else if (a->ntargets != 1) {
		fprintf(stderr, "castellan sms: message add needs --text and one of --global, --group, --card\n");
		r = CE_ARG;
	} else if ((r = osd_msg_set_text(&a->m.msg, a->text)) != 0) {
		fprintf(stderr, "castellan sms: --text: 1..%d bytes of UTF-8 without control characters\n",
			OSD_MAX_TEXT_BYTES);
	} else {
		a->m.msg.flags = (a->popup ? OSD_MSG_POPUP : 0) | (a->forced ? OSD_MSG_FORCED : 0);
		if ((r = sms_msg_add(s, &a->m, "cli")) == 0)
			printf("message %" PRId64 " added (%u bytes)\n", a->m.id, (unsigned)a->m.msg.text_len);
	}
	free(a);
	return r;
}

int cli_sms_osd(struct sms_store *s, bool message, int argc, char **argv)
{
	struct osd_args a = { 0 };
	int64_t now = (int64_t)(now_wall_ms() / 1000u);
	const char *ids = NULL;
	uint64_t id;
	size_t n = 0;
	int r, na = 0;

	if (argc >= 1 && strcmp(argv[0], "add") == 0)
		return message ? msg_add(s, argc, argv) : fp_add(s, argc, argv);
	if (argc >= 1 && strcmp(argv[0], "list") == 0) {
		if (opt_parse(message ? &msg_list_cmd : &fp_list_cmd, &a, argc, argv, 1, NULL, NULL) != OPT_GO)
			return CE_ARG;
		return message ? sms_msg_list(s, a.active ? now : -1, 100000, sms_osd_print_msg, stdout, &n)
			: sms_fp_list(s, a.active ? now : -1, 100000, sms_osd_print_fp, stdout, &n);
	}
	if (argc >= 1 && strcmp(argv[0], "delete") == 0) {
		if (opt_parse(message ? &msg_delete_cmd : &fp_delete_cmd, &a, argc, argv, 1, &ids, &na) != OPT_GO)
			return CE_ARG;
		if (parse_u64(ids, INT64_MAX, &id) != 0) {
			fprintf(stderr, "castellan sms: bad id '%s'\n", ids);
			return CE_ARG;
		}
		r = message ? sms_msg_delete(s, (int64_t)id, "cli") : sms_fp_delete(s, (int64_t)id, "cli");
		if (r == 0)
			printf("%s %" PRIu64 " deleted\n", message ? "message" : "fingerprint", id);
		return r;
	}
	{
		const struct opt_cmd *const *m = cli_sms_more_cmds + (message ? 5 : 2);
		const struct opt_cmd *const three[] = { m[0], m[1], m[2], NULL }; /* add, list, delete */

		opt_help_subs(stderr, NULL, three, NULL);
	}
	return CE_ARG;
}
