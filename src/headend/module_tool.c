/*
 * module_tool.c - signing, verifying, inspecting a CAS client module and its
 * OTA carousel from files (module_tool.h); `castellan module` prints.
 */
#include <stdlib.h>
#include <string.h>
#include "headend/module_tool.h"
#include "cas/cert.h"
#include "crypto/pk.h"
#include "lib/util.h"
#include "ts/ota.h"
#include "ts/ts.h"

int module_tool_sign(const struct module_sign_req *q, size_t *mod_len, enum module_step *step)
{
	struct module_manifest m = { .vendor_id = q->vendor, .version = q->version, .rollback = q->rollback };
	uint8_t ta_pub[32], op_priv[32], pl[256], *cert = NULL, *mod = NULL;
	size_t cert_len = 0, pl_len;
	int r;

	*mod_len = 0;
	*step = MODULE_STEP_ARG;
	if ((r = module_ladder_payload(q->vendor, q->ca_system_id, q->keys_file, pl, sizeof(pl), &pl_len)) != 0)
		return r ? r : CE_ARG;
	*step = MODULE_STEP_READ;
	if ((r = pk_read_file(q->ta_pub, ta_pub)) != 0 || (r = pk_read_file(q->key, op_priv)) != 0 ||
	    (r = file_read_all(q->cert, CERT_MAX_BYTES, &cert, &cert_len)) != 0)
		goto out;
	*step = MODULE_STEP_WORK;
	if ((r = module_sign(&m, pl, pl_len, ta_pub, cert, cert_len, op_priv, &mod, mod_len)) != 0 ||
	    (r = file_write_atomic(q->out, mod, *mod_len, 0644)) != 0)
		goto out;
	*step = MODULE_STEP_NONE;
out:
	secret_wipe(op_priv, sizeof(op_priv));
	free(cert);
	free(mod);
	return r;
}

int module_tool_inspect(const char *path, struct module_file *f)
{
	int r;

	memset(f, 0, sizeof(*f));
	if ((r = file_read_all(path, MODULE_MAX_BYTES, &f->buf, &f->len)) != 0 ||
	    (r = module_parse(f->buf, f->len, &f->v)) != 0)
		return r;
	f->has_payload = module_payload_parse(f->v.payload, f->v.payload_len, &f->p) == 0;
	return 0;
}

int module_tool_verify(const char *path, const char *ta_pub, const char *hash, const char *crlp, uint64_t now,
	struct module_file *f, enum module_step *step)
{
	uint8_t trust[32], pub[32], *crl = NULL;
	size_t crl_len = 0;
	int r;

	memset(f, 0, sizeof(*f));
	*step = MODULE_STEP_READ;
	if ((r = file_read_all(path, MODULE_MAX_BYTES, &f->buf, &f->len)) != 0)
		return r;
	*step = MODULE_STEP_TRUST;
	if (ta_pub) {
		if ((r = pk_read_file(ta_pub, pub)) != 0)
			goto out;
		pk_hash(pub, trust);
	} else if ((r = hex_decode(hash, trust, 32)) != 0) {
		goto out;
	}
	if (crlp && (r = file_read_all(crlp, 1u << 20, &crl, &crl_len)) != 0)
		goto out;
	*step = MODULE_STEP_REFUSED;
	if ((r = module_verify(f->buf, f->len, trust, now, crl, crl_len, &f->v, &f->p)) != 0)
		goto out;
	f->has_payload = true;
	*step = MODULE_STEP_NONE;
out:
	free(crl);
	return r;
}

void module_file_free(struct module_file *f)
{
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

int module_tool_carousel(const struct module_carousel_req *q, struct module_carousel_res *res,
	const char **failed_path)
{
	struct ota_ts_params p = q->p;
	uint8_t *mod = NULL, *in = NULL, *ts = NULL;
	size_t len = 0, inlen = 0;
	struct module_view v;
	int r;

	memset(res, 0, sizeof(*res));
	*failed_path = q->module;
	if ((r = file_read_all(q->module, MODULE_MAX_BYTES, &mod, &len)) != 0 || (r = module_parse(mod, len, &v)) != 0 ||
	    (q->into && (*failed_path = q->into, r = file_read_all(q->into, 1u << 30, &in, &inlen)) != 0))
		goto out;
	*failed_path = NULL;
	p.car.vendor_id = v.m.vendor_id;
	p.in = in;
	p.nin = res->nin = inlen / TS_PACKET_BYTES;
	if ((r = ota_ts_build(&p, mod, len, &ts, &res->n, &res->ncar)) != 0 ||
	    (r = file_write_atomic(q->out, ts, res->n * TS_PACKET_BYTES, 0644)) != 0)
		goto out;
out:
	free(mod);
	free(in);
	free(ts);
	return r;
}

int module_tool_collect(const char *ts_path, const char *out, struct module_collect_res *res,
	enum module_step *step)
{
	struct ota_rx *rx = NULL;
	struct ota_rx_stats st;
	uint8_t *ts = NULL, *mod = NULL;
	size_t len = 0;
	int r;

	memset(res, 0, sizeof(*res));
	*step = MODULE_STEP_READ;
	if ((r = file_read_all(ts_path, 1u << 30, &ts, &len)) != 0 || (r = ota_rx_new(&rx)) != 0 ||
	    (r = ota_rx_feed(rx, ts, len / TS_PACKET_BYTES)) != 0)
		goto out;
	ota_rx_stats(rx, &st);
	res->sections_ok = st.sections_ok;
	res->sections_bad = st.sections_bad;
	res->pid = st.pid;
	*step = MODULE_STEP_MISSING;
	if ((r = ota_rx_take(rx, &mod, &res->len, &res->vendor_id)) != 0)
		goto out;
	*step = MODULE_STEP_WORK;
	if ((r = file_write_atomic(out, mod, res->len, 0644)) != 0)
		goto out;
	*step = MODULE_STEP_NONE;
out:
	free(ts);
	free(mod);
	ota_rx_free(rx);
	return r;
}
