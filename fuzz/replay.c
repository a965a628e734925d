/*
 * replay.c - runs a libFuzzer target's LLVMFuzzerTestOneInput over files,
 * without libFuzzer: the normal test build (gcc, and the ASan+UBSan build)
 * replays every target's seed corpus and every saved crash this way, so a
 * regression in a parser shows up in `meson test`, not only in the clang
 * fuzz build (fuzz/meson.build registers one test per target).
 *
 *   fuzz_replay_NAME PATH...   PATH: a file, or a folder (its files, sorted
 *                              order does not matter: each input stands alone)
 *
 * Prints how many inputs ran; exits 1 if a path cannot be read or holds no
 * input. A crash or sanitizer report fails the test by itself.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (16u << 20) /* libFuzzer's -max_len is far below */

static int run_file(const char *path, size_t *count)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (file_read_all(path, REPLAY_MAX_INPUT, &buf, &len) != 0) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		return 1;
	}
	(void)LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	(*count)++;
	return 0;
}

static int run_path(const char *path, size_t *count)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int r = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: not found\n", path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path, count);
	if (!(d = opendir(path)))
		return 1;
	while ((e = readdir(d)) != NULL) {
		char p[4096];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			r |= run_file(p, count);
	}
	closedir(d);
	return r;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int r = 0;

	for (int i = 1; i < argc; i++)
		r |= run_path(argv[i], &count);
	printf("replay: %zu inputs\n", count);
	return r != 0 || count == 0;
}
