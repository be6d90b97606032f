/*
 * kubeexec.c: exec credential plugins (client.authentication.k8s.io/v1 and v1beta1), as
 * client-go runs them. The plugin is started with posix_spawnp, its stdout read through
 * the event loop (nothing blocks); its ExecCredential's token (or client certificate and
 * key) is kept until status.expirationTimestamp. While no credential is valid, requests
 * wait at the client's gate; one run at a time. A 401 for the current credential drops it
 * and the request goes again once the plugin has run. A failed run is retried after a
 * backoff (1 s doubling to 30 s); requests keep waiting within their patience.
 *
 * The pure parts, kubeexec_parse() and kubeexec_info(), are unit-tested.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "backoff.h"
#include "kube.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

#include "kube_int.h"

#define KEXEC_MAX_OUT  (1024 * 1024) /* an ExecCredential is a few KB */
#define KEXEC_DEADLINE 60.0          /* a run that takes longer is killed */
#define KEXEC_REAP     0.02          /* polling for the exit after stdout closed */
#define KEXEC_BO_BASE  1.0
#define KEXEC_BO_CAP   30.0
#define KEXEC_INFO_ENV "KUBERNETES_EXEC_INFO"

extern char **environ;

static const char *kexec_state_names[] = {"idle", "running", "reaping", "backoff"};

void kube_cred_clear(struct kube_cred *c)
{
	if (c->token != NULL)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->cert);
	if (c->key != NULL)
		explicit_bzero(c->key, c->key_len);
	free(c->key);
	memset(c, 0, sizeof *c);
}

static int kexec_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int kexec_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *kexec_str(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* ExecCredential.status: a token, or a client certificate and key, and an optional expiry */
static int kexec_status(json_object *status, struct kube_cred *cred, char *err, size_t errlen)
{
	const char *tok = kexec_str(status, "token"), *exp;
	const char *cert = kexec_str(status, "clientCertificateData");
	const char *key = kexec_str(status, "clientKeyData");

	if (tok != NULL && *tok == '\0')
		tok = NULL;
	if (cert != NULL && *cert == '\0')
		cert = NULL;
	if (key != NULL && *key == '\0')
		key = NULL;
	if ((cert != NULL) != (key != NULL))
		return kexec_fail(err, errlen,
		    "it returned a client certificate without its key, "
		    "or a key without its certificate");
	if (tok == NULL && cert == NULL)
		return kexec_fail(
		    err, errlen, "it returned neither a token nor a client certificate");
	if ((exp = kexec_str(status, "expirationTimestamp")) != NULL &&
	    (cred->expiry = rfc3339_parse(exp)) < 0)
		return kexec_fail(
		    err, errlen, "expirationTimestamp \"%s\" is not RFC 3339", log_escape(exp));
	if (tok != NULL)
		cred->token = xstrdup(tok);
	if (cert != NULL) {
		cred->cert = (unsigned char *)xstrdup(cert);
		cred->cert_len = strlen(cert);
		cred->key = (unsigned char *)xstrdup(key);
		cred->key_len = strlen(key);
	}
	return 0;
}

int kubeexec_parse(const char *api_version, const char *out, size_t len, struct kube_cred *cred,
    char *err, size_t errlen)
{
	json_tokener *tok = json_tokener_new_ex(32);
	json_object *o, *status;
	const char *v;
	int rv = -1;

	memset(cred, 0, sizeof *cred);
	o = json_tokener_parse_ex(tok, out, (int)len);
	if (o == NULL || json_tokener_get_parse_end(tok) < len) {
		/* trailing blanks are fine, anything else is not one JSON object */
		size_t end = o != NULL ? json_tokener_get_parse_end(tok) : 0;

		while (o != NULL && end < len && strchr(" \t\r\n", out[end]) != NULL)
			end++;
		if (o == NULL || end < len) {
			kexec_fail(err, errlen, "its output is not one JSON object");
			goto out;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		kexec_fail(err, errlen, "its output is not a JSON object");
		goto out;
	}
	if ((v = kexec_str(o, "kind")) == NULL || strcmp(v, "ExecCredential") != 0) {
		kexec_fail(err, errlen, "it printed kind \"%s\", not ExecCredential",
		    v != NULL ? log_escape(v) : "");
		goto out;
	}
	if ((v = kexec_str(o, "apiVersion")) == NULL || strcmp(v, api_version) != 0) {
		kexec_fail(err, errlen, "it printed apiVersion \"%s\", the kubeconfig says %s",
		    v != NULL ? log_escape(v) : "", api_version);
		goto out;
	}
	if (!json_object_object_get_ex(o, "status", &status) ||
	    !json_object_is_type(status, json_type_object)) {
		kexec_fail(err, errlen, "its ExecCredential has no status");
		goto out;
	}
	rv = kexec_status(status, cred, err, errlen);
out:
	if (rv == -1)
		kube_cred_clear(cred);
	json_object_put(o);
	json_tokener_free(tok);
	return rv;
}

static char *kexec_base64(const unsigned char *p, size_t len)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	unsigned long v;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 | p[i + 2];
		*o++ = alpha[v >> 18];
		*o++ = alpha[(v >> 12) & 63];
		*o++ = alpha[(v >> 6) & 63];
		*o++ = alpha[v & 63];
	}
	if (i < len) {
		v = (unsigned long)p[i] << 16 | (i + 1 < len ? (unsigned long)p[i + 1] << 8 : 0);
		*o++ = alpha[v >> 18];
		*o++ = alpha[(v >> 12) & 63];
		*o++ = i + 1 < len ? alpha[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

char *kubeexec_info(const struct kube_config *cfg)
{
	json_object *o = json_object_new_object(), *spec, *cl;
	unsigned char *ca = cfg->ca_data;
	size_t ca_len = cfg->ca_len;
	char *s, *b64;

	json_object_object_add(o, "kind", json_object_new_string("ExecCredential"));
	json_object_object_add(o, "apiVersion", json_object_new_string(cfg->exec->api_version));
	spec = json_object_new_object();
	json_object_object_add(spec, "interactive", json_object_new_boolean(0));
	if (cfg->exec->provide_cluster_info) {
		cl = json_object_new_object();
		json_object_object_add(cl, "server", json_object_new_string(cfg->server));
		if (cfg->tls_server_name != NULL)
			json_object_object_add(
			    cl, "tls-server-name", json_object_new_string(cfg->tls_server_name));
		if (cfg->insecure)
			json_object_object_add(
			    cl, "insecure-skip-tls-verify", json_object_new_boolean(1));
		/* client-go hands over the CA's bytes, from the file if there is one */
		if (ca == NULL && cfg->ca_file != NULL)
			ca = (unsigned char *)kubeconfig_read_file(cfg->ca_file, &ca_len);
		if (ca != NULL) {
			b64 = kexec_base64(ca, ca_len);
			json_object_object_add(
			    cl, "certificate-authority-data", json_object_new_string(b64));
			free(b64);
		}
		if (ca != cfg->ca_data)
			free(ca);
		if (cfg->proxy_url != NULL)
			json_object_object_add(
			    cl, "proxy-url", json_object_new_string(cfg->proxy_url));
		json_object_object_add(spec, "cluster", cl);
	}
	json_object_object_add(o, "spec", spec);
	s = xstrdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

/* ---- the run ---- */

static void kexec_set_state(struct kube *k, enum kexec_state st)
{
	if (k->exec_state != st)
		log_debug(NULL, "exec plugin %s: %s -> %s", log_escape(k->cfg.exec->command),
		    kexec_state_names[k->exec_state], kexec_state_names[st]);
	k->exec_state = st;
}

static void kexec_timer_after(struct kube *k, double secs)
{
	struct timeval tv = secs_to_tv(secs);

	evtimer_add(&k->exec_timer, &tv);
}

/* our environment, the kubeconfig's env (replacing what it names) and KUBERNETES_EXEC_INFO */
static char **kexec_env(const struct kube_config *cfg)
{
	char **extra = cfg->exec->env, **env, *info;
	size_t n = 0, m = 0, i, j, len;

	while (environ[n] != NULL)
		n++;
	while (extra != NULL && extra[m] != NULL)
		m++;
	env = xcalloc(n + m + 2, sizeof *env);
	for (i = 0, j = 0; i < n; i++) {
		len = strcspn(environ[i], "=");
		if (strncmp(environ[i], KEXEC_INFO_ENV "=", sizeof KEXEC_INFO_ENV) == 0)
			continue;
		for (m = 0; extra != NULL && extra[m] != NULL; m++)
			if (strncmp(extra[m], environ[i], len + 1) == 0)
				break;
		if (extra == NULL || extra[m] == NULL)
			env[j++] = xstrdup(environ[i]);
	}
	for (m = 0; extra != NULL && extra[m] != NULL; m++)
		env[j++] = xstrdup(extra[m]);
	info = kubeexec_info(cfg);
	xasprintf(&env[j++], "%s=%s", KEXEC_INFO_ENV, info);
	free(info);
	return env;
}

static void kexec_strv_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* why a run failed, logged; the hint helps when the command is missing */
static void kexec_failed(struct kube *k, const char *why, int missing)
{
	const struct kube_exec *x = k->cfg.exec;
	double delay = backoff_next(&k->exec_bo);

	log_warnx(NULL, "exec credential plugin %s: %s%s%s; requests wait, next run in %.0fs",
	    log_escape(x->command), why, missing && x->install_hint != NULL ? ": " : "",
	    missing && x->install_hint != NULL ? log_escape(x->install_hint) : "", delay);
	kexec_set_state(k, KEXEC_BACKOFF);
	kexec_timer_after(k, delay);
	kube_gate_kick(k); /* requests past their patience are answered */
}

/* the plugin exited (status as from waitpid, or -1 unknown): take its credential or fail */
static void kexec_done(struct kube *k, int status)
{
	struct kube_cred cred;
	char err[256], why[320];
	double now = now_real();

	k->exec_pid = 0;
	if (status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		if (WIFEXITED(status))
			snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
		else
			snprintf(why, sizeof why, "killed by signal %d%s", WTERMSIG(status),
			    k->exec_timed_out ? " (ran too long)" : "");
		buf_clear(&k->exec_out);
		kexec_failed(k, why, WIFEXITED(status) && WEXITSTATUS(status) == 127);
		return;
	}
	if (kubeexec_parse(k->cfg.exec->api_version, (const char *)k->exec_out.data,
	        k->exec_out.len, &cred, err, sizeof err) == -1) {
		buf_clear(&k->exec_out);
		kexec_failed(k, err, 0);
		return;
	}
	buf_clear(&k->exec_out);
	kube_cred_clear(&k->cred);
	k->cred = cred;
	k->cred_valid = 1;
	k->cred_gen++;
	backoff_reset(&k->exec_bo);
	kexec_set_state(k, KEXEC_IDLE);
	if (cred.expiry > 0)
		log_info(NULL, "exec credential plugin %s: new %s, valid for %.0fs",
		    log_escape(k->cfg.exec->command), cred.token != NULL ? "token" : "certificate",
		    cred.expiry - now);
	else
		log_info(NULL, "exec credential plugin %s: new %s, no expiry",
		    log_escape(k->cfg.exec->command), cred.token != NULL ? "token" : "certificate");
	kube_gate_kick(k);
}

/* stdout is closed: collect the exit status (it may come a moment later) */
static void kexec_reap(struct kube *k)
{
	int status;
	pid_t p;

	while ((p = waitpid(k->exec_pid, &status, WNOHANG)) == -1 && errno == EINTR)
		;
	if (p == 0) {
		kexec_set_state(k, KEXEC_REAPING);
		kexec_timer_after(k, KEXEC_REAP);
		return;
	}
	evtimer_del(&k->exec_timer);
	kexec_done(k, p == -1 ? -1 : status); /* -1: SIGCHLD ignored, judge by the output */
}

static void kexec_close(struct kube *k)
{
	if (k->exec_fd != -1) {
		event_del(&k->exec_ev);
		close(k->exec_fd);
		k->exec_fd = -1;
	}
}

static void kexec_read_event(evutil_socket_t fd, short what, void *arg)
{
	struct kube *k = arg;
	char chunk[16384];
	ssize_t n;

	kube_enter(k);
	while ((n = read(fd, chunk, sizeof chunk)) > 0) {
		if (k->exec_out.len + (size_t)n > KEXEC_MAX_OUT) {
			kill(k->exec_pid, SIGKILL);
			n = 0;
			break;
		}
		buf_add(&k->exec_out, chunk, (size_t)n);
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		kexec_close(k);
		kexec_reap(k);
	}
	kube_leave(k);
}

static void kexec_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct kube *k = arg;

	kube_enter(k);
	switch (k->exec_state) {
	case KEXEC_RUNNING: /* the deadline */
		k->exec_timed_out = 1;
		kill(k->exec_pid, SIGKILL);
		kexec_close(k);
		kexec_reap(k);
		break;
	case KEXEC_REAPING:
		/* it closed its stdout but lives on: the deadline holds here too */
		if (!k->exec_timed_out && now_mono() - k->exec_started > KEXEC_DEADLINE) {
			k->exec_timed_out = 1;
			kill(k->exec_pid, SIGKILL);
		}
		kexec_reap(k);
		break;
	case KEXEC_BACKOFF:
		kexec_set_state(k, KEXEC_IDLE);
		if (!k->cred_valid)
			kube_exec_run(k);
		break;
	default:
		break;
	}
	kube_leave(k);
}

/* posix_spawnp with the plugin's stdout on out, stdin /dev/null, default signals (we
 * ignore SIGPIPE) and none blocked; 0 or an errno */
static int kexec_spawn(struct kube *k, int out)
{
	const struct kube_exec *x = k->cfg.exec;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char **argv, **envp;
	size_t n = 0, i;
	int err;

	while (x->args != NULL && x->args[n] != NULL)
		n++;
	argv = xcalloc(n + 2, sizeof *argv);
	argv[0] = x->command;
	for (i = 0; i < n; i++)
		argv[i + 1] = x->args[i];
	envp = kexec_env(&k->cfg);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	err = posix_spawnp(&k->exec_pid, x->command, &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(argv);
	kexec_strv_free(envp);
	return err;
}

/* starts the plugin; its answer comes through the loop */
void kube_exec_run(struct kube *k)
{
	char why[300];
	int fds[2], err;

	if (k->exec_state != KEXEC_IDLE)
		return;
	if (pipe2(fds, O_CLOEXEC) == -1) {
		snprintf(why, sizeof why, "pipe: %s", strerror(errno));
		kexec_failed(k, why, 0);
		return;
	}
	err = kexec_spawn(k, fds[1]);
	close(fds[1]);
	if (err != 0) {
		close(fds[0]);
		k->exec_pid = 0;
		snprintf(why, sizeof why, "cannot run it: %s", strerror(err));
		kexec_failed(k, why, err == ENOENT || err == EACCES);
		return;
	}
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	k->exec_fd = fds[0];
	k->exec_timed_out = 0;
	k->exec_started = now_mono();
	buf_clear(&k->exec_out);
	event_assign(&k->exec_ev, k->base, k->exec_fd, EV_READ | EV_PERSIST, kexec_read_event, k);
	event_add(&k->exec_ev, NULL);
	kexec_set_state(k, KEXEC_RUNNING);
	kexec_timer_after(k, KEXEC_DEADLINE);
	log_debug(NULL, "exec credential plugin %s: started, pid %ld",
	    log_escape(k->cfg.exec->command), (long)k->exec_pid);
}

/* ---- what the rest of the client sees ---- */

void kube_exec_init(struct kube *k)
{
	k->exec_fd = -1;
	evtimer_assign(&k->exec_timer, k->base, kexec_timer_event, k);
	backoff_init(&k->exec_bo, KEXEC_BO_BASE, KEXEC_BO_CAP);
}

void kube_exec_free(struct kube *k)
{
	int status;

	kexec_close(k);
	evtimer_del(&k->exec_timer);
	if (k->exec_pid > 0) {
		kill(k->exec_pid, SIGKILL);
		while (waitpid(k->exec_pid, &status, 0) == -1 && errno == EINTR)
			;
		k->exec_pid = 0;
	}
	buf_clear(&k->exec_out);
	kube_cred_clear(&k->cred);
}

/* 1 while requests must wait for the plugin's credential (a run is started if none is out) */
int kube_cred_wait(struct kube *k)
{
	if (k->cfg.exec == NULL)
		return 0;
	if (k->cred_valid && (k->cred.expiry <= 0 || now_real() < k->cred.expiry))
		return 0;
	if (k->cred_valid)
		log_info(NULL,
		    "exec credential plugin %s: the credential expired, running it again",
		    log_escape(k->cfg.exec->command));
	k->cred_valid = 0;
	if (k->exec_state == KEXEC_IDLE)
		kube_exec_run(k);
	return 1;
}

/* a 401 for the credential of generation gen: it is dropped (once) and the plugin runs
 * again; 1 if the request may go again with a fresh credential */
int kube_cred_rejected(struct kube *k, unsigned gen)
{
	if (k->cfg.exec == NULL)
		return 0;
	if (k->cred_valid && gen == k->cred_gen) {
		log_info(NULL,
		    "exec credential plugin %s: the API server refused the credential "
		    "(401), running it again",
		    log_escape(k->cfg.exec->command));
		k->cred_valid = 0;
	}
	return 1;
}
