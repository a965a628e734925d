/*
 * eeprom_file.c - the card's EEPROM as a file (card/eeprom.h): the host side
 * of the virtual card, not part of the applet. Atomic replace: write
 * PATH.tmp, fsync it, rename over PATH, fsync the directory. A stale
 * PATH.tmp left by a power cut is simply overwritten next time.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "card/eeprom.h"
#include "lib/util.h"

static int fault(struct card_eeprom_file *f, enum card_ee_step step)
{
	if (f->fail_at != step)
		return 0;
	if (f->fail_kill)
		raise(SIGKILL);
	return CE_IO;
}

static int fsync_dir(const char *path)
{
	char dir[1024];
	int fd, r;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return CE_ARG;
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return CE_IO;
	r = fsync(fd) == 0 ? 0 : CE_IO;
	close(fd);
	return r;
}

static int ee_store(void *ctx, const uint8_t *buf, size_t len)
{
	struct card_eeprom_file *f = ctx;
	size_t half = len / 2;
	int fd, r;

	fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return CE_IO;
	if ((r = fd_write_all(fd, buf, half)) != 0 || (r = fault(f, CARD_EE_STEP_HALF_WRITTEN)) != 0)
		goto fail;
	if ((r = fd_write_all(fd, buf + half, len - half)) != 0 || (r = fault(f, CARD_EE_STEP_BEFORE_FSYNC)) != 0)
		goto fail;
	if (fsync(fd) != 0) {
		r = CE_IO;
		goto fail;
	}
	close(fd);
	fd = -1;
	if ((r = fault(f, CARD_EE_STEP_BEFORE_RENAME)) != 0)
		return r; /* the temp stays, as after a power cut */
	if (rename(f->tmp, f->path) != 0)
		return CE_IO;
	return fsync_dir(f->path);
fail:
	if (fd >= 0)
		close(fd);
	return r;
}

static int ee_load(void *ctx, uint8_t *buf, size_t cap, size_t *len)
{
	struct card_eeprom_file *f = ctx;
	size_t n = 0;
	int fd, r = 0;

	*len = 0;
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? CE_NOT_FOUND : CE_IO;
	for (;;) {
		ssize_t got;

		if (n == cap) {
			uint8_t extra;

			got = read(fd, &extra, 1);
			r = got == 0 ? 0 : CE_OVERFLOW;
			break;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = CE_IO;
			break;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (r == 0)
		*len = n;
	return r;
}

int card_eeprom_file_init(struct card_eeprom_file *f, const char *path, struct card_eeprom *ee)
{
	memset(f, 0, sizeof(*f));
	memset(ee, 0, sizeof(*ee));
	if (!path || snprintf(f->path, sizeof(f->path), "%s", path) >= (int)sizeof(f->path))
		return CE_ARG;
	snprintf(f->tmp, sizeof(f->tmp), "%s.tmp", path);
	ee->ctx = f;
	ee->load = ee_load;
	ee->store = ee_store;
	return 0;
}
