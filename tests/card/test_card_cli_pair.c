/*
 * test_card_cli_pair.c - a smartcard paired with one box's chip, end to end
 * through the real commands (docs/smartcard.md "Pairing", issue 6):
 * `castellan card issue` / `card program` make the card, the SMS holds its
 * package and the box it pairs with, `castellan provision --emm-out` its
 * grant and `provision --pair-emm-out` (K_pair from vendor B's opened key
 * file, the box from the SMS) its PAIR EMM, `castellan card emm` sends them, `card
 * serve` puts it behind pcscd's vpcd reader, and `castellan stb --smartcard
 * --chip-otp` descrambles vendor B's stream with the chip the card is paired
 * with; the same card in a box with another chip's OTP descrambles nothing.
 * The vendor world (KMS, OTP images, B.keystore, B.csv, B.mod, scrambled-B.ts)
 * comes from `castellan-demo replace` (tu_demo_replace_keep). Skipped without pcscd + vpcd.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "testutil.h"
#include "card/pcscd_private.h"

#define CHIP1 "0x0000ca57e11a0001"
#define CHIP1_OTP "otp/0000ca57e11a0001.otp"
#define CHIP2_OTP "otp/0000ca57e11a0002.otp"
#define SERIAL "2100000077"

struct fx {
	char dir[512];
};

static const char *bin(void)
{
	const char *b = getenv("CASTELLAN_BIN");

	assert_non_null(b);
	return b;
}

static const char *wp(const struct fx *f, const char *name)
{
	static char ring[16][1024];
	static unsigned k;
	char *p = ring[k++ % 16];

	snprintf(p, sizeof(ring[0]), "%s/%s", f->dir, name);
	return p;
}

/* castellan ARGS, stdout+stderr into outfile; the exit status. */
static int run(const char *outfile, const char *fmt, ...)
{
	char args[6000], cmd[8000];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "'%s' %s >'%s' 2>&1", bin(), args, outfile ? outfile : "/dev/null");
	st = system(cmd);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static char *slurp(const char *path)
{
	size_t len = 0;
	uint8_t *b = tu_read(path, &len);
	char *s = realloc(b, len + 1);

	assert_non_null(s);
	s[len] = '\0';
	return s;
}

static bool out_has(const char *path, const char *needle)
{
	char *s = slurp(path);
	bool ok = strstr(s, needle) != NULL;

	if (!ok)
		fprintf(stderr, "--- %s (no '%s'):\n%s\n", path, needle, s);
	free(s);
	return ok;
}

static void copy_file(const char *from, const char *to)
{
	size_t len = 0;
	uint8_t *b = tu_read(from, &len);
	FILE *f = fopen(to, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(b);
}

static void box_dir(const struct fx *f, const char *box)
{
	char to[1100];

	assert_int_equal(mkdir(wp(f, box), 0700), 0);
	snprintf(to, sizeof(to), "%s/keys-b.json", wp(f, box));
	copy_file(wp(f, "box/keys-b.json"), to);
}

static int setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	if (!getenv("CASTELLAN_BIN"))
		return -1;
	if (tu_demo_replace_keep(bin(), f.dir, sizeof(f.dir)) != 0)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	return f ? tu_demo_replace_clean(f->dir) : 0;
}

/* Services of a report: how many, how many in `state`, packets descrambled. */
static void report(const char *path, const char *state, size_t *nsvc, size_t *nstate, uint64_t *desc)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e), *svcs, *s;
	size_t i;

	assert_non_null(j);
	svcs = json_object_get(j, "services");
	assert_true(json_is_array(svcs));
	*nsvc = json_array_size(svcs);
	*nstate = 0;
	*desc = 0;
	json_array_foreach(svcs, i, s) {
		const char *st = json_string_value(json_object_get(s, "state"));

		assert_non_null(st);
		*desc += (uint64_t)json_integer_value(json_object_get(s, "descrambled"));
		if (strcmp(st, state) == 0)
			(*nstate)++;
	}
	json_decref(j);
}

static bool have_pcsc(void)
{
	return pcscd_available() && geteuid() == 0;
}

/* The commands alone (no PC/SC): pair EMM built, sent, the card says so;
 * bad usage refused. */
static void test_pair_emm_cli(void **state)
{
	const struct fx *f = *state;
	long now = (long)time(NULL);

	assert_int_equal(run(wp(f, "t1.out"), "card issue --keys '%s' --passphrase-file '%s' --serial " SERIAL
				 " --out '%s' --transport-file '%s'",
				 wp(f, "B.keystore"), wp(f, "passphrase"), wp(f, "c1.perso"), wp(f, "passphrase")),
		0);
	assert_int_equal(run(wp(f, "t1.out"), "card program '%s' --eeprom '%s' --transport-file '%s'",
				 wp(f, "c1.perso"), wp(f, "c1.eeprom"), wp(f, "passphrase")),
		0);
	/* the SMS pairs the card with chip 1's box (TRAI A.10); card ...78 with a chip not in B.csv */
	assert_int_equal(run(wp(f, "t1.out"), "sms --db '%s' card add " SERIAL " --chip " CHIP1 " --pair 1", wp(f, "sms1.db")),
		0);
	assert_int_equal(run(wp(f, "t1.out"), "sms --db '%s' subscribe " SERIAL " --packages 0 --start %ld --finish %ld",
				 wp(f, "sms1.db"), now - 7200, now + 86400),
		0);
	assert_int_equal(run(wp(f, "t1.out"), "sms --db '%s' card add 2100000078 --chip 0x99 --pair 1", wp(f, "sms1.db")),
		0);
	assert_int_equal(run(wp(f, "t1.out"), "sms --db '%s' subscribe 2100000078 --packages 0 --start %ld --finish %ld",
				 wp(f, "sms1.db"), now - 7200, now + 86400),
		0);
	assert_int_equal(run(wp(f, "t1.out"), "provision --db '%s' --pair-emm-out '%s' --vendor-keys '%s' --card " SERIAL
				 " --keystore '%s' --passphrase-file '%s' --now %ld",
				 wp(f, "sms1.db"), wp(f, "pair1.hex"), wp(f, "B.csv"), wp(f, "B.keystore"), wp(f, "passphrase"),
				 now),
		0);
	assert_true(out_has(wp(f, "t1.out"), "PAIR EMM"));
	assert_int_equal(run(wp(f, "t1.out"), "card emm '%s' --eeprom '%s'", wp(f, "pair1.hex"), wp(f, "c1.eeprom")), 0);
	assert_true(out_has(wp(f, "t1.out"), "1 EMM accepted"));
	assert_int_equal(run(wp(f, "t1.out"), "card info --eeprom '%s'", wp(f, "c1.eeprom")), 0);
	assert_true(out_has(wp(f, "t1.out"), "paired with box 222478787543041")); /* chip 1 */
	/* the same EMM again: its sequence number is spent */
	assert_int_equal(run(wp(f, "t1.out"), "card emm '%s' --eeprom '%s'", wp(f, "pair1.hex"), wp(f, "c1.eeprom")), 1);
	assert_true(out_has(wp(f, "t1.out"), "refused"));
	/* the SMS's box not in the vendor key file, a card not in the SMS, a
	 * non-decimal card, no --vendor-keys, a chip from the command line */
	assert_int_equal(run(wp(f, "t1.out"), "provision --db '%s' --pair-emm-out '%s' --vendor-keys '%s' --card 2100000078"
				 " --keystore '%s' --passphrase-file '%s'",
				 wp(f, "sms1.db"), wp(f, "pair2.hex"), wp(f, "B.csv"), wp(f, "B.keystore"), wp(f, "passphrase")),
		1);
	assert_int_equal(run(wp(f, "t1.out"), "provision --db '%s' --pair-emm-out '%s' --vendor-keys '%s' --card 2100000079"
				 " --keystore '%s' --passphrase-file '%s'",
				 wp(f, "sms1.db"), wp(f, "pair2.hex"), wp(f, "B.csv"), wp(f, "B.keystore"), wp(f, "passphrase")),
		1);
	assert_true(out_has(wp(f, "t1.out"), "not in the SMS"));
	assert_int_equal(run(NULL, "provision --db '%s' --pair-emm-out '%s' --vendor-keys '%s' --card 0x12 --keystore '%s'",
			       wp(f, "sms1.db"), wp(f, "pair2.hex"), wp(f, "B.csv"), wp(f, "B.keystore")),
		2);
	assert_int_equal(run(NULL, "provision --db '%s' --pair-emm-out '%s' --card " SERIAL " --keystore '%s'",
			       wp(f, "sms1.db"), wp(f, "pair2.hex"), wp(f, "B.keystore")),
		2);
	assert_int_equal(run(NULL, "provision --db '%s' --pair-emm-out '%s' --vendor-keys '%s' --chip " CHIP1
			       " --card " SERIAL " --keystore '%s'", wp(f, "sms1.db"), wp(f, "pair2.hex"), wp(f, "B.csv"),
			       wp(f, "B.keystore")),
		2);
	assert_int_equal(access(wp(f, "pair2.hex"), F_OK), -1);
	/* --smartcard with a chip and --ota: refused as usage */
	assert_int_equal(run(NULL, "stb --input '%s' --output '%s' --smartcard --chip-otp '%s' --module-dir '%s' "
			       "--boot-vendor 0x4AE1 --ota", wp(f, "scrambled-B.ts"), wp(f, "x.ts"), wp(f, CHIP1_OTP),
			       wp(f, "box")),
		2);
	assert_int_equal(run(wp(f, "t1.out"), "card --help"), 0);
	assert_true(out_has(wp(f, "t1.out"), "castellan card emm"));
	assert_int_equal(run(wp(f, "t1.out"), "provision --help"), 0);
	assert_true(out_has(wp(f, "t1.out"), "--pair-emm-out"));
}

/* The box with the card through pcscd and the chip the card is paired
 * with: every service descrambled; another chip: none. */
static void run_box(const struct fx *f, const char *reader, const char *otp, const char *box, const char *rep)
{
	char out[1100];

	box_dir(f, box);
	snprintf(out, sizeof(out), "%s.ts", wp(f, box));
	assert_int_equal(run(wp(f, "stb.out"), "stb --input '%s' --output '%s' --smartcard '%s' --chip-otp '%s' "
				 "--module-dir '%s' --module '%s' --report-json '%s'",
				 wp(f, "scrambled-B.ts"), out, reader, wp(f, otp), wp(f, box), wp(f, "B.mod"), wp(f, rep)),
		0);
	{
		char *s = slurp(wp(f, "stb.out"));

		fputs(s, stderr);
		assert_non_null(strstr(s, "loader runs module vendor 0x00004ae1"));
		free(s);
	}
}

static void test_paired_box(void **state)
{
	const struct fx *f = *state;
	char port_s[16], start[24], finish[24];
	const char *reader;
	unsigned port;
	struct pcscd_private pd;
	long now = (long)time(NULL);
	size_t nsvc, nst;
	uint64_t desc;
	pid_t serve;
	int st;

	if (!have_pcsc()) {
		printf("SKIP: pcscd / vsmartcard-vpcd not installed or not root (tools/bootstrap.sh installs them)\n");
		skip();
	}
	/* the card: issued by B's head-end, programmed, granted package 0, paired with chip 1 */
	assert_int_equal(run(wp(f, "t2.out"), "card issue --keys '%s' --passphrase-file '%s' --serial " SERIAL
				 " --out '%s' --transport-file '%s'",
				 wp(f, "B.keystore"), wp(f, "passphrase"), wp(f, "c2.perso"), wp(f, "passphrase")),
		0);
	assert_int_equal(run(wp(f, "t2.out"), "card program '%s' --eeprom '%s' --transport-file '%s'",
				 wp(f, "c2.perso"), wp(f, "c2.eeprom"), wp(f, "passphrase")),
		0);
	snprintf(start, sizeof(start), "%ld", now - 7200);
	snprintf(finish, sizeof(finish), "%ld", now + 86400);
	/* the SMS grants package 0 and pairs the card with chip 1's box: one
	 * grant EMM carries both (PAIR with K_pair), as the head-end sends it */
	assert_int_equal(run(wp(f, "t2.out"), "sms --db '%s' card add " SERIAL " --chip " CHIP1 " --pair 1", wp(f, "sms2.db")),
		0);
	assert_int_equal(run(wp(f, "t2.out"), "sms --db '%s' subscribe " SERIAL " --packages 0 --start %s --finish %s",
				 wp(f, "sms2.db"), start, finish),
		0);
	assert_int_equal(run(wp(f, "t2.out"), "provision --db '%s' --keystore '%s' --passphrase-file '%s' --card " SERIAL
				 " --emm-out '%s' --vendor-keys '%s' --now %ld",
				 wp(f, "sms2.db"), wp(f, "B.keystore"), wp(f, "passphrase"), wp(f, "emm2.hex"), wp(f, "B.csv"), now),
		0);
	assert_true(out_has(wp(f, "t2.out"), "paired"));
	assert_int_equal(run(wp(f, "t2.out"), "card emm '%s' --eeprom '%s'", wp(f, "emm2.hex"), wp(f, "c2.eeprom")), 0);
	assert_true(out_has(wp(f, "t2.out"), "1 EMM accepted"));

	/* our own pcscd on its own socket and vpcd port (PCSCLITE_CSOCK_NAME,
	 * inherited by the boxes run below): never the machine's or another
	 * test's */
	assert_int_equal(pcscd_private_start(f->dir, "Castellan pair", wp(f, "pcscd.log"), 10000, &pd), 0);
	port = pd.port;
	reader = pd.reader;
	snprintf(port_s, sizeof(port_s), "%u", port);
	serve = fork();
	assert_true(serve >= 0);
	if (serve == 0) {
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(127);
		execl(bin(), "castellan", "card", "serve", "--eeprom", wp(f, "c2.eeprom"), "--port", port_s, (char *)NULL);
		_exit(127);
	}
	sleep(1);
	/* the paired chip: everything descrambled, through the card and the ladder */
	run_box(f, reader, CHIP1_OTP, "box-pair1", "rep-pair1.json");
	report(wp(f, "rep-pair1.json"), "descrambled", &nsvc, &nst, &desc);
	assert_int_equal(nsvc, 2);
	assert_int_equal(nst, 2);
	{
		char bts[1100];
		size_t right, left, wrong;

		snprintf(bts, sizeof(bts), "%s.ts", wp(f, "box-pair1"));
		tu_judge_box(tu_testdata("ts-clear-2svc.ts"), wp(f, "scrambled-B.ts"), bts, &right, &left, &wrong);
		assert_true(right > 1000);
		assert_int_equal(left, 0);
		assert_int_equal(wrong, 0);
		assert_int_equal(desc, right); /* the report says what the comparison shows */
	}
	/* another chip, same card, same module: its K_pair differs, nothing loads */
	run_box(f, reader, CHIP2_OTP, "box-pair2", "rep-pair2.json");
	report(wp(f, "rep-pair2.json"), "not_descrambled", &nsvc, &nst, &desc);
	assert_int_equal(nsvc, 2);
	assert_int_equal(nst, 2);
	assert_int_equal(desc, 0);
	{
		char bts[1100];
		size_t right, left, wrong;

		snprintf(bts, sizeof(bts), "%s.ts", wp(f, "box-pair2"));
		tu_judge_box(tu_testdata("ts-clear-2svc.ts"), wp(f, "scrambled-B.ts"), bts, &right, &left, &wrong);
		assert_int_equal(right, 0);
		assert_int_equal(wrong, 0);
		assert_true(left > 1000);
	}

	kill(serve, SIGTERM);
	waitpid(serve, &st, 0);
	pcscd_private_stop(&pd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pair_emm_cli),
		cmocka_unit_test(test_paired_box),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
