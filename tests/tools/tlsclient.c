/*
 * tlsclient.c: vmpool-tlsclient, one HTTPS GET through the libcurl and OpenSSL the programs
 * carry, for tests/tls/test_tls.sh: what the lean OpenSSL (scripts/build-openssl.sh) must keep.
 * A test tool, never part of the product image.
 *
 *   vmpool-tlsclient [--ca FILE] [--cert FILE] [--key FILE] [--tls-max 1.2|1.3]
 *                    [--curves LIST] [--ciphers LIST] [--tls13-ciphers LIST]
 *                    [--timeout SECONDS] URL
 *
 * CA, certificate and key are read into memory and handed to libcurl as PEM blobs with the
 * TLS options common/kube.c (kreq_tls) sets for a kubeconfig's *-data fields. The answer's
 * body goes to stdout. Exit 0 on a 2xx answer; 1 when the transfer fails (curl's error on
 * stderr, "(CODE) message") or the answer is not 2xx; 2 on a usage or file error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define TLSCLIENT_FILE_MAX (1024 * 1024)

struct tlsclient_opts {
	const char *url;
	const char *ca, *cert, *key;
	const char *tls_max;
	const char *curves, *ciphers, *tls13_ciphers;
	long timeout;
};

/* the file at path, whole; NULL (the reason on stderr) when it cannot be read */
static char *tlsclient_slurp(const char *path, size_t *len)
{
	FILE *f;
	char *buf;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "vmpool-tlsclient: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(TLSCLIENT_FILE_MAX)) == NULL) {
		fclose(f);
		fprintf(stderr, "vmpool-tlsclient: out of memory\n");
		return NULL;
	}
	n = fread(buf, 1, TLSCLIENT_FILE_MAX, f);
	if (ferror(f) || n == 0 || n == TLSCLIENT_FILE_MAX) {
		fprintf(stderr, "vmpool-tlsclient: %s: %s\n", path,
		    ferror(f) ? "read error"
		    : n == 0  ? "empty"
		              : "too large");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

static void tlsclient_usage(void)
{
	fprintf(stderr, "usage: vmpool-tlsclient [--ca FILE] [--cert FILE] [--key FILE] "
	                "[--tls-max 1.2|1.3]\n"
	                "                        [--curves LIST] [--ciphers LIST] "
	                "[--tls13-ciphers LIST]\n"
	                "                        [--timeout SECONDS] URL\n");
}

static int tlsclient_args(struct tlsclient_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"ca", required_argument, NULL, 'a'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"tls-max", required_argument, NULL, 'm'},
	    {"curves", required_argument, NULL, 'e'},
	    {"ciphers", required_argument, NULL, 'p'},
	    {"tls13-ciphers", required_argument, NULL, '3'},
	    {"timeout", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->timeout = 20;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			o->ca = optarg;
			break;
		case 'c':
			o->cert = optarg;
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "1.2") != 0 && strcmp(optarg, "1.3") != 0)
				return -1;
			o->tls_max = optarg;
			break;
		case 'e':
			o->curves = optarg;
			break;
		case 'p':
			o->ciphers = optarg;
			break;
		case '3':
			o->tls13_ciphers = optarg;
			break;
		case 't':
			o->timeout = strtol(optarg, NULL, 10);
			if (o->timeout <= 0)
				return -1;
			break;
		default:
			return -1;
		}
	}
	if (optind != argc - 1)
		return -1;
	o->url = argv[optind];
	return 0;
}

/*
 * The PEM blobs, as kreq_tls sets them: borrowed (CURL_BLOB_NOCOPY), each with its type.
 * The buffers outlive the transfer (main frees them after curl_easy_cleanup).
 */
static int tlsclient_blobs(CURL *e, const struct tlsclient_opts *o, char *data[3])
{
	struct curl_blob b = {.flags = CURL_BLOB_NOCOPY};

	if (o->ca != NULL) {
		if ((data[0] = tlsclient_slurp(o->ca, &b.len)) == NULL)
			return -1;
		b.data = data[0];
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (o->cert != NULL) {
		if ((data[1] = tlsclient_slurp(o->cert, &b.len)) == NULL)
			return -1;
		b.data = data[1];
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (o->key != NULL) {
		if ((data[2] = tlsclient_slurp(o->key, &b.len)) == NULL)
			return -1;
		b.data = data[2];
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	return 0;
}

/* what the test varies; kube.c sets none of these, libcurl's defaults are what it gets */
static int tlsclient_tuning(CURL *e, const struct tlsclient_opts *o)
{
	long v;

	if (o->tls_max != NULL) {
		v = strcmp(o->tls_max, "1.2") == 0 ? CURL_SSLVERSION_MAX_TLSv1_2
		                                   : CURL_SSLVERSION_MAX_TLSv1_3;
		if (curl_easy_setopt(e, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2 | v) !=
		    CURLE_OK)
			return -1;
	}
	if (o->curves != NULL && curl_easy_setopt(e, CURLOPT_SSL_EC_CURVES, o->curves) != CURLE_OK)
		return -1;
	if (o->ciphers != NULL &&
	    curl_easy_setopt(e, CURLOPT_SSL_CIPHER_LIST, o->ciphers) != CURLE_OK)
		return -1;
	if (o->tls13_ciphers != NULL &&
	    curl_easy_setopt(e, CURLOPT_TLS13_CIPHERS, o->tls13_ciphers) != CURLE_OK)
		return -1;
	return 0;
}

static int tlsclient_get(CURL *e, const struct tlsclient_opts *o)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	long code = 0;

	curl_easy_setopt(e, CURLOPT_URL, o->url);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, o->timeout);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, o->timeout);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	/* kreq_tls, with a CA (no insecure-skip-tls-verify) */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	rc = curl_easy_perform(e);
	fflush(stdout);
	if (rc != CURLE_OK) {
		fprintf(stderr, "vmpool-tlsclient: %s: (%d) %s\n", o->url, (int)rc,
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		return 1;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		fprintf(stderr, "vmpool-tlsclient: %s: HTTP %ld\n", o->url, code);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct tlsclient_opts o;
	char *data[3] = {NULL, NULL, NULL};
	CURL *e;
	int rc = 2, i;

	if (tlsclient_args(&o, argc, argv) == -1) {
		tlsclient_usage();
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "vmpool-tlsclient: curl_global_init failed\n");
		return 2;
	}
	if ((e = curl_easy_init()) == NULL) {
		fprintf(stderr, "vmpool-tlsclient: curl_easy_init failed\n");
		curl_global_cleanup();
		return 2;
	}
	if (tlsclient_blobs(e, &o, data) == 0) {
		if (tlsclient_tuning(e, &o) == 0)
			rc = tlsclient_get(e, &o);
		else
			fprintf(stderr, "vmpool-tlsclient: this libcurl refuses an option\n");
	}
	curl_easy_cleanup(e);
	for (i = 0; i < 3; i++)
		free(data[i]);
	curl_global_cleanup();
	return rc;
}
