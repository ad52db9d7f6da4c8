#!/bin/sh
# Prints the path of the RFC 7208 test suite that Debian's python3-spf ships
# (/usr/share/doc/python3-spf/rfc7208-tests.yml.gz).  Minimal Debian images
# drop /usr/share/doc (a dpkg path-exclude); then the file is taken from the
# package itself into $BUILD/testdata.  Prints nothing when neither works.
f=/usr/share/doc/python3-spf/rfc7208-tests.yml.gz
if [ -f "$f" ]; then
	echo "$f"
	exit 0
fi
out=${BUILD:-build}/testdata
mkdir -p "$out"
if [ ! -s "$out/rfc7208-tests.yml.gz" ]; then
	tmp=$(mktemp -d)
	chmod 755 "$tmp"
	if (cd "$tmp" && apt-get download python3-spf >/dev/null 2>&1); then
		dpkg-deb --fsys-tarfile "$tmp"/python3-spf_*.deb |
			tar -x -O ./usr/share/doc/python3-spf/rfc7208-tests.yml.gz \
			>"$out/rfc7208-tests.yml.gz" 2>/dev/null
	fi
	rm -rf "$tmp"
fi
[ -s "$out/rfc7208-tests.yml.gz" ] && echo "$(cd "$out" && pwd)/rfc7208-tests.yml.gz"
exit 0
