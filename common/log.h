/*
 * log.h: the one log API, in Kubernetes' structured logging formats on stderr:
 *
 *   text (klog):  I1202 12:00:00.000000    1234 plan.c:219] "sync ok" logger="vmpool-planner" pool="ns/p"
 *   json:         {"ts":1606910400000.123,"caller":"plan.c:219","msg":"sync ok","v":2,
 *                  "logger":"vmpool-planner","pool":{"name":"p","namespace":"ns"}}
 *
 * The text header is klog's: severity (I, W, E, F), month and day, UTC time to the
 * microsecond, pid, file:line. JSON is component-base's: ts in milliseconds since the epoch
 * (a float), caller, msg, v (the verbosity; absent on errors, which carry "err"), then the
 * key/value pairs; an object reference is {"name","namespace"} in JSON and ns/name in text.
 * "logger" is the process name (vmpoold's stages share its stderr).
 *
 * Verbosity (--v=N, -v adds one): errors, warnings and V(0) info always (unless N < 0: quiet);
 * V(2) steady-state lines (a pool synced, a status written); V(4) debugging (log_debug).
 *
 * Two ways to call it:
 *  - printf style (kept from before): log_info(key, fmt, ...), log_warnx, log_warn (appends
 *    strerror(errno)), log_error, log_debug (V(4)), log_v(N, key, fmt, ...). key is an
 *    object key "ns/name" (or NULL) and goes out as object="ns/name".
 *  - key/value: log_infos(msg, LOG_POOL(key), LOG_STR("op", op), LOG_INT("n", 3)),
 *    log_vs(2, msg, ...), log_warns(msg, ...), log_errors(err, msg, ...): msg is a constant
 *    sentence, the variable parts are pairs. Values are escaped in both formats.
 */
#ifndef VMPOOL_LOG_H
#define VMPOOL_LOG_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>

#define LOG_FMT_TEXT 0
#define LOG_FMT_JSON 1

/* Exit codes shared by every program. EXIT_CONFIG tells the supervisor "do not restart". */
#define EXIT_CONFIG 78

/* verbosity of log_debug() lines */
#define LOG_V_DEBUG 4

enum log_sev { LOG_SEV_INFO, LOG_SEV_WARN, LOG_SEV_ERROR, LOG_SEV_FATAL };

void log_init(const char *procname, int verbose, int format);
void log_setverbose(int verbose);
const char *log_procname(void);
/* 1 if lines of verbosity v are printed */
int log_v_enabled(int v);

/* one key/value pair of a structured line */
enum log_kv_type { LOG_KV_STR, LOG_KV_INT, LOG_KV_FLOAT, LOG_KV_REF };
struct log_kv {
	const char *key;
	enum log_kv_type type;
	const char *s; /* LOG_KV_STR, LOG_KV_REF ("ns/name" or "name"); NULL prints as "" */
	long long i;
	double d;
};
#define LOG_STR(k, v)   ((struct log_kv){.key = (k), .type = LOG_KV_STR, .s = (v)})
#define LOG_INT(k, v)   ((struct log_kv){.key = (k), .type = LOG_KV_INT, .i = (long long)(v)})
#define LOG_FLOAT(k, v) ((struct log_kv){.key = (k), .type = LOG_KV_FLOAT, .d = (double)(v)})
/* an object reference from its key "ns/name": pool="ns/name", "pool":{"name","namespace"} */
#define LOG_REF(k, nsname) ((struct log_kv){.key = (k), .type = LOG_KV_REF, .s = (nsname)})
#define LOG_POOL(nsname)   LOG_REF("pool", nsname)

/* the pairs of a call as (array, count); the leading empty element makes an empty list legal */
#define LOG_KVS(...)                                                                               \
	((const struct log_kv[]){{.key = NULL}, __VA_ARGS__}) + 1,                                 \
	    sizeof((const struct log_kv[]){{.key = NULL}, __VA_ARGS__}) / sizeof(struct log_kv) -  \
	        1

/* The writers behind the macros. err may be NULL (not an error line). */
void log_kv(enum log_sev, int v, const char *file, int line, const char *err, const char *msg,
    const struct log_kv *kv, size_t nkv);
void log_printf(enum log_sev, int v, int errnum, const char *file, int line, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void log_exit_fatal(int code, int errnum, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6), noreturn));

/* key/value calls; the pairs are evaluated only when the line is printed */
#define log_vs(v, msg, ...)                                                                        \
	do {                                                                                       \
		if (log_v_enabled(v))                                                              \
			log_kv(LOG_SEV_INFO, (v), __FILE__, __LINE__, NULL, (msg),                 \
			    LOG_KVS(__VA_ARGS__));                                                 \
	} while (0)
#define log_infos(msg, ...) log_vs(0, msg, __VA_ARGS__)
#define log_warns(msg, ...)                                                                        \
	log_kv(LOG_SEV_WARN, 0, __FILE__, __LINE__, NULL, (msg), LOG_KVS(__VA_ARGS__))
/* klog.ErrorS: err is the error's text ("" if there is none, e.g. an HTTP status) */
#define log_errors(err, msg, ...)                                                                  \
	log_kv(LOG_SEV_ERROR, 0, __FILE__, __LINE__, (err) != NULL ? (err) : "", (msg),            \
	    LOG_KVS(__VA_ARGS__))

/* printf style; key may be NULL; log_warn appends strerror(errno) */
#define log_warn(key, ...)  log_printf(LOG_SEV_WARN, 0, errno, __FILE__, __LINE__, key, __VA_ARGS__)
#define log_warnx(key, ...) log_printf(LOG_SEV_WARN, 0, -1, __FILE__, __LINE__, key, __VA_ARGS__)
#define log_error(key, ...) log_printf(LOG_SEV_ERROR, 0, -1, __FILE__, __LINE__, key, __VA_ARGS__)
#define log_info(key, ...)  log_printf(LOG_SEV_INFO, 0, -1, __FILE__, __LINE__, key, __VA_ARGS__)
#define log_v(v, key, ...)                                                                         \
	do {                                                                                       \
		if (log_v_enabled(v))                                                              \
			log_printf(LOG_SEV_INFO, (v), -1, __FILE__, __LINE__, key, __VA_ARGS__);   \
	} while (0)
#define log_debug(key, ...) log_v(LOG_V_DEBUG, key, __VA_ARGS__)

/* fatal: start-up or a broken internal invariant only; exits 1 (fatal appends strerror) */
#define fatal(...)  log_exit_fatal(1, errno, __FILE__, __LINE__, __VA_ARGS__)
#define fatalx(...) log_exit_fatal(1, -1, __FILE__, __LINE__, __VA_ARGS__)
/* start-up configuration error: logs and exits EXIT_CONFIG */
#define fatal_config(...) log_exit_fatal(EXIT_CONFIG, -1, __FILE__, __LINE__, __VA_ARGS__)

/* Escapes control characters and non-ASCII bytes (\xNN) and truncates to 512 bytes.
 * Returns one of a small ring of static buffers: use it within one log call. */
const char *log_escape(const char *s);

/* Formats one line into out (no trailing newline added beyond what the format needs):
 * what log_kv() writes, for tests. ts_ns is the time in nanoseconds since the epoch. */
size_t log_format_line(char *out, size_t outlen, long long ts_ns, enum log_sev, int v,
    const char *file, int line, const char *err, const char *msg, const struct log_kv *kv,
    size_t nkv);

#endif
