/*
 * panel_keys.h - the head-end's key services for the web panel (web/web.h
 * struct web_keys) over its keystore: the epoch facts and a card's sealed
 * personalization file. The panel gets these two calls, never the keystore.
 */
#ifndef CASTELLAN_HEADEND_PANEL_KEYS_H
#define CASTELLAN_HEADEND_PANEL_KEYS_H

#include "lib/err.h"
#include "web/web.h"

struct keystore;
/* Fill *out for ks (borrowed: outlives every use of *out). */
void headend_panel_keys(const struct keystore *ks, struct web_keys *out);

#endif
