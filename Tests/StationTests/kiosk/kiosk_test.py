#!/usr/bin/env python3
"""Real-browser test of the kiosk page: headless Chromium (Debian's chromium
and chromium-driver) driven over WebDriver with Selenium.

    kiosk_test.py --daemon .build/debug/telestation-demo-station [--args "..."] [--artifacts DIR]
    kiosk_test.py --url http://127.0.0.1:8080/          # against a daemon already running

Walks the path staff take — preview, camera settings, the patient (DNI with
its check character, names, sex, age, consent, the echo), body map, history,
a three-image case with a retake and a dropped image, send, queue, the case
at the hub, upload limit, replies, a returning patient — asserting each step and saving a screenshot
of each screen as DIR/kiosk-*.png. Exits non-zero on the first failure.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 60  # generous: a loaded 2-core machine runs Chromium slowly
# The live station's hub and station id (live-station.sh prints them); None for the demo daemon.
HUB = None


def start_daemon(binary, extra_args):
    args = [binary] + (shlex.split(extra_args) if extra_args else ["--listen", "127.0.0.1:0"])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    deadline = time.time() + TIMEOUT
    global HUB
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        hub = re.search(r"^hub (http://\S+) station (\S+)", line)
        if hub:
            HUB = (hub.group(1), hub.group(2))
        m = re.search(r"listening (http://\S+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise SystemExit("daemon did not report its address")


def browser(width, height):
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--lang=es-PE", "--hide-scrollbars"]:
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    # The window size includes browser chrome; the panel is all page.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


class Kiosk:
    def __init__(self, driver, artifacts):
        self.d = driver
        self.artifacts = artifacts
        # The page re-renders lists (camera controls, queue) after each
        # change: an element found a moment before may be replaced while it
        # is read, so a stale element means "look again", not a failure.
        self.wait = WebDriverWait(driver, TIMEOUT, ignored_exceptions=[NoSuchElementException, StaleElementReferenceException])

    def by_id(self, i):
        return self.d.find_element(By.ID, i)

    def until(self, what, fn):
        try:
            return self.wait.until(lambda d: fn())
        except Exception:
            self.shot("failure")
            raise AssertionError(f"timed out waiting for: {what}")

    def shot(self, name):
        path = os.path.join(self.artifacts, f"kiosk-{name}.png")
        self.d.save_screenshot(path)
        print(f"screenshot {path}")

    def visible_screen(self):
        return self.d.execute_script("return document.querySelector('.screen.show').id")

    def tap(self, element):
        # Touch targets must be big enough for a gloved finger.
        w, h = element.size["width"], element.size["height"]
        assert w >= 48 and h >= 48, f"touch target {element.get_attribute('id') or element.text!r} is {w}x{h}"
        element.click()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon")
    ap.add_argument("--args", default="")
    ap.add_argument("--url")
    ap.add_argument("--artifacts", default=".build/artifacts")
    ap.add_argument("--size", default="1024x600", help="screen size; 7-inch panels are 800x480 or 1024x600")
    ap.add_argument("--problems", action="store_true",
                    help="the daemon reports a missing camera, a rejected token and a full disk: check the page says so")
    a = ap.parse_args()
    os.makedirs(a.artifacts, exist_ok=True)
    proc = None
    url = a.url
    if not url:
        proc, url = start_daemon(a.daemon, a.args)
    width, height = (int(x) for x in a.size.split("x"))
    driver = browser(width, height)
    try:
        (run_problems if a.problems else run)(Kiosk(driver, a.artifacts), url)
    finally:
        driver.quit()
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
    print("kiosk test passed")


def run(k, url):
    d = k.d
    d.get(url)
    # Spanish by default.
    k.until("page script ran", lambda: k.by_id("capture-btn").text == "CAPTURAR")
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
    assert k.by_id("tab-capture").text == "Capturar"

    # The preview shows frames, and they change.
    k.until("preview frame", lambda: d.execute_script("return document.getElementById('preview').naturalWidth") > 0)
    grab = """const i = document.getElementById('preview'); const c = document.createElement('canvas');
              c.width = i.naturalWidth; c.height = i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0);
              return c.toDataURL('image/png');"""
    first = d.execute_script(grab)
    k.until("a different preview frame", lambda: d.execute_script(grab) != first)
    k.until("link indicator", lambda: k.by_id("link-text").text.startswith("En línea"))
    # Everything on the capture screen fits on the panel, no scrolling.
    overflow = d.execute_script("""return [...document.querySelectorAll('#capture-screen button, #capture-screen textarea, header button')]
        .filter(e => e.getBoundingClientRect().bottom > window.innerHeight + 0.5 || e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .map(e => e.id || e.textContent)""")
    assert not overflow, f"cut off at this screen size: {overflow}"
    k.shot("1-capture")
    axe_check(k, "capture")
    camera_settings(k, url)

    # Capture before the patient is registered: a clear Spanish error, nothing captured.
    k.tap(k.by_id("capture-btn"))
    k.until("patient needed", lambda: "paciente" in k.by_id("form-error").text)
    assert k.visible_screen() == "capture-screen"

    # The DNI with a mistyped check character is refused on the keypad, in Spanish.
    # 40123456's check character is 5 (or J on newer cards).
    k.tap(k.by_id("patient-field"))
    k.until("patient sheet", lambda: k.by_id("patient-overlay").is_displayed())
    k.tap(k.by_id("case-field"))
    k.until("keypad", lambda: k.by_id("keypad-overlay").is_displayed())
    type_keys(k, "40123456-7")
    assert k.by_id("keypad-value").text == "40123456-7", k.by_id("keypad-value").text
    k.tap(k.by_id("keypad-done"))
    k.until("check character refused", lambda: "carácter de verificación" in k.by_id("keypad-error").text)
    assert k.by_id("keypad-overlay").is_displayed(), "the keypad closed on a wrong DNI"
    k.shot("2-dni-refused")
    k.tap(d.find_element(By.CSS_SELECTOR, '#keypad button[data-key="⌫"]'))
    type_keys(k, "J")
    k.tap(k.by_id("keypad-done"))
    k.until("keypad closed", lambda: not k.by_id("keypad-overlay").is_displayed())
    # Stored as its 8 digits once the check character matched.
    assert k.by_id("case-field").text.endswith("40123456"), k.by_id("case-field").text

    fill_patient(k, "Mamani Quispe", "Rosa", "F", "54", consent=False)
    k.tap(k.by_id("patient-done"))
    k.until("consent required", lambda: "consentimiento" in k.by_id("patient-error").text)
    k.tap(k.by_id("consent-box"))
    k.shot("3-patient")
    axe_check(k, "patient")
    k.tap(k.by_id("patient-done"))
    # The echo, large, before any capture.
    k.until("confirmation", lambda: k.by_id("confirm-overlay").is_displayed())
    assert k.by_id("confirm-text").text == "¿Es la paciente MAMANI QUISPE, Rosa, 54 años?", k.by_id("confirm-text").text
    assert k.by_id("confirm-id").text == "40123456"
    size = d.execute_script("return parseFloat(getComputedStyle(document.getElementById('confirm-text')).fontSize)")
    assert size >= 28, f"the confirmation is not large: {size}px"
    k.shot("4-confirm")
    k.tap(k.by_id("confirm-yes"))
    k.until("patient on the form", lambda: "MAMANI QUISPE, Rosa" in k.by_id("patient-field").text)

    # Body site on the body map: the back of the left arm.
    k.tap(k.by_id("site-field"))
    k.until("body map", lambda: k.by_id("sites-overlay").is_displayed())
    small = d.execute_script("""return [...document.querySelectorAll('#body-map button')]
        .filter(b => b.getBoundingClientRect().width < 48 || b.getBoundingClientRect().height < 48
                  || b.getBoundingClientRect().bottom > window.innerHeight + 0.5).map(b => b.dataset.site + '/' + b.dataset.aspect)""")
    assert not small, f"body map targets under 48 px or cut off: {small}"
    k.shot("5-body-map")
    axe_check(k, "body-map")
    k.tap(d.find_element(By.CSS_SELECTOR, '#body-map button[data-site="arm_left"][data-aspect="back"]'))
    k.until("site chosen", lambda: "Brazo izq. (espalda)" in k.by_id("site-field").text)

    # History: how long, yes/no answers, treatment, a note.
    k.tap(k.by_id("history-btn"))
    k.until("history sheet", lambda: k.by_id("history-overlay").is_displayed())
    k.by_id("duration").send_keys("3 meses")
    k.by_id("treatment").send_keys("Ninguno")
    for q, v in (("itching", "true"), ("bleeding", "false"), ("changed", "true")):
        k.tap(d.find_element(By.CSS_SELECTOR, f'.yesno[data-q="{q}"] button[data-value="{v}"]'))
    k.by_id("note").send_keys("Lesión pigmentada, 8 mm")
    k.shot("6-history")
    axe_check(k, "history")
    k.tap(k.by_id("history-done"))
    k.until("history filled", lambda: "✓" in k.by_id("history-btn").text)
    k.tap(k.by_id("urgent-toggle"))
    assert "on" in k.by_id("urgent-toggle").get_attribute("class")
    cut = d.execute_script("""return [...document.querySelectorAll('#capture-form button')]
        .filter(e => e.getBoundingClientRect().bottom > window.innerHeight + 0.5 || e.scrollWidth > e.clientWidth + 1)
        .map(e => e.id || e.dataset.role || e.textContent)""")
    assert not cut, f"cut off on the case form at this size: {cut}"
    k.shot("6b-case-form")

    # Three images: overview, close-up, dermoscopic; the type moves on by itself.
    assert role(k) == "overview", role(k)
    capture(k, 1)
    assert k.by_id("send-btn").text == "ENVIAR CASO (1)" and k.by_id("retake-btn").text == "Repetir", k.by_id("send-btn").text
    warnings = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#review-warnings li")]
    assert warnings, "no warnings or confirmation shown"
    k.shot("7-review")
    k.tap(k.by_id("another-image-btn"))
    k.until("capture screen", lambda: k.visible_screen() == "capture-screen")
    assert role(k) == "close_up", role(k)
    assert k.by_id("set-btn").text == "Caso: 1 · Enviar", k.by_id("set-btn").text
    capture(k, 2)
    k.tap(k.by_id("another-image-btn"))
    assert role(k) == "dermoscopic", role(k)
    capture(k, 3)
    first_ids = shots(k)
    # Retake image 2 alone: the others stay, the new one takes its place as a close-up.
    tap_nth(k, "#set-strip .shot .redo", 1)
    k.until("capture screen for the retake", lambda: k.visible_screen() == "capture-screen")
    assert role(k) == "close_up", role(k)
    capture(k, 3)
    after = shots(k)
    assert after[0] == first_ids[0] and after[2] == first_ids[2] and after[1] != first_ids[1], (first_ids, after)
    # A fourth image, then dropped: the three stay.
    k.tap(k.by_id("another-image-btn"))
    capture(k, 4)
    tap_nth(k, "#set-strip .shot .drop", 3)
    k.until("three images again", lambda: len(shots(k)) == 3)
    assert shots(k) == after, shots(k)
    tap_nth(k, "#set-strip .shot .thumb", 0)
    k.until("first image shown", lambda: k.by_id("review-meta").text.startswith("1/3 · Panorámica"))
    k.shot("8-case-set")
    axe_check(k, "review")

    # Send the case: three items in the queue, each received by the hub.
    k.tap(k.by_id("send-btn"))
    k.until("queue screen", lambda: k.visible_screen() == "queue-screen")
    k.until("three queue items", lambda: len(d.find_elements(By.CSS_SELECTOR, "#queue-list .item")) == 3)
    assert "3 imágenes" in k.by_id("toast").text, k.by_id("toast").text
    k.until("the case's patient and priority in the queue", lambda: all(
        "40123456" in e.text and "Urgente" in e.text for e in d.find_elements(By.CSS_SELECTOR, "#queue-list .item")))
    k.until("thumbnail", lambda: d.execute_script("return document.querySelector('#queue-list .item img').naturalWidth") > 0)
    bar = lambda: d.execute_script("return Math.min(...[...document.querySelectorAll('#queue-list .progress > div')].map(b => parseFloat(b.style.width) || 0))")
    k.shot("9-queue")
    # Sent, then received once the hub's receipt says filed (telestation-hub gives receipts).
    k.until("all received", lambda: all("Recibida" in e.text for e in d.find_elements(By.CSS_SELECTOR, "#queue-list .item .state")))
    assert bar() == 100
    k.shot("10-queue-done")
    axe_check(k, "queue")
    if HUB:
        hub_case(after)
    upload_limit(k, url)
    # The form is ready for the next patient.
    k.tap(k.by_id("another-btn"))
    k.until("capture screen", lambda: k.visible_screen() == "capture-screen")
    assert "Toque para registrar" in k.by_id("patient-field").text, k.by_id("patient-field").text

    replies(k, url)

    # The same patient again later: picked from the recent cases, name, sex and age with it.
    k.tap(k.by_id("tab-capture"))
    k.tap(k.by_id("patient-field"))
    k.tap(k.by_id("case-field"))
    k.until("keypad", lambda: k.by_id("keypad-overlay").is_displayed())
    k.until("recent case offered", lambda: d.find_elements(By.CSS_SELECTOR, '#recent-cases button[data-recent="40123456"]'))
    k.tap(d.find_element(By.CSS_SELECTOR, '#recent-cases button[data-recent="40123456"]'))
    assert k.by_id("keypad-value").text == "40123456", k.by_id("keypad-value").text
    cut = d.execute_script("""return [...document.querySelectorAll('#keypad-overlay button')]
        .filter(e => e.getBoundingClientRect().bottom > window.innerHeight + 0.5).map(e => e.textContent)""")
    assert not cut, f"keypad keys cut off below the screen with the recent cases shown: {cut}"
    k.shot("11-recent-cases")
    k.tap(k.by_id("keypad-done"))
    k.until("keypad closed", lambda: not k.by_id("keypad-overlay").is_displayed())
    assert k.by_id("surnames").get_attribute("value") == "MAMANI QUISPE" and k.by_id("given-names").get_attribute("value") == "Rosa"
    assert k.by_id("age-field").text.endswith("54") and "chosen" in k.by_id("sex-F").get_attribute("class")


def type_keys(k, text):
    for key in text:
        k.tap(k.d.find_element(By.CSS_SELECTOR, f'#keypad button[data-key="{key}"]'))


def fill_patient(k, surnames, given, sex, age, consent=True):
    """On the patient sheet: names (the panel's keyboard), sex, age on the keypad, consent."""
    k.by_id("surnames").clear(); k.by_id("surnames").send_keys(surnames)
    k.by_id("given-names").clear(); k.by_id("given-names").send_keys(given)
    k.tap(k.by_id(f"sex-{sex}"))
    k.tap(k.by_id("age-field"))
    k.until("age keypad", lambda: k.by_id("keypad-overlay").is_displayed())
    letters = k.d.execute_script("return [...document.querySelectorAll('#keypad .letter')].filter(b => getComputedStyle(b).visibility !== 'hidden').length")
    assert letters == 0, "letters offered for the age"
    type_keys(k, age)
    k.tap(k.by_id("keypad-done"))
    k.until("age keypad closed", lambda: not k.by_id("keypad-overlay").is_displayed())
    if consent:
        k.tap(k.by_id("consent-box"))


def enter_patient(k, case_id, surnames, given, sex, age):
    """Registers and confirms a patient from the capture screen."""
    k.tap(k.by_id("patient-field"))
    k.until("patient sheet", lambda: k.by_id("patient-overlay").is_displayed())
    k.tap(k.by_id("case-field"))
    type_keys(k, case_id)
    k.tap(k.by_id("keypad-done"))
    k.until("keypad closed", lambda: not k.by_id("keypad-overlay").is_displayed())
    fill_patient(k, surnames, given, sex, age)
    k.tap(k.by_id("patient-done"))
    k.until("confirmation", lambda: k.by_id("confirm-overlay").is_displayed())
    k.tap(k.by_id("confirm-yes"))
    k.until("patient confirmed", lambda: surnames.upper() in k.by_id("patient-field").text)


def role(k):
    return k.d.execute_script("const b = document.querySelector('#roles button.chosen'); return b && b.dataset.role")


def shots(k):
    # Read in one script: the strip is redrawn whenever the review changes.
    return k.d.execute_script("return [...document.querySelectorAll('#set-strip .shot')].map(s => s.dataset.id)")


def tap_nth(k, css, n):
    """Taps the n-th match of css, looking again if the list was redrawn meanwhile."""
    def attempt():
        k.tap(k.d.find_elements(By.CSS_SELECTOR, css)[n])
        return True
    k.until(f"tap {css} #{n}", attempt)


def capture(k, count):
    """CAPTURAR from the capture screen; the review shows the set with `count` images."""
    k.tap(k.by_id("capture-btn"))
    k.until("review screen", lambda: k.visible_screen() == "review-screen")
    k.until("review image", lambda: k.d.execute_script("return document.getElementById('review-image').naturalWidth") > 0)
    k.until(f"{count} images in the set", lambda: len(shots(k)) == count)


def hub_case(ids):
    """At the hub: one case, its three images in order with their roles, the
    patient, the history and the consent; the dropped and retaken images are not there."""
    with urllib.request.urlopen(f"{HUB[0]}/cases?station={HUB[1]}", timeout=30) as r:
        cases = json.load(r)["cases"]
    mine = [c for c in cases if c["case"] == "40123456"]
    assert len(mine) == 1, json.dumps(cases, indent=1)
    c = mine[0]
    assert c["complete"] and c["images_expected"] == 3 and len(c["images"]) == 3, json.dumps(c, indent=1)
    assert [i["index"] for i in c["images"]] == [1, 2, 3], c["images"]
    assert [i["role"] for i in c["images"]] == ["overview", "close_up", "dermoscopic"], c["images"]
    assert all(i["site"] == "arm_left" and i["aspect"] == "back" for i in c["images"]), c["images"]
    assert c["patient_name"] == "MAMANI QUISPE^Rosa" and c["patient_sex"] == "F" and c["patient_age"] == "054Y", c
    assert c["history"] == {"duration": "3 meses", "itching": True, "bleeding": False, "changed": True, "treatment": "Ninguno"}, c["history"]
    assert c["consent"].startswith("El paciente (o su apoderado) acepta"), c["consent"]
    assert c["note"] == "Lesión pigmentada, 8 mm" and c["priority"] == "urgent", c
    print(f"hub: case {c['case_uid']} with {len(c['images'])} images, {[i['role'] for i in c['images']]}")


def axe_check(k, name):
    """axe-core's WCAG 2 A and AA rules (colour contrast among them) run
    inside the page as it is on screen; any serious or critical violation
    fails, and the report is kept beside the screenshots."""
    import axe_selenium_python
    source = os.path.join(os.path.dirname(axe_selenium_python.__file__), "node_modules", "axe-core", "axe.min.js")
    with open(source) as f:
        k.d.execute_script(f.read())
    k.d.set_script_timeout(120)
    result = k.d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}}, (err, r) => done(err ? {error: String(err)} : r));""")
    assert "error" not in result, result
    with open(os.path.join(k.artifacts, f"axe-{name}.json"), "w") as f:
        json.dump({"violations": result["violations"], "passes": [p["id"] for p in result["passes"]]}, f, indent=1)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
           if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe-core on the {name} screen: {bad}"
    assert "color-contrast" in [p["id"] for p in result["passes"]], "axe-core did not check colour contrast"
    print(f"axe-core: {name} screen, {len(result['passes'])} rules passed, "
          f"{len(result['violations'])} minor/moderate findings")


def post_reply(body):
    """What the dermatologist's side does: POST /replies at the hub."""
    req = urllib.request.Request(HUB[0] + "/replies", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 201, r.status
        return json.load(r)


def replies(k, url):
    """The hub's answers about the case reach the kiosk's Respuestas tab,
    unread until tapped."""
    d = k.d
    assert k.by_id("replies-count").text == "", "unread replies before any was posted"
    if HUB is None:
        return
    post_reply({"station": HUB[1], "case": "40123456", "kind": "retake", "image": 2, "text": "La imagen 2 está desenfocada."})
    post_reply({"station": HUB[1], "case": "40123456", "kind": "note",
                "text": "Nevus displásico probable. Control en 3 meses; derivar si cambia de tamaño."})
    k.tap(k.by_id("tab-replies"))
    k.until("replies screen", lambda: k.visible_screen() == "replies-screen")
    k.until("two replies", lambda: len(d.find_elements(By.CSS_SELECTOR, "#replies-list .reply")) == 2)
    k.until("unread badge", lambda: k.by_id("replies-count").text == "2")
    (first, first_class), (second, _) = d.execute_script(
        "return [...document.querySelectorAll('#replies-list .reply')].map(r => [r.innerText, r.className])")
    # Newest first: the note, then the retake of image 2.
    assert "Nota del especialista" in first and "Control en 3 meses" in first and "40123456" in first, first
    assert "Repetir la imagen 2" in second and "desenfocada" in second, second
    assert "unread" in first_class
    k.shot("7-replies")
    axe_check(k, "replies")
    tap_nth(k, "#replies-list .reply", 0)
    k.until("badge counts one unread", lambda: k.by_id("replies-count").text == "1")
    k.until("the tapped reply is read", lambda: "unread" not in d.find_elements(By.CSS_SELECTOR, "#replies-list .reply")[0].get_attribute("class"))
    # The station keeps them, read or not: the control API says the same.
    kept = api(url, "/api/v1/replies")
    assert kept["unread"] == 1 and [r["read"] for r in kept["replies"]] == [True, False], kept


def api(url, path):
    """The control API as a script sees it, independent of the page."""
    with urllib.request.urlopen(url.rstrip("/") + path, timeout=30) as r:
        return json.load(r)


def controls(url):
    return {c["name"]: c for c in api(url, "/api/v1/camera/controls")}


PREVIEW_LUMA = """const i = document.getElementById('preview'); const c = document.createElement('canvas');
    c.width = i.naturalWidth; c.height = i.naturalHeight; const g = c.getContext('2d'); g.drawImage(i, 0, 0);
    const p = g.getImageData(0, 0, c.width, c.height).data; let s = 0;
    for (let j = 0; j < p.length; j += 4) s += 0.299 * p[j] + 0.587 * p[j + 1] + 0.114 * p[j + 2];
    return s / (p.length / 4);"""


def camera_settings(k, url):
    """Camera controls beside the live preview: brightness steps change the
    picture, exposure goes manual and back, mains frequency is chosen."""
    d = k.d
    css = lambda sel: d.find_element(By.CSS_SELECTOR, sel)
    k.tap(k.by_id("camera-btn"))
    k.until("camera panel", lambda: k.by_id("camera-panel").is_displayed() and not k.by_id("capture-form").is_displayed())
    k.until("control rows", lambda: len(d.find_elements(By.CSS_SELECTOR, "#camera-controls .crow")) == 5)
    rows = [r.get_attribute("data-row") for r in d.find_elements(By.CSS_SELECTOR, "#camera-controls .crow")]
    assert rows == ["brightness", "exposure", "focus", "white_balance", "power_line"], rows
    assert css('.crow[data-row="brightness"] .clabel').text.startswith("Brillo"), css('.crow[data-row="brightness"]').text
    before = d.execute_script(PREVIEW_LUMA)

    def step(row, button, name, value):
        k.tap(css(f'.crow[data-row="{row}"] button.{button}'))
        k.until(f"{name} = {value}", lambda: controls(url)[name]["value"] == value)
        k.until(f"{name} shown", lambda: css(f'.crow[data-row="{row}"] .cval').text == str(value))

    # 16 taps span the range: brightness 0...255 moves by 16.
    for n in range(1, 4):
        step("brightness", "plus", "brightness", 128 + 16 * n)
    k.until("a brighter preview", lambda: d.execute_script(PREVIEW_LUMA) > before + 15)

    # Exposure time cannot be stepped while auto exposure is on; "Auto" turns it off.
    k.until("exposure steppers off while auto", lambda: not css('.crow[data-row="exposure"] button.minus').is_enabled())
    k.tap(css('.crow[data-row="exposure"] button.auto'))
    k.until("manual exposure", lambda: controls(url)["auto_exposure"]["value"] == 1)
    k.until("exposure steppers", lambda: css('.crow[data-row="exposure"] button.minus').is_enabled())
    # Peru's mains are 60 Hz.
    k.tap(css('.crow[data-row="power_line"] button[data-value="2"]'))
    k.until("60 Hz", lambda: controls(url)["power_line_frequency"]["value"] == 2)
    k.until("60 Hz chosen", lambda: "on" in css('.crow[data-row="power_line"] button[data-value="2"]').get_attribute("class"))
    k.shot("camera")

    # Back to automatic exposure and neutral brightness for the capture below.
    k.tap(css('.crow[data-row="exposure"] button.auto'))
    k.until("auto exposure", lambda: controls(url)["auto_exposure"]["value"] == 3)
    k.until("exposure steppers off", lambda: not css('.crow[data-row="exposure"] button.minus').is_enabled())
    for n in range(2, -1, -1):
        step("brightness", "minus", "brightness", 128 + 16 * n)
    k.tap(k.by_id("camera-done"))
    k.until("form again", lambda: k.by_id("capture-form").is_displayed() and not k.by_id("camera-panel").is_displayed())


def upload_limit(k, url):
    """The live-consultation limit: presets on a sheet, applied to the uplink."""
    d = k.d
    # The station's configured cap (uplink.max_rate = 8KiB/s) is what the button shows.
    k.until("limit button", lambda: "8.2 KB/s" in k.by_id("limit-btn").text)
    k.tap(k.by_id("limit-btn"))
    k.until("limit sheet", lambda: k.by_id("limit-overlay").is_displayed())
    assert "Consulta en vivo: limitar envío" in k.by_id("limit-overlay").text, k.by_id("limit-overlay").text
    k.shot("limit")
    k.tap(d.find_element(By.CSS_SELECTOR, '#limit-grid button[data-rate="32000"]'))
    k.until("limit applied", lambda: api(url, "/api/v1/link")["limit_bytes_per_second"] == 32000)
    k.until("limit shown", lambda: k.by_id("limit-btn").text == "Límite: 32.0 KB/s")
    assert not k.by_id("limit-overlay").is_displayed()
    k.tap(k.by_id("limit-btn"))
    k.tap(d.find_element(By.CSS_SELECTOR, '#limit-grid button[data-rate="0"]'))
    k.until("no limit", lambda: api(url, "/api/v1/link")["limit_bytes_per_second"] == 0)
    k.until("no limit shown", lambda: k.by_id("limit-btn").text == "Límite: Sin límite")


def run_problems(k, url):
    """Health problems are shown, in Spanish, never as a silent stall."""
    d = k.d
    d.get(url)
    k.until("problem banner", lambda: k.by_id("problems").is_displayed())
    text = k.by_id("problems").text
    for expected in ["Disco casi lleno", "rechazó la clave", "Cámara no disponible"]:
        assert expected in text, text
    k.until("preview says the camera is missing", lambda: "Cámara no disponible" in k.by_id("preview-msg").text)
    # (On an 800-px panel with a USB stick in, the link shows as its dot; the banner above says it in words.)
    k.until("link indicator", lambda: "rechazó" in k.by_id("link-text").get_attribute("textContent"))
    # Capturing with no camera fails with a message, not a hang.
    enter_patient(k, "45871236", "Condori Huamán", "Juan", "M", "7")
    k.tap(k.by_id("site-field"))
    k.tap(d.find_element(By.CSS_SELECTOR, '#body-map button[data-site="face"][data-aspect="front"]'))
    k.tap(k.by_id("capture-btn"))
    k.until("camera error", lambda: "cámara no responde" in k.by_id("form-error").text)
    # A USB stick is mounted: the header offers it, and everything still fits.
    k.until("USB button", lambda: k.by_id("stick-btn").is_displayed() and "USB" in k.by_id("stick-btn").text)
    overflow = d.execute_script("""return [...document.querySelectorAll('header button, header #link')]
        .filter(e => e.offsetParent !== null && (e.getBoundingClientRect().right > window.innerWidth + 0.5 || e.getBoundingClientRect().bottom > 80))
        .map(e => e.id || e.textContent)""")
    cut = d.execute_script("""return [...document.querySelectorAll('#capture-screen button')]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().bottom > window.innerHeight + 0.5)
        .map(e => e.id || e.textContent)""")
    if overflow or cut:
        k.shot("failure")
    assert not overflow, f"header cut off with the USB button at this size: {overflow}"
    assert not cut, f"capture screen cut off below the problem banner at this size: {cut}"
    k.shot("problems")
    axe_check(k, "problems")
    k.tap(k.by_id("stick-btn"))
    k.until("USB answer", lambda: "USB" in k.by_id("toast").text)


if __name__ == "__main__":
    main()
