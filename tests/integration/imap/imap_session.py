#!/usr/bin/env python3
"""Scripted IMAP sessions against mailfleet: every command of issue 3.

Usage: imap_session.py HOST PORT_STARTTLS PORT_TLS USER PASSWORD

A small raw client (Conn) sends exact command lines and collects the
untagged and tagged responses, so the checks can look at response codes
and untagged data precisely; imaplib is used too, as a real client.
Exits non-zero on the first failed check."""
import imaplib
import re
import socket
import ssl
import sys
import threading
import time

HOST, PORT, PORT_TLS, USER, PASSWORD = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
CHECKS = 0


def check(cond, what, detail=""):
    global CHECKS
    if not cond:
        print("FAIL: %s %s" % (what, detail), file=sys.stderr)
        sys.exit(1)
    CHECKS += 1


def tls_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the embedded default's self-signed certificate
    return ctx


class Conn:
    """One IMAP connection; cmd() returns (untagged lines, tagged line)."""

    def __init__(self, port=PORT, tls=False):
        self.sock = socket.create_connection((HOST, port), timeout=15)
        if tls:
            self.sock = tls_ctx().wrap_socket(self.sock, server_hostname=HOST)
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("connection closed; have %r" % self.buf)
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def exact(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def response(self):
        """One response with literals joined in: returns bytes."""
        out = self.line()
        while True:
            m = re.search(rb"~?\{(\d+)\}$", out)
            if not m:
                return out
            out += b"\r\n" + self.exact(int(m.group(1)))
            out += self.line()

    def send(self, data):
        self.sock.sendall(data)

    def starttls(self):
        self.sock = tls_ctx().wrap_socket(self.sock, server_hostname=HOST)
        self.buf = b""

    def cmd(self, text, literals=()):
        """Sends 'tag text'; text may hold {n} markers followed by the
        literal data in literals (synchronising: waits for '+')."""
        self.n += 1
        tag = b"t%d" % self.n
        if isinstance(text, str):
            text = text.encode()
        parts = text.split(b"\x00")  # \x00 marks where a literal's data goes
        self.send(tag + b" " + parts[0] + (b"\r\n" if len(parts) > 1 else b""))
        for i, lit in enumerate(literals):
            if not parts[i].endswith(b"+}"):
                cont = self.line()
                check(cont.startswith(b"+"), "continuation for literal", cont)
            self.send(lit + parts[i + 1] + (b"\r\n" if i + 2 < len(parts) else b""))
        self.send(b"\r\n")
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                return untagged, r[len(tag) + 1:]
            untagged.append(r)

    def ok(self, text, literals=(), what=None):
        u, t = self.cmd(text, literals)
        check(t.startswith(b"OK"), what or text, t)
        return u, t

    def close(self):
        self.sock.close()


def find(lines, pattern):
    rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern, re.S)
    return [l for l in lines if rx.search(l)]


MSG1 = (b"From: Alice <alice@example.com>\r\n"
        b"To: Bob <bob@example.net>\r\n"
        b"Subject: Quarterly report\r\n"
        b"Date: Tue, 14 May 2024 10:00:00 +0000\r\n"
        b"Message-ID: <q1@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b1\r\n"
        b"\r\n"
        b"--b1\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Die Zahlen sind gr=C3=B6=C3=9Fer.\r\n"
        b"--b1\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"AAECAw==\r\n"
        b"--b1--\r\n")
MSG2 = b"From: carol@example.com\r\nTo: bob@example.net\r\nSubject: lunch\r\n\r\nPizza today?\r\n"


def test_auth():
    c = Conn()
    check(c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev2 IMAP4rev1"), "greeting", c.greeting)
    u, t = c.ok("CAPABILITY")
    check(find(u, r"STARTTLS") and find(u, r"AUTH=PLAIN"), "pre-login capabilities", u)
    u, t = c.cmd("SELECT INBOX")
    check(t == b"BAD log in first", "SELECT before login", t)
    u, t = c.cmd("LOGIN %s wrong" % USER)
    check(t.startswith(b"NO [AUTHENTICATIONFAILED]"), "bad password", t)
    u, t = c.cmd("FOO")
    check(t == b"BAD unknown command", "unknown command", t)
    # STARTTLS, then LOGIN inside TLS; pipelined bytes after STARTTLS are dropped.
    c.send(b"s1 STARTTLS\r\ns2 NOOP\r\n")
    r = c.line()
    check(r.startswith(b"s1 OK"), "STARTTLS", r)
    c.starttls()
    u, t = c.ok("CAPABILITY")
    check(not find(u, r"STARTTLS"), "no STARTTLS after TLS", u)
    check(not find(u, r"^s2 "), "command pipelined after STARTTLS was dropped", u)
    u, t = c.ok("LOGIN %s %s" % (USER, PASSWORD))
    check(b"[CAPABILITY" in t, "LOGIN returns capabilities", t)
    u, t = c.cmd("LOGIN %s %s" % (USER, PASSWORD))
    check(t == b"BAD already logged in", "LOGIN twice", t)
    u, t = c.ok("LOGOUT")
    check(find(u, r"^\* BYE"), "LOGOUT BYE", u)
    c.close()

    # Port 993: implicit TLS with imaplib; AUTHENTICATE PLAIN.
    m = imaplib.IMAP4_SSL(HOST, PORT_TLS, ssl_context=tls_ctx())
    typ, data = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER, PASSWORD)).encode())
    check(typ == "OK", "AUTHENTICATE PLAIN over 993", data)
    m.logout()

    # SASL-IR: AUTHENTICATE PLAIN with the initial response; LOGIN mechanism.
    import base64
    c = Conn(PORT_TLS, tls=True)
    ir = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode()).decode()
    c.ok("AUTHENTICATE PLAIN " + ir, what="AUTHENTICATE PLAIN with SASL-IR")
    c.close()
    c = Conn(PORT_TLS, tls=True)
    c.n += 1
    c.send(b"x AUTHENTICATE LOGIN\r\n")
    check(c.line() == b"+ VXNlcm5hbWU6", "LOGIN mechanism user prompt")
    c.send(base64.b64encode(USER.encode()) + b"\r\n")
    check(c.line() == b"+ UGFzc3dvcmQ6", "LOGIN mechanism password prompt")
    c.send(base64.b64encode(PASSWORD.encode()) + b"\r\n")
    r = c.line()
    check(r.startswith(b"x OK"), "AUTHENTICATE LOGIN", r)
    c.close()
    # Cancelled exchange.
    c = Conn()
    c.send(b"y AUTHENTICATE PLAIN\r\n")
    check(c.line().startswith(b"+"), "PLAIN continuation")
    c.send(b"*\r\n")
    check(c.line() == b"y BAD authentication cancelled", "cancel AUTHENTICATE")
    c.close()


def login(rev2=False, tls=False):
    c = Conn(PORT_TLS if tls else PORT, tls=tls)
    c.ok("LOGIN %s %s" % (USER, PASSWORD))
    if rev2:
        u, t = c.ok("ENABLE IMAP4rev2")
        check(find(u, r"^\* ENABLED IMAP4rev2$"), "ENABLE IMAP4rev2", u)
    return c


def test_mailboxes():
    c = login()
    u, t = c.ok("ID (\"name\" \"test\")")
    check(find(u, r'^\* ID \("name" "mailfleet"'), "ID", u)
    u, t = c.ok("NAMESPACE")
    check(u == [b'* NAMESPACE (("" "/")) NIL NIL'], "NAMESPACE", u)
    u, t = c.ok('LIST "" ""')
    check(u == [b'* LIST (\\Noselect) "/" ""'], "LIST separator", u)
    c.ok("CREATE Projects/2024/Q1")
    c.ok("CREATE \"Entw&APw-rfe\"")
    u, t = c.cmd("CREATE \"Bad&Name\"")
    check(t.startswith(b"NO"), "invalid modified UTF-7 refused", t)
    u, t = c.cmd("CREATE \"#news\"")
    check(t.startswith(b"NO"), "'#' first refused", t)
    c.ok('CREATE "a*b%c#d"', what="'*', '%' and '#' inside names")
    u, t = c.cmd("CREATE Projects")
    check(t.startswith(b"NO [ALREADYEXISTS]"), "CREATE existing", t)
    c.ok("CREATE Receipts (USE (\\Archive))", what="CREATE-SPECIAL-USE")
    u, t = c.cmd("CREATE Other (USE (\\Bogus))")
    check(t.startswith(b"NO [USEATTR]"), "unknown special-use", t)
    u, t = c.ok('LIST "" "*"')
    check(find(u, r'^\* LIST \(\\HasChildren\) "/" "Projects"$'), "LIST parent", u)
    check(find(u, r'^\* LIST \(\\HasNoChildren\) "/" "Projects/2024/Q1"$'), "LIST child", u)
    check(find(u, r'"Entw&APw-rfe"$'), "LIST in modified UTF-7", u)
    check(find(u, r'\\Sent\) "/" "Sent"'), "LIST special-use", u)
    u, t = c.ok('LIST "" "%"')
    check(not find(u, r'Projects/2024'), "LIST % stops at separator", u)
    u, t = c.ok('LIST "Projects/" "%"')
    check(find(u, r'"Projects/2024"$') and len(u) == 1, "LIST with reference", u)
    u, t = c.ok('LIST (SPECIAL-USE) "" "*"')
    check(find(u, r'\\Archive\) "/" "Receipts"') and not find(u, r'"Projects"'), "LIST (SPECIAL-USE)", u)
    u, t = c.ok('LIST "" ("INBOX" "Sent") RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))')
    check(find(u, r'^\* STATUS "Sent" \(MESSAGES \d+ UNSEEN \d+ UIDNEXT \d+\)$'), "LIST-STATUS", u)
    c.ok("SUBSCRIBE Projects")
    u, t = c.ok('LIST (SUBSCRIBED) "" "*"')
    check(find(u, r'\\Subscribed\) "/" "Projects"$'), "LIST (SUBSCRIBED)", u)
    u, t = c.ok('LSUB "" "*"')
    check(find(u, r'^\* LSUB \(\) "/" "Projects"$'), "LSUB", u)
    u, t = c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)')
    check(find(u, r'"Projects"'), "RECURSIVEMATCH", u)
    c.ok("UNSUBSCRIBE Projects")
    u, t = c.ok('LSUB "" "*"')
    check(not find(u, r'"Projects"'), "UNSUBSCRIBE", u)
    c.ok("RENAME Projects/2024 Projects/2025")
    u, t = c.ok('LIST "" "Projects/*"')
    check(find(u, r'"Projects/2025/Q1"$') and not find(u, r'2024'), "RENAME moves children", u)
    u, t = c.cmd("DELETE Projects")
    check(t.startswith(b"NO"), "DELETE with children refused", t)
    c.ok("DELETE Projects/2025/Q1")
    c.ok("DELETE Projects/2025")
    c.ok("DELETE Projects")
    u, t = c.cmd("DELETE INBOX")
    check(t.startswith(b"NO"), "DELETE INBOX refused", t)
    u, t = c.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)")
    check(find(u, r"^\* STATUS \"INBOX\" \(MESSAGES \d+ UIDNEXT \d+ UIDVALIDITY \d+ UNSEEN \d+ DELETED \d+ SIZE \d+ RECENT 0\)$"), "STATUS", u)
    u, t = c.cmd("STATUS Nope (MESSAGES)")
    check(t.startswith(b"NO [NONEXISTENT]"), "STATUS missing mailbox", t)
    c.ok("LOGOUT")
    # UTF-8 names once IMAP4rev2 (or UTF8=ACCEPT) is enabled.
    c = login(rev2=True)
    u, t = c.ok('LIST "" "Entw*"')
    check(u == ['* LIST (\\HasNoChildren) "/" "Entwürfe"'.encode()], "LIST in UTF-8 under rev2", u)
    u, t = c.cmd('LSUB "" "*"')
    check(t.startswith(b"BAD"), "no LSUB in rev2", t)
    c.ok('DELETE "Entwürfe"'.encode())
    c.ok('DELETE "a*b%c#d"')
    c.ok("DELETE Receipts")
    c.ok("LOGOUT")


def test_messages():
    c = login()
    c.ok("CREATE Work")
    u, t = c.ok("APPEND Work (\\Flagged $Important) \"14-May-2024 12:00:00 +0200\" {%d}\x00" % len(MSG1),
                [MSG1], what="APPEND with flags and date")
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", t)
    check(m is not None, "APPENDUID", t)
    uidvalidity, uid1 = int(m.group(1)), int(m.group(2))
    # LITERAL+: no continuation.
    u, t = c.ok("APPEND Work {%d+}\x00" % len(MSG2), [MSG2], what="APPEND with LITERAL+")
    uid2 = int(re.search(rb"APPENDUID \d+ (\d+)", t).group(1))
    # A big message (its literal is not copied again inside the server).
    big = b"From: big@example.com\r\nSubject: big\r\n\r\n" + b"".join(
        b"line %07d of a big message.............................................\r\n" % i
        for i in range(15000))
    u, t = c.ok("APPEND Work {%d}\x00" % len(big), [big], what="APPEND of %d bytes" % len(big))
    uid_big = int(re.search(rb"APPENDUID \d+ (\d+)", t).group(1))
    u, t = c.cmd("APPEND Missing {%d}\x00" % len(MSG2), [MSG2])
    check(t.startswith(b"NO [TRYCREATE]"), "APPEND to missing mailbox", t)

    u, t = c.ok("EXAMINE Work")
    check(t.startswith(b"OK [READ-ONLY]"), "EXAMINE read-only", t)
    u, t = c.cmd("STORE 1 +FLAGS (\\Seen)")
    check(t.startswith(b"NO [READ-ONLY]"), "STORE in EXAMINE", t)
    u, t = c.ok("FETCH 1 BODY[]")
    u, t = c.ok("FETCH 1 FLAGS")
    check(b"\\Seen" not in u[0], "EXAMINE does not set \\Seen", u)

    u, t = c.ok("SELECT Work")
    check(t.startswith(b"OK [READ-WRITE]"), "SELECT read-write", t)
    check(find(u, r"^\* 3 EXISTS$"), "SELECT EXISTS", u)
    check(find(u, r"^\* OK \[UIDVALIDITY %d\]" % uidvalidity), "SELECT UIDVALIDITY", u)
    check(find(u, r"^\* OK \[UIDNEXT %d\]" % (uid_big + 1)), "SELECT UIDNEXT", u)
    check(find(u, r"^\* OK \[PERMANENTFLAGS"), "SELECT PERMANENTFLAGS", u)
    u, t = c.ok("UID FETCH %d (RFC822.SIZE BODY.PEEK[] BODY.PEEK[]<1000000.100>)" % uid_big)
    check(len(u) == 1 and big in u[0] and b"RFC822.SIZE %d" % len(big) in u[0] and
          b"BODY[]<1000000> {100}\r\n" + big[1000000:1000100] in u[0], "FETCH of the big message")
    u, t = c.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid_big)
    u, t = c.ok("EXPUNGE")
    check(u == [b"* 3 EXPUNGE"], "big message expunged", u)

    u, t = c.ok("FETCH 1 (UID FLAGS RFC822.SIZE INTERNALDATE)")
    check(find(u, r'^\* 1 FETCH \(UID %d FLAGS \(\\Flagged \$Important\) RFC822.SIZE %d INTERNALDATE "14-May-2024 10:00:00 \+0000"\)$' % (uid1, len(MSG1))),
          "FETCH attributes", u)
    u, t = c.ok("FETCH 1 ENVELOPE")
    check(find(u, r'ENVELOPE \("Tue, 14 May 2024 10:00:00 \+0000" "Quarterly report" \(\("Alice" NIL "alice" "example.com"\)\)'), "ENVELOPE", u)
    # Sizes and line counts as Dovecot 2.3.19 reports them for MSG1: the
    # text part's only line ends at the boundary's CRLF, so it has 0 lines.
    u, t = c.ok("FETCH 1 BODYSTRUCTURE")
    check(find(u, r'BODYSTRUCTURE \(\("TEXT" "PLAIN" \("CHARSET" "utf-8"\) NIL NIL "QUOTED-PRINTABLE" 33 0 NIL NIL NIL NIL\)\("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 8 NIL NIL NIL NIL\) "MIXED"'), "BODYSTRUCTURE", u)
    u, t = c.ok("FETCH 1 BODY")
    check(find(u, r'BODY \(\("TEXT" "PLAIN"'), "BODY", u)
    u, t = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject)]")
    check(find(u, rb'(?i)BODY\[HEADER.FIELDS \(SUBJECT\)\] \{29\}\r\nSubject: Quarterly report\r\n\r\n\)$'), "HEADER.FIELDS", u)
    u, t = c.ok("FETCH 1 BODY.PEEK[1]")
    check(find(u, rb'BODY\[1\] \{33\}\r\nDie Zahlen sind gr=C3=B6=C3=9Fer.\)$'), "BODY[1]", u)
    u, t = c.ok("FETCH 1 BODY.PEEK[1.MIME]")
    check(find(u, rb'BODY\[1.MIME\] \{\d+\}\r\nContent-Type: text/plain; charset=utf-8\r\n'), "BODY[1.MIME]", u)
    u, t = c.ok("FETCH 1 BODY.PEEK[TEXT]<0.4>")
    check(find(u, rb'BODY\[TEXT\]<0> \{4\}\r\n--b1\)$'), "partial TEXT", u)
    u, t = c.ok("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])")
    check(find(u, rb'BINARY\[2\] ~\{4\}\r\n\x00\x01\x02\x03 BINARY.SIZE\[2\] 4\)$'), "BINARY", u)
    u, t = c.ok("FETCH 1 (FLAGS)")
    check(b"\\Seen" not in u[0], "PEEK does not set \\Seen", u)
    u, t = c.ok("FETCH 1 BODY[HEADER]")
    check(find(u, rb"FLAGS \(\\Seen"), "BODY[] sets \\Seen and reports FLAGS", u)
    u, t = c.ok("FETCH 2 (RFC822.HEADER RFC822.TEXT)")
    check(find(u, rb"RFC822.HEADER \{\d+\}\r\nFrom: carol") and find(u, rb"RFC822.TEXT \{14\}\r\nPizza today\?\r\n"), "RFC822.*", u)
    u, t = c.ok("UID FETCH %d:* (FLAGS)" % uid2)
    check(find(u, r"^\* 2 FETCH \(UID %d FLAGS" % uid2), "UID FETCH adds UID", u)
    u, t = c.ok("FETCH 1:2 FAST")
    check(len(u) == 2, "FETCH macro FAST", u)
    u, t = c.cmd("FETCH 3 FLAGS")
    check(t.startswith(b"BAD"), "FETCH beyond EXISTS", t)
    u, t = c.cmd("FETCH 1 BOGUS")
    check(t.startswith(b"BAD"), "unknown FETCH item", t)

    # SEARCH (rev1 answers SEARCH, RETURN gives ESEARCH).
    u, t = c.ok("SEARCH FROM alice")
    check(u == [b"* SEARCH 1"], "SEARCH FROM", u)
    u, t = c.ok("SEARCH CHARSET UTF-8 BODY \"GRÖSSER\"".encode())
    check(u == [b"* SEARCH 1"], "SEARCH CHARSET UTF-8 BODY with case folding", u)
    u, t = c.cmd("SEARCH CHARSET ISO-8859-1 BODY x")
    check(t.startswith(b"NO [BADCHARSET"), "BADCHARSET", t)
    u, t = c.ok("UID SEARCH OR SUBJECT lunch KEYWORD $Important")
    check(u == [b"* SEARCH %d %d" % (uid1, uid2)], "UID SEARCH OR", u)
    u, t = c.ok("SEARCH SENTON 14-May-2024 NOT DELETED LARGER 10 SINCE 1-Jan-2020")
    check(u == [b"* SEARCH 1"], "SEARCH dates and size", u)
    u, t = c.ok("SEARCH RETURN (MIN MAX COUNT) ALL")
    check(find(u, r'^\* ESEARCH \(TAG "t\d+"\) MIN 1 MAX 2 COUNT 2$'), "ESEARCH", u)
    u, t = c.ok("SEARCH RETURN (SAVE) SUBJECT lunch")
    check(u == [], "SEARCHRES SAVE returns nothing", u)
    u, t = c.ok("FETCH $ (UID)")
    check(find(u, r"^\* 2 FETCH \(UID %d\)$" % uid2), "FETCH $", u)
    u, t = c.cmd("SEARCH FOO")
    check(t == b"BAD unknown search key FOO", "SEARCH bad key", t)

    # STORE
    u, t = c.ok("STORE 2 +FLAGS (\\Answered Later)")
    check(u == [b"* 2 FETCH (FLAGS (\\Seen \\Answered Later))"], "STORE +FLAGS (RFC822.TEXT set \\Seen)", u)
    u, t = c.ok("STORE 2 -FLAGS.SILENT (Later)")
    check(u == [], "STORE .SILENT", u)
    u, t = c.ok("UID STORE %d FLAGS (\\Seen)" % uid2)
    check(u == [b"* 2 FETCH (UID %d FLAGS (\\Seen))" % uid2], "UID STORE FLAGS", u)
    u, t = c.ok("SEARCH SEEN")
    check(u == [b"* SEARCH 1 2"], "SEARCH after STORE", u)

    # COPY / MOVE with UIDPLUS
    c.ok("CREATE Archive2")
    u, t = c.ok("COPY 1:2 Archive2")
    check(re.search(rb"\[COPYUID \d+ %d:%d \d+:\d+\]" % (uid1, uid2), t), "COPYUID", t)
    u, t = c.cmd("COPY 1 Nope")
    check(t.startswith(b"NO [TRYCREATE]"), "COPY to missing mailbox", t)
    u, t = c.ok("UID MOVE %d Archive2" % uid2)
    check(find(u, r"^\* OK \[COPYUID \d+ %d \d+\]" % uid2) and find(u, r"^\* 2 EXPUNGE$"), "UID MOVE", u)
    u, t = c.ok("STATUS Archive2 (MESSAGES)")
    check(find(u, r"MESSAGES 3"), "MOVE destination count", u)

    # EXPUNGE and UID EXPUNGE
    u, t = c.ok("APPEND Work {%d}\x00" % len(MSG2), [MSG2])
    check(find(u, r"^\* 2 EXISTS$"), "APPEND to the selected mailbox shows as EXISTS", u)
    c.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    uids = [int(x) for x in re.findall(rb"UID (\d+)", b" ".join(c.ok("FETCH 1:2 UID")[0]))]
    u, t = c.ok("UID EXPUNGE %d" % uids[1])
    check(u == [b"* 2 EXPUNGE"], "UID EXPUNGE only the given UID", u)
    u, t = c.ok("EXPUNGE")
    check(u == [b"* 1 EXPUNGE"], "EXPUNGE", u)
    u, t = c.ok("SELECT Archive2")
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("CLOSE")
    u, t = c.ok("STATUS Archive2 (MESSAGES)")
    check(find(u, r"MESSAGES 2"), "CLOSE expunges", u)
    c.ok("SELECT Archive2")
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("UNSELECT")
    u, t = c.ok("STATUS Archive2 (MESSAGES DELETED)")
    check(find(u, r"MESSAGES 2 DELETED 1"), "UNSELECT does not expunge", u)
    u, t = c.cmd("FETCH 1 FLAGS")
    check(t == b"BAD no mailbox selected", "FETCH after UNSELECT", t)
    c.ok("DELETE Archive2")
    c.ok("DELETE Work")
    c.ok("LOGOUT")


def test_two_sessions():
    a = login(rev2=True)
    b = login()
    a.ok("CREATE Shared")
    a.ok("SELECT Shared")
    u, t = a.ok("FETCH 1:* (FLAGS)", what="FETCH 1:* in an empty mailbox")
    check(u == [], "nothing fetched from an empty mailbox", u)
    b.ok("SELECT Shared")
    # IDLE in a; b appends; a sees EXISTS without asking.
    a.n += 1
    a.send(b"idle1 IDLE\r\n")
    check(a.line() == b"+ idling", "IDLE continuation")
    u, t = b.ok("APPEND Shared {%d}\x00" % len(MSG2), [MSG2])
    check(find(u, r"^\* 1 EXISTS$"), "b sees its APPEND", u)
    a.sock.settimeout(5)
    r = a.line()
    check(r == b"* 1 EXISTS", "IDLE sees other session's APPEND", r)
    # Flag change from b reaches a during IDLE.
    b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
    r = a.line()
    check(r == b"* 1 FETCH (UID 1 FLAGS (\\Flagged))", "IDLE sees flag change", r)
    a.send(b"DONE\r\n")
    check(a.line() == b"idle1 OK IDLE terminated", "IDLE DONE")
    # Expunge in b: a sees no EXPUNGE during FETCH, but on NOOP.
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    u, t = a.ok("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])")
    check(not find(u, r"EXPUNGE") and find(u, rb"Subject: lunch"), "expunged message still readable before EXPUNGE is told", u)
    u, t = a.ok("NOOP")
    check(find(u, r"^\* 1 EXPUNGE$"), "EXPUNGE told on NOOP", u)
    # A delivery-like append from a third session while a idles in another mailbox state.
    a.ok("UNSELECT")
    a.ok("DELETE Shared")
    # b had the deleted mailbox selected: it is told so and disconnected.
    b.send(b"n1 NOOP\r\n")
    lines = []
    try:
        while True:
            lines.append(b.line())
    except (EOFError, OSError):
        pass
    check(find(lines, r"^\* BYE \[UNAVAILABLE\] selected mailbox was deleted"), "session of a deleted mailbox", lines)
    a.ok("LOGOUT")
    b.close()


def test_imaplib():
    m = imaplib.IMAP4(HOST, PORT)
    m.login(USER, PASSWORD)
    typ, _ = m.create("Lib")
    check(typ == "OK", "imaplib create")
    typ, data = m.append("Lib", "(\\Seen)", imaplib.Time2Internaldate(time.time()), MSG2)
    check(typ == "OK", "imaplib append", data)
    typ, data = m.select("Lib")
    check(typ == "OK" and data == [b"1"], "imaplib select", data)
    typ, data = m.fetch("1", "(RFC822)")
    check(typ == "OK" and data[0][1] == MSG2, "imaplib fetch RFC822", data)
    typ, data = m.search(None, "TEXT", "pizza")
    check(data == [b"1"], "imaplib search", data)
    m.close()
    m.delete("Lib")
    m.logout()


def test_limits():
    c = Conn()
    u, t = c.cmd("LOGIN {100000}")
    check(t.startswith(b"NO [TOOBIG]"), "literal limit before login", t)
    c.send(b"x" * 70000 + b"\r\n")
    r = c.line()
    check(r == b"* BAD line too long", "line limit", r)
    c.ok("NOOP", what="session goes on after limit errors")
    c.close()
    time.sleep(0.5)
    # Connections per IP before login: the 11th waiting one is refused,
    # and logging in frees a slot.
    conns = [Conn() for _ in range(10)]
    extra = Conn()
    check(extra.greeting.startswith(b"* BYE [UNAVAILABLE] too many connections"), "per-IP limit before login", extra.greeting)
    extra.close()
    conns[0].ok("LOGIN %s %s" % (USER, PASSWORD))
    time.sleep(0.2)
    extra = Conn()
    check(extra.greeting.startswith(b"* OK"), "login frees a pre-login slot", extra.greeting)
    extra.close()
    for x in conns:
        x.close()


test_auth()
test_mailboxes()
test_messages()
test_two_sessions()
test_imaplib()
test_limits()
print("imap_session.py: %d checks passed" % CHECKS)
