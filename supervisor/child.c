/*
 * child.c: one supervised stage process. Owns the child's state machine (one setter that
 * logs every transition by name), the spawn (fork + exec, with a close-on-exec pipe that
 * tells an exec failure from a running program without blocking), the respawn timer and
 * its backoff. The restart policy across children lives in vmpoold.c.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

struct child {
	struct event_base *base;
	char *name;
	char **argv;
	enum child_state state;
	pid_t pid;
	double started;        /* now_mono() at the last spawn */
	int exec_errno;        /* from the exec pipe, 0 if exec worked */
	int execfd;            /* read end of the exec pipe, -1 if none */
	struct event *ev_exec; /* readable execfd */
	struct event *ev_restart;
	struct backoff bo;
	struct child_cb cb;
	void *arg;
};

static const char *child_state_names[] = {
    [CHILD_STOPPED] = "STOPPED",
    [CHILD_STARTING] = "STARTING",
    [CHILD_RUNNING] = "RUNNING",
    [CHILD_BACKOFF] = "BACKOFF",
    [CHILD_STOPPING] = "STOPPING",
    [CHILD_GAVE_UP] = "GAVE_UP",
};

const char *child_state_name(enum child_state s)
{
	if ((size_t)s >= sizeof(child_state_names) / sizeof(child_state_names[0]))
		return "?";
	return child_state_names[s];
}

/* the one place the state changes */
static void child_set_state(struct child *c, enum child_state s)
{
	if (c->state == s)
		return;
	log_infos("Stage state", LOG_STR("stage", c->name),
	    LOG_STR("from", child_state_name(c->state)), LOG_STR("to", child_state_name(s)));
	c->state = s;
}

static void child_close_exec(struct child *c)
{
	if (c->ev_exec != NULL) {
		event_free(c->ev_exec);
		c->ev_exec = NULL;
	}
	if (c->execfd != -1) {
		close(c->execfd);
		c->execfd = -1;
	}
}

/* the exec pipe closed (exec worked) or carried an errno (exec failed) */
static void child_exec_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;
	int err = 0;
	ssize_t n;

	n = read(fd, &err, sizeof(err));
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	child_close_exec(c);
	if (n == (ssize_t)sizeof(err)) {
		c->exec_errno = err;
		log_errors(strerror(err), "Stage cannot be executed", LOG_STR("stage", c->name),
		    LOG_STR("path", c->argv[0]));
		return; /* the reaper sees the child's _exit */
	}
	if (c->state != CHILD_STARTING)
		return;
	child_set_state(c, CHILD_RUNNING);
	if (c->cb.running != NULL)
		c->cb.running(c, c->arg);
}

static void child_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;

	if (c->state != CHILD_BACKOFF)
		return;
	if (child_spawn(c) == -1)
		child_schedule_restart(c);
}

struct child *child_new(struct event_base *base, const char *name, char *const argv[],
    const struct child_cb *cb, void *arg)
{
	struct child *c;
	size_t n, i;

	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->name = xstrdup(name);
	for (n = 0; argv[n] != NULL; n++)
		;
	c->argv = xcalloc(n + 1, sizeof(*c->argv));
	for (i = 0; i < n; i++)
		c->argv[i] = xstrdup(argv[i]);
	c->state = CHILD_STOPPED;
	c->pid = -1;
	c->execfd = -1;
	c->ev_restart = evtimer_new(base, child_restart_cb, c);
	if (c->ev_restart == NULL)
		fatalx("%s: evtimer_new failed", name);
	backoff_init(&c->bo, CHILD_RESTART_MIN, CHILD_RESTART_CAP);
	c->cb = *cb;
	c->arg = arg;
	return c;
}

void child_free(struct child *c)
{
	size_t i;

	if (c == NULL)
		return;
	child_close_exec(c);
	event_free(c->ev_restart);
	for (i = 0; c->argv[i] != NULL; i++)
		free(c->argv[i]);
	free(c->argv);
	free(c->name);
	free(c);
}

/* in the forked child: only async-signal-safe calls from here on */
static void __attribute__((noreturn)) child_exec(struct child *c, int wfd)
{
	int err;

	execv(c->argv[0], c->argv);
	err = errno;
	if (write(wfd, &err, sizeof(err)) == -1)
		_exit(127);
	_exit(127);
}

int child_spawn(struct child *c)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn(c->name, "pipe");
		return -1;
	}
	pid = fork();
	if (pid == -1) {
		log_warn(c->name, "fork");
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0)
		child_exec(c, p[1]);
	close(p[1]);
	c->pid = pid;
	c->execfd = p[0];
	c->exec_errno = 0;
	c->started = now_mono();
	c->ev_exec = event_new(c->base, p[0], EV_READ | EV_PERSIST, child_exec_cb, c);
	if (c->ev_exec == NULL || event_add(c->ev_exec, NULL) == -1)
		fatalx("%s: cannot watch the exec pipe", c->name);
	log_infos("Stage spawned", LOG_STR("stage", c->name), LOG_STR("path", c->argv[0]),
	    LOG_INT("pid", pid));
	child_set_state(c, CHILD_STARTING);
	return 0;
}

void child_schedule_restart(struct child *c)
{
	struct timeval tv;
	double d;

	d = backoff_next(&c->bo);
	tv = secs_to_tv(d);
	child_set_state(c, CHILD_BACKOFF);
	log_infos("Stage restarting", LOG_STR("stage", c->name), LOG_FLOAT("delaySeconds", d));
	evtimer_add(c->ev_restart, &tv);
}

void child_stop(struct child *c)
{
	evtimer_del(c->ev_restart);
	if (!child_alive(c)) {
		if (c->state != CHILD_GAVE_UP)
			child_set_state(c, CHILD_STOPPED);
		return;
	}
	if (kill(c->pid, SIGTERM) == -1 && errno != ESRCH)
		log_warn(c->name, "kill pid %ld", (long)c->pid);
	child_set_state(c, CHILD_STOPPING);
}

void child_kill(struct child *c)
{
	if (!child_alive(c))
		return;
	log_warns("Stage did not stop, sending SIGKILL", LOG_STR("stage", c->name),
	    LOG_INT("pid", c->pid));
	if (kill(c->pid, SIGKILL) == -1 && errno != ESRCH)
		log_warn(c->name, "kill pid %ld", (long)c->pid);
}

void child_give_up(struct child *c)
{
	evtimer_del(c->ev_restart);
	child_set_state(c, CHILD_GAVE_UP);
}

/* exit status as one number: the exit code, or 128 + signal as a shell would say */
static int child_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 255;
}

int child_reap(struct child *c, pid_t pid, int wstatus)
{
	int code, stopping, exec_failed;
	double ran;

	if (c->pid == -1 || pid != c->pid)
		return 0;
	code = child_code(wstatus);
	ran = now_mono() - c->started;
	stopping = c->state == CHILD_STOPPING;
	exec_failed = c->exec_errno != 0;
	child_close_exec(c);
	c->pid = -1;
	if (WIFSIGNALED(wstatus))
		log_infos("Stage killed by a signal", LOG_STR("stage", c->name),
		    LOG_INT("pid", pid), LOG_INT("signal", WTERMSIG(wstatus)),
		    LOG_FLOAT("ranSeconds", ran));
	else
		log_infos("Stage exited", LOG_STR("stage", c->name), LOG_INT("pid", pid),
		    LOG_INT("status", code), LOG_FLOAT("ranSeconds", ran));
	if (ran >= CHILD_HEALTHY_AFTER)
		backoff_reset(&c->bo);
	if (stopping)
		child_set_state(c, CHILD_STOPPED);
	if (exec_failed)
		code = EXIT_CONFIG; /* a missing or unrunnable binary is a configuration error */
	c->cb.exited(c, code, stopping, c->arg);
	return 1;
}

enum child_state child_state(const struct child *c)
{
	return c->state;
}

const char *child_name(const struct child *c)
{
	return c->name;
}

pid_t child_pid(const struct child *c)
{
	return c->pid;
}

int child_alive(const struct child *c)
{
	return c->pid != -1;
}
