/*
 * view.c - GET /web/api/kms's content (view.h): a KMS directory read
 * without its passphrase. Owns only reading: nothing here writes to dir.
 * Every file is opened with O_NOFOLLOW and must be a regular file of a
 * bounded size; every byte read from it goes through struct cur.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "kms/view.h"
#include "cas/cert.h"
#include "kms/kms.h"
#include "lib/cursor.h"
#include "lib/log.h"
#include "lib/util.h"

#define ORDER_HEAD 28u /* "CSTLORD1" | order u32 | N u32 | nonce[12] */

/* Read dir/name (no symlink, regular file, <= max bytes). CE_NOT_FOUND if
 * absent, CE_BLOCKED for a symlink or not a regular file, CE_RANGE too big. */
static int read_plain(const char *dir, const char *name, size_t max, uint8_t **out, size_t *len, int64_t *mtime)
{
	char path[4200];
	struct stat st;
	uint8_t *b = NULL;
	size_t got = 0;
	int fd, r = 0;

	*out = NULL;
	*len = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return CE_RANGE;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0)
		return errno == ENOENT ? CE_NOT_FOUND : errno == ELOOP ? CE_BLOCKED : CE_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		r = CE_BLOCKED;
		goto fail;
	}
	if ((uint64_t)st.st_size > max) {
		r = CE_RANGE;
		goto fail;
	}
	if (mtime)
		*mtime = (int64_t)st.st_mtime;
	if (!(b = malloc((size_t)st.st_size + 1))) {
		r = CE_NOMEM;
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, b + got, (size_t)st.st_size - got);

		if (k <= 0) {
			r = CE_IO;
			goto fail;
		}
		got += (size_t)k;
	}
	close(fd);
	b[got] = 0;
	*out = b;
	*len = got;
	return 0;
fail:
	free(b);
	close(fd);
	return r;
}

/* Printable ASCII copy (anything else becomes '?'): JSON text must be
 * valid UTF-8, and a log line is outside data. */
static json_t *safe_str(const char *s, size_t n)
{
	char buf[800];
	size_t k = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;

	for (size_t i = 0; i < k; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[k] = 0;
	return json_string(buf);
}

static bool order_name(const char *n)
{
	for (int i = 0; i < 6; i++)
		if (n[i] < '0' || n[i] > '9')
			return false;
	return strcmp(n + 6, ".ord") == 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int kms_view_parse_order(const uint8_t *b, size_t len, struct kms_view_order *out)
{
	struct cur c;
	uint32_t order = 0, n = 0;
	uint64_t first = 0, last = 0;

	memset(out, 0, sizeof(*out));
	cur_init(&c, b, len);
	/* n > 0 before the size check; the size pins n, so the skip is exact. */
	if (len < ORDER_HEAD || memcmp(b, "CSTLORD1", 8) != 0 || cur_skip(&c, 8) != 0 || cur_u32(&c, &order) != 0 ||
	    cur_u32(&c, &n) != 0 || cur_skip(&c, 12) != 0 || n == 0 || len != 44u + 24u * (uint64_t)n ||
	    cur_u64(&c, &first) != 0)
		return CE_FORMAT;
	last = first;
	if (n > 1 && (cur_skip(&c, 8u * ((size_t)n - 2u)) != 0 || cur_u64(&c, &last) != 0))
		return CE_FORMAT;
	out->order = order;
	out->chips = n;
	out->first_chip = first;
	out->last_chip = last;
	return 0;
}

/* One order file: its clear header and chip ids (checked against the size). */
static json_t *order_json(const char *odir, const char *name)
{
	uint8_t *b = NULL;
	size_t len = 0;
	int64_t mt = 0;
	struct kms_view_order od;
	char hx[24];
	json_t *o;
	int r = read_plain(odir, name, 44u + 24u * (uint64_t)(16u << 20), &b, &len, &mt);

	if (r == 0)
		r = kms_view_parse_order(b, len, &od);
	free(b);
	if (r != 0)
		return json_pack("{s:s,s:s}", "file", name, "error", err_str(r));
	o = json_pack("{s:s,s:I,s:I,s:I,s:I}", "file", name, "order", (json_int_t)od.order, "chips",
		      (json_int_t)od.chips, "bytes", (json_int_t)len, "mtime_s", (json_int_t)mt);
	snprintf(hx, sizeof(hx), "0x%016llx", (unsigned long long)od.first_chip);
	json_object_set_new(o, "first_chip", json_string(hx));
	snprintf(hx, sizeof(hx), "0x%016llx", (unsigned long long)od.last_chip);
	json_object_set_new(o, "last_chip", json_string(hx));
	return o;
}

static int add_orders(const char *dir, json_t *root)
{
	char odir[4200];
	json_t *a = json_array(), *skipped = json_array();
	char **names = NULL;
	size_t n = 0;
	uint64_t chips = 0;
	struct dirent *e;
	DIR *d;

	if (!a || !skipped)
		goto nomem;
	if (snprintf(odir, sizeof(odir), "%s/orders", dir) >= (int)sizeof(odir))
		goto done;
	if (!(d = opendir(odir)))
		goto done;
	if (!(names = calloc(WEB_KMS_ORDERS_MAX, sizeof(*names)))) {
		closedir(d);
		goto nomem;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (!order_name(e->d_name) || n >= WEB_KMS_ORDERS_MAX) {
			if (json_array_size(skipped) < 64)
				json_array_append_new(skipped, safe_str(e->d_name, strlen(e->d_name)));
			continue;
		}
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 0; i < n; i++) {
		json_t *o = order_json(odir, names[i]);

		chips += (uint64_t)json_integer_value(json_object_get(o, "chips"));
		json_array_append_new(a, o);
		free(names[i]);
	}
	free(names);
done:
	json_object_set_new(root, "orders", a);
	json_object_set_new(root, "orders_skipped", skipped);
	json_object_set_new(root, "chips_total", json_integer((json_int_t)chips));
	return 0;
nomem:
	json_decref(a);
	json_decref(skipped);
	return CE_NOMEM;
}

int kms_view_parse_crl(const uint8_t *buf, size_t len, uint64_t *number, uint64_t *created_s, uint8_t issuer[32],
		      uint64_t **serials, size_t *n)
{
	struct cur c;
	int r;

	*created_s = 0;
	if ((r = crl_parse(buf, len, number, serials, n)) != 0) {
		*serials = NULL; /* crl_parse frees on error */
		return r;
	}
	cur_init(&c, buf, len);
	if (cur_skip(&c, 9) != 0 || cur_bytes(&c, issuer, 32) != 0 || cur_skip(&c, 8) != 0 ||
	    cur_u64(&c, created_s) != 0) {
		free(*serials);
		*serials = NULL;
		*n = 0;
		return CE_FORMAT;
	}
	return 0;
}

static void add_crl(const char *dir, json_t *root)
{
	uint8_t *b = NULL, issuer[32];
	size_t len = 0, n = 0;
	uint64_t number = 0, created = 0, *serials = NULL;
	char ih[65];
	json_t *o, *s;
	int r = read_plain(dir, "crl.bin", 61u + 8u * CERT_CRL_MAX + 64u, &b, &len, NULL);

	if (r == CE_NOT_FOUND) {
		json_object_set_new(root, "crl", json_null());
		return;
	}
	if (r == 0)
		r = kms_view_parse_crl(b, len, &number, &created, issuer, &serials, &n);
	free(b);
	if (r != 0) {
		json_object_set_new(root, "crl", json_pack("{s:s}", "error", err_str(r)));
		return;
	}
	hex_encode(issuer, 32, ih);
	s = json_array();
	for (size_t i = 0; s && i < n && i < WEB_KMS_LIST_MAX; i++)
		json_array_append_new(s, json_integer((json_int_t)serials[i]));
	free(serials);
	o = json_pack("{s:I,s:I,s:s,s:I,s:o,s:b}", "number", (json_int_t)number, "created_s", (json_int_t)created,
		      "issuer_hash", ih, "count", (json_int_t)n, "serials", s ? s : json_array(), "signature_checked",
		      0);
	json_object_set_new(root, "crl", o);
}

/* ---- audit.log ---------------------------------------------------------- */

/* The value of "key=" in an event (up to the next space), into out, any
 * byte outside printable ASCII as '?'. */
static bool ev_field(const char *ev, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);

	for (const char *p = ev; (p = strstr(p, key)); p++) {
		if ((p == ev || p[-1] == ' ') && p[kl] == '=') {
			size_t n = strcspn(p + kl + 1, " ");

			if (n >= cap)
				n = cap - 1;
			/* Printable ASCII only: the value goes into JSON strings
			 * (json_string() refuses bad UTF-8: a NULL value). */
			for (size_t i = 0; i < n; i++)
				out[i] = (p[kl + 1 + i] >= 0x20 && p[kl + 1 + i] < 0x7f) ? p[kl + 1 + i] : '?';
			out[n] = 0;
			return true;
		}
	}
	return false;
}

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* What one event tells of vendors, certificates, modules. */
void kms_view_audit_event(const char *ev, int64_t at, json_t *vendors, json_t *certs, json_t *mods)
{
	char id[24] = "", v[96] = "", w[96] = "", x[96] = "";

	if (starts(ev, "vendor add ") && ev_field(ev, "id", id, sizeof(id)) && json_object_size(vendors) < WEB_KMS_LIST_MAX) {
		ev_field(ev, "pub", v, sizeof(v));
		json_object_set_new(vendors, id,
				    json_pack("{s:s,s:s,s:b,s:I}", "id", id, "pub_fingerprint", v, "revoked", 0,
					      "added_s", (json_int_t)at));
	} else if (starts(ev, "vendor revoke ") && ev_field(ev, "id", id, sizeof(id))) {
		json_t *o = json_object_get(vendors, id);

		if (o) {
			json_object_set_new(o, "revoked", json_true());
			json_object_set_new(o, "revoked_s", json_integer(at));
		}
	} else if (starts(ev, "operator certify ") && json_array_size(certs) < WEB_KMS_LIST_MAX) {
		const char *nm = strstr(ev, " name=");
		const char *dy = strstr(ev, " days=");
		json_t *o = json_object();

		ev_field(ev, "serial", v, sizeof(v));
		json_object_set_new(o, "serial", json_string(v));
		if (nm && dy && dy > nm) /* names may hold spaces: up to " days=" */
			json_object_set_new(o, "name", safe_str(nm + 6, (size_t)(dy - nm - 6)));
		if (ev_field(ev, "days", w, sizeof(w)))
			json_object_set_new(o, "days", json_string(w));
		json_object_set_new(o, "certified_s", json_integer(at));
		json_array_append_new(certs, o);
	} else if (starts(ev, "revoke cert ") && ev_field(ev, "serial", v, sizeof(v))) {
		size_t i;
		json_t *c;

		json_array_foreach(certs, i, c)
		{
			const char *sv = json_string_value(json_object_get(c, "serial"));

			if (sv && strcmp(sv, v) == 0)
				json_object_set_new(c, "revoked_s", json_integer(at));
		}
	} else if (starts(ev, "module sign ") && json_array_size(mods) < WEB_KMS_LIST_MAX) {
		json_t *o = json_pack("{s:I}", "signed_s", (json_int_t)at);
		static const char *const keys[] = {"vendor", "version", "rollback", "cert", "bytes", "sha256"};

		for (size_t i = 0; o && i < sizeof(keys) / sizeof(keys[0]); i++)
			if (ev_field(ev, keys[i], x, sizeof(x)))
				json_object_set_new(o, keys[i], json_string(x));
		json_array_append_new(mods, o);
	}
	(void)w;
}

/* Offset in line just past a field read from it (a view into line). */
static size_t field_end(const char *line, const struct cur *f)
{
	return (size_t)((const char *)f->buf - line) + f->len;
}

/* The panel shows every line, a broken one too (the chain check says
 * whether the log holds): fields are the first three tab-separated ones;
 * seq and at are strict decimal/hex numbers, else both 0 (kms.c's
 * audit_walk is the strict reader of the same format). */
void kms_view_parse_audit_line(char *line, struct kms_view_audit_line *out)
{
	struct cur c, f_seq, f_at, f_ev;
	char num[24];
	uint64_t seq = 0, at = 0;

	memset(out, 0, sizeof(*out));
	out->event = line;
	cur_init(&c, line, strlen(line));
	cur_until(&c, '\t', &f_seq);
	cur_until(&c, '\t', &f_at);
	if (cur_until(&c, '\t', &f_ev) != 0)
		return;
	if (cur_text(&f_seq, num, sizeof(num)) != 0 || parse_u64(num, UINT64_MAX, &seq) != 0 ||
	    cur_text(&f_at, num, sizeof(num)) != 0 || parse_u64(num, INT64_MAX, &at) != 0)
		seq = at = 0;
	/* split in place: the tab after each field becomes its NUL */
	line[field_end(line, &f_seq)] = line[field_end(line, &f_at)] = line[field_end(line, &f_ev)] = '\0';
	out->fields = true;
	out->seq = seq;
	out->at_s = (int64_t)at;
	out->event = line + (field_end(line, &f_ev) - f_ev.len);
}

static int add_audit(const char *dir, json_t *root)
{
	uint8_t *b = NULL;
	size_t len = 0, n = 0, bad = 0, total = 0;
	json_t *lines = json_array(), *vendors = json_object(), *certs = json_array(), *mods = json_array();
	json_t *va = json_array(), *au = json_object();
	const char *k;
	json_t *v;
	int r, cr;

	if (!lines || !vendors || !certs || !mods || !va || !au) {
		json_decref(lines), json_decref(vendors), json_decref(certs);
		json_decref(mods), json_decref(va), json_decref(au);
		return CE_NOMEM;
	}
	r = read_plain(dir, "audit.log", WEB_KMS_AUDIT_BYTES, &b, &len, NULL);
	/* The chain: the same check as `castellan kms audit verify` without a
	 * passphrase (the anchor in the state cannot be read here). */
	cr = r == 0 ? kms_audit_verify(dir, &n, &bad) : r;
	json_object_set_new(au, "present", json_boolean(r != CE_NOT_FOUND));
	json_object_set_new(au, "chain_ok", json_boolean(cr == 0));
	json_object_set_new(au, "chain", json_string(cr == 0 ? "verified" : err_str(cr)));
	if (cr == CE_MAC)
		json_object_set_new(au, "bad_line", json_integer((json_int_t)bad));
	json_object_set_new(au, "anchor_checked", json_false());
	if (r == 0) {
		/* Count lines, then keep the newest WEB_KMS_AUDIT_LINES. */
		for (size_t i = 0; i < len; i++)
			total += b[i] == '\n';
		if (len && b[len - 1] != '\n')
			total++;
		size_t ln = 0;

		for (char *p = (char *)b, *end = (char *)b + len; p < end; ln++) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			struct kms_view_audit_line al;

			if (!nl)
				nl = end;
			*nl = 0;
			kms_view_parse_audit_line(p, &al);
			if (al.fields)
				kms_view_audit_event(al.event, al.at_s, vendors, certs, mods);
			if (ln + WEB_KMS_AUDIT_LINES >= total)
				json_array_append_new(lines, json_pack("{s:I,s:I,s:o}", "seq", (json_int_t)al.seq, "at_s",
								       (json_int_t)al.at_s, "event",
								       safe_str(al.event, strlen(al.event))));
			p = nl + 1;
		}
	}
	free(b);
	json_object_set_new(au, "entries", json_integer((json_int_t)total));
	json_object_set_new(au, "lines", lines);
	json_object_foreach(vendors, k, v) json_array_append(va, v);
	json_decref(vendors);
	json_object_set_new(root, "audit", au);
	json_object_set_new(root, "vendors", va);
	json_object_set_new(root, "certificates", certs);
	json_object_set_new(root, "modules", mods);
	return 0;
}

int kms_view_json(const char *dir, json_t **out)
{
	struct stat st;
	int kind = 0, r;
	json_t *o;

	*out = NULL;
	if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return CE_NOT_FOUND;
	if (!(o = json_object()))
		return CE_NOMEM;
	r = kms_master_kind(dir, &kind);
	json_object_set_new(o, "dir", safe_str(dir, strlen(dir)));
	json_object_set_new(o, "master", json_string(r != 0			 ? "none"
						     : kind == KMS_MASTER_PKCS11 ? "pkcs11"
										 : "passphrase"));
	json_object_set_new(
	    o, "sealed",
	    json_string("Vendor keys and revoked flags, the operator certificate, the TA key and the audit anchor "
			"are inside state.bin, encrypted under the master key: the panel never unlocks the KMS. "
			"Vendors, certificates and modules are shown as the audit log records them; the CRL's "
			"signature and the audit anchor (truncation) are not checked here "
			"(castellan kms audit verify with the passphrase does)."));
	if ((r = add_orders(dir, o)) != 0 || (r = add_audit(dir, o)) != 0) {
		json_decref(o);
		return r;
	}
	add_crl(dir, o);
	*out = o;
	return 0;
}
