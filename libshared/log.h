/* log: logfmt lines on stderr.
 *
 *   l=info m="delivered" pkg=smtp-in cid=3f2a rcpt=a@b size=1234
 *
 * Levels are set per package (pkg) and can change at run time.  The trace
 * levels show protocol lines: "trace" hides AUTH payloads and message data
 * (printed as "***"), "traceauth" shows AUTH payloads, "tracedata" also shows
 * message data. */
#ifndef MF_LOG_H
#define MF_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum mf_log_level {
	MF_LOG_TRACEDATA = 0,
	MF_LOG_TRACEAUTH,
	MF_LOG_TRACE,
	MF_LOG_DEBUG,
	MF_LOG_INFO,
	MF_LOG_WARN,
	MF_LOG_ERROR,
	MF_LOG_FATAL,
};

/* Names the service; its name is the package of lines logged with pkg NULL. */
void mf_log_init(const char *service);
/* Sets the level of pkg (NULL or "": the default for all packages).
 * Returns 0, or -1 with error_r for an unknown level name. */
int mf_log_set_level(const char *pkg, const char *level, const char **error_r);
/* Parses "info" or "info,smtp-in=debug,imap=trace" and applies it.
 * Nothing is applied when the spec has an error. */
int mf_log_apply_spec(const char *spec, const char **error_r);
/* Returns the level for a name, or -1. */
int mf_log_level_parse(const char *name);
const char *mf_log_level_name(enum mf_log_level level);
bool mf_log_enabled(const char *pkg, enum mf_log_level level);

/* Logs msg with logfmt fields.  fields is a printf-like format whose %s
 * (and %.*s) values are quoted as logfmt needs, e.g.
 *   mf_log(MF_LOG_INFO, "smtp-in", cid, "delivered", "rcpt=%s size=%zu", r, n);
 * Supported conversions: %s %.*s %c %d %i %u %x %ld %lu %lld %llu %zu %zd
 * %f %g %p %%.  fields may be NULL. */
void mf_log(enum mf_log_level level, const char *pkg, const char *cid,
	    const char *msg, const char *fields, ...)
	__attribute__((format(printf, 5, 6)));

/* Kinds of protocol data, each hidden below its own trace level. */
enum mf_log_trace_kind {
	MF_TRACE_PROTO,  /* shown at trace */
	MF_TRACE_AUTH,   /* shown at traceauth, else "***" at trace */
	MF_TRACE_DATA,   /* shown at tracedata, else "***" at trace */
};
/* Logs one protocol line; dir is "C" (from client) or "S" (to client). */
void mf_log_trace(const char *pkg, const char *cid, const char *dir,
		  enum mf_log_trace_kind kind, const char *data, size_t len);

/* Sends log lines to fd instead of stderr (tests). */
void mf_log_set_fd(int fd);

/* Logs at fatal level and exits 1; for start-up errors and broken invariants. */
void mf_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define mf_log_error(pkg, cid, msg, ...) mf_log(MF_LOG_ERROR, pkg, cid, msg, __VA_ARGS__)
#define mf_log_warn(pkg, cid, msg, ...) mf_log(MF_LOG_WARN, pkg, cid, msg, __VA_ARGS__)
#define mf_log_info(pkg, cid, msg, ...) mf_log(MF_LOG_INFO, pkg, cid, msg, __VA_ARGS__)
#define mf_log_debug(pkg, cid, msg, ...) mf_log(MF_LOG_DEBUG, pkg, cid, msg, __VA_ARGS__)

#endif
