#!/usr/bin/env python3
"""smtp-in scenarios of test_smtp_in.sh on the embedded default, checked in
the real store over IMAP (for test_smtp_in_embedded.sh).

usage: embedded_check.py SMTP_PORT IMAP_PORT MAIL_PASSWORD OTHER_PASSWORD
The accounts: mail (mail@localhost) and other (other@localhost and the
UTF-8 address jöe@localhost); the alias team@localhost has both as members.
Prints one line per scenario; exits non-zero with a message on failure."""
import imaplib
import re
import smtplib
import socket
import ssl
import sys
import time
import uuid

SMTP_PORT, IMAP_PORT = int(sys.argv[1]), int(sys.argv[2])
LOGINS = {"mail": ("mail@localhost", sys.argv[3]), "other": ("other@localhost", sys.argv[4])}


def fail(what):
    raise SystemExit("FAIL: " + what)


class Conn:
    """A raw SMTP connection, for what smtplib does not let us shape."""

    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", SMTP_PORT), timeout=30)
        self.f = self.s.makefile("rb")
        self.expect(220, "greeting")

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                fail("connection closed while waiting for a reply")
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(lines)

    def expect(self, code, what):
        c, text = self.reply()
        if c != code:
            fail(f"{what}: expected {code}, got {text!r}")
        return text

    def close(self):
        self.send(b"QUIT\r\n")
        self.s.close()


def new_id():
    return "emb-%s@example.com" % uuid.uuid4().hex[:12]


def message(msgid, subject, body):
    return (b"From: sender@example.com\r\nTo: mail@localhost\r\nSubject: " +
            subject.encode() + b"\r\nMessage-ID: <" + msgid.encode() + b">\r\n\r\n" + body)


def imap_login(account):
    m = imaplib.IMAP4("127.0.0.1", IMAP_PORT)
    m.login(*LOGINS[account])
    return m


def stored(account, msgid, mailbox="INBOX", wait=True):
    """The stored copies (RFC822 bytes) of msgid in account's mailbox."""
    deadline = time.time() + (10 if wait else 0)
    while True:
        m = imap_login(account)
        typ, data = m.select(mailbox, readonly=True)
        if typ != "OK":
            fail(f"select {mailbox} of {account}: {data}")
        typ, data = m.uid("SEARCH", None, "HEADER", "Message-ID", msgid)
        uids = data[0].split()
        got = []
        for uid in uids:
            typ, d = m.uid("FETCH", uid, "(BODY.PEEK[])")
            got.append(d[0][1])
        m.logout()
        if got or time.time() >= deadline:
            return got
        time.sleep(0.3)


def strip_prefix(got):
    """The message as sent: what follows our Received field (the last
    field the store and smtp-in prepend)."""
    i = got.index(b"\r\nReceived: ")
    rest = got[i + 2:]
    # the field ends at the first line end not followed by white space
    k = 0
    while True:
        k = rest.index(b"\r\n", k) + 2
        if rest[k:k + 1] not in (b" ", b"\t"):
            break
    return got[:i + 2], rest[:k], rest[k:]


def one_copy(account, msgid, sent, what):
    got = stored(account, msgid)
    if len(got) != 1:
        fail(f"{what}: {account} has {len(got)} copies")
    prefix, received, rest = strip_prefix(got[0])
    if rest != sent:
        fail(f"{what}: stored message differs:\n{rest[:300]!r}\nsent\n{sent[:300]!r}")
    return prefix, received


def ehlo_size():
    c = Conn()
    c.send(b"EHLO client.example\r\n")
    text = c.expect(250, "EHLO")
    c.close()
    m = re.search(r"250[- ]SIZE (\d+)", text)
    if m is None:
        fail("EHLO without SIZE: " + text)
    return int(m.group(1)), text


def plain():
    msgid = new_id()
    sent = message(msgid, "plain", b"first line\r\n.leading dot\r\nlast line\r\n")
    s = smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30)
    s.ehlo("client.example")
    if s.sendmail("sender@example.com", ["mail@localhost"], sent):
        fail("plain: refused")
    s.quit()
    prefix, received = one_copy("mail", msgid, sent, "plain")
    if not prefix.startswith(b"Return-Path: <sender@example.com>\r\nDelivered-To: mail@localhost\r\n"):
        fail(f"plain: prefix {prefix!r}")
    if not received.startswith(b"Received: from client.example ([127.0.0.1])"):
        fail(f"plain: Received {received!r}")
    print("plain: one copy, byte for byte after Return-Path, Delivered-To, Received")


def starttls():
    msgid = new_id()
    sent = message(msgid, "tls", b"over TLS\r\n")
    s = smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30)
    s.ehlo("client.example")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("client.example")
    if s.sendmail("sender@example.com", ["mail@localhost"], sent):
        fail("starttls: refused")
    s.quit()
    prefix, received = one_copy("mail", msgid, sent, "starttls")
    if not re.search(rb"with ESMTPS \(TLSv1\.[23] ", received):
        fail(f"starttls: Received {received!r}")
    print("STARTTLS: stored byte for byte, Received says ESMTPS with the TLS version")


def pipelining():
    msgid = new_id()
    sent = message(msgid, "pipelined", b"pipelined body\r\n")
    c = Conn()
    c.send(b"EHLO client.example\r\n")
    if "PIPELINING" not in c.expect(250, "EHLO"):
        fail("no PIPELINING")
    # RFC 2920: MAIL, RCPTs and DATA in one write; then the data.
    c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<nobody@localhost>\r\n"
           b"RCPT TO:<mail@localhost>\r\nDATA\r\n")
    c.expect(250, "pipelined MAIL")
    c.expect(550, "pipelined unknown RCPT")
    c.expect(250, "pipelined RCPT")
    c.expect(354, "pipelined DATA")
    c.send(sent + b".\r\n")
    c.expect(250, "pipelined message")
    c.close()
    one_copy("mail", msgid, sent, "pipelining")
    print("PIPELINING: MAIL, RCPT (one unknown), DATA in one write; one copy stored")


def bdat():
    msgid = new_id()
    part1 = message(msgid, "bdat", b"first chunk\r\n")
    part2 = b".leading dot stays\r\n\r\nbinary-ish \x01\x7f bytes\r\n"
    part3 = b"last chunk without dot-stuffing\r\n.\r\n"
    c = Conn()
    c.send(b"EHLO client.example\r\n")
    if "CHUNKING" not in c.expect(250, "EHLO"):
        fail("no CHUNKING")
    c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<mail@localhost>\r\n")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    c.expect(250, "BDAT 1")
    c.send(b"BDAT %d\r\n" % len(part2) + part2)
    c.expect(250, "BDAT 2")
    c.send(b"BDAT %d LAST\r\n" % len(part3) + part3)
    c.expect(250, "BDAT LAST")
    c.close()
    one_copy("mail", msgid, part1 + part2 + part3, "bdat")
    print("BDAT: three chunks stored byte for byte (dots untouched)")


def smtputf8():
    msgid = new_id()
    sent = ("From: jöe@bücher.example\r\nTo: jöe@localhost\r\nSubject: grüße\r\n"
            "Message-ID: <%s>\r\n\r\nhällo wörld\r\n" % msgid).encode()
    s = smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30)
    s.ehlo("client.example")
    if not s.has_extn("smtputf8"):
        fail("no SMTPUTF8")
    refused = s.sendmail("jöe@bücher.example", ["jöe@localhost"], sent,
                         mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    if refused:
        fail(f"smtputf8: refused {refused}")
    # Without SMTPUTF8 a UTF-8 address is refused (RFC 6531 3.2).
    code, text = s.docmd("MAIL FROM:<jöe@bücher.example>".encode().decode("latin-1"))
    if code != 553:
        fail(f"smtputf8: UTF-8 sender without SMTPUTF8 got {code} {text}")
    s.quit()
    prefix, received = one_copy("other", msgid, sent, "smtputf8")
    # Return-Path keeps the sender as given (the domain may be the U-label
    # or the A-label form); Delivered-To is the UTF-8 address.
    if not re.match(rb"Return-Path: <j\xc3\xb6e@(b\xc3\xbccher\.example|xn--bcher-kva\.example)>\r\n",
                    prefix):
        fail(f"smtputf8: Return-Path {prefix!r}")
    if "Delivered-To: jöe@localhost\r\n".encode() not in prefix:
        fail(f"smtputf8: Delivered-To {prefix!r}")
    if b"with UTF8SMTP" not in received:
        fail(f"smtputf8: Received {received!r}")
    if stored("mail", msgid, wait=False):
        fail("smtputf8: mail got a copy")
    print("SMTPUTF8: UTF-8 sender, localpart and body stored and fetched intact")


def alias():
    # team (mail, other) + mail directly: one copy each.
    msgid = new_id()
    sent = message(msgid, "team", b"to the team\r\n")
    s = smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30)
    s.ehlo("client.example")
    if s.sendmail("sender@example.com", ["team@localhost", "mail@localhost"], sent):
        fail("alias: refused")
    s.quit()
    one_copy("mail", msgid, sent, "alias (member and direct recipient)")
    one_copy("other", msgid, sent, "alias (member)")
    # A member sending to the list gets no copy of their own.
    msgid2 = new_id()
    sent2 = message(msgid2, "from a member", b"from a member\r\n")
    s = smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30)
    s.ehlo("client.example")
    if s.sendmail("mail@localhost", ["team@localhost"], sent2):
        fail("alias from member: refused")
    s.quit()
    one_copy("other", msgid2, sent2, "alias from member")
    if stored("mail", msgid2, wait=False):
        fail("alias: the sending member got a copy")
    print("alias fan-out: one copy per account, one for a member who is also a "
          "direct recipient, none for the sending member")


def oversize():
    limit, _ = ehlo_size()
    c = Conn()
    c.send(b"EHLO client.example\r\n")
    c.expect(250, "EHLO")
    c.send(b"MAIL FROM:<sender@example.com> SIZE=%d\r\n" % (limit + 1))
    text = c.expect(552, "SIZE over the limit")
    if "5.3.4" not in text:
        fail("SIZE over the limit: " + text)
    msgid = new_id()
    c.send(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<mail@localhost>\r\nDATA\r\n")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    c.expect(354, "DATA")
    line = b"x" * 998 + b"\r\n"
    c.send(message(msgid, "big", b""))
    chunk = line * 1000
    n = 0
    while n <= limit:
        c.send(chunk)
        n += len(chunk)
    c.send(b".\r\n")
    text = c.expect(552, "oversize DATA")
    if "5.3.4" not in text:
        fail("oversize DATA: " + text)
    c.close()
    if stored("mail", msgid, wait=False):
        fail("oversize: message stored")
    print(f"oversize: SIZE and data over {limit} bytes refused with 552 5.3.4; nothing stored")


def too_many_recipients():
    msgid = new_id()
    sent = message(msgid, "many", b"many recipients\r\n")
    c = Conn()
    c.send(b"EHLO client.example\r\n")
    ehlo = c.expect(250, "EHLO")
    m = re.search(r"LIMITS RCPTMAX=(\d+)", ehlo)
    rcptmax = int(m.group(1)) if m else 100
    c.send(b"MAIL FROM:<sender@example.com>\r\n")
    c.expect(250, "MAIL")
    # The same recipient many times: accepted, one copy.
    for i in range(rcptmax):
        c.send(b"RCPT TO:<mail@localhost>\r\n")
        c.expect(250, f"RCPT {i + 1}")
    c.send(b"RCPT TO:<mail@localhost>\r\n")
    text = c.expect(452, f"RCPT {rcptmax + 1}")
    if "4.5.3" not in text:
        fail("too many recipients: " + text)
    c.send(b"DATA\r\n")
    c.expect(354, "DATA")
    c.send(sent + b".\r\n")
    c.expect(250, "message")
    c.close()
    one_copy("mail", msgid, sent, "too many recipients")
    print(f"too many recipients: recipient {rcptmax + 1} gets 452 4.5.3; the message is stored once")


def refusals():
    s = smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30)
    s.ehlo("client.example")
    s.mail("sender@example.com")
    code, text = s.rcpt("nobody@localhost")
    if code != 550 or not text.startswith(b"5.1.1"):
        fail(f"unknown recipient: {code} {text}")
    code, text = s.rcpt("victim@example.net")
    if code != 550 or not text.startswith(b"5.7.1"):
        fail(f"relay: {code} {text}")
    s.rset()
    s.mail("mail@localhost")
    code, text = s.rcpt("victim@example.net")
    if code != 550 or not text.startswith(b"5.7.1"):
        fail(f"relay from a local sender: {code} {text}")
    s.quit()
    print("unknown recipient 550 5.1.1; relaying refused with 550 5.7.1 (also for a local sender)")


SCENARIOS = [plain, starttls, pipelining, bdat, smtputf8, alias, oversize,
             too_many_recipients, refusals]

if __name__ == "__main__":
    for f in SCENARIOS:
        f()
