/* stagekit.h: helpers the stage tests share (fake API server set-up). Test code only. */
#ifndef VMPOOL_STAGEKIT_H
#define VMPOOL_STAGEKIT_H

#include <sys/types.h>

#include <event2/event.h>

/* the stage tests' tally of checks */
extern int stagekit_passed, stagekit_failed;
/* counts one check and prints it, ok or FAIL, on stderr */
void stagekit_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* counts one check and prints it only when it fails, with its place */
void stagekit_check_at(const char *file, int line, int ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define STAGEKIT_CHECK(cond, ...) stagekit_check_at(__FILE__, __LINE__, (cond) ? 1 : 0, __VA_ARGS__)
/* prints "NAME: N passed, M failed"; the exit status (1 on a failure) */
int stagekit_summary(const char *name);

/* a TCP port on 127.0.0.1 that was free a moment ago */
int stagekit_free_port(void);
/* a TCP port on 127.0.0.1 held by a socket bound to it and not listening, for a server that
 * comes up later: the socket is returned, the port put in *port. Connections to the port are
 * refused meanwhile, as if nobody held it, but no other socket can take it (a port picked
 * free and released can be bound by another, or be a connection's own end, before the
 * server binds it: test_watcher's fake API server, up 1.5 s after the pick, once found its
 * port taken). listen(2) on the socket when the server is to come up. */
int stagekit_reserve_port(int *port);
/* a kubeconfig for a plain-http fake API server on 127.0.0.1:port with a bearer token;
 * ns may be NULL (no context namespace). Aborts if the file cannot be written. */
void stagekit_write_kubeconfig(const char *path, int port, const char *token, const char *ns);

/* fork + exec bin with argv, stdout and stderr appended to logpath; returns the pid */
pid_t stagekit_spawn(const char *bin, char *const argv[], const char *logpath);
/* reaps *pid if it exited (its wait status into *status, *pid = -1); 1 while it runs */
int stagekit_child_alive(pid_t *pid, int *status);
/* runs base until cond(arg) holds, secs pass or the child exits; returns cond(arg) */
int stagekit_wait(
    struct event_base *base, pid_t *pid, int *status, int (*cond)(void *), void *arg, double secs);

/* a fake API server on 127.0.0.1:port taking GET PUT POST PATCH DELETE, every request to cb;
 * *http is always set (evhttp_free() it); returns 0 or -1 when the port cannot be bound */
struct event_base;
struct evhttp;
struct evhttp_request;
int stagekit_http_serve(struct event_base *, int port, void (*cb)(struct evhttp_request *, void *),
    struct evhttp **http);
/* a GET of an HTTP endpoint (a stage's /metrics, /readyz) and its answer */
struct stagekit_http_answer {
	int done, code;
	char body[32768];
};
/* GETs path from 127.0.0.1:port, running base until the answer or secs */
void stagekit_http_get(
    struct event_base *, int port, const char *path, struct stagekit_http_answer *, double secs);
/* a fake API server's answer: code with len bytes of JSON text */
void stagekit_http_reply(struct evhttp_request *req, int code, const char *json, size_t len);
/* the HTTP method of a fake API server's request ("GET", ..., "OTHER") */
const char *stagekit_http_method(struct evhttp_request *req);
/* a request as {method, path ("?" if unparsable), ctype ("" if none), body (parsed JSON or
 * null), len}; new reference */
struct json_object *stagekit_http_record(struct evhttp_request *req);

#endif
