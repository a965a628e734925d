/*
 * session.c - session table, cookie parsing and CSRF check (session.h).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "web/session.h"
#include "lib/util.h"

struct web_sessions {
	struct web_session s[WEB_SESSIONS_MAX];
};

int web_sessions_new(struct web_sessions **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : CE_NOMEM;
}

void web_sessions_free(struct web_sessions *ws)
{
	if (ws)
		secret_free(ws, sizeof(*ws));
}

static int random_token(char out[WEB_TOKEN_HEX + 1])
{
	uint8_t b[WEB_TOKEN_HEX / 2];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return CE_CRYPTO;
	hex_encode(b, sizeof(b), out);
	secret_wipe(b, sizeof(b));
	return 0;
}

void web_session_end(struct web_sessions *ws, struct web_session *s)
{
	(void)ws;
	if (s)
		secret_wipe(s, sizeof(*s));
}

static bool expired(const struct web_session *s, uint64_t now_ms)
{
	return now_ms - s->seen_ms > WEB_SESSION_IDLE_MS || now_ms - s->created_ms > WEB_SESSION_ABS_MS;
}

int web_session_create(struct web_sessions *ws, const char *user, enum web_role role, uint64_t now_ms,
		       struct web_session **out)
{
	struct web_session *slot = NULL, *lru = &ws->s[0];
	int r;

	*out = NULL;
	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
		struct web_session *s = &ws->s[i];

		if (s->used && expired(s, now_ms))
			web_session_end(ws, s);
		if (!s->used && !slot)
			slot = s;
		if (s->used && s->seen_ms < lru->seen_ms)
			lru = s;
	}
	if (!slot) {
		web_session_end(ws, lru);
		slot = lru;
	}
	if ((r = random_token(slot->id)) != 0 || (r = random_token(slot->csrf)) != 0) {
		web_session_end(ws, slot);
		return r;
	}
	snprintf(slot->user, sizeof(slot->user), "%s", user);
	slot->role = role;
	slot->created_ms = slot->seen_ms = now_ms;
	slot->used = true;
	*out = slot;
	return 0;
}

struct web_session *web_session_find(struct web_sessions *ws, const char *id, uint64_t now_ms)
{
	struct web_session *hit = NULL;

	if (!web_token_valid(id))
		return NULL;
	/* Compare every slot in constant time; which one matched is not
	 * visible in the timing either. */
	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
		struct web_session *s = &ws->s[i];

		if (s->used && CRYPTO_memcmp(s->id, id, WEB_TOKEN_HEX) == 0)
			hit = s;
	}
	if (!hit)
		return NULL;
	if (expired(hit, now_ms)) {
		web_session_end(ws, hit);
		return NULL;
	}
	hit->seen_ms = now_ms;
	return hit;
}

void web_session_end_user(struct web_sessions *ws, const char *user)
{
	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
		if (ws->s[i].used && strcmp(ws->s[i].user, user) == 0)
			web_session_end(ws, &ws->s[i]);
	}
}

void web_session_end_user_except(struct web_sessions *ws, const char *user, const struct web_session *keep)
{
	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
		if (ws->s[i].used && &ws->s[i] != keep && strcmp(ws->s[i].user, user) == 0)
			web_session_end(ws, &ws->s[i]);
	}
}

size_t web_session_count(const struct web_sessions *ws)
{
	size_t n = 0;

	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++)
		n += ws->s[i].used;
	return n;
}

bool web_token_valid(const char *t)
{
	size_t i;

	if (!t)
		return false;
	for (i = 0; i < WEB_TOKEN_HEX; i++) {
		if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
			return false;
	}
	return t[i] == '\0';
}

bool web_csrf_ok(const struct web_session *s, const char *header)
{
	if (!s || !web_token_valid(header))
		return false;
	return CRYPTO_memcmp(s->csrf, header, WEB_TOKEN_HEX) == 0;
}

/* RFC 6265 section 4.2.1: cookie-pair *( ";" SP cookie-pair ); we also
 * accept missing or extra spaces and tabs around pairs, as browsers do. */
int web_cookie_find(const char *header, size_t len, const char *name, char *out, size_t cap)
{
	size_t off = 0, nlen = strlen(name);
	bool found = false;

	if (cap == 0)
		return CE_ARG;
	out[0] = '\0';
	if (len > WEB_COOKIE_HEADER_MAX)
		return CE_LIMIT;
	while (off < len) {
		size_t k0, k1, v0, v1;

		while (off < len && (header[off] == ' ' || header[off] == '\t'))
			off++;
		if (off == len)
			break;
		k0 = off;
		while (off < len && header[off] != '=' && header[off] != ';') {
			if (header[off] == '\0')
				return CE_FORMAT;
			off++;
		}
		if (off == len || header[off] != '=')
			return CE_FORMAT; /* a pair without '=' */
		k1 = off++;
		while (k1 > k0 && (header[k1 - 1] == ' ' || header[k1 - 1] == '\t'))
			k1--;
		if (k1 == k0)
			return CE_FORMAT;
		while (off < len && (header[off] == ' ' || header[off] == '\t'))
			off++;
		v0 = off;
		while (off < len && header[off] != ';') {
			if (header[off] == '\0')
				return CE_FORMAT;
			off++;
		}
		v1 = off;
		while (v1 > v0 && (header[v1 - 1] == ' ' || header[v1 - 1] == '\t'))
			v1--;
		if (v1 - v0 >= 2 && header[v0] == '"' && header[v1 - 1] == '"') {
			v0++;
			v1--;
		}
		if (off < len)
			off++; /* the ';' */
		if (k1 - k0 != nlen || memcmp(header + k0, name, nlen) != 0)
			continue;
		if (found)
			return CE_FORMAT;
		if (v1 - v0 > cap - 1)
			return CE_LIMIT;
		memcpy(out, header + v0, v1 - v0);
		out[v1 - v0] = '\0';
		found = true;
	}
	return found ? 0 : CE_NOT_FOUND;
}
