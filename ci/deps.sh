#!/bin/sh
# Installs the Debian packages mailfleet needs to build, run and test.
# Idempotent and quick when everything is present: only missing packages are
# passed to apt-get.  Usage: ci/deps.sh [build|run|test]
set -eu

build_pkgs="gcc make pkg-config libc6-dev libssl-dev libnats-dev libhiredis-dev
  libmicrohttpd-dev libcjson-dev libprotobuf-c-dev protobuf-c-compiler
  libidn2-dev libunistring-dev libsqlite3-dev libunbound-dev"
run_pkgs="nats-server redis-server openssl curl"
# Test peers and real clients: DNS lab (nsd, unbound, ldns), mail peers
# (postfix, dovecot for benchmarks), clients (swaks, mbsync, fetchmail),
# cross-checkers (dkimpy, pyspf, opendkim), aiosmtpd as a receiving server,
# Go with sprig to render the Helm chart (ci/helm-check.sh), SASL clients
# (gsasl, cyrus imtest/smtptest) for interop tests.
test_pkgs="libcmocka-dev prometheus python3 clang-14 libclang-rt-14-dev procps iproute2
  unbound nsd ldnsutils swaks libnet-ssleay-perl postfix dovecot-imapd isync fetchmail
  python3-dkim python3-spf python3-yaml python3-aiosmtpd opendkim-tools
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev
  gsasl cyrus-clients opendkim libdigest-hmac-perl"

want="$build_pkgs"
case "${1:-build}" in
  build) ;;
  run) want="$want $run_pkgs" ;;
  test) want="$want $run_pkgs $test_pkgs" ;;
  *) echo "usage: $0 [build|run|test]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Debian's postinst scripts must not start daemons on the host (mailfleet starts its own).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
# postfix asks questions at install time: a test peer needs no configuration.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -q >/dev/null || $SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
