/* Fuzzes the IMAP command parser the way a session drives it: the input is
 * split into lines (LF), each fed to imap_parser_line; announced literals
 * take their bytes from the input that follows.  Completed commands are
 * parsed into argument trees, whose atoms are also run through the
 * sequence-set and modified UTF-7 parsers.  A second pass parses the whole
 * input as one buffer.  Nothing may crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/imap/imap_mutf7.h"
#include "services/imap/imap_parser.h"
#include "services/imap/imap_pool.h"
#include "services/imap/imap_seqset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(struct imap_pool *pool, const struct imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		struct imap_seqset set;
		const char *err;
		char *out;

		if (a->type == IMAP_ARG_LIST) {
			walk(pool, a->list, a->count);
			continue;
		}
		if (a->borrowed)
			continue;
		if (a->str[a->len] != '\0')
			abort();
		if (imap_seqset_parse(pool, a->str, &set, &err) == 0)
			(void)imap_seqset_contains(&set, 7, 10);
		if (imap_mutf7_decode(pool, a->str, a->len, &out, &err) == 0 &&
		    imap_mutf7_encode(pool, out, strlen(out), &out, &err) < 0)
			abort();  /* decoded names must encode again */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *parser = imap_parser_create();
	struct imap_pool *pool = imap_pool_create();
	struct imap_parser_limits lim = { .line_max = 1024, .literal_max = 100000,
					  .command_max = 200000, .literal_minus = size > 0 && data[0] & 1 };
	const char *p = (const char *)data, *end = p + size, *err;
	struct imap_command cmd;

	imap_parser_set_limits(parser, &lim);
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t len = lf != NULL ? (size_t)(lf - p) : (size_t)(end - p);
		struct imap_literal_spec spec;
		enum imap_parser_result r;
		size_t linelen = len > 0 && p[len - 1] == '\r' ? len - 1 : len;

		r = imap_parser_line(parser, p, linelen, &spec, &err);
		p += len + (lf != NULL);
		if (r == IMAP_PARSE_LITERAL) {
			size_t n = spec.size < (uint64_t)(end - p) ? (size_t)spec.size : (size_t)(end - p);
			imap_parser_literal(parser, p, n);
			p += n;
			if (n < spec.size)
				break;
			continue;
		}
		if (r == IMAP_PARSE_COMPLETE) {
			if (imap_parser_finish(parser, pool, &cmd, &err) == 0)
				walk(pool, cmd.args, cmd.count);
			imap_parser_reset(parser);
			imap_pool_clear(pool);
		}
		if (r == IMAP_PARSE_FATAL)
			break;
	}
	if (imap_parse_buffer(pool, (const char *)data, size, &cmd, &err) == 0)
		walk(pool, cmd.args, cmd.count);
	imap_parser_free(&parser);
	imap_pool_free(&pool);
	return 0;
}
