/* stagekit.c: helpers the stage tests share. Test code only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/http.h>

#include "stagekit.h"
#include "timeutil.h"

int stagekit_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		abort();
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

void stagekit_write_kubeconfig(const char *path, int port, const char *token, const char *ns)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		abort();
	fprintf(f,
	    "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
	    "    server: http://127.0.0.1:%d\nusers:\n- name: test\n  user:\n    token: %s\n"
	    "contexts:\n- name: test\n  context:\n    cluster: fake\n    user: test\n",
	    port, token);
	if (ns != NULL)
		fprintf(f, "    namespace: %s\n", ns);
	fprintf(f, "current-context: test\n");
	fclose(f);
}

pid_t stagekit_spawn(const char *bin, char *const argv[], const char *logpath)
{
	pid_t pid = fork();
	int fd;

	if (pid == 0) {
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execv(bin, argv);
		_exit(127);
	}
	return pid;
}

int stagekit_child_alive(pid_t *pid, int *status)
{
	int st;

	if (*pid > 0 && waitpid(*pid, &st, WNOHANG) == *pid) {
		*status = st;
		*pid = -1;
	}
	return *pid > 0;
}

int stagekit_wait(
    struct event_base *base, pid_t *pid, int *status, int (*cond)(void *), void *arg, double secs)
{
	double end = now_mono() + secs;

	while (!cond(arg) && now_mono() < end) {
		event_base_loop(base, EVLOOP_ONCE);
		if (!stagekit_child_alive(pid, status))
			break;
	}
	return cond(arg);
}

const char *stagekit_http_method(struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return "OTHER";
	}
}
