"""Helpers shared by the browser tests, the screenshots script and the web benchmark: find
Debian's Chromium, start `bodyscene experiment serve` as a process (so it can be killed -9),
and drive the exported page with key presses as a participant would."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")

# What the page shows now, read from jsPsych's current trial (see experiment.js).
STATE_JS = """() => {
  const q = (s) => document.querySelector(s);
  const st = JSON.parse(localStorage.getItem(window.__bsKey) || "null");
  const base = {acked: st ? st.acked.length : 0, pending: st ? st.pending.filter(p => p.path === "api/trial").length : 0};
  if (q("#bs-end")) return {...base, screen: "end", saved: q("#bs-end").dataset.saved === "1"};
  if (q("#jspsych-fullscreen-btn")) return {...base, screen: "fullscreen"};
  const b = window.__bodyscene;
  const t = b && b.jsPsych.getCurrentTrial();
  if (!t) return {...base, screen: "loading"};
  const data = t.data || {};
  return {...base, screen: data.screen || t.type.info.name, order: data.order ?? null,
          labels: !!q(".bs-resp[data-up]"), k: (t.choices || []).length,
          choices: t.choices || null};
}"""


def chromium() -> str | None:
    """The system's Chromium executable (the real binary, not Debian's shell wrapper)."""
    for name in CHROMIUM_CANDIDATES:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.path.exists(path) and os.access(path, os.X_OK):
            return path
    return None


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for module, extra in (("playwright", "dev"), ("starlette", "web"), ("uvicorn", "web")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[{extra}]')"
    if chromium() is None:
        return "Chromium is not installed (bash scripts/install-web.sh)"
    if shutil.which("npm") is None:
        return "npm is not installed (bash scripts/install-web.sh)"
    return None


class Server:
    """`bodyscene experiment serve` in its own process on 127.0.0.1."""

    def __init__(self, plan: Path, data: Path, site: Path, port: int = 0):
        self.log = open(Path(data).parent / "server.out", "a")
        cmd = [sys.executable, "-m", "bodyscene.cli", "experiment", "serve", "--plan", str(plan),
               "--data", str(data), "--site", str(site), "--host", "127.0.0.1", "--port",
               str(port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.startswith("serving "):
            self.proc.kill()
            raise RuntimeError(f"serve did not start: {line!r}")
        self.url = line.split()[1].split("/?")[0].rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])
        self.data, self.plan = Path(data), Path(plan)
        self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 20) -> None:
        """The socket is bound before "serving" is printed; uvicorn listens a moment later."""
        import urllib.request

        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"serve at {self.url} does not answer") from None
                time.sleep(0.05)

    def link(self, participant: str, **params: str) -> str:
        """The participant's URL with its session token, as `experiment links` writes it."""
        from urllib.parse import urlencode

        from bodyscene.human_study.plan import read_plan
        from bodyscene.human_study.web.tokens import load_secret, session_token

        token = session_token(load_secret(self.data), read_plan(self.plan).sha256, participant,
                              1)
        return f"{self.url}/?" + urlencode({"participant": participant, "token": token,
                                            **params})

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)   # this process only, by its id
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.log.close()


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium(), headless=True)


def open_page(browser, server: "Server", participant: str, size=(1024, 768), context=None):
    ctx = context or browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.add_init_script(f"window.__bsKey = 'bodyscene:{participant}:s1';")
    page.goto(server.link(participant))
    return page


def state(page) -> dict:
    return page.evaluate(STATE_JS)


def drive(page, until, key_for=lambda s: str(1 + s["order"] % s["k"]), timeout: float = 90,
          continue_key: str = " "):
    """Answer screens as a participant would until `until(state)` is true: `continue_key` (a
    Playwright key name) on text screens, a click on the full-screen button, and on each trial
    the key `key_for(state)` once its choices are up. Returns the last state."""
    deadline = time.time() + timeout
    answered = None
    while True:
        s = state(page)
        if until(s):
            return s
        if time.time() > deadline:
            raise AssertionError(f"stuck: {s}; page errors {page.errors}")
        if s["screen"] == "fullscreen":
            try:  # a real click: full screen needs a user gesture
                page.click("#jspsych-fullscreen-btn", timeout=1000)
            except Exception:  # noqa: BLE001 - gone between the look and the click
                pass
            page.wait_for_timeout(50)
        elif s["screen"] in ("instructions", "consent", "resume", "practice", "main", "break"):
            page.keyboard.press(continue_key)
            page.wait_for_timeout(30)
        elif s["screen"] == "trial" and s["labels"] and s["order"] != answered:
            page.keyboard.press(key_for(s))
            answered = s["order"]
        else:
            page.wait_for_timeout(15)


JSPSYCH_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{vendor}/jspsych.css">
<script src="{vendor}/jspsych.js"></script>
<script src="{vendor}/plugin-html-keyboard-response.js"></script>
<script src="{vendor}/plugin-image-keyboard-response.js"></script>
</head><body></body><script>
// A plain jsPsych experiment as a lab would write it: a welcome screen, then per trial a
// fixation and an image answered with number keys; the choice order is added to the data.
const jsPsych = initJsPsych();
jsPsych.data.addProperties({{subject_id: "S01", study: "toy"}});
const trials = {trials};
const timeline = [{{type: jsPsychHtmlKeyboardResponse, stimulus: "<p>Welcome. Press space.</p>", choices: [" "]}}];
for (const t of trials) {{
  timeline.push({{type: jsPsychHtmlKeyboardResponse, stimulus: "+", choices: "NO_KEYS", trial_duration: 50}});
  timeline.push({{type: jsPsychImageKeyboardResponse, stimulus: t.image, choices: t.choices.map((c, i) => String(i + 1)),
                 prompt: t.choices.map((c, i) => `${{i + 1}} ${{c}}`).join(" "), data: {{choice_order: t.choices.join(";")}}}});
}}
jsPsych.run(timeline).then(() => {{ window.__csv = jsPsych.data.get().csv(); }});
</script></html>"""


def jspsych_data_file(browser, modules: Path, folder: Path, trials: list[dict], keys: list[str]) -> str:
    """Run a plain jsPsych experiment (the npm package's own image-keyboard-response plugin)
    from folder/experiment.html, press `keys` (space first), and return jsPsych's own CSV."""
    from bodyscene.human_study.web.export import vendor

    vendor(modules, folder / "vendor")
    page_path = folder / "experiment.html"
    page_path.write_text(JSPSYCH_PAGE.format(vendor="vendor", trials=json.dumps(trials)))
    page = browser.new_page()
    page.goto(page_path.as_uri())
    page.wait_for_selector("text=Welcome")
    page.keyboard.press(" ")
    for key in keys:
        page.wait_for_selector("#jspsych-image-keyboard-response-stimulus")
        page.wait_for_timeout(30)
        page.keyboard.press(key)
        page.wait_for_timeout(80)
    page.wait_for_function("window.__csv !== undefined")
    csv = page.evaluate("window.__csv")
    page.close()
    return csv
