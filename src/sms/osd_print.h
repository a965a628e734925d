/*
 * osd_print.h - one line per fingerprint schedule / message (`castellan sms
 * fingerprint list`, `message list`): callbacks for sms_fp_list and
 * sms_msg_list (store_osd.h) with ctx a FILE *. They return 0.
 */
#ifndef CASTELLAN_SMS_OSD_PRINT_H
#define CASTELLAN_SMS_OSD_PRINT_H

#include "sms/store_osd.h"

int sms_osd_print_fp(void *ctx, const struct sms_fingerprint *f);
int sms_osd_print_msg(void *ctx, const struct sms_message *m);

#endif
