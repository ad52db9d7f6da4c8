/* smtp_received: the Received header field. */
#include "smtp_received.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_command.h"

const char *smtp_received_protocol(bool esmtp, bool tls, bool smtputf8)
{
	if (smtputf8)
		return tls ? "UTF8SMTPS" : "UTF8SMTP";
	if (esmtp)
		return tls ? "ESMTPS" : "ESMTP";
	return tls ? "SMTPS" : "SMTP";
}

/* Client-given text in a header: only characters that are safe in a
 * domain, an address literal or a comment-free token. */
static char *sanitise(const char *s, size_t max)
{
	size_t len = strlen(s) > max ? max : strlen(s);
	char *out = mf_xstrndup(s, len);

	for (char *c = out; *c != '\0'; c++) {
		bool okc = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			   (*c >= '0' && *c <= '9') || strchr(".-_:[]", *c) != NULL;
		if (!okc)
			*c = '?';
	}
	return out;
}

char *smtp_received_header(const struct smtp_received_info *i)
{
	struct mf_buf b;
	char date[64];
	struct tm tm;
	char *helo = sanitise(i->helo != NULL && i->helo[0] != '\0' ? i->helo : "unknown",
			      SMTP_HELO_MAX);
	bool tls = i->tls_version != NULL;

	gmtime_r(&i->when, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	mf_buf_init(&b, 0);
	mf_buf_appendf(&b, "Received: from %s ([%s])\r\n\tby %s (mailfleet) with %s", helo,
		       i->remote_ip, i->hostname,
		       smtp_received_protocol(i->esmtp, tls, i->smtputf8));
	if (tls)
		mf_buf_appendf(&b, " (%s %s)", i->tls_version,
			       i->tls_cipher != NULL ? i->tls_cipher : "unknown");
	mf_buf_appendf(&b, "\r\n\tid %s", i->message_id);
	if (i->for_rcpt != NULL)
		mf_buf_appendf(&b, "\r\n\tfor <%s>", i->for_rcpt);
	mf_buf_appendf(&b, "; %s\r\n", date);
	free(helo);
	return mf_buf_steal(&b);
}
