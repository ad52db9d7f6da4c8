#!/usr/bin/python3
"""Mail-flow clients for ci/compose-test.sh (python3 standard library, and
python3-dkim for `dkim`).  Every command exits non-zero with the reason on
stderr when what it checks does not hold.

  mailflow.py smtp-in PORT MSGID               a message from a stranger to
                                               mail@DOMAIN through smtp-in
  mailflow.py imap-has PORT USER PASSWORD MSGID
                                               INBOX holds exactly one message
                                               with that Message-ID (implicit TLS)
  mailflow.py submit PORT USER PASSWORD TO COUNT PREFIX
                                               COUNT messages to TO through
                                               submission (STARTTLS, AUTH PLAIN),
                                               Message-IDs <PREFIX-N@DOMAIN>
  mailflow.py dkim FILE RECORDS                every DKIM-Signature of the
                                               received FILE verifies with the
                                               keys of RECORDS (dns-records.txt)
  mailflow.py count DIR PREFIX N               the receiver's DIR holds each of
                                               <PREFIX-1..N@...> exactly once

The certificate of the stack is the quickstart's self-signed one: TLS is
not verified here (what is tested is the mail flow, not the PKI).
"""
import email.parser
import glob
import imaplib
import os
import re
import smtplib
import ssl
import sys

DOMAIN = os.environ.get("MF_DOMAIN", "example.test")
HOST = "127.0.0.1"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(frm, to, msgid, subject, body):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"
            "Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n\r\n%s\r\n"
            % (frm, to, subject, msgid, body))


def cmd_smtp_in(port, msgid):
    rcpt = "mail@" + DOMAIN
    frm = "stranger@sender.invalid"
    s = smtplib.SMTP(HOST, int(port), local_hostname="client.sender.invalid", timeout=60)
    s.ehlo()
    s.starttls(context=tls_context())
    s.ehlo()
    refused = s.sendmail(frm, [rcpt], message(frm, rcpt, msgid, "through smtp-in",
                                              "hello from compose-test").encode())
    s.quit()
    if refused:
        sys.exit("refused: %r" % refused)


def cmd_imap_has(port, user, password, msgid):
    m = imaplib.IMAP4_SSL(HOST, int(port), ssl_context=tls_context())
    m.login(user, password)
    typ, data = m.select("INBOX", readonly=True)
    if typ != "OK":
        sys.exit("SELECT INBOX: %r" % data)
    typ, data = m.search(None, "HEADER", "Message-ID", msgid)
    ids = data[0].split() if typ == "OK" else []
    if len(ids) != 1:
        sys.exit("INBOX: %d messages with Message-ID %s" % (len(ids), msgid))
    typ, data = m.fetch(ids[0], "(BODY.PEEK[])")
    if typ != "OK" or b"hello from compose-test" not in data[0][1]:
        sys.exit("FETCH: body not as sent: %r" % (data,))
    m.logout()


def cmd_submit(port, user, password, to, count, prefix):
    count = int(count)
    sent = 0
    # A fresh connection every 50 messages: a client's habit, and within
    # any per-connection limit.
    while sent < count:
        s = smtplib.SMTP(HOST, int(port), local_hostname="client." + DOMAIN, timeout=60)
        s.ehlo()
        s.starttls(context=tls_context())
        s.ehlo()
        # AUTH PLAIN by name: smtplib.login would pick CRAM-MD5 first.
        if "PLAIN" not in s.esmtp_features.get("auth", "").upper().split():
            sys.exit("AUTH PLAIN not offered after STARTTLS: %r"
                     % s.esmtp_features.get("auth"))
        s.user, s.password = user, password
        s.auth("PLAIN", s.auth_plain)
        for _ in range(min(50, count - sent)):
            sent += 1
            msgid = "%s-%d@%s" % (prefix, sent, DOMAIN)
            refused = s.sendmail(user, [to], message(user, to, msgid, "%s %d" % (prefix, sent),
                                                     "submitted by compose-test").encode())
            if refused:
                sys.exit("message %d refused: %r" % (sent, refused))
        s.quit()


def dns_keys(records):
    """TXT records of *._domainkey names in a zone-file-like text."""
    keys = {}
    for line in open(records):
        m = re.match(r'^(\S+\._domainkey\.\S+)\s+TXT\s+(.*)$', line.strip())
        if m:
            name = m.group(1).rstrip(".") + "."
            keys[name.lower()] = "".join(re.findall(r'"([^"]*)"', m.group(2))).encode()
    return keys


def cmd_dkim(path, records):
    import dkim
    keys = dns_keys(records)
    if not keys:
        sys.exit("no DKIM keys in " + records)
    raw = open(path, "rb").read()
    # Drop the receiver's own X- lines (written before the message).
    while raw.startswith(b"X-"):
        raw = raw[raw.index(b"\n") + 1:]

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return keys.get(name.lower(), b"")
    d = dkim.DKIM(raw)
    sigs = [v for k, v in email.parser.BytesHeaderParser().parsebytes(raw).items()
            if k.lower() == "dkim-signature"]
    if not sigs:
        sys.exit("no DKIM-Signature in " + path)
    for i in range(len(sigs)):
        try:
            good = d.verify(idx=i, dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            good, why = False, str(e)
        else:
            why = "signature mismatch"
        if not good:
            sys.exit("DKIM signature %d does not verify (%s): %s" % (i, why, sigs[i][:80]))
    print("%d DKIM signatures verified" % len(sigs))


def cmd_count(directory, prefix, n):
    n = int(n)
    seen = {}
    pat = re.compile(rb"^Message-ID:\s*<(" + re.escape(prefix.encode()) + rb"-\d+)@",
                     re.I | re.M)
    for f in glob.glob(os.path.join(directory, "msg-*.eml")):
        for m in pat.findall(open(f, "rb").read()):
            seen[m] = seen.get(m, 0) + 1
    want = {("%s-%d" % (prefix, i)).encode() for i in range(1, n + 1)}
    missing = want - set(seen)
    dups = {k: v for k, v in seen.items() if v > 1}
    extra = set(seen) - want
    if missing or dups or extra:
        sys.exit("%d missing, %d delivered more than once (%s), %d unexpected"
                 % (len(missing), len(dups), sorted(dups)[:5], len(extra)))
    print("%d messages, each once" % n)


COMMANDS = {"smtp-in": cmd_smtp_in, "imap-has": cmd_imap_has, "submit": cmd_submit,
            "dkim": cmd_dkim, "count": cmd_count}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except TypeError as e:
        sys.exit("%s: %s\n%s" % (sys.argv[1], e, __doc__))
    except (OSError, smtplib.SMTPException, imaplib.IMAP4.error) as e:
        sys.exit("%s: %s: %s" % (sys.argv[1], type(e).__name__, e))
