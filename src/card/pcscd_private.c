/*
 * pcscd_private.c - a pcscd of our own in a mount namespace with a private
 * /run/pcscd (see pcscd_private.h for why).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "card/pcscd_private.h"
#include "lib/util.h"

/* Exit codes of the child before exec: the namespace could not be made. */
#define PP_EXIT_NS 120

bool pcscd_available(void)
{
	return access(PCSCD_BIN, X_OK) == 0 && access(PCSCD_VPCD_DRIVER, R_OK) == 0;
}

/* A port for vpcd, which binds it only once pcscd loads the driver: taken
 * below the kernel's ephemeral range (32768..60999 on Linux), so that the
 * outgoing connections of tests running beside us cannot take it in between
 * (a port from bind(0) is an ephemeral one, and was seen taken that way:
 * the reader then never appears). Random in 20000..32767, checked free. */
static int free_port(uint16_t *port)
{
	for (int tries = 0; tries < 64; tries++) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		uint16_t rnd = 0;
		int fd, ok;

		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return CE_IO;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t)(20000 + rnd % 12768));
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			return CE_IO;
		ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok) {
			*port = ntohs(a.sin_port);
			return 0;
		}
	}
	return CE_IO;
}

/* The child: private mounts, /run/pcscd = rundir, then pcscd. */
static void child(const char *rundir, const char *confdir, const char *log_path)
{
	if (log_path) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(PP_EXIT_NS);
	}
	if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		fprintf(stderr, "pcscd_private: no mount namespace: %s\n", strerror(errno));
		_exit(PP_EXIT_NS);
	}
	if ((mkdir("/run/pcscd", 0755) != 0 && errno != EEXIST) ||
	    mount(rundir, "/run/pcscd", NULL, MS_BIND, NULL) != 0) {
		fprintf(stderr, "pcscd_private: cannot bind %s on /run/pcscd: %s\n", rundir, strerror(errno));
		_exit(PP_EXIT_NS);
	}
	execl(PCSCD_BIN, "pcscd", "--foreground", "--config", confdir, (char *)NULL);
	_exit(127);
}

int pcscd_private_start(const char *dir, const char *reader, const char *log_path, unsigned wait_ms,
	struct pcscd_private *p)
{
	char rundir[200], confdir[200], conf[240];
	uint64_t deadline;
	FILE *f;
	int st, r;

	memset(p, 0, sizeof(*p));
	if (!dir || !reader || strlen(reader) >= sizeof(p->reader) || strchr(reader, '"'))
		return CE_ARG;
	if (!pcscd_available())
		return CE_NOT_FOUND;
	if (geteuid() != 0)
		return CE_STATE;
	if ((size_t)snprintf(rundir, sizeof(rundir), "%s/run", dir) >= sizeof(rundir) ||
	    (size_t)snprintf(confdir, sizeof(confdir), "%s/reader.conf.d", dir) >= sizeof(confdir) ||
	    (size_t)snprintf(p->sock, sizeof(p->sock), "%s/pcscd.comm", rundir) >= sizeof(p->sock))
		return CE_ARG;
	snprintf(conf, sizeof(conf), "%s/vpcd", confdir);
	snprintf(p->reader, sizeof(p->reader), "%s", reader);
	if ((mkdir(rundir, 0755) != 0 && errno != EEXIST) || (mkdir(confdir, 0700) != 0 && errno != EEXIST))
		return CE_IO;
	if ((r = free_port(&p->port)) != 0)
		return r;
	if (!(f = fopen(conf, "w")))
		return CE_IO;
	fprintf(f, "FRIENDLYNAME \"%s\"\nDEVICENAME /dev/null:0x%X\nLIBPATH %s\nCHANNELID 0x%X\n", reader,
		(unsigned)p->port, PCSCD_VPCD_DRIVER, (unsigned)p->port);
	if (fclose(f) != 0)
		return CE_IO;
	fflush(NULL); /* the child must not print our buffered output again */
	p->pid = fork();
	if (p->pid < 0) {
		p->pid = 0;
		return CE_IO;
	}
	if (p->pid == 0)
		child(rundir, confdir, log_path);
	/* Its socket appears once it listens (a readiness wait, not a timing
	 * assumption: no socket by the deadline is an error). */
	deadline = now_mono_ms() + wait_ms;
	while (access(p->sock, F_OK) != 0) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			return CE_IO;
		}
		if (now_mono_ms() >= deadline) {
			pcscd_private_stop(p);
			return CE_IO;
		}
		usleep(20 * 1000);
	}
	if (setenv("PCSCLITE_CSOCK_NAME", p->sock, 1) != 0) {
		pcscd_private_stop(p);
		return CE_NOMEM;
	}
	return 0;
}

void pcscd_private_stop(struct pcscd_private *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			p->pid = 0;
			break;
		}
		usleep(50 * 1000);
	}
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
	}
	unsetenv("PCSCLITE_CSOCK_NAME");
}
