/*
 * ota.h - moved to ts/ota.h (the OTA carousel sits in the ts layer so the
 * box's runner, client/box.c, can collect it). Kept so that includes not
 * yet updated still compile; new code includes "ts/ota.h".
 */
#ifndef CASTELLAN_HEADEND_OTA_H
#define CASTELLAN_HEADEND_OTA_H
#include "ts/ota.h"
#endif
