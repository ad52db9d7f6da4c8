/* sub_header: From check, extra fields, Message-ID and Date (see header). */
#include "sub_header.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

#define EXTRA_PREFIX "X-Mailfleet-Extra-"

void sub_header_date(time_t t, char *buf, size_t size)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	/* Names in English whatever the locale (RFC 5322 3.3). */
	snprintf(buf, size, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool atext_dot(const char *s)
{
	if (*s == '\0' || *s == '.')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p >= 0x80 || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", *p) != NULL)
			continue;
		if (*p == '.' && p[1] != '.' && p[1] != '\0')
			continue;
		return false;
	}
	return true;
}

/* Parses the single mailbox of a From value into addr_r. */
static int parse_from(const char *v, size_t len, struct mf_address *addr_r, const char **error_r)
{
	struct mf_mime_address_list list;
	const struct mf_mime_address *a = NULL;
	struct mf_buf s;
	const char *err;
	int ret = -1;

	mf_mime_address_list_parse(v, len, &list);
	for (size_t i = 0; i < list.count; i++) {
		if (list.list[i].kind != MF_MIME_ADDRESS_MAILBOX)
			continue;
		if (a != NULL) {
			*error_r = "550 5.7.1 the From header must hold exactly one address";
			goto out;
		}
		a = &list.list[i];
	}
	if (a == NULL || a->mailbox == NULL || a->domain == NULL) {
		*error_r = "550 5.7.1 the From header has no usable address";
		goto out;
	}
	mf_buf_init(&s, 0);
	if (atext_dot(a->mailbox)) {
		mf_buf_append_str(&s, a->mailbox);
	} else {
		mf_buf_append(&s, "\"", 1);
		for (const char *p = a->mailbox; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				mf_buf_append(&s, "\\", 1);
			mf_buf_append(&s, p, 1);
		}
		mf_buf_append(&s, "\"", 1);
	}
	mf_buf_appendf(&s, "@%s", a->domain);
	if (mf_address_parse(s.data, s.len, addr_r, &err) < 0)
		*error_r = mf_errorf("550 5.7.1 the From header's address is not valid: %s", err);
	else
		ret = 0;
	mf_buf_free(&s);
out:
	mf_mime_address_list_free(&list);
	return ret;
}

static void add_extra(struct sub_header_result *r, const char *key, size_t key_len,
		      char *value)
{
	r->extras = mf_xrealloc(r->extras, (r->extras_count + 1) * sizeof(*r->extras));
	r->extras[r->extras_count].key = mf_xstrndup(key, key_len);
	r->extras[r->extras_count].value = value;
	r->extras_count++;
}

/* Checks an extra field; returns NULL when fine, else the reply line. */
static const char *extra_check(const struct sub_header_result *r, const char *key,
			       size_t key_len, const char *value)
{
	if (key_len == 0 || key_len > SUB_EXTRA_KEY_MAX)
		return mf_errorf("554 5.6.0 X-Mailfleet-Extra- header names need a key of 1 to "
				 "%d characters", SUB_EXTRA_KEY_MAX);
	if (r->extras_count >= SUB_EXTRA_MAX)
		return mf_errorf("554 5.6.0 too many X-Mailfleet-Extra- headers (at most %d)",
				 SUB_EXTRA_MAX);
	if (strlen(value) > SUB_EXTRA_VALUE_MAX)
		return mf_errorf("554 5.6.0 X-Mailfleet-Extra- value too long (at most %d bytes)",
				 SUB_EXTRA_VALUE_MAX);
	for (size_t i = 0; i < r->extras_count; i++)
		if (strlen(r->extras[i].key) == key_len &&
		    strncasecmp(r->extras[i].key, key, key_len) == 0)
			return mf_errorf("554 5.6.0 X-Mailfleet-Extra-%.*s given twice",
					 (int)key_len, key);
	return NULL;
}

/* The msg-id inside <>, or the trimmed value when it has none. */
static char *message_id_value(const char *v, size_t len)
{
	char *u = mf_mime_header_unfold(v, len), *lt = strchr(u, '<'), *gt;
	char *id;

	if (lt != NULL && (gt = strchr(lt, '>')) != NULL) {
		id = mf_xstrndup(lt + 1, (size_t)(gt - lt - 1));
		free(u);
		return id;
	}
	return u;
}

int sub_header_rewrite(const char *hdr, size_t len, const struct sub_header_input *in,
		       struct sub_header_result *r, const char **error_r)
{
	struct mf_mime_header_iter it;
	struct mf_mime_field f;
	size_t copied = 0, plen = strlen(EXTRA_PREFIX);
	unsigned froms = 0;
	bool have_date = false;
	const char *err = NULL;

	memset(r, 0, sizeof(*r));
	mf_buf_init(&r->header, 0);
	if (len > SUB_HEADER_MAX) {
		*error_r = mf_errorf("554 5.6.0 header section too large (at most %d bytes)",
				     SUB_HEADER_MAX);
		goto fail;
	}
	mf_mime_header_iter_init(&it, hdr, 0, len);
	while (mf_mime_header_next(&it, &f)) {
		if (mf_mime_field_is(&f, "From")) {
			if (froms++ > 0) {
				err = "550 5.7.1 the message has more than one From header";
				goto failerr;
			}
			if (parse_from(f.value, f.value_len, &r->from, &err) < 0)
				goto failerr;
		} else if (mf_mime_field_is(&f, "Date")) {
			have_date = true;
		} else if (mf_mime_field_is(&f, "Message-ID")) {
			if (r->message_id == NULL)
				r->message_id = message_id_value(f.value, f.value_len);
		} else if (f.name_len >= plen && strncasecmp(f.name, EXTRA_PREFIX, plen) == 0) {
			const char *key = f.name + plen;
			size_t key_len = f.name_len - plen;
			char *value = mf_mime_header_decode(f.value, f.value_len);
			if ((err = extra_check(r, key, key_len, value)) != NULL) {
				free(value);
				goto failerr;
			}
			add_extra(r, key, key_len, value);
			/* Cut the field out, keeping what lies between fields. */
			mf_buf_append(&r->header, hdr + copied, f.start - copied);
			copied = f.end;
		}
	}
	if (it.pos < len) {
		/* The iterator stopped at MF_MIME_HEADER_FIELDS_MAX: a From
		 * behind that point would go unchecked. */
		err = mf_errorf("554 5.6.0 too many header fields (at most %d)",
				MF_MIME_HEADER_FIELDS_MAX);
		goto failerr;
	}
	if (froms == 0) {
		err = "550 5.7.1 the message has no From header";
		goto failerr;
	}
	mf_buf_append(&r->header, hdr + copied, len - copied);
	if (r->header.len > 0 && r->header.data[r->header.len - 1] != '\n')
		mf_buf_append(&r->header, "\r\n", 2);
	if (r->message_id == NULL || r->message_id[0] == '\0') {
		free(r->message_id);
		r->message_id = mf_xasprintf("%s@%s", in->id, in->hostname);
		mf_buf_appendf(&r->header, "Message-ID: <%s>\r\n", r->message_id);
		r->added_message_id = true;
	}
	if (!have_date) {
		char date[64];
		sub_header_date(in->now, date, sizeof(date));
		mf_buf_appendf(&r->header, "Date: %s\r\n", date);
		r->added_date = true;
	}
	return 0;
failerr:
	*error_r = err;
fail:
	sub_header_result_free(r);
	return -1;
}

void sub_header_result_free(struct sub_header_result *r)
{
	mf_address_free(&r->from);
	for (size_t i = 0; i < r->extras_count; i++) {
		free(r->extras[i].key);
		free(r->extras[i].value);
	}
	free(r->extras);
	free(r->message_id);
	mf_buf_free(&r->header);
	memset(r, 0, sizeof(*r));
}

bool sub_from_allowed(const struct mf_domains *d, const char *account,
		      const struct mf_address *addr)
{
	struct mf_domains_dest dest;

	if (addr->localpart == NULL || addr->domain == NULL)
		return false;
	switch (mf_domains_resolve(d, addr->localpart, addr->domain, &dest)) {
	case MF_DOMAINS_DEST_ACCOUNT:
		return strcmp(dest.account->name, account) == 0;
	case MF_DOMAINS_DEST_ALIAS:
		if (!dest.alias->allow_msg_from)
			return false;
		for (size_t i = 0; i < dest.alias->members_count; i++) {
			const struct mf_domains_address *m = &dest.alias->members[i];
			struct mf_domains_dest md;
			if (mf_domains_resolve(d, m->localpart, m->domain, &md) ==
			    MF_DOMAINS_DEST_ACCOUNT && strcmp(md.account->name, account) == 0)
				return true;
		}
		return false;
	case MF_DOMAINS_DEST_NONE:
	default:
		return false;
	}
}
