/* imap_format: strings, flags, dates, base64 (see imap_format.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "imap_format.h"
#include "store.h"

static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static int atoi_4(const char *s)
{
	int v = 0;

	for (int i = 0; i < 4 && isdigit((unsigned char)s[i]); i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

bool imap_format_valid_utf8(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i < n)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

void imap_format_string(struct mf_buf *b, const char *str, size_t len, bool utf8)
{
	bool quotable = len <= IMAP_QUOTED_MAX;

	for (size_t i = 0; quotable && i < len; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c == '\r' || c == '\n' || c == '\0' || (c >= 0x80 && !utf8))
			quotable = false;
	}
	if (quotable && utf8 && !imap_format_valid_utf8(str, len))
		quotable = false;
	if (!quotable) {
		mf_buf_appendf(b, "{%zu}\r\n", len);
		mf_buf_append(b, str, len);
		return;
	}
	mf_buf_append(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			mf_buf_append(b, "\\", 1);
		mf_buf_append(b, &str[i], 1);
	}
	mf_buf_append(b, "\"", 1);
}

void imap_format_flags(struct mf_buf *b, uint32_t flags, const char *keywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ STORE_FLAG_SEEN, "\\Seen" },
		{ STORE_FLAG_ANSWERED, "\\Answered" },
		{ STORE_FLAG_FLAGGED, "\\Flagged" },
		{ STORE_FLAG_DELETED, "\\Deleted" },
		{ STORE_FLAG_DRAFT, "\\Draft" },
	};
	bool first = true;

	mf_buf_append(b, "(", 1);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((flags & names[i].bit) == 0)
			continue;
		if (!first)
			mf_buf_append(b, " ", 1);
		mf_buf_append_str(b, names[i].name);
		first = false;
	}
	if (keywords != NULL && keywords[0] != '\0') {
		if (!first)
			mf_buf_append(b, " ", 1);
		mf_buf_append_str(b, keywords);
	}
	mf_buf_append(b, ")", 1);
}

void imap_format_datetime(struct mf_buf *b, int64_t unix_ms)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	mf_buf_appendf(b, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
		       months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int month_index(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s, months[i], 3) == 0)
			return i;
	return -1;
}

static int parse_dmy(const char **p, struct tm *tm)
{
	const char *s = *p;
	int day = 0, year = 0, mon, nd = 0;

	if (*s == ' ')
		s++;
	while (isdigit((unsigned char)*s) && nd < 2) {
		day = day * 10 + (*s++ - '0');
		nd++;
	}
	if (nd == 0 || day < 1 || day > 31 || *s != '-')
		return -1;
	s++;
	mon = month_index(s);
	if (mon < 0 || s[3] != '-')
		return -1;
	s += 4;
	for (int i = 0; i < 4; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		year = year * 10 + (s[i] - '0');
	}
	s += 4;
	memset(tm, 0, sizeof(*tm));
	tm->tm_mday = day;
	tm->tm_mon = mon;
	tm->tm_year = year - 1900;
	*p = s;
	return 0;
}

int imap_parse_date(const char *s, time_t *t_r)
{
	struct tm tm;

	if (parse_dmy(&s, &tm) < 0 || *s != '\0')
		return -1;
	*t_r = timegm(&tm);
	return 0;
}

int imap_parse_datetime(const char *s, int64_t *unix_ms_r)
{
	struct tm tm;
	int hh, mm, ss, zh, zm, sign;
	time_t t;

	if (parse_dmy(&s, &tm) < 0)
		return -1;
	if (strlen(s) != 15 || s[0] != ' ' || s[3] != ':' || s[6] != ':' || s[9] != ' ' ||
	    (s[10] != '+' && s[10] != '-'))
		return -1;
	for (int i = 1; i < 15; i++)
		if (i != 3 && i != 6 && i != 9 && i != 10 && !isdigit((unsigned char)s[i]))
			return -1;
	hh = (s[1] - '0') * 10 + (s[2] - '0');
	mm = (s[4] - '0') * 10 + (s[5] - '0');
	ss = (s[7] - '0') * 10 + (s[8] - '0');
	sign = s[10] == '-' ? -1 : 1;
	zh = (s[11] - '0') * 10 + (s[12] - '0');
	zm = (s[13] - '0') * 10 + (s[14] - '0');
	if (hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return -1;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	t = timegm(&tm) - sign * (zh * 3600 + zm * 60);
	*unix_ms_r = (int64_t)t * 1000;
	return 0;
}

int imap_parse_rfc5322_date(const char *str, size_t len, time_t *t_r)
{
	char buf[128];
	const char *s = buf;
	struct tm tm;
	int hh = 0, mm = 0, ss = 0, off = 0, day = 0, year = 0, mon, n;

	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, str, len);
	buf[len] = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	/* Optional day of week. */
	if (isalpha((unsigned char)*s)) {
		while (isalpha((unsigned char)*s))
			s++;
		if (*s == ',')
			s++;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	n = 0;
	while (isdigit((unsigned char)*s) && n < 2) {
		day = day * 10 + (*s++ - '0');
		n++;
	}
	if (n == 0 || day < 1 || day > 31)
		return -1;
	while (*s == ' ')
		s++;
	mon = month_index(s);
	if (mon < 0)
		return -1;
	s += 3;
	while (*s == ' ')
		s++;
	n = 0;
	while (isdigit((unsigned char)*s) && n < 4) {
		year = year * 10 + (*s++ - '0');
		n++;
	}
	if (n == 2)
		year += year < 50 ? 2000 : 1900;
	else if (n != 4)
		return -1;
	while (*s == ' ')
		s++;
	if (sscanf(s, "%2d:%2d", &hh, &mm) == 2) {
		s += 5;
		if (*s == ':' && isdigit((unsigned char)s[1])) {
			ss = (s[1] - '0') * 10 + (isdigit((unsigned char)s[2]) ? s[2] - '0' : 0);
			s += 3;
		}
	}
	while (*s == ' ')
		s++;
	if ((*s == '+' || *s == '-') && isdigit((unsigned char)s[1]) && strlen(s) >= 5) {
		int v = atoi_4(s + 1);
		off = (v / 100) * 3600 + (v % 100) * 60;
		if (*s == '-')
			off = -off;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t_r = timegm(&tm) - off;
	return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

ssize_t imap_base64_decode(const char *in, size_t len, unsigned char *out)
{
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			const char *p;
			char c = in[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || c == '\0' || (p = strchr(b64, c)) == NULL)
				return -1;
			v[k] = (int)(p - b64);
		}
		out[o++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		if (pad < 2)
			out[o++] = (unsigned char)(((v[1] & 0xf) << 4) | (v[2] >> 2));
		if (pad < 1)
			out[o++] = (unsigned char)(((v[2] & 0x3) << 6) | v[3]);
	}
	return (ssize_t)o;
}

void imap_base64_encode(struct mf_buf *b, const void *data, size_t len)
{
	const unsigned char *s = data;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		char q[4];
		if (i + 1 < len)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		q[0] = b64[(v >> 18) & 0x3f];
		q[1] = b64[(v >> 12) & 0x3f];
		q[2] = i + 1 < len ? b64[(v >> 6) & 0x3f] : '=';
		q[3] = i + 2 < len ? b64[v & 0x3f] : '=';
		mf_buf_append(b, q, 4);
	}
}
