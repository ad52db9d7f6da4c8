/* smtp_command: SMTP command line and MAIL/RCPT argument parsing. */
#include "smtp_command.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "error.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_VERB_HELO }, { "EHLO", SMTP_VERB_EHLO }, { "MAIL", SMTP_VERB_MAIL },
	{ "RCPT", SMTP_VERB_RCPT }, { "DATA", SMTP_VERB_DATA }, { "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET }, { "NOOP", SMTP_VERB_NOOP }, { "QUIT", SMTP_VERB_QUIT },
	{ "HELP", SMTP_VERB_HELP }, { "VRFY", SMTP_VERB_VRFY }, { "EXPN", SMTP_VERB_EXPN },
	{ "STARTTLS", SMTP_VERB_STARTTLS }, { "AUTH", SMTP_VERB_AUTH },
};

enum smtp_verb smtp_verb_parse(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == len && strncasecmp(verbs[i].name, name, len) == 0)
			return verbs[i].verb;
	}
	return SMTP_VERB_UNKNOWN;
}

const char *smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (verbs[i].verb == verb)
			return verbs[i].name;
	}
	return "?";
}

int smtp_command_split(const char *line, size_t len, struct smtp_command *cmd_r,
		       const char **error_r)
{
	size_t i = 0;

	memset(cmd_r, 0, sizeof(*cmd_r));
	if (len == 0) {
		*error_r = "500 5.5.2 empty command";
		return -1;
	}
	if (memchr(line, '\0', len) != NULL) {
		*error_r = "500 5.5.2 NUL character in command";
		return -1;
	}
	while (i < len && line[i] != ' ')
		i++;
	cmd_r->verb = smtp_verb_parse(line, i);
	if (i < len) {
		cmd_r->args = line + i + 1;
		cmd_r->args_len = len - i - 1;
	} else {
		cmd_r->args = line + len;
		cmd_r->args_len = 0;
	}
	return 0;
}

/* --- xtext ------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int smtp_xtext_decode(const char *s, size_t len, char **out_r, const char **error_r)
{
	struct mf_buf b;
	int ret = -1;

	mf_buf_init(&b, 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			/* RFC 3461 4: hexchar = "+" 2(%x30-39 / %x41-46), upper case
			 * only; lower case is accepted as senders get it wrong. */
			int hi, lo;
			if (len - i < 3) {
				*error_r = "truncated +XX escape";
				goto out;
			}
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0) {
				*error_r = "bad +XX escape";
				goto out;
			}
			c = (unsigned char)(hi * 16 + lo);
			if (c == 0) {
				*error_r = "escaped NUL";
				goto out;
			}
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			*error_r = "character not allowed in xtext";
			goto out;
		}
		(void)mf_buf_append(&b, &c, 1);
	}
	*out_r = mf_buf_steal(&b);
	ret = 0;
out:
	mf_buf_free(&b);
	return ret;
}

/* Appends the UTF-8 encoding of code point cp. */
static void append_utf8(struct mf_buf *b, unsigned long cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	(void)mf_buf_append(b, u, n);
}

/* Returns the length of the valid UTF-8 sequence at s (len bytes left),
 * or 0 when it is not valid (overlong, surrogate, out of range). */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
	unsigned long cp;
	size_t n;

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
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int smtp_utf8_xtext_decode(const char *s, size_t len, bool allow_utf8, char **out_r,
			   const char **error_r)
{
	const unsigned char *u = (const unsigned char *)s;
	struct mf_buf b;
	int ret = -1;

	mf_buf_init(&b, 0);
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		if (c == '\\') {
			/* RFC 6533 3: EmbeddedUnicodeChar = "\x{" 2*6 HEXDIG "}" */
			unsigned long cp = 0;
			size_t j = i + 3, digits = 0;
			if (len - i < 5 || s[i + 1] != 'x' || s[i + 2] != '{') {
				*error_r = "bad \\x{...} escape";
				goto out;
			}
			while (j < len && hexval(s[j]) >= 0 && digits < 7) {
				cp = cp * 16 + (unsigned long)hexval(s[j]);
				j++;
				digits++;
			}
			if (j >= len || s[j] != '}' || digits < 2 || digits > 6 || cp == 0 ||
			    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
				*error_r = "bad \\x{...} escape";
				goto out;
			}
			append_utf8(&b, cp);
			i = j + 1;
		} else if (c >= 0x80) {
			size_t n = allow_utf8 ? utf8_seq_len(u + i, len - i) : 0;
			if (n == 0) {
				*error_r = allow_utf8 ? "invalid UTF-8" :
					"UTF-8 needs SMTPUTF8 (or \\x{...} escapes)";
				goto out;
			}
			(void)mf_buf_append(&b, u + i, n);
			i += n;
		} else if (c < 33 || c > 126 || c == '+' || c == '=') {
			*error_r = "character not allowed in utf-8-addr-xtext";
			goto out;
		} else {
			(void)mf_buf_append(&b, &c, 1);
			i++;
		}
	}
	*out_r = mf_buf_steal(&b);
	ret = 0;
out:
	mf_buf_free(&b);
	return ret;
}

/* --- paths and parameters --------------------------------------------- */

struct param {
	const char *key;
	size_t key_len;
	const char *value;   /* NULL: no "=" */
	size_t value_len;
};

/* Finds the end of a path starting with '<' at s[0]: the index of the
 * closing '>' (quoted strings may contain '>'), or -1. */
static long path_end(const char *s, size_t len)
{
	bool quoted = false;

	for (size_t i = 1; i < len; i++) {
		if (quoted && s[i] == '\\' && i + 1 < len) {
			i++;
		} else if (s[i] == '"') {
			quoted = !quoted;
		} else if (!quoted && s[i] == '>') {
			return (long)i;
		}
	}
	return -1;
}

/* Splits "KEY[=VALUE] KEY..." (after the path).  Returns 0 or -1 with a
 * reply in error_r. */
static int split_params(const char *s, size_t len, struct param *params, size_t *count_r,
			const char **error_r)
{
	size_t n = 0, i = 0;

	while (i < len) {
		size_t start, eq = 0;
		if (s[i] == ' ') {
			i++;
			continue;
		}
		if (n == SMTP_PARAMS_MAX) {
			*error_r = "501 5.5.4 too many parameters";
			return -1;
		}
		start = i;
		while (i < len && s[i] != ' ') {
			if (s[i] == '=' && eq == 0)
				eq = i;
			i++;
		}
		params[n].key = s + start;
		params[n].key_len = (eq != 0 ? eq : i) - start;
		params[n].value = eq != 0 ? s + eq + 1 : NULL;
		params[n].value_len = eq != 0 ? i - eq - 1 : 0;
		if (params[n].key_len == 0) {
			*error_r = "501 5.5.4 empty parameter name";
			return -1;
		}
		/* RFC 5321 4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		for (size_t k = 0; k < params[n].key_len; k++) {
			char c = params[n].key[k];
			bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				     (c >= '0' && c <= '9');
			if (!alnum && (k == 0 || c != '-')) {
				*error_r = "501 5.5.4 bad parameter name";
				return -1;
			}
		}
		for (size_t k = 0; k < n; k++) {
			if (params[k].key_len == params[n].key_len &&
			    strncasecmp(params[k].key, params[n].key, params[n].key_len) == 0) {
				*error_r = "501 5.5.4 parameter given twice";
				return -1;
			}
		}
		n++;
	}
	*count_r = n;
	return 0;
}

static bool key_is(const struct param *p, const char *name)
{
	return strlen(name) == p->key_len && strncasecmp(p->key, name, p->key_len) == 0;
}

static bool value_is(const struct param *p, const char *name)
{
	return p->value != NULL && strlen(name) == p->value_len &&
	       strncasecmp(p->value, name, p->value_len) == 0;
}

/* Parses "<...>" at the start of s; returns the inside (without a source
 * route) and the rest after '>'.  Returns 0 or -1 with a reply. */
static int split_path(const char *s, size_t len, const char *what, const char **in_r,
		      size_t *in_len_r, const char **rest_r, size_t *rest_len_r,
		      const char **error_r)
{
	long end;
	const char *in;
	size_t in_len;

	if (len == 0 || s[0] != '<' || (end = path_end(s, len)) < 0) {
		*error_r = mf_errorf("501 5.5.4 bad %s syntax: expected <address>", what);
		return -1;
	}
	in = s + 1;
	in_len = (size_t)end - 1;
	/* RFC 5321 4.1.2 / C: a source route "@a,@b:" must be accepted and
	 * ignored. */
	if (in_len > 0 && in[0] == '@') {
		const char *colon = memchr(in, ':', in_len);
		if (colon == NULL) {
			*error_r = mf_errorf("501 5.5.4 bad %s syntax: bad source route", what);
			return -1;
		}
		in_len -= (size_t)(colon + 1 - in);
		in = colon + 1;
	}
	*in_r = in;
	*in_len_r = in_len;
	*rest_r = s + end + 1;
	*rest_len_r = len - (size_t)end - 1;
	if (*rest_len_r > 0 && **rest_r != ' ') {
		*error_r = mf_errorf("501 5.5.4 bad %s syntax: text after the path", what);
		return -1;
	}
	return 0;
}

/* Skips "FROM:" / "TO:" (case-insensitive) and spaces after the colon,
 * which some senders put there although RFC 5321 has none. */
static int skip_prefix(const char **s, size_t *len, const char *prefix, const char *what,
		       const char **error_r)
{
	size_t plen = strlen(prefix);

	if (*len < plen || strncasecmp(*s, prefix, plen) != 0) {
		*error_r = mf_errorf("501 5.5.4 bad %s syntax: expected %s", what, prefix);
		return -1;
	}
	*s += plen;
	*len -= plen;
	while (*len > 0 && **s == ' ') {
		(*s)++;
		(*len)--;
	}
	return 0;
}

static int parse_uint(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return 0;
}

int smtp_parse_mail(const char *args, size_t len, struct smtp_mail *mail_r,
		    const char **error_r)
{
	struct param params[SMTP_PARAMS_MAX];
	const char *in, *rest, *err;
	size_t in_len, rest_len, nparams;

	memset(mail_r, 0, sizeof(*mail_r));
	if (skip_prefix(&args, &len, "FROM:", "MAIL", error_r) < 0 ||
	    split_path(args, len, "MAIL", &in, &in_len, &rest, &rest_len, error_r) < 0 ||
	    split_params(rest, rest_len, params, &nparams, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < nparams; i++) {
		const struct param *p = &params[i];
		if (key_is(p, "SIZE")) {
			if (p->value == NULL || parse_uint(p->value, p->value_len, &mail_r->size) < 0) {
				*error_r = "501 5.5.4 bad SIZE value";
				goto fail;
			}
			mail_r->has_size = true;
		} else if (key_is(p, "BODY")) {
			if (value_is(p, "7BIT"))
				mail_r->body = SMTP_BODY_7BIT;
			else if (value_is(p, "8BITMIME"))
				mail_r->body = SMTP_BODY_8BITMIME;
			else if (value_is(p, "BINARYMIME"))
				mail_r->body = SMTP_BODY_BINARYMIME;
			else {
				*error_r = "501 5.5.4 bad BODY value";
				goto fail;
			}
		} else if (key_is(p, "SMTPUTF8")) {
			if (p->value != NULL) {
				*error_r = "501 5.5.4 SMTPUTF8 takes no value";
				goto fail;
			}
			mail_r->smtputf8 = true;
		} else if (key_is(p, "REQUIRETLS")) {
			if (p->value != NULL) {
				*error_r = "501 5.5.4 REQUIRETLS takes no value";
				goto fail;
			}
			mail_r->requiretls = true;
		} else if (key_is(p, "RET")) {
			if (value_is(p, "FULL"))
				mail_r->ret = SMTP_RET_FULL;
			else if (value_is(p, "HDRS"))
				mail_r->ret = SMTP_RET_HDRS;
			else {
				*error_r = "501 5.5.4 bad RET value";
				goto fail;
			}
		} else if (key_is(p, "ENVID")) {
			if (p->value == NULL ||
			    smtp_xtext_decode(p->value, p->value_len, &mail_r->envid, &err) < 0) {
				*error_r = "501 5.5.4 bad ENVID value";
				goto fail;
			}
			if (strlen(mail_r->envid) > SMTP_ENVID_MAX) {
				*error_r = "501 5.5.4 ENVID too long";
				goto fail;
			}
		} else {
			*error_r = mf_errorf("555 5.5.4 unsupported MAIL parameter %.*s",
					     (int)(p->key_len > 32 ? 32 : p->key_len), p->key);
			goto fail;
		}
	}
	if (in_len == 0) {
		mail_r->null_sender = true;
		return 0;
	}
	if (mf_address_parse(in, in_len, &mail_r->from, &err) < 0) {
		*error_r = mf_errorf("553 5.1.7 bad sender address: %s", err);
		goto fail;
	}
	if (mail_r->from.utf8 && !mail_r->smtputf8) {
		*error_r = "553 5.6.7 non-ASCII sender address needs SMTPUTF8";
		goto fail;
	}
	return 0;
fail:
	smtp_mail_free(mail_r);
	return -1;
}

void smtp_mail_free(struct smtp_mail *mail)
{
	if (mail->from.localpart != NULL || mail->from.domain != NULL)
		mf_address_free(&mail->from);
	free(mail->envid);
	memset(mail, 0, sizeof(*mail));
}

static int parse_notify(const struct param *p, unsigned *notify_r, const char **error_r)
{
	unsigned notify = 0;
	size_t i = 0;

	if (p->value == NULL || p->value_len == 0)
		goto bad;
	while (i <= p->value_len) {
		const char *w = p->value + i;
		const char *comma = memchr(w, ',', p->value_len - i);
		size_t wl = comma != NULL ? (size_t)(comma - w) : p->value_len - i;
		unsigned bit;
		if (wl == 5 && strncasecmp(w, "NEVER", 5) == 0)
			bit = SMTP_NOTIFY_NEVER;
		else if (wl == 7 && strncasecmp(w, "SUCCESS", 7) == 0)
			bit = SMTP_NOTIFY_SUCCESS;
		else if (wl == 7 && strncasecmp(w, "FAILURE", 7) == 0)
			bit = SMTP_NOTIFY_FAILURE;
		else if (wl == 5 && strncasecmp(w, "DELAY", 5) == 0)
			bit = SMTP_NOTIFY_DELAY;
		else
			goto bad;
		if ((notify & bit) != 0)
			goto bad;
		notify |= bit;
		i += wl + 1;
		if (comma == NULL)
			break;
	}
	/* RFC 3461 4.1: NEVER must appear alone. */
	if ((notify & SMTP_NOTIFY_NEVER) != 0 && notify != SMTP_NOTIFY_NEVER)
		goto bad;
	*notify_r = notify;
	return 0;
bad:
	*error_r = "501 5.5.4 bad NOTIFY value";
	return -1;
}

static int parse_orcpt(const struct param *p, bool smtputf8, struct smtp_rcpt *rcpt,
		       const char **error_r)
{
	const char *semi, *err;
	size_t tlen;

	if (p->value == NULL || p->value_len > SMTP_ORCPT_MAX ||
	    (semi = memchr(p->value, ';', p->value_len)) == NULL)
		goto bad;
	tlen = (size_t)(semi - p->value);
	if (tlen == 0)
		goto bad;
	for (size_t i = 0; i < tlen; i++) {
		char c = p->value[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			goto bad;
	}
	rcpt->orcpt_type = mf_xstrndup(p->value, tlen);
	for (char *c = rcpt->orcpt_type; *c != '\0'; c++) {
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	}
	if (strcmp(rcpt->orcpt_type, "utf-8") == 0) {
		if (smtp_utf8_xtext_decode(semi + 1, p->value_len - tlen - 1, smtputf8,
					   &rcpt->orcpt, &err) < 0)
			goto bad;
	} else if (smtp_xtext_decode(semi + 1, p->value_len - tlen - 1, &rcpt->orcpt, &err) < 0) {
		goto bad;
	}
	return 0;
bad:
	*error_r = "501 5.5.4 bad ORCPT value";
	return -1;
}

int smtp_parse_rcpt(const char *args, size_t len, bool smtputf8, struct smtp_rcpt *rcpt_r,
		    const char **error_r)
{
	struct param params[SMTP_PARAMS_MAX];
	const char *in, *rest, *err;
	size_t in_len, rest_len, nparams;

	memset(rcpt_r, 0, sizeof(*rcpt_r));
	if (skip_prefix(&args, &len, "TO:", "RCPT", error_r) < 0 ||
	    split_path(args, len, "RCPT", &in, &in_len, &rest, &rest_len, error_r) < 0 ||
	    split_params(rest, rest_len, params, &nparams, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < nparams; i++) {
		const struct param *p = &params[i];
		if (key_is(p, "NOTIFY")) {
			if (parse_notify(p, &rcpt_r->notify, error_r) < 0)
				goto fail;
		} else if (key_is(p, "ORCPT")) {
			if (parse_orcpt(p, smtputf8, rcpt_r, error_r) < 0)
				goto fail;
		} else {
			*error_r = mf_errorf("555 5.5.4 unsupported RCPT parameter %.*s",
					     (int)(p->key_len > 32 ? 32 : p->key_len), p->key);
			goto fail;
		}
	}
	if (in_len == 0) {
		*error_r = "501 5.1.3 empty recipient address";
		goto fail;
	}
	/* RFC 5321 4.5.1: "postmaster" without a domain must be accepted. */
	if (in_len == 10 && strncasecmp(in, "postmaster", 10) == 0) {
		rcpt_r->postmaster = true;
		rcpt_r->to.localpart = mf_xstrdup("postmaster");
		rcpt_r->to.domain = mf_xstrdup("");
		rcpt_r->to.domain_unicode = mf_xstrdup("");
		return 0;
	}
	if (mf_address_parse(in, in_len, &rcpt_r->to, &err) < 0) {
		*error_r = mf_errorf("553 5.1.3 bad recipient address: %s", err);
		goto fail;
	}
	if (rcpt_r->to.utf8 && !smtputf8) {
		*error_r = "553 5.6.7 non-ASCII recipient address needs SMTPUTF8";
		goto fail;
	}
	return 0;
fail:
	smtp_rcpt_free(rcpt_r);
	return -1;
}

void smtp_rcpt_free(struct smtp_rcpt *rcpt)
{
	if (rcpt->to.localpart != NULL || rcpt->to.domain != NULL)
		mf_address_free(&rcpt->to);
	free(rcpt->orcpt_type);
	free(rcpt->orcpt);
	memset(rcpt, 0, sizeof(*rcpt));
}

int smtp_parse_bdat(const char *args, size_t len, uint64_t *size_r, bool *last_r,
		    const char **error_r)
{
	const char *sp = memchr(args, ' ', len);
	size_t nlen = sp != NULL ? (size_t)(sp - args) : len;

	*last_r = false;
	if (parse_uint(args, nlen, size_r) < 0) {
		*error_r = "501 5.5.4 bad BDAT syntax: expected BDAT <size> [LAST]";
		return -1;
	}
	if (sp != NULL) {
		size_t rlen = len - nlen - 1;
		if (rlen != 4 || strncasecmp(sp + 1, "LAST", 4) != 0) {
			*error_r = "501 5.5.4 bad BDAT syntax: expected BDAT <size> [LAST]";
			return -1;
		}
		*last_r = true;
	}
	return 0;
}
