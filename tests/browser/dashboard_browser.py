#!/usr/bin/env python3
"""dashboard_browser.py: keel-projector's dashboard, driven in headless
Chromium through the DevTools protocol the way a user would use it.

The test starts its own stack on loopback with ports chosen at run time:
`keel dev-broker`, `keel-orchestrator` with the payment workflow,
`keel-payment-worker` and `keel-projector` (with a bearer token set). Then,
through the page only (typing into fields, clicking), it starts a payment
workflow (giving the token when the projector answers 401), sees it listed
as running, opens it, sends it the refundApproved signal and waits until
the page shows it completed. It saves a screenshot of that workflow view.

Every process it starts runs under timeout(1) and in its own process group,
and is stopped when the test ends, fails or its watchdog fires.

Needs Debian's python3-websocket and chromium (scripts/setup.sh test).
"""

import argparse
import base64
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    import websocket
except ImportError:
    sys.exit("FAILED: Python's websocket package is missing; install "
             "Debian's python3-websocket (scripts/setup.sh test) and run "
             "this with /usr/bin/python3")

WATCHDOG_S = 240      # the whole test, stack included
STEP_S = 30           # the bound of each wait for the page
CLOSE_S = 60          # the bound for the workflow to complete after the signal
WIDTH, HEIGHT = 1280, 800
INPUT = '{"order":"o1","amount":1200,"refund_window_ms":600000}'
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/ui/style.css": ("style.css", "text/css; charset=utf-8"),
    "/ui/favicon.svg": ("favicon.svg", "image/svg+xml"),
}


class Failure(Exception):
    """What the user would see go wrong, said plainly."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- processes ---------------------------------------------------------


class Stack:
    """The processes the test started, each in its own process group."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        self.lock = threading.Lock()

    def logfile(self, name):
        return os.path.join(self.tmp, name + ".log")

    def start(self, name, argv, env=None):
        out = open(self.logfile(name), "wb")
        # timeout(1) is a second watchdog: the process stops by itself even
        # if this script is killed before its clean-up runs.
        cmd = ["timeout", "--signal=TERM", "--kill-after=5",
               str(WATCHDOG_S + 30)] + argv
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        out.close()
        with self.lock:
            self.procs.append((name, p))
        return p

    def check(self, name):
        for n, p in self.procs:
            if n == name and p.poll() is not None:
                raise Failure(f"{name} exited with status {p.returncode}:\n"
                              + self.tail(name))

    def stop(self):
        with self.lock:
            procs = list(reversed(self.procs))
        for _, p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for _, p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()

    def tail(self, name, lines=25):
        try:
            with open(self.logfile(name), "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "  (no log)"
        return "\n".join("  " + l for l in text.splitlines()[-lines:])

    def dump(self):
        for name, _ in self.procs:
            print(f"--- last lines of {name}'s log", file=sys.stderr)
            print(self.tail(name), file=sys.stderr)


def wait_until(what, fn, timeout, check=None):
    """Poll fn() until it answers something true; Failure after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if check:
            check()
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def read_file(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def http(method, url, body=None, headers=None, timeout=10):
    """(status, headers, body bytes) of one request; status 0 if refused."""
    req = urllib.request.Request(url, data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except OSError:
        return 0, {}, b""


# ---- the DevTools protocol ---------------------------------------------


class Cdp:
    """One DevTools websocket session, attached to a page."""

    def __init__(self, url):
        # Chromium refuses websocket clients with an unexpected Origin.
        self.ws = websocket.create_connection(url, timeout=STEP_S,
                                              suppress_origin=True)
        self.seq = 0
        self.errors = []

    def call(self, method, **params):
        self.seq += 1
        mid = self.seq
        self.ws.send(json.dumps({"id": mid, "method": method,
                                 "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise Failure(f"DevTools {method}: {msg['error']}")
                return msg.get("result", {})
            self.event(msg)

    def event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text")
            self.errors.append(f"uncaught exception: {text}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
            args = [a.get("value", a.get("description", "")) for a in
                    p.get("args", [])]
            self.errors.append("console.error: " + " ".join(map(str, args)))

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr,
                      returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            raise Failure(f"page script failed: {text}\n  in: {expr}")
        return r.get("result", {}).get("value")

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def js(s):
    """A Python string as a JavaScript string literal."""
    return json.dumps(s)


class Page:
    """The dashboard in the browser, used through mouse and keyboard."""

    def __init__(self, cdp, stack):
        self.cdp = cdp
        self.stack = stack

    def eval(self, expr):
        return self.cdp.eval(expr)

    def text(self, sel):
        return self.eval(f"(() => {{ const el = document.querySelector("
                         f"{js(sel)}); return el ? el.textContent : null; "
                         f"}})()")

    def visible(self, sel):
        return f"(() => {{ const el = document.querySelector({js(sel)}); " \
               f"return !!el && el.getClientRects().length > 0; }})()"

    def describe(self):
        """What the page shows, for a failure message."""
        return self.eval("""(() => {
          const t = (s) => {
            const e = document.querySelector(s);
            return e && e.getClientRects().length ? e.textContent.trim()
                                                  : null;
          };
          return JSON.stringify({hash: location.hash, connection: t('#conn'),
            banner: t('#banner'), status: t('#wf-status'),
            missing: t('#wf-missing'),
            errors: [...document.querySelectorAll('.msg.error')]
              .filter(e => !e.hidden).map(e => e.textContent),
            rows: [...document.querySelectorAll('#workflow-rows tr')]
              .slice(0, 5)
              .map(r => r.dataset.workflowId + ':' + r.dataset.status)});
        })()""")

    def wait(self, expr, what, timeout=STEP_S):
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expr)
            if v:
                return v
            for name in ("keel-projector", "chromium"):
                self.stack.check(name)
            if time.monotonic() > deadline:
                raise Failure(f"timed out after {timeout} s waiting for "
                              f"{what}; the page shows {self.describe()}")
            time.sleep(0.2)

    def wait_text(self, sel, want, what, timeout=STEP_S):
        return self.wait(f"(() => {{ const el = document.querySelector("
                         f"{js(sel)}); return !!el && el.getClientRects()"
                         f".length > 0 && el.textContent.trim() === "
                         f"{js(want)}; }})()", what, timeout)

    def click(self, sel):
        box = self.eval(f"""(() => {{
          const el = document.querySelector({js(sel)});
          if (!el) return null;
          el.scrollIntoView({{block: 'center'}});
          const r = el.getBoundingClientRect();
          const x = r.left + r.width / 2, y = r.top + r.height / 2;
          const top = document.elementFromPoint(x, y);
          return {{x, y, w: r.width, h: r.height, disabled: !!el.disabled,
                   hit: !!top && (top === el || el.contains(top))}};
        }})()""")
        if not box:
            raise Failure(f"the page has no {sel} to click; it shows "
                          f"{self.describe()}")
        if not box["w"] or not box["h"]:
            raise Failure(f"{sel} is not visible")
        if box["disabled"]:
            raise Failure(f"{sel} is disabled")
        if not box["hit"]:
            raise Failure(f"{sel} is covered by another element")
        x, y = box["x"], box["y"]
        self.cdp.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for t in ("mousePressed", "mouseReleased"):
            self.cdp.call("Input.dispatchMouseEvent", type=t, x=x, y=y,
                          button="left", clickCount=1)

    def type(self, sel, text):
        """Click into a field, select what it holds and type text over it."""
        self.click(sel)
        focused = self.eval(f"(() => {{ const el = document.activeElement; "
                            f"if (!el || !el.matches({js(sel)})) return false;"
                            f" el.select(); return true; }})()")
        if not focused:
            raise Failure(f"clicking {sel} did not put the cursor in it")
        if text:
            self.cdp.call("Input.insertText", text=text)
        else:
            for t in ("keyDown", "keyUp"):
                self.cdp.call("Input.dispatchKeyEvent", type=t,
                              key="Backspace", code="Backspace",
                              windowsVirtualKeyCode=8)
        got = self.eval(f"document.querySelector({js(sel)}).value")
        if got != text:
            raise Failure(f"typed {text!r} into {sel} but it holds {got!r}")


def row(wid):
    return 'tr[data-workflow-id="%s"]' % wid.replace("\\", "\\\\").replace(
        '"', '\\"')


def png_size(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise Failure("the screenshot is not a PNG")
    return struct.unpack(">II", data[16:24])


# ---- the test ----------------------------------------------------------


def start_stack(args, stack, tmp, token):
    """Dev broker, orchestrator, worker, projector; answers the base URL."""
    bootstrap = os.path.join(tmp, "bootstrap")
    stack.start("dev-broker", [args.keel, "dev-broker", "--partitions", "12",
                               "--task-queue", "payments", "--port-file",
                               bootstrap])
    b = wait_until("the dev broker's bootstrap file",
                   lambda: read_file(bootstrap), 15,
                   lambda: stack.check("dev-broker"))
    log(f"dev broker at {b}")

    # Only the settings given here: none from the caller's environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_BOOTSTRAP"] = b
    bindir = args.bindir
    stack.start("keel-orchestrator",
                [os.path.join(bindir, "keel-orchestrator"), "--workflows",
                 args.module], env)
    stack.start("keel-payment-worker",
                [os.path.join(bindir, "keel-payment-worker"), "--effects",
                 os.path.join(tmp, "effects.log")], env)
    port_file = os.path.join(tmp, "http.port")
    stack.start("keel-projector",
                [os.path.join(bindir, "keel-projector"), "-X",
                 "http.listen=127.0.0.1:0", "-X", f"http.token={token}",
                 "--port-file", port_file], env)
    port = wait_until("keel-projector's port file",
                      lambda: read_file(port_file), 20,
                      lambda: stack.check("keel-projector"))
    base = f"http://127.0.0.1:{port}"
    wait_until("keel-projector to be ready (/readyz 200)",
               lambda: http("GET", base + "/readyz")[0] == 200, 30,
               lambda: stack.check("keel-projector"))
    wait_until("keel-orchestrator to own its partitions",
               lambda: "msg=assigned" in read_file(
                   stack.logfile("keel-orchestrator")), 30,
               lambda: stack.check("keel-orchestrator"))
    log(f"keel-projector at {base}")
    return base


def check_assets(base, web_dir):
    """The embedded files are served byte for byte, with their types."""
    for path, (name, ctype) in ASSETS.items():
        status, headers, body = http("GET", base + path)
        if status != 200:
            raise Failure(f"GET {path} answered {status}")
        got = headers.get("Content-Type")
        if got != ctype:
            raise Failure(f"GET {path}: Content-Type {got!r}, not {ctype!r}")
        with open(os.path.join(web_dir, name), "rb") as f:
            if body != f.read():
                raise Failure(f"GET {path} is not projector/web/{name} as "
                              "built")
    status = http("GET", base + "/ui/no-such-file.js")[0]
    if status != 404:
        raise Failure(f"GET /ui/no-such-file.js answered {status}, not 404")
    log("/ and /ui/* serve the embedded files with their content types")


def start_chromium(args, stack, tmp):
    """Headless Chromium; answers a DevTools session on its blank page."""
    profile = os.path.join(tmp, "chrome")
    argv = [args.chromium, "--headless=new", "--remote-debugging-port=0",
            f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu",
            "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
            "--log-level=3",
            "about:blank"]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")  # Chromium's sandbox refuses root
    stack.start("chromium", argv)
    active = os.path.join(profile, "DevToolsActivePort")
    port = wait_until("Chromium's DevToolsActivePort file",
                      lambda: read_file(active).split("\n")[0], 30,
                      lambda: stack.check("chromium"))

    def page_target():
        status, _, body = http("GET", f"http://127.0.0.1:{port}/json/list")
        if status != 200:
            return None
        pages = [t for t in json.loads(body) if t.get("type") == "page"]
        return pages[0]["webSocketDebuggerUrl"] if pages else None

    url = wait_until("Chromium's page target", page_target, 15,
                     lambda: stack.check("chromium"))
    log(f"chromium DevTools on port {port}")
    return Cdp(url)


def history_seqs(base, wid):
    """The seq of every event of wid's history, read from the API."""
    seqs, cursor = [], None
    while True:
        q = {"limit": "1000"}
        if cursor is not None:
            q["cursor"] = cursor
        url = (f"{base}/api/v1/workflows/{urllib.parse.quote(wid, safe='')}"
               f"/history?{urllib.parse.urlencode(q)}")
        status, _, body = http("GET", url)
        if status != 200:
            raise Failure(f"GET {url} answered {status}")
        page = json.loads(body)
        seqs += [e["seq"] for e in page["events"]]
        cursor = page.get("next_cursor")
        if cursor is None:
            return seqs


def drive(page, cdp, base, token, wid, screenshot):
    """The user's walk through the dashboard."""
    cdp.call("Runtime.enable")
    cdp.call("Page.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=WIDTH,
             height=HEIGHT, deviceScaleFactor=1, mobile=False)
    cdp.call("Page.navigate", url=base + "/")
    page.wait("document.readyState === 'complete'", "the page to load")
    page.wait(page.visible("#list-view"), "the workflow list")
    page.wait("document.querySelector('#conn').dataset.state === 'live'",
              "the page to read the API (connection 'live')")
    log("dashboard loaded; the list is live")

    # Start a workflow through the form. The projector has a token, so the
    # first POST answers 401 and the page asks for it.
    page.type("#start-type", "payment")
    page.type("#start-id", wid)
    page.type("#start-input", INPUT)
    page.click("#start-send")
    page.wait(page.visible("#token-dialog"),
              "the page to ask for a bearer token after the 401")
    if page.eval(page.visible("#start-result")):
        raise Failure("the page said the workflow started before it had "
                      "the token")
    page.type("#token-input", token)
    page.click("#token-save")
    page.wait(f"{page.visible('#start-result')} || "
              f"{page.visible('#start-error')}",
              "the page to answer the start once it had the token")
    shown = page.text("#start-result")
    if wid not in shown or page.eval(page.visible("#start-error")):
        raise Failure(f"after starting, the page says {shown!r} / "
                      f"{page.text('#start-error')!r}")
    if page.eval("localStorage.getItem('keel.token')") != token:
        raise Failure("the token was not kept in localStorage")
    log(f"started {wid} through the form (token asked for after a 401)")

    page.wait_text(row(wid) + " td.status", "running",
                   f"the list to show {wid} running")
    running = int(page.text('button.chip[data-status="running"] .n') or 0)
    if running < 1:
        raise Failure(f"the running chip counts {running}, not at least 1")
    log("the list shows it running")

    # The prefix search narrows the list to it.
    page.type("#filter-prefix", wid[:-1])
    page.wait(f"(() => {{ const r = document.querySelectorAll("
              f"'#workflow-rows tr'); return r.length === 1 && "
              f"r[0].dataset.workflowId === {js(wid)}; }})()",
              "the prefix search to leave only that workflow")
    page.type("#filter-prefix", "")
    page.wait("location.hash === '#/'", "the search to be cleared")

    # An error from the API reaches the user: the projector's own message.
    bad = {"type": "payment", "workflow_id": "!bad"}
    status, _, body = http("POST", base + "/api/v1/workflows",
                           json.dumps(bad).encode(),
                           {"Content-Type": "application/json",
                            "Authorization": f"Bearer {token}"})
    if status != 400:
        raise Failure(f"POST of workflow ID '!bad' answered {status}, not "
                      "400")
    api_msg = json.loads(body)["error"]
    page.type("#start-id", "!bad")
    page.type("#start-input", "")
    page.click("#start-send")
    page.wait_text("#start-error", api_msg,
                   f"the page to show the API's error {api_msg!r}")
    page.type("#start-id", "")
    log(f"the API's error is shown: {api_msg!r}")

    # Open it from the list.
    page.click(row(wid) + " td.type")
    url_hash = "#/workflows/" + urllib.parse.quote(wid, safe="")
    page.wait(f"location.hash === {js(url_hash)}",
              "the workflow's URL after clicking its row")
    page.wait_text("#wf-status", "running", "the workflow view")
    page.wait_text("#wf-type", "payment", "the workflow's type")
    page.wait("document.querySelector('#wf-run-id').textContent.length > 0",
              "the run ID")
    page.wait("document.querySelector('#wf-input').textContent"
              ".includes('\"refund_window_ms\": 600000')", "the input")
    page.wait("document.querySelector('#wf-state').textContent"
              ".includes('refund_window')",
              "the published state to reach the refund window")
    page.wait("!!document.querySelector("
              "'#wf-history li[data-type=\"WorkflowStarted\"]') && "
              "!!document.querySelector("
              "'#wf-history li[data-type=\"ActivityScheduled\"]')",
              "the history timeline")
    log("the workflow view shows it waiting in its refund window")

    page.type("#signal-name", "refundApproved")
    page.type("#signal-payload", "{}")
    page.click("#signal-send")
    page.wait(f"{page.visible('#action-result')} || "
              f"{page.visible('#action-error')}",
              "the page to answer the signal")
    if page.eval(page.visible("#action-error")):
        raise Failure("the page says the signal failed: " +
                      page.text("#action-error"))
    log("sent refundApproved through the page")

    page.wait_text("#wf-status", "completed",
                   "the page to show the workflow completed", CLOSE_S)
    page.wait("document.querySelector('#wf-outcome').textContent"
              ".includes('refunded')", "the result {\"status\": \"refunded\"}")
    page.wait("document.querySelector('#wf-signals').textContent"
              ".includes('refundApproved')", "the signal in the signal list")
    page.wait("!!document.querySelector("
              "'#wf-history li[data-type=\"SignalReceived\"]') && "
              "!!document.querySelector("
              "'#wf-history li[data-type=\"WorkflowCompleted\"]')",
              "the signal and the completion in the timeline")
    want = history_seqs(base, wid)
    page.wait(f"JSON.stringify([...document.querySelectorAll("
              f"'#wf-history li')].map(li => Number(li.dataset.seq))) === "
              f"{js(json.dumps(want, separators=(',', ':')))}",
              f"the timeline to hold the {len(want)} events the API has")
    if not page.eval("document.querySelector('#signal-send').disabled"):
        raise Failure("Signal is still enabled on a closed workflow")
    log("the page shows it completed with result refunded")

    page.eval("window.scrollTo(0, 0)")
    time.sleep(0.3)
    shot = base64.b64decode(cdp.call("Page.captureScreenshot",
                                     format="png")["data"])
    if png_size(shot) != (WIDTH, HEIGHT):
        raise Failure(f"screenshot is {png_size(shot)}, not "
                      f"{(WIDTH, HEIGHT)}")
    if screenshot:
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)),
                    exist_ok=True)
        with open(screenshot, "wb") as f:
            f.write(shot)
        log(f"screenshot of the workflow view: {screenshot}")

    # The view is reachable by its URL, and the list shows the outcome.
    cdp.call("Page.navigate", url="about:blank")
    cdp.call("Page.navigate", url=base + "/" + url_hash)
    page.wait_text("#wf-status", "completed", "the workflow view from its URL")
    page.click("#back")
    page.wait_text(row(wid) + " td.status", "completed",
                   "the list to show it completed")
    log("its URL opens the view; the list shows it completed")

    if cdp.errors:
        raise Failure("the page reported errors:\n  " +
                      "\n  ".join(cdp.errors))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keel", required=True, help="the keel tool")
    ap.add_argument("--bindir", required=True,
                    help="directory of keel-orchestrator, keel-projector, "
                         "keel-payment-worker")
    ap.add_argument("--module", required=True,
                    help="the payment workflow module (.so)")
    ap.add_argument("--web-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "projector",
        "web"), help="projector/web, to compare with what is served")
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--screenshot",
                    default=os.environ.get("KEEL_DASHBOARD_SCREENSHOT"),
                    help="write a PNG of the workflow view here (also "
                         "KEEL_DASHBOARD_SCREENSHOT)")
    args = ap.parse_args()

    chromium = shutil.which(args.chromium)
    if not chromium:
        sys.exit(f"FAILED: {args.chromium} not found; install Debian's "
                 "chromium (scripts/setup.sh test)")
    args.chromium = chromium
    for path in (args.keel, args.module,
                 *(os.path.join(args.bindir, d) for d in
                   ("keel-orchestrator", "keel-projector",
                    "keel-payment-worker"))):
        if not os.path.isfile(path):
            sys.exit(f"FAILED: {path} not found; build keel first")

    tmp = tempfile.mkdtemp(prefix="keel-dashboard-")
    stack = Stack(tmp)

    def watchdog():
        print(f"FAILED: the test ran longer than {WATCHDOG_S} s; stopping "
              "everything it started", file=sys.stderr, flush=True)
        stack.dump()
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        os._exit(1)

    timer = threading.Timer(WATCHDOG_S, watchdog)
    timer.daemon = True
    timer.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAILED: terminated"))
    token = base64.urlsafe_b64encode(os.urandom(18)).decode()
    wid = f"dash-{os.getpid()}-{int(time.time())}"
    cdp = None
    rc = 1
    try:
        base = start_stack(args, stack, tmp, token)
        check_assets(base, args.web_dir)
        cdp = start_chromium(args, stack, tmp)
        drive(Page(cdp, stack), cdp, base, token, wid, args.screenshot)
        rc = 0
        log("dashboard_browser: ok")
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        stack.dump()
    except (websocket.WebSocketException, OSError) as e:
        print(f"FAILED: talking to Chromium: {e!r}", file=sys.stderr,
              flush=True)
        stack.dump()
    finally:
        if cdp:
            cdp.close()
        stack.stop()
        timer.cancel()
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
