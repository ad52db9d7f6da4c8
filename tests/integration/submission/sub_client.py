#!/usr/bin/env python3
"""Submission clients for test_submission.sh (standard library only).

usage: sub_client.py CHECK SUB_PORT SUBS_PORT PASSWORD
Each CHECK prints what it saw and exits non-zero on a mismatch."""
import smtplib
import ssl
import sys

check, port, sport, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
USER = "mail@localhost"


def msg(subject, frm=USER, extra=""):
    # No Message-ID and no Date: submission adds them.
    return ("From: %s\r\nTo: mail@localhost\r\nSubject: %s\r\n%s\r\nbody of %s\r\n"
            % (frm, subject, extra, subject)).encode()


def starttls():
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.example")
    s.starttls(context=ctx)
    s.ehlo("client.example")
    return s


def expect(code_prefix, got, what):
    code, text = got
    if not str(code).startswith(code_prefix):
        sys.exit("%s: expected %s, got %s %r" % (what, code_prefix, code, text))
    print("%s: %s %s" % (what, code, text.decode(errors="replace")))


if check == "starttls-plain":
    s = starttls()
    assert "auth" in s.esmtp_features and "PLAIN" in s.esmtp_features["auth"].upper(), s.esmtp_features
    assert "futurerelease" in s.esmtp_features, s.esmtp_features
    s.login(USER, password)  # PLAIN is the first we offer that smtplib takes
    r = s.sendmail(USER, ["mail@localhost"], msg("sub-starttls", extra="X-Mailfleet-Extra-Customer: 42\r\n"))
    assert r == {}, r
    s.quit()
    print("starttls + AUTH PLAIN: queued")
elif check == "implicit-login":
    s = smtplib.SMTP_SSL("127.0.0.1", sport, context=ctx, timeout=30)
    s.ehlo("client.example")
    s.user, s.password = USER, password
    code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    assert code == 235, (code, text)
    r = s.sendmail(USER, ["mail@localhost"], msg("sub-implicit"))
    assert r == {}, r
    s.quit()
    print("implicit TLS + AUTH LOGIN: queued")
elif check == "wrong-password":
    s = starttls()
    try:
        s.login(USER, password + "x")
        sys.exit("wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535 and e.smtp_error.startswith(b"5.7.8"), e
        print("wrong password:", e.smtp_code, e.smtp_error.decode())
    s.quit()
elif check == "before-starttls":
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.example")
    assert "auth" not in s.esmtp_features, s.esmtp_features
    assert "starttls" in s.esmtp_features, s.esmtp_features
    import base64
    expect("538", s.docmd("AUTH", "PLAIN " + base64.b64encode(("\0%s\0%s" % (USER, password)).encode()).decode()),
           "AUTH before STARTTLS")
    expect("530", s.docmd("MAIL", "FROM:<%s>" % USER), "MAIL before AUTH")
    s.quit()
elif check == "from-not-owned":
    s = starttls()
    s.login(USER, password)
    expect("550", s.docmd("MAIL", "FROM:<someone@example.com>"), "MAIL FROM not owned")
    expect("250", s.docmd("MAIL", "FROM:<%s>" % USER), "MAIL FROM owned")
    expect("250", s.docmd("RCPT", "TO:<mail@localhost>"), "RCPT")
    # data() returns the final reply (it raises only for the 354).
    expect("550", s.data(msg("sub-notowned", frm="Boss <boss@example.com>")), "From not owned")
    s.quit()
elif check == "holdfor":
    s = starttls()
    s.login(USER, password)
    expect("501", s.docmd("MAIL", "FROM:<%s> HOLDFOR=99999999" % USER), "HOLDFOR too far")
    expect("501", s.docmd("MAIL", "FROM:<%s> HOLDFOR=60 HOLDUNTIL=2030-01-01T00:00:00Z" % USER), "both")
    expect("250", s.docmd("MAIL", "FROM:<%s> HOLDFOR=3600 BODY=8BITMIME RET=HDRS ENVID=e1" % USER), "HOLDFOR=3600")
    expect("250", s.docmd("RCPT", "TO:<mail@localhost> NOTIFY=FAILURE,DELAY ORCPT=rfc822;mail@localhost"), "RCPT DSN")
    expect("354", s.docmd("DATA"), "DATA")
    s.send(msg("sub-held", extra="X-Mailfleet-Extra-Order: 7\r\nX-Mailfleet-Extra-Note: =?utf-8?q?caf=C3=A9?=\r\n") + b".\r\n")
    expect("250", s.getreply(), "held message")
    s.quit()
elif check == "bdat":
    # CHUNKING with the header cut across chunks, REQUIRETLS and SMTPUTF8.
    s = starttls()
    s.login(USER, password)
    expect("250", s.docmd("MAIL", "FROM:<%s> REQUIRETLS SMTPUTF8 BODY=8BITMIME" % USER), "MAIL REQUIRETLS SMTPUTF8")
    expect("250", s.docmd("RCPT", "TO:<mail@localhost>"), "RCPT")
    data = msg("sub-bdat", extra="X-Mailfleet-Extra-Chunked: yes\r\n")
    parts = [data[:7], data[7:40], data[40:]]
    for i, p in enumerate(parts):
        last = " LAST" if i == len(parts) - 1 else ""
        s.send(b"BDAT %d%s\r\n" % (len(p), last.encode()) + p)
        expect("250", s.getreply(), "BDAT chunk %d%s" % (i, last))
    s.quit()
elif check == "limits":
    # domains.conf now has max-outgoing-messages-per-day 7 and
    # max-first-time-recipients-per-day 1 for the account, which has sent 6
    # messages, all to mail@localhost (its one first-time recipient today).
    s = starttls()
    s.login(USER, password)
    expect("250", s.docmd("MAIL", "FROM:<%s>" % USER), "MAIL 7th message")
    expect("451", s.docmd("RCPT", "TO:<new@example.com>"), "first-time recipient over the limit")
    expect("250", s.docmd("RCPT", "TO:<mail@localhost>"), "known recipient")
    expect("354", s.docmd("DATA"), "DATA")
    s.send(msg("sub-limit-6") + b".\r\n")
    expect("250", s.getreply(), "7th message")
    expect("451", s.docmd("MAIL", "FROM:<%s>" % USER), "8th message over max-outgoing-messages-per-day")
    s.quit()
elif check == "dnsauth-stopped":
    s = starttls()
    s.login(USER, password)
    expect("250", s.docmd("MAIL", "FROM:<%s>" % USER), "MAIL")
    expect("250", s.docmd("RCPT", "TO:<mail@localhost>"), "RCPT")
    expect("354", s.docmd("DATA"), "DATA")
    s.send(msg("sub-unsigned") + b".\r\n")
    expect("451", s.getreply(), "signing unavailable")
    s.quit()
elif check == "sasl-exchange":
    import base64
    b64 = lambda b: base64.b64encode(b).decode()
    s = starttls()
    expect("504", s.docmd("AUTH", "CRAM-MD5"), "unsupported mechanism")
    expect("334", s.docmd("AUTH", "PLAIN"), "PLAIN without initial response")
    expect("501", s.docmd("*"), "cancelled")
    expect("334", s.docmd("AUTH", "PLAIN"), "PLAIN without initial response")
    expect("501", s.docmd("not base64!"), "bad base64")
    expect("334", s.docmd("AUTH", "PLAIN"), "PLAIN without initial response")
    expect("235", s.docmd(b64(("\0%s\0%s" % (USER, password)).encode())), "PLAIN response")
    expect("503", s.docmd("AUTH", "PLAIN"), "AUTH twice")
    s.quit()
    s = starttls()
    expect("334", s.docmd("AUTH", "LOGIN " + b64(USER.encode())), "LOGIN with the user name")
    expect("235", s.docmd(b64(password.encode())), "LOGIN password")
    s.quit()
    s = starttls()
    code, text = s.docmd("AUTH", "LOGIN")
    assert (code, text) == (334, b"VXNlcm5hbWU6"), (code, text)
    code, text = s.docmd(b64(b"mail"))   # the account name works as login too
    assert (code, text) == (334, b"UGFzc3dvcmQ6"), (code, text)
    expect("235", s.docmd(b64(password.encode())), "LOGIN by account name")
    s.quit()
elif check == "bruteforce":
    # authlimit's block limit (20 failures from one address, the earlier
    # checks made a few; slowed from the 6th on); then even the right
    # password is refused unchecked, with a temporary error.
    attempts, limited = 0, False
    while not limited:
        s = starttls()
        for _ in range(5):
            # One AUTH each (login() would go on to try LOGIN as well).
            s.user, s.password = USER, "guess-%d" % attempts
            attempts += 1
            try:
                s.auth("PLAIN", s.auth_plain)
                sys.exit("wrong password accepted")
            except smtplib.SMTPAuthenticationError as e:
                if e.smtp_code == 454:
                    limited = True
                    break
                assert e.smtp_code == 535, e
            assert attempts <= 21, "no limit after 20 failures"
        s.close()
    print("throttled after %d more failures" % (attempts - 1))
    s = starttls()
    s.user, s.password = USER, password
    try:
        s.auth("PLAIN", s.auth_plain)
        sys.exit("login allowed after 20 failures")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 454 and e.smtp_error.startswith(b"4.7.0"), e
        print("right password after the failures:", e.smtp_code, e.smtp_error.decode())
    s.close()
else:
    sys.exit("unknown check " + check)
