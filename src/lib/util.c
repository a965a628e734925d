#include <stdbool.h>
/* util.c - see util.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "util.h"

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode_var(const char *hex, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t n;

	*out_len = 0;
	if (!hex)
		return CE_FORMAT;
	n = strlen(hex);
	if (n % 2 || n / 2 > cap)
		return CE_FORMAT;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return CE_FORMAT;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*out_len = n / 2;
	return 0;
}

int hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
	size_t got;
	int r;

	if (!hex || strlen(hex) != 2 * out_len)
		return CE_FORMAT;
	r = hex_decode_var(hex, out, out_len, &got);
	return r ? r : (got == out_len ? 0 : CE_FORMAT);
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;

	*out = 0;
	if (!s || !*s)
		return CE_FORMAT;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return CE_FORMAT;
	}
	for (; *s; s++) {
		int d = hex_digit(*s);

		if (d < 0 || (unsigned)d >= base)
			return CE_FORMAT;
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return CE_RANGE;
		v = v * base + (uint64_t)d;
	}
	if (v > max)
		return CE_RANGE;
	*out = v;
	return 0;
}

int parse_s64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	uint64_t v;
	bool neg = s && s[0] == '-';
	int r;

	*out = 0;
	if (!s)
		return CE_FORMAT;
	if ((r = parse_u64(s + neg, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v)) != 0)
		return r;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	if (*out < lo || *out > hi) {
		*out = 0;
		return CE_RANGE;
	}
	return 0;
}

int parse_dec_s64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	*out = 0;
	if (!s)
		return CE_FORMAT;
	for (const char *q = s + (s[0] == '-'); ; q++) {
		if (*q == '\0') {
			if (q == s + (s[0] == '-'))
				return CE_FORMAT; /* no digit */
			break;
		}
		if (*q < '0' || *q > '9')
			return CE_FORMAT;
	}
	return parse_s64(s, lo, hi, out);
}

uint64_t now_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t now_mono_ms(void) { return now_mono_us() / 1000u; }

uint64_t now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void secret_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

void secret_free(void *p, size_t n)
{
	secret_wipe(p, n);
	free(p);
}

int file_read_all(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int r = CE_IO;
	FILE *f;

	*out = NULL;
	*out_len = 0;
	f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? CE_NOT_FOUND : CE_IO;
	for (;;) {
		size_t got;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			uint8_t *nb;

			if (cap >= max_bytes + 1) {
				r = CE_LIMIT;
				goto fail;
			}
			if (ncap > max_bytes + 1)
				ncap = max_bytes + 1;
			nb = malloc(ncap);
			if (!nb) {
				r = CE_NOMEM;
				goto fail;
			}
			if (len)
				memcpy(nb, buf, len);
			secret_free(buf, cap);
			buf = nb;
			cap = ncap;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f))
				goto fail;
			break;
		}
	}
	if (len > max_bytes) {
		r = CE_LIMIT;
		goto fail;
	}
	fclose(f);
	*out = buf;
	*out_len = len;
	return 0;
fail:
	fclose(f);
	secret_free(buf, cap);
	return r;
}

/* The temporary is named path.tmp.<16 random hex digits> and created
 * with O_EXCL|O_NOFOLLOW, so neither a file nor a symlink planted under a
 * guessable name in a shared directory can receive the bytes; its mode is
 * set with fchmod (the umask cannot widen or narrow it) before the first
 * byte is written. */
int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	char tmp[4096];
	const uint8_t *p = data;
	uint8_t rnd[8];
	struct stat st;
	int fd = -1, n;

	/* Replace files only: renaming over a device or FIFO (an output given
	 * as /dev/null, say) would put the data in a new file in its place. */
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return CE_ARG;
	for (int tries = 0; fd < 0 && tries < 8; tries++) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return CE_CRYPTO;
		n = snprintf(tmp, sizeof(tmp), "%s.tmp.%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0], rnd[1],
			     rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		if (n < 0 || (size_t)n >= sizeof(tmp))
			return CE_ARG;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			return CE_IO;
	}
	if (fd < 0)
		return CE_IO;
	if (fchmod(fd, (mode_t)(mode & 07777)) != 0)
		goto fail;
	if (fd_write_all(fd, p, len) != 0)
		goto fail;
	if (fsync(fd) != 0)
		goto fail;
	close(fd);
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return CE_IO;
	}
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return CE_IO;
}

int addr_split(const char *s, char *host, size_t host_cap, uint16_t *port)
{
	const char *colon;
	uint64_t p;
	size_t hl;

	*port = 0;
	if (!s || !host || host_cap == 0)
		return CE_ARG;
	host[0] = '\0';
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return CE_FORMAT;
		hl = (size_t)(end - s - 1);
		if (hl >= host_cap)
			return CE_RANGE;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			/* a bare port */
			if (parse_u64(s, 65535, &p) != 0)
				return CE_FORMAT;
			*port = (uint16_t)p;
			return 0;
		}
		hl = (size_t)(colon - s);
		if (hl >= host_cap)
			return CE_RANGE;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (parse_u64(colon + 1, 65535, &p) != 0)
		return CE_FORMAT;
	*port = (uint16_t)p;
	return 0;
}

int file_make_private(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd >= 0)
		return close(fd) == 0 ? 0 : CE_IO;
	if (errno != EEXIST || stat(path, &st) != 0)
		return CE_IO;
	if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0 && chmod(path, st.st_mode & 0700) != 0)
		return CE_IO;
	return 0;
}

/* The loop of fd_write_all / fd_send_all: send_flags < 0 for write(2). */
static int out_all(int fd, const uint8_t *p, size_t n, int send_flags)
{
	while (n) {
		ssize_t k = send_flags < 0 ? write(fd, p, n) : send(fd, p, n, send_flags);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return CE_IO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int fd_write_all(int fd, const void *p, size_t n)
{
	return out_all(fd, p, n, -1);
}

int fd_send_all(int fd, const void *p, size_t n)
{
	return out_all(fd, p, n, MSG_NOSIGNAL);
}

int fd_read_full(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		ssize_t k = read(fd, b, n);

		if (k == 0)
			return CE_CLOSED;
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return CE_IO;
		}
		b += k;
		n -= (size_t)k;
	}
	return 0;
}
