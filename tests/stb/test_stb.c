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
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "testutil.h"
#include "cas/client.h"
#include "cas/ecm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "cipher/cipher.h"
#include "stb/descrambler.h"
#include "stb/stb.h"
#include "ts/psi.h"
#include "ts/ts.h"

#define CAP_CLEAR "simulcrypt/captures/ts-clear-2svc.ts"
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
	uint8_t *in = tu_read(tu_shared(cap), &len);

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
	clear = tu_read(tu_shared(CAP_CLEAR), &clen);
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
	assert_true(s101->scrambled > 2000);
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
	static const uint8_t bad[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEE };
	struct stb_report *rep = calloc(1, sizeof(*rep));
	const struct stb_service_report *s101;
	uint8_t *out, *clear;
	size_t n, clen;
	char line[512];

	(void)st;
	assert_non_null(rep);
	fixed_cw_run(CAP_CSA2, CW_ALG_CSA2, bad, true, &out, &n, rep);
	clear = tu_read(tu_shared(CAP_CLEAR), &clen);
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
	uint8_t *in = tu_read(tu_shared(CAP_CSA2), &len);
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
	uint8_t *in = tu_read(tu_shared(CAP_CLEAR), &len);
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
	assert_int_equal(RAND_bytes_for_test(&cws[0][0][0], sizeof(cws)), 0);
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
		if (pmt_done && (!ecm_started || ++since_ecm >= ECM_EVERY)) {
			int cp = i + ECM_EVERY < SWITCH_AT ? 0 : 1; /* CP 1's ECM leads the switch */

			since_ecm = 0;
			ecm_started = true;
			if (es_level) {
				put_section(b->clear, &n, ecm[0][cp], ecm_len[0][cp], ECM_PID_V, &cc_ecm[0]);
				put_section(b->clear, &n, ecm[1][cp], ecm_len[1][cp], ECM_PID_A, &cc_ecm[1]);
			} else {
				put_section(b->clear, &n, ecm[0][cp], ecm_len[0][cp], ECM_PID_PROG, &cc_ecm[0]);
			}
		}
		/* remember the original index in the scrambling pass: mark by position */
		(void)kl;
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
