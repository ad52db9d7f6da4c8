#!/bin/sh
# Fails when a banned libc function is called in our sources (STYLE.md).
set -u
cd "$(dirname "$0")/.." || exit 2
pattern='(^|[^_a-zA-Z0-9.>])(sprintf|vsprintf|strcpy|strcat|strncat|gets)[[:space:]]*\('
hits=$(grep -rnE "$pattern" --include='*.c' --include='*.h' libshared services tests 2>/dev/null)
if [ -n "$hits" ]; then
	echo "banned functions used (use snprintf, mf_buf, memcpy with lengths):" >&2
	echo "$hits" >&2
	exit 1
fi
exit 0
