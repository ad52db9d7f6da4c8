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
    try:
        s.data(msg("sub-notowned", frm="Boss <boss@example.com>"))
        sys.exit("From not owned accepted")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550 and e.smtp_error.startswith(b"5.7.1"), e
        print("From not owned:", e.smtp_code, e.smtp_error.decode())
    s.quit()
elif check == "holdfor":
    s = starttls()
    s.login(USER, password)
    expect("501", s.docmd("MAIL", "FROM:<%s> HOLDFOR=99999999" % USER), "HOLDFOR too far")
    expect("501", s.docmd("MAIL", "FROM:<%s> HOLDFOR=60 HOLDUNTIL=2030-01-01T00:00:00Z" % USER), "both")
    expect("250", s.docmd("MAIL", "FROM:<%s> HOLDFOR=3600 BODY=8BITMIME RET=HDRS ENVID=e1" % USER), "HOLDFOR=3600")
    expect("250", s.docmd("RCPT", "TO:<mail@localhost> NOTIFY=FAILURE,DELAY ORCPT=rfc822;mail@localhost"), "RCPT DSN")
    expect("354", s.docmd("DATA"), "DATA")
    s.send(msg("sub-held") + b".\r\n")
    expect("250", s.getreply(), "held message")
    s.quit()
else:
    sys.exit("unknown check " + check)
