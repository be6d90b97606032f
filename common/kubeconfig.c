/*
 * kubeconfig.c: where the Kubernetes client gets its server and credentials. A kubeconfig
 * file is loaded with libyaml's document API (a tree of mappings, sequences and scalars)
 * and resolved current-context -> context -> cluster + user. kubeconfig_load() applies the
 * usual precedence: explicit path, $KUBECONFIG, the in-cluster service account,
 * ~/.kube/config.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "kube.h"
#include "log.h"
#include "xmalloc.h"

#define KC_SA_DIR    "/var/run/secrets/kubernetes.io/serviceaccount"
#define KC_MAX_SIZE  (1024 * 1024) /* kubeconfig, token and namespace files */
#define KC_MAX_DEPTH 32            /* collections inside collections; kubeconfigs use ~5 */

/* one parsed kubeconfig file */
struct kc_file {
	const char *path;
	char *dir; /* relative file names are relative to this */
	yaml_document_t doc;
	yaml_node_t *root;
	char *err;
	size_t errlen;
};

static int kc_fail(struct kc_file *kc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int kc_fail(struct kc_file *kc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(kc->err, kc->errlen, "kubeconfig %s: %s", kc->path, msg);
	return -1;
}

/* opens path for reading if it is a regular file of at most KC_MAX_SIZE; -1 and errno */
static int kc_open_regular(const char *path)
{
	struct stat st;
	int fd, error = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		error = errno;
	else if (!S_ISREG(st.st_mode))
		error = EINVAL;
	else if (st.st_size > KC_MAX_SIZE)
		error = EFBIG;
	if (error != 0) {
		close(fd);
		errno = error;
		return -1;
	}
	return fd;
}

/*
 * Reads a whole (small) file. Returns a NUL-terminated buffer or NULL with errno set:
 * EINVAL for anything but a regular file (a FIFO or a device would block or never end:
 * it is opened without blocking and refused), EFBIG past KC_MAX_SIZE.
 */
char *kubeconfig_read_file(const char *path, size_t *lenp)
{
	struct buf b = {0};
	char chunk[8192];
	ssize_t n;
	int fd, saved;

	if ((fd = kc_open_regular(path)) == -1)
		return NULL;
	while ((n = read(fd, chunk, sizeof chunk)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || b.len + (size_t)n > KC_MAX_SIZE) {
			saved = n == -1 ? errno : EFBIG;
			close(fd);
			buf_clear(&b);
			errno = saved;
			return NULL;
		}
		buf_add(&b, chunk, (size_t)n);
	}
	close(fd);
	buf_add(&b, "", 1);
	if (lenp != NULL)
		*lenp = b.len - 1;
	return (char *)b.data;
}

/* the cause of a kubeconfig_read_file() failure, in words */
static const char *kc_read_error(int error)
{
	static char msg[64];

	if (error == EINVAL)
		return "not a regular file";
	if (error == EFBIG) {
		snprintf(msg, sizeof msg, "larger than %d bytes", KC_MAX_SIZE);
		return msg;
	}
	return strerror(error);
}

/* Decodes standard base64 (whitespace ignored, padding required). Returns 0 or -1. */
static int kc_base64(const char *s, unsigned char **out, size_t *outlen)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char *d = xmalloc(strlen(s) / 4 * 3 + 3);
	unsigned long acc = 0;
	size_t n = 0, chars = 0, pad = 0;
	const char *p;
	int bits = 0;

	for (; *s != '\0'; s++) {
		if (isspace((unsigned char)*s))
			continue;
		if (*s == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (p = strchr(alpha, *s)) == NULL)
			goto bad;
		chars++;
		acc = (acc << 6) | (unsigned long)(p - alpha);
		if ((bits += 6) >= 8) {
			bits -= 8;
			d[n++] = (acc >> bits) & 0xff;
		}
	}
	if (pad > 2 || (chars + pad) % 4 != 0 || chars == 0)
		goto bad;
	*out = d;
	*outlen = n;
	return 0;
bad:
	free(d);
	return -1;
}

/* the value of key in a mapping node, or NULL */
static yaml_node_t *kc_get(struct kc_file *kc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p;
	yaml_node_t *k;

	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		k = yaml_document_get_node(&kc->doc, p->key);
		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(&kc->doc, p->value);
	}
	return NULL;
}

/* a scalar value; NULL when absent, empty or a YAML null */
static const char *kc_str(struct kc_file *kc, yaml_node_t *map, const char *key)
{
	yaml_node_t *n = kc_get(kc, map, key);
	const char *v;

	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return NULL;
	v = (const char *)n->data.scalar.value;
	if (*v == '\0')
		return NULL;
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0))
		return NULL;
	return v;
}

static int kc_bool(struct kc_file *kc, yaml_node_t *map, const char *key)
{
	const char *v = kc_str(kc, map, key);

	return v != NULL && (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
	                        strcasecmp(v, "on") == 0);
}

/* In list (e.g. "clusters"), the entry whose name is name; returns its field (e.g. "cluster"). */
static yaml_node_t *kc_named(
    struct kc_file *kc, const char *list, const char *field, const char *name)
{
	yaml_node_t *seq = kc_get(kc, kc->root, list), *item;
	const char *n;
	yaml_node_item_t *i;

	if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
		item = yaml_document_get_node(&kc->doc, *i);
		if ((n = kc_str(kc, item, "name")) != NULL && strcmp(n, name) == 0)
			return kc_get(kc, item, field);
	}
	return NULL;
}

/* a file name from the kubeconfig, made relative to the kubeconfig's directory */
static char *kc_path(struct kc_file *kc, const char *v)
{
	const char *home = getenv("HOME");
	char *p;

	if (v[0] == '/')
		return xstrdup(v);
	if (v[0] == '~' && v[1] == '/' && home != NULL) {
		xasprintf(&p, "%s/%s", home, v + 2);
		return p;
	}
	xasprintf(&p, "%s/%s", kc->dir, v);
	return p;
}

static int kc_data(struct kc_file *kc, yaml_node_t *map, const char *what, const char *key,
    unsigned char **data, size_t *len)
{
	const char *v = kc_str(kc, map, key);

	if (v == NULL)
		return 0;
	if (kc_base64(v, data, len) == -1)
		return kc_fail(kc, "%s: %s: bad base64", what, key);
	return 0;
}

static int kc_cluster(struct kc_file *kc, const char *name, struct kube_config *cfg)
{
	yaml_node_t *cl = kc_named(kc, "clusters", "cluster", name);
	const char *v;
	char what[300];
	size_t len;

	if (cl == NULL)
		return kc_fail(kc, "cluster \"%s\" not found", name);
	snprintf(what, sizeof what, "cluster \"%s\"", name);
	if ((v = kc_str(kc, cl, "server")) == NULL)
		return kc_fail(kc, "%s has no server", what);
	len = strlen(v);
	while (len > 0 && v[len - 1] == '/')
		len--;
	cfg->server = xstrndup(v, len);
	if ((v = kc_str(kc, cl, "certificate-authority")) != NULL)
		cfg->ca_file = kc_path(kc, v);
	cfg->insecure = kc_bool(kc, cl, "insecure-skip-tls-verify");
	return kc_data(kc, cl, what, "certificate-authority-data", &cfg->ca_data, &cfg->ca_len);
}

static int kc_user(struct kc_file *kc, const char *name, struct kube_config *cfg)
{
	yaml_node_t *u = kc_named(kc, "users", "user", name);
	const char *v;
	char what[300];

	if (u == NULL)
		return kc_fail(kc, "user \"%s\" not found", name);
	snprintf(what, sizeof what, "user \"%s\"", name);
	if ((v = kc_str(kc, u, "token")) != NULL)
		cfg->token = xstrdup(v);
	if ((v = kc_str(kc, u, "tokenFile")) != NULL)
		cfg->token_file = kc_path(kc, v);
	if ((v = kc_str(kc, u, "client-certificate")) != NULL)
		cfg->cert_file = kc_path(kc, v);
	if ((v = kc_str(kc, u, "client-key")) != NULL)
		cfg->key_file = kc_path(kc, v);
	if (kc_data(kc, u, what, "client-certificate-data", &cfg->cert_data, &cfg->cert_len) ||
	    kc_data(kc, u, what, "client-key-data", &cfg->key_data, &cfg->key_len))
		return -1;
	if ((cfg->cert_file != NULL || cfg->cert_data != NULL) !=
	    (cfg->key_file != NULL || cfg->key_data != NULL))
		return kc_fail(kc, "%s: client certificate and key must come together", what);
	if (cfg->token == NULL && cfg->token_file == NULL && cfg->cert_file == NULL &&
	    cfg->cert_data == NULL &&
	    (kc_get(kc, u, "exec") != NULL || kc_get(kc, u, "auth-provider") != NULL))
		return kc_fail(
		    kc, "%s: exec and auth-provider credentials are not supported", what);
	return 0;
}

/* why there is no current context: absent, empty or not a name */
static int kc_no_context(struct kc_file *kc)
{
	yaml_node_t *n = kc_get(kc, kc->root, "current-context");

	if (n == NULL)
		return kc_fail(kc, "no current-context set (choose one with kubectl config "
		                   "use-context NAME)");
	if (n->type != YAML_SCALAR_NODE)
		return kc_fail(kc, "current-context is a %s, not a context name",
		    n->type == YAML_MAPPING_NODE ? "mapping" : "list");
	return kc_fail(kc, "current-context is empty (choose one with kubectl config "
	                   "use-context NAME)");
}

/* current-context -> context -> cluster + user */
static int kc_resolve(struct kc_file *kc, struct kube_config *cfg)
{
	const char *cur, *v;
	yaml_node_t *ctx;

	if (kc->root == NULL || kc->root->type != YAML_MAPPING_NODE)
		return kc_fail(kc, "not a kubeconfig (expected a mapping)");
	if ((cur = kc_str(kc, kc->root, "current-context")) == NULL)
		return kc_no_context(kc);
	if ((ctx = kc_named(kc, "contexts", "context", cur)) == NULL)
		return kc_fail(kc, "current-context \"%s\" not found", cur);
	if ((v = kc_str(kc, ctx, "cluster")) == NULL)
		return kc_fail(kc, "context \"%s\" has no cluster", cur);
	if (kc_cluster(kc, v, cfg) == -1)
		return -1;
	if ((v = kc_str(kc, ctx, "user")) != NULL && kc_user(kc, v, cfg) == -1)
		return -1;
	v = kc_str(kc, ctx, "namespace");
	cfg->namespace = xstrdup(v != NULL ? v : "default");
	return 0;
}

/*
 * The nesting depth, from libyaml's event stream, stopping as soon as it passes
 * KC_MAX_DEPTH: libyaml's document loader takes time quadratic in the nesting of flow
 * collections ("[[[[..."), so deep input is refused before it gets there.
 */
static int kc_check_depth(struct kc_file *kc, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, rv = 0, done = 0;

	if (!yaml_parser_initialize(&parser))
		return kc_fail(kc, "cannot initialise the YAML parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && rv == 0) {
		if (!yaml_parser_parse(&parser, &ev))
			break; /* the loader reports the syntax error with its line */
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
			if (++depth > KC_MAX_DEPTH)
				rv = kc_fail(kc, "line %zu: nested deeper than %d levels",
				    ev.start_mark.line + 1, KC_MAX_DEPTH);
		} else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return rv;
}

static int kc_parse(struct kc_file *kc, const char *text, size_t len)
{
	yaml_parser_t parser;
	int rv = 0;

	if (kc_check_depth(kc, text, len) == -1)
		return -1;
	if (!yaml_parser_initialize(&parser))
		return kc_fail(kc, "cannot initialise the YAML parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &kc->doc)) {
		rv = kc_fail(kc, "line %zu: %s%s%s", parser.problem_mark.line + 1,
		    parser.problem != NULL ? parser.problem : "YAML error",
		    parser.context != NULL ? " " : "",
		    parser.context != NULL ? parser.context : "");
	} else if ((kc->root = yaml_document_get_root_node(&kc->doc)) == NULL) {
		yaml_document_delete(&kc->doc);
		rv = kc_fail(kc, "empty document");
	}
	yaml_parser_delete(&parser);
	return rv;
}

int kubeconfig_load_file(const char *path, struct kube_config *cfg, char *err, size_t errlen)
{
	struct kc_file kc = {.path = path, .err = err, .errlen = errlen};
	char *text, *tmp, *dir, *real;
	size_t len;
	int rv;

	memset(cfg, 0, sizeof *cfg);
	if ((text = kubeconfig_read_file(path, &len)) == NULL)
		return kc_fail(&kc, "cannot read: %s", kc_read_error(errno));
	tmp = xstrdup(path);
	dir = dirname(tmp);
	real = realpath(dir, NULL);
	kc.dir = real != NULL ? real : xstrdup(dir);
	free(tmp);
	if ((rv = kc_parse(&kc, text, len)) == 0) {
		rv = kc_resolve(&kc, cfg);
		yaml_document_delete(&kc.doc);
	}
	free(text);
	free(kc.dir);
	if (rv == -1)
		kubeconfig_clear(cfg);
	else
		cfg->source = xstrdup(path);
	return rv;
}

/* The in-cluster service account; 1 if it was used, 0 if not in a cluster, -1 on error. */
static int kc_incluster(struct kube_config *cfg, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv("VMPOOL_SA_DIR");
	char *ns, *p;

	if (dir == NULL || *dir == '\0')
		dir = KC_SA_DIR;
	if (host == NULL || *host == '\0' || port == NULL || *port == '\0')
		return 0;
	memset(cfg, 0, sizeof *cfg);
	xasprintf(&cfg->token_file, "%s/token", dir);
	if (access(cfg->token_file, R_OK) == -1) {
		snprintf(err, errlen, "in-cluster: %s: %s", cfg->token_file, strerror(errno));
		kubeconfig_clear(cfg);
		return -1;
	}
	xasprintf(&cfg->server, strchr(host, ':') != NULL ? "https://[%s]:%s" : "https://%s:%s",
	    host, port);
	xasprintf(&cfg->ca_file, "%s/ca.crt", dir);
	xasprintf(&p, "%s/namespace", dir);
	if ((ns = kubeconfig_read_file(p, NULL)) != NULL) {
		ns[strcspn(ns, " \t\r\n")] = '\0';
		if (*ns == '\0') {
			free(ns);
			ns = NULL;
		}
	}
	free(p);
	cfg->namespace = ns != NULL ? ns : xstrdup("default");
	xasprintf(&cfg->source, "in-cluster (%s)", dir);
	return 1;
}

/* kubectl merges every file of a KUBECONFIG list; we read one: say so where it matters */
static void kc_note_first_only(char *err, size_t errlen)
{
	size_t used = strlen(err);

	snprintf(err + used, errlen - used,
	    " (KUBECONFIG lists several files: only the first existing one is read, "
	    "not merged as kubectl does)");
}

/* $KUBECONFIG: the first existing file of a ':' list; 1 used, 0 unset, -1 error */
static int kc_from_env(struct kube_config *cfg, char *err, size_t errlen)
{
	const char *env = getenv("KUBECONFIG");
	char *list, *p, *next;
	int rv = -1;

	if (env == NULL || *env == '\0')
		return 0;
	list = xstrdup(env);
	for (p = list; p != NULL; p = next) {
		if ((next = strchr(p, ':')) != NULL)
			*next++ = '\0';
		if (*p != '\0' && access(p, F_OK) == 0) {
			rv = kubeconfig_load_file(p, cfg, err, errlen) == 0 ? 1 : -1;
			if (rv == -1 && strchr(env, ':') != NULL)
				kc_note_first_only(err, errlen);
			break;
		}
	}
	if (p == NULL)
		snprintf(err, errlen, "KUBECONFIG=%s: no such file", env);
	free(list);
	return rv;
}

static char *kc_override; /* --master */

void kubeconfig_override_server(const char *server)
{
	size_t len;

	free(kc_override);
	kc_override = NULL;
	if (server == NULL || *server == '\0')
		return;
	len = strlen(server);
	while (len > 0 && server[len - 1] == '/')
		len--;
	kc_override = xstrndup(server, len);
}

/* as kubeconfig_load without the override; *none is set when no configuration exists at
 * all (nothing named, not in a cluster, no ~/.kube/config) */
static int kc_load_default(
    const char *path, struct kube_config *cfg, char *err, size_t errlen, int *none)
{
	const char *home = getenv("HOME");
	char *file;
	int rv;

	*none = 0;
	if (path != NULL && *path != '\0')
		return kubeconfig_load_file(path, cfg, err, errlen);
	if ((rv = kc_from_env(cfg, err, errlen)) != 0)
		return rv == 1 ? 0 : -1;
	if ((rv = kc_incluster(cfg, err, errlen)) != 0)
		return rv == 1 ? 0 : -1;
	if (home == NULL || *home == '\0') {
		*none = 1;
		snprintf(err, errlen,
		    "no kubeconfig: no --kubeconfig, KUBECONFIG, in-cluster "
		    "service account or HOME");
		return -1;
	}
	xasprintf(&file, "%s/.kube/config", home);
	*none = access(file, F_OK) == -1 && errno == ENOENT;
	rv = kubeconfig_load_file(file, cfg, err, errlen);
	free(file);
	return rv;
}

int kubeconfig_load(const char *path, struct kube_config *cfg, char *err, size_t errlen)
{
	int none, rv = kc_load_default(path, cfg, err, errlen, &none);

	if (kc_override == NULL)
		return rv;
	if (rv == 0) {
		free(cfg->server);
		cfg->server = xstrdup(kc_override);
		return 0;
	}
	if (!none)
		return -1;
	/* client-go's BuildConfigFromFlags: the master alone, without credentials */
	memset(cfg, 0, sizeof *cfg);
	cfg->server = xstrdup(kc_override);
	cfg->namespace = xstrdup("default");
	cfg->source = xstrdup("--master");
	return 0;
}

void kubeconfig_clear(struct kube_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->source);
	free(cfg->server);
	free(cfg->namespace);
	if (cfg->token != NULL)
		explicit_bzero(cfg->token, strlen(cfg->token));
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->ca_file);
	free(cfg->ca_data);
	free(cfg->cert_file);
	free(cfg->key_file);
	free(cfg->cert_data);
	if (cfg->key_data != NULL)
		explicit_bzero(cfg->key_data, cfg->key_len);
	free(cfg->key_data);
	memset(cfg, 0, sizeof *cfg);
}
