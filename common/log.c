/*
 * log.c: the one log API, in klog's text format or component-base's JSON format (log.h
 * shows both). Each line is written with a single write(2) so that lines from the
 * supervisor's children do not interleave. Nothing here allocates, so fatalx() is safe to
 * call when memory has run out.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_MSG_MAX     4096
#define LOG_LINE_MAX    ((LOG_MSG_MAX + 1024) * 6) /* room for every byte escaped */
#define LOG_ESCAPE_MAX  512
#define LOG_ESCAPE_RING 8

static const char *log_proc = "vmpool";
static int log_verbose;
static int log_format = LOG_FMT_TEXT;

/* a line being built in a caller's buffer; overflow is cut, never written past */
struct log_line {
	char *data;
	size_t cap; /* bytes of data, one kept for the newline */
	size_t len;
};

void log_init(const char *procname, int verbose, int format)
{
	if (procname != NULL)
		log_proc = procname;
	log_verbose = verbose;
	log_format = format == LOG_FMT_JSON ? LOG_FMT_JSON : LOG_FMT_TEXT;
}

void log_setverbose(int verbose)
{
	log_verbose = verbose;
}

const char *log_procname(void)
{
	return log_proc;
}

int log_v_enabled(int v)
{
	return log_verbose >= v;
}

static void line_add(struct log_line *l, const char *s, size_t n)
{
	if (n > l->cap - 1 - l->len)
		n = l->cap - 1 - l->len;
	memcpy(l->data + l->len, s, n);
	l->len += n;
}

static void line_str(struct log_line *l, const char *s)
{
	line_add(l, s, strlen(s));
}

static void line_fmt(struct log_line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void line_fmt(struct log_line *l, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		line_add(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at s, or 0 if the bytes there are not one. */
static size_t utf8_seqlen(const unsigned char *s)
{
	size_t n, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* The escape for an ASCII byte inside a quoted string, or NULL if it goes out as itself:
 * JSON's \u00XX, or Go's \xXX for the text format (strconv.Quote). */
static const char *quote_escape_byte(unsigned char ch, int json, char tmp[8])
{
	switch (ch) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\t':
		return "\\t";
	case '\r':
		return "\\r";
	}
	if (ch < 0x20 || ch == 0x7f) {
		snprintf(tmp, 8, json ? "\\u%04x" : "\\x%02x", ch);
		return tmp;
	}
	return NULL;
}

/*
 * Appends s as a quoted string: valid UTF-8 passes through; an invalid byte becomes U+FFFD
 * in JSON (so the line stays valid JSON) and \xNN in text (as Go's strconv.Quote does).
 */
static void line_quoted(struct log_line *l, const char *s, int json)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	const char *esc;
	char tmp[8];
	size_t n;

	line_str(l, "\"");
	while (*p != '\0') {
		if ((esc = quote_escape_byte(*p, json, tmp)) != NULL) {
			line_str(l, esc);
			p++;
		} else if ((n = utf8_seqlen(p)) == 0) {
			if (json)
				line_str(l, "\\ufffd");
			else
				line_fmt(l, "\\x%02x", *p);
			p++;
		} else {
			line_add(l, (const char *)p, n);
			p += n;
		}
	}
	line_str(l, "\"");
}

/* a float as JSON and Go print it; NaN and infinities as strings (zap's choice) */
static void line_float(struct log_line *l, double d, int json)
{
	if (isnan(d))
		line_str(l, "\"NaN\"");
	else if (isinf(d))
		line_str(l, d > 0 ? "\"+Inf\"" : "\"-Inf\"");
	else
		line_fmt(l, "%.15g", d);
	(void)json;
}

/* an object reference: ns/name in text, {"name":..,"namespace":..} in JSON */
static void line_ref(struct log_line *l, const char *nsname, int json)
{
	const char *s = nsname != NULL ? nsname : "";
	const char *slash = strchr(s, '/');
	char ns[256];

	if (!json) {
		line_quoted(l, s, 0);
		return;
	}
	line_str(l, "{\"name\":");
	line_quoted(l, slash != NULL ? slash + 1 : s, 1);
	if (slash != NULL) {
		snprintf(ns, sizeof ns, "%.*s", (int)(slash - s), s);
		line_str(l, ",\"namespace\":");
		line_quoted(l, ns, 1);
	}
	line_str(l, "}");
}

static void line_value(struct log_line *l, const struct log_kv *kv, int json)
{
	switch (kv->type) {
	case LOG_KV_INT:
		line_fmt(l, "%lld", kv->i);
		break;
	case LOG_KV_FLOAT:
		line_float(l, kv->d, json);
		break;
	case LOG_KV_REF:
		line_ref(l, kv->s, json);
		break;
	case LOG_KV_STR:
	default:
		line_quoted(l, kv->s, json);
		break;
	}
}

/* one key/value pair: ' key=value' in text, ',"key":value' in JSON */
static void line_pair(struct log_line *l, const struct log_kv *kv, int json)
{
	const char *key = kv->key != NULL && *kv->key != '\0' ? kv->key : "?";

	if (json) {
		line_str(l, ",");
		line_quoted(l, key, 1);
		line_str(l, ":");
	} else {
		line_str(l, " ");
		line_str(l, key); /* keys are our own constants */
		line_str(l, "=");
	}
	line_value(l, kv, json);
}

static const char *log_basename(const char *file)
{
	const char *slash = file != NULL ? strrchr(file, '/') : NULL;

	return slash != NULL ? slash + 1 : file != NULL ? file : "?";
}

/* klog's header: Lmmdd hh:mm:ss.uuuuuu pid file:line] (UTC) */
static void line_klog_header(
    struct log_line *l, long long ts_ns, enum log_sev sev, const char *file, int line)
{
	static const char sevc[] = "IWEF";
	time_t sec = (time_t)(ts_ns / 1000000000LL);
	struct tm tm;

	gmtime_r(&sec, &tm);
	line_fmt(l, "%c%02d%02d %02d:%02d:%02d.%06lld %7ld %s:%d] ", sevc[sev & 3], tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (ts_ns / 1000) % 1000000, (long)getpid(),
	    log_basename(file), line);
}

size_t log_format_line(char *out, size_t outlen, long long ts_ns, enum log_sev sev, int v,
    const char *file, int line, const char *err, const char *msg, const struct log_kv *kv,
    size_t nkv)
{
	struct log_line l = {out, outlen, 0};
	struct log_kv logger = LOG_STR("logger", log_proc);
	int json = log_format == LOG_FMT_JSON;
	int is_error = sev == LOG_SEV_ERROR || sev == LOG_SEV_FATAL;
	size_t i;

	if (outlen < 2)
		return 0;
	if (json) {
		line_fmt(
		    &l, "{\"ts\":%lld.%03lld,\"caller\":", ts_ns / 1000000, (ts_ns / 1000) % 1000);
		line_fmt(&l, "\"%s:%d\"", log_basename(file), line);
		line_str(&l, ",\"msg\":");
		line_quoted(&l, msg, 1);
		if (!is_error)
			line_fmt(&l, ",\"v\":%d", v);
	} else {
		line_klog_header(&l, ts_ns, sev, file, line);
		line_quoted(&l, msg, 0);
	}
	if (err != NULL) {
		struct log_kv e = LOG_STR("err", err);

		line_pair(&l, &e, json);
	}
	line_pair(&l, &logger, json);
	for (i = 0; i < nkv; i++)
		line_pair(&l, &kv[i], json);
	if (json)
		line_str(&l, "}");
	l.data[l.len++] = '\n';
	return l.len;
}

static void log_write(const char *data, size_t len)
{
	size_t off;
	ssize_t n;

	for (off = 0; off < len; off += (size_t)n) {
		n = write(STDERR_FILENO, data + off, len - off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			break;
	}
}

void log_kv(enum log_sev sev, int v, const char *file, int line, const char *err, const char *msg,
    const struct log_kv *kv, size_t nkv)
{
	static char buf[LOG_LINE_MAX]; /* too large for a daemon's stack; not reentrant */
	struct timespec ts;
	int saved = errno;

	if (sev == LOG_SEV_INFO && !log_v_enabled(v))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	log_write(
	    buf, log_format_line(buf, sizeof buf, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec,
	             sev, v, file, line, err, msg, kv, nkv));
	errno = saved;
}

/* errnum >= 0 appends ": strerror(errnum)" */
static void log_vprintf(enum log_sev sev, int v, int errnum, const char *file, int line,
    const char *key, const char *fmt, va_list ap) __attribute__((format(printf, 7, 0)));
static void log_vprintf(enum log_sev sev, int v, int errnum, const char *file, int line,
    const char *key, const char *fmt, va_list ap)
{
	static char msg[LOG_MSG_MAX];
	struct log_kv obj = LOG_REF("object", key);
	size_t len;

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (errnum >= 0) {
		len = strlen(msg);
		snprintf(msg + len, sizeof msg - len, ": %s", strerror(errnum));
	}
	log_kv(sev, v, file, line, NULL, msg, &obj, key != NULL && *key != '\0' ? 1 : 0);
}

void log_printf(enum log_sev sev, int v, int errnum, const char *file, int line, const char *key,
    const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (sev == LOG_SEV_INFO && !log_v_enabled(v))
		return;
	va_start(ap, fmt);
	log_vprintf(sev, v, errnum, file, line, key, fmt, ap);
	va_end(ap);
	errno = saved;
}

/*
 * _exit, not exit: a fatal path leaves memory allocated, and an ASan build's leak check at
 * exit would turn EXIT_CONFIG into 1, which the supervisor would treat as restartable.
 */
void log_exit_fatal(int code, int errnum, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprintf(LOG_SEV_FATAL, 0, errnum, file, line, NULL, fmt, ap);
	va_end(ap);
	fflush(NULL);
	_exit(code);
}

/*
 * Makes a string from the cluster or a peer safe for a text log line: backslash doubles,
 * control characters, DEL and non-ASCII bytes become \xNN, and the result is cut at
 * LOG_ESCAPE_MAX bytes with "..." appended. NULL prints as "(null)".
 */
const char *log_escape(const char *s)
{
	static char ring[LOG_ESCAPE_RING][LOG_ESCAPE_MAX + 4];
	static unsigned int next;
	const unsigned char *p;
	char *out, tmp[5];
	size_t len = 0, n;

	if (s == NULL)
		return "(null)";
	out = ring[next++ % LOG_ESCAPE_RING];
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\\')
			memcpy(tmp, "\\\\", (n = 2) + 1);
		else if (*p < 0x20 || *p >= 0x7f)
			n = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", *p);
		else {
			tmp[0] = (char)*p;
			n = 1;
		}
		if (len + n > LOG_ESCAPE_MAX) {
			memcpy(out + len, "...", 3);
			len += 3;
			break;
		}
		memcpy(out + len, tmp, n);
		len += n;
	}
	out[len] = '\0';
	return out;
}
