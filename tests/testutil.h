/*
 * testutil.h - helpers for the cmocka suites: locate tests/data,
 * read files, parse the captured SimulCrypt exchanges (NAME.hex.txt),
 * run a shell command line (tu_run), the replacement demo's files as
 * fixtures and a box judged by its output (over the e2e harness, e2e.h).
 * Header-only so each test binary stays one file.
 */
#ifndef CASTELLAN_TESTUTIL_H
#define CASTELLAN_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/util.h"
#include "e2e.h"

/* Big-endian fields of bytes a test built or received and has sized
 * (asserting on an encoder's output): the product reads outside bytes
 * only through lib/cursor.h, and has no unchecked load like these. */
static inline uint16_t tu_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t tu_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The status code of an HTTP/1.x answer ("HTTP/1.1 200 OK..."): three
 * digits 100..599 followed by a space or CR, strictly; 0 otherwise. */
static inline int tu_http_status(const char *resp)
{
	char code[4];
	uint64_t v = 0;

	if (!resp || strncmp(resp, "HTTP/1.", 7) != 0 || !resp[7] || resp[8] != ' ' || strnlen(resp + 9, 3) != 3)
		return 0;
	memcpy(code, resp + 9, 3);
	code[3] = '\0';
	if (code[0] < '1' || code[0] > '5' || parse_u64(code, 599, &v) != 0 || (resp[12] != ' ' && resp[12] != '\r'))
		return 0;
	return (int)v;
}

/* Path of a file under tests/data (env CASTELLAN_TESTDATA, else tests/data
 * relative to the source root). Static buffer: use before the next call. */
static inline const char *tu_testdata(const char *rel)
{
	static char path[4096];
	const char *base = getenv("CASTELLAN_TESTDATA");

	snprintf(path, sizeof(path), "%s/%s", base ? base : "tests/data", rel);
	return path;
}

/* Read a whole file (aborts the test on failure). Caller frees. */
static inline uint8_t *tu_read(const char *path, size_t *len)
{
	uint8_t *buf = NULL;
	int r = file_read_all(path, 64u << 20, &buf, len);

	if (r != 0)
		fail_msg("cannot read %s: %d", path, r);
	return buf;
}

/* One line of a captures/NAME.hex.txt file. */
struct tu_capmsg {
	char dir[32];      /* e.g. "SCS>ECMG", "EMMG>MUX/udp" */
	uint8_t *bytes;
	size_t len;
};

/* Parse a .hex.txt capture: returns the messages (caller frees with
 * tu_capture_free). */
static inline struct tu_capmsg *tu_capture_load(const char *name, size_t *n)
{
	char path[4096];
	FILE *f;
	char *line = NULL;
	size_t cap = 0, count = 0, alloc = 0;
	struct tu_capmsg *msgs = NULL;

	snprintf(path, sizeof(path), "%s", tu_testdata(name));
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open capture %s", path);
	while (getline(&line, &cap, f) > 0) {
		char *sp = strchr(line, ' ');
		char *hex;
		size_t hl;

		if (!sp)
			continue;
		*sp = '\0';
		hex = sp + 1;
		hl = strcspn(hex, "\r\n");
		hex[hl] = '\0';
		if (count == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			msgs = realloc(msgs, alloc * sizeof(*msgs));
			assert_non_null(msgs);
		}
		snprintf(msgs[count].dir, sizeof(msgs[count].dir), "%s", line);
		msgs[count].bytes = malloc(hl / 2 + 1);
		assert_non_null(msgs[count].bytes);
		assert_int_equal(hex_decode_var(hex, msgs[count].bytes, hl / 2 + 1, &msgs[count].len), 0);
		count++;
	}
	free(line);
	fclose(f);
	*n = count;
	return msgs;
}

static inline void tu_capture_free(struct tu_capmsg *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].bytes);
	free(m);
}

/* Run the shell command line built from fmt (cut at 4095 bytes): its exit
 * status, or -1 if the shell could not be started. */
static inline int tu_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int tu_run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return st == -1 ? -1 : WEXITSTATUS(st);
}

/* Run `$CASTELLAN_BIN args` (quiet log, stderr with stdout) and keep the
 * first cap - 1 bytes of its output in out; the rest is read and dropped,
 * so a long answer never ends the command with SIGPIPE. Its exit status
 * (-1 if it did not exit); the test is skipped without $CASTELLAN_BIN. */
static inline int tu_cli(const char *args, char *out, size_t cap)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char cmd[3000];
	size_t got;
	FILE *f;
	int rc;

	if (!bin)
		skip();
	snprintf(cmd, sizeof(cmd), "CASTELLAN_LOG=warn %s %s 2>&1", bin, args);
	assert_non_null(f = popen(cmd, "r"));
	got = fread(out, 1, cap - 1, f);
	out[got] = '\0';
	while (fgetc(f) != EOF)
		;
	rc = pclose(f);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Run `castellan-demo replace` ($CASTELLAN_DEMO) in a new work dir, put
 * into dir: chip OTPs, keystores, vendor key files, signed modules and
 * scrambled streams for tests to reuse (its output in dir/demo.log). 0, or
 * -1 if the demo failed. tu_demo_replace_clean removes that dir. */
static inline int tu_demo_replace_keep(const char *bin, char *dir, size_t cap)
{
	const char *demo = getenv("CASTELLAN_DEMO");
	int st;

	snprintf(dir, cap, "/tmp/castellan-replace-XXXXXX");
	if (!demo || !mkdtemp(dir)) {
		dir[0] = '\0';
		return -1;
	}
	st = tu_run("CASTELLAN_BIN='%s' '%s' replace --dir '%s' >'%s/demo.log' 2>&1", bin, demo, dir, dir);
	if (st != 0) {
		fprintf(stderr, "castellan-demo replace failed (status %d), work dir '%s'\n", st, dir);
		return -1;
	}
	return 0;
}

static inline int tu_demo_replace_clean(const char *dir)
{
	if (dir[0] && strncmp(dir, "/tmp/castellan-replace-", 23) == 0)
		return tu_run("rm -rf '%s'", dir) == 0 ? 0 : -1;
	return 0;
}

/* A box's output judged against the clear stream (issue 16: tests judge
 * the box by its output, never by its own counters): e2e_judge over every
 * PID. scr_path is what the box read, box_path what it wrote; of the
 * packets scrambled in scr, *right came out as the clear stream's packet,
 * *left as they went in, *wrong as neither (a wrong key). */
static inline void tu_judge_box(const char *clear_path, const char *scr_path, const char *box_path, size_t *right,
	size_t *left, size_t *wrong)
{
	struct e2e_ts clear, scr, box;
	struct e2e_judge j;

	assert_int_equal(e2e_ts_load(clear_path, &clear), 0);
	assert_int_equal(e2e_ts_load(scr_path, &scr), 0);
	assert_int_equal(e2e_ts_load(box_path, &box), 0);
	assert_int_equal(e2e_judge(&clear, &scr, &box, NULL, 0, &j), 0); /* the box writes every packet it reads */
	*right = j.right;
	*left = j.left;
	*wrong = j.wrong;
	e2e_ts_free(&clear);
	e2e_ts_free(&scr);
	e2e_ts_free(&box);
}

#endif
