/* stagekit.c: helpers the stage tests share. Test code only. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "stagekit.h"
#include "timeutil.h"

int stagekit_passed, stagekit_failed;

void stagekit_check(int ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", ok ? "ok" : "FAIL");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (ok)
		stagekit_passed++;
	else
		stagekit_failed++;
}

void stagekit_check_at(const char *file, int line, int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		stagekit_passed++;
		return;
	}
	stagekit_failed++;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL %s:%d: ", file, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int stagekit_summary(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, stagekit_passed, stagekit_failed);
	return stagekit_failed > 0;
}

int stagekit_reserve_port(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		abort();
	*port = ntohs(sin.sin_port);
	return fd;
}

int stagekit_free_port(void)
{
	int port, fd = stagekit_reserve_port(&port);

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

static void stagekit_http_answered(struct evhttp_request *req, void *arg)
{
	struct stagekit_http_answer *h = arg;
	size_t n;

	h->done = 1;
	if (req == NULL)
		return;
	h->code = evhttp_request_get_response_code(req);
	n = evbuffer_copyout(evhttp_request_get_input_buffer(req), h->body, sizeof(h->body) - 1);
	h->body[n] = '\0';
}

static void stagekit_tick(evutil_socket_t fd, short what, void *arg)
{
}

void stagekit_http_get(struct event_base *base, int port, const char *path,
    struct stagekit_http_answer *h, double secs)
{
	struct evhttp_connection *c;
	struct evhttp_request *r;
	struct timeval tv = {0, 100000};
	struct event *tick = event_new(base, -1, EV_PERSIST, stagekit_tick, NULL);
	double end = now_mono() + secs;

	memset(h, 0, sizeof(*h));
	event_add(tick, &tv); /* the loop wakes up to look at the clock */
	c = evhttp_connection_base_new(base, NULL, "127.0.0.1", (ev_uint16_t)port);
	r = evhttp_request_new(stagekit_http_answered, h);
	evhttp_add_header(evhttp_request_get_output_headers(r), "Host", "127.0.0.1");
	evhttp_make_request(c, r, EVHTTP_REQ_GET, path);
	while (!h->done && now_mono() < end)
		event_base_loop(base, EVLOOP_ONCE);
	evhttp_connection_free(c);
	event_free(tick);
}

void stagekit_http_reply(struct evhttp_request *req, int code, const char *json, size_t len)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, json, len);
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, code, code < 300 ? "OK" : "x", b);
	evbuffer_free(b);
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

int stagekit_http_serve(struct event_base *base, int port,
    void (*cb)(struct evhttp_request *, void *), struct evhttp **http)
{
	*http = evhttp_new(base);
	evhttp_set_allowed_methods(*http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST |
	                                      EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(*http, cb, NULL);
	return evhttp_bind_socket(*http, "127.0.0.1", (ev_uint16_t)port);
}

json_object *stagekit_http_record(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct evhttp_uri *u = evhttp_uri_parse(evhttp_request_get_uri(req));
	const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
	const char *ctype =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	size_t len = evbuffer_get_length(in);
	char *text = calloc(1, len + 1);
	json_object *rec = json_object_new_object();

	evbuffer_copyout(in, text, len);
	json_object_object_add(rec, "method", json_object_new_string(stagekit_http_method(req)));
	json_object_object_add(rec, "path", json_object_new_string(path != NULL ? path : "?"));
	json_object_object_add(rec, "ctype", json_object_new_string(ctype != NULL ? ctype : ""));
	json_object_object_add(rec, "body", len > 0 ? json_tokener_parse(text) : NULL);
	json_object_object_add(rec, "len", json_object_new_int64((int64_t)len));
	free(text);
	if (u != NULL)
		evhttp_uri_free(u);
	return rec;
}
