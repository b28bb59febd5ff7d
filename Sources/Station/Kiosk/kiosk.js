"use strict";
const T = {{STRINGS}};
const SITES = {{SITES}};
const $ = (id) => document.getElementById(id);
const state = { caseId: "", site: "", urgent: false, review: null, fresh: null, link: null, previewRetry: null, stick: null, stickReceiptsShown: null };

function t(key) { return T[key] || key; }
document.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
$("tab-capture").textContent = t("tab_capture");
$("camera-btn").textContent = t("camera");
$("capture-btn").textContent = t("capture");
$("note").placeholder = t("note");

function show(id) {
  document.querySelectorAll(".screen").forEach(s => s.classList.toggle("show", s.id === id));
  document.querySelectorAll(".tab").forEach(b => b.classList.toggle("active", b.dataset.screen === id || (id === "review-screen" && b.id === "tab-capture")));
  if (id === "queue-screen") refreshQueue();
  if (id === "replies-screen") refreshReplies(true);
}
document.querySelectorAll(".tab").forEach(b => b.addEventListener("click", () => {
  /* Leaving the review by a tab means the photo was not wanted: same as Retake. */
  if (state.review) { $("retake-btn").click(); }
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

/* Case id keypad: digits plus the letters and dash the accepted formats use. */
const KEYS = ["1","2","3","H","C","4","5","6","E","-","7","8","9","0","⌫"];
function renderCase() {
  const f = $("case-field");
  f.querySelector("span").textContent = state.caseId || t("case_placeholder");
  f.classList.toggle("empty", !state.caseId);
  $("keypad-value").textContent = state.caseId || "\u00a0";
}
function buildKeypad() {
  const pad = $("keypad");
  KEYS.forEach(k => {
    const b = document.createElement("button"); b.textContent = k; b.dataset.key = k;
    b.addEventListener("click", () => {
      $("form-error").textContent = "";
      if (k === "⌫") state.caseId = state.caseId.slice(0, -1);
      else if (state.caseId.length < 20) state.caseId += k;
      renderCase();
    });
    pad.appendChild(b);
  });
  const clear = document.createElement("button"); clear.className = "wide"; clear.textContent = t("keypad_clear");
  clear.addEventListener("click", () => { state.caseId = ""; renderCase(); });
  const done = document.createElement("button"); done.className = "wide done"; done.id = "keypad-done"; done.textContent = t("keypad_done");
  done.addEventListener("click", () => { $("keypad-overlay").classList.remove("show"); sendOpenCase(); });
  const spacer = document.createElement("div");
  pad.append(clear, spacer, done);
}
$("case-field").addEventListener("click", () => { $("case-field").classList.remove("invalid"); $("keypad-overlay").classList.add("show"); showRecentCases(); });
/* The patients of the last day's cases on this station, to pick again instead of typing a DNI twice. */
async function showRecentCases() {
  const box = $("recent-cases");
  box.textContent = "";
  let snap;
  try { snap = await api("GET", "/api/v1/queue"); } catch (e) { return; }
  const ids = (snap.cases || []).map(c => c.case_id).filter((id, i, all) => id && all.indexOf(id) === i).slice(0, 4);
  if (!ids.length) return;
  const label = document.createElement("span"); label.textContent = t("recent_cases"); box.appendChild(label);
  ids.forEach(id => {
    const b = document.createElement("button"); b.textContent = id; b.dataset.recent = id;
    b.addEventListener("click", () => { state.caseId = id; $("form-error").textContent = ""; renderCase(); });
    box.appendChild(b);
  });
}

function renderSite() {
  const f = $("site-field");
  f.querySelector("span").textContent = state.site ? t("site_" + state.site) : t("site_choose");
  f.classList.toggle("empty", !state.site);
  document.querySelectorAll("#sites-grid button").forEach(b => b.classList.toggle("chosen", b.dataset.site === state.site));
}
function buildSites() {
  SITES.forEach(s => {
    const b = document.createElement("button"); b.textContent = t("site_" + s); b.dataset.site = s;
    b.addEventListener("click", () => { state.site = s; $("form-error").textContent = ""; renderSite(); $("sites-overlay").classList.remove("show"); sendOpenCase(); });
    $("sites-grid").appendChild(b);
  });
}
$("site-field").addEventListener("click", () => $("sites-overlay").classList.add("show"));
/* A tap beside a sheet closes it, as on a phone. */
document.querySelectorAll(".overlay").forEach(o => o.addEventListener("click", (e) => { if (e.target === o) o.classList.remove("show"); }));

function renderUrgent() {
  const b = $("urgent-toggle");
  b.textContent = (state.urgent ? "● " : "○ ") + t("urgent");
  b.classList.toggle("on", state.urgent);
}
$("urgent-toggle").addEventListener("click", () => { state.urgent = !state.urgent; renderUrgent(); sendOpenCase(); });
$("note").addEventListener("change", () => sendOpenCase());

/* The case on screen is where the camera's button, a foot switch or a GPIO
 * button file their photos; the station forgets it unless renewed. */
async function sendOpenCase() {
  try {
    if (state.caseId && state.site) await api("PUT", "/api/v1/case", { case_id: state.caseId, site: state.site, note: $("note").value, priority: state.urgent ? "urgent" : "routine" });
    else await api("DELETE", "/api/v1/case");
  } catch (e) { /* an invalid case id is reported when capturing */ }
}
setInterval(() => { if (state.caseId && state.site) sendOpenCase(); }, 60000);

/* A press of a capture button: show its photo for review, or say what it needs. */
function showTrigger(ev) {
  if (state.lastTrigger === undefined) { state.lastTrigger = ev ? ev.sequence : 0; return; }
  if (!ev || ev.sequence <= state.lastTrigger) return;
  state.lastTrigger = ev.sequence;
  const err = $("form-error");
  if (ev.outcome === "needs_case") { show("capture-screen"); err.textContent = t("trigger_needs_case"); return; }
  if (ev.outcome === "failed") { err.textContent = t("trigger_failed") + " " + (ev.message || ""); return; }
  err.textContent = t("trigger_" + ev.trigger);
  if (ev.outcome === "captured" && ev.review && !state.review) showReview(ev.review);
  else if (ev.outcome === "queued") { state.fresh = ev.queue_id; $("toast").textContent = t("trigger_" + ev.trigger) + " " + t("trigger_queued"); show("queue-screen"); }
}

/* Capture talks only to the station: it never waits for the network. */
$("capture-btn").addEventListener("click", async () => {
  const err = $("form-error"); err.textContent = "";
  if (!state.caseId) { err.textContent = t("err_invalid_case_id"); $("case-field").classList.add("invalid"); return; }
  if (!state.site) { err.textContent = t("err_site"); return; }
  const btn = $("capture-btn"); btn.disabled = true; btn.textContent = t("capturing");
  try {
    const item = await api("POST", "/api/v1/captures", { case_id: state.caseId, site: state.site, note: $("note").value, priority: state.urgent ? "urgent" : "routine" });
    showReview(item);
  } catch (e) {
    err.textContent = errorText(e);
    if (e.code === "invalid_case_id") $("case-field").classList.add("invalid");
  } finally { btn.disabled = false; btn.textContent = t("capture"); }
});

function showReview(item) {
  state.review = item;
  $("review-image").src = "/api/v1/captures/" + encodeURIComponent(item.id) + "/image";
  $("review-meta").textContent = item.request.case_id + " · " + t("site_" + item.request.site) + (item.request.priority === "urgent" ? " · " + t("urgent") : "") + " · " + item.width + "×" + item.height;
  const list = $("review-warnings"); list.innerHTML = "";
  (item.warnings.length ? item.warnings : [null]).forEach(w => {
    const li = document.createElement("li");
    if (w) li.textContent = t("warn_" + w); else { li.textContent = t("review_ok"); li.className = "ok"; }
    list.appendChild(li);
  });
  show("review-screen");
}
$("retake-btn").addEventListener("click", async () => {
  const item = state.review; state.review = null;
  show("capture-screen");
  if (item) { try { await api("POST", "/api/v1/captures/" + encodeURIComponent(item.id) + "/retake"); } catch (e) { $("form-error").textContent = errorText(e); } }
});
$("send-btn").addEventListener("click", async () => {
  const item = state.review; if (!item) return;
  $("send-btn").disabled = true;
  try {
    const q = await api("POST", "/api/v1/captures/" + encodeURIComponent(item.id) + "/accept");
    state.review = null; state.fresh = q.id;
    $("note").value = ""; state.urgent = false; renderUrgent();
    $("toast").textContent = t("sent_toast");
    show("queue-screen");
  } catch (e) { $("review-meta").textContent = errorText(e); }
  finally { $("send-btn").disabled = false; }
});
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
  if (open) { if (state.review) $("retake-btn").click(); show("capture-screen"); }
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
function fill(key, n) { return t(key).replace("{n}", String(n)); }
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

buildKeypad(); buildSites(); buildLimits(); renderLimit(); renderCase(); renderSite(); renderUrgent();
/* After load: an endless MJPEG response must not keep the page "loading". */
if (document.readyState === "complete") startPreview(); else window.addEventListener("load", startPreview);
refreshStatus(); setInterval(refreshStatus, 2000);
refreshStick(); setInterval(refreshStick, 2000);
refreshReplies(false); setInterval(() => refreshReplies(false), 5000);
setInterval(() => { if ($("queue-screen").classList.contains("show")) refreshQueue(); }, 1000);
