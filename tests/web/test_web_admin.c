/*
 * test_web_admin.c - the store calls behind the admin console (store.h
 * "admin calls"), on SQLite and on a real PostgreSQL: cards by info text
 * (with LIKE metacharacters taken literally), package rename, API key
 * listing and revocation (a revoked key is refused at once, audited once),
 * the public audit call; and lib/log.h's ring of recent lines.
 * The KMS view (view.h): a KMS made with the CLI read without its
 * passphrase, a table of bad directories, and GET /web/api/kms on a real
 * `castellan web serve --kms-dir`: admin only (403), bad paths refused.
 */
#define SMS_TEST_PG_PORT 5446
#include "../sms/sms_testdb.h"
#include "lib/log.h"

static int acc_serial(void *ctx, const struct sms_card *c)
{
	uint64_t *v = ctx;

	v[++v[0]] = c->serial;
	return 0;
}

static void add_card(struct sms_store *s, uint64_t serial, const char *name, const char *info)
{
	struct sms_card c = {.serial = serial, .finish = 2000000000};
	struct sms_card_change ch = {.has_name = true, .has_info = true};

	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	snprintf(ch.name, sizeof(ch.name), "%s", name);
	snprintf(ch.info, sizeof(ch.info), "%s", info);
	assert_int_equal(sms_card_change(s, serial, &ch, "t", NULL), 0);
}

static void test_find_info(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card_filter f = {.state = -1};
	static const struct {
		const char *q;
		size_t n;
		uint64_t first;
	} table[] = {
	    {"flat 7", 1, 2100000001},  {"FLAT", 2, 2100000001}, {"100%", 1, 2100000003},
	    {"0% o", 1, 2100000003},	{"a_b", 1, 2100000002},	 {", a_", 1, 2100000002},
	    {"a\\b", 0, 0},		{"nowhere", 0, 0},	 {"", 4, 2100000001},
	    {"0%o", 0, 0},		{"axb", 0, 0}, /* % and _ are not wildcards */
	};
	uint64_t got[16];
	size_t n;

	add_card(s, 2100000001, "ann", "Dish on the balcony, Flat 7");
	add_card(s, 2100000002, "bob", "flat 9, a_b");
	add_card(s, 2100000003, "cy", "discount 100% off");
	add_card(s, 2100000004, "dan", "");
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		memset(got, 0, sizeof(got));
		assert_int_equal(sms_card_find_info(s, &f, table[i].q, 0, 10, acc_serial, got, &n), 0);
		if (n != table[i].n)
			fail_msg("info %s: %zu cards, want %zu", table[i].q, n, table[i].n);
		if (n)
			assert_true(got[1] == table[i].first);
	}
	/* combined with the other filters */
	snprintf(f.name, sizeof(f.name), "bob");
	assert_int_equal(sms_card_find_info(s, &f, "flat", 0, 10, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	f.name[0] = '\0';
	assert_int_equal(sms_card_find_info(s, &f, "flat", 2100000001, 10, NULL, NULL, &n), 0);
	assert_int_equal(n, 1); /* cursor */
	assert_int_equal(sms_card_find_info(s, &f, "\x01", 0, 10, NULL, NULL, &n), CE_RANGE);
	/* under 3 characters: no trigram, refused (store.h, text search) */
	assert_int_equal(sms_card_find_info(s, &f, "%", 0, 10, NULL, NULL, &n), CE_ARG);
	assert_int_equal(sms_card_find_info(s, &f, "_", 0, 10, NULL, NULL, &n), CE_ARG);
	assert_int_equal(sms_card_find_info(s, &f, "\\", 0, 10, NULL, NULL, &n), CE_ARG);
	assert_int_equal(sms_card_find_info(s, &f, "x", 0, 0, NULL, NULL, &n), CE_RANGE);
	sms_store_close(s);
}

static int acc_key(void *ctx, const struct sms_apikey *k)
{
	struct sms_apikey *out = ctx;

	out[out[0].id++ + 1] = *k;
	return 0;
}

static int count_audit(void *ctx, const struct sms_audit *a)
{
	if (strstr(a->what, "api key revoke") || strstr(a->what, "package rename") || strstr(a->what, "panel user"))
		(*(int *)ctx)++;
	return 0;
}

static void test_rename_keys(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_package p;
	struct sms_apikey keys[8];
	char k1[65], k2[65], user[SMS_NAME_MAX + 1];
	unsigned sc;
	size_t n;
	int64_t uid;
	int na = 0;

	assert_int_equal(sms_package_add(s, 40, "Sports", "t"), 0);
	assert_int_equal(sms_package_rename(s, 40, "Sports UHD", "web:admin"), 0);
	assert_int_equal(sms_package_get(s, 40, &p), 0);
	assert_string_equal(p.name, "Sports UHD");
	assert_int_equal(sms_package_rename(s, 41, "x", "t"), CE_NOT_FOUND);
	assert_int_equal(sms_package_rename(s, 40, "package 3", "t"), CE_EXISTS);
	assert_int_equal(sms_package_rename(s, 40, "", "t"), CE_RANGE);
	assert_int_equal(sms_package_rename(s, 70000, "y", "t"), CE_RANGE);

	assert_int_equal(sms_user_add(s, "billing", "t", &uid), 0);
	assert_int_equal(sms_apikey_create(s, "billing", SMS_SCOPE_READ, "t", k1), 0);
	assert_int_equal(sms_apikey_create(s, "billing", SMS_SCOPE_READ | SMS_SCOPE_WRITE, "t", k2), 0);
	memset(keys, 0, sizeof(keys));
	assert_int_equal(sms_apikey_list(s, 0, 10, acc_key, keys, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(keys[1].user, "billing");
	assert_int_equal(strlen(keys[1].hash_prefix), 8);
	assert_int_equal(keys[2].scopes, SMS_SCOPE_READ | SMS_SCOPE_WRITE);
	assert_false(keys[1].revoked);
	assert_null(strstr(keys[1].hash_prefix, k1)); /* never the key */

	assert_int_equal(sms_apikey_check(s, k1, &sc, user), 0);
	assert_int_equal(sms_apikey_revoke(s, keys[1].id, "web:admin"), 0);
	assert_int_equal(sms_apikey_check(s, k1, &sc, user), CE_NOT_FOUND);
	assert_int_equal(sms_apikey_check(s, k2, &sc, user), 0); /* the other key still works */
	assert_int_equal(sms_apikey_revoke(s, keys[1].id, "web:admin"), 0); /* twice: no error */
	assert_int_equal(sms_apikey_revoke(s, 9999, "t"), CE_NOT_FOUND);
	assert_int_equal(sms_apikey_revoke(s, 0, "t"), CE_NOT_FOUND);
	memset(keys, 0, sizeof(keys));
	assert_int_equal(sms_apikey_list(s, 0, 10, acc_key, keys, &n), 0);
	assert_true(keys[1].revoked && !keys[2].revoked);
	assert_int_equal(sms_apikey_list(s, keys[1].id, 10, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);

	assert_int_equal(sms_audit_add(s, "web:admin", "panel user add olga role=operator"), 0);
	assert_int_equal(sms_audit_add(s, "web:admin", ""), CE_RANGE);
	assert_int_equal(sms_audit_list(s, 100, count_audit, &na), 0);
	assert_int_equal(na, 3); /* one rename, one revoke (not two), one panel user */
	sms_store_close(s);
}

struct ring_acc {
	unsigned long long last;
	size_t n;
	char first[LOG_RING_LINE_MAX];
};

static void acc_ring(void *ctx, unsigned long long seq, const char *line)
{
	struct ring_acc *a = ctx;

	if (a->n++ == 0)
		snprintf(a->first, sizeof(a->first), "%s", line);
	assert_true(seq > a->last);
	a->last = seq;
}

static void test_log_ring(void **state)
{
	struct ring_acc a = {0};
	FILE *devnull = fopen("/dev/null", "w");
	char big[600];

	(void)state;
	assert_non_null(devnull);
	log_reset();
	log_set_file(devnull);
	log_ring_read(0, acc_ring, &a);
	assert_int_equal(a.n, 0);
	LOG_INFO("t", "line %d", 1);
	LOG_DEBUG("t", "not at this level");
	log_ring_read(0, acc_ring, &a);
	assert_int_equal(a.n, 1);
	assert_non_null(strstr(a.first, "INFO  t: line 1"));
	for (int i = 2; i <= LOG_RING_LINES + 10; i++)
		LOG_WARN("t", "line %d", i);
	memset(&a, 0, sizeof(a));
	log_ring_read(0, acc_ring, &a);
	assert_int_equal(a.n, LOG_RING_LINES); /* the oldest went */
	assert_non_null(strstr(a.first, "line 11"));
	assert_int_equal(a.last, LOG_RING_LINES + 10);
	memset(&a, 0, sizeof(a));
	a.last = LOG_RING_LINES + 7;
	log_ring_read(LOG_RING_LINES + 7, acc_ring, &a); /* only newer than "after" */
	assert_int_equal(a.n, 3);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	LOG_ERR("t", "%s", big); /* cut, not overflowed */
	memset(&a, 0, sizeof(a));
	a.last = LOG_RING_LINES + 10;
	log_ring_read(LOG_RING_LINES + 10, acc_ring, &a);
	assert_int_equal(a.n, 1);
	assert_int_equal(strlen(a.first), LOG_RING_LINE_MAX - 1);
	log_reset();
	fclose(devnull);
}

/* ---- the KMS view -------------------------------------------------------- */
#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <jansson.h>
#include "kms/view.h"

/* dir/kms: init, one order of 3 chips, vendor 0x4adc added then revoked,
 * vendor 0x4add added: all through the CLI, as an operator would. */
static void make_kms(char *dir, size_t cap)
{
	const char *bin = getenv("CASTELLAN_BIN");

	assert_non_null(bin);
	snprintf(dir, cap, "/tmp/castellan-webkms-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(tu_run("(cd '%s' && export CASTELLAN_PASSPHRASE=kms-pass-123456 && "
			    "printf 'chip_id\\n0x1000\\n0x1001\\n0x1002\\n' > c.csv && "
			    "'%s' kms init --dir kms --scrypt-log2n 10 && '%s' kms order import --dir kms c.csv && "
			    "'%s' kms keygen --type x25519 --out a.key --pub a.pub && "
			    "'%s' kms vendor add --dir kms --id 0x4adc --pub a.pub && '%s' kms revoke --dir kms --vendor 0x4adc && "
			    "'%s' kms keygen --type x25519 --out b.key --pub b.pub && "
			    "'%s' kms vendor add --dir kms --id 0x4add --pub b.pub) >/dev/null 2>&1",
			    dir, bin, bin, bin, bin, bin, bin, bin),
			 0);
}

static json_t *kms_view(const char *dir)
{
	char k[300];
	json_t *o = NULL;

	snprintf(k, sizeof(k), "%s/kms", dir);
	assert_int_equal(kms_view_json(k, &o), 0);
	return o;
}

static const char *vendor_field(json_t *o, const char *id, const char *f)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(o, "vendors"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0)
			return json_is_boolean(json_object_get(v, f)) ? (json_is_true(json_object_get(v, f)) ? "true" : "false")
								       : json_string_value(json_object_get(v, f));
	}
	return NULL;
}

static void test_kms_view(void **state)
{
	char dir[64], fp[17], p[300], q[300];
	uint8_t *pub = NULL;
	size_t n = 0;
	json_t *o, *ord, *au;

	(void)state;
	make_kms(dir, sizeof(dir));
	o = kms_view(dir);
	assert_string_equal(json_string_value(json_object_get(o, "master")), "passphrase");
	assert_non_null(strstr(json_string_value(json_object_get(o, "sealed")), "state.bin"));
	ord = json_array_get(json_object_get(o, "orders"), 0);
	assert_non_null(ord);
	assert_string_equal(json_string_value(json_object_get(ord, "file")), "000001.ord");
	assert_int_equal(json_integer_value(json_object_get(ord, "order")), 1);
	assert_int_equal(json_integer_value(json_object_get(ord, "chips")), 3);
	assert_string_equal(json_string_value(json_object_get(ord, "first_chip")), "0x0000000000001000");
	assert_string_equal(json_string_value(json_object_get(ord, "last_chip")), "0x0000000000001002");
	/* vendors: revoked flag and the fingerprint = the first 8 bytes of the key file's hex */
	assert_string_equal(vendor_field(o, "0x4adc", "revoked"), "true");
	assert_string_equal(vendor_field(o, "0x4add", "revoked"), "false");
	snprintf(p, sizeof(p), "%s/b.pub", dir);
	assert_int_equal(file_read_all(p, 200, &pub, &n), 0);
	assert_true(n >= 16);
	snprintf(fp, sizeof(fp), "%.16s", (const char *)pub);
	free(pub);
	assert_string_equal(vendor_field(o, "0x4add", "pub_fingerprint"), fp);
	au = json_object_get(o, "audit");
	assert_true(json_is_true(json_object_get(au, "chain_ok")));
	assert_int_equal(json_integer_value(json_object_get(au, "entries")), 6);
	assert_int_equal(json_array_size(json_object_get(au, "lines")), 6);
	assert_true(json_is_null(json_object_get(o, "crl")));
	json_decref(o);

	/* Bad cases: each is shown as such, never followed, never fatal. */
	/* 1. an altered audit line: chain broken at line 2 */
	assert_int_equal(tu_run("cd '%s/kms' && cp audit.log a.bak && sed -i 's/chips=3/chips=4/' audit.log", dir), 0);
	o = kms_view(dir);
	au = json_object_get(o, "audit");
	assert_true(json_is_false(json_object_get(au, "chain_ok")));
	assert_int_equal(json_integer_value(json_object_get(au, "bad_line")), 2);
	json_decref(o);
	/* 2. audit.log a symlink to a file outside: refused, not read */
	assert_int_equal(tu_run("cd '%s/kms' && rm audit.log && ln -s /etc/passwd audit.log", dir), 0);
	o = kms_view(dir);
	au = json_object_get(o, "audit");
	assert_true(json_is_false(json_object_get(au, "chain_ok")));
	assert_int_equal(json_array_size(json_object_get(au, "lines")), 0);
	json_decref(o);
	assert_int_equal(tu_run("cd '%s/kms' && rm audit.log && mv a.bak audit.log", dir), 0);
	/* 3. order files: a symlink, a truncated copy, a bad magic, names not NNNNNN.ord */
	assert_int_equal(tu_run("cd '%s/kms/orders' && ln -s /etc/passwd 000002.ord && head -c 100 000001.ord > 000003.ord && "
			    "(printf XXXXXXXX; tail -c +9 000001.ord) > 000004.ord && cp 000001.ord 1.ord && "
			    "cp 000001.ord 0000010.ord && mkdir 000005.ord",
			    dir),
			 0);
	o = kms_view(dir);
	ord = json_object_get(o, "orders");
	assert_int_equal(json_array_size(ord), 5);
	assert_int_equal(json_integer_value(json_object_get(o, "chips_total")), 3);
	for (size_t i = 1; i < 5; i++)
		assert_non_null(json_string_value(json_object_get(json_array_get(ord, i), "error")));
	assert_int_equal(json_array_size(json_object_get(o, "orders_skipped")), 2);
	json_decref(o);
	/* 4. a crl.bin that is not a CRL */
	assert_int_equal(tu_run("printf 'CSTLCRL1garbage' > '%s/kms/crl.bin'", dir), 0);
	o = kms_view(dir);
	assert_non_null(json_string_value(json_object_get(json_object_get(o, "crl"), "error")));
	json_decref(o);
	/* 5. not a directory */
	snprintf(q, sizeof(q), "%s/c.csv", dir);
	assert_int_equal(kms_view_json(q, &o), CE_NOT_FOUND);
	assert_int_equal(kms_view_json("/nonexistent/kms", &o), CE_NOT_FOUND);
	assert_int_equal(tu_run("rm -rf '%s'", dir), 0);
}

struct ksrv {
	char dir[64];
	pid_t pid;
	uint16_t port;
};

/* One request; the status code, the body in body (cap bytes). */
static int kreq(const struct ksrv *s, const char *method, const char *path, const char *headers, const char *body,
		char *out, size_t cap)
{
	char req[4096], buf[65536];
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s->port)};
	size_t got = 0;
	ssize_t k;
	int fd = socket(AF_INET, SOCK_STREAM, 0), n;
	const char *sep;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n%s",
		     method, path, headers ? headers : "", body ? strlen(body) : 0, body ? body : "");
	assert_int_equal(write(fd, req, (size_t)n), n);
	while (got + 1 < sizeof(buf) && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)k;
	close(fd);
	buf[got] = 0;
	assert_true(got > 12 && strncmp(buf, "HTTP/1.1 ", 9) == 0);
	if (out) {
		sep = strstr(buf, "\r\n\r\n");
		snprintf(out, cap, "%s", sep ? sep + 4 : "");
		/* keep the headers too, for the login */
		if (sep && cap > (size_t)(sep - buf) + 1 && strncmp(path, "/web/api/login", 14) == 0)
			snprintf(out, cap, "%s", buf);
	}
	return (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
}

static void ksrv_start(struct ksrv *s, const char *kms)
{
	char pw[128], ready[128], data[128], root[4096], *bin = getenv("CASTELLAN_BIN");
	FILE *f;

	snprintf(pw, sizeof(pw), "%s/pw", s->dir);
	snprintf(ready, sizeof(ready), "%s/ready", s->dir);
	snprintf(data, sizeof(data), "%s/data", s->dir);
	snprintf(root, sizeof(root), "%s/../../web", getenv("CASTELLAN_TESTDATA"));
	assert_non_null(f = fopen(pw, "w"));
	fputs("admin-password-1\n", f);
	fclose(f);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execl(bin, bin, "web", "--data", data, "serve", "--http", "127.0.0.1:0", "--root", root,
		      "--admin-password-file", pw, "--ready-file", ready, "--kms-dir", kms, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300; i++) { /* bounded: 30 s */
		unsigned port = 0;

		if ((f = fopen(ready, "r"))) {
			int ok = fscanf(f, "http=%u", &port);

			fclose(f);
			if (ok == 1 && port) {
				s->port = (uint16_t)port;
				return;
			}
		}
		usleep(100000);
	}
	fail_msg("castellan web serve --kms-dir did not start");
}

/* Sign in: the cookie + CSRF header lines for later requests. */
static void klogin(const struct ksrv *s, const char *user, const char *pw, char *hd, size_t cap)
{
	char body[256], out[8192];
	const char *c, *t;

	snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\"}", user, pw);
	assert_int_equal(kreq(s, "POST", "/web/api/login", "Content-Type: application/json\r\n", body, out, sizeof(out)), 200);
	assert_non_null(c = strstr(out, "castellan_session="));
	assert_non_null(t = strstr(out, "\"csrf\":\""));
	snprintf(hd, cap, "Cookie: castellan_session=%.64s\r\nX-CSRF-Token: %.64s\r\nContent-Type: application/json\r\n", c + 18, t + 8);
}

static void test_kms_api(void **state)
{
	static const char *const bad_paths[] = {
	    "/web/api/kms/", "/web/api/kms/../kms", "/web/api/kms/state.bin", "/web/api/kms/orders/000001.ord",
	    "/web/api/kms%2f..%2fstate.bin", "/web/api/kms/..%2fmaster.key", "/web/api/kmsx", "/web/api/KMS",
	};
	char dir[64], kms[128], ad[512], op[512], body[65536], nd[128];
	struct ksrv s = {0};
	int st = 0;

	(void)state;
	make_kms(dir, sizeof(dir));
	snprintf(kms, sizeof(kms), "%s/kms", dir);
	snprintf(s.dir, sizeof(s.dir), "%s", dir);
	ksrv_start(&s, kms);
	assert_int_equal(kreq(&s, "GET", "/web/api/kms", NULL, NULL, body, sizeof(body)), 401);
	klogin(&s, "admin", "admin-password-1", ad, sizeof(ad));
	assert_int_equal(kreq(&s, "GET", "/web/api/kms", ad, NULL, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"file\":\"000001.ord\""));
	assert_non_null(strstr(body, "\"chain_ok\":true"));
	assert_null(strstr(body, "kms-pass")); /* never unlocked: nothing to leak */
	assert_int_equal(kreq(&s, "POST", "/web/api/kms", ad, "{}", body, sizeof(body)), 405);
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		int c = kreq(&s, "GET", bad_paths[i], ad, NULL, body, sizeof(body));

		if (c != 404 && c != 400)
			fail_msg("%s: %d, want 404", bad_paths[i], c);
		assert_null(strstr(body, "CSTL")); /* no KMS file content */
	}
	/* non-admins: 403 */
	assert_int_equal(kreq(&s, "POST", "/web/api/users", ad, "{\"name\":\"olga\",\"password\":\"operator-pw-1\",\"role\":\"operator\"}", NULL, 0), 204);
	assert_int_equal(kreq(&s, "POST", "/web/api/users", ad, "{\"name\":\"rita\",\"password\":\"readonly-pw-1\",\"role\":\"read-only\"}", NULL, 0), 204);
	klogin(&s, "olga", "operator-pw-1", op, sizeof(op));
	assert_int_equal(kreq(&s, "GET", "/web/api/kms", op, NULL, body, sizeof(body)), 403);
	assert_null(strstr(body, "000001.ord"));
	klogin(&s, "rita", "readonly-pw-1", op, sizeof(op));
	assert_int_equal(kreq(&s, "GET", "/web/api/kms", op, NULL, body, sizeof(body)), 403);
	kill(s.pid, SIGTERM);
	assert_int_equal(waitpid(s.pid, &st, 0), s.pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* --kms-dir that is not a directory: the server refuses to start */
	snprintf(nd, sizeof(nd), "%s/c.csv", dir);
	assert_int_not_equal(tu_run("'%s' web --data '%s/d2' serve --http 127.0.0.1:0 --admin-password-file '%s/pw' --kms-dir '%s' >/dev/null 2>&1",
				getenv("CASTELLAN_BIN"), dir, dir, nd),
			     0);
	assert_int_equal(tu_run("rm -rf '%s'", dir), 0);
}

int main(void)
{
	const struct CMUnitTest store_tests[] = {
	    cmocka_unit_test(test_find_info),
	    cmocka_unit_test(test_rename_keys),
	};
	const struct CMUnitTest ring_tests[] = {
	    cmocka_unit_test(test_log_ring),
	};
	const struct CMUnitTest kms_tests[] = {
	    cmocka_unit_test(test_kms_view),
	    cmocka_unit_test(test_kms_api),
	};
	int fails = cmocka_run_group_tests_name("log ring", ring_tests, NULL, NULL);

	fails += cmocka_run_group_tests_name("kms view", kms_tests, NULL, NULL);

	(void)tdb_fingerprint; /* sms_testdb.h's, unused here */

	return fails + tdb_run_both("web_admin", store_tests, sizeof(store_tests) / sizeof(store_tests[0]));
}
