/*
 * test_kubeconfig.c: kubeconfig parsing and the loading precedence (explicit path,
 * $KUBECONFIG, in-cluster service account, ~/.kube/config). Writes files to a temp dir.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kube.h"

static char tmpdir[256];

/* writes tmpdir/name and returns its path (static buffer ring) */
static const char *put(const char *name, const char *text)
{
	static char paths[8][512];
	static int slot;
	char *p = paths[slot++ % 8];
	FILE *f;

	snprintf(p, 512, "%s/%s", tmpdir, name);
	assert_non_null(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
	return p;
}

static const char *path_of(const char *name)
{
	static char paths[8][512];
	static int slot;
	char *p = paths[slot++ % 8];

	snprintf(p, 512, "%s/%s", tmpdir, name);
	return p;
}

/* a kubeconfig with one context; cluster and user bodies are indented YAML */
static const char *kubeconfig(
    const char *name, const char *cluster, const char *user, const char *ctxextra)
{
	char text[4096];

	snprintf(text, sizeof text,
	    "apiVersion: v1\n"
	    "kind: Config\n"
	    "clusters:\n"
	    "- name: other\n"
	    "  cluster:\n"
	    "    server: https://wrong:1\n"
	    "- name: c1\n"
	    "  cluster:\n"
	    "%s"
	    "users:\n"
	    "- name: u1\n"
	    "  user:\n"
	    "%s"
	    "contexts:\n"
	    "- name: other\n"
	    "  context: {cluster: other, user: u1}\n"
	    "- name: ctx\n"
	    "  context:\n"
	    "    cluster: c1\n"
	    "    user: u1\n"
	    "%s"
	    "current-context: ctx\n",
	    cluster, user, ctxextra);
	return put(name, text);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_kubeconfig.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	/* realpath: the loader resolves relative names against the real directory */
	char *r = realpath(tmpdir, NULL);
	snprintf(tmpdir, sizeof tmpdir, "%s", r);
	free(r);
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("VMPOOL_SA_DIR");
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_token(void **state)
{
	struct kube_config c;
	char err[512];
	const char *p = kubeconfig(
	    "token.yaml", "    server: https://api.example:6443/\n", "    token: abc.def\n", "");

	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), 0);
	assert_string_equal(c.server, "https://api.example:6443");
	assert_string_equal(c.token, "abc.def");
	assert_null(c.token_file);
	assert_string_equal(c.namespace, "default");
	assert_string_equal(c.source, p);
	assert_int_equal(c.insecure, 0);
	assert_null(c.ca_file);
	assert_null(c.ca_data);
	kubeconfig_clear(&c);
	assert_null(c.server);
	kubeconfig_clear(NULL);
}

static void test_tokenfile_relative(void **state)
{
	struct kube_config c;
	char err[512], want[PATH_MAX + 32];
	const char *p;

	mkdir(path_of("sub"), 0700);
	p = kubeconfig("sub/tf.yaml",
	    "    server: https://a:1\n    certificate-authority: ca/ca.crt\n",
	    "    tokenFile: secrets/token\n"
	    "    client-certificate: /abs/client.crt\n"
	    "    client-key: client.key\n",
	    "");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), 0);
	snprintf(want, sizeof want, "%s/sub/secrets/token", tmpdir);
	assert_string_equal(c.token_file, want);
	assert_null(c.token);
	snprintf(want, sizeof want, "%s/sub/ca/ca.crt", tmpdir);
	assert_string_equal(c.ca_file, want);
	assert_string_equal(c.cert_file, "/abs/client.crt");
	snprintf(want, sizeof want, "%s/sub/client.key", tmpdir);
	assert_string_equal(c.key_file, want);
	kubeconfig_clear(&c);
}

static void test_ca_data(void **state)
{
	struct kube_config c;
	char err[512];
	/* "hello CA\n" and, split over lines, "-----BEGIN-----" */
	const char *p = kubeconfig("ca.yaml",
	    "    server: https://a:1\n    certificate-authority-data: aGVsbG8gQ0EK\n",
	    "    client-certificate-data: |\n      LS0tLS1C\n      RUdJTi0tLS0t\n"
	    "    client-key-data: a2V5\n",
	    "");

	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), 0);
	assert_int_equal(c.ca_len, 9);
	assert_memory_equal(c.ca_data, "hello CA\n", 9);
	assert_int_equal(c.cert_len, 15);
	assert_memory_equal(c.cert_data, "-----BEGIN-----", 15);
	assert_int_equal(c.key_len, 3);
	assert_memory_equal(c.key_data, "key", 3);
	assert_null(c.token);
	kubeconfig_clear(&c);
}

static void test_bad_base64(void **state)
{
	struct kube_config c;
	char err[512];
	const char *bad[] = {"aGVsbG8*", "aGVsbG8", "aGV=sbG8", "a===", "=", NULL};
	char cluster[256];
	int i;

	for (i = 0; bad[i] != NULL; i++) {
		snprintf(cluster, sizeof cluster,
		    "    server: https://a:1\n    certificate-authority-data: \"%s\"\n", bad[i]);
		const char *p = kubeconfig("b64.yaml", cluster, "    token: t\n", "");
		assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
		assert_non_null(strstr(err, "certificate-authority-data: bad base64"));
		assert_null(c.server);
	}
}

static void test_insecure_namespace(void **state)
{
	struct kube_config c;
	char err[512];
	const char *p = kubeconfig("ins.yaml",
	    "    server: http://127.0.0.1:8080\n    insecure-skip-tls-verify: true\n", "    {}\n",
	    "    namespace: team-a\n");

	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), 0);
	assert_int_equal(c.insecure, 1);
	assert_string_equal(c.namespace, "team-a");
	assert_string_equal(c.server, "http://127.0.0.1:8080");
	/* a user with no credentials is anonymous, not an error */
	assert_null(c.token);
	assert_null(c.cert_data);
	kubeconfig_clear(&c);
}

static void test_current_context_missing(void **state)
{
	struct kube_config c;
	char err[512], want[PATH_MAX + 64];
	const char *p = put("nocur.yaml", "clusters:\n- name: c\n  cluster: {server: https://a:1}\n"
	                                  "contexts:\n- name: bar\n  context: {cluster: c}\n"
	                                  "current-context: foo\n");

	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "kubeconfig %s: current-context \"foo\" not found", p);
	assert_string_equal(err, want);

	p = put("nocur2.yaml", "clusters: []\ncontexts: []\n");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "no current-context"));
}

static void test_bad_yaml(void **state)
{
	struct kube_config c;
	char err[512], want[PATH_MAX + 32];
	const char *p = put("bad.yaml", "apiVersion: v1\n"
	                                "clusters:\n"
	                                "  - name: x\n"
	                                "   cluster: [unclosed\n");

	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "kubeconfig %s: line ", p);
	assert_memory_equal(err, want, strlen(want));
	/* the error is on line 3 or 4 of the file, never the start */
	assert_true(
	    strncmp(err + strlen(want), "3:", 2) == 0 || strncmp(err + strlen(want), "4:", 2) == 0);

	p = put("tab.yaml", "a: 1\nb: 2\nc: d: e\n");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "kubeconfig %s: line 3: ", p);
	assert_memory_equal(err, want, strlen(want));

	p = put("empty.yaml", "");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "empty document"));

	p = put("list.yaml", "- a\n- b\n");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "expected a mapping"));
}

static void test_missing_server_cluster_user(void **state)
{
	struct kube_config c;
	char err[512];
	const char *p = kubeconfig(
	    "nosrv.yaml", "    certificate-authority-data: aGk=\n", "    token: t\n", "");

	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "cluster \"c1\" has no server"));

	p = put("nocl.yaml", "contexts:\n- name: x\n  context: {cluster: gone}\n"
	                     "current-context: x\n");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "cluster \"gone\" not found"));

	p = put("nouser.yaml", "clusters:\n- name: c\n  cluster: {server: https://a:1}\n"
	                       "contexts:\n- name: x\n  context: {cluster: c, user: nobody}\n"
	                       "current-context: x\n");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "user \"nobody\" not found"));
}

static void test_cannot_read(void **state)
{
	struct kube_config c;
	char err[512];

	assert_int_equal(kubeconfig_load_file("/nonexistent/x", &c, err, sizeof err), -1);
	assert_string_equal(
	    err, "kubeconfig /nonexistent/x: cannot read: No such file or directory");
	assert_int_equal(kubeconfig_load("/nonexistent/x", &c, err, sizeof err), -1);
	assert_string_equal(
	    err, "kubeconfig /nonexistent/x: cannot read: No such file or directory");
}

static void test_kubeconfig_env_list(void **state)
{
	struct kube_config c;
	char err[512], env[3 * PATH_MAX];
	const char *a, *b;

	a = kubeconfig("env-a.yaml", "    server: https://a:1\n", "    token: ta\n", "");
	b = kubeconfig("env-b.yaml", "    server: https://b:1\n", "    token: tb\n", "");
	snprintf(env, sizeof env, "/nonexistent/one::%s:%s", a, b);
	setenv("KUBECONFIG", env, 1);
	/* in-cluster is ignored when KUBECONFIG names a file */
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), 0);
	assert_string_equal(c.server, "https://a:1");
	assert_string_equal(c.token, "ta");
	kubeconfig_clear(&c);

	/* the explicit path wins over KUBECONFIG */
	assert_int_equal(kubeconfig_load(b, &c, err, sizeof err), 0);
	assert_string_equal(c.server, "https://b:1");
	kubeconfig_clear(&c);

	/* no file of the list exists: an error, not a silent fallback */
	setenv("KUBECONFIG", "/nonexistent/one:/nonexistent/two", 1);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "KUBECONFIG=/nonexistent/one:/nonexistent/two"));
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_incluster(void **state)
{
	struct kube_config c;
	char err[512], want[PATH_MAX + 32];
	const char *home = getenv("HOME");
	char *oldhome = home != NULL ? strdup(home) : NULL;

	mkdir(path_of("sa"), 0700);
	put("sa/token", "sa-token\n");
	put("sa/ca.crt", "pem");
	put("sa/namespace", "vmpool-system\n");
	setenv("VMPOOL_SA_DIR", path_of("sa"), 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), 0);
	assert_string_equal(c.server, "https://10.96.0.1:443");
	snprintf(want, sizeof want, "%s/sa/token", tmpdir);
	assert_string_equal(c.token_file, want);
	assert_null(c.token);
	snprintf(want, sizeof want, "%s/sa/ca.crt", tmpdir);
	assert_string_equal(c.ca_file, want);
	assert_string_equal(c.namespace, "vmpool-system");
	assert_non_null(strstr(c.source, "in-cluster"));
	kubeconfig_clear(&c);

	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	kubeconfig_clear(&c);

	/* no service host: ~/.kube/config */
	unsetenv("KUBERNETES_SERVICE_HOST");
	mkdir(path_of(".kube"), 0700);
	kubeconfig(".kube/config", "    server: https://home:1\n", "    token: th\n", "");
	setenv("HOME", tmpdir, 1);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), 0);
	assert_string_equal(c.server, "https://home:1");
	kubeconfig_clear(&c);

	if (oldhome != NULL)
		setenv("HOME", oldhome, 1);
	free(oldhome);
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("VMPOOL_SA_DIR");
}

static void test_escape(void **state)
{
	char *e = kube_escape("a b/c?d=é~x.y_z-1");

	assert_string_equal(e, "a%20b%2Fc%3Fd%3D%C3%A9~x.y_z-1");
	free(e);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* size and nesting are capped before libyaml builds a document */
static void test_size_and_depth(void **state)
{
	struct kube_config c;
	char err[512], *text;
	size_t n = 200 * 1024, i;
	double t0;

	text = malloc(2 * 1024 * 1024 + 1);
	assert_non_null(text);
	/* 200 KB of nested flow sequences: quadratic in libyaml's loader (~20 s) */
	for (i = 0; i < n / 2; i++)
		text[i] = '[';
	for (; i < n; i++)
		text[i] = ']';
	text[n] = '\0';
	t0 = now_s();
	assert_int_equal(kubeconfig_load_file(put("deep.yaml", text), &c, err, sizeof err), -1);
	assert_true(now_s() - t0 < 2.0);
	assert_non_null(strstr(err, "nested deeper than 32 levels"));
	/* the same unclosed, and as flow mappings in a block mapping */
	text[n / 2] = '\0';
	assert_int_equal(kubeconfig_load_file(put("deep2.yaml", text), &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "nested deeper"));
	strcpy(text, "clusters: ");
	for (i = strlen(text); i < n; i++)
		text[i] = (i % 2) ? '{' : 'a';
	text[n] = '\0';
	t0 = now_s();
	assert_int_equal(kubeconfig_load_file(put("deep3.yaml", text), &c, err, sizeof err), -1);
	assert_true(now_s() - t0 < 2.0);
	/* 32 levels are fine as far as nesting goes (the file is not a kubeconfig) */
	for (i = 0; i < 31; i++)
		text[i] = '[';
	for (; i < 62; i++)
		text[i] = ']';
	text[62] = '\0';
	assert_int_equal(kubeconfig_load_file(put("ok32.yaml", text), &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "expected a mapping"));
	/* over 1 MiB: refused before it is read */
	memset(text, '#', 2 * 1024 * 1024);
	text[2 * 1024 * 1024] = '\0';
	assert_int_equal(kubeconfig_load_file(put("big.yaml", text), &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot read: larger than 1048576 bytes"));
	free(text);
}

/* a FIFO (or a device) as kubeconfig or token file: refused at once, never waited on */
static void test_fifo_refused(void **state)
{
	struct kube_config c;
	char err[512], fifo[PATH_MAX];
	size_t len;

	snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(20); /* a blocking open() would hang the test: fail it instead */
	assert_int_equal(kubeconfig_load_file(fifo, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot read: not a regular file"));
	errno = 0;
	assert_null(kubeconfig_read_file(fifo, &len));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(kubeconfig_load_file("/dev/zero", &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a regular file"));
	alarm(0);
}

/* why there is no current context, and the KUBECONFIG list that kubectl would merge */
static void test_context_causes(void **state)
{
	struct kube_config c;
	char err[1024], env[2 * PATH_MAX];
	const char *p;

	p = put("cc-empty.yaml", "clusters: []\ncurrent-context: \"\"\n");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "current-context is empty"));
	p = put("cc-list.yaml", "clusters: []\ncurrent-context: [a, b]\n");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "current-context is a list, not a context name"));
	p = put("cc-none.yaml", "clusters: []\n");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "no current-context set"));
	snprintf(env, sizeof env, "%s:%s", p, put("cc-other.yaml", "current-context: x\n"));
	setenv("KUBECONFIG", env, 1);
	/* merged: the second file's current-context names a context no file has */
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "current-context \"x\" not found"));
	assert_non_null(strstr(err, "kubeconfig KUBECONFIG="));
	/* no file of the list sets one */
	snprintf(env, sizeof env, "%s:%s", p, path_of("cc-empty.yaml"));
	put("cc-empty.yaml", "");
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "no file sets current-context"));
	unsetenv("KUBECONFIG");
}

/* KUBECONFIG=a:b as kubectl merges it: per map key the first file wins, current-context from
 * the first file that sets it, relative names against the file that defines the entry */
static void test_merge(void **state)
{
	struct kube_config c;
	char err[1024], env[4 * PATH_MAX], want[PATH_MAX + 32];

	mkdir(path_of("m1"), 0700);
	mkdir(path_of("m2"), 0700);
	/* a: no current-context; defines cluster c1 and user u1 */
	put("m1/a.yaml", "clusters:\n"
	                 "- name: c1\n"
	                 "  cluster: {server: https://first:1, certificate-authority: ca.crt}\n"
	                 "users:\n"
	                 "- name: u1\n"
	                 "  user: {tokenFile: tok}\n");
	/* b: the context, current-context, a second c1 (loses) and user u2 */
	put("m2/b.yaml", "clusters:\n"
	                 "- name: c1\n"
	                 "  cluster: {server: https://second:1}\n"
	                 "users:\n"
	                 "- name: u2\n"
	                 "  user: {token: t2}\n"
	                 "contexts:\n"
	                 "- name: ctx\n"
	                 "  context: {cluster: c1, user: u1, namespace: nb}\n"
	                 "- name: ctx2\n"
	                 "  context: {cluster: c1, user: u2}\n"
	                 "current-context: ctx\n");
	/* c: its current-context comes too late to count */
	put("c.yaml", "current-context: ctx2\n");
	snprintf(env, sizeof env, "%s:/nonexistent:%s:%s:%s", path_of("m1/a.yaml"),
	    path_of("m2/b.yaml"), path_of("m1/a.yaml"), path_of("c.yaml"));
	setenv("KUBECONFIG", env, 1);
	if (kubeconfig_load(NULL, &c, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.server, "https://first:1");
	snprintf(want, sizeof want, "%s/m1/ca.crt", tmpdir);
	assert_string_equal(c.ca_file, want);
	snprintf(want, sizeof want, "%s/m1/tok", tmpdir);
	assert_string_equal(c.token_file, want);
	assert_string_equal(c.namespace, "nb");
	assert_non_null(strstr(c.source, "KUBECONFIG="));
	kubeconfig_clear(&c);

	/* the file that sets current-context first wins: c before b */
	snprintf(env, sizeof env, "%s:%s:%s", path_of("c.yaml"), path_of("m2/b.yaml"),
	    path_of("m1/a.yaml"));
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), 0);
	assert_string_equal(c.server, "https://second:1");
	assert_string_equal(c.token, "t2");
	assert_string_equal(c.namespace, "default");
	kubeconfig_clear(&c);

	/* a broken file in the list is an error naming it, not skipped */
	put("broken.yaml", "clusters: [\n");
	snprintf(env, sizeof env, "%s:%s", path_of("m2/b.yaml"), path_of("broken.yaml"));
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "broken.yaml: line"));
	assert_int_equal(
	    kubeconfig_load_list("/nonexistent/a:/nonexistent/b", &c, err, sizeof err), 0);
	unsetenv("KUBECONFIG");
}

/* users[].user.exec, as client-go's ExecConfig */
static void test_exec(void **state)
{
	struct kube_config c, d;
	char err[1024], want[PATH_MAX + 32];
	const char *p = kubeconfig("exec.yaml", "    server: https://a:1\n",
	    "    exec:\n"
	    "      apiVersion: client.authentication.k8s.io/v1\n"
	    "      command: bin/get-token\n"
	    "      args: [--cluster, x, \"\"]\n"
	    "      env:\n"
	    "      - {name: A, value: \"1=2\"}\n"
	    "      - {name: B}\n"
	    "      installHint: install get-token\n"
	    "      provideClusterInfo: true\n"
	    "      interactiveMode: Never\n",
	    "");

	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), 0);
	assert_non_null(c.exec);
	assert_string_equal(c.exec->api_version, "client.authentication.k8s.io/v1");
	snprintf(want, sizeof want, "%s/bin/get-token", tmpdir);
	assert_string_equal(c.exec->command, want);
	assert_string_equal(c.exec->args[0], "--cluster");
	assert_string_equal(c.exec->args[1], "x");
	assert_string_equal(c.exec->args[2], "");
	assert_null(c.exec->args[3]);
	assert_string_equal(c.exec->env[0], "A=1=2");
	assert_string_equal(c.exec->env[1], "B=");
	assert_null(c.exec->env[2]);
	assert_string_equal(c.exec->install_hint, "install get-token");
	assert_int_equal(c.exec->provide_cluster_info, 1);
	kubeconfig_copy(&d, &c);
	kubeconfig_clear(&c);
	assert_string_equal(d.exec->args[1], "x");
	assert_string_equal(d.exec->env[0], "A=1=2");
	kubeconfig_clear(&d);

	/* v1beta1, a command from PATH, no args */
	p = kubeconfig("exec2.yaml", "    server: https://a:1\n",
	    "    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws}\n", "");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), 0);
	assert_string_equal(c.exec->command, "aws");
	assert_null(c.exec->args);
	assert_int_equal(c.exec->provide_cluster_info, 0);
	kubeconfig_clear(&c);

	/* a static token wins, as in client-go */
	p = kubeconfig("exec3.yaml", "    server: https://a:1\n",
	    "    token: t\n"
	    "    exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}\n",
	    "");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), 0);
	assert_null(c.exec);
	assert_string_equal(c.token, "t");
	kubeconfig_clear(&c);
}

/* what we do not do is refused, naming it */
static void test_unsupported(void **state)
{
	static const struct {
		const char *user, *msg;
	} cases[] = {
	    {"    exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}\n",
	        "exec apiVersion \"client.authentication.k8s.io/v1alpha1\" is not supported"},
	    {"    exec: {command: x}\n", "exec has no apiVersion"},
	    {"    exec: {apiVersion: client.authentication.k8s.io/v1}\n", "exec has no command"},
	    {"    exec: {apiVersion: client.authentication.k8s.io/v1, command: x, "
	     "interactiveMode: Always}\n",
	        "interactiveMode \"Always\" is not supported"},
	    {"    exec: {apiVersion: client.authentication.k8s.io/v1, command: x, args: [[a]]}\n",
	        "exec args must be a list of strings"},
	    {"    exec: {apiVersion: client.authentication.k8s.io/v1, command: x, env: [a]}\n",
	        "exec env must be a list"},
	    {"    exec: x\n", "exec is not a mapping"},
	    {"    auth-provider: {name: oidc}\n", "auth-provider \"oidc\" is not supported"},
	    {"    token: t\n    auth-provider: {name: gcp}\n",
	        "auth-provider \"gcp\" is not supported"},
	    {"    username: a\n    password: b\n", "username/password (basic authentication)"},
	    {"    token: t\n    as: admin\n", "impersonation (as) is not supported"},
	    {"    token: t\n    as-groups: [g]\n", "impersonation (as-groups)"},
	};
	struct kube_config c;
	char err[1024];
	const char *p;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		p = kubeconfig("unsup.yaml", "    server: https://a:1\n", cases[i].user, "");
		assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
		if (strstr(err, cases[i].msg) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].msg);
		assert_non_null(strstr(err, "user \"u1\""));
		assert_null(c.server);
	}
	p = kubeconfig("proxy-bad.yaml", "    server: https://a:1\n    proxy-url: ftp://p:1\n",
	    "    {}\n", "");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "proxy-url \"ftp://p:1\" is not supported"));
	p = kubeconfig("insecure-ca.yaml",
	    "    server: https://a:1\n    insecure-skip-tls-verify: true\n"
	    "    certificate-authority: ca.crt\n",
	    "    {}\n", "");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "insecure-skip-tls-verify together with a certificate"));
}

static void test_proxy_tls_server_name(void **state)
{
	struct kube_config c;
	char err[1024];
	const char *p = kubeconfig("proxy.yaml",
	    "    server: https://10.0.0.1:6443\n    proxy-url: socks5://127.0.0.1:1080\n"
	    "    tls-server-name: api.internal\n",
	    "    token: t\n", "");

	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), 0);
	assert_string_equal(c.proxy_url, "socks5://127.0.0.1:1080");
	assert_string_equal(c.tls_server_name, "api.internal");
	kubeconfig_clear(&c);
}

/* what a plugin prints: kubeexec_parse() */
static void test_exec_credential(void **state)
{
	static const char *v1 = "client.authentication.k8s.io/v1";
	static const struct {
		const char *out, *err;
	} bad[] = {
	    {"", "not one JSON object"},
	    {"{\"kind\":\"ExecCredential\"} x", "not one JSON object"},
	    {"[1]", "not a JSON object"},
	    {"{\"kind\":\"Other\",\"apiVersion\":\"client.authentication.k8s.io/v1\"}",
	        "kind \"Other\""},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
	     "v1beta1\",\"status\":{\"token\":\"t\"}}",
	        "apiVersion \"client.authentication.k8s.io/v1beta1\", the kubeconfig says"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\"}",
	        "has no status"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
	     "\"status\":{}}",
	        "neither a token nor a client certificate"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
	     "\"status\":{\"clientCertificateData\":\"C\"}}",
	        "without its key"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
	     "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"tomorrow\"}}",
	        "expirationTimestamp \"tomorrow\" is not RFC 3339"},
	};
	const char *good = "{\"kind\":\"ExecCredential\",\"apiVersion\":"
	                   "\"client.authentication.k8s.io/v1\",\"spec\":{\"interactive\":false},"
	                   "\"status\":{\"token\":\"tok-1\",\"expirationTimestamp\":"
	                   "\"2030-01-02T03:04:05Z\"}}\n";
	const char *cert = "{\"kind\":\"ExecCredential\",\"apiVersion\":"
	                   "\"client.authentication.k8s.io/v1\",\"status\":{"
	                   "\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\n\","
	                   "\"clientKeyData\":\"-----BEGIN KEY-----\\n\"}}";
	struct kube_cred c;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(
		    kubeexec_parse(v1, bad[i].out, strlen(bad[i].out), &c, err, sizeof err), -1);
		if (strstr(err, bad[i].err) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].err);
		assert_null(c.token);
	}
	assert_int_equal(kubeexec_parse(v1, good, strlen(good), &c, err, sizeof err), 0);
	assert_string_equal(c.token, "tok-1");
	assert_true(c.expiry > 1893553444.0 && c.expiry < 1893553446.0);
	assert_null(c.cert);
	kube_cred_clear(&c);
	assert_int_equal(kubeexec_parse(v1, cert, strlen(cert), &c, err, sizeof err), 0);
	assert_null(c.token);
	assert_int_equal(c.expiry, 0);
	assert_int_equal(c.cert_len, 28);
	assert_memory_equal(c.cert, "-----BEGIN CERTIFICATE-----\n", 28);
	assert_memory_equal(c.key, "-----BEGIN KEY-----\n", c.key_len);
	kube_cred_clear(&c);
}

/* KUBERNETES_EXEC_INFO: spec.interactive always, spec.cluster with provideClusterInfo */
static void test_exec_info(void **state)
{
	struct kube_config c;
	char err[1024], *info;
	const char *p;

	put("info-ca.crt", "hi");
	p = kubeconfig("info.yaml",
	    "    server: https://a:1\n    certificate-authority: info-ca.crt\n"
	    "    tls-server-name: api.internal\n    proxy-url: http://proxy:3128\n",
	    "    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: x}\n", "");
	assert_int_equal(kubeconfig_load_file(p, &c, err, sizeof err), 0);
	info = kubeexec_info(&c);
	assert_string_equal(info, "{\"kind\":\"ExecCredential\",\"apiVersion\":"
	                          "\"client.authentication.k8s.io/v1beta1\",\"spec\":{"
	                          "\"interactive\":false}}");
	free(info);
	c.exec->provide_cluster_info = 1;
	info = kubeexec_info(&c);
	assert_string_equal(info,
	    "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
	    "v1beta1\",\"spec\":{\"interactive\":false,\"cluster\":{\"server\":\"https://"
	    "a:1\",\"tls-server-name\":\"api.internal\",\"certificate-authority-data\":\"aGk=\","
	    "\"proxy-url\":\"http://proxy:3128\"}}}");
	free(info);
	kubeconfig_clear(&c);
}

/* --master: replaces the server found, or stands alone when there is no configuration */
static void test_server_override(void **state)
{
	struct kube_config c;
	char err[1024];
	const char *home = getenv("HOME");
	char *oldhome = home != NULL ? strdup(home) : NULL;
	const char *p = kubeconfig("ovr.yaml", "    server: https://a:1\n", "    token: t\n", "");

	kubeconfig_override_server("https://master:8443/");
	assert_int_equal(kubeconfig_load(p, &c, err, sizeof err), 0);
	assert_string_equal(c.server, "https://master:8443");
	assert_string_equal(c.token, "t");
	kubeconfig_clear(&c);
	/* nothing to load: the master alone */
	mkdir(path_of("emptyhome"), 0700);
	setenv("HOME", path_of("emptyhome"), 1);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), 0);
	assert_string_equal(c.server, "https://master:8443");
	assert_null(c.token);
	assert_string_equal(c.source, "--master");
	kubeconfig_clear(&c);
	/* a named file that cannot be read is still an error */
	assert_int_equal(kubeconfig_load("/nonexistent/k", &c, err, sizeof err), -1);
	kubeconfig_override_server(NULL);
	assert_int_equal(kubeconfig_load(NULL, &c, err, sizeof err), -1);
	if (oldhome != NULL)
		setenv("HOME", oldhome, 1);
	free(oldhome);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token),
	    cmocka_unit_test(test_tokenfile_relative),
	    cmocka_unit_test(test_ca_data),
	    cmocka_unit_test(test_bad_base64),
	    cmocka_unit_test(test_insecure_namespace),
	    cmocka_unit_test(test_current_context_missing),
	    cmocka_unit_test(test_bad_yaml),
	    cmocka_unit_test(test_missing_server_cluster_user),
	    cmocka_unit_test(test_cannot_read),
	    cmocka_unit_test(test_kubeconfig_env_list),
	    cmocka_unit_test(test_incluster),
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_size_and_depth),
	    cmocka_unit_test(test_fifo_refused),
	    cmocka_unit_test(test_context_causes),
	    cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_exec),
	    cmocka_unit_test(test_unsupported),
	    cmocka_unit_test(test_proxy_tls_server_name),
	    cmocka_unit_test(test_server_override),
	    cmocka_unit_test(test_exec_credential),
	    cmocka_unit_test(test_exec_info),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
