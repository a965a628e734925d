/*
 * testutil.h - helpers for the cmocka suites: locate tests/data,
 * read files, parse the captured SimulCrypt exchanges (NAME.hex.txt).
 * run a shell command line (tu_run).
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

/* Run `castellan demo-replace --keep` (bin = the castellan binary) and put
 * the work dir it kept into dir: chip OTPs, keystores, vendor key files,
 * signed modules and scrambled streams for tests to reuse. 0, or -1 if the
 * demo failed. tu_demo_replace_clean removes that dir. */
static inline int tu_demo_replace_keep(const char *bin, char *dir, size_t cap)
{
	char cmd[4200], line[1024];
	FILE *p;
	int st;

	dir[0] = '\0';
	snprintf(cmd, sizeof(cmd), "'%s' demo-replace --keep 2>/dev/null", bin);
	if (!(p = popen(cmd, "r")))
		return -1;
	while (fgets(line, sizeof(line), p)) {
		const char *k = strstr(line, "work dir ");

		if (k && !dir[0]) {
			snprintf(dir, cap, "%s", k + 9);
			dir[strcspn(dir, "\r\n")] = '\0';
		}
	}
	st = pclose(p);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !dir[0]) {
		fprintf(stderr, "demo-replace failed (status %d), work dir '%s'\n", st, dir);
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
 * the box by its output, never by its own counters). scr_path is what the
 * box read, box_path what it wrote (the same packets in order); of the
 * packets scrambled in scr, *right came out as the clear stream's packet,
 * *left as they went in, *wrong as neither (a wrong key). The k-th packet
 * of a PID in the box output is the k-th packet of that PID in the clear
 * stream. */
static inline void tu_judge_box(const char *clear_path, const char *scr_path, const char *box_path, size_t *right,
	size_t *left, size_t *wrong)
{
	size_t nc = 0, ns = 0, nb = 0;
	uint8_t *clear = tu_read(clear_path, &nc);
	uint8_t *scr = tu_read(scr_path, &ns), *box = tu_read(box_path, &nb);
	size_t *cnt = calloc(8192, sizeof(size_t)), *seen = calloc(8192, sizeof(size_t));
	const uint8_t **pos = calloc(nc / 188 + 1, sizeof(*pos));
	size_t *first = calloc(8193, sizeof(size_t));

	assert_non_null(cnt);
	assert_non_null(seen);
	assert_non_null(pos);
	assert_non_null(first);
	assert_int_equal(ns, nb); /* the box writes every packet it reads */
	*right = *left = *wrong = 0;
	for (size_t i = 0; i < nc / 188; i++)
		cnt[((clear[i * 188 + 1] & 0x1F) << 8) | clear[i * 188 + 2]]++;
	for (size_t p = 0, acc = 0; p < 8192; p++) {
		first[p] = acc;
		acc += cnt[p];
	}
	for (size_t i = 0; i < nc / 188; i++) {
		unsigned pid = ((clear[i * 188 + 1] & 0x1F) << 8) | clear[i * 188 + 2];

		pos[first[pid] + seen[pid]++] = clear + i * 188;
	}
	memset(seen, 0, 8192 * sizeof(size_t));
	for (size_t i = 0; i < nb / 188; i++) {
		const uint8_t *o = box + i * 188, *sp = scr + i * 188;
		unsigned pid = ((o[1] & 0x1F) << 8) | o[2];
		size_t k = seen[pid]++;

		if ((sp[3] >> 6) == 0)
			continue;
		if (k < cnt[pid] && memcmp(o, pos[first[pid] + k], 188) == 0)
			(*right)++;
		else if (memcmp(o, sp, 188) == 0)
			(*left)++;
		else
			(*wrong)++;
	}
	free(clear);
	free(scr);
	free(box);
	free(cnt);
	free(seen);
	free(pos);
	free(first);
}

#endif
