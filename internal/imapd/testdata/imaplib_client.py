#!/usr/bin/env python3
"""Drives postcote's IMAP server with Python's imaplib, as a mail script
would: STARTTLS then LOGIN, SELECT, FETCH, SEARCH, STORE, APPEND, COPY,
EXPUNGE and IDLE (raw, as imaplib < 3.14 has no idle()).

Usage: imaplib_client.py HOST PORT. Prints "IDLING" when it waits in IDLE
for the test to deliver a message; exits non-zero on any mismatch.
"""
import imaplib
import ssl
import sys


def check(cond, what):
    if not cond:
        print("FAIL: " + what, flush=True)
        sys.exit(1)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    m = imaplib.IMAP4(host, port)
    check("STARTTLS" in m.capabilities, "STARTTLS advertised")
    check("LOGINDISABLED" in m.capabilities, "LOGINDISABLED before TLS")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m.starttls(ssl_context=ctx)
    typ, _ = m.login("alice", "secret")
    check(typ == "OK", "login")

    typ, data = m.select("INBOX")
    check(typ == "OK" and data[0] == b"1", "select: %r" % data)

    typ, data = m.fetch("1", "(FLAGS ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    check(typ == "OK", "fetch")
    check(b'"Hello there"' in data[0][0], "envelope subject: %r" % data)
    check(data[0][1].strip() == b"Subject: Hello there", "header field: %r" % data)

    msg = b"From: py@example.org\r\nSubject: from python\r\n\r\nimaplib body\r\n"
    typ, data = m.append("INBOX", r"(\Flagged)", None, msg)
    check(typ == "OK" and b"APPENDUID" in data[0], "append: %r" % data)

    typ, data = m.search(None, "FLAGGED")
    check(typ == "OK" and data[0] == b"2", "search flagged: %r" % data)
    typ, data = m.search(None, "BODY", "imaplib")
    check(data[0] == b"2", "search body: %r" % data)

    typ, data = m.store("1", "+FLAGS", r"(\Deleted)")
    check(typ == "OK" and b"\\Deleted" in data[0], "store: %r" % data)

    typ, _ = m.create("Saved")
    check(typ == "OK", "create")
    typ, data = m.copy("1:2", "Saved")
    check(typ == "OK", "copy: %r" % data)

    typ, data = m.expunge()
    check(typ == "OK" and data == [b"1"], "expunge: %r" % data)

    typ, data = m.fetch("1", "(RFC822)")
    check(data[0][1] == msg, "rfc822: %r" % data)

    # IDLE (RFC 2177) by hand.
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    check(line.startswith(b"+"), "idle continuation: %r" % line)
    print("IDLING", flush=True)
    line = m.readline()
    check(line.strip() == b"* 2 EXISTS", "exists during idle: %r" % line)
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag):
            check(b" OK " in line, "idle done: %r" % line)
            break

    typ, data = m.status("Saved", "(MESSAGES)")
    check(b"MESSAGES 2" in data[0], "status: %r" % data)
    m.close()
    m.logout()
    print("DONE", flush=True)


main()
