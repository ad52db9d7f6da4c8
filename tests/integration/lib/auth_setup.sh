# Shared by test_auth_*.sh (sourced after common.sh): the embedded default
# with CRAM-MD5 offered by imap and submission, the account `mail` allowed
# CRAM-MD5 and its password set through the CLI (so the store holds the
# scrypt hash, SCRAM-SHA-1/256 and CRAM-MD5 material), and the clients'
# paths.
USER=mail@localhost
PATH=$PATH:/usr/lib/cyrus/bin   # imtest, smtptest (cyrus-clients)
MF="$BIN/mailfleet"

auth_setup() {
	start_embedded
	CA="$RUN/config/tls/cert.pem"
	# The quickstart's password works with SCRAM at once: passwords.init
	# carries SCRAM keys beside the scrypt hash.
	gsasl_login imap "$P_IMAP" SCRAM-SHA-256-PLUS "$PASSWORD" ||
		fail "SCRAM-SHA-256-PLUS with the quickstart password (before any password change)"
	stop_embedded
	# auth-cram-md5 goes into the imap and submission blocks.
	sed -i -e '/^imap {/a\    auth-cram-md5 yes' -e '/^submission {/a\    auth-cram-md5 yes' "$CONF"
	grep -c 'auth-cram-md5 yes' "$CONF" | grep -qx 2 || fail "auth-cram-md5 not added to $CONF"
	start_embedded
	CA="$RUN/config/tls/cert.pem"
	"$MF" account options mail --cram-md5 yes -c "$CONF" >/dev/null || fail "account options"
	echo "$PASSWORD" | "$MF" account password mail -c "$CONF" >/dev/null ||
		fail "account password"
}

# gsasl_login PROTO(imap|smtp) PORT MECH PASSWORD [extra gsasl options]:
# succeeds when GNU SASL logs in over STARTTLS.
gsasl_login() {
	local proto=$1 port=$2 mech=$3 pw=$4
	shift 4
	local out
	out=$(timeout 30 gsasl "--$proto" --connect "127.0.0.1:$port" --starttls \
		--x509-ca-file="$CA" --mechanism "$mech" -a "$USER" -p "$pw" -z "$USER" \
		--quiet "$@" </dev/null 2>&1)
	case $proto in
	imap) echo "$out" | grep -q '^\. OK \[CAPABILITY.*\] logged in' ;;
	smtp) echo "$out" | grep -q '^235 ' ;;
	esac
}
