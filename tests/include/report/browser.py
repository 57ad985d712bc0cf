"""Open an HTML file in headless Chromium, without any dependency beyond the browser itself.

:func:`chromium_path` finds Debian's ``chromium`` (``/usr/bin/chromium``) and, when it is
missing and we run as root with apt available, installs it once (``apt-get update && apt-get
install -y chromium``, serialised by a lock file so parallel tests do not race). When it
cannot be had, it raises :class:`BrowserUnavailable` with the reason: the acceptance test
fails loudly rather than skipping.

:func:`open_in_chromium` loads an instrumented copy of the page (an error trap injected first
in ``<head>``, a measuring script last in ``<body>``) with ``--dump-dom``, so the measurements
come back in the DOM, and reads the console from Chromium's log on stderr. A second run takes
the screenshot. Background networking, sync, component updates and QUIC are all disabled: the
page must work offline.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
LOCK_FILE = Path(tempfile.gettempdir()) / "segmint-chromium-install.lock"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)
RESULT_ID = "__segmint_measure"

# Injected first: catch every error and console.error before the page's own scripts run.
TRAP = """<script>
window.__segmintErrors = [];
window.addEventListener('error', function (e) {
  var where = e.filename ? ' (' + e.filename + ':' + e.lineno + ')' : '';
  var target = e.target && (e.target.src || e.target.href);
  var what = e.message || ('failed to load ' + (target || '?'));
  window.__segmintErrors.push(what + where);
}, true);
window.addEventListener('unhandledrejection', function (e) {
  window.__segmintErrors.push('unhandled rejection: ' + e.reason);
});
(function () {
  var original = console.error;
  console.error = function () {
    window.__segmintErrors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
</script>"""

# Injected last: measure every chart once layout is done, write the result into the DOM.
MEASURE = (
    """<script>
(function () {
  function box(el) {
    var r = el.getBoundingClientRect();
    return {width: r.width, height: r.height};
  }
  var charts = Array.prototype.map.call(document.querySelectorAll('[data-chart]'), function (fig) {
    var svg = fig.querySelector('svg');
    var size = svg ? box(svg) : {width: 0, height: 0};
    var marks = svg ? svg.querySelectorAll('path,rect,line,use').length : 0;
    // Text drawn past the SVG's edge is cut off on screen (a title wider than its chart).
    var clipped = [];
    if (svg) {
      var edge = svg.getBoundingClientRect();
      Array.prototype.forEach.call(svg.querySelectorAll('text'), function (t) {
        var r = t.getBoundingClientRect();
        if (r.width && (r.left < edge.left - 1 || r.right > edge.right + 1 ||
                        r.top < edge.top - 1 || r.bottom > edge.bottom + 1)) {
          clipped.push(t.textContent);
        }
      });
    }
    return {name: fig.getAttribute('data-chart'), has_svg: !!svg, width: size.width,
            height: size.height, marks: marks, clipped: clipped};
  });
  // A table wider than its box scrolls sideways: its right-hand columns are out of view
  // (and off a printed page).
  var tables = Array.prototype.map.call(document.querySelectorAll('.table-wrap'),
                                        function (wrap) {
    var head = Array.prototype.map.call(wrap.querySelectorAll('th'),
                                        function (th) { return th.textContent; });
    return {columns: head, overflow: wrap.scrollWidth - wrap.clientWidth};
  });
  var out = document.createElement('pre');
  out.id = '"""
    + RESULT_ID
    + """';
  out.textContent = JSON.stringify({
    charts: charts,
    tables: tables,
    errors: window.__segmintErrors,
    page: {width: document.documentElement.scrollWidth,
           height: document.documentElement.scrollHeight},
    sections: Array.prototype.map.call(document.querySelectorAll('section[id]'),
                                       function (s) { return s.id; }),
    title: document.title,
    // How the page prints: its menu, its header's band, its persona bars' colours.
    styles: (function () {
      function style(selector) {
        var el = document.querySelector(selector);
        return el ? getComputedStyle(el) : null;
      }
      var nav = style('nav'), header = style('header.top'), bar = style('.feat .bar span');
      return {nav_display: nav && nav.display,
              header_background: header && header.backgroundColor,
              bar_color_adjust: bar && (bar.printColorAdjust || bar.webkitPrintColorAdjust)};
    })()
  });
  document.body.appendChild(out);
})();
</script>"""
)

# Chromium's log line for a console message (any level: the page has no script, so any
# message at all means something went wrong), e.g.
# [..:INFO:CONSOLE:3] "Uncaught ReferenceError: x is not defined", source: file:///a.html (3)
CONSOLE_RE = re.compile(r':CONSOLE[^\]]*\]\s*"(?P<msg>.*)", source:')


class BrowserUnavailable(RuntimeError):
    """Chromium is not installed and could not be installed."""


@dataclass
class PageReport:
    charts: list[dict]
    errors: list[str]
    console: list[str]
    page_width: float
    page_height: float
    sections: list[str]
    title: str
    tables: list[dict] = field(default_factory=list)
    styles: dict = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)


def chromium_path() -> str:
    """The Chromium binary, installing Debian's package once when allowed."""
    for candidate in CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BrowserUnavailable(
            "headless Chromium is needed for the report test: install Debian's `chromium` "
            "package (apt-get install -y chromium); not root or no apt-get here, so the "
            "test cannot install it itself"
        )
    with open(LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for candidate in CANDIDATES:  # another test process may have installed it meanwhile
            if os.access(candidate, os.X_OK):
                return candidate
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            done = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=1200, check=False
            )
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
                raise BrowserUnavailable(
                    f"`{' '.join(cmd)}` failed (exit {done.returncode}) while installing "
                    f"Chromium for the report test: {' / '.join(tail)}"
                )
    for candidate in CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise BrowserUnavailable("apt-get installed `chromium` but no binary is at /usr/bin/chromium")


def _run(args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium_path(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def instrument(html: str, print_rules: bool = False) -> str:
    """The page with the error trap first in <head> and the measuring script last; with
    ``print_rules``, its ``@media print`` rules applied on screen (Chromium's command line
    cannot emulate print media, so a printed page is measured this way)."""
    if print_rules:
        html = html.replace("@media print", "@media all")
    head = re.search(r"<head[^>]*>", html, flags=re.IGNORECASE)
    if not head or "</body>" not in html:
        raise ValueError("page has no <head> or </body> to instrument")
    html = html[: head.end()] + TRAP + html[head.end() :]
    cut = html.rfind("</body>")
    return html[:cut] + MEASURE + html[cut:]


def open_in_chromium(
    page: Path,
    workdir: Path,
    screenshot_sizes: tuple[tuple[int, int], ...] = ((1440, 900),),
    full_page_width: int | None = 1440,
    timeout: float = 120,
    width: int = 1440,
    print_rules: bool = False,
) -> PageReport:
    """Load ``page`` headless, return measurements, console errors and screenshots; the
    measurements in a window ``width`` wide, with the page's print rules when
    ``print_rules`` (a sheet of A4 is some 720 px wide within its margins)."""
    workdir.mkdir(parents=True, exist_ok=True)
    probe = workdir / f"{page.stem}.instrumented.html"
    probe.write_text(instrument(page.read_text(encoding="utf-8"), print_rules), encoding="utf-8")
    with _profile() as profile:
        done = _run(
            [
                "--enable-logging=stderr",
                "--log-level=0",
                f"--window-size={width},900",
                "--virtual-time-budget=5000",
                "--dump-dom",
                probe.resolve().as_uri(),
            ],
            profile,
            timeout,
        )
    if done.returncode != 0 or RESULT_ID not in done.stdout:
        raise RuntimeError(
            f"Chromium could not render {page} (exit {done.returncode}): "
            f"{done.stderr.strip()[-2000:]}"
        )
    match = re.search(rf'<pre id="{RESULT_ID}">(.*?)</pre>', done.stdout, flags=re.DOTALL)
    data = json.loads(_unescape(match.group(1)))
    console = [
        m.group("msg") for line in done.stderr.splitlines() if (m := CONSOLE_RE.search(line))
    ]
    report = PageReport(
        charts=data["charts"],
        errors=data["errors"],
        console=console,
        page_width=data["page"]["width"],
        page_height=data["page"]["height"],
        sections=data["sections"],
        title=data["title"],
        tables=data["tables"],
        styles=data["styles"],
    )
    sizes = list(screenshot_sizes)
    if full_page_width:
        sizes.append((full_page_width, int(report.page_height) + 16))
    for width, height in sizes:
        shot = workdir / f"{page.stem}-{width}x{height}.png"
        with _profile() as profile:
            done = _run(
                [
                    f"--window-size={width},{height}",
                    "--virtual-time-budget=5000",
                    f"--screenshot={shot}",
                    page.resolve().as_uri(),
                ],
                profile,
                timeout,
            )
        if done.returncode != 0 or not shot.exists():
            raise RuntimeError(f"Chromium screenshot of {page} failed: {done.stderr[-2000:]}")
        report.screenshots.append(shot)
    return report


@contextlib.contextmanager
def _profile():
    with tempfile.TemporaryDirectory(prefix="segmint-chromium-") as folder:
        yield Path(folder)


def _unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&#39;", "'")
        .replace("&amp;", "&")
    )
