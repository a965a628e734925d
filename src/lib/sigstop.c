/*
 * sigstop.c - SIGINT/SIGTERM -> a stop flag (sigstop.h).
 */
#include "lib/sigstop.h"

static volatile sig_atomic_t *g_flag;
static bool g_pipe;

static void on_stop(int sig)
{
	(void)sig;
	if (g_flag)
		*g_flag = 1;
}

void sigstop_catch(volatile sig_atomic_t *flag, bool ignore_pipe)
{
	*flag = 0;
	g_flag = flag;
	g_pipe = ignore_pipe;
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	if (ignore_pipe)
		signal(SIGPIPE, SIG_IGN);
}

void sigstop_release(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (g_pipe)
		signal(SIGPIPE, SIG_DFL);
	g_pipe = false;
	g_flag = NULL;
}
