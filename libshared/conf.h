/* conf: the syntax shared by mailfleet.conf and domains.conf, a tree that
 * round-trips byte-identically (comments and blank lines included) so that
 * programs can edit a file an admin also edits by hand, value parsers for
 * sizes, durations, booleans and host:port, and a small table-driven schema
 * walker that config.c and domains.c use to turn a tree into structs.
 *
 *   # comment
 *   key value "quoted value" other    # trailing comment
 *   block-key value {
 *       child value
 *   }
 *
 * A statement is one line: a key (lower-case letters, digits, dashes) and
 * values.  A block line ends in "{" and is closed by "}" on its own line.
 * Values are bare words (no whitespace, braces, '#' or '"') or double-quoted
 * strings with the escapes \" \\ \n \t.  Files are UTF-8. */
#ifndef MF_CONF_H
#define MF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MF_CONF_FILE_MAX (8 * 1024 * 1024) /* bytes in one file */
#define MF_CONF_LINE_MAX 4096              /* bytes in one line, without newline */
#define MF_CONF_DEPTH_MAX 8                /* nested blocks */
#define MF_CONF_VALUES_MAX 64              /* values on one line */
#define MF_CONF_KEY_MAX 64                 /* bytes in a key */
#define MF_CONF_NODES_MAX 1000000          /* lines (nodes) in one file */
#define MF_CONF_HOST_MAX 253               /* host part of host:port */
#define MF_CONF_ERRORS_MAX 50              /* errors collected before giving up */

enum mf_conf_node_type {
	MF_CONF_COMMENT,    /* a blank or comment-only line */
	MF_CONF_STATEMENT,  /* key [value ...] */
	MF_CONF_BLOCK,      /* key [value ...] { children } */
};

struct mf_conf_node {
	enum mf_conf_node_type type;
	char *key;                  /* NULL for comments */
	char **values;
	size_t values_count;
	struct mf_conf_node **children;  /* blocks only */
	size_t children_count;
	unsigned line;              /* 1-based; 0 for nodes added by a program */
	struct mf_conf_node *parent;     /* NULL for the root */

	/* Private to conf.c: the original text, so unchanged lines come out
	 * exactly as they went in. */
	char *raw;          /* the whole line; NULL when generated */
	char *comment;      /* trailing whitespace + "# ..." of the line, or NULL */
	char *raw_close;    /* a block's "}" line */
	bool dirty;         /* values changed: the line is regenerated */
	bool no_eol;        /* raw was the last line and had no newline */
	bool close_no_eol;  /* the same for raw_close */
};

struct mf_conf {
	char *name;                 /* file name used in errors */
	struct mf_conf_node *root;  /* a block without key holding the top level */
};

/* Reads and parses a file.  Returns 0 and a tree (free with mf_conf_free),
 * or -1 with error_r "path:line: what is wrong" (from mf_errorf). */
int mf_conf_parse_file(const char *path, struct mf_conf **conf_r, const char **error_r);
/* Parses len bytes of data (need not be NUL-terminated); name is used in
 * errors.  Returns like mf_conf_parse_file. */
int mf_conf_parse_buf(const char *name, const char *data, size_t len,
		      struct mf_conf **conf_r, const char **error_r);
void mf_conf_free(struct mf_conf **conf);

/* Returns the file text, newly allocated (caller frees).  An unchanged tree
 * gives back exactly the parsed bytes; new or changed lines are written with
 * 4 spaces per level and values quoted only when needed. */
char *mf_conf_serialize(const struct mf_conf *conf);

/* --- reading the tree --- */

/* Returns the first child of block with key (NULL: none); not owned. */
struct mf_conf_node *mf_conf_find(const struct mf_conf_node *block, const char *key);
/* Returns the first child block with key whose first value is value. */
struct mf_conf_node *mf_conf_find_value(const struct mf_conf_node *block, const char *key,
					const char *value);

/* --- editing the tree --- */

/* New detached nodes (values are copied); hand them to mf_conf_insert. */
struct mf_conf_node *mf_conf_node_new(enum mf_conf_node_type type, const char *key,
				      const char *const *values, size_t values_count);
/* Makes node a child of block, after `after` (a child of block), or at the
 * end when after is NULL.  block takes ownership of node. */
void mf_conf_insert(struct mf_conf_node *block, struct mf_conf_node *after,
		    struct mf_conf_node *node);
/* Detaches node from its parent and frees it with its children. */
void mf_conf_remove(struct mf_conf_node *node);
/* Replaces the values of a statement or block line; a trailing comment on
 * that line is kept. */
void mf_conf_set_values(struct mf_conf_node *node, const char *const *values,
			size_t values_count);

/* --- values --- */

/* "512", "512K", "100M", "1G", "2T" (powers of 1024). Returns 0 or -1. */
int mf_conf_parse_size(const char *s, uint64_t *bytes_r, const char **error_r);
/* "30s", "5m", "2h", "7d", "500ms", also combined ("1h30m"). Returns 0 with
 * milliseconds, or -1. */
int mf_conf_parse_duration(const char *s, uint64_t *msecs_r, const char **error_r);
/* yes/no, true/false, on/off. Returns 0 or -1. */
int mf_conf_parse_bool(const char *s, bool *value_r, const char **error_r);
/* A decimal number <= max. Returns 0 or -1. */
int mf_conf_parse_uint(const char *s, uint64_t max, uint64_t *value_r, const char **error_r);

struct mf_conf_hostport {
	char host[MF_CONF_HOST_MAX + 1];  /* IPv6 without brackets */
	uint16_t port;
};
/* "127.0.0.1:1025", "[::1]:1025", "mail.example.org:25". Returns 0 or -1. */
int mf_conf_parse_hostport(const char *s, struct mf_conf_hostport *hp_r, const char **error_r);
/* Resolves a relative path against dir; returns a new string (caller frees). */
char *mf_conf_path(const char *dir, const char *path);
/* Returns the directory part of path ("." when none); caller frees. */
char *mf_conf_dirname(const char *path);

/* --- collecting errors --- */

/* Errors "file:line: field: what", one per line, at most MF_CONF_ERRORS_MAX. */
struct mf_conf_errors {
	struct mf_buf text;
	unsigned count;
};
void mf_conf_errors_init(struct mf_conf_errors *errors);
/* Adds one error; line 0 leaves the line out ("file: field: what"), file
 * NULL leaves the location out ("field: what"). */
void mf_conf_errors_add(struct mf_conf_errors *errors, const char *file, unsigned line,
			const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Moves the text into a per-thread slot and frees the collector.  Returns
 * the text (NULL when there were no errors), valid until this thread calls
 * mf_conf_errors_finish again (mf_config_load and the mf_domains functions
 * do). */
const char *mf_conf_errors_finish(struct mf_conf_errors *errors);

/* --- table-driven schemas --- */

enum mf_conf_kind {
	MF_CONF_KIND_STRING,    /* char *, one value of at most max bytes (0: any) */
	MF_CONF_KIND_PATH,      /* char *, resolved against walk->dir; max as STRING */
	MF_CONF_KIND_UINT,      /* uint64_t, max in field->max (0: UINT32_MAX) */
	MF_CONF_KIND_SIZE,      /* uint64_t bytes */
	MF_CONF_KIND_DURATION,  /* uint64_t milliseconds */
	MF_CONF_KIND_BOOL,      /* bool */
	MF_CONF_KIND_HOSTPORT,  /* struct mf_conf_hostport */
	MF_CONF_KIND_BLOCK,     /* sub-struct at offset, children in field->children */
	MF_CONF_KIND_CUSTOM,    /* field->custom decides */
};

#define MF_CONF_F_REQUIRED 0x1  /* must appear once */
#define MF_CONF_F_REPEAT 0x2    /* may appear more than once (CUSTOM only) */

struct mf_conf_walk;
struct mf_conf_field {
	const char *key;
	enum mf_conf_kind kind;
	unsigned flags;
	size_t offset;                 /* of the target inside base */
	const struct mf_conf_field *children;  /* BLOCK; ends with key NULL */
	uint64_t max;                  /* UINT */
	unsigned min_values, max_values;  /* CUSTOM and BLOCK (values on the key line) */
	/* CUSTOM: handles node; returns 0, or -1 with error_r which the walker
	 * reports as "file:line: path: error".  Errors inside a nested block are
	 * added to walk->errors directly (mf_conf_walk_block). */
	int (*custom)(struct mf_conf_walk *walk, const struct mf_conf_node *node,
		      const char *path, void *base, const char **error_r);
};

struct mf_conf_walk {
	const char *file;    /* for error texts */
	const char *dir;     /* relative paths are relative to this */
	struct mf_conf_errors *errors;
	void *ctx;           /* for custom handlers */
};

/* Walks the children of block against fields, storing into base.  Unknown
 * keys, duplicates, wrong value counts, bad values and missing required
 * keys are added to walk->errors as "file:line: prefix.key: what" (prefix
 * NULL at the top level).  Returns 0 when nothing was added, else -1. */
int mf_conf_walk_block(struct mf_conf_walk *walk, const struct mf_conf_node *block,
		       const char *prefix, const struct mf_conf_field *fields, void *base);
/* Returns "prefix.key" (or "key"), newly allocated; caller frees. */
char *mf_conf_field_path(const char *prefix, const char *key);

#endif
