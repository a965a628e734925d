/*
 * session.h - the web panel's sessions: random 256-bit ids carried in a
 * cookie, a per-session CSRF token, idle and absolute expiry; and the
 * parser of the Cookie request header (untrusted input: bounded, fuzzed by
 * fuzz/fuzz_web_cookie.c).
 *
 * Sessions live in memory only (a fixed table of WEB_SESSIONS_MAX; when it
 * is full the least recently used one is ended): a restart signs everyone
 * out, which is the safe default for an operations console. Ids and CSRF
 * tokens come from RAND_bytes, are compared with CRYPTO_memcmp, and are
 * wiped when a session ends. A session is found by its id; only the id's
 * holder (the browser, HttpOnly cookie) and this table know it.
 *
 * CSRF: every state-changing request (anything but GET/HEAD) made with a
 * session cookie must carry the session's token in X-CSRF-Token; the
 * browser's SameSite=Strict already withholds the cookie from other sites,
 * the token is the second lock.
 */
#ifndef CASTELLAN_WEB_SESSION_H
#define CASTELLAN_WEB_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "web/auth.h"

#define WEB_COOKIE_NAME "castellan_session"
#define WEB_SESSIONS_MAX 1024
#define WEB_SESSION_IDLE_MS (30u * 60u * 1000u)	     /* ended after 30 min without a request */
#define WEB_SESSION_ABS_MS (12u * 60u * 60u * 1000u) /* and after 12 h in any case */
#define WEB_TOKEN_HEX 64			     /* 32 random bytes as hex */
#define WEB_COOKIE_HEADER_MAX 8192		     /* a longer Cookie header is refused */

struct web_session {
	bool used;
	char id[WEB_TOKEN_HEX + 1];
	char csrf[WEB_TOKEN_HEX + 1];
	char user[WEB_USER_MAX + 1];
	enum web_role role;
	uint8_t pw_stamp[WEB_PW_STAMP_BYTES]; /* the user's at sign-in: a password change ends it */
	uint64_t created_ms, seen_ms; /* monotonic clock */
};

struct web_sessions;

int web_sessions_new(struct web_sessions **out) WARN_UNUSED;
void web_sessions_free(struct web_sessions *ws);

/* A new session for user (now_ms: monotonic). *out points into the table
 * (valid until the next call that changes it). 0 or CE_CRYPTO. */
int web_session_create(struct web_sessions *ws, const char *user, enum web_role role, uint64_t now_ms,
		       struct web_session **out) WARN_UNUSED;
/* The live session with this id (64 hex digits), its seen time refreshed;
 * NULL if none or expired (an expired one is ended). */
struct web_session *web_session_find(struct web_sessions *ws, const char *id, uint64_t now_ms);
void web_session_end(struct web_sessions *ws, struct web_session *s);
/* End every session of user (deleted, password or role changed). */
void web_session_end_user(struct web_sessions *ws, const char *user);
/* The same but for keep (one's own password change ends one's other sessions). */
void web_session_end_user_except(struct web_sessions *ws, const char *user, const struct web_session *keep);
size_t web_session_count(const struct web_sessions *ws);

/* Find cookie `name` in a Cookie header value ("a=1; b=2") of len bytes:
 * 0 and its value (NUL-terminated) in out; CE_NOT_FOUND if absent;
 * CE_FORMAT (a malformed pair, a NUL byte, the name twice - which is how
 * a sibling domain would try cookie tossing); CE_LIMIT (header over
 * WEB_COOKIE_HEADER_MAX or value over cap-1 bytes). */
int web_cookie_find(const char *header, size_t len, const char *name, char *out, size_t cap) WARN_UNUSED;

/* Does header (X-CSRF-Token, may be NULL) hold s's token? Constant time. */
bool web_csrf_ok(const struct web_session *s, const char *header);

/* A session id or CSRF token: exactly 64 lower-case hex digits. */
bool web_token_valid(const char *t);

#endif
