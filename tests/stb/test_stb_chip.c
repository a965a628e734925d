/*
 * test_stb_chip.c - `castellan stb` in chip mode with a real OTP image:
 * --chip-otp FILE (the box forks its own chip from the image the black box
 * burned), and a TAMPERED module arriving over the air under --ota: the
 * loader refuses it, the box says so, keeps the running module and keeps
 * descrambling.
 *
 * Every artefact comes from real commands: `castellan-demo replace` (tu_demo_replace_keep)
 * (KMS, TA, black-box burn, vendor key files, SMS, provision --protect,
 * kms module sign, ECMG B + scrambler) leaves its work dir; this test then
 * runs `castellan module carousel --into`, `castellan ecmg` (vendor A),
 * `castellan scramble` and `castellan stb` on it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <jansson.h>
#include "testutil.h"

#define CHIP1_OTP "otp/0000ca57e11a0001.otp"
#define CHIP2_OTP "otp/0000ca57e11a0002.otp"

struct fx {
	char dir[512]; /* the replacement demo's work dir */
};

static const char *bin(void)
{
	const char *b = getenv("CASTELLAN_BIN");

	assert_non_null(b);
	return b;
}

/* "<dir>/<name>" into a static ring of buffers (enough for one command). */
static const char *wp(const struct fx *f, const char *name)
{
	static char ring[12][1024];
	static unsigned k;
	char *p = ring[k++ % 12];

	snprintf(p, sizeof(ring[0]), "%s/%s", f->dir, name);
	return p;
}

/* Run castellan ARGS with stdout dropped and stderr to errfile (if any). */
static int run(const char *errfile, const char *fmt, ...)
{
	char args[6000], cmd[8000];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "'%s' %s >/dev/null 2>'%s'", bin(), args, errfile ? errfile : "/dev/null");
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

/* A fresh box state dir holding only the named protected keys file. */
static void box_dir(const struct fx *f, const char *box, const char *keys)
{
	char to[1100], from[64];

	assert_int_equal(mkdir(wp(f, box), 0700), 0);
	snprintf(to, sizeof(to), "%s/%s", wp(f, box), keys);
	snprintf(from, sizeof(from), "box/%s", keys);
	copy_file(wp(f, from), to);
}

static int setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
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

/* Services of a --report-json file: count, and how many are in `state`
 * with every scrambled packet descrambled. */
static void report_states(const char *path, const char *state, size_t *nsvc, size_t *nstate, uint64_t *descrambled)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e), *svcs, *s;
	size_t i;

	assert_non_null(j);
	svcs = json_object_get(j, "services");
	assert_true(json_is_array(svcs));
	*nsvc = json_array_size(svcs);
	*nstate = 0;
	*descrambled = 0;
	json_array_foreach(svcs, i, s) {
		const char *st = json_string_value(json_object_get(s, "state"));

		assert_non_null(st);
		*descrambled += (uint64_t)json_integer_value(json_object_get(s, "descrambled"));
		if (strcmp(st, state) != 0)
			continue;
		if (strcmp(state, "descrambled") == 0) {
			assert_int_equal(json_integer_value(json_object_get(s, "left_scrambled")), 0);
			assert_int_equal(json_integer_value(json_object_get(s, "pes_starts_bad")), 0);
			assert_true(json_integer_value(json_object_get(s, "ecm_accepted")) > 0);
		}
		(*nstate)++;
	}
	json_decref(j);
}

/* Packets of a TS file whose transport_scrambling_control is not 00. */
static size_t scrambled_packets(const char *path)
{
	size_t len = 0, n = 0;
	uint8_t *b = tu_read(path, &len);

	assert_int_equal(len % 188, 0);
	for (size_t i = 0; i < len; i += 188) {
		assert_int_equal(b[i], 0x47);
		n += (b[i + 3] & 0xC0) != 0;
	}
	free(b);
	return n;
}

/* --chip-otp: the box forks the chip from chip 1's burned OTP image, the
 * loader installs B's module (trust root from that OTP), the B-only
 * stream is descrambled entirely. With chip 2's image (same TA, other root
 * key) the same module and keys file descramble nothing: the package keys
 * are protected for chip 1's K_v. */
static void test_chip_otp(void **state)
{
	const struct fx *f = *state;
	size_t nsvc = 0, nok = 0;
	uint64_t desc = 0;
	char *err;

	box_dir(f, "box-otp1", "keys-b.json");
	assert_int_equal(run(wp(f, "stb-otp1.err"),
				 "stb --input '%s' --output '%s' --chip-otp '%s' --module-dir '%s' --module '%s' "
				 "--report-json '%s'",
				 wp(f, "scrambled-B.ts"), wp(f, "out-otp1.ts"), wp(f, CHIP1_OTP), wp(f, "box-otp1"),
				 wp(f, "B.mod"), wp(f, "rep-otp1.json")),
		0);
	err = slurp(wp(f, "stb-otp1.err"));
	fputs(err, stderr);
	assert_non_null(strstr(err, "loader runs module vendor 0x00004ae1"));
	free(err);
	report_states(wp(f, "rep-otp1.json"), "descrambled", &nsvc, &nok, &desc);
	assert_int_equal(nsvc, 2);
	assert_int_equal(nok, 2);
	assert_true(desc > 1000);
	assert_int_equal(scrambled_packets(wp(f, "out-otp1.ts")), 0);
	assert_true(scrambled_packets(wp(f, "scrambled-B.ts")) > 1000);
	{
		size_t right, left, wrong;

		/* judged against the clear input, not by the report */
		tu_judge_box(tu_testdata("ts-clear-2svc.ts"), wp(f, "scrambled-B.ts"), wp(f, "out-otp1.ts"), &right,
			&left, &wrong);
		assert_true(right > 1000);
		assert_int_equal(left, 0);
		assert_int_equal(wrong, 0);
		assert_int_equal(desc, right);
	}
	/* the loader stored the module it installed */
	assert_int_equal(access(wp(f, "box-otp1/module-00004ae1.bin"), F_OK), 0);

	/* another chip's OTP: same trust root, other K_v: nothing descrambled */
	box_dir(f, "box-otp2", "keys-b.json");
	assert_int_equal(run(wp(f, "stb-otp2.err"),
				 "stb --input '%s' --output '%s' --chip-otp '%s' --module-dir '%s' --module '%s' "
				 "--report-json '%s'",
				 wp(f, "scrambled-B.ts"), wp(f, "out-otp2.ts"), wp(f, CHIP2_OTP), wp(f, "box-otp2"),
				 wp(f, "B.mod"), wp(f, "rep-otp2.json")),
		0);
	report_states(wp(f, "rep-otp2.json"), "not_descrambled", &nsvc, &nok, &desc);
	assert_int_equal(nsvc, 2);
	assert_int_equal(nok, 2);
	assert_int_equal(desc, 0);
	{
		size_t right, left, wrong;

		tu_judge_box(tu_testdata("ts-clear-2svc.ts"), wp(f, "scrambled-B.ts"), wp(f, "out-otp2.ts"), &right,
			&left, &wrong);
		assert_int_equal(right, 0);
		assert_int_equal(wrong, 0);
		assert_true(left > 1000);
	}

	/* an OTP image that is not one: refused at setup, exit 1 */
	box_dir(f, "box-otp3", "keys-b.json");
	assert_int_equal(run(NULL, "stb --input '%s' --output '%s' --chip-otp '%s' --module-dir '%s' --module '%s'",
				 wp(f, "scrambled-B.ts"), wp(f, "out-otp3.ts"), wp(f, "B.mod"), wp(f, "box-otp3"),
				 wp(f, "B.mod")),
		1);
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool port_open(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* program_numbers of the first PAT section of a TS file (one packet). */
static size_t pat_programs(const char *path, unsigned prog[4])
{
	size_t len = 0, n = 0;
	uint8_t *b = tu_read(path, &len);

	for (size_t i = 0; i + 188 <= len && n == 0; i += 188) {
		const uint8_t *p = b + i;
		size_t off, sl;

		if (p[0] != 0x47 || (((p[1] & 0x1F) << 8) | p[2]) != 0 || !(p[1] & 0x40) || (p[3] & 0x30) != 0x10)
			continue;
		off = 5 + p[4]; /* after pointer_field */
		assert_true(off + 8 <= 188);
		sl = (size_t)((p[off + 1] & 0x0F) << 8 | p[off + 2]);
		assert_true(off + 3 + sl <= 188);
		for (size_t k = off + 8; k + 4 <= off + 3 + sl - 4; k += 4) {
			unsigned pn = (unsigned)(p[k] << 8 | p[k + 1]);

			if (pn != 0 && n < 4)
				prog[n++] = pn;
		}
	}
	free(b);
	return n;
}

/* A TS with A's ECMs (ECMG A, SimulCrypt scrambler) and, mid-stream, the
 * carousel of module `mod` (castellan module carousel --into). */
static void scramble_a_with_ota(const struct fx *f, const char *mod, const char *out)
{
	const char *clear = tu_testdata("ts-clear-2svc.ts");
	char listen[64], svc[2][64], start_at[24];
	unsigned prog[4];
	size_t nclear = 0;
	uint8_t *cb = tu_read(clear, &nclear);
	uint16_t port = free_port();
	pid_t pid;
	int st;

	free(cb);
	assert_int_equal(pat_programs(clear, prog), 2);
	snprintf(start_at, sizeof(start_at), "%zu", nclear / 188 * 2 / 5);
	assert_int_equal(run(NULL,
				 "module carousel '%s' --pid 0x1FC0 --out '%s' --into '%s' --program 0x0FF0 "
				 "--pmt-pid 0x1FC1 --start-packet %s --cycles 3",
				 mod, wp(f, "clear+tampered.ts"), clear, start_at),
		0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(127);
		execl(bin(), "castellan", "ecmg", "--keystore", wp(f, "A.keystore"), "--passphrase-file",
			wp(f, "passphrase"), "--listen", listen, "--min-cp-duration", "2", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 400 && !port_open(port); i++)
		usleep(50 * 1000);
	for (int s = 0; s < 2; s++)
		snprintf(svc[s], sizeof(svc[s]), "%u:ac=00000001", prog[s]);
	st = run(wp(f, "scramble-A.err"),
		"scramble --input '%s' --output '%s' --service %s --service %s --ecmg %s --super-cas-id 0x4ADC0001 "
		"--ecm-pid 0x1F10 --cp-duration 0.25",
		wp(f, "clear+tampered.ts"), out, svc[0], svc[1], listen);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(st, 0);
}

/* The box runs A's module with --ota; B's module arrives over the air
 * tampered (one byte of its payload flipped, or of its signature): the
 * loader refuses it, the box reports the refusal, keeps A and descrambles
 * every scrambled packet; nothing of B is stored. The intact B.mod
 * carouselled the same way is installed (the control case, so the refusal
 * is the tampering's doing). */
static void test_ota_tampered_module_refused(void **state)
{
	static const struct {
		const char *name;
		long flip; /* byte to flip: >= 0 from the start, < 0 from the end; LONG_MIN = none */
		bool installed;
	} cases[] = {
		{ "payload", 60, false },   /* inside the payload (57..): manifest hash mismatch */
		{ "signature", -1, false }, /* last byte of the Ed25519 signature */
		{ "intact", -1000000, true },
	};
	const struct fx *f = *state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char mod[64], ts[64], out[64], rep[64], errf[64], box[64], stored[128];
		size_t len = 0, nsvc = 0, nok = 0;
		uint64_t desc = 0;
		uint8_t *m = tu_read(wp(f, "B.mod"), &len);
		FILE *fp;
		char *err;

		fprintf(stderr, "-- OTA case %s\n", cases[c].name);
		snprintf(mod, sizeof(mod), "B-%s.mod", cases[c].name);
		snprintf(ts, sizeof(ts), "scrambled-A+%s.ts", cases[c].name);
		snprintf(out, sizeof(out), "out-%s.ts", cases[c].name);
		snprintf(rep, sizeof(rep), "rep-%s.json", cases[c].name);
		snprintf(errf, sizeof(errf), "stb-%s.err", cases[c].name);
		snprintf(box, sizeof(box), "box-%s", cases[c].name);
		if (cases[c].flip >= 0)
			m[cases[c].flip] ^= 0x01;
		else if (cases[c].flip > -1000000)
			m[len + (size_t)cases[c].flip] ^= 0x80;
		fp = fopen(wp(f, mod), "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(m, 1, len, fp), len);
		assert_int_equal(fclose(fp), 0);
		free(m);

		scramble_a_with_ota(f, wp(f, mod), wp(f, ts));
		box_dir(f, box, "keys-a.json");
		{
			char to[1100];

			snprintf(to, sizeof(to), "%s/keys-b.json", wp(f, box));
			copy_file(wp(f, "box/keys-b.json"), to);
		}
		assert_int_equal(run(wp(f, errf),
					 "stb --input '%s' --output '%s' --chip-otp '%s' --module-dir '%s' --module '%s' "
					 "--ota --report-json '%s'",
					 wp(f, ts), wp(f, out), wp(f, CHIP1_OTP), wp(f, box), wp(f, "A.mod"), wp(f, rep)),
			0);
		err = slurp(wp(f, errf));
		fputs(err, stderr);
		assert_non_null(strstr(err, "loader runs module vendor 0x00004adc"));
		snprintf(stored, sizeof(stored), "%s/module-00004ae1.bin", box);
		if (cases[c].installed) {
			assert_non_null(strstr(err, "OTA module vendor 0x00004ae1 version 1 installed"));
			assert_int_equal(access(wp(f, stored), F_OK), 0);
			/* B took over; the stream only carries A's ECMs: what follows stays scrambled */
			assert_true(scrambled_packets(wp(f, out)) > 0);
			{
				size_t right, left, wrong;

				tu_judge_box(wp(f, "clear+tampered.ts"), wp(f, ts), wp(f, out), &right, &left, &wrong);
				assert_true(right > 0);
				assert_true(left > 0);
				assert_int_equal(wrong, 0);
			}
		} else {
			assert_non_null(strstr(err, "OTA module of vendor 0x00004ae1 refused by the loader"));
			assert_null(strstr(err, "installed at packet"));
			assert_int_equal(access(wp(f, stored), F_OK), -1);
			/* A keeps running: every scrambled packet descrambled */
			report_states(wp(f, rep), "descrambled", &nsvc, &nok, &desc);
			assert_int_equal(nsvc, 3); /* the two TV services and the OTA data service */
			assert_int_equal(nok, 2);
			assert_true(desc > 1000);
			assert_int_equal(scrambled_packets(wp(f, out)), 0);
			{
				size_t right, left, wrong;

				tu_judge_box(wp(f, "clear+tampered.ts"), wp(f, ts), wp(f, out), &right, &left, &wrong);
				assert_int_equal(left, 0);
				assert_int_equal(wrong, 0);
				assert_int_equal(desc, right);
			}
		}
		free(err);
	}
}

/* C.6 in chip mode, through the command: the box of chip 1 records while it
 * descrambles, with the recording key inside its chip, and plays the file
 * back byte-identical to what it showed; the box of chip 2 (same module,
 * other OTP) is refused and writes nothing; the file holds no clear packet. */
static void test_chip_otp_record(void **state)
{
	const struct fx *f = *state;
	uint8_t *shown, *back, *file;
	size_t ls, lb, lf;
	char *err;

	box_dir(f, "box-rec1", "keys-b.json");
	assert_int_equal(run(wp(f, "stb-rec1.err"),
				 "stb --input '%s' --output '%s' --chip-otp '%s' --module-dir '%s' --module '%s' "
				 "--record '%s'",
				 wp(f, "scrambled-B.ts"), wp(f, "out-rec1.ts"), wp(f, CHIP1_OTP), wp(f, "box-rec1"),
				 wp(f, "B.mod"), wp(f, "rec1.pvr")),
		0);
	err = slurp(wp(f, "stb-rec1.err"));
	assert_non_null(strstr(err, "for box chip "));
	free(err);
	assert_int_equal(scrambled_packets(wp(f, "out-rec1.ts")), 0);
	assert_int_equal(run(wp(f, "stb-play1.err"),
				 "stb --playback '%s' --output '%s' --chip-otp '%s' --module-dir '%s' --boot-vendor 0x4ae1",
				 wp(f, "rec1.pvr"), wp(f, "play1.ts"), wp(f, CHIP1_OTP), wp(f, "box-rec1")),
		0);
	shown = tu_read(wp(f, "out-rec1.ts"), &ls);
	back = tu_read(wp(f, "play1.ts"), &lb);
	assert_int_equal(lb, ls);
	assert_memory_equal(back, shown, ls);
	file = tu_read(wp(f, "rec1.pvr"), &lf);
	for (size_t i = 0; i + 188 <= ls; i += 188 * 101)
		assert_null(memmem(file, lf, shown + i + 4, 64));
	free(shown);
	free(back);
	free(file);
	/* chip 2's box: refused, nothing written */
	box_dir(f, "box-rec2", "keys-b.json");
	assert_int_equal(run(wp(f, "stb-play2.err"),
				 "stb --playback '%s' --output '%s' --chip-otp '%s' --module-dir '%s' --module '%s'",
				 wp(f, "rec1.pvr"), wp(f, "play2.ts"), wp(f, CHIP2_OTP), wp(f, "box-rec2"), wp(f, "B.mod")),
		1);
	assert_int_equal(access(wp(f, "play2.ts"), F_OK), -1);
	err = slurp(wp(f, "stb-play2.err"));
	assert_non_null(strstr(err, "refused"));
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chip_otp),
		cmocka_unit_test(test_chip_otp_record),
		cmocka_unit_test(test_ota_tampered_module_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
