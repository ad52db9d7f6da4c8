"""Drives libshared's SASL code (tests/tools/mf-sasl stdio modes) against
GNU SASL's gsasl in both directions, over pipes: gsasl as client against
our server, and our client against gsasl as server.  Standard library only.

usage: interop.py MF_SASL_TOOL client|server MECH USER PASSWORD [WRONG_PASSWORD]
Prints one line: "ok ..." or "failed ..."; exit 0 when the exchange ended as
expected (success, or failure when a wrong password is given to one side)."""
import subprocess
import sys

tool, direction, mech, user, password = sys.argv[1:6]
wrong = sys.argv[6] if len(sys.argv) > 6 else None


def readline(p):
    line = p.stdout.readline()
    if not line:
        return None
    return line.decode().rstrip("\r\n")


def gsasl_client():
    """gsasl --client against our server."""
    g = subprocess.Popen(["gsasl", "--client", "--no-cb", "-m", mech, "-a", user, "-p",
                          wrong or password, "--quiet"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    s = subprocess.Popen([tool, "stdio-server", mech, user, password],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    first = readline(g)
    if first is not None and first.upper() == mech.upper():
        first = readline(g)   # without --quiet gsasl names the mechanism first
    msg = first
    for _ in range(8):
        if msg is None:
            return "failed: gsasl ended early"
        s.stdin.write((msg or "=").encode() + b"\n")
        s.stdin.flush()
        out = readline(s)
        if out is None:
            return "failed: server ended"
        if out.startswith("OK "):
            return "ok success account=" + out[3:]
        if out.startswith("FAIL"):
            return "ok refused: " + out
        chal = out[2:]
        g.stdin.write(("" if chal == "=" else chal).encode() + b"\n")
        g.stdin.flush()
        msg = readline(g)
    return "failed: too many steps"


def gsasl_server():
    """Our client against gsasl --server.  gsasl's server mode talks in
    labelled lines (its messages and stderr merged): data follows "Output
    from server:", success is "Server authentication finished", failure a
    "gsasl:" error.  It starts with a challenge (empty when the client
    speaks first)."""
    g = subprocess.Popen(["gsasl", "--server", "--no-cb", "-m", mech, "-a", user, "-p",
                          password],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    c = subprocess.Popen([tool, "stdio-client", mech, user, wrong or password],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def server_event():
        while True:
            line = readline(g)
            if line is None:
                return "fail", "gsasl ended"
            if line.startswith("Output from server:"):
                return "chal", readline(g) or ""
            if line.startswith("Server authentication finished"):
                return "ok", line
            if line.startswith("gsasl:"):
                return "fail", line

    def client_step(chal):
        c.stdin.write((chal or "=").encode() + b"\n")
        c.stdin.flush()
        out = readline(c)
        if out is None or out.startswith("ERROR"):
            return None, "ok refused: client: " + str(out)
        return ("" if out[2:] == "=" else out[2:]), None

    def finish(kind, text):
        if kind == "ok":
            c.stdin.write(b"END\n")
            c.stdin.flush()
            verified = readline(c) or ""
            g.stdin.close()
            g.wait()
            return "ok success " + verified
        g.kill()
        return "ok refused: " + text

    init = readline(c)
    kind, data = server_event()
    if kind != "chal":
        return finish(kind, data)
    if init != "I -":
        pending = "" if init[2:] == "=" else init[2:]
    else:
        pending, err = client_step(data)
        if pending is None:
            return err
    for _ in range(8):
        g.stdin.write(pending.encode() + b"\n")
        g.stdin.flush()
        kind, data = server_event()
        if kind != "chal":
            return finish(kind, data)
        pending, err = client_step(data)
        if pending is None:
            return err
    return "failed: too many steps"


result = gsasl_client() if direction == "client" else gsasl_server()
print(result)
want_success = wrong is None
sys.exit(0 if result.startswith("ok success" if want_success else "ok refused") else 1)
