#!/bin/bash
. "$(dirname "$0")/lib/common.sh"
RUN="$TMP/run"
MAILFLEET_PASSWORD=$PASSWORD "$BIN/mailfleet" quickstart --local --dir "$RUN" --port-offset "$OFF" >/dev/null || fail qs
sed -i "s/^    resolver recursive/    resolver $RESOLVER/" "$RUN/config/mailfleet.conf"
grep -n resolver "$RUN/config/mailfleet.conf"
start_embedded
printf 'From: someone@example.com\r\nTo: mail@localhost\r\nSubject: timing\r\n\r\nhi\r\n' > $TMP/m.eml
for i in 1 2; do
s=$(date +%s.%N)
swaks --server 127.0.0.1 --port "$P_SMTP" --helo client.example --from someone@example.com --to mail@localhost --data $TMP/m.eml > $TMP/sw.out 2>&1
e=$(date +%s.%N)
echo "elapsed $(echo "$e - $s" | bc)"
grep '<-  ' $TMP/sw.out | tail -2
done
python3 - "$P_IMAP" "$PASSWORD" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); m.login("mail@localhost", sys.argv[2]); m.select("INBOX")
typ, data = m.search(None, "ALL"); ids=data[0].split(); print(ids)
typ, data = m.fetch(ids[-1], "(RFC822.HEADER)"); print(data[0][1].decode())
PY
stop_embedded
