/*
 * e2e_proc.c - the harness's run (work dir, summary) and processes: the
 * castellan binary started with its output in a log of the work dir,
 * waited for, stopped. See e2e.h.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "e2e.h"
#include "lib/err.h"
#include "lib/util.h"

#ifndef CASTELLAN_BIN_PATH
#define CASTELLAN_BIN_PATH "castellan"
#endif

int e2e_init(struct e2e *e, const char *prefix, const char *bin, const char *dir)
{
	const char *env = getenv("CASTELLAN_BIN");

	memset(e, 0, sizeof(*e));
	if (!bin)
		bin = env && *env ? env : CASTELLAN_BIN_PATH;
	if ((size_t)snprintf(e->bin, sizeof(e->bin), "%s", bin) >= sizeof(e->bin))
		return CE_RANGE;
	if (dir) {
		struct stat st;

		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			return CE_NOT_FOUND;
		if ((size_t)snprintf(e->dir, sizeof(e->dir), "%s", dir) >= sizeof(e->dir))
			return CE_RANGE;
	} else {
		if ((size_t)snprintf(e->dir, sizeof(e->dir), "/tmp/%s-XXXXXX", prefix) >= sizeof(e->dir))
			return CE_RANGE;
		if (!mkdtemp(e->dir))
			return CE_IO;
		e->own_dir = true;
	}
	if (!(e->summary = json_object()))
		return CE_NOMEM;
	json_object_set_new(e->summary, "work_dir", json_string(e->dir));
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 ? 0 : -1;
}

void e2e_finish(struct e2e *e, bool ok)
{
	if (e->summary) {
		json_object_set_new(e->summary, "ok", json_boolean(ok));
		json_object_set_new(e->summary, "kept", json_boolean(!e->own_dir || e->keep || !ok));
		if (e->summary_path[0] && json_dump_file(e->summary, e->summary_path, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
			fprintf(stderr, "e2e: cannot write %s\n", e->summary_path);
		json_decref(e->summary);
		e->summary = NULL;
	}
	if (e->own_dir && ok && !e->keep && e->dir[0] && nftw(e->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "e2e: could not remove %s\n", e->dir);
}

char *e2e_path(const struct e2e *e, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", e->dir, name);
	return out;
}

int e2e_passphrase(const struct e2e *e, const char *name, char hex[65])
{
	uint8_t pass[32];
	char h[65], path[1024];
	int r = CE_CRYPTO;

	if (RAND_bytes(pass, sizeof(pass)) == 1) {
		hex_encode(pass, sizeof(pass), h);
		r = file_write_atomic(e2e_path(e, name, path, sizeof(path)), h, 64, 0600);
		if (r == 0 && hex)
			memcpy(hex, h, 65);
	}
	secret_wipe(pass, sizeof(pass));
	secret_wipe(h, sizeof(h));
	return r;
}

pid_t e2e_spawn(const struct e2e *e, const char *log, char *const argv[], int in_fd, int out_fd)
{
	char path[1024];
	pid_t pid;

	e2e_path(e, log, path, sizeof(path));
	fflush(NULL); /* the child must not print our buffered output again */
	pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (in_fd >= 0)
		dup2(in_fd, 0);
	if (out_fd >= 0)
		dup2(out_fd, 1);
	else if (fd >= 0)
		dup2(fd, 1);
	if (fd >= 0)
		dup2(fd, 2);
	signal(SIGPIPE, SIG_DFL);
	execv(argv[0][0] == '/' ? argv[0] : e->bin, argv);
	_exit(127);
}

int e2e_wait(pid_t pid)
{
	int st = 0;

	while (pid > 0 && waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return pid > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int e2e_run(const struct e2e *e, const char *log, char *const argv[])
{
	pid_t pid = e2e_spawn(e, log, argv, -1, -1);

	if (pid < 0)
		return CE_IO;
	if (e2e_wait(pid) == 0)
		return 0;
	fprintf(stderr, "e2e: castellan %s failed\n", argv[1] ? argv[1] : "");
	e2e_show_log(e, log);
	return CE_INTERNAL;
}

void e2e_reap(pid_t *pid, int wait_ms)
{
	if (*pid <= 0)
		return;
	for (int i = 0; i <= wait_ms / 50; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		usleep(50 * 1000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

void e2e_stop(pid_t *pid, int grace_ms)
{
	if (*pid > 0)
		kill(*pid, SIGTERM);
	e2e_reap(pid, grace_ms);
}

void e2e_show_log(const struct e2e *e, const char *log)
{
	char path[1024], line[1024];
	FILE *f = fopen(e2e_path(e, log, path, sizeof(path)), "r");

	if (!f)
		return;
	fprintf(stderr, "---- %s ----\n", path);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

int e2e_demo(const struct e2e *e, const char *scenario, char *const extra[], json_t **summary)
{
	const char *demo = getenv("CASTELLAN_DEMO");
	char path[1024], dpath[4096], scen[64], dir[sizeof(e->dir)];
	char *argv[32];
	size_t n = 0;
	int st;

	*summary = NULL;
	if (!demo || demo[0] != '/')
		return -1;
	snprintf(dpath, sizeof(dpath), "%s", demo);
	snprintf(scen, sizeof(scen), "%s", scenario);
	snprintf(dir, sizeof(dir), "%s", e->dir);
	e2e_path(e, "summary.json", path, sizeof(path));
	argv[n++] = dpath;
	argv[n++] = scen;
	argv[n++] = "--dir";
	argv[n++] = dir;
	argv[n++] = "--summary-json";
	argv[n++] = path;
	for (size_t i = 0; extra && extra[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	st = e2e_wait(e2e_spawn(e, "demo.log", argv, -1, -1));
	*summary = json_load_file(path, 0, NULL);
	return st;
}
