"""Real mail clients for the proxy tests: Python's imaplib / poplib.

usage: client.py PROTO HOST PORT MODE USER PASSWORD [CAFILE]
  PROTO  imap | pop3;  MODE plain | starttls | ssl
Logs in, lists and fetches every message of INBOX, prints one JSON object:
  {"ok": true, "sha256": [...], "sizes": [...]}  or  {"ok": false, "error": "..."}
"""
import hashlib
import imaplib
import json
import poplib
import ssl
import sys


def ctx(cafile):
    c = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    if not cafile:
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
    return c


def imap(host, port, mode, user, password, cafile):
    if mode == "ssl":
        m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx(cafile), timeout=30)
    else:
        m = imaplib.IMAP4(host, port, timeout=30)
        if mode == "starttls":
            m.starttls(ssl_context=ctx(cafile))
    try:
        m.login(user, password)
    except imaplib.IMAP4.error as e:
        return {"ok": False, "error": str(e)}
    caps = list(m.capabilities)
    typ, data = m.select("INBOX", readonly=True)
    n = int(data[0])
    out = []
    if n:
        typ, data = m.fetch(f"1:{n}", "(BODY.PEEK[])")
        out = [d[1] for d in data if isinstance(d, tuple)]
    m.logout()
    return {"ok": True, "capabilities": caps, "sha256": [hashlib.sha256(b).hexdigest() for b in out], "sizes": [len(b) for b in out]}


def pop3(host, port, mode, user, password, cafile):
    if mode == "ssl":
        p = poplib.POP3_SSL(host, port, context=ctx(cafile), timeout=30)
    else:
        p = poplib.POP3(host, port, timeout=30)
        if mode == "starttls":
            p.stls(context=ctx(cafile))
    try:
        p.user(user)
        p.pass_(password)
    except poplib.error_proto as e:
        return {"ok": False, "error": str(e)}
    count, _ = p.stat()
    out = []
    for i in range(1, count + 1):
        _, lines, _ = p.retr(i)
        out.append(b"\r\n".join(lines) + b"\r\n")
    p.quit()
    return {"ok": True, "sha256": [hashlib.sha256(b).hexdigest() for b in out], "sizes": [len(b) for b in out]}


def main():
    proto, host, port, mode, user, password = sys.argv[1:7]
    cafile = sys.argv[7] if len(sys.argv) > 7 else None
    poplib._MAXLINE = 1 << 20
    fn = imap if proto == "imap" else pop3
    try:
        res = fn(host, int(port), mode, user, password, cafile)
    except Exception as e:  # report, do not crash: the test reads the JSON
        res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
