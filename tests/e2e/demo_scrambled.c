/*
 * demo_scrambled.c - the README's demo (`castellan-demo`, scenario
 * "scrambled"): the whole scrambled path on one machine, real commands as
 * separate processes, as an operator would run them:
 *   keys init -> headend (SMS GET API, ECMG, EMMG, scheduler; SQLite in the
 *   work dir) -> scramble the file (SimulCrypt, CSA2 or CISSA) -> provision
 *   two boxes -> stb for each.
 * Box A (packages 1 and 2) must get both services back bit-identical, box B
 * (package 1) the first and not the second. Then over the air: a card is
 * added to the SMS, the input is streamed (looped at its PCR rate, through
 * pipes) into `scramble --mux-listen`, which the head-end's EMMG feeds, and
 * out to `stb --card`; the card is subscribed through the GET API (the box
 * starts descrambling), then its package removed (it stops); the seconds
 * each took are recorded.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "demo.h"
#include "lib/err.h"
#include "lib/util.h"

#define LIVE_LOOPS 40   /* the input is looped; the feeder is stopped when done */
#define LIVE_WAIT_S 25  /* bound on each wait */
#define LIVE_CARD "2100000003"

struct scen {
	struct e2e *e;
	const struct demo_args *a;
	struct e2e_headend he;
};

/* Boxes A and B on the scrambled file, judged against the clear input. */
static int batch_part(struct scen *s, const struct e2e_ts *in, const struct e2e_svc *svc, bool *ok)
{
	struct e2e *e = s->e;
	char ks[1024], pf[1024], scrp[1024], ent[1024], out[1024], start[24], finish[24], svc1[32], svc2[32];
	char cp[16], log[32], line[512], db[1100];
	struct e2e_ts scr = { 0 }, box = { 0 };
	struct e2e_judge j[2][2];
	uint64_t now_s = now_wall_ms() / 1000;
	json_t *boxes = json_object();
	int r = CE_INTERNAL;

	e2e_path(e, "headend.keystore", ks, sizeof(ks));
	e2e_path(e, "passphrase", pf, sizeof(pf));
	e2e_path(e, "scrambled.ts", scrp, sizeof(scrp));
	snprintf(cp, sizeof(cp), "%u", s->a->cp_seconds);
	snprintf(svc1, sizeof(svc1), "%u:ac=00000001", svc[0].program);
	snprintf(svc2, sizeof(svc2), "%u:ac=00000002", svc[1].program);
	json_object_set_new(e->summary, "boxes", boxes);
	/* service 1 in package 1 (mask 00000001), service 2 in package 2 */
	if (E2E_RUN(e, "scramble.log", "scramble", "--input", s->a->input, "--output", scrp, "--service",
		    svc1, "--service", svc2, "--ecmg", s->he.ecmg, "--super-cas-id", "0x4ADC0001", "--algo",
		    s->a->algo, "--cp-duration", cp) != 0 ||
	    e2e_ts_load(scrp, &scr) != 0)
		goto out;
	snprintf(db, sizeof(db), "sqlite:%s/headend-data/sms.db", e->dir);
	snprintf(start, sizeof(start), "%llu", (unsigned long long)(now_s - 3600));
	snprintf(finish, sizeof(finish), "%llu", (unsigned long long)(now_s + 30 * 86400));
	printf("\n  %-28s %-34s %-34s\n", "", "box A (card 2100000001, pkg 1+2)", "box B (card 2100000002, pkg 1)");
	for (int b = 0; b < 2; b++) {
		char name[32];

		snprintf(name, sizeof(name), "box%c.entitlement", 'A' + b);
		e2e_path(e, name, ent, sizeof(ent));
		snprintf(name, sizeof(name), "box%c.ts", 'A' + b);
		e2e_path(e, name, out, sizeof(out));
		/* the card and its packages in the SMS first: provision issues what the SMS grants (TRAI A.5) */
		snprintf(log, sizeof(log), "provision%c.log", 'A' + b);
		if (E2E_RUN(e, log, "sms", "--db", db, "card", "add", b ? "2100000002" : "2100000001") != 0 ||
		    E2E_RUN(e, log, "sms", "--db", db, "subscribe", b ? "2100000002" : "2100000001", "--packages",
			    b ? "0" : "0,1", "--start", start, "--finish", finish) != 0 ||
		    E2E_RUN(e, log, "provision", "--db", db, "--keystore", ks, "--passphrase-file", pf, "--card",
			    b ? "2100000002" : "2100000001", "--out", ent) != 0)
			goto out;
		snprintf(log, sizeof(log), "box%c.log", 'A' + b);
		if (E2E_RUN(e, log, "stb", "--input", scrp, "--output", out, "--entitlement", ent) != 0 ||
		    e2e_ts_load(out, &box) != 0)
			goto out;
		json_t *jb = json_array();

		json_object_set_new(boxes, b ? "B" : "A", jb);
		for (int k = 0; k < 2; k++) {
			if (e2e_judge(in, &scr, &box, svc[k].pids, svc[k].npids, &j[b][k]) != 0)
				goto out;
			json_t *js = json_pack("{si si so sb sb}", "program", svc[k].program, "package", k + 1,
				"judge", e2e_judge_json(&j[b][k]), "clear", e2e_judge_clear(&j[b][k]), "refused",
				e2e_judge_refused(&j[b][k]));

			json_array_append_new(jb, js);
		}
		e2e_ts_free(&box);
	}
	for (int k = 0; k < 2; k++) {
		char la[64], lb[64];

		snprintf(la, sizeof(la), "%s %zu/%zu pkts", e2e_judge_clear(&j[0][k]) ? "CLEAR, bit-identical" : "NOT clear",
			j[0][k].same, j[0][k].packets);
		snprintf(lb, sizeof(lb), "%s %zu/%zu pkts",
			e2e_judge_clear(&j[1][k]) ? "CLEAR, bit-identical" :
			e2e_judge_refused(&j[1][k]) ? "stays scrambled" : "NOT clear", j[1][k].same, j[1][k].packets);
		printf("  service %-5u (package %d)    %-34s %-34s\n", svc[k].program, k + 1, la, lb);
		if (j[0][k].scrambled == 0)
			printf("    ! the scrambler left service %u in the clear\n", svc[k].program);
	}
	/* A: both back; B: the first back, the second left scrambled */
	if (!e2e_judge_clear(&j[0][0]) || !e2e_judge_clear(&j[0][1]) || !e2e_judge_clear(&j[1][0]) ||
	    !e2e_judge_refused(&j[1][1]))
		*ok = false;
	printf("\n  what box B said:\n");
	{
		FILE *f = fopen(e2e_path(e, "boxB.log", out, sizeof(out)), "r");

		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, "service"))
				printf("    %s", line);
		if (f)
			fclose(f);
	}
	r = 0;
out:
	if (r != 0)
		*ok = false;
	e2e_ts_free(&scr);
	e2e_ts_free(&box);
	return r;
}

/* head-end -> streaming scramble with MUX -> box C with a card. */
static int live_part(struct scen *s, const struct e2e_ts *in, const struct e2e_svc *svc, bool *ok)
{
	struct e2e *e = s->e;
	char ks[1024], pf[1024], db[1100], card[1024], state[1024], outc[1024];
	char svc1[32], svc2[32], q[1024], body[4096];
	const char *key = s->he.admin_key;
	int p1[2] = { -1, -1 }, p2[2] = { -1, -1 };
	pid_t feeder = 0, scr = 0, stb = 0;
	struct e2e_watch w = { 0 };
	double t_on = -1, t_off = -1;
	size_t ok_pkts = 0, bad_pkts = 0;
	uint64_t now = now_wall_ms() / 1000;
	json_t *live = json_object();
	int r = CE_INTERNAL;

	json_object_set_new(e->summary, "live", live);
	e2e_path(e, "headend.keystore", ks, sizeof(ks));
	e2e_path(e, "passphrase", pf, sizeof(pf));
	e2e_path(e, "cardC.json", card, sizeof(card));
	e2e_path(e, "boxC.state", state, sizeof(state));
	e2e_path(e, "boxC.ts", outc, sizeof(outc));
	snprintf(db, sizeof(db), "sqlite:%s/headend-data/sms.db", e->dir);
	snprintf(svc1, sizeof(svc1), "%u:ac=00000001", svc[0].program);
	snprintf(svc2, sizeof(svc2), "%u:ac=00000002", svc[1].program);
	printf("\nLive: head-end -> streaming scrambler with MUX -> box C with a card, entitled over the air\n");
	if (E2E_RUN(e, "sms-card-add.log", "sms", "--db", db, "card", "add", LIVE_CARD) != 0 ||
	    E2E_RUN(e, "provisionC.log", "provision", "--keystore", ks, "--passphrase-file", pf, "--card", LIVE_CARD,
		    "--identity-out", card) != 0)
		goto out;
	printf("  card " LIVE_CARD " added to the SMS (no package); box C has only its card file\n");
	if (e2e_watch_init(&w, outc, in, svc[0].pids[0]) != 0)
		goto out;
	/* feeder | scramble --mux-listen | stb --card */
	if (pipe2(p1, O_CLOEXEC) != 0 || pipe2(p2, O_CLOEXEC) != 0)
		goto out;
	{
		char *sa[] = { "castellan", "scramble", "--input", "-", "--output", "-", "--service", svc1, "--service",
			svc2, "--ecmg", s->he.ecmg, "--super-cas-id", "0x4ADC0001", "--algo", s->a->algo,
			"--cp-duration", "2", "--mux-listen", s->he.mux, NULL };
		char *ba[] = { "castellan", "stb", "--input", "-", "--output", outc, "--card", card, "--state", state,
			NULL };

		scr = e2e_spawn(e, "scramble-live.log", sa, p1[0], p2[1]);
		stb = e2e_spawn(e, "boxC.log", ba, p2[0], -1);
		feeder = e2e_feeder(in, p1[1], LIVE_LOOPS);
	}
	for (int i = 0; i < 2; i++) {
		close(p1[i]);
		close(p2[i]);
		p1[i] = p2[i] = -1;
	}
	if (scr < 0 || stb < 0 || feeder < 0)
		goto out;
	if (e2e_watch_until(&w, false, LIVE_WAIT_S) < 0) {
		printf("  ! box C did not receive the stream\n");
		goto out;
	}
	printf("  streaming (%s, crypto-period 2 s, EMMs from the head-end's carousel on the MUX);\n"
	       "  box C receives service %u scrambled and cannot descramble it (no package)\n",
		s->a->algo, svc[0].program);
	if (strlen(key) != 64)
		goto out;
	/* subscribe through the free CAS's GET API: package 1 (bit 0) */
	snprintf(q, sizeof(q), "/api.php?api_key=%.64s&serial_no=" LIVE_CARD "&set%%5Bstart%%5D=%llu"
		"&set%%5Bfinish%%5D=%llu&set%%5Baccess_criteria%%5D=00000001", key, (unsigned long long)(now - 3600),
		(unsigned long long)(now + 30 * 86400));
	if (e2e_http_get(s->he.http_port, q, body, sizeof(body)) != 200) {
		printf("  ! GET API refused the subscription: %s\n", body);
		goto out;
	}
	printf("  GET /api.php ... set[access_criteria]=00000001  -> %s\n", body);
	if ((t_on = e2e_watch_until(&w, true, LIVE_WAIT_S)) < 0)
		printf("  ! box C did not start descrambling within %d s\n", LIVE_WAIT_S);
	else
		printf("  box C descrambles service %u (bit-identical to the input) %.1f s after the API call\n",
			svc[0].program, t_on);
	if (t_on >= 0) {
		snprintf(q, sizeof(q), "/api.php?api_key=%.64s&serial_no=" LIVE_CARD "&set%%5Baccess_criteria%%5D=00000000",
			key);
		if (e2e_http_get(s->he.http_port, q, body, sizeof(body)) != 200) {
			printf("  ! GET API refused the removal: %s\n", body);
			goto out;
		}
		printf("  GET /api.php ... set[access_criteria]=00000000  -> %s\n", body);
		if ((t_off = e2e_watch_until(&w, false, LIVE_WAIT_S)) < 0)
			printf("  ! box C still descrambles %d s after the package was removed\n", LIVE_WAIT_S);
		else
			printf("  box C stops descrambling %.1f s after the API call (next crypto-period: no key)\n",
				t_off);
	}
	e2e_watch_look(&w, &ok_pkts, &bad_pkts);
	if (w.garbage > 0)
		printf("  ! box C wrote %zu packets as clear that are not the input's (descrambled with a wrong key)\n",
			w.garbage);
	else
		printf("  box C, compared with the clear input: every packet it marked clear is the input's\n");
	r = 0;
out:
	json_object_set_new(live, "on_s", t_on >= 0 ? json_real(t_on) : json_null());
	json_object_set_new(live, "off_s", t_off >= 0 ? json_real(t_off) : json_null());
	json_object_set_new(live, "garbage", json_integer((json_int_t)w.garbage));
	if (r != 0 || t_on < 0 || t_off < 0 || w.garbage > 0)
		*ok = false;
	for (int i = 0; i < 2; i++) {
		if (p1[i] >= 0)
			close(p1[i]);
		if (p2[i] >= 0)
			close(p2[i]);
	}
	e2e_stop(&feeder, 2000);
	e2e_reap(&scr, 5000);
	e2e_reap(&stb, 5000);
	e2e_watch_free(&w);
	return r;
}

int demo_scrambled(struct e2e *e, const struct demo_args *a)
{
	struct scen s = { .e = e, .a = a };
	struct e2e_ts in = { 0 };
	struct e2e_svc svc[8];
	size_t nsvc = 0;
	char ks[1024], pf[1024];
	uint64_t t0_us = now_mono_us();
	bool ok = true;

	json_object_set_new(e->summary, "algo", json_string(a->algo));
	json_object_set_new(e->summary, "cp_seconds", json_integer(a->cp_seconds));
	printf("Castellan demo: %s scrambling over DVB SimulCrypt, crypto-period %u s\n", a->algo, a->cp_seconds);
	printf("  input    %s\n  work dir %s\n", a->input, e->dir);
	if (e2e_ts_load(a->input, &in) != 0 || e2e_services(&in, 0, svc, 8, &nsvc) != 0 || nsvc < 2 ||
	    !svc[0].npids || !svc[1].npids) {
		fprintf(stderr, "castellan-demo: %s is not a TS with two services\n", a->input);
		goto fail;
	}
	/* 1. head-end keystore, under a passphrase generated for this run */
	if (e2e_passphrase(e, "passphrase", NULL) != 0 ||
	    E2E_RUN(e, "keys.log", "keys", "init", "--out", e2e_path(e, "headend.keystore", ks, sizeof(ks)),
		    "--ca-system-id", "0x4ADC", "--passphrase-file", e2e_path(e, "passphrase", pf, sizeof(pf))) != 0)
		goto fail;
	/* 2. the head-end: SMS (GET API), ECMG, EMMG + carousel, scheduler */
	if (e2e_headend_start(e, "headend.keystore", "passphrase", (char *const[]){ "--emm-kbps", "64",
		    "--status-every", "5", NULL }, 10000, &s.he) != 0) {
		fprintf(stderr, "castellan-demo: the head-end did not start\n");
		e2e_show_log(e, "headend.log");
		goto fail;
	}
	printf("  head-end running: ECMG on %s (CA_system_id 0x4ADC), GET API on %s\n", s.he.ecmg, s.he.http);
	/* 3-5. scramble, two boxes, the verdict */
	if (batch_part(&s, &in, svc, &ok) != 0)
		goto fail;
	if (live_part(&s, &in, svc, &ok) != 0)
		e2e_show_log(e, "headend.log");
	printf("\n  %s in %.1f s\n", ok ? "DEMO PASSED: box A sees both services, box B only the one it pays for;"
		" box C gained and lost service 1 by EMM after GET API calls" : "DEMO FAILED",
		(double)(now_mono_us() - t0_us) / 1e6);
	goto out;
fail:
	ok = false;
	fprintf(stderr, "castellan-demo: failed (logs in %s)\n", e->dir);
out:
	e2e_headend_stop(&s.he);
	e2e_ts_free(&in);
	return ok ? 0 : 1;
}
