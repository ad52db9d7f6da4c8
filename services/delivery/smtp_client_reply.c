#include "smtp_client_reply.h"
#include "error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void smtp_client_reply_init(struct smtp_client_reply *r)
{
	memset(r, 0, sizeof(*r));
	mf_buf_init(&r->text, SMTP_CLIENT_REPLY_TEXT_MAX);
}

void smtp_client_reply_reset(struct smtp_client_reply *r)
{
	r->code = 0;
	r->enhanced[0] = '\0';
	r->nlines = 0;
	r->complete = false;
	mf_buf_reset(&r->text);
}

void smtp_client_reply_free(struct smtp_client_reply *r)
{
	mf_buf_free(&r->text);
}

/* Length of an enhanced code "c.sss.ddd" at s (RFC 3463 2) followed by a
 * space or the end, or 0. */
static size_t enhanced_len(const char *s, size_t len, char class)
{
	size_t i = 0, n;

	if (len < 5 || s[0] != class || s[1] != '.')
		return 0;
	i = 2;
	for (n = 0; i < len && isdigit((unsigned char)s[i]) && n < 4; i++, n++)
		;
	if (n < 1 || n > 3 || i >= len || s[i] != '.')
		return 0;
	i++;
	for (n = 0; i < len && isdigit((unsigned char)s[i]) && n < 4; i++, n++)
		;
	if (n < 1 || n > 3 || (i < len && s[i] != ' '))
		return 0;
	return i;
}

int smtp_client_reply_feed(struct smtp_client_reply *r, const char *line, size_t len,
			   const char **error_r)
{
	unsigned code;
	bool last;
	size_t el;

	if (r->complete)
		smtp_client_reply_reset(r);
	if (len > SMTP_CLIENT_REPLY_LINE_MAX) {
		*error_r = "reply line too long";
		return -1;
	}
	if (r->nlines >= SMTP_CLIENT_REPLY_LINES_MAX) {
		*error_r = "too many reply lines";
		return -1;
	}
	if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2])) {
		*error_r = "malformed reply: no code";
		return -1;
	}
	code = (unsigned)(line[0] - '0') * 100 + (unsigned)(line[1] - '0') * 10 +
	       (unsigned)(line[2] - '0');
	if (code < 200 || code > 599) {
		*error_r = mf_errorf("malformed reply: code %u", code);
		return -1;
	}
	if (len > 3 && line[3] != ' ' && line[3] != '-') {
		*error_r = "malformed reply: bad separator";
		return -1;
	}
	if (r->nlines > 0 && code != r->code) {
		/* RFC 5321 4.2.1: every line of a reply has the same code. */
		*error_r = "malformed reply: code changes within the reply";
		return -1;
	}
	last = len == 3 || line[3] == ' ';
	line += len > 3 ? 4 : 3;
	len -= len > 3 ? 4 : 3;
	el = enhanced_len(line, len, (char)('0' + code / 100));
	if (el > 0) {
		if (r->nlines == 0) {
			memcpy(r->enhanced, line, el);
			r->enhanced[el] = '\0';
		}
		line += el;
		len -= el;
		if (len > 0 && *line == ' ') {
			line++;
			len--;
		}
	}
	if ((r->nlines > 0 && mf_buf_append(&r->text, "\n", 1) < 0) ||
	    mf_buf_append(&r->text, line, len) < 0) {
		*error_r = "reply text too long";
		return -1;
	}
	/* NUL bytes would cut the text short later; show them as '?'. */
	for (size_t i = r->text.len - len; i < r->text.len; i++)
		if (r->text.data[i] == '\0' || r->text.data[i] == '\r')
			r->text.data[i] = '?';
	r->code = code;
	r->nlines++;
	r->complete = last;
	return last ? 1 : 0;
}

static bool keyword(const char *line, size_t len, const char *kw, const char **args_r)
{
	size_t kl = strlen(kw);

	if (len < kl || strncasecmp(line, kw, kl) != 0 || (len > kl && line[kl] != ' '))
		return false;
	*args_r = len > kl ? line + kl + 1 : line + len;
	return true;
}

/* "AUTH PLAIN LOGIN ...": the mechanisms we can use as a client. */
static void auth_mechs(const char *args, const char *end, struct smtp_client_ext *ext)
{
	while (args < end) {
		const char *w;
		while (args < end && (*args == ' ' || *args == '='))
			args++;
		w = args;
		while (args < end && *args != ' ')
			args++;
		if (args - w == 5 && strncasecmp(w, "PLAIN", 5) == 0)
			ext->auth_plain = true;
		else if (args - w == 5 && strncasecmp(w, "LOGIN", 5) == 0)
			ext->auth_login = true;
	}
}

void smtp_client_ext_parse(const struct smtp_client_reply *r, struct smtp_client_ext *ext)
{
	const char *p = mf_buf_cstr(&r->text), *nl, *args;
	bool first = true;

	memset(ext, 0, sizeof(*ext));
	for (; p != NULL; p = nl != NULL ? nl + 1 : NULL, first = false) {
		size_t len;
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (first)
			continue;
		if (keyword(p, len, "STARTTLS", &args))
			ext->starttls = true;
		else if (keyword(p, len, "PIPELINING", &args))
			ext->pipelining = true;
		else if (keyword(p, len, "8BITMIME", &args))
			ext->eightbitmime = true;
		else if (keyword(p, len, "SMTPUTF8", &args))
			ext->smtputf8 = true;
		else if (keyword(p, len, "REQUIRETLS", &args))
			ext->requiretls = true;
		else if (keyword(p, len, "DSN", &args))
			ext->dsn = true;
		else if (keyword(p, len, "AUTH", &args))
			auth_mechs(args, p + len, ext);
		else if (keyword(p, len, "SIZE", &args)) {
			ext->size = true;
			ext->size_max = strtoull(args, NULL, 10);
		} else if (keyword(p, len, "LIMITS", &args)) {
			/* RFC 9422: "LIMITS RCPTMAX=n MAILMAX=n ..." */
			const char *end = p + len;
			while (args < end) {
				while (args < end && *args == ' ')
					args++;
				if (end - args > 8 && strncasecmp(args, "RCPTMAX=", 8) == 0) {
					unsigned long v = strtoul(args + 8, NULL, 10);
					ext->rcptmax = v > 100000 ? 100000 : (unsigned)v;
				}
				while (args < end && *args != ' ')
					args++;
			}
		}
	}
}

bool smtp_client_reply_too_many_rcpts(unsigned code)
{
	return code == 452 || code == 552;
}
