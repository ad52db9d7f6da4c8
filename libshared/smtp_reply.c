/* smtp_reply: formatting SMTP replies. */
#include "smtp_reply.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int append_line(struct mf_buf *out, unsigned code, const char *enhanced, bool last,
		       const char *text, size_t len)
{
	char line[SMTP_REPLY_LINE_MAX];
	int n = snprintf(line, sizeof(line), "%03u%c", code, last ? ' ' : '-');
	size_t pos = (size_t)n;

	if (enhanced != NULL && enhanced[0] != '\0') {
		n = snprintf(line + pos, sizeof(line) - pos, "%s ", enhanced);
		if (n > 0 && (size_t)n < sizeof(line) - pos)
			pos += (size_t)n;
	}
	/* Leave room for CRLF. */
	for (size_t i = 0; i < len && pos < sizeof(line) - 2; i++) {
		unsigned char c = (unsigned char)text[i];
		line[pos++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	/* Drop trailing space of an empty text ("250 " is fine but ugly). */
	while (pos > 4 && line[pos - 1] == ' ')
		pos--;
	line[pos++] = '\r';
	line[pos++] = '\n';
	return mf_buf_append(out, line, pos);
}

int smtp_reply_append(struct mf_buf *out, unsigned code, const char *enhanced,
		      const char *text)
{
	const char *p = text != NULL ? text : "";
	unsigned lines = 0;

	if (code < 200 || code > 599)
		code = 451;
	for (;;) {
		const char *nl = strchr(p, '\n');
		bool last = nl == NULL || ++lines >= SMTP_REPLY_LINES_MAX;
		size_t len = nl != NULL && !last ? (size_t)(nl - p) : strlen(p);
		if (last && nl != NULL) {
			/* Too many lines: the rest goes into the last one, with
			 * its line breaks replaced. */
			len = strlen(p);
		}
		if (append_line(out, code, enhanced, last, p, len) < 0)
			return -1;
		if (last)
			return 0;
		p = nl + 1;
	}
}

int smtp_reply_appendf(struct mf_buf *out, unsigned code, const char *enhanced,
		       const char *fmt, ...)
{
	char text[SMTP_REPLY_LINE_MAX * 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return smtp_reply_append(out, code, enhanced, text);
}

int smtp_reply_split(const char *line, unsigned *code_r, const char **enhanced_r,
		     const char **text_r)
{
	static _Thread_local char copy[SMTP_REPLY_LINE_MAX];
	char *sp;

	if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
	    (line[3] != ' ' && line[3] != '\0'))
		return -1;
	*code_r = (unsigned)((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
	snprintf(copy, sizeof(copy), "%s", line[3] == ' ' ? line + 4 : "");
	/* An enhanced code is class.subject.detail with the class 2, 4 or 5. */
	sp = strchr(copy, ' ');
	if (copy[0] >= '2' && copy[0] <= '5' && copy[1] == '.' &&
	    strspn(copy, "0123456789.") == (sp != NULL ? (size_t)(sp - copy) : strlen(copy))) {
		if (sp != NULL) {
			*sp = '\0';
			*text_r = sp + 1;
		} else {
			*text_r = "";
		}
		*enhanced_r = copy;
	} else {
		*enhanced_r = "";
		*text_r = copy;
	}
	return 0;
}
