/*
 * scrambler_config.c - the scrambler's configuration: defaults, the --service and
 * --ecmg specifications of the command line, a configuration built option by
 * option with its checks across options (struct scr_opts), and the checks
 * scrambler_new makes on a whole configuration.
 */
#include <stdlib.h>
#include <string.h>
#include "lib/util.h"
#include "scrambler/scrambler_int.h"

#define MOD "scrambler"

/* ------------------------------------------------------------------ */
/* config parsing                                                       */

void scrambler_config_init(struct scrambler_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->alg = CW_ALG_CSA2;
	cfg->cp_duration_ms = SCR_DEFAULT_CP_MS;
	cfg->policy = SCR_POLICY_ANY;
	cfg->on_failure = SCR_FAIL_KEEP;
	cfg->version = 2;
}

static int parse_pid_list(const char *s, struct scr_service_cfg *out)
{
	char buf[512];
	char *save = NULL, *tok;
	size_t l = strlen(s);

	if (l == 0 || l >= sizeof(buf))
		return CE_ARG;
	memcpy(buf, s, l + 1);
	if (buf[0] == ',' || buf[l - 1] == ',' || strstr(buf, ",,"))
		return CE_ARG;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (parse_u64(tok, TS_PID_MAX, &v) != 0)
			return CE_RANGE;
		if (v < 0x10 || v == TS_PID_NULL)
			return CE_RANGE;
		for (size_t i = 0; i < out->npids; i++)
			if (out->pids[i] == v)
				return CE_ARG;
		if (out->npids == SCR_MAX_COMPONENTS)
			return CE_LIMIT;
		out->pids[out->npids++] = (uint16_t)v;
	}
	return out->npids ? 0 : CE_ARG;
}

int scr_service_parse(const char *spec, struct scr_service_cfg *out)
{
	char buf[1024];
	char *p, *next;
	uint64_t v;
	bool seen_ac = false, seen_pids = false;
	size_t l;
	int r;

	memset(out, 0, sizeof(*out));
	if (!spec)
		return CE_ARG;
	l = strlen(spec);
	if (l == 0 || l >= sizeof(buf))
		return CE_ARG;
	memcpy(buf, spec, l + 1);
	next = strchr(buf, ':');
	if (next)
		*next++ = '\0';
	if (parse_u64(buf, 0xFFFF, &v) != 0 || v == 0) {
		r = CE_RANGE;
		goto fail;
	}
	out->service_id = (uint16_t)v;
	while (next) {
		p = next;
		next = strchr(p, ':');
		if (next)
			*next++ = '\0';
		if (strncmp(p, "ac=", 3) == 0 && !seen_ac) {
			if (strlen(p + 3) != 8 || hex_decode(p + 3, out->ac, SCR_AC_BYTES) != 0) {
				r = CE_ARG;
				goto fail;
			}
			out->has_ac = true;
			seen_ac = true;
		} else if (strncmp(p, "pids=", 5) == 0 && !seen_pids) {
			if ((r = parse_pid_list(p + 5, out)) != 0)
				goto fail;
			seen_pids = true;
		} else {
			r = CE_ARG;
			goto fail;
		}
	}
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return r;
}

static int check_addr(const char *s)
{
	char host[SCR_ADDR_BYTES];
	uint16_t port;

	if (addr_split(s, host, sizeof(host), &port) != 0 || host[0] == '\0' || port == 0)
		return CE_ARG;
	return 0;
}

int scr_ecmg_parse(const char *spec, struct scr_cas_cfg *out)
{
	const char *comma;
	size_t l;

	memset(out->main_addr, 0, sizeof(out->main_addr));
	memset(out->backup_addr, 0, sizeof(out->backup_addr));
	if (!spec)
		return CE_ARG;
	comma = strchr(spec, ',');
	l = comma ? (size_t)(comma - spec) : strlen(spec);
	if (l == 0 || l >= SCR_ADDR_BYTES)
		return CE_ARG;
	memcpy(out->main_addr, spec, l);
	if (check_addr(out->main_addr) != 0)
		goto fail;
	if (comma) {
		l = strlen(comma + 1);
		if (l == 0 || l >= SCR_ADDR_BYTES || strchr(comma + 1, ','))
			goto fail;
		memcpy(out->backup_addr, comma + 1, l);
		if (check_addr(out->backup_addr) != 0)
			goto fail;
	}
	return 0;
fail:
	memset(out->main_addr, 0, sizeof(out->main_addr));
	memset(out->backup_addr, 0, sizeof(out->backup_addr));
	return CE_ARG;
}


/* ------------------------------------------------------------------ */
/* lifecycle                                                            */

int scr_validate(const struct scrambler_config *c)
{
	if (c->nservices == 0 || c->nservices > SCR_MAX_SERVICES)
		return CE_ARG;
	if (c->ncas > SCR_MAX_CAS)
		return CE_ARG;
	if (cw_alg_key_bytes(c->alg) == 0)
		return CE_ARG;
	if (c->has_fixed_cw) {
		if (c->fixed_cw_len != cw_alg_key_bytes(c->alg) || c->ncas != 0)
			return CE_ARG;
	} else if (c->ncas == 0) {
		return CE_ARG;
	}
	if (c->cp_duration_ms != 0 && (c->cp_duration_ms < SCR_MIN_CP_MS || c->cp_duration_ms > SCR_MAX_CP_MS))
		return CE_RANGE;
	if (c->version != 0 && c->version != 2 && c->version != 3)
		return CE_ARG;
	if (c->nulls_only && c->max_extra_kbps)
		return CE_ARG;
	for (size_t i = 0; i < c->nservices; i++) {
		if (c->services[i].service_id == 0 || c->services[i].npids > SCR_MAX_COMPONENTS)
			return CE_ARG;
		for (size_t j = 0; j < i; j++) {
			uint16_t a = c->services[i].ecm_id ? c->services[i].ecm_id : (uint16_t)(i + 1);
			uint16_t b = c->services[j].ecm_id ? c->services[j].ecm_id : (uint16_t)(j + 1);

			if (c->services[j].service_id == c->services[i].service_id || a == b)
				return CE_ARG; /* a service twice, or an ECM_id twice */
		}
	}
	for (size_t i = 0; i < c->ncas; i++) {
		if (c->cas[i].ecm_pid && (c->cas[i].ecm_pid < 0x20 || c->cas[i].ecm_pid >= TS_PID_NULL))
			return CE_RANGE;
		for (size_t j = 0; j < i; j++)
			if (c->cas[j].super_cas_id >> 16 == c->cas[i].super_cas_id >> 16)
				return CE_ARG; /* one CA_descriptor per CA_system_id */
	}
	if (c->emm_pid && (c->emm_pid < 0x20 || c->emm_pid >= TS_PID_NULL))
		return CE_RANGE;
	return 0;
}

int scr_ecm_ids_parse(const char *s, uint16_t ids[SCR_MAX_SERVICES], size_t *n)
{
	const char *p = s;

	*n = 0;
	while (*p) {
		char num[8];
		size_t k = 0;
		uint64_t v;

		while (p[k] && p[k] != ',')
			k++;
		if (k == 0 || k >= sizeof(num) || *n >= SCR_MAX_SERVICES)
			return CE_ARG;
		memcpy(num, p, k);
		num[k] = '\0';
		if (parse_u64(num, 0xFFFF, &v) != 0 || v == 0)
			return CE_ARG;
		ids[(*n)++] = (uint16_t)v;
		p += k;
		if (*p == ',' && *++p == '\0')
			return CE_ARG;
	}
	return *n ? 0 : CE_ARG;
}

int scr_seconds_parse(const char *s, uint32_t *ms)
{
	char ip[32];
	const char *dot = strchr(s, '.');
	size_t il = dot ? (size_t)(dot - s) : strlen(s);
	uint64_t whole = 0, frac = 0;
	size_t fl = 0;

	*ms = 0;
	if (il == 0 || il >= sizeof(ip))
		return CE_ARG;
	memcpy(ip, s, il);
	ip[il] = '\0';
	if (ip[0] < '0' || ip[0] > '9' || parse_u64(ip, 4000000, &whole) != 0)
		return CE_ARG;
	if (dot) {
		fl = strlen(dot + 1);
		if (fl == 0 || fl > 3)
			return CE_ARG;
		for (size_t i = 0; i < fl; i++) {
			if (dot[1 + i] < '0' || dot[1 + i] > '9')
				return CE_ARG;
			frac = frac * 10 + (uint64_t)(dot[1 + i] - '0');
		}
		while (fl++ < 3)
			frac *= 10;
	}
	*ms = (uint32_t)(whole * 1000 + frac);
	return 0;
}

/* ------------------------------------------------------------------ */
/* a configuration option by option (struct scr_opts)                   */

#define SCR_STR_(x) #x
#define SCR_STR(x) SCR_STR_(x)

void scr_opts_init(struct scr_opts *o)
{
	memset(o, 0, sizeof(*o));
	scrambler_config_init(&o->cfg);
}

int scr_opts_service(struct scr_opts *o, const char *v, const char **why)
{
	if (o->cfg.nservices == SCR_MAX_SERVICES) {
		*why = "at most " SCR_STR(SCR_MAX_SERVICES) " services";
		return CE_LIMIT;
	}
	if (scr_service_parse(v, &o->cfg.services[o->cfg.nservices]) != 0)
		return CE_ARG;
	o->cfg.nservices++;
	return 0;
}

int scr_opts_ecmg(struct scr_opts *o, const char *v, const char **why)
{
	struct scr_cas_cfg *cas = &o->cfg.cas[o->cfg.ncas];

	if (o->cfg.ncas == SCR_MAX_CAS) {
		*why = "at most " SCR_STR(SCR_MAX_CAS) " CAS";
		return CE_LIMIT;
	}
	memset(cas, 0, sizeof(*cas));
	if (scr_ecmg_parse(v, cas) != 0)
		return CE_ARG;
	cas->channel_id = 1;
	o->cfg.ncas++;
	return 0;
}

int scr_opts_cas_num(struct scr_opts *o, enum scr_cas_field f, const char *v, const char **why)
{
	static const uint64_t lo[] = { 0, 0x20, 0 }, hi[] = { UINT32_MAX, 0x1FFE, 0xFFFF };
	struct scr_cas_cfg *cas;
	uint64_t x;

	if (!o->cfg.ncas) {
		*why = "--super-cas-id, --ecm-pid and --channel-id must follow --ecmg";
		return CE_ARG;
	}
	if ((unsigned)f > SCR_CAS_CHANNEL_ID || parse_u64(v, hi[f], &x) != 0 || x < lo[f])
		return CE_ARG;
	cas = &o->cfg.cas[o->cfg.ncas - 1];
	if (f == SCR_CAS_SUPER_ID) {
		cas->super_cas_id = (uint32_t)x;
		o->super_set[o->cfg.ncas - 1] = true;
	} else if (f == SCR_CAS_ECM_PID) {
		cas->ecm_pid = (uint16_t)x;
	} else {
		cas->channel_id = (uint16_t)x;
	}
	return 0;
}

int scr_opts_ecm_ids(struct scr_opts *o, const char *v)
{
	return scr_ecm_ids_parse(v, o->ecm_ids, &o->necm_ids);
}

int scr_opts_fixed_cw(struct scr_opts *o, const char *v)
{
	size_t len = 0;

	if (hex_decode_var(v, o->cfg.fixed_cw, sizeof(o->cfg.fixed_cw), &len) != 0 || (len != 8 && len != 16))
		return CE_ARG;
	o->cfg.has_fixed_cw = true;
	o->cfg.fixed_cw_len = len;
	return 0;
}

int scr_opts_cp_duration(struct scr_opts *o, const char *v)
{
	uint32_t *ms = &o->cfg.cp_duration_ms;

	return scr_seconds_parse(v, ms) != 0 || *ms < SCR_MIN_CP_MS || *ms > SCR_MAX_CP_MS ? CE_ARG : 0;
}

int scr_opts_clear_start(struct scr_opts *o, const char *v)
{
	return scr_seconds_parse(v, &o->cfg.clear_start_ms);
}

int scr_opts_finish(struct scr_opts *o, const char **why)
{
	struct scrambler_config *cfg = &o->cfg;

	*why = NULL;
	if (cfg->nservices == 0)
		*why = "at least one --service is required";
	else if (o->necm_ids && o->necm_ids != cfg->nservices)
		*why = "--ecm-id gives a different number of ECM_ids than --service: give one per --service";
	else if (cfg->has_fixed_cw == (cfg->ncas > 0))
		*why = "give either --ecmg ... or --fixed-cw";
	else if (cfg->has_fixed_cw && cfg->fixed_cw_len != cw_alg_key_bytes(cfg->alg))
		*why = "--fixed-cw has the wrong length for --algo (CSA2: 16 hex digits, CISSA: 32)";
	else if (cfg->nulls_only && cfg->max_extra_kbps)
		*why = "--nulls-only and --max-extra-kbps exclude each other";
	for (size_t c = 0; !*why && c < cfg->ncas; c++)
		if (!o->super_set[c])
			*why = "every --ecmg needs a --super-cas-id";
	if (*why)
		return CE_ARG;
	for (size_t i = 0; i < o->necm_ids; i++)
		cfg->services[i].ecm_id = o->ecm_ids[i];
	if (o->live)
		cfg->sync = SCR_SYNC_OFF;
	return 0;
}
