/* sub_mailargs: FUTURERELEASE and AUTH= parameters of MAIL (see header). */
#include "sub_mailargs.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "error.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads exactly n digits at s[*pos]. */
static int digits(const char *s, size_t len, size_t *pos, unsigned n, int *v_r)
{
	int v = 0;

	if (*pos + n > len)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		if (!is_digit(s[*pos + i]))
			return -1;
		v = v * 10 + (s[*pos + i] - '0');
	}
	*pos += n;
	*v_r = v;
	return 0;
}

static int expect(const char *s, size_t len, size_t *pos, char c)
{
	if (*pos >= len || (s[*pos] != c && !(c >= 'A' && c <= 'Z' && s[*pos] == c + 32)))
		return -1;
	(*pos)++;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int sub_datetime_parse(const char *s, size_t len, int64_t *unix_ms_r, const char **error_r)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, frac_ms = 0;
	size_t pos = 0;

	if (len > SUB_DATETIME_MAX)
		goto bad;
	if (digits(s, len, &pos, 4, &y) < 0 || expect(s, len, &pos, '-') < 0 ||
	    digits(s, len, &pos, 2, &mo) < 0 || expect(s, len, &pos, '-') < 0 ||
	    digits(s, len, &pos, 2, &d) < 0 || expect(s, len, &pos, 'T') < 0 ||
	    digits(s, len, &pos, 2, &h) < 0 || expect(s, len, &pos, ':') < 0 ||
	    digits(s, len, &pos, 2, &mi) < 0 || expect(s, len, &pos, ':') < 0 ||
	    digits(s, len, &pos, 2, &sec) < 0)
		goto bad;
	if (pos < len && s[pos] == '.') {
		unsigned n = 0;
		pos++;
		while (pos < len && is_digit(s[pos])) {
			if (n < 3)
				frac_ms = frac_ms * 10 + (s[pos] - '0');
			n++;
			pos++;
		}
		if (n == 0)
			goto bad;
		for (; n < 3; n++)
			frac_ms *= 10;
	}
	if (pos < len && (s[pos] == 'Z' || s[pos] == 'z')) {
		pos++;
	} else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
		sign = s[pos] == '+' ? 1 : -1;
		pos++;
		if (digits(s, len, &pos, 2, &oh) < 0 || expect(s, len, &pos, ':') < 0 ||
		    digits(s, len, &pos, 2, &om) < 0 || oh > 23 || om > 59)
			goto bad;
	} else {
		goto bad;
	}
	if (pos != len)
		goto bad;
	if (mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0) || h > 23 || mi > 59 || sec > 60)
		goto bad;
	if (sec == 60)
		sec = 59;   /* RFC 3339 5.7: a leap second; a second early is fine here */
	int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
		    sec - sign * (oh * 3600 + om * 60);
	*unix_ms_r = t * 1000 + frac_ms;
	return 0;
bad:
	*error_r = "not an RFC 3339 date-time";
	return -1;
}

void sub_datetime_format(int64_t unix_secs, char *buf, size_t size)
{
	int64_t days = unix_secs >= 0 ? unix_secs / 86400 : (unix_secs - 86399) / 86400;
	int64_t rem = unix_secs - days * 86400;
	/* civil_from_days (H. Hinnant) */
	int64_t z = days + 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	const unsigned d = doy - (153 * mp + 2) / 5 + 1;
	const unsigned m = mp < 10 ? mp + 3 : mp - 9;
	const int64_t y = (int64_t)yoe + era * 400 + (m <= 2);

	snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d,
		 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
}

/* Length of the reverse-path at the start of args (through its '>'), or 0
 * when there is none; quoted strings and backslash escapes may hide a '>'
 * (RFC 5321 4.1.2). */
static size_t path_len(const char *args, size_t len)
{
	bool quoted = false;
	size_t i = 0;

	while (i < len && args[i] != '<' && args[i] != ' ')
		i++;
	if (i >= len || args[i] != '<')
		return 0;
	for (i++; i < len; i++) {
		if (args[i] == '\\' && quoted)
			i++;
		else if (args[i] == '"')
			quoted = !quoted;
		else if (args[i] == '>' && !quoted)
			return i + 1;
	}
	return 0;
}

static bool key_is(const char *p, size_t klen, const char *name)
{
	return strlen(name) == klen && strncasecmp(p, name, klen) == 0;
}

int sub_mailargs_extract(const char *args, size_t len, int64_t now_ms, char **rest_r,
			 size_t *rest_len_r, int64_t *release_unix_ms_r, const char **error_r)
{
	struct mf_buf rest;
	size_t plen = path_len(args, len), i;
	bool have_for = false, have_until = false;
	int64_t release = 0;

	*rest_r = NULL;
	*release_unix_ms_r = 0;
	mf_buf_init(&rest, 0);
	if (plen == 0 || (plen < len && args[plen] != ' ')) {
		/* Not ours to judge: the shared parser gives the error. */
		mf_buf_append(&rest, args, len);
		goto done;
	}
	mf_buf_append(&rest, args, plen);
	for (i = plen; i < len;) {
		size_t start, eq = 0, klen, vlen;
		const char *v;

		while (i < len && args[i] == ' ')
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && args[i] != ' ') {
			if (args[i] == '=' && eq == 0)
				eq = i;
			i++;
		}
		klen = (eq != 0 ? eq : i) - start;
		v = eq != 0 ? args + eq + 1 : NULL;
		vlen = eq != 0 ? i - eq - 1 : 0;
		if (key_is(args + start, klen, "HOLDFOR")) {
			uint64_t secs = 0;
			if (have_for || have_until)
				goto twice;
			have_for = true;
			if (v == NULL || vlen == 0 || vlen > SUB_HOLDFOR_DIGITS_MAX)
				goto badfor;
			for (size_t k = 0; k < vlen; k++) {
				if (!is_digit(v[k]))
					goto badfor;
				secs = secs * 10 + (uint64_t)(v[k] - '0');
			}
			if (secs > (uint64_t)SUB_HOLD_MAX_SECS)
				goto toofar;
			release = secs == 0 ? 0 : now_ms + (int64_t)secs * 1000;
		} else if (key_is(args + start, klen, "HOLDUNTIL")) {
			const char *err;
			int64_t t;
			if (have_for || have_until)
				goto twice;
			have_until = true;
			if (v == NULL || sub_datetime_parse(v, vlen, &t, &err) < 0) {
				*error_r = "501 5.5.4 bad HOLDUNTIL value: not an RFC 3339 date-time";
				goto fail;
			}
			if (t > now_ms + SUB_HOLD_MAX_SECS * 1000)
				goto toofar;
			release = t > now_ms ? t : 0;
		} else if (key_is(args + start, klen, "AUTH")) {
			/* RFC 4954 5: the server may ignore it; the account
			 * that logged in is the sender. */
		} else {
			mf_buf_append(&rest, " ", 1);
			mf_buf_append(&rest, args + start, i - start);
		}
	}
done:
	*release_unix_ms_r = release;
	*rest_len_r = rest.len;
	*rest_r = mf_buf_steal(&rest);
	return 0;
twice:
	*error_r = "501 5.5.4 HOLDFOR and HOLDUNTIL may be given once, and not together";
	goto fail;
badfor:
	*error_r = "501 5.5.4 bad HOLDFOR value: 1 to 9 digits of seconds";
	goto fail;
toofar:
	*error_r = mf_errorf("501 5.5.4 release time too far ahead (at most %lld seconds, "
			     "60 days)", (long long)SUB_HOLD_MAX_SECS);
fail:
	mf_buf_free(&rest);
	return -1;
}
