/*
 * test_stb.c - the reference set-top box (src/stb): fixed-CW descrambling
 * of TSDuck's scrambled captures back to the clear stream byte for byte,
 * the ECM path with the cardless client on a stream built here (entitled,
 * not entitled, expired, CW change across crypto-periods, per-component
 * ECMs), a table of bad stream inputs, corrupt/truncated streams, the JSON
 * report and the CLI.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/rand.h>
#include "lib/bytes.h"
#include "client/cardless.h"
#include "testutil.h"
#include "cas/card.h"
#include "cas/client.h"
#include "cas/emm.h"
#include "cas/ecm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "lib/cursor.h"
#include "cipher/cipher.h"
#include "stb/descrambler.h"
#include "stb/stb.h"
#include "stb/pvr.h"
#include "cas/usage.h"
#include "ts/psi.h"
#include "ts/ts.h"

#define CAP_CLEAR "ts-clear-2svc.ts"
#define CAP_CSA2 "simulcrypt/captures/ts-csa2-svc101-cw0123456789abcdef.ts"
#define CAP_CSA2_NR "simulcrypt/captures/ts-csa2-noreduce-svc101-cw0123456789abcdef.ts"
#define CAP_CISSA "simulcrypt/captures/ts-cissa-svc101-cw00112233445566778899aabbccddeeff.ts"

static const uint8_t CW_CSA2[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF };
static const uint8_t CW_CISSA[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF };

static uint16_t pkt_pid(const uint8_t *p) { return (uint16_t)(((p[1] & 0x1F) << 8) | p[2]); }

static const struct stb_service_report *find_svc(const struct stb_report *r, uint16_t sid)
{
	for (size_t i = 0; i < r->nservices; i++)
		if (r->svc[i].service_id == sid)
			return &r->svc[i];
	return NULL;
}

/* Run a whole buffer through a new box with this client; report out. */
static void run_box(struct cas_client *client, bool reduce, uint64_t (*clock)(void *), const uint8_t *in,
	size_t npkts, uint8_t *out, struct stb_report *rep)
{
	struct stb_config cfg = { .client = client, .csa2_reduce = reduce, .now_ms = clock };
	struct stb *box = NULL;

	assert_int_equal(stb_new(&cfg, &box), 0);
	/* feed in uneven chunks, as a reader would */
	for (size_t off = 0, step = 1; off < npkts; off += step, step = step * 3 % 701 + 1) {
		size_t n = npkts - off < step ? npkts - off : step;

		assert_int_equal(stb_feed(box, in + off * TS_PACKET_BYTES, n, out + off * TS_PACKET_BYTES), 0);
	}
	assert_int_equal(stb_report(box, rep), 0);
	stb_free(box);
}

static void fixed_cw_run(const char *cap, enum cw_alg alg, const uint8_t *cw, bool reduce, uint8_t **out,
	size_t *npkts, struct stb_report *rep)
{
	struct cas_client c = { 0 };
	size_t len;
	uint8_t *in = tu_read(tu_testdata(cap), &len);

	*npkts = len / TS_PACKET_BYTES;
	*out = malloc(len);
	assert_non_null(*out);
	assert_int_equal(stb_fixed_cw_client_new(alg, cw, cw_alg_key_bytes(alg), &c), 0);
	run_box(&c, reduce, NULL, in, *npkts, *out, rep);
	cas_client_free(&c);
	free(in);
}

static void check_fixed(const char *cap, enum cw_alg alg, const uint8_t *cw, bool reduce, bool cissa_pmt)
{
	struct stb_report *rep = calloc(1, sizeof(*rep));
	const struct stb_service_report *s101, *s102;
	uint8_t *out, *clear;
	size_t n, clen, diffs = 0;
	char line[512];

	assert_non_null(rep);
	fixed_cw_run(cap, alg, cw, reduce, &out, &n, rep);
	clear = tu_read(tu_testdata(CAP_CLEAR), &clen);
	assert_int_equal(clen, n * TS_PACKET_BYTES);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *a = out + i * TS_PACKET_BYTES, *b = clear + i * TS_PACKET_BYTES;

		if (memcmp(a, b, TS_PACKET_BYTES) == 0)
			continue;
		/* CISSA: TSDuck added a scrambling_descriptor to PMT 0x1000 */
		if (cissa_pmt && pkt_pid(a) == 0x1000)
			continue;
		diffs++;
	}
	assert_int_equal(diffs, 0);
	if (!cissa_pmt)
		assert_memory_equal(out, clear, clen);
	s101 = find_svc(rep, 101);
	s102 = find_svc(rep, 102);
	assert_non_null(s101);
	assert_non_null(s102);
	assert_true(s101->scrambled > 700); /* 795 in the capture */
	assert_int_equal(s101->descrambled, s101->scrambled);
	assert_int_equal(s101->left_scrambled, 0);
	assert_int_equal(s101->state, STB_SVC_DESCRAMBLED);
	assert_int_equal(s101->first_descrambled_pkt, 5); /* first ES packet of the capture */
	assert_true(s101->pes_starts > 0);
	assert_int_equal(s101->pes_starts_bad, 0);
	assert_int_equal(s102->scrambled, 0);
	assert_int_equal(s102->state, STB_SVC_CLEAR);
	assert_int_equal(rep->bad_packets, 0);
	assert_int_equal(stb_report_line(rep, s101, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "service 101: descrambled "));
	assert_non_null(strstr(line, "first at packet 5"));
	free(rep);
	free(out);
	free(clear);
}

static void test_fixed_csa2(void **st) { (void)st; check_fixed(CAP_CSA2, CW_ALG_CSA2, CW_CSA2, true, false); }
static void test_fixed_csa2_noreduce(void **st)
{
	(void)st;
	check_fixed(CAP_CSA2_NR, CW_ALG_CSA2, CW_CSA2, false, false);
}
static void test_fixed_cissa(void **st) { (void)st; check_fixed(CAP_CISSA, CW_ALG_CISSA, CW_CISSA, true, true); }

/* A wrong CW: output differs from the clear stream and the report says so. */
static void test_fixed_wrong_cw(void **st)
{
	/* byte 7 would be overwritten by entropy reduction: change byte 0 */
	static const uint8_t bad[8] = { 0x02, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF };
	struct stb_report *rep = calloc(1, sizeof(*rep));
	const struct stb_service_report *s101;
	uint8_t *out, *clear;
	size_t n, clen;
	char line[512];

	(void)st;
	assert_non_null(rep);
	fixed_cw_run(CAP_CSA2, CW_ALG_CSA2, bad, true, &out, &n, rep);
	clear = tu_read(tu_testdata(CAP_CLEAR), &clen);
	assert_int_equal(clen, n * TS_PACKET_BYTES);
	assert_true(memcmp(out, clear, clen) != 0);
	s101 = find_svc(rep, 101);
	assert_non_null(s101);
	assert_int_equal(s101->state, STB_SVC_WRONG_KEY);
	assert_true(s101->pes_starts > 0);
	assert_int_equal(s101->pes_starts_bad, s101->pes_starts);
	assert_int_equal(stb_report_line(rep, s101, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "NOT descrambled: wrong key"));
	free(out);
	free(rep);
	/* the right CW without entropy reduction on the reduced file: wrong too */
	rep = calloc(1, sizeof(*rep));
	assert_non_null(rep);
	fixed_cw_run(CAP_CSA2, CW_ALG_CSA2, CW_CSA2, false, &out, &n, rep);
	assert_true(memcmp(out, clear, clen) != 0);
	assert_int_equal(find_svc(rep, 101)->state, STB_SVC_WRONG_KEY);
	free(out);
	free(rep);
	free(clear);
}

/* --service: only that service is followed and descrambled. */
static void test_one_service(void **st)
{
	struct stb_report *rep = calloc(1, sizeof(*rep));
	struct cas_client c = { 0 };
	struct stb_config cfg = { .csa2_reduce = true, .one_service = true, .service_id = 102 };
	struct stb *box = NULL;
	size_t len;
	uint8_t *in = tu_read(tu_testdata(CAP_CSA2), &len);
	uint8_t *orig = malloc(len);

	(void)st;
	assert_non_null(rep);
	assert_non_null(orig);
	memcpy(orig, in, len);
	assert_int_equal(stb_fixed_cw_client_new(CW_ALG_CSA2, CW_CSA2, 8, &c), 0);
	cfg.client = &c;
	assert_int_equal(stb_new(&cfg, &box), 0);
	assert_int_equal(stb_feed(box, in, len / TS_PACKET_BYTES, in), 0);
	assert_int_equal(stb_report(box, rep), 0);
	assert_int_equal(rep->nservices, 1);
	assert_int_equal(rep->svc[0].service_id, 102);
	assert_memory_equal(in, orig, len); /* service 101 untouched */
	stb_free(box);
	cas_client_free(&c);
	free(in);
	free(orig);
	free(rep);
}

/* ---- the ECM path, on a stream built here ---- */

#define T_NOW_MS 1750000000000ull /* the box clock in these tests */
#define ECM_PID_PROG 0x0200
#define ECM_PID_V 0x0201
#define ECM_PID_A 0x0202
#define SWITCH_AT 2600           /* original packet index of the CP change */
#define ECM_EVERY 400

static uint64_t test_clock(void *ctx) { (void)ctx; return T_NOW_MS; }

struct built {
	uint8_t *clear;   /* the stream with CA descriptor and ECMs, unscrambled */
	uint8_t *scr;     /* the same, service 101 scrambled */
	size_t npkts;
	size_t n_even, n_odd; /* scrambled packets per parity */
};

/* The usage rules make_ecm puts in ECMs (NULL: none), for the PVR tests. */
static const struct cas_usage *g_usage;

/* cws[comp][cp]: comp 0 = video (or all), 1 = audio; cp 0..2 */
static void make_ecm(const struct keystore *ks, enum cw_alg alg, uint16_t cp, uint8_t cws[2][3][16], int comp,
	uint16_t ecm_id, uint8_t *sec, size_t *len)
{
	struct ecm_params p;
	size_t kl = cw_alg_key_bytes(alg);

	memset(&p, 0, sizeof(p));
	p.alg = alg;
	p.ecm_id = ecm_id;
	p.ca_system_id = keystore_ca_system_id(ks);
	p.cp_number = cp;
	p.timestamp_ms = T_NOW_MS - 1000 + cp;
	p.epoch = keystore_epoch_at(ks, T_NOW_MS / 1000);
	p.ac_len = 4;
	p.ac[3] = 0x01; /* package 0: mask 00000001 */
	p.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	/* CP n is current: its parity gets CW n, the other parity CW n+1 */
	if (cp % 2 == 0) {
		memcpy(p.cw_even, cws[comp][cp], kl);
		memcpy(p.cw_odd, cws[comp][cp + 1], kl);
	} else {
		memcpy(p.cw_odd, cws[comp][cp], kl);
		memcpy(p.cw_even, cws[comp][cp + 1], kl);
	}
	if (g_usage) /* C.6 tests: the channel's usage rules in every ECM */
		assert_int_equal(ecm_ext_add_usage(&p, g_usage), 0);
	assert_int_equal(ecm_build(ks, &p, sec, ECM_MAX_SECTION, len), 0);
	ecm_params_wipe(&p);
}

static void put_section(uint8_t *dst, size_t *n, const uint8_t *sec, size_t len, uint16_t pid, uint8_t *cc)
{
	size_t np = 0;

	assert_int_equal(ts_packetize(sec, len, pid, cc, dst + *n * TS_PACKET_BYTES, 8, &np), 0);
	*n += np;
}

/* Build the test stream from the clear capture: CA_descriptor(s) in PMT
 * 0x1000 (program level, or per component), ECMs after the first PMT and
 * every ECM_EVERY packets, service 101's components scrambled from the
 * first ECM on: CP 0 (even) before SWITCH_AT, CP 1 (odd) after. */
static void build_stream(const struct keystore *ks, enum cw_alg alg, bool es_level, struct built *b)
{
	size_t len, nin, n = 0;
	uint8_t *in = tu_read(tu_testdata(CAP_CLEAR), &len);
	struct pmt *pmt = calloc(1, sizeof(*pmt));
	uint8_t pmt_sec[PSI_MAX_PSI_SECTION], ecm[2][2][ECM_MAX_SECTION];
	size_t pmt_len = 0, ecm_len[2][2];
	uint8_t cws[2][3][16], cc_ecm[2] = { 0, 0 };
	bool pmt_done = false, ecm_started = false;
	size_t kl = cw_alg_key_bytes(alg);
	struct ts_cipher *c[2][2];
	uint8_t **lists[2][2];
	size_t nl[2][2] = { { 0 } };
	size_t since_ecm = 0;

	memset(b, 0, sizeof(*b));
	assert_non_null(pmt);
	nin = len / TS_PACKET_BYTES;
	b->clear = calloc(nin + nin / 50 + 64, TS_PACKET_BYTES);
	assert_non_null(b->clear);
	assert_int_equal(RAND_bytes(&cws[0][0][0], sizeof(cws)), 1);
	for (int comp = 0; comp < 2; comp++)
		for (int cp = 0; cp < 2; cp++)
			make_ecm(ks, alg, (uint16_t)cp, cws, es_level ? comp : 0, 1 + (uint16_t)comp, ecm[comp][cp],
				&ecm_len[comp][cp]);
	for (size_t i = 0; i < nin; i++) {
		const uint8_t *p = in + i * TS_PACKET_BYTES;
		uint8_t *o = b->clear + n * TS_PACKET_BYTES;

		if (pkt_pid(p) == 0x1000 && (p[1] & 0x40)) {
			if (!pmt_done) {
				/* the PMT section of this capture fits one packet */
				size_t sl = 3 + (size_t)(((p[6] & 0x0F) << 8) | p[7]);
				struct ca_desc ca = { .ca_system_id = keystore_ca_system_id(ks) };

				assert_int_equal(pmt_parse(p + 5, sl, pmt), 0);
				if (es_level) {
					for (size_t e = 0; e < pmt->nes; e++) {
						ca.ca_pid = pmt->es[e].pid == 0x0100 ? ECM_PID_V : ECM_PID_A;
						assert_int_equal(ca_desc_append(pmt->es[e].info, sizeof(pmt->es[e].info),
							&pmt->es[e].info_len, &ca), 0);
					}
				} else {
					ca.ca_pid = ECM_PID_PROG;
					assert_int_equal(ca_desc_append(pmt->info, sizeof(pmt->info), &pmt->info_len, &ca), 0);
				}
				assert_int_equal(pmt_build(pmt, pmt_sec, sizeof(pmt_sec), &pmt_len), 0);
				assert_int_equal(ts_packets_for(pmt_len), 1);
				pmt_done = true;
			}
			{
				uint8_t cc = (uint8_t)((p[3] - 1) & 0x0F);
				size_t np = 0;

				assert_int_equal(ts_packetize(pmt_sec, pmt_len, 0x1000, &cc, o, 1, &np), 0);
				n++;
			}
		} else {
			memcpy(o, p, TS_PACKET_BYTES);
			n++;
		}
		/* ECM n carries CW n and CW n+1 (lead CW): CP 1's ECM may only
		 * come once CP 0's packets are over, i.e. right at the switch */
		if (pmt_done && (!ecm_started || ++since_ecm >= ECM_EVERY || i + 1 == SWITCH_AT)) {
			int cp = i + 1 < SWITCH_AT ? 0 : 1;

			since_ecm = 0;
			ecm_started = true;
			if (es_level) {
				put_section(b->clear, &n, ecm[0][cp], ecm_len[0][cp], ECM_PID_V, &cc_ecm[0]);
				put_section(b->clear, &n, ecm[1][cp], ecm_len[1][cp], ECM_PID_A, &cc_ecm[1]);
			} else {
				put_section(b->clear, &n, ecm[0][cp], ecm_len[0][cp], ECM_PID_PROG, &cc_ecm[0]);
			}
		}
	}
	b->npkts = n;
	b->scr = malloc(n * TS_PACKET_BYTES);
	assert_non_null(b->scr);
	memcpy(b->scr, b->clear, n * TS_PACKET_BYTES);
	/* scramble: components of 101 after the first ECM; parity by position */
	for (int comp = 0; comp < 2; comp++)
		for (int par = 0; par < 2; par++) {
			c[comp][par] = ts_cipher_new(alg, true);
			assert_non_null(c[comp][par]);
			lists[comp][par] = calloc(n, sizeof(uint8_t *));
			assert_non_null(lists[comp][par]);
		}
	{
		bool seen_ecm = false;
		size_t orig = 0; /* approximate original index: packets that are not ECMs */

		for (size_t j = 0; j < n; j++) {
			uint8_t *p = b->scr + j * TS_PACKET_BYTES;
			uint16_t pid = pkt_pid(p);
			struct ts_hdr h;
			int comp, par;

			if (pid == ECM_PID_PROG || pid == ECM_PID_V || pid == ECM_PID_A) {
				seen_ecm = true;
				continue;
			}
			orig++;
			if (!seen_ecm || (pid != 0x0100 && pid != 0x0101))
				continue;
			assert_int_equal(ts_parse(p, &h), 0);
			if (!h.has_payload)
				continue;
			comp = es_level && pid == 0x0101 ? 1 : 0;
			par = orig - 1 < SWITCH_AT ? 0 : 1;
			lists[comp][par][nl[comp][par]++] = p;
		}
	}
	for (int comp = 0; comp < 2; comp++)
		for (int par = 0; par < 2; par++) {
			/* CP 0 = even = cws[.][0]; CP 1 = odd = cws[.][1] */
			assert_int_equal(ts_cipher_set_key(c[comp][par], par ? CW_ODD : CW_EVEN, cws[es_level ? comp : 0][par],
				kl), 0);
			if (nl[comp][par])
				assert_int_equal(ts_cipher_scramble(c[comp][par], lists[comp][par], nl[comp][par],
					par ? CW_ODD : CW_EVEN), 0);
			if (par)
				b->n_odd += nl[comp][par];
			else
				b->n_even += nl[comp][par];
			ts_cipher_free(c[comp][par]);
			free(lists[comp][par]);
		}
	/* with CSA2 and reduction, the box reduces the CW as the scrambler did */
	memset(cws, 0, sizeof(cws));
	free(pmt);
	free(in);
}

static void built_free(struct built *b)
{
	free(b->clear);
	free(b->scr);
}

/* A cardless client for packages pkgs, valid [start_s, finish_s]. */
static void make_client(const struct keystore *ks, uint32_t pkgs, uint64_t start_s, uint64_t finish_s,
	struct cas_client *c)
{
	struct entitlement *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->ca_system_id = keystore_ca_system_id(ks);
	e->card_serial = 2100000001;
	e->packages = pkgs;
	e->start_s = start_s;
	e->finish_s = finish_s;
	assert_int_equal(entitlement_issue(ks, e), 0);
	assert_int_equal(cardless_client_from(e, c), 0);
	entitlement_wipe(e);
	free(e);
}

static void run_ecm_box(const struct built *b, struct cas_client *c, uint32_t card_pkgs, uint8_t *out,
	struct stb_report *rep)
{
	struct stb_config cfg = { .client = c, .csa2_reduce = true, .now_ms = test_clock,
		.have_card_packages = true, .card_packages = card_pkgs };
	struct stb *box = NULL;

	assert_int_equal(stb_new(&cfg, &box), 0);
	for (size_t off = 0; off < b->npkts; off += 300) {
		size_t n = b->npkts - off < 300 ? b->npkts - off : 300;

		assert_int_equal(stb_feed(box, b->scr + off * TS_PACKET_BYTES, n, out + off * TS_PACKET_BYTES), 0);
	}
	assert_int_equal(stb_report(box, rep), 0);
	stb_free(box);
}

static void check_ecm_entitled(enum cw_alg alg, bool es_level)
{
	struct keystore *ks = NULL;
	struct built b;
	struct cas_client c = { 0 };
	struct stb_report *rep = calloc(1, sizeof(*rep));
	const struct stb_service_report *s101, *s102;
	uint8_t *out;
	char line[512];

	assert_non_null(rep);
	assert_int_equal(keystore_generate(0x4ADC, 0, &ks), 0);
	build_stream(ks, alg, es_level, &b);
	assert_true(b.n_even > 200);
	assert_true(b.n_odd > 200);  /* two crypto-periods, both parities */
	assert_true(memcmp(b.scr, b.clear, b.npkts * TS_PACKET_BYTES) != 0);
	out = malloc(b.npkts * TS_PACKET_BYTES);
	assert_non_null(out);
	make_client(ks, 0x00000001, T_NOW_MS / 1000 - 3600, T_NOW_MS / 1000 + 30 * 86400, &c);
	run_ecm_box(&b, &c, 0x00000001, out, rep);
	assert_memory_equal(out, b.clear, b.npkts * TS_PACKET_BYTES);
	s101 = find_svc(rep, 101);
	s102 = find_svc(rep, 102);
	assert_non_null(s101);
	assert_non_null(s102);
	assert_int_equal(s101->necm_pids, es_level ? 2 : 1);
	assert_int_equal(s101->ecm_pids[0], es_level ? ECM_PID_V : ECM_PID_PROG);
	assert_int_equal(s101->scrambled, b.n_even + b.n_odd);
	assert_int_equal(s101->descrambled, s101->scrambled);
	assert_int_equal(s101->state, STB_SVC_DESCRAMBLED);
	assert_true(s101->ecm_seen >= 2);
	assert_int_equal(s101->ecm_accepted, s101->ecm_seen);
	assert_int_equal(s101->ecm_refused, 0);
	assert_true(s101->first_ecm_pkt >= 0);
	assert_true(s101->zapping_pkts > 0);
	assert_true(s101->first_cw_us > 0);
	assert_int_equal(s102->necm_pids, 0);
	assert_int_equal(s102->state, STB_SVC_CLEAR);
	assert_int_equal(stb_report_line(rep, s101, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "service 101: descrambled "));
	assert_non_null(strstr(line, "zapping"));
	cas_client_free(&c);
	free(out);
	free(rep);
	built_free(&b);
	keystore_free(ks);
}

static void test_ecm_csa2(void **st) { (void)st; check_ecm_entitled(CW_ALG_CSA2, false); }
static void test_ecm_cissa(void **st) { (void)st; check_ecm_entitled(CW_ALG_CISSA, false); }
static void test_ecm_per_component(void **st) { (void)st; check_ecm_entitled(CW_ALG_CSA2, true); }

/* A card for package 2 only, and an expired card: nothing descrambled,
 * the report names the reason. */
static void test_ecm_refused(void **st)
{
	struct keystore *ks = NULL;
	struct built b;
	struct cas_client c = { 0 };
	struct stb_report *rep = calloc(1, sizeof(*rep));
	const struct stb_service_report *s101;
	uint8_t *out;
	char line[512];

	(void)st;
	assert_non_null(rep);
	assert_int_equal(keystore_generate(0x4ADC, 0, &ks), 0);
	build_stream(ks, CW_ALG_CSA2, false, &b);
	out = malloc(b.npkts * TS_PACKET_BYTES);
	assert_non_null(out);

	make_client(ks, 0x00000002, T_NOW_MS / 1000 - 3600, T_NOW_MS / 1000 + 30 * 86400, &c);
	run_ecm_box(&b, &c, 0x00000002, out, rep);
	assert_memory_equal(out, b.scr, b.npkts * TS_PACKET_BYTES); /* nothing changed */
	s101 = find_svc(rep, 101);
	assert_non_null(s101);
	assert_int_equal(s101->descrambled, 0);
	assert_int_equal(s101->left_scrambled, s101->scrambled);
	assert_int_equal(s101->state, STB_SVC_NOT_DESCRAMBLED);
	assert_true(s101->ecm_refused >= 2);
	assert_int_equal(s101->ecm_accepted, 0);
	assert_int_equal(s101->last_refusal, CE_NOT_ENTITLED);
	assert_int_equal(s101->first_descrambled_pkt, -1);
	assert_int_equal(stb_report_line(rep, s101, line, sizeof(line)), 0);
	assert_string_equal(line, "service 101: NOT descrambled: not entitled (ECM for packages 00000001, card has 00000002)");
	{
		/* an ECM v3 also names its extended packages (the first 4) */
		struct stb_service_report x = *s101;

		x.refusal_ecm_next = 2;
		x.refusal_ecm_ext[0] = 40;
		x.refusal_ecm_ext[1] = 41;
		assert_int_equal(stb_report_line(rep, &x, line, sizeof(line)), 0);
		assert_string_equal(line, "service 101: NOT descrambled: not entitled (ECM for packages 00000001 + 40,41, "
					  "card has 00000002)");
		x.refusal_ecm_next = 6;
		x.refusal_ecm_ext[2] = 50;
		x.refusal_ecm_ext[3] = 60;
		assert_int_equal(stb_report_line(rep, &x, line, sizeof(line)), 0);
		assert_non_null(strstr(line, "00000001 + 40,41,50,60,..., card has"));
	}
	cas_client_free(&c);

	/* expired: the subscription ended 30 days before the box's clock */
	make_client(ks, 0x00000001, T_NOW_MS / 1000 - 60 * 86400, T_NOW_MS / 1000 - 30 * 86400, &c);
	run_ecm_box(&b, &c, 0x00000001, out, rep);
	assert_memory_equal(out, b.scr, b.npkts * TS_PACKET_BYTES);
	s101 = find_svc(rep, 101);
	assert_int_equal(s101->descrambled, 0);
	assert_true(s101->last_refusal == CE_EXPIRED || s101->last_refusal == CE_NO_KEY);
	assert_int_equal(stb_report_line(rep, s101, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "NOT descrambled: "));
	assert_non_null(strstr(line, err_str(s101->last_refusal)));
	cas_client_free(&c);

	/* a client of another CA_system_id: no CA_descriptor matches */
	{
		struct keystore *ks2 = NULL;

		assert_int_equal(keystore_generate(0x4ADD, 0, &ks2), 0);
		make_client(ks2, 0x00000001, T_NOW_MS / 1000 - 3600, T_NOW_MS / 1000 + 86400, &c);
		run_ecm_box(&b, &c, 0x00000001, out, rep);
		s101 = find_svc(rep, 101);
		assert_int_equal(s101->necm_pids, 0);
		assert_int_equal(s101->ecm_seen, 0);
		assert_int_equal(stb_report_line(rep, s101, line, sizeof(line)), 0);
		assert_string_equal(line, "service 101: NOT descrambled: no CA_descriptor for CA_system_id 0x4ADD");
		cas_client_free(&c);
		keystore_free(ks2);
	}
	free(out);
	free(rep);
	built_free(&b);
	keystore_free(ks);
}

/* ---- issue 16 item 2: a CW only for its own crypto-period ---- */

#define CPS_PKTS 600   /* original packets per crypto-period */
#define CPS_MAX 16

/* A stream of many CPs (CP k: parity k & 1, its own random CW); ECM(k)
 * (CW k and k+1) at the start of CP k and every ECM_EVERY packets. From CP
 * `refuse_from` on the ECMs are for package 1 only (the card has package
 * 0: refused); from CP `stop_from` on there are none. */
static void build_cps(const struct keystore *ks, int refuse_from, int stop_from, struct built *b, int *ncp)
{
	size_t len, nin, n = 0, since = 0;
	uint8_t *in = tu_read(tu_testdata(CAP_CLEAR), &len);
	struct pmt *pmt = calloc(1, sizeof(*pmt));
	uint8_t pmt_sec[PSI_MAX_PSI_SECTION], cws[CPS_MAX + 1][8], cc_ecm = 0;
	size_t pmt_len = 0;
	bool pmt_done = false, seen_ecm = false;
	int cur = -1;
	struct ts_cipher *ci = ts_cipher_new(CW_ALG_CSA2, true);

	memset(b, 0, sizeof(*b));
	assert_non_null(pmt);
	assert_non_null(ci);
	nin = len / TS_PACKET_BYTES;
	*ncp = (int)((nin + CPS_PKTS - 1) / CPS_PKTS);
	assert_true(*ncp <= CPS_MAX);
	assert_int_equal(RAND_bytes(&cws[0][0], sizeof(cws)), 1);
	b->clear = calloc(nin + nin / 20 + 64, TS_PACKET_BYTES);
	b->scr = calloc(nin + nin / 20 + 64, TS_PACKET_BYTES);
	assert_non_null(b->clear);
	assert_non_null(b->scr);
	for (size_t i = 0; i < nin; i++) {
		const uint8_t *p = in + i * TS_PACKET_BYTES;
		int k = (int)(i / CPS_PKTS);
		struct ts_hdr h;

		if (pmt_done && (k != cur || ++since >= ECM_EVERY) && k < stop_from) {
			struct ecm_params ep;
			uint8_t sec[ECM_MAX_SECTION];
			size_t sl = 0, np = 0;

			memset(&ep, 0, sizeof(ep));
			ep.alg = CW_ALG_CSA2;
			ep.ecm_id = 1;
			ep.ca_system_id = keystore_ca_system_id(ks);
			ep.cp_number = (uint16_t)k;
			ep.timestamp_ms = T_NOW_MS - 1000 + (uint64_t)k;
			ep.epoch = keystore_epoch_at(ks, T_NOW_MS / 1000);
			ep.ac_len = 4;
			ep.ac[3] = k >= refuse_from ? 0x02 : 0x01;
			ep.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
			memcpy(k % 2 ? ep.cw_odd : ep.cw_even, cws[k], 8);
			memcpy(k % 2 ? ep.cw_even : ep.cw_odd, cws[k + 1], 8);
			assert_int_equal(ecm_build(ks, &ep, sec, sizeof(sec), &sl), 0);
			ecm_params_wipe(&ep);
			assert_int_equal(ts_packetize(sec, sl, ECM_PID_PROG, &cc_ecm, b->clear + n * TS_PACKET_BYTES, 8, &np), 0);
			memcpy(b->scr + n * TS_PACKET_BYTES, b->clear + n * TS_PACKET_BYTES, np * TS_PACKET_BYTES);
			n += np;
			since = 0;
			seen_ecm = true;
		}
		if (k != cur)
			cur = k;
		memcpy(b->clear + n * TS_PACKET_BYTES, p, TS_PACKET_BYTES);
		if (pkt_pid(p) == 0x1000 && (p[1] & 0x40)) {
			if (!pmt_done) {
				size_t sl = 3 + (size_t)(((p[6] & 0x0F) << 8) | p[7]);
				struct ca_desc ca = { .ca_system_id = keystore_ca_system_id(ks), .ca_pid = ECM_PID_PROG };

				assert_int_equal(pmt_parse(p + 5, sl, pmt), 0);
				assert_int_equal(ca_desc_append(pmt->info, sizeof(pmt->info), &pmt->info_len, &ca), 0);
				assert_int_equal(pmt_build(pmt, pmt_sec, sizeof(pmt_sec), &pmt_len), 0);
				pmt_done = true;
			}
			{
				uint8_t cc = (uint8_t)((p[3] - 1) & 0x0F);
				size_t np = 0;

				assert_int_equal(ts_packetize(pmt_sec, pmt_len, 0x1000, &cc,
					b->clear + n * TS_PACKET_BYTES, 1, &np), 0);
			}
		}
		memcpy(b->scr + n * TS_PACKET_BYTES, b->clear + n * TS_PACKET_BYTES, TS_PACKET_BYTES);
		assert_int_equal(ts_parse(p, &h), 0);
		if (seen_ecm && (h.pid == 0x100 || h.pid == 0x101) && h.has_payload && h.payload_len > 0) {
			uint8_t *pp = b->scr + n * TS_PACKET_BYTES;

			assert_int_equal(ts_cipher_set_key(ci, k % 2 ? CW_ODD : CW_EVEN, cws[k], 8), 0);
			assert_int_equal(ts_cipher_scramble(ci, &pp, 1, k % 2 ? CW_ODD : CW_EVEN), 0);
			if (k % 2)
				b->n_odd++;
			else
				b->n_even++;
		}
		n++;
	}
	b->npkts = n;
	ts_cipher_free(ci);
	memset(cws, 0, sizeof(cws));
	free(pmt);
	free(in);
}

/* The box's output judged against the clear stream: every packet is either
 * the clear one or still the scrambled one; a packet with its scrambling
 * bits cleared and content not the clear one is garbage. */
static void judge(const struct built *b, const uint8_t *out, size_t *ok, size_t *left, size_t *garbage)
{
	*ok = *left = *garbage = 0;
	for (size_t j = 0; j < b->npkts; j++) {
		const uint8_t *o = out + j * TS_PACKET_BYTES;
		bool was_scr = memcmp(b->scr + j * TS_PACKET_BYTES, b->clear + j * TS_PACKET_BYTES, TS_PACKET_BYTES) != 0;

		if (!was_scr)
			continue;
		if (memcmp(o, b->clear + j * TS_PACKET_BYTES, TS_PACKET_BYTES) == 0)
			(*ok)++;
		else if (memcmp(o, b->scr + j * TS_PACKET_BYTES, TS_PACKET_BYTES) == 0)
			(*left)++;
		else
			(*garbage)++;
	}
}

static void check_cp_key(int refuse_from, int stop_from)
{
	struct keystore *ks = NULL;
	struct built b;
	struct cas_client c = { 0 };
	struct stb_report *rep = calloc(1, sizeof(*rep));
	const struct stb_service_report *s101;
	uint8_t *out;
	size_t ok, left, garbage;
	int ncp = 0, last_ok = refuse_from < stop_from ? refuse_from : stop_from;
	char line[512], want[128];

	assert_non_null(rep);
	assert_int_equal(keystore_generate(0x4ADC, 0, &ks), 0);
	build_cps(ks, refuse_from, stop_from, &b, &ncp);
	assert_true(ncp >= last_ok + 3);
	out = malloc(b.npkts * TS_PACKET_BYTES);
	assert_non_null(out);
	make_client(ks, 0x00000001, T_NOW_MS / 1000 - 3600, T_NOW_MS / 1000 + 30 * 86400, &c);
	run_ecm_box(&b, &c, 0x00000001, out, rep);
	judge(&b, out, &ok, &left, &garbage);
	s101 = find_svc(rep, 101);
	assert_non_null(s101);
	assert_int_equal(stb_report_line(rep, s101, line, sizeof(line)), 0);
	print_message("%d CPs, keys until CP %d: %zu descrambled right, %zu left scrambled, %zu garbage; %s\n", ncp,
		last_ok, ok, left, garbage, line);
	/* CP last_ok still has its key (ECM(last_ok - 1) carried it); later
	 * CPs have none: left scrambled, never garbage */
	assert_int_equal(garbage, 0);
	assert_true(ok > 0);
	assert_true(left > 0);
	assert_int_equal(s101->descrambled, ok);
	assert_int_equal(s101->left_scrambled, left);
	assert_int_equal(s101->nokey_pkts, left);
	assert_int_equal(s101->nokey_since_cp, last_ok + 1);
	assert_int_equal(s101->state, STB_SVC_PARTIAL);
	if (refuse_from < stop_from)
		snprintf(want, sizeof(want), "no key since CP %d: not entitled (ECM for packages 00000002", last_ok + 1);
	else
		snprintf(want, sizeof(want), "no key since CP %d: no ECM accepted after CP %d", last_ok + 1,
			last_ok - 1);
	assert_non_null(strstr(line, want));
	cas_client_free(&c);
	free(out);
	free(rep);
	built_free(&b);
	keystore_free(ks);
}

static void test_cp_key_refused(void **st) { (void)st; check_cp_key(3, CPS_MAX); }
static void test_cp_key_ecms_stop(void **st) { (void)st; check_cp_key(CPS_MAX, 3); }

/* Issue 16 item 15: the carousel repeats a card's EMM; the box counts the
 * repeats apart, not as refused. */
static void test_emm_repeats_not_refused(void **st)
{
	struct keystore *ks = NULL;
	struct emm_issuer *is = NULL;
	struct card_identity ci;
	struct cas_client c = { 0 };
	struct stb_config cfg = { .csa2_reduce = true, .now_ms = test_clock };
	struct stb *box = NULL;
	struct stb_report *rep = calloc(1, sizeof(*rep));
	struct emm_grant g = { .packages = 1, .start_s = T_NOW_MS / 1000 - 3600, .finish_s = T_NOW_MS / 1000 + 3600 };
	struct cat cat;
	struct ca_desc ca = { .ca_pid = 0x1FF0 };
	uint8_t sec[EMM_MAX_SECTION], catsec[1024], ts[32 * TS_PACKET_BYTES], out[32 * TS_PACKET_BYTES];
	size_t len = 0, catlen = 0, n = 0, np = 0;
	uint8_t cc_cat = 15, cc_emm = 15;
	char path[] = "/tmp/test-stb-card-XXXXXX";
	int fd = mkstemp(path);

	(void)st;
	assert_true(fd >= 0);
	close(fd);
	assert_non_null(rep);
	assert_int_equal(keystore_generate(0x4ADC, 0, &ks), 0);
	assert_int_equal(card_issue(ks, 2100000009ull, &ci), 0);
	assert_int_equal(card_save(&ci, path), 0);
	card_identity_wipe(&ci);
	assert_int_equal(cardless_client_new_card(path, NULL, &c), 0);
	assert_int_equal(emm_issuer_new(ks, &is), 0);
	assert_int_equal(emm_build_unique(is, 2100000009ull, 3, &g, T_NOW_MS, sec, sizeof(sec), &len), 0);
	memset(&cat, 0, sizeof(cat));
	ca.ca_system_id = keystore_ca_system_id(ks);
	assert_int_equal(ca_desc_append(cat.info, sizeof(cat.info), &cat.info_len, &ca), 0);
	assert_int_equal(cat_build(&cat, catsec, sizeof(catsec), &catlen), 0);
	assert_int_equal(ts_packetize(catsec, catlen, TS_PID_CAT, &cc_cat, ts, 4, &np), 0);
	n += np;
	for (int i = 0; i < 3; i++) { /* the same EMM three times, as a carousel sends it */
		assert_int_equal(ts_packetize(sec, len, 0x1FF0, &cc_emm, ts + n * TS_PACKET_BYTES, 8, &np), 0);
		n += np;
	}
	cfg.client = &c;
	assert_int_equal(stb_new(&cfg, &box), 0);
	assert_int_equal(stb_feed(box, ts, n, out), 0);
	assert_int_equal(stb_report(box, rep), 0);
	assert_int_equal(rep->emm_seen, 3);
	assert_int_equal(rep->emm_accepted, 1);
	assert_int_equal(rep->emm_repeats, 2);
	assert_int_equal(rep->emm_refused, 0);
	stb_free(box);
	cas_client_free(&c);
	emm_issuer_free(is);
	keystore_free(ks);
	unlink(path);
	free(rep);
}

/* Issue 16 item 15: a PCR jump between the first ECM and the first
 * descrambled packet (a looped file, a splice) makes the zapping time in
 * ms unknown; the report gives it in packets instead of "zapping 3600000
 * ms". */
static void put_pcr_pkt(uint8_t *q, uint16_t pid, uint64_t pcr)
{
	uint64_t base = pcr / 300, ext = pcr % 300;

	memset(q, 0xFF, TS_PACKET_BYTES);
	q[0] = 0x47;
	q[1] = (uint8_t)(pid >> 8);
	q[2] = (uint8_t)pid;
	q[3] = 0x20; /* adaptation field only */
	q[4] = 183;
	q[5] = 0x10; /* PCR_flag */
	q[6] = (uint8_t)(base >> 25);
	q[7] = (uint8_t)(base >> 17);
	q[8] = (uint8_t)(base >> 9);
	q[9] = (uint8_t)(base >> 1);
	q[10] = (uint8_t)(((base & 1) << 7) | 0x7E | (ext >> 8));
	q[11] = (uint8_t)ext;
}

static void test_zapping_across_pcr_jump(void **st)
{
	struct keystore *ks = NULL;
	struct built b;
	struct cas_client c = { 0 };
	struct stb_report *rep = calloc(1, sizeof(*rep));
	const struct stb_service_report *s101;
	struct pmt *pmt = calloc(1, sizeof(*pmt));
	uint8_t *in, *out;
	size_t n = 0;
	bool done = false;
	uint16_t pcr_pid = 0;
	const uint64_t p0 = 100ull * 27000000ull;
	char line[512];

	(void)st;
	assert_non_null(rep);
	assert_non_null(pmt);
	assert_int_equal(keystore_generate(0x4ADC, 0, &ks), 0);
	build_stream(ks, CW_ALG_CSA2, false, &b);
	in = malloc((b.npkts + 2) * TS_PACKET_BYTES);
	out = malloc((b.npkts + 2) * TS_PACKET_BYTES);
	assert_non_null(in);
	assert_non_null(out);
	for (size_t i = 0; i < b.npkts; i++) {
		const uint8_t *p = b.scr + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		assert_int_equal(ts_parse(p, &h), 0);
		if (!pcr_pid && h.pid == 0x1000 && h.pusi &&
		    pmt_parse(p + 5, 3 + (size_t)(((p[6] & 0x0F) << 8) | p[7]), pmt) == 0)
			pcr_pid = pmt->pcr_pid;
		if (!done && pcr_pid && h.pid == ECM_PID_PROG) {
			/* the clock reads p0 when the first ECM comes, then jumps an hour */
			put_pcr_pkt(in + n++ * TS_PACKET_BYTES, pcr_pid, p0);
			memcpy(in + n++ * TS_PACKET_BYTES, p, TS_PACKET_BYTES);
			put_pcr_pkt(in + n++ * TS_PACKET_BYTES, pcr_pid, p0 + 3600ull * 27000000ull);
			done = true;
			continue;
		}
		memcpy(in + n++ * TS_PACKET_BYTES, p, TS_PACKET_BYTES);
	}
	assert_true(done);
	make_client(ks, 0x00000001, T_NOW_MS / 1000 - 3600, T_NOW_MS / 1000 + 30 * 86400, &c);
	{
		struct stb_config cfg = { .client = &c, .csa2_reduce = true, .now_ms = test_clock };
		struct stb *box = NULL;

		assert_int_equal(stb_new(&cfg, &box), 0);
		assert_int_equal(stb_feed(box, in, n, out), 0);
		assert_int_equal(stb_report(box, rep), 0);
		stb_free(box);
	}
	s101 = find_svc(rep, 101);
	assert_non_null(s101);
	assert_int_equal(stb_report_line(rep, s101, line, sizeof(line)), 0);
	print_message("%s\n", line);
	assert_true(s101->descrambled > 0);
	assert_true(s101->zapping_pkts >= 0);
	assert_int_equal(s101->zapping_ms, -1);
	assert_non_null(strstr(line, "packets)"));
	cas_client_free(&c);
	built_free(&b);
	keystore_free(ks);
	free(in);
	free(out);
	free(pmt);
	free(rep);
}

/* JSON report: parses, and carries the counters. */
static void test_report_json(void **st)
{
	struct stb_report *rep = calloc(1, sizeof(*rep));
	uint8_t *out;
	size_t n;
	char *text = NULL;
	json_t *root, *svcs, *s;
	json_error_t jerr;

	(void)st;
	assert_non_null(rep);
	fixed_cw_run(CAP_CSA2, CW_ALG_CSA2, CW_CSA2, true, &out, &n, rep);
	assert_int_equal(stb_report_json(rep, &text), 0);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	assert_int_equal(json_integer_value(json_object_get(root, "packets")), (json_int_t)n);
	svcs = json_object_get(root, "services");
	assert_int_equal(json_array_size(svcs), 2);
	s = json_array_get(svcs, 0);
	assert_int_equal(json_integer_value(json_object_get(s, "service_id")), 101);
	assert_string_equal(json_string_value(json_object_get(s, "state")), "descrambled");
	assert_int_equal(json_integer_value(json_object_get(s, "descrambled")),
		json_integer_value(json_object_get(s, "scrambled")));
	assert_non_null(strstr(json_string_value(json_object_get(s, "summary")), "service 101: descrambled"));
	json_decref(root);
	free(text);
	assert_int_equal(stb_report_json(NULL, &text), CE_ARG);
	assert_null(text);
	free(out);
	free(rep);
}

/* ---- bad input ---- */

static void make_pkt(uint8_t *p, uint16_t pid, bool pusi, uint8_t cc, const uint8_t *payload, size_t len)
{
	memset(p, 0xFF, TS_PACKET_BYTES);
	p[0] = TS_SYNC;
	p[1] = (uint8_t)((pusi ? 0x40 : 0) | (pid >> 8));
	p[2] = (uint8_t)pid;
	p[3] = (uint8_t)(0x10 | (cc & 0x0F));
	if (len > TS_PACKET_BYTES - 4)
		len = TS_PACKET_BYTES - 4;
	if (payload && len)
		memcpy(p + 4, payload, len);
}

/* Each row: packets appended after a valid PAT+PMT(with CA desc) prefix;
 * the box must not crash, must pass every packet through unchanged, and
 * must count the error where it says. */
struct bad_row {
	const char *name;
	uint8_t pkt[TS_PACKET_BYTES];
	bool expect_bad_pkt;      /* bad_packets > 0 */
	bool expect_section_err;  /* section_errors > 0 */
	bool expect_ecm_refused;
};

static void test_bad_inputs(void **st)
{
	struct keystore *ks = NULL;
	struct cas_client c = { 0 };
	uint8_t pat_sec[64], pmt_sec[256], pre[2][TS_PACKET_BYTES];
	size_t pat_len, pmt_len, np;
	struct pat pat = { .tsid = 1, .nprog = 1 };
	struct pmt *pmt = calloc(1, sizeof(*pmt));
	struct ca_desc ca = { .ca_system_id = 0x4ADC, .ca_pid = 0x0200 };
	uint8_t cc = 15;
	struct bad_row rows[8];
	size_t nrows = 0;

	(void)st;
	assert_non_null(pmt);
	pat.prog[0].program = 101;
	pat.prog[0].pid = 0x1000;
	assert_int_equal(pat_build(&pat, pat_sec, sizeof(pat_sec), &pat_len), 0);
	pmt->program = 101;
	pmt->pcr_pid = 0x0100;
	pmt->nes = 1;
	pmt->es[0].stream_type = 0x02;
	pmt->es[0].pid = 0x0100;
	assert_int_equal(ca_desc_append(pmt->info, sizeof(pmt->info), &pmt->info_len, &ca), 0);
	assert_int_equal(pmt_build(pmt, pmt_sec, sizeof(pmt_sec), &pmt_len), 0);
	assert_int_equal(ts_packetize(pat_sec, pat_len, 0, &cc, pre[0], 1, &np), 0);
	cc = 15;
	assert_int_equal(ts_packetize(pmt_sec, pmt_len, 0x1000, &cc, pre[1], 1, &np), 0);

	memset(rows, 0, sizeof(rows));
	/* 1. bad sync byte */
	rows[nrows].name = "bad sync";
	make_pkt(rows[nrows].pkt, 0x0100, false, 0, (const uint8_t *)"x", 1);
	rows[nrows].pkt[0] = 0x48;
	rows[nrows++].expect_bad_pkt = true;
	/* 2. adaptation_field_length beyond the packet */
	rows[nrows].name = "adaptation length 200";
	make_pkt(rows[nrows].pkt, 0x0100, false, 0, NULL, 0);
	rows[nrows].pkt[3] = 0x30;
	rows[nrows].pkt[4] = 200;
	rows[nrows++].expect_bad_pkt = true;
	/* 3. PAT with a bad CRC */
	rows[nrows].name = "PAT bad CRC";
	memcpy(rows[nrows].pkt, pre[0], TS_PACKET_BYTES);
	rows[nrows].pkt[3] = (uint8_t)((rows[nrows].pkt[3] & 0xF0) | 1);
	rows[nrows].pkt[5 + pat_len - 1] ^= 0x55;
	rows[nrows++].expect_section_err = true;
	/* 4. PMT whose CA descriptor runs past its loop (CRC made valid) */
	{
		uint8_t sec[256];
		uint8_t c2 = 0;
		uint32_t crc;

		memcpy(sec, pmt_sec, pmt_len);
		/* program_info: at offset 12: descriptor tag 09, length -> 0xF0 */
		assert_int_equal(sec[12], DESC_CA);
		sec[13] = 0xF0;
		crc = crc32_mpeg(sec, pmt_len - 4);
		put_be32(sec + pmt_len - 4, crc);
		rows[nrows].name = "PMT descriptor overrun";
		assert_int_equal(ts_packetize(sec, pmt_len, 0x1000, &c2, rows[nrows].pkt, 1, &np), 0);
		rows[nrows++].expect_section_err = true;
	}
	/* 5. garbage ECM on the ECM PID */
	{
		uint8_t sec[40] = { 0x80, 0x70, 0x20 };

		for (size_t i = 3; i < sizeof(sec); i++)
			sec[i] = (uint8_t)(i * 7);
		rows[nrows].name = "garbage ECM";
		cc = 3;
		assert_int_equal(ts_packetize(sec, 35, 0x0200, &cc, rows[nrows].pkt, 1, &np), 0);
		rows[nrows++].expect_ecm_refused = true;
	}
	/* 6. section length beyond the packet, then nothing */
	{
		uint8_t sec[8] = { 0x80, 0x7F, 0xFF, 1, 2, 3, 4, 5 };

		rows[nrows].name = "ECM section length 4095, cut";
		make_pkt(rows[nrows].pkt, 0x0200, true, 9, (const uint8_t[]){ 0 }, 1);
		memcpy(rows[nrows].pkt + 5, sec, sizeof(sec));
		nrows++;
	}
	/* 7. pointer_field past the payload */
	rows[nrows].name = "PAT pointer_field 200";
	make_pkt(rows[nrows].pkt, 0x0000, true, 2, (const uint8_t[]){ 200 }, 1);
	rows[nrows++].expect_section_err = true;

	assert_int_equal(keystore_generate(0x4ADC, 0, &ks), 0);
	make_client(ks, 1, T_NOW_MS / 1000 - 10, T_NOW_MS / 1000 + 10, &c);
	for (size_t r = 0; r < nrows; r++) {
		struct stb_config cfg = { .client = &c, .csa2_reduce = true, .now_ms = test_clock };
		struct stb *box = NULL;
		struct stb_report *rep = calloc(1, sizeof(*rep));
		uint8_t in[4][TS_PACKET_BYTES], out[4][TS_PACKET_BYTES];

		assert_non_null(rep);
		memcpy(in[0], pre[0], TS_PACKET_BYTES);
		memcpy(in[1], pre[1], TS_PACKET_BYTES);
		memcpy(in[2], rows[r].pkt, TS_PACKET_BYTES);
		make_pkt(in[3], 0x1FFF, false, 0, NULL, 0);
		assert_int_equal(stb_new(&cfg, &box), 0);
		assert_int_equal(stb_feed(box, &in[0][0], 4, &out[0][0]), 0);
		assert_memory_equal(in, out, sizeof(in));
		assert_int_equal(stb_report(box, rep), 0);
		assert_int_equal(rep->packets, 4);
		if (rows[r].expect_bad_pkt && rep->bad_packets == 0)
			fail_msg("%s: bad packet not counted", rows[r].name);
		if (rows[r].expect_section_err && rep->section_errors == 0)
			fail_msg("%s: section error not counted", rows[r].name);
		if (rows[r].expect_ecm_refused) {
			assert_int_equal(rep->nservices, 1);
			if (rep->svc[0].ecm_refused != 1 || rep->svc[0].last_refusal == 0)
				fail_msg("%s: ECM not refused", rows[r].name);
		}
		stb_free(box);
		free(rep);
	}
	cas_client_free(&c);
	keystore_free(ks);
	free(pmt);
}

/* API argument checks. */
static void test_bad_args(void **st)
{
	struct cas_client c = { 0 }, none = { 0 };
	struct stb_config cfg = { 0 };
	struct stb *box = (struct stb *)1;
	struct descrambler *d = NULL;
	struct descrambler_config dc = { .csa2_reduce = true };
	uint8_t cw[16] = { 1 }, pkt[TS_PACKET_BYTES];

	(void)st;
	assert_int_equal(stb_new(&cfg, &box), CE_ARG);
	assert_null(box);
	cfg.client = &none;
	assert_int_equal(stb_new(&cfg, &box), CE_ARG);
	assert_int_equal(stb_new(NULL, NULL), CE_ARG);
	assert_int_equal(stb_fixed_cw_client_new(CW_ALG_CSA2, cw, 16, &c), CE_ARG);
	assert_null(c.ops);
	assert_int_equal(stb_fixed_cw_client_new(CW_ALG_CISSA, cw, 8, &c), CE_ARG);
	assert_int_equal(stb_fixed_cw_client_new((enum cw_alg)7, cw, 8, &c), CE_ARG);
	assert_int_equal(stb_fixed_cw_client_new(CW_ALG_CSA2, NULL, 8, &c), CE_ARG);
	assert_int_equal(stb_fixed_cw_client_new(CW_ALG_CSA2, cw, 8, &c), 0);
	/* a real section is refused by the fixed client */
	assert_int_equal(c.ops->ecm(c.self, NULL, 101, cw, 3), CE_UNSUPPORTED);
	cfg.client = &c;
	assert_int_equal(stb_new(&cfg, &box), 0);
	assert_int_equal(stb_feed(box, NULL, 1, pkt), CE_ARG);
	assert_int_equal(stb_feed(box, pkt, 0, pkt), 0);
	stb_free(box);
	cas_client_free(&c);

	assert_int_equal(descrambler_new(NULL, &d), CE_ARG);
	assert_int_equal(descrambler_new(&dc, &d), 0);
	assert_int_equal(descrambler_load_cw(d, 1, 0x200, CW_ALG_CSA2, CW_EVEN, cw, 16), CE_ARG);
	assert_int_equal(descrambler_load_cw(d, 1, 0x200, CW_ALG_CSA2, (enum cw_parity)5, cw, 8), CE_ARG);
	assert_int_equal(descrambler_load_cw(d, 1, 0x200, CW_ALG_CSA2, CW_EVEN, cw, 8), 0);
	{
		struct descr_slot_info info;

		descrambler_slot_info(d, 1, 0x200, &info);
		assert_true(info.exists && info.has_even && !info.has_odd);
		assert_int_equal(info.alg, CW_ALG_CSA2);
		/* a CISSA CW into the same slot replaces the cipher */
		assert_int_equal(descrambler_load_cw(d, 1, 0x200, CW_ALG_CISSA, CW_ODD, cw, 16), 0);
		descrambler_slot_info(d, 1, 0x200, &info);
		assert_true(info.has_odd && !info.has_even);
		assert_int_equal(info.alg, CW_ALG_CISSA);
		descrambler_slot_info(d, 1, 0x201, &info);
		assert_false(info.exists);
		descrambler_drop_service(d, 1);
		descrambler_slot_info(d, 1, 0x200, &info);
		assert_false(info.exists);
	}
	for (unsigned i = 0; i < DESCR_MAX_SLOTS; i++)
		assert_int_equal(descrambler_load_cw(d, (uint16_t)i, 0x200, CW_ALG_CSA2, CW_EVEN, cw, 8), 0);
	assert_int_equal(descrambler_load_cw(d, 999, 0x200, CW_ALG_CSA2, CW_EVEN, cw, 8), CE_LIMIT);
	descrambler_free(d);
}

/* Random byte flips and cut packets: no crash, errors counted, packet count
 * preserved, most of the stream still descrambled. */
static void test_corrupt_stream(void **st)
{
	size_t len;
	uint8_t *in = tu_read(tu_testdata(CAP_CSA2), &len);
	uint8_t *cut = malloc(len);
	struct stb_report *rep = calloc(1, sizeof(*rep));
	struct cas_client c = { 0 };
	uint32_t seed = 12345;
	size_t n = 0, npkts;

	(void)st;
	assert_non_null(cut);
	assert_non_null(rep);
	for (int i = 0; i < 3000; i++) {
		seed = seed * 1103515245u + 12345u;
		in[(seed >> 8) % len] ^= (uint8_t)(1u << (seed % 8));
	}
	/* cut: drop 1..187 bytes at 20 places */
	for (size_t off = 0, k = 0; off < len; k++) {
		size_t take = 50000;

		seed = seed * 1103515245u + 12345u;
		if (take > len - off)
			take = len - off;
		memcpy(cut + n, in + off, take);
		n += take;
		off += take;
		if (k < 20)
			off += 1 + (seed >> 8) % 187;
	}
	npkts = n / TS_PACKET_BYTES;
	assert_int_equal(stb_fixed_cw_client_new(CW_ALG_CSA2, CW_CSA2, 8, &c), 0);
	run_box(&c, true, NULL, cut, npkts, cut, rep);
	assert_int_equal(rep->packets, npkts);
	assert_true(rep->bad_packets > 100);
	assert_true(rep->nservices >= 1);
	assert_non_null(find_svc(rep, 101));
	assert_true(find_svc(rep, 101)->descrambled > 0);
	cas_client_free(&c);
	free(in);
	free(cut);
	free(rep);
}

/* The CLI: castellan stb --cw on the CSA2 capture gives the clear file. */
static int run_cli(char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli(void **st)
{
	const char *env = getenv("CASTELLAN_BIN");
	char bin[4096], dir[] = "/tmp/test-stb-XXXXXX", out[128], json[128], in[4096];
	uint8_t *a, *b;
	size_t la, lb;
	char *jtext;
	size_t jl;

	(void)st;
	if (!env)
		skip();
	snprintf(bin, sizeof(bin), "%s", env);
	assert_non_null(mkdtemp(dir));
	snprintf(out, sizeof(out), "%s/out.ts", dir);
	snprintf(json, sizeof(json), "%s/report.json", dir);
	snprintf(in, sizeof(in), "%s", tu_testdata(CAP_CSA2));
	{
		char *argv[] = { bin, (char *)"stb", (char *)"--input", in, (char *)"--output", out,
			(char *)"--cw", (char *)"0123456789abcdef", (char *)"--report-json", json, NULL };

		assert_int_equal(run_cli(argv), 0);
	}
	a = tu_read(out, &la);
	b = tu_read(tu_testdata(CAP_CLEAR), &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	jtext = (char *)tu_read(json, &jl);
	assert_true(jl > 0 && strstr(jtext, "\"descrambled\"") != NULL);
	{ /* the OSD log is in the report (empty: a fixed-CW stream carries no fingerprint) */
		json_t *root = json_loadb(jtext, jl, 0, NULL);

		assert_non_null(root);
		assert_true(json_is_array(json_object_get(root, "osd")));
		assert_int_equal(json_array_size(json_object_get(root, "osd")), 0);
		assert_int_equal(json_integer_value(json_object_get(root, "osd_dropped")), 0);
		json_decref(root);
	}
	free(a);
	free(b);
	free(jtext);
	{
		char *help[] = { bin, (char *)"stb", (char *)"--help", NULL };
		char *bad1[] = { bin, (char *)"stb", (char *)"--input", in, NULL };
		char *bad2[] = { bin, (char *)"stb", (char *)"--input", in, (char *)"--output", out,
			(char *)"--cw", (char *)"0123", NULL };
		char *bad3[] = { bin, (char *)"stb", (char *)"--input", in, (char *)"--output", out,
			(char *)"--cw", (char *)"0123456789abcdef", (char *)"--algo", (char *)"des", NULL };
		char *bad4[] = { bin, (char *)"stb", (char *)"--input", in, (char *)"--output", out,
			(char *)"--cw", (char *)"0123456789abcdef", (char *)"--service", (char *)"0x10000", NULL };
		char *bad5[] = { bin, (char *)"stb", (char *)"--input", (char *)"/nonexistent/x.ts",
			(char *)"--output", out, (char *)"--cw", (char *)"0123456789abcdef", NULL };

		assert_int_equal(run_cli(help), 0);
		assert_int_equal(run_cli(bad1), 2);
		assert_int_equal(run_cli(bad2), 2);
		assert_int_equal(run_cli(bad3), 2);
		assert_int_equal(run_cli(bad4), 2);
		assert_int_equal(run_cli(bad5), 1);
		{ /* C.6: a box with no key of its own cannot record; --playback goes alone */
			char rec[160];
			char *norec[] = { bin, (char *)"stb", (char *)"--input", in, (char *)"--output", out,
				(char *)"--cw", (char *)"0123456789abcdef", (char *)"--record", rec, NULL };
			char *both[] = { bin, (char *)"stb", (char *)"--input", in, (char *)"--playback", rec,
				(char *)"--output", out, (char *)"--cw", (char *)"0123456789abcdef", NULL };

			snprintf(rec, sizeof(rec), "%s/rec.pvr", dir);
			assert_int_equal(run_cli(norec), 1);
			assert_int_equal(access(rec, F_OK), -1); /* nothing left behind */
			assert_int_equal(run_cli(both), 2);
		}
	}
	unlink(out);
	unlink(json);
	rmdir(dir);
}


/* ---- the recorder (C.6: stb/pvr.h) ---- */

struct mem_sink {
	uint8_t *buf;
	size_t n, cap; /* packets */
	size_t calls;
};

static int mem_sink(void *ctx, const uint8_t *pkts, size_t n)
{
	struct mem_sink *m = ctx;

	m->calls++;
	if (n > m->cap - m->n)
		return CE_OVERFLOW;
	memcpy(m->buf + m->n * TS_PACKET_BYTES, pkts, n * TS_PACKET_BYTES);
	m->n += n;
	return 0;
}

static void keyer(uint8_t seed, uint64_t box_id, struct pvr_keyer *k)
{
	uint8_t key[16];

	memset(key, seed, sizeof(key));
	assert_int_equal(pvr_keyer_device(key, sizeof(key), box_id, k), 0);
}

/* Run the ECM box on a built stream with usage rules u, recording into
 * path with keyer k. out gets the box's output, rep the report. */
static void record_box(const struct cas_usage *u, const struct pvr_keyer *k, const char *path, struct built *b,
	struct keystore **ks, uint8_t **out, struct stb_report *rep, struct pvr_rec_stats *rst, char **json)
{
	struct cas_client c = { 0 };
	struct stb_config cfg = { .csa2_reduce = true, .now_ms = test_clock };
	struct stb *box = NULL;
	struct pvr_rec *rec = NULL;

	assert_int_equal(keystore_generate(0x4ADC, 0, ks), 0);
	g_usage = u;
	build_stream(*ks, CW_ALG_CSA2, false, b);
	g_usage = NULL;
	*out = malloc(b->npkts * TS_PACKET_BYTES);
	assert_non_null(*out);
	make_client(*ks, 0x00000001, T_NOW_MS / 1000 - 3600, T_NOW_MS / 1000 + 30 * 86400, &c);
	cfg.client = &c;
	assert_int_equal(stb_new(&cfg, &box), 0);
	assert_int_equal(pvr_rec_open(path, k, 0, T_NOW_MS, &rec), 0);
	for (size_t off = 0; off < b->npkts; off += 300) {
		size_t n = b->npkts - off < 300 ? b->npkts - off : 300;
		uint8_t *o = *out + off * TS_PACKET_BYTES;

		assert_int_equal(stb_feed(box, b->scr + off * TS_PACKET_BYTES, n, o), 0);
		assert_int_equal(pvr_rec_feed(rec, box, o, n), 0);
	}
	assert_int_equal(pvr_rec_close(rec, rst), 0);
	assert_int_equal(stb_report(box, rep), 0);
	if (json)
		assert_int_equal(stb_report_json(rep, json), 0);
	stb_free(box);
	cas_client_free(&c);
}

static int play_path(const struct pvr_keyer *k, const char *path, uint64_t now_ms, struct mem_sink *m,
	struct pvr_info *info)
{
	FILE *f = fopen(path, "rb");
	int r;

	assert_non_null(f);
	r = pvr_play(k, f, now_ms, mem_sink, m, info);
	fclose(f);
	return r;
}

/* Record (copy_once, a day's retention) and play back on the same box:
 * exactly the box's output, less the packets it had no key for; another
 * box (another key, or another id) gets nothing; past the retention,
 * nothing. */
static void test_pvr_roundtrip(void **st)
{
	const struct cas_usage once = { .copy_control = CAS_COPY_ONCE, .retention_s = 86400 };
	char dir[] = "/tmp/test-pvr-XXXXXX", path[128];
	struct stb_report *rep = calloc(1, sizeof(*rep));
	struct pvr_keyer ka, kb, kc;
	struct pvr_rec_stats rst;
	struct pvr_info info;
	struct keystore *ks = NULL;
	struct built b;
	struct mem_sink m = { 0 };
	uint8_t *out = NULL, *want;
	size_t nwant = 0;
	const struct stb_service_report *s101;

	(void)st;
	assert_non_null(rep);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rec.pvr", dir);
	keyer(0xA1, 1001, &ka);
	keyer(0xB2, 1001, &kb); /* another box passing off A's id */
	keyer(0xA1, 1002, &kc); /* another box */
	record_box(&once, &ka, path, &b, &ks, &out, rep, &rst, NULL);
	/* what the recording must hold: the output less still-scrambled packets */
	want = malloc(b.npkts * TS_PACKET_BYTES);
	assert_non_null(want);
	for (size_t i = 0; i < b.npkts; i++)
		if ((out[i * TS_PACKET_BYTES + 3] & 0xC0) == 0)
			memcpy(want + nwant++ * TS_PACKET_BYTES, out + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
	assert_true(nwant > b.npkts * 9 / 10);
	assert_int_equal(rst.packets, nwant);
	assert_int_equal(rst.dropped_scrambled, b.npkts - nwant);
	assert_int_equal(rst.refused_copy_never, 0);
	assert_int_equal(rst.copy_control, CAS_COPY_NO_MORE);
	assert_int_equal(rst.retention_s, 86400);
	s101 = find_svc(rep, 101);
	assert_non_null(s101);
	assert_true(s101->have_usage);
	assert_int_equal(s101->usage.copy_control, CAS_COPY_ONCE);
	assert_true(s101->rec_pkts > 500);
	assert_int_equal(s101->rec_refused_pkts, 0);
	{ /* the file holds no clear packet of the service */
		size_t flen;
		uint8_t *file = tu_read(path, &flen);

		assert_true(flen > nwant * TS_PACKET_BYTES);
		for (size_t i = 0; i < nwant; i += 97)
			assert_null(memmem(file, flen, want + i * TS_PACKET_BYTES + 4, 32));
		free(file);
	}
	m.cap = b.npkts;
	m.buf = malloc(m.cap * TS_PACKET_BYTES);
	assert_non_null(m.buf);
	assert_int_equal(play_path(&ka, path, T_NOW_MS + 1000, &m, &info), 0);
	assert_int_equal(m.n, nwant);
	assert_memory_equal(m.buf, want, nwant * TS_PACKET_BYTES);
	assert_int_equal(info.box_id, 1001);
	assert_int_equal(info.copy_control, CAS_COPY_NO_MORE);
	/* another box: nothing reaches the sink */
	m.n = m.calls = 0;
	assert_int_equal(play_path(&kc, path, T_NOW_MS + 1000, &m, &info), CE_NOT_ENTITLED);
	assert_int_equal(play_path(&kb, path, T_NOW_MS + 1000, &m, &info), CE_MAC);
	/* past the day of retention */
	assert_int_equal(play_path(&ka, path, T_NOW_MS + 86401ull * 1000, &m, &info), CE_EXPIRED);
	assert_int_equal(m.calls, 0);
	unlink(path);
	rmdir(dir);
	pvr_keyer_free(&ka);
	pvr_keyer_free(&kb);
	pvr_keyer_free(&kc);
	free(m.buf);
	free(want);
	free(out);
	free(rep);
	built_free(&b);
	keystore_free(ks);
}

/* copy_never: the box descrambles service 101 for viewing but records none
 * of its packets; service 102 (no rules) is recorded; the report says so. */
static void test_pvr_copy_never(void **st)
{
	const struct cas_usage never = { .copy_control = CAS_COPY_NEVER };
	char dir[] = "/tmp/test-pvr-XXXXXX", path[128];
	struct stb_report *rep = calloc(1, sizeof(*rep));
	struct pvr_keyer ka;
	struct pvr_rec_stats rst;
	struct keystore *ks = NULL;
	struct built b;
	struct mem_sink m = { 0 };
	uint8_t *out = NULL;
	char *json = NULL;
	const struct stb_service_report *s101, *s102;
	size_t n101 = 0, n102 = 0;
	json_t *root, *svcs;

	(void)st;
	assert_non_null(rep);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rec.pvr", dir);
	keyer(0xA1, 1001, &ka);
	record_box(&never, &ka, path, &b, &ks, &out, rep, &rst, &json);
	s101 = find_svc(rep, 101);
	s102 = find_svc(rep, 102);
	assert_non_null(s101);
	assert_non_null(s102);
	assert_int_equal(s101->state, STB_SVC_DESCRAMBLED); /* watched, not recorded */
	assert_int_equal(s101->usage.copy_control, CAS_COPY_NEVER);
	assert_int_equal(s101->rec_pkts, 0);
	assert_true(s101->rec_refused_pkts > 500);
	assert_int_equal(rst.refused_copy_never, s101->rec_refused_pkts);
	assert_true(s102->rec_pkts > 500);
	assert_int_equal(rst.copy_control, CAS_COPY_FREE);
	m.cap = b.npkts;
	m.buf = malloc(m.cap * TS_PACKET_BYTES);
	assert_non_null(m.buf);
	assert_int_equal(play_path(&ka, path, T_NOW_MS, &m, NULL), 0);
	for (size_t i = 0; i < m.n; i++) {
		uint16_t pid = pkt_pid(m.buf + i * TS_PACKET_BYTES);

		n101 += pid == 0x0100 || pid == 0x0101;
		n102 += pid == 0x0102 || pid == 0x0103;
	}
	assert_int_equal(n101, 0);
	assert_int_equal(n102, s102->rec_pkts);
	/* the report JSON says it */
	root = json_loads(json, 0, NULL);
	assert_non_null(root);
	svcs = json_object_get(root, "services");
	for (size_t i = 0; i < json_array_size(svcs); i++) {
		json_t *o = json_array_get(svcs, i);

		if (json_integer_value(json_object_get(o, "service_id")) != 101)
			continue;
		assert_string_equal(json_string_value(json_object_get(o, "copy_control")), "copy_never");
		assert_int_equal(json_integer_value(json_object_get(o, "recorded_packets")), 0);
		assert_true(json_integer_value(json_object_get(o, "record_refused_packets")) > 500);
	}
	json_decref(root);
	free(json);
	unlink(path);
	rmdir(dir);
	pvr_keyer_free(&ka);
	free(m.buf);
	free(out);
	free(rep);
	built_free(&b);
	keystore_free(ks);
}

/* Outside data: a recording altered anywhere (header, chunk head, packets,
 * tag), cut short or grown is refused whole: the sink never runs. */
static void test_pvr_tamper(void **st)
{
	char dir[] = "/tmp/test-pvr-XXXXXX", path[128], bad[160];
	struct pvr_keyer ka;
	struct pvr_rec *rec = NULL;
	struct pvr_rec_stats rst;
	uint8_t pkts[200 * TS_PACKET_BYTES], *file;
	size_t flen;
	struct mem_sink m = { .cap = 200 };

	(void)st;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rec.pvr", dir);
	snprintf(bad, sizeof(bad), "%s/bad.pvr", dir);
	keyer(0xA1, 1001, &ka);
	for (size_t i = 0; i < 200; i++) {
		uint8_t *p = pkts + i * TS_PACKET_BYTES;

		memset(p, (int)i, TS_PACKET_BYTES);
		p[0] = 0x47;
		p[1] = 0x01;
		p[2] = 0x00;
		p[3] = (uint8_t)(0x10 | (i & 0x0F));
	}
	assert_int_equal(pvr_rec_open(path, &ka, 0, T_NOW_MS, &rec), 0);
	assert_int_equal(pvr_rec_feed(rec, NULL, pkts, 200), 0);
	assert_int_equal(pvr_rec_close(rec, &rst), 0);
	assert_int_equal(rst.chunks, 4); /* 64 + 64 + 64 + 8 */
	file = tu_read(path, &flen);
	assert_int_equal(flen, PVR_HEADER_BYTES + 4 * (PVR_CHUNK_HEAD_BYTES + PVR_TAG_BYTES) + 200 * TS_PACKET_BYTES);
	m.buf = malloc(200 * TS_PACKET_BYTES);
	assert_non_null(m.buf);
	assert_int_equal(play_path(&ka, path, T_NOW_MS, &m, NULL), 0);
	assert_memory_equal(m.buf, pkts, sizeof(pkts));
	/* one bit flipped at offsets spread over the whole file */
	for (size_t off = 0; off < flen; off += off < PVR_HEADER_BYTES + 16 ? 1 : 61) {
		file[off] ^= 0x04;
		assert_int_equal(file_write_atomic(bad, file, flen, 0600), 0);
		file[off] ^= 0x04;
		m.n = m.calls = 0;
		assert_int_not_equal(play_path(&ka, bad, T_NOW_MS, &m, NULL), 0);
		assert_int_equal(m.calls, 0);
	}
	/* cut short anywhere, or a byte more */
	for (size_t cut = 0; cut < flen; cut += cut < PVR_HEADER_BYTES + 16 ? 1 : 173) {
		assert_int_equal(file_write_atomic(bad, file, cut, 0600), 0);
		assert_int_not_equal(play_path(&ka, bad, T_NOW_MS, &m, NULL), 0);
		assert_int_equal(m.calls, 0);
	}
	file = realloc(file, flen + 1);
	assert_non_null(file);
	file[flen] = 0;
	assert_int_equal(file_write_atomic(bad, file, flen + 1, 0600), 0);
	assert_int_equal(play_path(&ka, bad, T_NOW_MS, &m, NULL), CE_TRAILING);
	assert_int_equal(m.calls, 0);
	free(file);
	free(m.buf);
	unlink(bad);
	unlink(path);
	rmdir(dir);
	pvr_keyer_free(&ka);
}

/* The header parser's bad cases (no crypto reached). */
static void test_pvr_header_bad(void **st)
{
	struct pvr_info good = { .source = PVR_SRC_DEVICE, .service_id = 101, .box_id = 7, .copy_control = 0,
		.created_ms = 1, .packets = 200, .chunks = 4 };
	static const struct { size_t at; uint8_t val; int want; } cases[] = {
		{ 0, 'X', CE_FORMAT },      /* magic */
		{ 8, 2, CE_FORMAT },        /* version */
		{ 9, 0, CE_FORMAT },        /* key source */
		{ 9, 3, CE_FORMAT },
		{ 20, CAS_COPY_ONCE, CE_RANGE }, /* a recording is copy_free or copy_no_more */
		{ 20, CAS_COPY_NEVER, CE_RANGE },
		{ 21, 1, CE_FORMAT },       /* reserved */
		{ 23, 63, CE_FORMAT },      /* chunk size */
		{ 24, 0xFF, CE_RANGE },     /* retention over ten years */
		{ 43, 0, CE_RANGE },        /* packets 0 in 4 chunks */
		{ 42, 1, CE_RANGE },        /* more packets than 4 chunks hold */
		{ 47, 0, CE_RANGE },        /* 0 chunks */
		{ 47, 1, CE_RANGE },        /* 200 packets in 1 chunk */
	};
	uint8_t h[PVR_HEADER_BYTES] = { 0 }, b[PVR_HEADER_BYTES];
	struct pvr_info got;
	struct wbuf w;

	(void)st;
	wbuf_init(&w, h, sizeof(h));
	wbuf_bytes(&w, PVR_MAGIC, 8);
	wbuf_u8(&w, PVR_VERSION);
	wbuf_u8(&w, good.source);
	wbuf_u16(&w, good.service_id);
	wbuf_u64(&w, good.box_id);
	wbuf_u8(&w, good.copy_control);
	wbuf_u8(&w, 0);
	wbuf_u16(&w, PVR_CHUNK_PKTS);
	wbuf_u32(&w, 0);
	wbuf_u64(&w, good.created_ms);
	wbuf_u64(&w, good.packets);
	wbuf_u32(&w, good.chunks);
	assert_int_equal(wbuf_status(&w), 0);
	assert_int_equal(pvr_header_parse(h, sizeof(h), &got), 0);
	assert_int_equal(got.packets, 200);
	assert_int_equal(got.service_id, 101);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(b, h, sizeof(h));
		b[cases[i].at] = cases[i].val;
		assert_int_equal(pvr_header_parse(b, sizeof(b), &got), cases[i].want);
		assert_int_equal(got.box_id, 0); /* zeroed on error */
	}
	for (size_t n = 0; n < sizeof(h); n++)
		assert_int_equal(pvr_header_parse(h, n, &got), n < PVR_HEADER_AUTH_BYTES ? CE_TRUNCATED : CE_TRUNCATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_csa2),
		cmocka_unit_test(test_fixed_csa2_noreduce),
		cmocka_unit_test(test_fixed_cissa),
		cmocka_unit_test(test_fixed_wrong_cw),
		cmocka_unit_test(test_one_service),
		cmocka_unit_test(test_ecm_csa2),
		cmocka_unit_test(test_ecm_cissa),
		cmocka_unit_test(test_ecm_per_component),
		cmocka_unit_test(test_ecm_refused),
		cmocka_unit_test(test_cp_key_refused),
		cmocka_unit_test(test_cp_key_ecms_stop),
		cmocka_unit_test(test_emm_repeats_not_refused),
		cmocka_unit_test(test_zapping_across_pcr_jump),
		cmocka_unit_test(test_report_json),
		cmocka_unit_test(test_pvr_roundtrip),
		cmocka_unit_test(test_pvr_copy_never),
		cmocka_unit_test(test_pvr_tamper),
		cmocka_unit_test(test_pvr_header_bad),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_corrupt_stream),
		cmocka_unit_test(test_cli),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
