/* imap_parser: the IMAP command parser (RFC 9051 9, RFC 3501 9).
 *
 * Commands arrive as lines, some ending in a literal announcement ({n},
 * {n+} with LITERAL+/LITERAL- (RFC 7888), ~{n} for BINARY (RFC 3516)).
 * The session feeds each line to imap_parser_line: it either completes the
 * command or asks for a literal of n bytes, which the session reads (after
 * a "+" continuation for a synchronising literal) and hands to
 * imap_parser_literal; then the next line follows.  The parser keeps the
 * command's bytes, bounded by the limits it was given (tighter before
 * login), and imap_parser_finish turns them into a tag, a command name and
 * an argument tree allocated from a pool.
 *
 * Errors carry the exact text for the tagged BAD reply. */
#ifndef IMAP_PARSER_H
#define IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_pool.h"

/* Longest command line (without its literals) before and after login. */
#define IMAP_LINE_MAX_PREAUTH 8192
#define IMAP_LINE_MAX 65536
/* Largest literal before login (a password, a SASL response). */
#define IMAP_LITERAL_MAX_PREAUTH 8192
/* Largest non-synchronising literal under LITERAL- (RFC 7888 4). */
#define IMAP_LITERAL_MINUS_MAX 4096
/* Literals per command (APPEND has one, LOGIN two; SEARCH may have several). */
#define IMAP_LITERALS_MAX 64
/* Parenthesised list nesting (SEARCH programs, BODYSTRUCTURE-like input). */
#define IMAP_NESTING_MAX 32
/* Literals up to this size are copied (NUL-terminated) into the pool;
 * larger ones (an APPEND's message) are "borrowed": they point into the
 * command's bytes, are not NUL-terminated, and are valid until the parser
 * is reset (or the buffer given to imap_parse_buffer goes away). */
#define IMAP_LITERAL_COPY_MAX 65536
/* Arguments per list and at the top level. */
#define IMAP_ARGS_MAX 4096
/* Longest tag. */
#define IMAP_TAG_MAX 64

enum imap_arg_type {
	IMAP_ARG_ATOM,     /* includes NIL (check with imap_arg_is_nil) */
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM, QUOTED, LITERAL: the bytes, NUL-terminated unless borrowed (a
	 * literal may hold NULs itself: use len). */
	const char *str;
	size_t len;
	bool binary;       /* a ~{n} literal */
	bool borrowed;     /* a literal longer than IMAP_LITERAL_COPY_MAX */
	/* LIST: its elements. */
	struct imap_arg *list;
	size_t count;
};

struct imap_command {
	const char *tag;
	const char *name;        /* upper-cased */
	struct imap_arg *args;
	size_t count;
};

struct imap_parser_limits {
	size_t line_max;         /* one line */
	size_t literal_max;      /* one literal */
	size_t command_max;      /* all lines and literals of one command */
	bool literal_minus;      /* non-synchronising literals limited to 4096 */
};

enum imap_parser_result {
	IMAP_PARSE_COMPLETE,     /* call imap_parser_finish */
	IMAP_PARSE_LITERAL,      /* read the announced literal */
	IMAP_PARSE_ERROR,        /* reply BAD with the error text, command dropped */
	IMAP_PARSE_FATAL,        /* the client's next bytes cannot be trusted: BYE */
};

struct imap_literal_spec {
	uint64_t size;
	bool nonsync;            /* {n+}: no continuation expected */
	bool binary;             /* ~{n} */
};

struct imap_parser;

struct imap_parser *imap_parser_create(void);
void imap_parser_free(struct imap_parser **parser);
/* Sets the limits for the next command. */
void imap_parser_set_limits(struct imap_parser *parser, const struct imap_parser_limits *limits);
/* Forgets the command in progress. */
void imap_parser_reset(struct imap_parser *parser);

/* Feeds one line (without CRLF).  Returns COMPLETE, LITERAL (spec_r set;
 * feed its bytes with imap_parser_literal, then the next line), ERROR or
 * FATAL (error_r: the reply text).  After ERROR the command is forgotten; a
 * synchronising literal that was refused is never sent by the client. */
enum imap_parser_result imap_parser_line(struct imap_parser *parser, const char *line,
					 size_t len, struct imap_literal_spec *spec_r,
					 const char **error_r);
/* Appends the literal's bytes (exactly the announced size, in one call or
 * several). */
void imap_parser_literal(struct imap_parser *parser, const void *data, size_t len);

/* The tag of the command in progress as far as it is known (for BAD
 * replies), or "*" when there is none. */
const char *imap_parser_tag(struct imap_parser *parser, struct imap_pool *pool);

/* Parses the collected command into cmd_r (allocated from pool).  Returns 0,
 * or -1 with error_r: the text for the BAD reply.  Borrowed literals point
 * into the parser: call imap_parser_reset when the command is done. */
int imap_parser_finish(struct imap_parser *parser, struct imap_pool *pool,
		       struct imap_command *cmd_r, const char **error_r);

/* Parses a complete command held in memory, with literals inline as
 * "{n}\r\n<bytes>" (for tests and the fuzz target).  Returns 0 or -1 with
 * error_r. */
int imap_parse_buffer(struct imap_pool *pool, const char *data, size_t len,
		      struct imap_command *cmd_r, const char **error_r);

/* Helpers for command handlers. */
bool imap_arg_is_nil(const struct imap_arg *arg);
/* An astring: atom, quoted or literal (RFC 9051 9), usable as a C
 * string (borrowed literals are not). */
bool imap_arg_is_string(const struct imap_arg *arg);
/* Case-insensitive comparison of an atom with word. */
bool imap_arg_atom_eq(const struct imap_arg *arg, const char *word);

#endif
