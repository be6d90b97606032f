/*
 * kubeconfig.c: where the Kubernetes client gets its server and credentials. A kubeconfig
 * file is loaded with libyaml's document API (a tree of mappings, sequences and scalars)
 * and resolved current-context -> context -> cluster + user. kubeconfig_load() applies the
 * usual precedence: explicit path, $KUBECONFIG (a list of files merged as kubectl merges
 * them), the in-cluster service account, ~/.kube/config. What a kubeconfig may say that
 * the client does not do (auth-provider, basic authentication, impersonation, an exec
 * apiVersion we do not speak) is refused with a message naming it, never ignored.
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
	yaml_node_t *root; /* NULL for an empty file */
	int loaded;        /* doc is to be deleted */
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

/* several files read as one, as kubectl merges a KUBECONFIG list */
struct kc_set {
	struct kc_file *files;
	size_t n;
	const char *what; /* the file, or the list, for messages */
	char *err;
	size_t errlen;
};

static int kcs_fail(struct kc_set *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int kcs_fail(struct kc_set *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(s->err, s->errlen, "kubeconfig %s: %s", s->what, msg);
	return -1;
}

/*
 * In list (e.g. "clusters") of the first file that has an entry named name, that entry's
 * field (e.g. "cluster"); *in is that file (relative names in the entry are relative to it).
 * The first file to define a name wins, as kubectl merges.
 */
static yaml_node_t *kc_named(
    struct kc_set *s, const char *list, const char *field, const char *name, struct kc_file **in)
{
	yaml_node_t *seq, *item;
	yaml_node_item_t *i;
	const char *n;
	size_t f;

	for (f = 0; f < s->n; f++) {
		seq = kc_get(&s->files[f], s->files[f].root, list);
		if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
			continue;
		for (i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
			item = yaml_document_get_node(&s->files[f].doc, *i);
			if ((n = kc_str(&s->files[f], item, "name")) != NULL &&
			    strcmp(n, name) == 0) {
				*in = &s->files[f];
				return kc_get(&s->files[f], item, field);
			}
		}
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

/* proxy-url: the schemes kubectl takes (client-go: http, https, socks5) */
static int kc_proxy(struct kc_file *kc, const char *what, const char *v, struct kube_config *cfg)
{
	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0 &&
	    strncmp(v, "socks5://", 9) != 0)
		return kc_fail(kc,
		    "%s: proxy-url \"%s\" is not supported (http://, https:// or "
		    "socks5://)",
		    what, v);
	cfg->proxy_url = xstrdup(v);
	return 0;
}

static int kc_cluster(struct kc_set *s, const char *name, struct kube_config *cfg)
{
	struct kc_file *kc = NULL;
	yaml_node_t *cl = kc_named(s, "clusters", "cluster", name, &kc);
	const char *v;
	char what[300];
	size_t len;

	if (cl == NULL)
		return kcs_fail(s, "cluster \"%s\" not found", name);
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
	if ((v = kc_str(kc, cl, "tls-server-name")) != NULL)
		cfg->tls_server_name = xstrdup(v);
	if ((v = kc_str(kc, cl, "proxy-url")) != NULL && kc_proxy(kc, what, v, cfg) == -1)
		return -1;
	if (kc_data(kc, cl, what, "certificate-authority-data", &cfg->ca_data, &cfg->ca_len) == -1)
		return -1;
	/* as kubectl: trusting a CA and trusting anyone contradict each other */
	if (cfg->insecure && (cfg->ca_file != NULL || cfg->ca_data != NULL))
		return kc_fail(kc,
		    "%s: insecure-skip-tls-verify together with a certificate "
		    "authority is not allowed (kubectl refuses it too)",
		    what);
	return 0;
}

/* a sequence of scalars as a NULL-terminated vector ("NAME=VALUE" for env); -1 if not */
static int kc_strv(struct kc_file *kc, yaml_node_t *seq, int env, char ***out)
{
	yaml_node_item_t *i;
	yaml_node_t *n;
	const char *name, *value;
	size_t k = 0;
	char **v;

	*out = NULL;
	if (seq == NULL)
		return 0;
	if (seq->type != YAML_SEQUENCE_NODE)
		return -1;
	v = xcalloc(
	    (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start) + 1, sizeof *v);
	*out = v;
	for (i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
		n = yaml_document_get_node(&kc->doc, *i);
		if (!env && n != NULL && n->type == YAML_SCALAR_NODE) {
			v[k++] = xstrdup((const char *)n->data.scalar.value);
			continue;
		}
		if (!env || (name = kc_str(kc, n, "name")) == NULL || strchr(name, '=') != NULL)
			return -1;
		value = kc_str(kc, n, "value");
		xasprintf(&v[k++], "%s=%s", name, value != NULL ? value : "");
	}
	return 0;
}

static void kc_strv_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static char **kc_strv_dup(char *const *v)
{
	size_t n = 0, i;
	char **d;

	if (v == NULL)
		return NULL;
	while (v[n] != NULL)
		n++;
	d = xcalloc(n + 1, sizeof *d);
	for (i = 0; i < n; i++)
		d[i] = xstrdup(v[i]);
	return d;
}

static void kc_exec_free(struct kube_exec *x)
{
	if (x == NULL)
		return;
	free(x->api_version);
	free(x->command);
	kc_strv_free(x->args);
	kc_strv_free(x->env);
	free(x->install_hint);
	free(x);
}

#define KC_EXEC_V1      "client.authentication.k8s.io/v1"
#define KC_EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"

/* users[].user.exec: the credential plugin (client-go's ExecConfig) */
static int kc_exec(struct kc_file *kc, yaml_node_t *x, const char *what, struct kube_config *cfg)
{
	struct kube_exec *e;
	const char *api, *cmd, *mode, *v;

	if (x->type != YAML_MAPPING_NODE)
		return kc_fail(kc, "%s: exec is not a mapping", what);
	if ((api = kc_str(kc, x, "apiVersion")) == NULL)
		return kc_fail(
		    kc, "%s: exec has no apiVersion (%s or %s)", what, KC_EXEC_V1, KC_EXEC_V1BETA1);
	if (strcmp(api, KC_EXEC_V1) != 0 && strcmp(api, KC_EXEC_V1BETA1) != 0)
		return kc_fail(kc, "%s: exec apiVersion \"%s\" is not supported (%s or %s)", what,
		    api, KC_EXEC_V1, KC_EXEC_V1BETA1);
	if ((cmd = kc_str(kc, x, "command")) == NULL)
		return kc_fail(kc, "%s: exec has no command", what);
	mode = kc_str(kc, x, "interactiveMode");
	if (mode != NULL && strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0)
		return kc_fail(kc,
		    "%s: exec interactiveMode \"%s\" is not supported: a controller has no "
		    "terminal (Never or IfAvailable)",
		    what, mode);
	e = cfg->exec = xcalloc(1, sizeof *e);
	e->api_version = xstrdup(api);
	/* as kubectl: a command with a '/' is a path, relative to the kubeconfig's directory */
	e->command = strchr(cmd, '/') != NULL ? kc_path(kc, cmd) : xstrdup(cmd);
	if (kc_strv(kc, kc_get(kc, x, "args"), 0, &e->args) == -1)
		return kc_fail(kc, "%s: exec args must be a list of strings", what);
	if (kc_strv(kc, kc_get(kc, x, "env"), 1, &e->env) == -1)
		return kc_fail(kc, "%s: exec env must be a list of {name, value}", what);
	if ((v = kc_str(kc, x, "installHint")) != NULL)
		e->install_hint = xstrdup(v);
	e->provide_cluster_info = kc_bool(kc, x, "provideClusterInfo");
	return 0;
}

/* what a user entry may carry that we do not do: refused, naming it, never ignored */
static int kc_user_unsupported(struct kc_file *kc, yaml_node_t *u, const char *what)
{
	static const char *const impersonation[] = {"as", "as-uid", "as-groups", "as-user-extra"};
	yaml_node_t *ap = kc_get(kc, u, "auth-provider");
	const char *v;
	size_t i;

	if (ap != NULL) {
		v = kc_str(kc, ap, "name");
		return kc_fail(kc,
		    "%s: auth-provider \"%s\" is not supported: use an exec credential plugin "
		    "(client.authentication.k8s.io/v1; for OIDC e.g. kubelogin)",
		    what, v != NULL ? v : "?");
	}
	if (kc_get(kc, u, "username") != NULL || kc_get(kc, u, "password") != NULL)
		return kc_fail(kc,
		    "%s: username/password (basic authentication) is not supported: use a token, "
		    "a client certificate or an exec plugin",
		    what);
	for (i = 0; i < sizeof impersonation / sizeof impersonation[0]; i++)
		if (kc_get(kc, u, impersonation[i]) != NULL)
			return kc_fail(
			    kc, "%s: impersonation (%s) is not supported", what, impersonation[i]);
	return 0;
}

static int kc_user(struct kc_set *s, const char *name, struct kube_config *cfg)
{
	struct kc_file *kc = NULL;
	yaml_node_t *u = kc_named(s, "users", "user", name, &kc), *x;
	const char *v;
	char what[300];

	if (u == NULL)
		return kcs_fail(s, "user \"%s\" not found", name);
	snprintf(what, sizeof what, "user \"%s\"", name);
	if (kc_user_unsupported(kc, u, what) == -1)
		return -1;
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
	if ((x = kc_get(kc, u, "exec")) == NULL)
		return 0;
	if (kc_exec(kc, x, what, cfg) == -1)
		return -1;
	/* client-go sends a request's own Authorization header and skips the plugin */
	if (cfg->token != NULL || cfg->token_file != NULL) {
		log_info(NULL,
		    "kubeconfig %s: %s has a token and an exec plugin: the token is used", kc->path,
		    what);
		kc_exec_free(cfg->exec);
		cfg->exec = NULL;
	}
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

/* current-context (from the first file that sets it) -> context -> cluster + user */
static int kc_resolve(struct kc_set *s, struct kube_config *cfg)
{
	struct kc_file *kc = NULL;
	const char *cur = NULL, *v;
	yaml_node_t *ctx;
	size_t f;

	for (f = 0; f < s->n && cur == NULL; f++)
		cur = kc_str(&s->files[f], s->files[f].root, "current-context");
	if (cur == NULL && s->n == 1)
		return kc_no_context(&s->files[0]);
	if (cur == NULL)
		return kcs_fail(s, "no file sets current-context (choose one with kubectl config "
		                   "use-context NAME)");
	if ((ctx = kc_named(s, "contexts", "context", cur, &kc)) == NULL)
		return kcs_fail(s, "current-context \"%s\" not found", cur);
	if ((v = kc_str(kc, ctx, "cluster")) == NULL)
		return kc_fail(kc, "context \"%s\" has no cluster", cur);
	if (kc_cluster(s, v, cfg) == -1)
		return -1;
	if ((v = kc_str(kc, ctx, "user")) != NULL && kc_user(s, v, cfg) == -1)
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

/* loads one file of a set; an empty file is an empty kubeconfig when allow_empty (in a
 * KUBECONFIG list, as kubectl reads it) and an error otherwise */
static int kc_parse(struct kc_file *kc, const char *text, size_t len, int allow_empty)
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
	} else {
		kc->loaded = 1;
		kc->root = yaml_document_get_root_node(&kc->doc);
		if (kc->root == NULL && !allow_empty)
			rv = kc_fail(kc, "empty document");
		else if (kc->root != NULL && kc->root->type != YAML_MAPPING_NODE)
			rv = kc_fail(kc, "not a kubeconfig (expected a mapping)");
	}
	yaml_parser_delete(&parser);
	return rv;
}

static int kc_read(struct kc_file *kc, int allow_empty)
{
	char *text, *tmp, *dir;
	size_t len;
	int rv;

	if ((text = kubeconfig_read_file(kc->path, &len)) == NULL)
		return kc_fail(kc, "cannot read: %s", kc_read_error(errno));
	tmp = xstrdup(kc->path);
	dir = dirname(tmp);
	if ((kc->dir = realpath(dir, NULL)) == NULL)
		kc->dir = xstrdup(dir);
	free(tmp);
	rv = kc_parse(kc, text, len, allow_empty);
	free(text);
	return rv;
}

/* reads and merges paths[0..n); what names them in messages and as the source */
static int kc_load_set(const char *const *paths, size_t n, const char *what,
    struct kube_config *cfg, char *err, size_t errlen)
{
	struct kc_set s = {.n = n, .what = what, .err = err, .errlen = errlen};
	size_t i;
	int rv = 0;

	memset(cfg, 0, sizeof *cfg);
	s.files = xcalloc(n, sizeof *s.files);
	for (i = 0; i < n && rv == 0; i++) {
		s.files[i].path = paths[i];
		s.files[i].err = err;
		s.files[i].errlen = errlen;
		rv = kc_read(&s.files[i], n > 1);
	}
	if (rv == 0)
		rv = kc_resolve(&s, cfg);
	for (i = 0; i < n; i++) {
		if (s.files[i].loaded)
			yaml_document_delete(&s.files[i].doc);
		free(s.files[i].dir);
	}
	free(s.files);
	if (rv == -1)
		kubeconfig_clear(cfg);
	else
		cfg->source = xstrdup(what);
	return rv;
}

int kubeconfig_load_file(const char *path, struct kube_config *cfg, char *err, size_t errlen)
{
	return kc_load_set(&path, 1, path, cfg, err, errlen);
}

int kubeconfig_load_list(const char *list, struct kube_config *cfg, char *err, size_t errlen)
{
	char *copy = xstrdup(list), *p, *next, *what;
	const char **paths = xcalloc(strlen(list) / 2 + 2, sizeof *paths);
	size_t n = 0, i;
	int rv = 0;

	for (p = copy; p != NULL; p = next) {
		if ((next = strchr(p, ':')) != NULL)
			*next++ = '\0';
		/* kubectl skips files that do not exist and reads a file named twice once */
		if (*p == '\0' || (access(p, F_OK) == -1 && errno == ENOENT))
			continue;
		for (i = 0; i < n && strcmp(paths[i], p) != 0; i++)
			;
		if (i == n)
			paths[n++] = p;
	}
	if (n > 0) {
		if (n == 1)
			what = xstrdup(paths[0]);
		else
			xasprintf(&what, "KUBECONFIG=%s", list);
		rv = kc_load_set(paths, n, what, cfg, err, errlen) == 0 ? 1 : -1;
		free(what);
	}
	free(paths);
	free(copy);
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
	const char *home = getenv("HOME"), *env = getenv("KUBECONFIG");
	char *file;
	int rv;

	*none = 0;
	if (path != NULL && *path != '\0')
		return kubeconfig_load_file(path, cfg, err, errlen);
	if (env != NULL && *env != '\0') {
		if ((rv = kubeconfig_load_list(env, cfg, err, errlen)) != 0)
			return rv == 1 ? 0 : -1;
		snprintf(err, errlen, "KUBECONFIG=%s: no such file", env);
		return -1;
	}
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
	free(cfg->tls_server_name);
	free(cfg->proxy_url);
	kc_exec_free(cfg->exec);
	memset(cfg, 0, sizeof *cfg);
}

static char *kc_strdup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static unsigned char *kc_memdup(const unsigned char *p, size_t len)
{
	unsigned char *d;

	if (p == NULL)
		return NULL;
	d = xmalloc(len > 0 ? len : 1);
	memcpy(d, p, len);
	return d;
}

void kubeconfig_copy(struct kube_config *d, const struct kube_config *s)
{
	memset(d, 0, sizeof *d);
	d->source = kc_strdup(s->source);
	d->server = kc_strdup(s->server);
	d->namespace = kc_strdup(s->namespace);
	d->token = kc_strdup(s->token);
	d->token_file = kc_strdup(s->token_file);
	d->ca_file = kc_strdup(s->ca_file);
	d->cert_file = kc_strdup(s->cert_file);
	d->key_file = kc_strdup(s->key_file);
	d->ca_data = kc_memdup(s->ca_data, s->ca_len);
	d->ca_len = s->ca_len;
	d->cert_data = kc_memdup(s->cert_data, s->cert_len);
	d->cert_len = s->cert_len;
	d->key_data = kc_memdup(s->key_data, s->key_len);
	d->key_len = s->key_len;
	d->insecure = s->insecure;
	d->tls_server_name = kc_strdup(s->tls_server_name);
	d->proxy_url = kc_strdup(s->proxy_url);
	if (s->exec != NULL) {
		d->exec = xcalloc(1, sizeof *d->exec);
		d->exec->api_version = kc_strdup(s->exec->api_version);
		d->exec->command = kc_strdup(s->exec->command);
		d->exec->args = kc_strv_dup(s->exec->args);
		d->exec->env = kc_strv_dup(s->exec->env);
		d->exec->install_hint = kc_strdup(s->exec->install_hint);
		d->exec->provide_cluster_info = s->exec->provide_cluster_info;
	}
}
