"use strict";
const T = {{STRINGS}};
const SITES = {{SITES}};
const $ = (id) => document.getElementById(id);
/* The case on screen: the patient (confirmed by staff before any capture),
   the history, and the set of images under review, in order. */
const ROLES = ["overview", "close_up", "dermoscopic"];
const state = {
  caseId: "", patient: null, confirmed: false, consent: false, history: {}, site: "", aspect: "front", role: "overview",
  urgent: false, set: [], current: null, retakeAt: null, fresh: null, link: null, previewRetry: null, stick: null,
  stickReceiptsShown: null, keypadTarget: "case", age: "", sex: "",
};

function t(key) { return T[key] || key; }
function fill(key, n) { return t(key).replace("{n}", String(n)); }
document.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
$("tab-capture").textContent = t("tab_capture");
$("camera-btn").textContent = t("camera");
$("capture-btn").textContent = t("capture");
$("note").placeholder = t("note");
$("surnames").placeholder = t("surnames");
$("given-names").placeholder = t("given_names");
$("duration").placeholder = t("duration");
$("treatment").placeholder = t("treatment");

function show(id) {
  document.querySelectorAll(".screen").forEach(s => s.classList.toggle("show", s.id === id));
  document.querySelectorAll(".tab").forEach(b => b.classList.toggle("active", b.dataset.screen === id || (id === "review-screen" && b.id === "tab-capture")));
  if (id === "queue-screen") refreshQueue();
  if (id === "replies-screen") refreshReplies(true);
}
/* Leaving the review by a tab keeps the images of the case: they wait in the set. */
document.querySelectorAll(".tab").forEach(b => b.addEventListener("click", () => {
  showCamera(false);
  show(b.dataset.screen);
}));

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  if (r.status === 204) return null;
  const data = await r.json().catch(() => null);
  if (!r.ok) { const e = new Error((data && data.error && data.error.message) || r.statusText); e.code = data && data.error && data.error.code; throw e; }
  return data;
}
function errorText(e) {
  if (e.code === "dni_check_mismatch") return t("err_dni_check");
  if (e.code === "invalid_case_id") return t("err_invalid_case_id");
  if (e.code === "camera_missing") return t("err_camera_missing");
  return t("err_generic") + " " + e.message;
}

/* Live preview: MJPEG in an <img>; on a broken stream retry, and say why nothing shows. */
function startPreview() {
  const img = $("preview");
  $("preview-msg").textContent = t("preview_waiting");
  img.onload = () => { $("preview-msg").textContent = ""; };
  img.onerror = () => {
    $("preview-msg").textContent = t("preview_missing");
    clearTimeout(state.previewRetry);
    state.previewRetry = setTimeout(startPreview, 3000);
  };
  img.src = "/api/v1/preview.mjpeg?t=" + Date.now();
}

/* The patient sheet: DNI or historia clínica on the keypad (with the DNI's
   check character, a letter A–K or a digit), names as on the card, sex, age,
   and the consent read to the patient. */
const KEYS = ["1","2","3","4","5","6","7","8","9","0","-","⌫","A","B","C","D","E","F","G","H","I","J","K"];
function patientName(p) { return p.surnames + ", " + p.given_names; }
function caseBody(extra) {
  const h = state.history; const history = {};
  ["duration", "treatment"].forEach(k => { if (h[k]) history[k] = h[k]; });
  ["itching", "bleeding", "changed"].forEach(k => { if (h[k] === true || h[k] === false) history[k] = h[k]; });
  const body = { case_id: state.caseId, note: $("note").value, priority: state.urgent ? "urgent" : "routine" };
  if (state.patient) body.patient = state.patient;
  if (Object.keys(history).length) body.history = history;
  if (state.consent) body.consent = t("consent_text");
  return Object.assign(body, extra || {});
}
function renderPatient() {
  const f = $("patient-field");
  const p = state.confirmed ? state.patient : null;
  f.querySelector("span").textContent = p ? state.caseId + " · " + patientName(p) + " · " + p.age : t("patient_placeholder");
  f.classList.toggle("empty", !p);
  const c = $("case-field");
  c.querySelector("span").textContent = state.caseId || t("case_placeholder");
  c.classList.toggle("empty", !state.caseId);
  const a = $("age-field");
  a.querySelector("span").textContent = state.age || "—";
  a.classList.toggle("empty", !state.age);
  document.querySelectorAll("button.sex").forEach(b => b.classList.toggle("chosen", b.dataset.sex === state.sex));
  $("consent-box").checked = state.consent;
  $("keypad-value").textContent = (state.keypadTarget === "age" ? state.age : state.caseId) || "\u00a0";
}
function openPatient() {
  $("patient-error").textContent = "";
  $("patient-field").classList.remove("invalid");
  renderPatient();
  $("patient-overlay").classList.add("show");
}
$("patient-field").addEventListener("click", openPatient);
document.querySelectorAll("button.sex").forEach(b => b.addEventListener("click", () => { state.sex = b.dataset.sex; renderPatient(); }));
$("consent-box").addEventListener("change", () => { state.consent = $("consent-box").checked; });
$("patient-cancel").addEventListener("click", () => $("patient-overlay").classList.remove("show"));
/* Any change to who the patient is needs a new confirmation before the next capture. */
["surnames", "given-names"].forEach(id => $(id).addEventListener("input", () => { state.confirmed = false; }));

$("patient-done").addEventListener("click", async () => {
  const err = $("patient-error"); err.textContent = "";
  const surnames = $("surnames").value.trim(), given = $("given-names").value.trim();
  const age = Number(state.age);
  if (!state.caseId) { err.textContent = t("err_invalid_case_id"); $("case-field").classList.add("invalid"); return; }
  if (!surnames || !given) { err.textContent = t("err_patient_names"); return; }
  if (!state.sex) { err.textContent = t("err_patient_sex"); return; }
  if (state.age === "" || !(age >= 0 && age <= 130)) { err.textContent = t("err_patient_age"); return; }
  if (!state.consent) { err.textContent = t("err_consent"); return; }
  try {
    const checked = await api("POST", "/api/v1/case/check", { case_id: state.caseId, patient: { surnames, given_names: given, sex: state.sex, age } });
    state.caseId = checked.case_id; state.patient = checked.patient; state.confirmed = false;
    $("patient-overlay").classList.remove("show");
    askConfirm();
  } catch (e) {
    err.textContent = errorText(e);
    if (e.code === "invalid_case_id" || e.code === "dni_check_mismatch") $("case-field").classList.add("invalid");
  }
});
/* The echo, large, before anything is captured: the right person, or back to correct it. */
function askConfirm() {
  const p = state.patient;
  $("confirm-text").textContent = t("confirm_" + p.sex).replace("{name}", patientName(p)).replace("{age}", String(p.age));
  $("confirm-id").textContent = state.caseId;
  $("confirm-overlay").classList.add("show");
}
$("confirm-yes").addEventListener("click", () => {
  state.confirmed = true;
  $("confirm-overlay").classList.remove("show");
  $("form-error").textContent = "";
  renderPatient(); sendOpenCase();
});
$("confirm-fix").addEventListener("click", () => { $("confirm-overlay").classList.remove("show"); openPatient(); });

function buildKeypad() {
  const pad = $("keypad");
  KEYS.forEach(k => {
    const b = document.createElement("button"); b.textContent = k; b.dataset.key = k;
    if (/[A-K-]/.test(k)) b.classList.add("letter");
    b.addEventListener("click", () => {
      $("keypad-error").textContent = "";
      const age = state.keypadTarget === "age";
      if (age && !/[0-9⌫]/.test(k)) return;
      let v = age ? state.age : state.caseId;
      if (k === "⌫") v = v.slice(0, -1);
      else if (v.length < (age ? 3 : 20)) v += k;
      if (age) state.age = v; else { state.caseId = v; state.confirmed = false; }
      renderPatient();
    });
    pad.appendChild(b);
  });
  const clear = document.createElement("button"); clear.className = "wide"; clear.id = "keypad-clear"; clear.textContent = t("keypad_clear");
  clear.addEventListener("click", () => { if (state.keypadTarget === "age") state.age = ""; else { state.caseId = ""; state.confirmed = false; } renderPatient(); });
  const done = document.createElement("button"); done.className = "wide done"; done.id = "keypad-done"; done.textContent = t("keypad_done");
  done.addEventListener("click", keypadDone);
  pad.append(clear, done);
}
/* A mistyped DNI check character is refused here, before the patient's name is written. */
async function keypadDone() {
  if (state.keypadTarget === "case" && state.caseId) {
    try { state.caseId = (await api("POST", "/api/v1/case/check", { case_id: state.caseId })).case_id; }
    catch (e) { $("keypad-error").textContent = errorText(e); return; }
  }
  $("keypad-overlay").classList.remove("show");
  $("case-field").classList.remove("invalid");
  renderPatient();
}
function openKeypad(target) {
  state.keypadTarget = target;
  $("keypad-overlay").classList.toggle("digits", target === "age");
  $("keypad-error").textContent = "";
  renderPatient();
  $("keypad-overlay").classList.add("show");
  if (target === "case") showRecentCases(); else $("recent-cases").textContent = "";
}
$("case-field").addEventListener("click", () => { $("case-field").classList.remove("invalid"); openKeypad("case"); });
$("age-field").addEventListener("click", () => openKeypad("age"));
/* The patients of the last day's cases on this station, to pick again instead of typing a DNI and a name twice. */
async function showRecentCases() {
  const box = $("recent-cases");
  box.textContent = "";
  let snap;
  try { snap = await api("GET", "/api/v1/queue"); } catch (e) { return; }
  const seen = new Set();
  const cases = (snap.cases || []).filter(c => c.case_id && !seen.has(c.case_id) && seen.add(c.case_id)).slice(0, 4);
  if (!cases.length) return;
  const label = document.createElement("span"); label.textContent = t("recent_cases"); box.appendChild(label);
  cases.forEach(c => {
    const b = document.createElement("button"); b.dataset.recent = c.case_id;
    b.textContent = c.case_id + (c.patient ? " · " + c.patient.surnames.split(" ")[0] : "");
    b.addEventListener("click", () => {
      state.caseId = c.case_id; state.confirmed = false;
      if (c.patient) {
        $("surnames").value = c.patient.surnames; $("given-names").value = c.patient.given_names;
        state.sex = c.patient.sex; state.age = String(c.patient.age);
      }
      $("keypad-error").textContent = ""; renderPatient();
    });
    box.appendChild(b);
  });
}

/* Image type: overview, close-up, dermoscopic. Each capture moves to the next, as a dermatology case is usually taken. */
function renderRoles() {
  document.querySelectorAll("#roles button").forEach(b => {
    b.classList.toggle("chosen", b.dataset.role === state.role);
    b.setAttribute("aria-pressed", String(b.dataset.role === state.role));
  });
}
function buildRoles() {
  ROLES.forEach(r => {
    const b = document.createElement("button"); b.textContent = t("role_" + r); b.dataset.role = r;
    b.addEventListener("click", () => { state.role = r; renderRoles(); sendOpenCase(); });
    $("roles").appendChild(b);
  });
}

/* Body map: the front and the back, each region a large target with its
   side written on it (the front is seen facing the patient: their right on the left). */
const MAP = {
  front: [[null, "face", "face", null], [null, "neck", "neck", null], ["arm_right", "chest", "chest", "arm_left"],
          ["hand_right", "abdomen", "abdomen", "hand_left"], [null, "genital", "genital", null],
          [null, "leg_right", "leg_left", null], [null, "foot_right", "foot_left", null]],
  back: [[null, "scalp", "scalp", null], [null, "neck", "neck", null], ["arm_left", "back", "back", "arm_right"],
         ["hand_left", "back", "back", "hand_right"], [null, null, null, null],
         [null, "leg_left", "leg_right", null], [null, "foot_left", "foot_right", null]],
};
function siteLabel(site, aspect) { return t("site_" + site) + (aspect === "back" && site !== "back" && site !== "scalp" ? " (" + t("back").toLowerCase() + ")" : ""); }
function renderSite() {
  const f = $("site-field");
  f.querySelector("span").textContent = state.site ? siteLabel(state.site, state.aspect) : t("site_choose");
  f.classList.toggle("empty", !state.site);
  document.querySelectorAll("#body-map button").forEach(b => b.classList.toggle("chosen", b.dataset.site === state.site && b.dataset.aspect === state.aspect));
}
function buildSites() {
  const map = $("body-map");
  const pick = (site, aspect) => { state.site = site; state.aspect = aspect; $("form-error").textContent = ""; renderSite(); $("sites-overlay").classList.remove("show"); sendOpenCase(); };
  ["front", "back"].forEach(aspect => {
    const view = document.createElement("div"); view.className = "view " + aspect;
    const h = document.createElement("h3"); h.textContent = t(aspect); view.appendChild(h);
    const grid = document.createElement("div"); grid.className = "silhouette";
    const placed = new Set();
    MAP[aspect].forEach((row, r) => row.forEach((site, c) => {
      if (!site || placed.has(site)) return;
      placed.add(site);
      const rows = MAP[aspect].map(x => x.indexOf(site) >= 0).reduce((a, hit, i) => hit ? a.concat(i) : a, []);
      const cols = row.map((x, i) => x === site ? i : -1).filter(i => i >= 0);
      const b = document.createElement("button"); b.textContent = t("site_" + site); b.dataset.site = site; b.dataset.aspect = aspect;
      b.style.gridRow = (rows[0] + 1) + " / " + (rows[rows.length - 1] + 2);
      b.style.gridColumn = (cols[0] + 1) + " / " + (cols[cols.length - 1] + 2);
      b.setAttribute("aria-label", siteLabel(site, aspect) + " · " + t(aspect));
      b.addEventListener("click", () => pick(site, aspect));
      grid.appendChild(b);
    }));
    view.appendChild(grid); map.appendChild(view);
  });
  const more = document.createElement("div"); more.className = "view more";
  const h = document.createElement("h3"); h.textContent = t("other_sites"); more.appendChild(h);
  ["mouth", "eye", "other"].forEach(site => {
    const b = document.createElement("button"); b.textContent = t("site_" + site); b.dataset.site = site; b.dataset.aspect = "front";
    b.addEventListener("click", () => pick(site, "front"));
    more.appendChild(b);
  });
  map.appendChild(more);
}
$("site-field").addEventListener("click", () => $("sites-overlay").classList.add("show"));
/* A tap beside a sheet closes it, as on a phone. */
document.querySelectorAll(".overlay").forEach(o => o.addEventListener("click", (e) => { if (e.target === o && o.id !== "confirm-overlay") o.classList.remove("show"); }));

/* History: free text for how long and what was tried; yes / no / not asked for the rest. */
function buildHistory() {
  document.querySelectorAll(".yesno").forEach(box => {
    const q = box.dataset.q;
    const label = document.createElement("span"); label.textContent = t(q); label.id = "q-" + q; box.appendChild(label);
    box.setAttribute("role", "group"); box.setAttribute("aria-labelledby", "q-" + q);
    [true, false].forEach(v => {
      const b = document.createElement("button"); b.textContent = t(v ? "yes" : "no"); b.dataset.value = String(v);
      b.addEventListener("click", () => { state.history[q] = state.history[q] === v ? null : v; renderHistory(); });
      box.appendChild(b);
    });
  });
}
function renderHistory() {
  document.querySelectorAll(".yesno").forEach(box => box.querySelectorAll("button").forEach(b => {
    const on = String(state.history[box.dataset.q]) === b.dataset.value;
    b.classList.toggle("chosen", on); b.setAttribute("aria-pressed", String(on));
  }));
  const h = state.history;
  const filled = h.duration || h.treatment || $("note").value.trim() || ["itching", "bleeding", "changed"].some(k => h[k] === true || h[k] === false);
  $("history-btn").textContent = filled ? t("history_filled") : t("history");
  $("history-btn").classList.toggle("filled", !!filled);
}
$("history-btn").addEventListener("click", () => {
  $("duration").value = state.history.duration || ""; $("treatment").value = state.history.treatment || "";
  renderHistory(); $("history-overlay").classList.add("show");
});
$("history-done").addEventListener("click", () => {
  state.history.duration = $("duration").value.trim(); state.history.treatment = $("treatment").value.trim();
  $("history-overlay").classList.remove("show"); renderHistory(); sendOpenCase();
});

function renderUrgent() {
  const b = $("urgent-toggle");
  b.textContent = (state.urgent ? "● " : "○ ") + t("urgent");
  b.classList.toggle("on", state.urgent);
}
$("urgent-toggle").addEventListener("click", () => { state.urgent = !state.urgent; renderUrgent(); sendOpenCase(); });

/* The case on screen is where the camera's button, a foot switch or a GPIO
 * button file their photos (with the role and site chosen for the next
 * image); the station forgets it unless renewed. Only a confirmed patient opens it. */
async function sendOpenCase() {
  try {
    if (state.confirmed && state.site) await api("PUT", "/api/v1/case", caseBody({ site: state.site, aspect: state.aspect, role: state.role }));
    else await api("DELETE", "/api/v1/case");
  } catch (e) { /* an invalid case is reported when capturing */ }
}
setInterval(() => { if (state.confirmed && state.site) sendOpenCase(); }, 60000);

/* A press of a capture button: its photo joins the case's set, or the kiosk says what it needs. */
function showTrigger(ev) {
  if (state.lastTrigger === undefined) { state.lastTrigger = ev ? ev.sequence : 0; return; }
  if (!ev || ev.sequence <= state.lastTrigger) return;
  state.lastTrigger = ev.sequence;
  const err = $("form-error");
  if (ev.outcome === "needs_case") { show("capture-screen"); err.textContent = t("trigger_needs_case"); return; }
  if (ev.outcome === "failed") { err.textContent = t("trigger_failed") + " " + (ev.message || ""); return; }
  err.textContent = t("trigger_" + ev.trigger);
  if (ev.outcome === "captured" && ev.review && !state.set.some(i => i.id === ev.review.id)) addToSet(ev.review);
  else if (ev.outcome === "queued") { state.fresh = ev.queue_id; $("toast").textContent = t("trigger_" + ev.trigger) + " " + t("trigger_queued"); show("queue-screen"); }
}

/* Capture talks only to the station: it never waits for the network. */
$("capture-btn").addEventListener("click", async () => {
  const err = $("form-error"); err.textContent = "";
  if (!state.confirmed) { err.textContent = t("err_patient_needed"); $("patient-field").classList.add("invalid"); return; }
  if (!state.site) { err.textContent = t("err_site"); return; }
  const btn = $("capture-btn"); btn.disabled = true; btn.textContent = t("capturing");
  try {
    addToSet(await api("POST", "/api/v1/captures", caseBody({ site: state.site, aspect: state.aspect, role: state.role })));
  } catch (e) {
    err.textContent = errorText(e);
  } finally { btn.disabled = false; btn.textContent = t("capture"); }
});

/* The set: a new image takes the place of the one being retaken, or goes last;
   the next image's type moves on. */
function addToSet(item) {
  if (state.retakeAt !== null) { state.set.splice(Math.min(state.retakeAt, state.set.length), 0, item); state.retakeAt = null; }
  else state.set.push(item);
  const next = ROLES.indexOf(item.request.role || state.role) + 1;
  state.role = ROLES[Math.min(next, ROLES.length - 1)];
  renderRoles(); sendOpenCase();
  showReview(item);
}
function renderSetButton() {
  const b = $("set-btn"); b.hidden = state.set.length === 0;
  b.textContent = fill("set_button", state.set.length);
  $("send-btn").textContent = fill("send_case", state.set.length);
}
function renderStrip() {
  const strip = $("set-strip");
  strip.querySelectorAll(".shot").forEach(n => n.remove());
  state.set.forEach((it, i) => {
    const n = i + 1;
    const shot = document.createElement("div"); shot.className = "shot" + (state.current && state.current.id === it.id ? " current" : ""); shot.dataset.id = it.id;
    shot.setAttribute("role", "listitem");
    const view = document.createElement("button"); view.className = "thumb";
    const img = document.createElement("img"); img.alt = ""; img.src = "/api/v1/captures/" + encodeURIComponent(it.id) + "/preview";
    const cap = document.createElement("span"); cap.textContent = n + " · " + t("role_" + (it.request.role || "overview"));
    view.append(img, cap); view.setAttribute("aria-label", n + " · " + t("role_" + (it.request.role || "overview")) + " · " + siteLabel(it.request.site, it.request.aspect));
    view.addEventListener("click", () => showReview(it));
    const redo = document.createElement("button"); redo.className = "redo"; redo.textContent = "↻"; redo.setAttribute("aria-label", fill("retake_image", n));
    redo.addEventListener("click", () => retake(it));
    const drop = document.createElement("button"); drop.className = "drop"; drop.textContent = "✕"; drop.setAttribute("aria-label", fill("drop_image", n));
    drop.addEventListener("click", () => dropImage(it));
    shot.append(view, redo, drop);
    strip.appendChild(shot);
  });
}
function showReview(item) {
  state.current = item;
  const r = item.request;
  $("review-image").src = "/api/v1/captures/" + encodeURIComponent(item.id) + "/image";
  $("review-meta").textContent = (state.set.indexOf(item) + 1) + "/" + state.set.length + " · " + t("role_" + (r.role || "overview")) + " · " + siteLabel(r.site, r.aspect) + " · " + item.width + "×" + item.height;
  const list = $("review-warnings"); list.innerHTML = "";
  (item.warnings.length ? item.warnings : [null]).forEach(w => {
    const li = document.createElement("li");
    if (w) li.textContent = t("warn_" + w); else { li.textContent = t("review_ok"); li.className = "ok"; }
    list.appendChild(li);
  });
  renderSetButton(); renderStrip();
  show("review-screen");
}
async function dropImage(item) {
  const i = state.set.indexOf(item); if (i < 0) return;
  state.set.splice(i, 1);
  try { await api("POST", "/api/v1/captures/" + encodeURIComponent(item.id) + "/retake"); } catch (e) { /* gone already: nothing to keep */ }
  renderSetButton();
  if (!state.set.length) { state.current = null; show("capture-screen"); return; }
  showReview(state.set[Math.min(i, state.set.length - 1)]);
}
/* Retake one image: the others stay; the new one takes its place, with its type and site. */
async function retake(item) {
  const i = state.set.indexOf(item); if (i < 0) return;
  await dropImage(item);
  state.retakeAt = i;
  if (item.request.role) state.role = item.request.role;
  state.site = item.request.site; state.aspect = item.request.aspect || "front";
  renderRoles(); renderSite(); sendOpenCase();
  show("capture-screen");
}
$("retake-btn").addEventListener("click", () => { if (state.current) retake(state.current); });
$("another-image-btn").addEventListener("click", () => show("capture-screen"));
$("set-btn").addEventListener("click", () => { if (state.set.length) showReview(state.set[state.set.length - 1]); });
$("send-btn").addEventListener("click", async () => {
  if (!state.set.length) return;
  $("send-btn").disabled = true;
  try {
    const sent = await api("POST", "/api/v1/cases", { ids: state.set.map(i => i.id), case: caseBody() });
    state.fresh = sent.items.length ? sent.items[sent.items.length - 1].id : null;
    $("toast").textContent = fill("case_sent_toast", sent.items.length);
    newCase();
    show("queue-screen");
  } catch (e) { $("review-meta").textContent = errorText(e); }
  finally { $("send-btn").disabled = false; }
});
/* After a case is sent the screen is ready for the next patient. */
function newCase() {
  Object.assign(state, { caseId: "", patient: null, confirmed: false, consent: false, history: {}, site: "", aspect: "front",
                         role: "overview", urgent: false, set: [], current: null, retakeAt: null, age: "", sex: "" });
  ["surnames", "given-names", "note", "duration", "treatment"].forEach(id => { $(id).value = ""; });
  renderPatient(); renderSite(); renderRoles(); renderUrgent(); renderHistory(); renderSetButton(); sendOpenCase();
}
$("another-btn").addEventListener("click", () => { $("toast").textContent = ""; show("capture-screen"); });
$("pause-btn").addEventListener("click", async () => {
  const paused = state.link && state.link.paused;
  try { state.link = await api("POST", "/api/v1/uploads", { action: paused ? "resume" : "pause" }); renderLink(); } catch (e) { $("toast").textContent = errorText(e); }
});

/* Camera settings beside the live preview: big -/+ steps and on/off buttons, no sliders (gloves). */
const CAMERA_ROWS = [
  { key: "brightness", names: ["brightness"] },
  { key: "exposure", names: ["exposure_time_absolute", "exposure_absolute"], auto: ["auto_exposure"] },
  { key: "focus", names: ["focus_absolute"], auto: ["focus_automatic_continuous", "focus_auto"] },
  { key: "white_balance", names: ["white_balance_temperature"], auto: ["white_balance_automatic", "white_balance_temperature_auto"], unit: " K" },
  { key: "power_line", names: ["power_line_frequency"] },
];
function autoOn(c) { return c.name === "auto_exposure" ? c.value !== 1 : c.value !== 0; }
function autoValue(c, on) {
  if (c.name !== "auto_exposure") return on ? 1 : 0;
  if (!on) return 1;
  const other = c.menu.map(m => m.value).filter(v => v !== 1);
  return other.includes(3) ? 3 : (other.length ? other[0] : c.default);
}
function menuLabel(m) {
  const l = m.label.toLowerCase();
  if (l === "disabled") return t("pl_off");
  if (l === "auto") return t("camera_auto");
  return m.label;
}
function cameraError(e) {
  if (e.code === "conflict") return t("err_camera_auto");
  return errorText(e);
}
async function setControl(name, value) {
  $("camera-error").textContent = "";
  try { await api("PUT", "/api/v1/camera/controls/" + encodeURIComponent(name), { value: value }); }
  catch (e) { $("camera-error").textContent = cameraError(e); }
  await loadControls();
}
function controlButton(text, onClick, cls) {
  const b = document.createElement("button"); b.textContent = text; if (cls) b.className = cls;
  b.addEventListener("click", onClick); return b;
}
function renderControls(list) {
  const box = $("camera-controls"); box.innerHTML = "";
  const byName = {}; list.forEach(c => { byName[c.name] = c; });
  CAMERA_ROWS.forEach(row => {
    const c = row.names.map(n => byName[n]).find(Boolean);
    const auto = (row.auto || []).map(n => byName[n]).find(Boolean);
    if (!c && !auto) return;
    const el = document.createElement("div"); el.className = "crow"; el.dataset.row = row.key;
    const label = document.createElement("div"); label.className = "clabel"; label.textContent = t("ctl_" + row.key);
    const val = document.createElement("span"); val.className = "cval"; label.appendChild(val);
    el.appendChild(label);
    if (auto && !auto.read_only) {
      const on = autoOn(auto);
      const b = controlButton(t("camera_auto"), () => setControl(auto.name, autoValue(auto, !on)), "auto" + (on ? " on" : ""));
      b.dataset.control = auto.name; el.appendChild(b);
      if (on) val.textContent = t("camera_is_auto");
    }
    if (c && c.type === "menu") {
      c.menu.forEach(m => {
        const b = controlButton(menuLabel(m), () => setControl(c.name, m.value), "entry" + (m.value === c.value ? " on" : ""));
        b.dataset.value = String(m.value); b.disabled = c.read_only || c.inactive; el.appendChild(b);
      });
    } else if (c) {
      const step = Math.max(c.step || 1, Math.round((c.maximum - c.minimum) / 16 / (c.step || 1)) * (c.step || 1));
      const clamp = (v) => Math.min(c.maximum, Math.max(c.minimum, v));
      const minus = controlButton("−", () => setControl(c.name, clamp(c.value - step)), "minus");
      const plus = controlButton("+", () => setControl(c.name, clamp(c.value + step)), "plus");
      minus.disabled = plus.disabled = c.read_only || c.inactive;
      if (!c.inactive) val.textContent = String(c.value) + (row.unit || "");
      el.append(minus, plus);
    }
    box.appendChild(el);
  });
  if (!box.children.length) { const n = document.createElement("div"); n.className = "empty-note"; n.textContent = t("camera_none"); box.appendChild(n); }
}
async function loadControls() {
  try { renderControls(await api("GET", "/api/v1/camera/controls")); }
  catch (e) { $("camera-controls").innerHTML = ""; $("camera-error").textContent = errorText(e); }
}
function showCamera(open) {
  /* The case's images under review wait in the set meanwhile. */
  if (open) show("capture-screen");
  $("capture-screen").classList.toggle("camera", open);
  $("camera-btn").classList.toggle("active", open);
  if (open) { $("camera-error").textContent = ""; loadControls(); }
}
$("camera-btn").addEventListener("click", () => showCamera(!$("capture-screen").classList.contains("camera")));
$("camera-done").addEventListener("click", () => showCamera(false));

/* Upload limit for live consultations: a few presets, no typing. */
const LIMITS = [0, 64000, 32000, 16000, 8000];
function renderLimit() {
  const l = state.link; const limit = l ? l.limit_bytes_per_second : 0;
  $("limit-btn").textContent = t("limit") + ": " + (limit > 0 ? fmtBytes(limit) + "/s" : t("limit_none"));
  document.querySelectorAll("#limit-grid button").forEach(b => b.classList.toggle("chosen", Number(b.dataset.rate) === limit));
}
function buildLimits() {
  LIMITS.forEach(r => {
    const b = controlButton(r > 0 ? fmtBytes(r) + "/s" : t("limit_none"), async () => {
      try { state.link = await api("POST", "/api/v1/uploads", { action: "limit", rate: r }); renderLink(); }
      catch (e) { $("toast").textContent = errorText(e); }
      $("limit-overlay").classList.remove("show");
    });
    b.dataset.rate = String(r); $("limit-grid").appendChild(b);
  });
}
$("limit-btn").addEventListener("click", () => { renderLimit(); $("limit-overlay").classList.add("show"); });

function fmtBytes(b) { return b < 1e3 ? b + " B" : b < 1e6 ? (b / 1e3).toFixed(1) + " KB" : (b / 1e6).toFixed(1) + " MB"; }
function fmtEta(s) { if (s == null) return t("eta_unknown"); s = Math.round(s); return s < 60 ? s + " s" : s < 3600 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h"; }

function renderQueue(snap) {
  $("queue-count").textContent = snap.pending_count ? String(snap.pending_count) : "";
  const list = $("queue-list");
  if (!$("queue-screen").classList.contains("show")) return;
  if (!snap.items.length) { list.innerHTML = '<div class="empty-note"></div>'; list.firstChild.textContent = t("queue_empty"); return; }
  const seen = new Set();
  snap.items.forEach(it => {
    seen.add(it.id);
    let row = list.querySelector('[data-id="' + CSS.escape(it.id) + '"]');
    if (!row) {
      row = document.createElement("div"); row.className = "item"; row.dataset.id = it.id;
      row.innerHTML = '<img alt=""><div class="body"><div class="top"><span class="case"></span><span class="urgent"></span><span class="state"></span></div><div class="progress"><div></div></div></div>';
      row.querySelector("img").src = "/api/v1/queue/" + encodeURIComponent(it.id) + "/thumbnail";
      list.appendChild(row);
    }
    row.classList.toggle("fresh", it.id === state.fresh);
    const delivered = ["sent", "uploaded", "received"].includes(it.state);
    row.classList.toggle("uploaded", delivered);
    row.classList.toggle("received", it.state === "received");
    const kase = (snap.cases || []).find(c => c.case_id === it.case_id);
    const tally = kase && kase.images > 1 ? " (" + kase.received + "/" + kase.images + " " + t("cases_received") + ")" : "";
    row.querySelector(".case").textContent = it.case_id + " · " + t("site_" + it.site) + tally;
    const u = row.querySelector(".urgent"); u.textContent = it.priority === "urgent" ? t("urgent") : ""; u.style.display = it.priority === "urgent" ? "" : "none";
    const pct = it.bytes_total > 0 ? Math.min(100, Math.round(100 * it.bytes_sent / it.bytes_total)) : 0;
    let st = t("state_" + it.state) + " · " + pct + "%";
    if (!delivered) st += " · " + fmtBytes(it.bytes_total - it.bytes_sent) + " · " + t("eta") + " " + fmtEta(it.eta_seconds);
    row.querySelector(".state").textContent = st;
    row.querySelector(".progress > div").style.width = pct + "%";
  });
  list.querySelectorAll(".empty-note").forEach(n => n.remove());
  list.querySelectorAll(".item").forEach(r => { if (!seen.has(r.dataset.id)) r.remove(); });
  snap.items.forEach(it => list.appendChild(list.querySelector('[data-id="' + CSS.escape(it.id) + '"]')));
}
async function refreshQueue() { try { renderQueue(await api("GET", "/api/v1/queue")); } catch (e) { /* shown by the link indicator */ } }

function renderLink() {
  const l = state.link; if (!l) return;
  const el = $("link"); el.className = "";
  let text;
  if (l.hub === "not_configured") { text = t("link_disabled"); el.classList.add("disabled"); }
  else if (l.hub === "rejected_token") { text = t("link_rejected"); }
  else if (l.paused) { text = t("link_paused"); el.classList.add("paused"); }
  else if (l.online) { text = t("link_online") + (l.rate_bytes_per_second > 0 ? " · " + fmtBytes(l.rate_bytes_per_second) + "/s" : ""); el.classList.add("online"); }
  else { text = t("link_offline"); }
  $("link-text").textContent = text;
  $("pause-btn").textContent = l.paused ? t("resume") : t("pause");
  renderLimit();
}
async function refreshStatus() {
  try {
    const s = await api("GET", "/api/v1/status");
    state.link = s.link; renderLink();
    const p = [];
    if (s.health.queue_error) p.push(t("problem_queue"));
    if (s.health.disk_nearly_full) p.push(t("problem_disk"));
    if (s.link.hub === "rejected_token") p.push(t("problem_token"));
    const cameraDown = s.health.camera === "missing" || s.health.camera === "failed";
    if (cameraDown) p.push(t("problem_camera"));
    state.cameraDown = cameraDown;
    const msg = $("preview-msg");
    if (cameraDown) msg.textContent = t("preview_missing");
    else if (msg.textContent === t("preview_missing") && $("preview").naturalWidth > 0) msg.textContent = "";
    $("problems").textContent = p.join("  ·  "); $("problems").classList.toggle("show", p.length > 0);
    $("queue-count").textContent = s.pending_count ? String(s.pending_count) : "";
    if (s.triggers) showTrigger(s.triggers.last);
  } catch (e) {
    $("link-text").textContent = "—"; $("link").className = "";
  }
}

/* USB stick: the button appears while a stick is mounted; one tap copies every
   image still owed to the hub onto it. Receipts on a stick are read by the
   daemon as soon as it is plugged in. */
function renderStick(s) {
  const b = $("stick-btn");
  state.stick = s;
  b.hidden = !s.mount_point;
  if (!s.mount_point) return;
  b.disabled = s.exporting !== undefined && s.exporting !== null;
  /* Short on the button (the header of a 7-inch panel is full); the whole sentence for screen readers and on tap. */
  const full = b.disabled ? fill("stick_exporting", s.exporting) + "/" + s.owed_items
    : s.owed_items > 0 ? fill("stick_export", s.owed_items) : t("stick_nothing");
  b.textContent = b.disabled ? "USB " + s.exporting + "/" + s.owed_items : s.owed_items > 0 ? "USB · " + s.owed_items : "USB ✓";
  b.setAttribute("aria-label", full);
  b.title = full;
  b.classList.toggle("ready", !!s.can_export);
  const receipts = s.last_receipts;
  if (receipts && receipts.ok && receipts.items > 0 && state.stickReceiptsShown !== receipts.at) {
    state.stickReceiptsShown = receipts.at;
    $("toast").textContent = fill("stick_receipts", receipts.items);
  }
}
async function refreshStick() { try { renderStick(await api("GET", "/api/v1/stick")); } catch (e) { $("stick-btn").hidden = true; } }
$("stick-btn").addEventListener("click", async () => {
  const s = state.stick;
  show("queue-screen");
  if (!s || !s.can_export) { $("toast").textContent = s && s.owed_items === 0 ? t("stick_nothing") : t("stick_cannot") + (s && s.reason ? " (" + s.reason + ")" : ""); return; }
  $("toast").textContent = t("stick_wait");
  $("stick-btn").disabled = true;
  try {
    const op = await api("POST", "/api/v1/stick/export");
    $("toast").textContent = fill("stick_done", op.items);
  } catch (e) { $("toast").textContent = t("stick_failed") + " " + e.message; }
  refreshStick();
});

/* Respuestas: what the hub said about each case, newest first; the badge
   counts the unread ones, and a tap on a reply marks it read. */
function replyKind(r) {
  if (r.kind === "received") return t("reply_received");
  if (r.kind === "retake") return fill("reply_retake", r.image || "?");
  return t("reply_note");
}
function renderReplies(snap) {
  $("replies-count").textContent = snap.unread ? String(snap.unread) : "";
  /* Redrawn only when something changed: a tap must not land on a row being replaced. */
  const key = JSON.stringify(snap.replies);
  if (key === state.repliesShown) return;
  state.repliesShown = key;
  const list = $("replies-list");
  $("replies-empty").hidden = snap.replies.length > 0;
  list.textContent = "";
  snap.replies.forEach(r => {
    const b = document.createElement("button");
    b.className = "reply" + (r.read ? "" : " unread"); b.dataset.id = r.id;
    const top = document.createElement("div"); top.className = "top";
    const c = document.createElement("span"); c.className = "case"; c.textContent = t("reply_case") + " " + r.case_id;
    const k = document.createElement("span"); k.className = "kind"; k.textContent = replyKind(r);
    const w = document.createElement("span"); w.className = "when";
    w.textContent = new Date(r.at).toLocaleString(T.lang === "es" ? "es-PE" : "en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
    top.append(c, k, w);
    const text = document.createElement("div"); text.className = "text"; text.textContent = r.text;
    b.append(top, text);
    if (!r.read) b.addEventListener("click", async () => {
      try { renderReplies(await api("POST", "/api/v1/replies/" + r.id + "/read")); } catch (e) { /* shown again on the next refresh */ }
    });
    list.appendChild(b);
  });
}
async function refreshReplies(fromHub) { try { renderReplies(await api("GET", "/api/v1/replies" + (fromHub ? "?refresh=1" : ""))); } catch (e) { /* the link indicator says why */ } }

buildKeypad(); buildSites(); buildRoles(); buildHistory(); buildLimits(); renderLimit(); renderPatient(); renderSite(); renderRoles(); renderUrgent(); renderHistory(); renderSetButton();
/* After load: an endless MJPEG response must not keep the page "loading". */
if (document.readyState === "complete") startPreview(); else window.addEventListener("load", startPreview);
refreshStatus(); setInterval(refreshStatus, 2000);
refreshStick(); setInterval(refreshStick, 2000);
refreshReplies(false); setInterval(() => refreshReplies(false), 5000);
setInterval(() => { if ($("queue-screen").classList.contains("show")) refreshQueue(); }, 1000);
