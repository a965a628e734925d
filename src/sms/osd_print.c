/*
 * osd_print.c - fingerprint schedules and messages as `castellan sms
 * fingerprint list` / `message list` print them (osd_print.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include "sms/osd_print.h"

int sms_osd_print_fp(void *ctx, const struct sms_fingerprint *f)
{
	fprintf(ctx, "%" PRId64 " %s %" PRIu64 " %s%s%s%s pos %s%u,%u fg #%02X%02X%02X bg #%02X%02X%02X%02X font %u"
	       " %u ms x%u every %u s %" PRId64 "..%" PRId64 "\n", f->id, sms_fp_target_name(f->target), f->value,
	       (f->fp.flags & OSD_FP_COVERT) ? "covert" : "overt", (f->fp.flags & OSD_FP_ENCODED) ? " encoded" : "",
	       (f->fp.flags & OSD_FP_SERIAL) ? " serial" : "", (f->fp.flags & OSD_FP_BOX) ? " box" : "",
	       (f->fp.flags & OSD_FP_RANDOM_POS) ? "random " : "", f->fp.x_pct, f->fp.y_pct, f->fp.fg[0], f->fp.fg[1],
	       f->fp.fg[2], f->fp.bg[0], f->fp.bg[1], f->fp.bg[2], f->fp.bg[3], f->fp.font_px, f->fp.duration_ms,
	       f->fp.repeat, f->fp.interval_s, f->start_s, f->end_s);
	return 0;
}

int sms_osd_print_msg(void *ctx, const struct sms_message *m)
{
	const char *scope = m->msg.scope == OSD_SCOPE_GLOBAL ? "global" : m->msg.scope == OSD_SCOPE_GROUP ? "group"
		: "card";

	fprintf(ctx, "%" PRId64 " %s %" PRIu64 " %s%s %u s %" PRId64 "..%" PRIu64 " %s\n", m->id, scope,
	       m->msg.scope == OSD_SCOPE_GROUP ? (uint64_t)m->msg.group_id : m->card,
	       (m->msg.flags & OSD_MSG_POPUP) ? "popup" : "scroll", (m->msg.flags & OSD_MSG_FORCED) ? " forced" : "",
	       m->msg.duration_s, m->start_s, m->msg.expiry_s, m->msg.text);
	return 0;
}
