#!/usr/bin/env python3
"""Raw SMTP scenarios for test_smtp_in.sh that swaks cannot express.

usage: smtp_raw.py PORT SCENARIO
Prints what it checks; exits non-zero with a message on failure."""
import socket
import ssl
import sys
import smtplib

PORT = int(sys.argv[1])
SCENARIO = sys.argv[2]


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=20)
        self.f = self.s.makefile("rb")

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        """Reads one (multi-line) reply; returns (code, text)."""
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise SystemExit("connection closed while waiting for a reply")
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        return int(lines[-1][:3]), "\n".join(lines)

    def expect(self, code, what):
        c, text = self.reply()
        if c != code:
            raise SystemExit(f"{what}: expected {code}, got {text!r}")
        return text


def start(c):
    c.expect(220, "greeting")
    c.send(b"EHLO client.example\r\n")
    return c.expect(250, "EHLO")


def bdat():
    c = Conn()
    ehlo = start(c)
    assert "CHUNKING" in ehlo, ehlo
    msg1 = b"Subject: bdat test\r\nX-Test: bdat\r\n\r\nfirst chunk\r\n"
    msg2 = b"second chunk\r\n.leading dot stays\r\n"
    c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<mail@localhost>\r\n")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    c.send(b"BDAT %d\r\n" % len(msg1) + msg1)
    c.expect(250, "BDAT chunk 1")
    c.send(b"BDAT %d LAST\r\n" % len(msg2) + msg2)
    c.expect(250, "BDAT LAST")
    # DATA inside a BDAT transaction is refused (RFC 3030 2).
    c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<mail@localhost>\r\n")
    c.expect(250, "MAIL 2")
    c.expect(250, "RCPT 2")
    c.send(b"BDAT 5\r\nabc\r\n")
    c.expect(250, "BDAT 2")
    c.send(b"DATA\r\n")
    c.expect(503, "DATA during BDAT")
    c.send(b"RSET\r\n")
    c.expect(250, "RSET")
    # BDAT without MAIL: the chunk is read and refused, the session goes on.
    c.send(b"BDAT 4 LAST\r\nNOOP")
    c.expect(503, "BDAT without MAIL")
    c.send(b"NOOP\r\n")
    c.expect(250, "NOOP after refused chunk")
    c.send(b"QUIT\r\n")
    c.expect(221, "QUIT")
    print("bdat ok")


def smuggle():
    """<LF>.<LF>, <LF>.<CRLF>, <CR>.<CR> never end a message; the message
    with bare line ends is refused once the real end arrives, and the
    'smuggled' commands inside it are never executed."""
    for sep in (b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\n", b"\r.\r\n"):
        c = Conn()
        start(c)
        c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<mail@localhost>\r\nDATA\r\n")
        c.expect(250, "MAIL")
        c.expect(250, "RCPT")
        c.expect(354, "DATA")
        c.send(b"Subject: smuggle\r\n\r\nbody" + sep +
               b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<mail@localhost>\r\nDATA\r\n"
               b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
        text = c.expect(550, f"smuggling {sep!r}")
        assert "5.6.0" in text, text
        c.send(b"NOOP\r\n")
        c.expect(250, "NOOP after refused message")
        c.send(b"QUIT\r\n")
        c.expect(221, "QUIT")
    print("smuggle ok")


def starttls_inject():
    c = Conn()
    ehlo = start(c)
    assert "STARTTLS" in ehlo, ehlo
    assert "REQUIRETLS" not in ehlo, "REQUIRETLS offered without TLS"
    # The injected command arrives in the same packet as STARTTLS.
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
    c.expect(220, "STARTTLS")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(c.s, server_hostname="localhost")
    f = t.makefile("rb")
    t.sendall(b"RCPT TO:<mail@localhost>\r\n")
    line = f.readline().decode()
    # Without the injected MAIL (discarded) this RCPT has no transaction.
    if not line.startswith("503"):
        raise SystemExit(f"injected command after STARTTLS was executed: {line!r}")
    t.sendall(b"EHLO client.example\r\n")
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l)
        if l[3:4] != "-":
            break
    ehlo = "".join(lines)
    assert "REQUIRETLS" in ehlo and "STARTTLS" not in ehlo, ehlo
    t.sendall(b"QUIT\r\n")
    print("starttls-inject ok")


def utf8():
    s = smtplib.SMTP("127.0.0.1", PORT, timeout=20)
    s.ehlo("client.example")
    assert s.has_extn("smtputf8")
    msg = "From: jöe@bücher.example\r\nSubject: grüße\r\n\r\nhällo\r\n".encode()
    refused = s.sendmail("jöe@bücher.example", ["mail@localhost"], msg,
                         mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert not refused, refused
    # Without SMTPUTF8 a UTF-8 address is refused (RFC 6531 3.2).
    code, text = s.docmd("MAIL FROM:<jöe@bücher.example>".encode().decode("latin-1"))
    assert code == 553, (code, text)
    s.quit()
    print("utf8 ok")


def starttls():
    s = smtplib.SMTP("127.0.0.1", PORT, timeout=20)
    s.ehlo("client.example")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("client.example")
    refused = s.sendmail("sender@example.com", ["mail@localhost"],
                         b"Subject: tls\r\n\r\ntls body\r\n")
    assert not refused, refused
    s.quit()
    print("starttls ok")


def dsn():
    c = Conn()
    ehlo = start(c)
    assert "DSN" in ehlo and "LIMITS RCPTMAX=" in ehlo, ehlo
    c.send(b"MAIL FROM:<sender@example.com> RET=HDRS ENVID=env+2Bid\r\n"
           b"RCPT TO:<mail@localhost> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;mail+40localhost\r\n"
           b"DATA\r\n")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    c.expect(354, "DATA")
    c.send(b"Subject: dsn\r\n\r\ndsn body\r\n.\r\n")
    c.expect(250, "message")
    c.send(b"QUIT\r\n")
    print("dsn ok")


def rcptmax():
    c = Conn()
    start(c)
    c.send(b"MAIL FROM:<sender@example.com>\r\n")
    c.expect(250, "MAIL")
    for i in range(100):
        c.send(b"RCPT TO:<mail+%d@localhost>\r\n" % i)
        c.expect(250, f"RCPT {i}")
    c.send(b"RCPT TO:<mail+x@localhost>\r\n")
    text = c.expect(452, "RCPT 101")
    assert "4.5.3" in text, text
    c.send(b"QUIT\r\n")
    print("rcptmax ok")


def oversize():
    c = Conn()
    start(c)
    c.send(b"MAIL FROM:<sender@example.com> SIZE=999999999999\r\n")
    c.expect(552, "SIZE over limit")
    c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<mail@localhost>\r\nDATA\r\n")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    c.expect(354, "DATA")
    line = b"x" * 998 + b"\r\n"
    c.send(b"Subject: big\r\n\r\n" + line * 1200 + b".\r\n")
    text = c.expect(552, "oversize DATA")
    assert "5.3.4" in text, text
    c.send(b"QUIT\r\n")
    print("oversize ok")


def tempfail():
    c = Conn()
    start(c)
    c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<mail@localhost>\r\nDATA\r\n")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    c.expect(354, "DATA")
    c.send(b"Subject: temp\r\n\r\nbody\r\n.\r\n")
    text = c.expect(451, "store down")
    assert "4.3.0" in text, text
    c.send(b"QUIT\r\n")
    print("tempfail ok")


def tarpit():
    """Failing commands are answered more and more slowly, then the
    connection is closed."""
    import time
    c = Conn()
    start(c)
    c.send(b"MAIL FROM:<sender@example.com>\r\n")
    c.expect(250, "MAIL")
    t0 = time.monotonic()
    for i in range(5):
        c.send(b"RCPT TO:<nobody%d@localhost>\r\n" % i)
        c.expect(550, f"unknown recipient {i}")
    took = time.monotonic() - t0
    # errors 4 and 5 wait 0.5 s and 1 s
    if took < 1.4:
        raise SystemExit(f"no tarpit: 5 failures took {took:.2f} s")
    print(f"tarpit: 5 failures took {took:.2f} s")
    print("tarpit ok")


def ratelimit_msgs():
    c = Conn()
    start(c)
    for i in range(2):
        c.send(b"MAIL FROM:<sender@example.com>\r\n")
        c.expect(250, f"MAIL {i}")
        c.send(b"RSET\r\n")
        c.expect(250, "RSET")
    c.send(b"MAIL FROM:<sender@example.com>\r\n")
    text = c.expect(451, "third MAIL")
    assert "4.7.1" in text, text
    print("ratelimit-msgs ok")


def greeting():
    """Prints the first reply (for admission checks)."""
    c = Conn()
    code, text = c.reply()
    print(text)


def mid_data():
    """Runs argv[3] (a shell command that stops the store) in the middle of
    DATA; the message must then get a 4xx."""
    import subprocess
    c = Conn()
    start(c)
    c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<mail@localhost>\r\nDATA\r\n")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    c.expect(354, "DATA")
    c.send(b"Subject: mid-data\r\n\r\nfirst half\r\n")
    subprocess.run(sys.argv[3], shell=True, check=True)
    c.send(b"second half\r\n.\r\n")
    # smtp-in waits SMTP_IN_DELIVER_TIMEOUT_MS (30 s) for a hung store
    c.s.settimeout(90)
    code, text = c.reply()
    if code // 100 != 4:
        raise SystemExit(f"store stopped: expected 4xx, got {text!r}")
    print(f"mid-data: {text}")


{"bdat": bdat, "mid-data": mid_data, "tarpit": tarpit, "ratelimit-msgs": ratelimit_msgs, "greeting": greeting, "smuggle": smuggle, "starttls-inject": starttls_inject, "starttls": starttls, "utf8": utf8,
 "dsn": dsn, "rcptmax": rcptmax, "oversize": oversize, "tempfail": tempfail}[SCENARIO]()
