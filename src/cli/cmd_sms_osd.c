/*
 * cmd_sms_osd.c - `castellan sms fingerprint ...` and `castellan sms
 * message ...` (issue 13): the SMS's fingerprint schedules and messages
 * (sms/store_osd.h). Every command goes through the store, which writes
 * its entry in the audit chain. docs/sms.md "Fingerprints and messages".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "lib/util.h"
#include "sms/store.h"
#include "sms/store_osd.h"

/* Usage lines, printed by `castellan sms --help` (cmd_sms.c). */
const char cli_sms_osd_usage[] =
	"  fingerprint add (--service SID | --package ID | --card SERIAL) [--show serial|box|both]\n"
	"         [--covert [--encoded]] [--x PCT --y PCT | --random] [--fg RRGGBB] [--bg RRGGBBAA]\n"
	"         [--font-px N] [--duration-ms MS] [--repeat N --interval S] [--start UNIX] [--end UNIX]\n"
	"                                 schedule a fingerprint: a service's or package's rides in its\n"
	"                                 ECMs, a card's in its EMMs; covert: shown <= 200 ms, or with\n"
	"                                 --encoded as a code only the operator can trace (docs/sms.md)\n"
	"  fingerprint list [--active]    every schedule (or those active now)\n"
	"  fingerprint delete ID\n"
	"  message add (--global | --group PKG | --card SERIAL) --text TEXT [--popup] [--forced]\n"
	"         [--duration S] [--expiry UNIX] [--start UNIX] [--fg RRGGBB] [--bg RRGGBBAA] [--font-px N]\n"
	"                                 an OSD message (UTF-8, up to 720 bytes) in the EMMs of every\n"
	"                                 card, of a package's subscribers or of one card, until --expiry\n"
	"  message list [--active]        every message (or those active now)\n"
	"  message delete ID\n";

static int num(const char *s, uint64_t max, uint64_t *out, const char *what)
{
	if (parse_u64(s, max, out) != 0) {
		fprintf(stderr, "castellan sms: bad %s '%s'\n", what, s);
		return CE_ARG;
	}
	return 0;
}

static int colour(const char *s, uint8_t *out, size_t n, const char *what)
{
	if (!s)
		return 0;
	if (s[0] == '#')
		s++;
	if (strlen(s) != 2 * n || hex_decode(s, out, n) != 0) {
		fprintf(stderr, "castellan sms: bad %s '%s' (%zu hex digits)\n", what, s, 2 * n);
		return CE_ARG;
	}
	return 0;
}

static int print_fp(void *ctx, const struct sms_fingerprint *f)
{
	(void)ctx;
	printf("%" PRId64 " %s %" PRIu64 " %s%s%s%s pos %s%u,%u fg #%02X%02X%02X bg #%02X%02X%02X%02X font %u"
	       " %u ms x%u every %u s %" PRId64 "..%" PRId64 "\n", f->id, sms_fp_target_name(f->target), f->value,
	       (f->fp.flags & OSD_FP_COVERT) ? "covert" : "overt", (f->fp.flags & OSD_FP_ENCODED) ? " encoded" : "",
	       (f->fp.flags & OSD_FP_SERIAL) ? " serial" : "", (f->fp.flags & OSD_FP_BOX) ? " box" : "",
	       (f->fp.flags & OSD_FP_RANDOM_POS) ? "random " : "", f->fp.x_pct, f->fp.y_pct, f->fp.fg[0], f->fp.fg[1],
	       f->fp.fg[2], f->fp.bg[0], f->fp.bg[1], f->fp.bg[2], f->fp.bg[3], f->fp.font_px, f->fp.duration_ms,
	       f->fp.repeat, f->fp.interval_s, f->start_s, f->end_s);
	return 0;
}

static int print_msg(void *ctx, const struct sms_message *m)
{
	const char *scope = m->msg.scope == OSD_SCOPE_GLOBAL ? "global" : m->msg.scope == OSD_SCOPE_GROUP ? "group"
		: "card";

	(void)ctx;
	printf("%" PRId64 " %s %" PRIu64 " %s%s %u s %" PRId64 "..%" PRIu64 " %s\n", m->id, scope,
	       m->msg.scope == OSD_SCOPE_GROUP ? (uint64_t)m->msg.group_id : m->card,
	       (m->msg.flags & OSD_MSG_POPUP) ? "popup" : "scroll", (m->msg.flags & OSD_MSG_FORCED) ? " forced" : "",
	       m->msg.duration_s, m->start_s, m->msg.expiry_s, m->msg.text);
	return 0;
}

static int fp_add(struct sms_store *s, int argc, char **argv)
{
	const char *svc = cli_opt(argc, argv, 0, "--service"), *pkg = cli_opt(argc, argv, 0, "--package");
	const char *card = cli_opt(argc, argv, 0, "--card"), *show = cli_opt(argc, argv, 0, "--show");
	const char *x = cli_opt(argc, argv, 0, "--x"), *y = cli_opt(argc, argv, 0, "--y");
	const char *font = cli_opt(argc, argv, 0, "--font-px"), *dur = cli_opt(argc, argv, 0, "--duration-ms");
	const char *rep = cli_opt(argc, argv, 0, "--repeat"), *ivl = cli_opt(argc, argv, 0, "--interval");
	const char *start = cli_opt(argc, argv, 0, "--start"), *end = cli_opt(argc, argv, 0, "--end");
	bool covert = cli_flag(argc, argv, 0, "--covert"), encoded = cli_flag(argc, argv, 0, "--encoded");
	struct sms_fingerprint f;
	uint64_t v;
	int64_t now = (int64_t)(now_wall_ms() / 1000u);
	int r;

	memset(&f, 0, sizeof(f));
	if (!!svc + !!pkg + !!card != 1) {
		fprintf(stderr, "castellan sms: fingerprint add needs one of --service, --package, --card\n");
		return CE_ARG;
	}
	f.target = svc ? SMS_FP_SERVICE : pkg ? SMS_FP_PACKAGE : SMS_FP_CARD;
	if ((r = num(svc ? svc : pkg ? pkg : card, INT64_MAX, &f.value, "target")) != 0)
		return r;
	f.fp.flags = !show || strcmp(show, "serial") == 0 ? OSD_FP_SERIAL : strcmp(show, "box") == 0 ? OSD_FP_BOX
		: strcmp(show, "both") == 0 ? (OSD_FP_SERIAL | OSD_FP_BOX) : 0;
	if (!f.fp.flags) {
		fprintf(stderr, "castellan sms: --show serial|box|both\n");
		return CE_ARG;
	}
	if (covert)
		f.fp.flags |= OSD_FP_COVERT;
	if (encoded)
		f.fp.flags |= OSD_FP_ENCODED;
	if (cli_flag(argc, argv, 0, "--random"))
		f.fp.flags |= OSD_FP_RANDOM_POS;
	f.fp.x_pct = 5;
	f.fp.y_pct = 5;
	if (x && (r = num(x, 100, &v, "--x")) == 0)
		f.fp.x_pct = (uint8_t)v;
	if (y && (r = num(y, 100, &v, "--y")) == 0)
		f.fp.y_pct = (uint8_t)v;
	if (r != 0)
		return r;
	memcpy(f.fp.fg, "\xFF\xFF\xFF", 3);
	memcpy(f.fp.bg, "\x00\x00\x00\x80", 4);
	if ((r = colour(cli_opt(argc, argv, 0, "--fg"), f.fp.fg, 3, "--fg")) != 0 ||
	    (r = colour(cli_opt(argc, argv, 0, "--bg"), f.fp.bg, 4, "--bg")) != 0)
		return r;
	f.fp.font_px = 24;
	f.fp.duration_ms = covert && !encoded ? 80 : 5000;
	f.fp.repeat = 1;
	f.start_s = now;
	f.end_s = now + 24 * 3600;
	if (font && (r = num(font, OSD_MAX_FONT_PX, &v, "--font-px")) == 0)
		f.fp.font_px = (uint8_t)v;
	if (r == 0 && dur && (r = num(dur, OSD_MAX_FP_DURATION_MS, &v, "--duration-ms")) == 0)
		f.fp.duration_ms = (uint32_t)v;
	if (r == 0 && rep && (r = num(rep, OSD_MAX_REPEAT, &v, "--repeat")) == 0)
		f.fp.repeat = (uint16_t)v;
	if (r == 0 && ivl && (r = num(ivl, OSD_MAX_INTERVAL_S, &v, "--interval")) == 0)
		f.fp.interval_s = (uint32_t)v;
	if (r == 0 && start && (r = num(start, INT64_MAX, &v, "--start")) == 0)
		f.start_s = (int64_t)v;
	if (r == 0 && end && (r = num(end, INT64_MAX, &v, "--end")) == 0)
		f.end_s = (int64_t)v;
	if (r != 0)
		return r;
	if (f.target == SMS_FP_SERVICE)
		f.fp.service = (uint16_t)(f.value <= 65535 ? f.value : 0);
	if ((r = sms_fp_add(s, &f, "cli")) != 0)
		return r;
	printf("fingerprint %" PRId64 " added\n", f.id);
	return 0;
}

static int msg_add(struct sms_store *s, int argc, char **argv)
{
	const char *grp = cli_opt(argc, argv, 0, "--group"), *card = cli_opt(argc, argv, 0, "--card");
	const char *text = cli_opt(argc, argv, 0, "--text"), *dur = cli_opt(argc, argv, 0, "--duration");
	const char *exp = cli_opt(argc, argv, 0, "--expiry"), *start = cli_opt(argc, argv, 0, "--start");
	const char *font = cli_opt(argc, argv, 0, "--font-px");
	bool global = cli_flag(argc, argv, 0, "--global");
	struct sms_message *m;
	int64_t now = (int64_t)(now_wall_ms() / 1000u);
	uint64_t v;
	int r = 0;

	if (global + !!grp + !!card != 1 || !text) {
		fprintf(stderr, "castellan sms: message add needs --text and one of --global, --group, --card\n");
		return CE_ARG;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return CE_NOMEM;
	m->msg.scope = global ? OSD_SCOPE_GLOBAL : grp ? OSD_SCOPE_GROUP : OSD_SCOPE_INDIVIDUAL;
	if (grp && (r = num(grp, 31, &v, "--group")) == 0)
		m->msg.group_id = (uint32_t)v;
	if (r == 0 && card && (r = num(card, INT64_MAX, &m->card, "--card")) == 0 && m->card == 0)
		r = CE_RANGE;
	if (r == 0 && (r = osd_msg_set_text(&m->msg, text)) != 0)
		fprintf(stderr, "castellan sms: --text: 1..%d bytes of UTF-8 without control characters\n",
			OSD_MAX_TEXT_BYTES);
	m->msg.flags = (cli_flag(argc, argv, 0, "--popup") ? OSD_MSG_POPUP : 0) |
		(cli_flag(argc, argv, 0, "--forced") ? OSD_MSG_FORCED : 0);
	m->msg.duration_s = 30;
	m->msg.font_px = 24;
	memcpy(m->msg.fg, "\xFF\xFF\xFF", 3);
	memcpy(m->msg.bg, "\x10\x10\x40\xD0", 4);
	m->start_s = now;
	m->msg.expiry_s = (uint64_t)now + 7 * 24 * 3600;
	if (r == 0 && dur && (r = num(dur, OSD_MAX_MSG_DURATION_S, &v, "--duration")) == 0)
		m->msg.duration_s = (uint16_t)v;
	if (r == 0 && exp && (r = num(exp, INT64_MAX, &v, "--expiry")) == 0)
		m->msg.expiry_s = v;
	if (r == 0 && start && (r = num(start, INT64_MAX, &v, "--start")) == 0)
		m->start_s = (int64_t)v;
	if (r == 0 && font && (r = num(font, OSD_MAX_FONT_PX, &v, "--font-px")) == 0)
		m->msg.font_px = (uint8_t)v;
	if (r == 0 && (r = colour(cli_opt(argc, argv, 0, "--fg"), m->msg.fg, 3, "--fg")) == 0)
		r = colour(cli_opt(argc, argv, 0, "--bg"), m->msg.bg, 4, "--bg");
	if (r == 0 && (r = sms_msg_add(s, m, "cli")) == 0)
		printf("message %" PRId64 " added (%u bytes)\n", m->id, (unsigned)m->msg.text_len);
	free(m);
	return r;
}

int cli_sms_osd(struct sms_store *s, bool message, int argc, char **argv)
{
	bool active = cli_flag(argc, argv, 0, "--active");
	int64_t now = (int64_t)(now_wall_ms() / 1000u);
	uint64_t id;
	size_t n = 0;
	int r;

	if (argc >= 1 && strcmp(argv[0], "add") == 0)
		return message ? msg_add(s, argc - 1, argv + 1) : fp_add(s, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "list") == 0) {
		r = message ? sms_msg_list(s, active ? now : -1, 100000, print_msg, NULL, &n)
			: sms_fp_list(s, active ? now : -1, 100000, print_fp, NULL, &n);
		return r;
	}
	if (argc == 2 && strcmp(argv[0], "delete") == 0) {
		if ((r = num(argv[1], INT64_MAX, &id, "id")) != 0)
			return r;
		r = message ? sms_msg_delete(s, (int64_t)id, "cli") : sms_fp_delete(s, (int64_t)id, "cli");
		if (r == 0)
			printf("%s %" PRIu64 " deleted\n", message ? "message" : "fingerprint", id);
		return r;
	}
	fputs(cli_sms_osd_usage, stderr);
	return CE_ARG;
}
