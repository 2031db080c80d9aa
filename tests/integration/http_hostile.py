#!/usr/bin/python3
"""http_hostile.py: keel-projector's HTTP server under hostile clients.

Starts its own `keel dev-broker` and one `keel-projector` (port 0 on
127.0.0.1, http.max.body.bytes=65536), waits for /readyz, then sends
1,000+ malformed or hostile requests from several threads at once: bad
JSON bodies on every POST endpoint, bodies over the limit, bad paths,
wrong methods, bytes that are not HTTP, header floods, pipelining, bad
query parameters and long polls, while ~50 clients dribble a request a
byte a second and ~20 connect and send nothing. Normal requests made
meanwhile must be answered within a few seconds.

A status is asserted only where the API contract fixes it; any 5xx other
than 503, a crash, a hang (a well-formed request left unanswered) or a
sanitizer report fails the test. Afterwards the projector must still be
alive and serving, count the requests in /metrics, and stop cleanly on
SIGTERM. Everything started here stops by itself: a `timeout` wrapper
around each process, a watchdog thread and a `finally`.

Usage: http_hostile.py KEEL_CLI BIN_DIR   (run through ctest)
Python 3 standard library only.
"""

import collections
import concurrent.futures
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
MAX_BODY = 65536
WATCHDOG_SECONDS = 270      # ctest kills at 300
PROCESS_MAX_SECONDS = 290   # timeout(1) around every child
WORKERS = 8                 # hostile requests in flight at once
SLOW_CLIENTS = 50           # dribble one byte a second
IDLE_CLIENTS = 20           # connect, send nothing
NORMAL_MAX_SECONDS = 5.0    # a normal request's answer, while under attack
ANSWER_SECONDS = 20.0       # a well-formed request's answer, at most
WF = "/api/v1/workflows"

# ---- processes ------------------------------------------------------------

children = []       # Popen objects, each the leader of its own group
tmpdir = None
port = 0            # the projector's, once it serves


def spawn(argv, log_name):
    """Start argv in its own process group under timeout(1), output to a
    file in tmpdir."""
    log = open(os.path.join(tmpdir, log_name), "wb")
    p = subprocess.Popen(
        ["timeout", "--signal=TERM", "--kill-after=10",
         str(PROCESS_MAX_SECONDS)] + argv,
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    log.close()
    children.append(p)
    return p


def stop_all():
    """Stop every child: SIGTERM to its group, then SIGKILL."""
    for p in children:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 10
    for p in children:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def log_tail(name, n=60):
    try:
        with open(os.path.join(tmpdir, name), "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return "(no log)"


def watchdog():
    print("watchdog: the test ran for %d s; stopping everything"
          % WATCHDOG_SECONDS, flush=True)
    print("projector log:\n" + log_tail("projector.log"), flush=True)
    stop_all()
    os._exit(1)


def wait_file(path, seconds, proc):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        if proc.poll() is not None:
            return None
        time.sleep(0.1)
    return None


# ---- raw HTTP -------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers      # lower-case name -> value (last)
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def from_handler(self):
        """A JSON answer: built by the projector, not by the HTTP
        library's own error pages."""
        return (self.header("content-type") or "").startswith(
            "application/json")


def parse_responses(buf, methods):
    """Every complete response in buf; methods[i] is the method of the
    i-th request (a HEAD answer has no body)."""
    out, pos = [], 0
    while pos < len(buf):
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = buf[pos:end].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/\d\.\d (\d{3})", lines[0])
        if not m:
            break
        status = int(m.group(1))
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        start = end + 4
        method = methods[len(out)] if len(out) < len(methods) else "GET"
        if method == "HEAD" or status in (204, 304) or status < 200:
            body, pos = b"", start
        elif "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                break
            if start + n > len(buf):
                break
            body, pos = buf[start:start + n], start + n
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body, p = b"", start
            while True:
                eol = buf.find(b"\r\n", p)
                if eol < 0:
                    return out
                try:
                    size = int(buf[p:eol].split(b";")[0], 16)
                except ValueError:
                    return out
                p = eol + 2
                if size == 0:
                    trailer = buf.find(b"\r\n", p)
                    pos = (trailer + 2) if trailer >= 0 else len(buf)
                    break
                body += buf[p:p + size]
                p += size + 2
        else:
            body, pos = buf[start:], len(buf)
        if status >= 200 or status < 100:
            out.append(Resp(status, headers, body))
    return out


def exchange(parts, methods=("GET",), shut_after=None, deadline=ANSWER_SECONDS,
             gap=0.0):
    """Connect, send each of parts (bytes) in turn, read until the server
    closes or the deadline. Between parts, wait `gap` seconds and stop
    sending if the server has answered already. shut_after: seconds of
    silence after which we close our side (the server sees EOF).

    Returns (responses, buf, how) where how is 'eof', 'reset' or 'open'
    (deadline reached with the connection still open)."""
    s = socket.create_connection((HOST, port), timeout=10)
    buf = b""
    how = None
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, part in enumerate(parts):
            if i and gap:
                s.settimeout(gap)
                try:
                    chunk = s.recv(65536)
                    if not chunk:
                        how = "eof"
                        break
                    buf += chunk
                    break   # answered early: stop sending
                except socket.timeout:
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    how = "reset"
                    break
            try:
                s.settimeout(10)
                s.sendall(part)
            except (ConnectionResetError, BrokenPipeError):
                break
            except socket.timeout:
                break   # the server stopped reading
        end = time.time() + deadline
        quiet_since = time.time()
        shut = False
        while how is None:
            left = end - time.time()
            if left <= 0:
                how = "open"
                break
            wait = left
            if shut_after is not None and not shut:
                wait = min(wait, max(0.05, quiet_since + shut_after -
                                     time.time()))
            s.settimeout(wait)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                if shut_after is not None and not shut and \
                        time.time() >= quiet_since + shut_after:
                    try:
                        s.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    shut = True
                continue
            except (ConnectionResetError, BrokenPipeError):
                how = "reset"
                break
            if not chunk:
                how = "eof"
                break
            buf += chunk
            quiet_since = time.time()
            # Every answer expected is in: no need to wait for the close.
            if len(parse_responses(buf, methods)) >= len(methods) and \
                    shut_after is None:
                how = "eof"
                break
    finally:
        s.close()
    return parse_responses(buf, methods), buf, how


def request_bytes(method, path, body=None, headers=(), version="HTTP/1.1",
                  close=True, length=None):
    """A well-formed request (unless the caller says otherwise)."""
    if isinstance(path, str):
        path = path.encode("latin-1")
    lines = [method.encode() + b" " + path + b" " + version.encode(),
             b"Host: 127.0.0.1"]
    for h in headers:
        lines.append(h if isinstance(h, bytes) else h.encode("latin-1"))
    if body is not None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        lines.append(b"Content-Type: application/json")
        lines.append(b"Content-Length: %d" %
                     (len(body) if length is None else length))
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


# ---- cases ----------------------------------------------------------------

class Case:
    """One hostile exchange.

    expect: the statuses the contract allows (None: not fixed; only the
    general rules apply). may_close: closing the connection without an
    answer is allowed. methods: the method of each request sent, one
    answer expected for each (pipelining). check(resp) / check_all(resps):
    extra checks returning an error text or None."""

    def __init__(self, category, name, parts, expect=None, may_close=False,
                 methods=("GET",), shut_after=None, gap=0.0, check=None,
                 allow_5xx=()):
        self.category = category
        self.name = name
        self.parts = parts if isinstance(parts, list) else [parts]
        self.expect = set(expect) if expect else None
        self.may_close = may_close
        self.methods = methods
        self.shut_after = shut_after
        self.gap = gap
        self.check = check
        self.check_all = None
        # 5xx answers that are right for this request (505 for an HTTP
        # version nobody supports).
        self.allow_5xx = set(allow_5xx)


def post_paths():
    return [WF, WF + "/hostile-1/signals/go", WF + "/hostile-1/cancel",
            WF + "/hostile-1/terminate"]


def bad_json_cases():
    cases = []
    valid = {
        WF: '{"workflow_id":"w-1","type":"payment","input":{"a":[1,2,'
            '{"b":null}],"c":"d"},"signal":{"name":"s","payload":true},'
            '"execution_timeout_ms":60000}',
        WF + "/hostile-1/signals/go": '{"amount":[1,2,{"x":"y"}],"ok":true}',
        WF + "/hostile-1/cancel": '{"reason":"no more","run_id":"r-1"}',
        WF + "/hostile-1/terminate":
            '{"reason":"stop","details":{"k":[1,2]},"run_id":"r-1"}',
    }
    # Every proper prefix of a valid body is invalid JSON.
    for path, body in valid.items():
        for n in range(1, len(body)):
            cases.append(Case("bad-json", "truncated %s at %d" % (path, n),
                              request_bytes("POST", path, body[:n]),
                              expect={400}, methods=("POST",)))
    broken = [
        "{", "[", "}", "]", '"abc', "nul", "tru", "fals", "1.", "-", "+1",
        "01", ".5", "1e", "{,}", '{"type":"x",}', "{'type':'x'}",
        '{type:"x"}', '{"type":"x"}}', '{"type":"x"} trailing',
        '{"type":"x"}{"type":"y"}', "// comment\n{}", "/* c */ {}",
        '{"type":"x"', '{"type":', '{"type"', '{"type":"x\\', '"\\u12"',
        '"\\uZZZZ"', '"\\x41"', "[1,,2]", "[1 2]", '{"a" "b"}', "NaN",
        "Infinity", "-Infinity", "undefined", "{\"a\":\"\t\"}",
        '{"type":"x","type":}',
    ]
    raw = [b'{"type":"a\x00b"}', b"\x00", b'{"type":"x"}\x00',
           b'{"type":"\xff\xfe"}', b'{"type":"\xc0\xaf"}',
           b'{"type":"\xed\xa0\x80"}', b'{"type":"\x80"}',
           b'{"type":"\xf8\x88\x80\x80\x80"}', b'"\xe2\x82"', b"\xff",
           b'{"\xfe":1}']
    huge = ["1e999999", "-1e999999", "123456789012345678901234567890",
            "-99999999999999999999999", "1" * 5000]
    for path in post_paths():
        for b in broken:
            cases.append(Case("bad-json", "%s %r" % (path, b[:30]),
                              request_bytes("POST", path, b), expect={400},
                              methods=("POST",)))
        for b in raw:
            cases.append(Case("bad-json", "%s raw %r" % (path, b[:30]),
                              request_bytes("POST", path, b), expect={400},
                              methods=("POST",)))
        for num in huge:
            if path == WF:
                body = '{"type":"t","input":%s}' % num
            elif path.endswith("terminate"):
                body = '{"reason":"r","details":%s}' % num
            else:
                body = num
            cases.append(Case("bad-json", "%s huge %s" % (path, num[:20]),
                              request_bytes("POST", path, body), expect={400},
                              methods=("POST",)))
        # Nesting as deep as the limit allows (32,000 levels).
        deep = "[" * 32000 + "]" * 32000
        body = '{"type":"t","input":%s}' % deep if path == WF else deep
        cases.append(Case("bad-json", "%s nested 32000 deep" % path,
                          request_bytes("POST", path, body), expect={400},
                          methods=("POST",)))
        unclosed = "[" * 60000
        cases.append(Case("bad-json", "%s 60000 unclosed [" % path,
                          request_bytes("POST", path, unclosed), expect={400},
                          methods=("POST",)))
        obj = '{"a":' * 10000 + "1" + "}" * 10000
        cases.append(Case("bad-json", "%s objects 10000 deep" % path,
                          request_bytes("POST", path, obj), expect={400},
                          methods=("POST",)))
    # Fields of the wrong type, or missing.
    wrong_start = [
        "{}", '{"type":5}', '{"type":null}', '{"type":""}', '{"type":[]}',
        '{"type":{}}', '{"type":true}', '{"input":{}}',
        '{"type":"t","workflow_id":5}', '{"type":"t","workflow_id":""}',
        '{"type":"t","workflow_id":"!x"}',
        '{"type":"t","workflow_id":"%s"}' % ("w" * 1001),
        '{"type":"t","signal":"s"}',
        '{"type":"t","signal":{}}', '{"type":"t","signal":{"name":5}}',
        '{"type":"t","signal":{"payload":1}}', '{"type":"t","signal":[]}',
        '{"type":"t","execution_timeout_ms":"x"}',
        '{"type":"t","execution_timeout_ms":1.5e400}',
        '{"type":"t","run_timeout_ms":"soon"}',
        '{"type":"t","run_timeout_ms":[]}', '{"type":"t","command_id":5}',
        '{"type":"t","command_id":{}}', '{"type":"t","id_reuse_policy":5}',
        '{"type":"t","id_conflict_policy":[]}', "[]", '["type","t"]', '"t"',
        "5", "null", "true", '""']
    for b in wrong_start:
        cases.append(Case("bad-json", "start %s" % b[:40],
                          request_bytes("POST", WF, b), expect={400},
                          methods=("POST",)))
    for what in ("cancel", "terminate"):
        path = WF + "/hostile-1/" + what
        for b in ['{"reason":5}', '{"reason":[]}', '{"run_id":5}',
                  '{"run_id":{}}', '{"reason":null,"run_id":7}', "[]",
                  '"stop"', "5", "true", '[{"reason":"x"}]']:
            cases.append(Case("bad-json", "%s %s" % (what, b),
                              request_bytes("POST", path, b), expect={400},
                              methods=("POST",)))
    return cases


def in_parts(req):
    """req as its head, then its body in 8 KiB parts: a server may answer
    413 from the head alone, before the body is sent."""
    split = req.index(b"\r\n\r\n") + 4
    return [req[:split]] + [req[i:i + 8192]
                            for i in range(split, len(req), 8192)]


def too_big_cases():
    cases = []
    for path in post_paths():
        # Declared by Content-Length: the answer is 413, sent before the
        # body or after the first parts of it.
        big = b'{"type":"t","input":"' + b"a" * (MAX_BODY + 10) + b'"}'
        cases.append(Case("too-big", "%s declared %d" % (path, len(big)),
                          in_parts(request_bytes("POST", path, big)),
                          expect={413}, methods=("POST",),
                          gap=0.5))
        for n in (MAX_BODY + 1, 10 * 1024 * 1024, 1 << 40):
            cases.append(Case("too-big", "%s Content-Length %d, no body" %
                              (path, n),
                              request_bytes("POST", path, b"", length=n),
                              expect={413}, methods=("POST",),
                              shut_after=3.0))
        cases.append(Case("too-big", "%s Content-Length 2^70" % path,
                          request_bytes("POST", path, b"",
                                        length=1 << 70),
                          expect={400, 413},
                          methods=("POST",), shut_after=3.0))
        cases.append(Case("too-big", "%s 100000 levels deep" % path,
                          in_parts(request_bytes("POST", path,
                                                 "[" * 100000 + "]" * 100000)),
                          expect={413}, methods=("POST",),
                          gap=0.5))
        # Chunked, no length: 8 KiB chunks until 256 KiB.
        head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                % path).encode()
        chunk = b"2000\r\n" + b" " * 8192 + b"\r\n"
        cases.append(Case("too-big", "%s chunked 256 KiB" % path,
                          [head + b'11\r\n{"type":"t","x":"\r\n'] +
                          [chunk] * 32 + [b"0\r\n\r\n"],
                          expect={413}, may_close=True, methods=("POST",),
                          gap=0.05))
        cases.append(Case("too-big", "%s one chunk of 1 MiB declared" % path,
                          [head + b"100000\r\n", b"[" * 70000],
                          expect={413}, may_close=True, methods=("POST",),
                          shut_after=3.0, gap=0.3))
        cases.append(Case("too-big", "%s chunk size 2^64" % path,
                          [head + b"ffffffffffffffffff\r\n", b"[" * 100],
                          expect={400, 413}, may_close=True,
                          methods=("POST",), shut_after=2.0))
    # At the limit exactly: accepted; one byte more: 413.
    pad = MAX_BODY - len('{"type":"t","input":""}')
    exact = '{"type":"t","input":"%s"}' % ("a" * pad)
    assert len(exact) == MAX_BODY
    cases.append(Case("too-big", "start of exactly %d bytes" % MAX_BODY,
                      request_bytes("POST", WF, exact), expect={202},
                      methods=("POST",)))
    cases.append(Case("too-big", "start of %d bytes" % (MAX_BODY + 1),
                      in_parts(request_bytes("POST", WF, exact + " ")),
                      expect={413}, methods=("POST",), gap=0.5))
    sig = " " * (MAX_BODY - 4) + "true"
    cases.append(Case("too-big", "signal of exactly %d bytes" % MAX_BODY,
                      request_bytes("POST", WF + "/hostile-1/signals/go", sig),
                      expect={202}, methods=("POST",)))
    return cases


def no_passwd(resp):
    if b"root:" in resp.body:
        return "served a file from outside the dashboard"
    return None


def bad_path_cases():
    cases = []
    paths = [
        WF + "/" + "a" * 100000, "/" + "b" * 100000,
        WF + "/x?" + "c=1&" * 25000,
        WF + "/..", WF + "/../../../etc/passwd", "/../healthz",
        "/api/v1/../../etc/passwd", WF + "/%2e%2e", WF + "/%2e%2e/%2e%2e",
        WF + "/a%00b", WF + "/%00", WF + "/a%00", WF + "/%zz", WF + "/%",
        WF + "/a%2", WF + "/a%g0", WF + "/%ff%fe", WF + "/%c0%af",
        WF + "/!x", WF + "/%21x", WF + "/!", WF + "/", WF + "//",
        WF + "//history", WF + "//result", WF + "/x/bogus",
        WF + "/x/history/extra", WF + "/x/result/extra",
        WF + "/x/signals", WF + "/x/signals/", WF + "/x/signals/a/b",
        WF + "/x/cancel/now", WF + "X", WF.upper(), "/api/v2/workflows",
        "/api/v1", "/api", "/api/v1/", "//api/v1/workflows",
        WF + "/" + "i" * 1001, WF + "/%s" % ("%41" * 1001),
        "/ui/../../../../etc/passwd", "/ui/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/ui/..%2f..%2f..%2fetc%2fpasswd",
        "/ui/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/ui/....//....//etc/passwd", "/ui/nonexistent.js", "/ui/%00",
        "/ui/app.js%00.png", "/ui//etc/passwd", "/ui/%", "/ui/%zz",
        "/healthz/extra", "/metrics/x", "/readyz%00", "/healthz%20",
        "/%2e%2e/%2e%2e/etc/passwd", "/index.html/../../../etc/passwd",
        "/favicon.ico", "/.git/config", "/etc/passwd",
    ]
    for path in paths:
        expect = {400, 404, 414, 431}
        if re.search(r"/(signals|cancel|terminate)\b", path):
            expect.add(405)     # a POST-only resource, maybe
        for method in ("GET", "HEAD"):
            cases.append(Case("bad-path", "%s %s" % (method, path[:60]),
                              request_bytes(method, path), expect=expect,
                              methods=(method,), check=no_passwd))
    # The same shapes where a POST is expected.
    post = [
        WF + "/!x/cancel", WF + "/%21x/terminate", WF + "//cancel",
        WF + "//signals/go", WF + "/x/signals/", WF + "/x/signals",
        WF + "/%zz/cancel", WF + "/%/terminate", WF + "/a%00b/cancel",
        WF + "/x/signals/%zz", WF + "/x/signals/%", WF + "/x/signals/a%00",
        WF + "/x/bogus", WF + "/x/cancel/extra",
        WF + "/" + "i" * 1001 + "/cancel",
        WF + "/" + "a" * 100000 + "/signals/go", WF + "X",
        "/api/v1/workflow", "/api/v1/workflows/x/signals/" + "s" * 100000,
    ]
    for path in post:
        cases.append(Case("bad-path", "POST %s" % path[:60],
                          request_bytes("POST", path, "{}"),
                          expect={400, 404, 414, 431}, methods=("POST",)))
    return cases


def wrong_method_cases():
    cases = []
    get_only = ["/healthz", "/readyz", "/metrics", WF + "/hostile-1",
                WF + "/hostile-1/history", WF + "/hostile-1/result"]
    post_only = [WF + "/hostile-1/signals/go", WF + "/hostile-1/cancel",
                 WF + "/hostile-1/terminate"]
    both = [WF]

    def allow_header(resp):
        if resp.status == 405 and not resp.header("allow"):
            return "405 without an Allow header"
        return None

    for path in get_only + post_only + both:
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FROB",
                       "PROPFIND", "M-SEARCH", "X"):
            cases.append(Case("wrong-method", "%s %s" % (method, path),
                              request_bytes(method, path),
                              expect={405}, methods=(method,),
                              check=allow_header))
        cases.append(Case("wrong-method", "PUT %s with a body" % path,
                          request_bytes("PUT", path, '{"type":"t"}'),
                          expect={405}, methods=("PUT",), check=allow_header))
    for path in get_only:
        cases.append(Case("wrong-method", "POST %s" % path,
                          request_bytes("POST", path, "{}"), expect={405},
                          methods=("POST",), check=allow_header))
    for path in post_only:
        for method in ("GET", "HEAD"):
            cases.append(Case("wrong-method", "%s %s" % (method, path),
                              request_bytes(method, path), expect={405},
                              methods=(method,), check=allow_header))
    return cases


def garbage_cases(rng):
    cases = []
    for i in range(40):
        n = rng.choice([1, 7, 64, 500, 4096, 30000])
        data = bytes(rng.getrandbits(8) for _ in range(n))
        cases.append(Case("garbage", "random %d bytes #%d" % (n, i), data,
                          may_close=True, shut_after=1.5))
    for i in range(10):
        data = "".join(chr(rng.randrange(32, 127)) for _ in range(300))
        cases.append(Case("garbage", "printable line #%d" % i,
                          data.encode() + b"\r\n\r\n", may_close=True,
                          shut_after=1.5))
    versions = ("HTTP/9.9", "HTTP/1.x", "HTTPS/1.1", "HTTP/2 preface")
    tls = bytes.fromhex("16030100a5010000a10303") + os.urandom(32) + \
        bytes.fromhex("000020c02bc02fc02cc030cca9cca8c013c014009c009d002f0035"
                      "c012000a0100")
    fixed = {
        "TLS ClientHello": tls,
        "CRLFs only": b"\r\n" * 50,
        "method only": b"GET",
        "no version": b"GET /healthz",
        "request line only, no CRLF": b"GET /healthz HTTP/1.1",
        "request line only": b"GET /healthz HTTP/1.1\r\n",
        "HTTP/0.9": b"GET /healthz\r\n",
        "HTTP/0.9 bare LF": b"GET /healthz\n",
        "HTTP/9.9": b"GET /healthz HTTP/9.9\r\nHost: h\r\n\r\n",
        "HTTP/1.x": b"GET /healthz HTTP/1.x\r\nHost: h\r\n\r\n",
        "HTTPS/1.1": b"GET /healthz HTTPS/1.1\r\nHost: h\r\n\r\n",
        "lower-case method": b"get /healthz HTTP/1.1\r\nHost: h\r\n\r\n",
        "double spaces": b"GET  /healthz  HTTP/1.1\r\nHost: h\r\n\r\n",
        "tab separators": b"GET\t/healthz\tHTTP/1.1\r\nHost: h\r\n\r\n",
        "bare LF": b"GET /healthz HTTP/1.1\nHost: h\n\n",
        "no path": b"GET  HTTP/1.1\r\nHost: h\r\n\r\n",
        "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "absolute form":
            b"GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT": b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: h\r\n\r\n",
        "header without colon":
            b"GET /healthz HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        "header with NUL":
            b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n",
        "NUL in request line": b"GET /hea\x00lthz HTTP/1.1\r\nHost: h\r\n\r\n",
        "obs-fold":
            b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
        "empty header name":
            b"GET /healthz HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n",
        "space before colon":
            b"GET /healthz HTTP/1.1\r\nHost : h\r\n\r\n",
        "no Host": b"GET /healthz HTTP/1.1\r\n\r\n",
        "two Hosts": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "Content-Length -1":
            b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Content-Length: -1\r\n\r\n{}",
        "Content-Length abc":
            b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Content-Length: abc\r\n\r\n{}",
        "two Content-Lengths":
            b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Content-Length: 2\r\nContent-Length: 30\r\n\r\n{}",
        "Content-Length and chunked":
            b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n",
        "chunk size zz":
            b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "chunk without CRLF":
            b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        "unknown transfer coding":
            b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "Expect 100-continue, no body":
            b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Expect: 100-continue\r\nContent-Length: 12\r\n\r\n",
        "Upgrade websocket":
            b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        "Upgrade h2c":
            b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, "
            b"HTTP2-Settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "Authorization garbage":
            b"GET /healthz HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer "
            + b"\xff" * 5000 + b"\r\nConnection: close\r\n\r\n",
        "Authorization empty bearer":
            b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
            b"Authorization: Bearer\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n{}",
    }
    for name, data in fixed.items():
        cases.append(Case("garbage", name, data, may_close=True,
                          shut_after=1.5,
                          allow_5xx={505} if name in versions else ()))
    # Header floods.
    many = "".join("X-H-%d: v%d\r\n" % (i, i) for i in range(1000))
    cases.append(Case("header-flood", "1000 headers",
                      ("GET /healthz HTTP/1.1\r\nHost: h\r\n%s"
                       "Connection: close\r\n\r\n" % many).encode(),
                      expect={200, 400, 413, 431}, may_close=True))
    many = "".join("X-H-%d: v\r\n" % i for i in range(20000))
    cases.append(Case("header-flood", "20000 headers",
                      ("GET /healthz HTTP/1.1\r\nHost: h\r\n%s"
                       "Connection: close\r\n\r\n" % many).encode(),
                      expect={200, 400, 413, 431}, may_close=True))
    for size in (64 * 1024, 1024 * 1024):
        cases.append(Case("header-flood", "one header of %d bytes" % size,
                          b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-Big: " +
                          b"a" * size + b"\r\nConnection: close\r\n\r\n",
                          expect={200, 400, 413, 431}, may_close=True))
    cases.append(Case("header-flood", "1 MiB of Cookie",
                      b"GET " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n" +
                      b"Cookie: " + b"a=b; " * 200000 +
                      b"\r\nConnection: close\r\n\r\n",
                      expect={200, 400, 413, 431}, may_close=True))
    cases.append(Case("header-flood", "1000 headers on a POST",
                      request_bytes("POST", WF + "/hostile-1/cancel", "{}",
                                    headers=["X-P-%d: %s" % (i, "v" * 20)
                                             for i in range(1000)]),
                      expect={202, 400, 413, 431}, may_close=True,
                      methods=("POST",)))
    return cases


def pipelined_cases():
    cases = []
    one = b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    for n in (2, 10, 50, 200):
        cases.append(Case("pipelined", "%d x GET /healthz" % n,
                          one * (n - 1) + last, expect={200},
                          methods=("GET",) * n))
    mixed = [
        ("GET", request_bytes("GET", "/healthz", close=False), {200}),
        ("POST", request_bytes("POST", WF + "/hostile-1/signals/go", "[1]",
                               close=False), {202}),
        ("GET", request_bytes("GET", WF + "/%21bad", close=False), {400}),
        ("HEAD", request_bytes("HEAD", "/healthz", close=False), {200}),
        ("POST", request_bytes("POST", WF, "{bad", close=False), {400}),
        ("PUT", request_bytes("PUT", "/metrics", close=False), {405}),
        ("GET", request_bytes("GET", WF + "?limit=0", close=False), {400}),
        ("GET", request_bytes("GET", "/nope", close=False), {404}),
        ("GET", request_bytes("GET", "/metrics"), {200}),
    ]
    data = b"".join(m[1] for m in mixed)
    methods = tuple(m[0] for m in mixed)
    expects = [m[2] for m in mixed]

    def in_order(resps, expects=expects):
        for i, (r, e) in enumerate(zip(resps, expects)):
            if r.status not in e:
                return "pipelined answer %d is %d, expected %s" % (
                    i, r.status, sorted(e))
        return None
    for i in range(5):
        # The server may close after an error answer: the answers given
        # must match, in order.
        c = Case("pipelined", "mixed #%d" % i, data, methods=methods,
                 may_close=True)
        c.check_all = in_order
        cases.append(c)
    # A good request, then garbage: the first is answered.
    c = Case("pipelined", "good then garbage",
             one + b"\x16\x03\x01garbage\r\n\r\n", methods=("GET",),
             may_close=True, shut_after=1.5)
    c.check_all = lambda resps: None if resps and resps[0].status == 200 \
        else "the good request before garbage was not answered 200"
    cases.append(c)
    return cases


def bad_query_cases():
    cases = []
    lst = ["limit=0", "limit=abc", "limit=1001", "limit=-5", "limit=",
           "limit=1.5", "limit=99999999999999999999", "limit=%00",
           "limit=0x10", "status=bogus",
           "status=", "status=RUNNING", "bogus=1", "limit=5&bogus=1",
           "%zz=1", "started_after=notatime", "started_after=2026-11-25",
           "started_after=2026-11-25T25:00:00Z",
           "started_after=2026-13-01T00:00:00Z", "started_before=abc",
           "started_before=", "closed_after=-x", "closed_before=1e5",
           "closed_before=12:00", "closed_after=2026-11-25T10:00:00.123Q",
           "started_after=99999999999999999999999", "cursor=" + "c" * 1001,
           "after=garbage", "after=1:", "after=:1", "after=a:b",
           "after=-1:0", "after=0:-1", "after=0:1:2", "after=0",
           "after=0:99999999999999999999999", "after=0:1&wait=abc",
           "after=0:1&wait=-1s", "after=0:1&wait=1x", "wait=abc", "wait=-1"]
    for q in lst:
        cases.append(Case("bad-query", "list ?%s" % q[:50],
                          request_bytes("GET", WF + "?" + q), expect={400}))
    # Per workflow: the workflow is unknown, so 404 is allowed too (the
    # contract does not say which check comes first).
    per = [("/history", "limit=0"), ("/history", "limit=abc"),
           ("/history", "limit=1001"), ("/history", "limit=-1"),
           ("/history", "cursor=abc"), ("/history", "cursor=-1"),
           ("/history", "cursor="), ("/history", "after=x"),
           ("/result", "wait=abc"), ("/result", "wait=-1"),
           ("/result", "wait=121s"), ("/result", "wait=3m"),
           ("/result", "wait=1y"), ("/result", "wait="),
           ("/result", "wait=1.5.5s"),
           ("/result", "wait=99999999999999999999"),
           ("/result", "after=:"), ("", "after=zz"), ("", "after=0:1&wait=zz")]
    for sub, q in per:
        cases.append(Case("bad-query", "%s ?%s" % (sub or "describe", q),
                          request_bytes("GET", WF + "/hostile-1" + sub + "?" +
                                        q), expect={400, 404}))
    # Queries the contract does not fix: no 5xx, an answer.
    loose = ["started_after=2026-11-25T10:00:00Z&started_before="
             "2026-11-24T10:00:00Z", "closed_after=9999999999999&"
             "closed_before=0", "limit=1&limit=2", "prefix=", "type=",
             "prefix=%00", "type=%ff", "cursor=%21", "status=running&"
             "status=failed", "started_after=2026-11-25T10:00:00+01:00",
             "started_after=0", "started_after=-1", "limit=1%00",
             "limit=%20%2010", "after=", "after=0:1,", "after=999:0",
             "after=0:1&wait=121s", "after=0:1&wait=5h", "after=0:1&wait=",
             "wait=0", "wait=120s"]
    for q in loose:
        cases.append(Case("bad-query", "list ?%s" % q[:50],
                          request_bytes("GET", WF + "?" + q)))
    return cases


def echo_cases():
    """Error messages that quote what the client sent: a quote cut in the
    middle of a UTF-8 character, or bytes that are not UTF-8 at all, must
    still give the error, not a failure to build it."""
    cases = []
    for n in range(190, 202):
        cases.append(Case("echo", "unknown ID of %d bytes + e-acute" % n,
                          request_bytes("GET", WF + "/" + "a" * n + "%C3%A9"),
                          expect={404}))
    for sub in ("", "/result", "/history"):
        cases.append(Case("echo", "ID %%ff%%fe%s" % sub,
                          request_bytes("GET", WF + "/%ff%fe" + sub),
                          expect={400, 404}))
    for n in range(58, 68):
        key = b"a" * n + "é".encode()
        cases.append(Case("echo", "list, unknown parameter of %d bytes" % n,
                          request_bytes("GET", WF.encode() + b"?" + key +
                                        b"=1"), expect={400}))
        cases.append(Case("echo", "list, %%-encoded parameter %d" % n,
                          request_bytes("GET", WF + "?" + "a" * n +
                                        "%C3%A9=1"), expect={400}))
        name = key.decode()
        for path, body in (
                (WF, {"type": "t", name: 1}),
                (WF, {"type": "t", "signal": {"name": "s", name: 1}}),
                (WF + "/hostile-1/cancel", {name: 1}),
                (WF + "/hostile-1/terminate", {"reason": "r", name: 1})):
            cases.append(Case("echo", "POST %s, field of %d bytes" % (path, n),
                              request_bytes("POST", path, json.dumps(body)),
                              expect={400, 202}, methods=("POST",)))
        cases.append(Case("echo", "signal, query of %d bytes" % n,
                          request_bytes("POST", WF.encode() +
                                        b"/hostile-1/signals/go?" + key +
                                        b"=1", b"{}"),
                          expect={400, 202}, methods=("POST",)))
    for raw in (b"\xff", b"\xc3", b"\xed\xa0\x80", b"a\x80b"):
        cases.append(Case("echo", "list, raw parameter %r" % raw,
                          request_bytes("GET", WF.encode() + b"?" + raw +
                                        b"=1"), expect={400}))
        cases.append(Case("echo", "history, raw parameter %r" % raw,
                          request_bytes("GET", WF.encode() +
                                        b"/hostile-1/history?" + raw + b"=1"),
                          expect={400, 404}))
    return cases


def long_poll_cases(position):
    """Requests that may wait (up to their `wait`); they run alongside
    everything else and must not hold the others up."""
    cases = []
    for i in range(4):
        cases.append(Case("long-poll", "result ?wait=5s #%d" % i,
                          request_bytes("GET", WF + "/lp-%d/result?wait=5s"
                                        % i)))
    if position:
        for path in (WF, WF + "/hostile-1", WF + "/hostile-1/history"):
            cases.append(Case("long-poll", "%s ?after=%s&wait=4s" %
                              (path, position),
                              request_bytes("GET", "%s?after=%s&wait=4s" %
                                            (path, position))))
    return cases


# ---- running them ---------------------------------------------------------

results_lock = threading.Lock()
table = collections.defaultdict(collections.Counter)   # category -> outcome
failures = []
handler_codes = collections.Counter()   # JSON answers, by status
no_position = collections.Counter()     # JSON errors without the header
outcomes = []                           # (category, name, outcome, how)


# Set when the server is found dead or stuck: the cases left are skipped.
give_up = threading.Event()


def fail(msg):
    with results_lock:
        failures.append(msg)


def run_case(case):
    if give_up.is_set():
        with results_lock:
            table[case.category]["skipped"] += 1
        return
    try:
        resps, buf, how = exchange(case.parts, methods=case.methods,
                                   shut_after=case.shut_after, gap=case.gap)
    except OSError as e:
        with results_lock:
            table[case.category]["connect-error"] += 1
        fail("%s / %s: cannot connect: %s" % (case.category, case.name, e))
        return
    if resps:
        outcome = str(resps[0].status)
    elif re.match(rb"HTTP/1\.[01] 1\d\d ", buf):
        outcome = "1xx only"
    elif buf:
        outcome = "unparsed"
    else:
        outcome = {"eof": "closed", "reset": "reset", "open": "open"}[how]
    with results_lock:
        outcomes.append((case.category, case.name, outcome, how,
                         [r.status for r in resps]))
        table[case.category][outcome] += 1
        for r in resps:
            if r.from_handler():
                handler_codes[r.status] += 1
    where = "%s / %s" % (case.category, case.name)
    for r in resps:
        if r.status >= 500 and r.status != 503 and \
                r.status not in case.allow_5xx:
            fail("%s: answered %d: %r" % (where, r.status, r.body[:200]))
            return
        if r.from_handler() and r.status >= 400 and \
                case.methods[0] != "HEAD":
            try:
                err = json.loads(r.body)
                if not isinstance(err.get("error"), str) or \
                        err.get("status") != r.status:
                    fail("%s: error body %r" % (where, r.body[:200]))
            except ValueError:
                fail("%s: error body is not JSON: %r" % (where, r.body[:200]))
            if not r.header("cache-control"):
                fail("%s: %d without Cache-Control" % (where, r.status))
            if not r.header("x-keel-read-position"):
                with results_lock:
                    no_position[r.status] += 1
        if case.check:
            why = case.check(r)
            if why:
                fail("%s: %s" % (where, why))
    if case.check_all:
        if len(resps) < len(case.methods) and (
                not resps or (how == "open" and case.shut_after is None) or
                "close" not in (resps[-1].header("connection") or "").lower()):
            fail("%s: %d answers of %d (%s)" % (where, len(resps),
                                                len(case.methods), how))
        why = case.check_all(resps)
        if why:
            fail("%s: %s" % (where, why))
        return
    if not resps:
        if how == "open" and not case.may_close:
            fail("%s: no answer in %d s (hang)" % (where, ANSWER_SECONDS))
        elif how != "open" and not case.may_close:
            fail("%s: connection %s without an answer" % (where, outcome))
        return
    if len(resps) < len(case.methods) and \
            "close" not in (resps[-1].header("connection") or "").lower():
        # A server may stop after any answer that says
        # "Connection: close"; the client sends the rest again.
        fail("%s: %d answers of %d, the last without Connection: close" % (
            where, len(resps), len(case.methods)))
    if case.expect:
        for r in resps:
            if r.status not in case.expect:
                fail("%s: answered %d, expected %s: %r" % (
                    where, r.status, sorted(case.expect), r.body[:160]))


class Holders:
    """The slow clients: SLOW_CLIENTS that dribble one byte a second and
    IDLE_CLIENTS that send nothing, from one thread."""

    def __init__(self):
        self.stop = threading.Event()
        self.slow = []      # [sock, data, sent, kind, closed_by_server]
        self.idle = []
        self.thread = None
        self.outcomes = collections.Counter()

    def start(self):
        for i in range(SLOW_CLIENTS):
            s = socket.create_connection((HOST, port), timeout=10)
            if i % 5 == 4:
                # A POST whose body comes a byte at a time.
                body = b'{"type":"slow","input":"' + b"s" * 2000 + b'"}'
                head = (b"POST " + WF.encode() + b" HTTP/1.1\r\nHost: h\r\n"
                        b"Content-Type: application/json\r\n"
                        b"Connection: close\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body))
                s.sendall(head)
                self.slow.append([s, body, 0, "POST", False])
            else:
                data = (b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-Slow: " +
                        b"z" * 5000 + b"\r\nConnection: close\r\n\r\n")
                self.slow.append([s, data, 0, "GET", False])
        for _ in range(IDLE_CLIENTS):
            self.idle.append(socket.create_connection((HOST, port),
                                                      timeout=10))
        self.thread = threading.Thread(target=self.dribble, daemon=True)
        self.thread.start()

    def dribble(self):
        while not self.stop.wait(1.0):
            for c in self.slow:
                s, data, sent, _, closed = c
                if closed or sent >= len(data) - 40:
                    continue
                try:
                    s.send(data[sent:sent + 1])
                    c[2] += 1
                except OSError:
                    c[4] = True

    def finish(self):
        """Send the rest of every slow request and read the answers: 200 /
        202, or a close (the server may drop slow clients). 15 s for all."""
        self.stop.set()
        self.thread.join()
        bufs = {}
        for c in self.slow:
            s, data, sent, kind, closed = c
            if closed:
                continue
            try:
                s.settimeout(2)
                s.sendall(data[sent:])
                bufs[s] = b""
            except OSError:
                c[4] = True
        deadline = time.time() + 15
        while bufs and time.time() < deadline:
            ready, _, _ = select.select(list(bufs), [], [],
                                        max(0, deadline - time.time()))
            for s in ready:
                try:
                    chunk = s.recv(65536)
                except OSError:
                    chunk = b""
                if chunk:
                    bufs[s] += chunk
                else:
                    for c in self.slow:
                        if c[0] is s:
                            resps = parse_responses(bufs[s], (c[3],))
                            c.append(str(resps[0].status) if resps
                                     else "closed")
                    del bufs[s]
        for c in self.slow:
            s, kind = c[0], c[3]
            if c[4]:
                outcome = "closed"
            elif len(c) > 5:
                outcome = c[5]
            else:
                resps = parse_responses(bufs.get(s, b""), (kind,))
                outcome = str(resps[0].status) if resps else "open"
            s.close()
            self.outcomes["slow %s: %s" % (kind, outcome)] += 1
            if outcome == "open":
                fail("slow %s: no answer 15 s after the request was "
                     "complete" % kind)
            elif outcome.isdigit() and int(outcome) >= 500 and \
                    outcome != "503":
                fail("slow %s answered %s" % (kind, outcome))
        for s in self.idle:
            s.settimeout(0.5)
            try:
                state = "closed by server" if s.recv(1) == b"" else \
                    "answered"
            except socket.timeout:
                state = "still open"
            except OSError:
                state = "closed by server"
            self.outcomes["idle: %s" % state] += 1
            s.close()


class Prober:
    """Normal requests while the attack runs: each must answer within
    NORMAL_MAX_SECONDS."""

    def __init__(self):
        self.stop = threading.Event()
        self.times = []
        self.late = 0   # normal requests in a row answered late or not
        self.thread = threading.Thread(target=self.run, daemon=True)

    def one(self, method, path, body=None, want=200):
        t = time.monotonic()
        try:
            c = http.client.HTTPConnection(HOST, port,
                                           timeout=NORMAL_MAX_SECONDS + 5)
            c.request(method, path, body=body,
                      headers={"Content-Type": "application/json"}
                      if body else {})
            r = c.getresponse()
            r.read()
            c.close()
            status = r.status
        except (OSError, http.client.HTTPException) as e:
            status = "error %s" % e
        dt = time.monotonic() - t
        self.times.append(dt)
        if status != want:
            fail("normal %s %s under attack: %s (want %d)" % (
                method, path, status, want))
        if dt > NORMAL_MAX_SECONDS:
            fail("normal %s %s under attack took %.1f s" % (method, path, dt))
        self.late = self.late + 1 if (dt > NORMAL_MAX_SECONDS or
                                       isinstance(status, str)) else 0
        if self.late >= 3:
            fail("the server stopped answering: giving up")
            give_up.set()

    def run(self):
        n = 0
        while not self.stop.wait(0.25):
            self.one("GET", "/healthz")
            self.one("GET", WF + "?limit=10")
            self.one("GET", "/metrics")
            if n % 4 == 0:
                self.one("POST", WF + "/probe/signals/ping", body=b"{}",
                         want=202)
            n += 1

    def result(self):
        t = sorted(self.times)
        if not t:
            return "no normal requests made"
        return "%d normal requests, median %.3f s, max %.3f s" % (
            len(t), t[len(t) // 2], t[-1])


def get(path, timeout=10):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), \
            r.read()
    finally:
        c.close()


def post(path, body, timeout=10):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("POST", path, body=json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), \
            r.read()
    finally:
        c.close()


def metrics_by_code():
    status, _, body = get("/metrics")
    out = {}
    for m in re.finditer(rb'keel_projector_http_requests_total\{code="([^"]+)"'
                         rb'\}\s+(\d+)', body):
        out[m.group(1).decode()] = int(m.group(2))
    return status, out


def print_table(holder_outcomes):
    codes = sorted({o for c in table.values() for o in c},
                   key=lambda o: (not o.isdigit(), o))
    w = max(len(c) for c in table) + 2
    print("\n%-*s %6s  %s" % (w, "category", "total",
                              " ".join("%7s" % c for c in codes)))
    total = collections.Counter()
    for cat in sorted(table):
        row = table[cat]
        total.update(row)
        print("%-*s %6d  %s" % (w, cat, sum(row.values()),
                                " ".join("%7s" % (row.get(c, "") or "")
                                         for c in codes)))
    print("%-*s %6d  %s" % (w, "all", sum(total.values()),
                            " ".join("%7d" % total[c] for c in codes)))
    for k in sorted(holder_outcomes):
        print("  %-40s %d" % (k, holder_outcomes[k]))
    return sum(total.values())


def main():
    global tmpdir, port
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    keel, bindir = sys.argv[1], sys.argv[2]
    projector_bin = os.path.join(bindir, "keel-projector")
    tmpdir = tempfile.mkdtemp(prefix="keel-http-hostile-")
    dog = threading.Timer(WATCHDOG_SECONDS, watchdog)
    dog.daemon = True
    dog.start()
    rng = random.Random(20261125)
    ok = False
    try:
        broker = spawn([keel, "dev-broker", "--partitions", "4",
                        "--port-file", os.path.join(tmpdir, "bootstrap")],
                       "dev-broker.log")
        bootstrap = wait_file(os.path.join(tmpdir, "bootstrap"), 20, broker)
        if not bootstrap:
            print("dev broker did not start:\n" + log_tail("dev-broker.log"))
            return 1
        proj = spawn([projector_bin, "--bootstrap", bootstrap,
                      "-X", "http.listen=%s:0" % HOST,
                      "--port-file", os.path.join(tmpdir, "port"),
                      "-X", "http.max.body.bytes=%d" % MAX_BODY],
                     "projector.log")
        text = wait_file(os.path.join(tmpdir, "port"), 30, proj)
        if not text:
            print("projector did not start:\n" + log_tail("projector.log"))
            return 1
        port = int(text)
        deadline = time.time() + 30
        while True:
            try:
                if get("/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or proj.poll() is not None:
                print("projector not ready:\n" + log_tail("projector.log"))
                return 1
            time.sleep(0.2)
        print("projector on %s:%d, dev broker %s" % (HOST, port, bootstrap))

        # A position to wait for (read-your-writes), if POST works.
        position = None
        try:
            st, hdr, body = post(WF, {"type": "hostile", "workflow_id":
                                      "hostile-1", "input": {"n": 1}})
            if st == 202:
                position = json.loads(body).get("position")
        except (OSError, ValueError):
            pass

        cases = (bad_json_cases() + too_big_cases() + bad_path_cases() +
                 wrong_method_cases() + garbage_cases(rng) +
                 pipelined_cases() + bad_query_cases() + echo_cases() +
                 long_poll_cases(position))
        rng.shuffle(cases)
        print("%d hostile requests, %d at a time, with %d slow and %d idle "
              "clients held" % (len(cases), WORKERS, SLOW_CLIENTS,
                                IDLE_CLIENTS), flush=True)

        holders = Holders()
        holders.start()
        time.sleep(1.0)
        prober = Prober()
        prober.thread.start()
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            for f in concurrent.futures.as_completed(
                    [pool.submit(run_case, c) for c in cases]):
                f.result()
                if proj.poll() is not None:
                    give_up.set()
        elapsed = time.monotonic() - t0
        prober.stop.set()
        prober.thread.join()
        holders.finish()
        print("hostile phase: %.1f s; %s" % (elapsed, prober.result()))

        # Afterwards: alive and serving.
        try:
            if proj.poll() is not None:
                fail("the projector died (exit %s):\n%s" % (
                    proj.returncode, log_tail("projector.log")))
            else:
                st, _, body = get("/healthz")
                if st != 200:
                    fail("/healthz after the attack: %d %r" % (st, body[:100]))
                st, hdr, body = post(WF, {"type": "hostile-check",
                                          "input": {"a": 1}})
                if st != 202:
                    fail("valid POST %s after the attack: %d %r" % (
                        WF, st, body[:200]))
                else:
                    doc = json.loads(body)
                    for k in ("workflow_id", "command_id", "position"):
                        if not isinstance(doc.get(k), str):
                            fail("POST %s answer lacks %s: %r" % (WF, k, doc))
                st, _, body = get(WF)
                if st != 200:
                    fail("GET %s after the attack: %d %r" % (
                        WF, st, body[:100]))
                st, by_code = metrics_by_code()
                if st != 200 or not by_code:
                    fail("/metrics after the attack: %d, counters %r" % (
                        st, by_code))
                else:
                    print("metrics keel_projector_http_requests_total: " +
                          ", ".join("%s=%d" % kv for kv in sorted(
                              by_code.items())))
                    for code, n in handler_codes.items():
                        label = str(code) if str(code) in by_code else "other"
                        if by_code.get(label, 0) < n and label != "other":
                            fail("/metrics counts %d answers %s, we got %d" % (
                                by_code.get(label, 0), code, n))
                    counted = sum(by_code.values())
                    if counted < sum(handler_codes.values()):
                        fail("/metrics counts %d requests, we got %d "
                             "JSON answers" % (
                                 counted, sum(handler_codes.values())))
        except (OSError, http.client.HTTPException) as e:
            fail("after the attack: %s" % e)

        with open(os.path.join(tmpdir, "outcomes.txt"), "w") as f:
            for o in sorted(outcomes):
                f.write("%s\t%s\t%s\t%s\t%s\n" % (
                    o[0], o[2], o[3], o[4], o[1].encode(
                        "unicode_escape").decode()[:150]))
        total = print_table(holders.outcomes)
        if no_position:
            print("note: JSON errors without X-Keel-Read-Position, by "
                  "status: %s" % dict(sorted(no_position.items())))
        if total < 1000:
            fail("only %d hostile requests sent" % total)

        # A clean stop: exit 0 on SIGTERM, no sanitizer report.
        if proj.poll() is None:
            os.killpg(proj.pid, signal.SIGTERM)
            try:
                proj.wait(30)
            except subprocess.TimeoutExpired:
                fail("the projector did not stop within 30 s of SIGTERM")
        with open(os.path.join(tmpdir, "projector.log"), "rb") as f:
            log = f.read().decode("utf-8", "replace")
        if proj.returncode not in (0, None):
            fail("the projector exited %s" % proj.returncode)
        for pat in ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                    "ThreadSanitizer"):
            if pat in log:
                fail("sanitizer report in the projector's log (%s)" % pat)
        if failures:
            print("\nprojector log (tail):\n" + log_tail("projector.log", 80))
            with open(os.path.join(tmpdir, "failures.txt"), "w") as f:
                f.write("\n".join(failures) + "\n")
            print("\n%d FAILURES:" % len(failures))
            for f in failures[:60]:
                print("  " + f[:400])
            if len(failures) > 60:
                print("  ... and %d more" % (len(failures) - 60))
            return 1
        ok = True
        print("\nhttp_hostile: passed")
        return 0
    finally:
        dog.cancel()
        stop_all()
        if ok:
            shutil.rmtree(tmpdir, ignore_errors=True)
        else:
            print("logs kept in %s" % tmpdir)


if __name__ == "__main__":
    sys.exit(main())
