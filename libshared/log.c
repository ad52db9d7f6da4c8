#include "log.h"
#include "buf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MF_LOG_MAX_PKGS 32
#define MF_LOG_PKG_LEN 32
#define MF_LOG_LINE_MAX 16384

static const char *level_names[] = {
	"tracedata", "traceauth", "trace", "debug", "info", "warn", "error", "fatal",
};

struct pkg_level {
	char pkg[MF_LOG_PKG_LEN];
	enum mf_log_level level;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pkg_level pkg_levels[MF_LOG_MAX_PKGS];
static size_t pkg_level_count;
static enum mf_log_level default_level = MF_LOG_INFO;
static char service_name[MF_LOG_PKG_LEN] = "mailfleet";
static int log_fd = 2;

void mf_log_init(const char *service)
{
	snprintf(service_name, sizeof(service_name), "%s", service);
}

void mf_log_set_fd(int fd)
{
	log_fd = fd;
}

int mf_log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *mf_log_level_name(enum mf_log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "unknown";
	return level_names[level];
}

static int set_level_locked(const char *pkg, enum mf_log_level level)
{
	if (pkg == NULL || pkg[0] == '\0') {
		default_level = level;
		return 0;
	}
	for (size_t i = 0; i < pkg_level_count; i++) {
		if (strcmp(pkg_levels[i].pkg, pkg) == 0) {
			pkg_levels[i].level = level;
			return 0;
		}
	}
	if (pkg_level_count == MF_LOG_MAX_PKGS || strlen(pkg) >= MF_LOG_PKG_LEN)
		return -1;
	snprintf(pkg_levels[pkg_level_count].pkg, MF_LOG_PKG_LEN, "%s", pkg);
	pkg_levels[pkg_level_count].level = level;
	pkg_level_count++;
	return 0;
}

int mf_log_set_level(const char *pkg, const char *level, const char **error_r)
{
	int l = mf_log_level_parse(level);
	int ret;

	if (l < 0) {
		*error_r = "unknown log level (want tracedata, traceauth, trace, debug, info, warn or error)";
		return -1;
	}
	pthread_mutex_lock(&log_lock);
	ret = set_level_locked(pkg, (enum mf_log_level)l);
	pthread_mutex_unlock(&log_lock);
	if (ret < 0)
		*error_r = "too many packages or package name too long";
	return ret;
}

int mf_log_apply_spec(const char *spec, const char **error_r)
{
	/* Validate everything first so that a bad spec changes nothing. */
	char *copy = mf_xstrdup(spec), *save = NULL, *tok;
	struct pkg_level parsed[MF_LOG_MAX_PKGS + 1];
	size_t n = 0;
	int ret = -1;

	for (tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		char *eq = strchr(tok, '=');
		const char *pkg = "", *lvl = tok;
		int l;

		if (eq != NULL) {
			*eq = '\0';
			pkg = tok;
			lvl = eq + 1;
			if (pkg[0] == '\0' || strlen(pkg) >= MF_LOG_PKG_LEN) {
				*error_r = "bad package name in log level spec";
				goto out;
			}
		}
		if ((l = mf_log_level_parse(lvl)) < 0) {
			*error_r = "unknown log level (want tracedata, traceauth, trace, debug, info, warn or error)";
			goto out;
		}
		if (n == MF_LOG_MAX_PKGS + 1) {
			*error_r = "too many packages in log level spec";
			goto out;
		}
		snprintf(parsed[n].pkg, MF_LOG_PKG_LEN, "%s", pkg);
		parsed[n].level = (enum mf_log_level)l;
		n++;
	}
	if (n == 0) {
		*error_r = "empty log level spec";
		goto out;
	}
	pthread_mutex_lock(&log_lock);
	ret = 0;
	for (size_t i = 0; i < n; i++)
		if (set_level_locked(parsed[i].pkg, parsed[i].level) < 0)
			ret = -1;
	pthread_mutex_unlock(&log_lock);
	if (ret < 0)
		*error_r = "too many packages in log level spec";
out:
	free(copy);
	return ret;
}

bool mf_log_enabled(const char *pkg, enum mf_log_level level)
{
	enum mf_log_level min;

	if (pkg == NULL)
		pkg = service_name;
	pthread_mutex_lock(&log_lock);
	min = default_level;
	for (size_t i = 0; i < pkg_level_count; i++) {
		if (strcmp(pkg_levels[i].pkg, pkg) == 0) {
			min = pkg_levels[i].level;
			break;
		}
	}
	pthread_mutex_unlock(&log_lock);
	return level >= min;
}

/* Appends s as a logfmt value: bare when safe, else quoted with escapes. */
static void append_value(struct mf_buf *b, const char *s, size_t len)
{
	bool quote = len == 0;

	for (size_t i = 0; i < len && !quote; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			quote = true;
	}
	if (!quote) {
		mf_buf_append(b, s, len);
		return;
	}
	mf_buf_append(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': mf_buf_append(b, "\\\"", 2); break;
		case '\\': mf_buf_append(b, "\\\\", 2); break;
		case '\n': mf_buf_append(b, "\\n", 2); break;
		case '\r': mf_buf_append(b, "\\r", 2); break;
		case '\t': mf_buf_append(b, "\\t", 2); break;
		default:
			if (c < ' ' || c == 0x7f)
				mf_buf_appendf(b, "\\x%02x", c);
			else
				mf_buf_append(b, &s[i], 1);
		}
	}
	mf_buf_append(b, "\"", 1);
}

/* The conversion specs handed to snprintf below were checked one by one by
 * this parser, and the compiler checks callers through mf_log's format
 * attribute. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* printf for logfmt fields: strings are quoted, other conversions are passed
 * to snprintf with their own argument type. */
static void append_fields(struct mf_buf *b, const char *fmt, va_list ap)
{
	const char *p = fmt;

	while (*p != '\0') {
		if (*p != '%') {
			mf_buf_append(b, p++, 1);
			continue;
		}
		const char *start = p++;
		bool star = false;
		int lmod = 0; /* 1 l, 2 ll, 3 z */

		if (*p == '%') {
			mf_buf_append(b, "%", 1);
			p++;
			continue;
		}
		if (p[0] == '.' && p[1] == '*') {
			star = true;
			p += 2;
		}
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		if (*p == 'l' && p[1] == 'l') {
			lmod = 2;
			p += 2;
		} else if (*p == 'l') {
			lmod = 1;
			p++;
		} else if (*p == 'z') {
			lmod = 3;
			p++;
		}
		char spec[32];
		size_t speclen = (size_t)(p - start) + 1;
		if (speclen >= sizeof(spec) || *p == '\0')
			return;
		memcpy(spec, start, speclen);
		spec[speclen] = '\0';
		char tmp[64];
		switch (*p) {
		case 's': {
			int n = star ? va_arg(ap, int) : -1;
			const char *s = va_arg(ap, const char *);
			if (s == NULL)
				s = "";
			append_value(b, s, n >= 0 ? strnlen(s, (size_t)n) : strlen(s));
			break;
		}
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			append_value(b, tmp, 1);
			break;
		case 'd': case 'i': case 'u': case 'x':
			if (lmod == 2)
				snprintf(tmp, sizeof(tmp), spec, va_arg(ap, long long));
			else if (lmod == 1)
				snprintf(tmp, sizeof(tmp), spec, va_arg(ap, long));
			else if (lmod == 3)
				snprintf(tmp, sizeof(tmp), spec, va_arg(ap, size_t));
			else
				snprintf(tmp, sizeof(tmp), spec, va_arg(ap, int));
			mf_buf_append_str(b, tmp);
			break;
		case 'f': case 'g':
			snprintf(tmp, sizeof(tmp), spec, va_arg(ap, double));
			mf_buf_append_str(b, tmp);
			break;
		case 'p':
			snprintf(tmp, sizeof(tmp), "%p", va_arg(ap, void *));
			mf_buf_append_str(b, tmp);
			break;
		default:
			return; /* unsupported conversion: stop rather than misread args */
		}
		p++;
	}
}

#pragma GCC diagnostic pop

static void emit(struct mf_buf *b)
{
	const char *p = b->data;
	size_t left = b->len;

	while (left > 0) {
		ssize_t n = write(log_fd, p, left);
		if (n <= 0)
			return;
		p += n;
		left -= (size_t)n;
	}
}

static void vlog(enum mf_log_level level, const char *pkg, const char *cid,
		 const char *msg, const char *fields, va_list ap)
{
	struct mf_buf b;

	if (pkg == NULL)
		pkg = service_name;
	mf_buf_init(&b, MF_LOG_LINE_MAX);
	mf_buf_appendf(&b, "l=%s m=", mf_log_level_name(level));
	append_value(&b, msg, strlen(msg));
	mf_buf_append_str(&b, " pkg=");
	append_value(&b, pkg, strlen(pkg));
	if (cid != NULL && cid[0] != '\0') {
		mf_buf_append_str(&b, " cid=");
		append_value(&b, cid, strlen(cid));
	}
	if (fields != NULL && fields[0] != '\0') {
		mf_buf_append(&b, " ", 1);
		append_fields(&b, fields, ap);
	}
	if (b.len == b.max) /* truncated by the cap: still end the line */
		b.len--;
	mf_buf_append(&b, "\n", 1);
	emit(&b);
	mf_buf_free(&b);
}

void mf_log(enum mf_log_level level, const char *pkg, const char *cid,
	    const char *msg, const char *fields, ...)
{
	va_list ap;

	if (!mf_log_enabled(pkg, level))
		return;
	va_start(ap, fields);
	vlog(level, pkg, cid, msg, fields, ap);
	va_end(ap);
}

void mf_log_trace(const char *pkg, const char *cid, const char *dir,
		  enum mf_log_trace_kind kind, const char *data, size_t len)
{
	enum mf_log_level need = MF_LOG_TRACE;
	bool hide = false;

	if (!mf_log_enabled(pkg, MF_LOG_TRACE))
		return;
	if (kind == MF_TRACE_AUTH)
		hide = !mf_log_enabled(pkg, MF_LOG_TRACEAUTH);
	else if (kind == MF_TRACE_DATA)
		hide = !mf_log_enabled(pkg, MF_LOG_TRACEDATA);
	if (hide)
		mf_log(need, pkg, cid, dir, "line=%s len=%zu", "***", len);
	else
		mf_log(need, pkg, cid, dir, "line=%.*s", (int)len, data);
}

void mf_fatal(const char *fmt, ...)
{
	struct mf_buf b;
	va_list ap;

	mf_buf_init(&b, MF_LOG_LINE_MAX);
	va_start(ap, fmt);
	mf_buf_vappendf(&b, fmt, ap);
	va_end(ap);
	mf_log(MF_LOG_FATAL, NULL, NULL, mf_buf_cstr(&b), NULL);
	mf_buf_free(&b);
	exit(1);
}
