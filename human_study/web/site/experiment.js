/* bodyscene online experiment (jsPsych 8). Written by `bodyscene experiment export-web`
 * beside config.json (lab texts, timing, server address) and plan/<participant>.json.
 *
 * A trial is the lab runner's: blank, fixation cross, the stimulus (an image, or a clip's
 * frames at its fps) for whole refreshes, then the k choices numbered 1..k in a per-trial
 * order. Every display change is made inside a requestAnimationFrame (rAF) callback and counts
 * as visible from the NEXT callback's timestamp (the frame it was first composited in); keys
 * pressed before the choices appear answer nothing.
 *
 * Data: each answered trial goes into a localStorage queue before the next trial starts and
 * is POSTed to the server; 2xx or 409 (already stored) takes it off the queue, network errors
 * and 5xx retry with backoff, other 4xx are set aside as refused. A reload resumes at the
 * first trial that neither the server nor the queue holds. */
"use strict";

const CLIENT_VERSION = "1";
const PT = jsPsychModule.ParameterType;
const RECRUITMENT_PARAMS = ["PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId",
                            "assignmentId", "hitId", "turkSubmitTo"];

// ------------------------------------------------------------------ small helpers
function fnv1a(text) {                    // 32-bit FNV-1a: seeds the choice-order shuffle
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h || 1;
}

/** Fisher-Yates driven by xorshift32 seeded from the text: a resumed trial shows the order it
 * would have shown. */
function seededShuffle(items, seedText) {
  let s = fnv1a(seedText);
  const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const median = (xs) => { const s = xs.slice().sort((a, b) => a - b); const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
const sha256Hex = async (data) => hex(await crypto.subtle.digest("SHA-256", data));
const escapeHtml = (t) => String(t).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
/** A lab text (plain, with newlines) as HTML paragraphs. */
const textHtml = (t) => `<div class="bs-text">${String(t).split(/\n\s*\n/).map((p) => `<p>${escapeHtml(p).replace(/\n/g, "<br>")}</p>`).join("")}</div>`;
const fill = (t, values) => String(t).replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));

/** Refresh rate from rAF timestamps: the median interval of n frames (robust to the odd long
 * frame; the first interval is dropped), plus the mean and the count of long intervals. */
function measureRefresh(n = 120) {
  return new Promise((resolve) => {
    const ts = [];
    const tick = (t) => {
      ts.push(t);
      if (ts.length <= n) { requestAnimationFrame(tick); return; }
      const d = ts.slice(1).map((x, i) => x - ts[i]).slice(1);
      const med = median(d);
      resolve({ hz: 1000 / med, frame_ms: med, mean_ms: d.reduce((a, b) => a + b, 0) / d.length,
                n: d.length, n_long: d.filter((x) => x > 1.5 * med).length });
    };
    requestAnimationFrame(tick);
  });
}

function browserName() {
  const ua = navigator.userAgent;
  const m = ua.match(/(Edg|OPR|Firefox|Chrom(?:e|ium))\/([\d.]+)/) || ua.match(/Version\/([\d.]+).*(Safari)/);
  if (!m) return "unknown";
  return m[2] === "Safari" ? `Safari/${m[1]}` : `${m[1]}/${m[2]}`;
}

// ------------------------------------------------------------------ the trial plugin
/** One k-alternative forced-choice trial timed by rAF. */
class BodysceneTrialPlugin {
  static info = {
    name: "bodyscene-trial",
    version: CLIENT_VERSION,
    parameters: {
      frames: { type: PT.IMAGE, array: true, default: undefined },  // object URLs, in order
      holds: { type: PT.INT, array: true, default: undefined },     // refreshes per frame
      choices: { type: PT.STRING, array: true, default: undefined }, // action names, shown order
      labels: { type: PT.HTML_STRING, array: true, default: undefined },
      iti_frames: { type: PT.INT, default: 18 },
      fixation_frames: { type: PT.INT, default: 30 },
      frame_ms: { type: PT.FLOAT, default: 1000 / 60 },
      prompt: { type: PT.HTML_STRING, default: "" },
    },
    data: {
      response: { type: PT.STRING }, rt_s: { type: PT.FLOAT },
      choice_order: { type: PT.STRING, array: true },
      stim_onset_ms: { type: PT.FLOAT }, stim_offset_ms: { type: PT.FLOAT },
      stim_frames: { type: PT.INT }, intended_frames: { type: PT.INT },
      dropped_frames: { type: PT.INT }, frame_intervals_ms: { type: PT.FLOAT, array: true },
      hidden: { type: PT.BOOL },
    },
  };

  constructor(jsPsych) { this.jsPsych = jsPsych; }

  trial(display, trial) {
    const k = trial.choices.length;
    const labels = trial.labels.map((l, i) => `<div class="bs-choice"><span class="bs-key">${i + 1}</span><span class="bs-label">${l}</span></div>`).join("");
    display.innerHTML =
      `<div class="bs-stage">` +
      `<div class="bs-fix bs-hidden">+</div>` +
      trial.frames.map((u) => `<img class="bs-stim bs-hidden" src="${u}" alt="">`).join("") +
      `<div class="bs-resp bs-hidden"><div class="bs-prompt">${trial.prompt}</div><div class="bs-choices">${labels}</div></div>` +
      `</div>`;
    const fix = display.querySelector(".bs-fix");
    const imgs = Array.from(display.querySelectorAll(".bs-stim"));
    const resp = display.querySelector(".bs-resp");
    const F = trial.frame_ms;
    // What is on screen, segment by segment: blank, fixation, each frame of the stimulus.
    const segs = [{ el: null, n: trial.iti_frames }, { el: fix, n: trial.fixation_frames },
                  ...imgs.map((el, i) => ({ el, n: trial.holds[i], stim: true }))];
    const intended = trial.holds.reduce((a, b) => a + b, 0);
    const stamps = [];              // every rAF timestamp from the stimulus onset on
    let cur = 0, count = 0, onsetPending = false, onset = null, offset = null;
    let raf = 0, listener = null, finished = false, hidden = document.hidden;
    const onVis = () => { if (document.hidden) hidden = true; };
    document.addEventListener("visibilitychange", onVis);
    const show = (el, on) => el && el.classList.toggle("bs-hidden", !on);

    const step = (ts) => {
      if (finished) return;
      if (onsetPending) {                                // the change asked for last frame is up
        onsetPending = false;
        count = 0;
        if (cur === segs.length) {                       // the choices are up: listen
          offset = ts;
          stamps.push(ts);
          resp.dataset.up = "1";
          // from now on only: a key pressed before the choices were on screen answers nothing
          listener = this.jsPsych.pluginAPI.getKeyboardResponse({
            callback_function: (info) => answer(parseInt(info.key, 10) - 1),
            rt_method: "performance", persist: false, allow_held_key: false,
            valid_responses: Array.from({ length: k }, (_, i) => String(i + 1)),
          });
          resp.querySelectorAll(".bs-choice").forEach((el, i) => el.addEventListener("click", () => answer(i)));
          return;                                        // nothing more to draw
        }
        if (segs[cur].stim && onset === null) onset = ts;
      }
      count += 1;                                        // frames this segment has been up
      if (onset !== null) stamps.push(ts);
      // As the lab runner holds n flips: leave after the segment's n-th frame (a change made
      // now shows from the next frame). A frame the browser skips makes it longer, never
      // shorter, and is counted in dropped_frames.
      if (count >= segs[cur].n) {
        show(segs[cur].el, false);
        cur += 1;
        onsetPending = true;
        if (cur < segs.length) show(segs[cur].el, true);
        else show(resp, true);
      }
      raf = requestAnimationFrame(step);
    };

    const answer = (idx) => {
      const now = performance.now();
      if (finished) return;
      finished = true;
      this.jsPsych.pluginAPI.cancelKeyboardResponse(listener);
      cancelAnimationFrame(raf);
      document.removeEventListener("visibilitychange", onVis);
      const off = offset;
      const shown = stamps.filter((t) => t < off);
      const intervals = stamps.filter((t) => t <= off).slice(1).map((t, i) => +(t - stamps[i]).toFixed(3));
      const duration = off - onset;
      this.jsPsych.finishTrial({
        response: trial.choices[idx], rt_s: (now - off) / 1000,
        choice_order: trial.choices, stim_onset_ms: onset, stim_offset_ms: off,
        stim_frames: shown.length, intended_frames: intended,
        dropped_frames: Math.max(0, Math.round(duration / F) - intended),
        frame_intervals_ms: intervals, hidden,
      });
    };

    // decode every frame first, so the onset frame does not pay for it
    Promise.all(imgs.map((im) => (im.decode ? im.decode().catch(() => {}) : null)))
      .then(() => { if (!finished) raf = requestAnimationFrame(step); });
  }
}

// ------------------------------------------------------------------ data: queue + upload
class Queue {
  /** localStorage `bodyscene:<participant>:s<session>` = {plan_sha256, pending, acked,
   * refused, attempts, finished}; pending entries are {path, body}. */
  constructor(api, key, planSha) {
    this.api = api; this.key = key;
    const saved = JSON.parse(localStorage.getItem(key) || "null");
    this.s = saved && saved.plan_sha256 === planSha ? saved
      : { plan_sha256: planSha, pending: [], acked: [], refused: [], attempts: {}, finished: false };
    this.backoff = 500; this.busy = false; this.timer = null;
    this.save();
    window.addEventListener("online", () => this.flush());
  }
  save() { localStorage.setItem(this.key, JSON.stringify(this.s)); }
  heldOrders() { return new Set([...this.s.acked, ...this.s.pending.filter((p) => p.path === "api/trial").map((p) => p.body.order)]); }
  attempt(order) { this.s.attempts[order] = (this.s.attempts[order] || 0) + 1; this.save(); return this.s.attempts[order]; }
  push(path, body) { this.s.pending.push({ path, body }); this.save(); this.flush(); }
  retryLater() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 30000);
  }
  async flush() {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.s.pending.length) {
        const p = this.s.pending[0];
        let res;
        try {
          res = await fetch(this.api + p.path, { method: "POST", keepalive: true,
            headers: { "Content-Type": "application/json" }, body: JSON.stringify(p.body) });
        } catch (e) { this.retryLater(); return; }           // offline, or the server is down
        if (res.status >= 500 || res.status === 408 || res.status === 429) { this.retryLater(); return; }
        if (p.path === "api/trial") {
          if (res.ok || res.status === 409) this.s.acked.push(p.body.order);
          else this.s.refused.push({ order: p.body.order, status: res.status, error: await res.text() });
        }
        this.s.pending.shift();
        this.backoff = 500;
        this.save();
      }
    } finally { this.busy = false; }
  }
  async drain(timeoutMs) {
    const end = performance.now() + timeoutMs;
    while (this.s.pending.length && performance.now() < end) {
      await this.flush();
      await new Promise((r) => setTimeout(r, 250));
    }
    return this.s.pending.length === 0;
  }
}

// ------------------------------------------------------------------ stimuli
/** Fetch every frame, hash the bytes that will be shown (a clip: sha256 of its frames' hex
 * digests joined by newlines, as the manifest does) and keep them as object URLs. */
async function loadStimuli(trials, onProgress) {
  const byUrl = new Map();
  const out = new Map();
  let done = 0;
  const total = trials.reduce((a, t) => a + t.frames.length, 0);
  for (const t of trials) {
    const digests = [], urls = [];
    for (const f of t.frames) {
      if (!byUrl.has(f)) {
        const res = await fetch(f);
        if (!res.ok) throw new Error(`${f}: HTTP ${res.status}`);
        const buf = await res.arrayBuffer();
        byUrl.set(f, { url: URL.createObjectURL(new Blob([buf], { type: "image/png" })), sha: await sha256Hex(buf) });
      }
      digests.push(byUrl.get(f).sha); urls.push(byUrl.get(f).url);
      onProgress(++done, total);
    }
    const sha = t.frames.length === 1 ? digests[0] : await sha256Hex(new TextEncoder().encode(digests.join("\n")));
    out.set(t.order, { urls, sha256: sha });
  }
  return out;
}

// ------------------------------------------------------------------ main
async function getJson(url, opts) {
  const res = await fetch(url, { cache: "no-store", ...opts });
  if (!res.ok) { const e = new Error(`${url}: HTTP ${res.status}`); e.status = res.status; throw e; }
  return res.json();
}

function message(html) { document.body.innerHTML = `<div class="bs-message">${html}</div>`; }

async function main() {
  const cfg = await getJson("config.json");
  const api = cfg.server ? cfg.server.replace(/\/?$/, "/") : "";
  const url = new URL(location.href);
  const recruitment = {};
  for (const k of RECRUITMENT_PARAMS) if (url.searchParams.has(k)) recruitment[k] = url.searchParams.get(k);
  const session = parseInt(url.searchParams.get("session") || "1", 10);
  document.documentElement.style.setProperty("--bs-stim-px", `${cfg.stimulus_px}px`);
  document.body.classList.toggle("bs-pixelated", !cfg.timing.interpolate);
  let pid = url.searchParams.get("participant");
  if (!window.crypto || !crypto.subtle) {
    message("<p>This page must be opened over https (or on this computer) to run.</p>"); return;
  }

  let token = url.searchParams.get("token");
  if (!pid) {                 // no ?participant=: the server assigns one, with its token
    try { ({ participant: pid, token } = await getJson(api + "api/assign", { method: "POST", headers: { "Content-Type": "application/json" },
                                                                           body: JSON.stringify({ recruitment }) })); }
    catch (e) { pid = null; }
    if (pid) {
      url.searchParams.set("participant", pid);
      url.searchParams.set("token", token);
      history.replaceState(null, "", url);    // a reload keeps the participant and its token
    }
  }
  if (!pid || !token) { message(textHtml(cfg.texts.no_link)); return; }   // posts need the token
  let plan;
  try { plan = await getJson(`plan/${encodeURIComponent(pid)}.json`); }
  catch (e) { message(`<p>${escapeHtml(fill(cfg.texts.unknown_participant, { participant: pid }))}</p>`); return; }

  const queue = new Queue(api, `bodyscene:${pid}:s${session}`, plan.plan_sha256);
  queue.flush();                              // anything left from before a reload goes first
  let server = { done: [], complete: false };
  try { server = await getJson(`${api}api/session/${encodeURIComponent(pid)}?session=${session}&token=${encodeURIComponent(token)}`); }
  catch (e) { /* server unreachable: go on from the local record; answers wait in the queue */ }
  const endScreen = (saved) => {
    const code = cfg.completion_code ? `<p class="bs-code">${escapeHtml(fill(cfg.texts.completion_code, { code: cfg.completion_code }))}</p>` : "";
    message(textHtml(saved ? cfg.texts.end : cfg.texts.not_saved) + (saved ? code : "") +
            `<span id="bs-end" data-saved="${saved ? 1 : 0}"></span>`);
    if (saved && cfg.redirect_url) setTimeout(() => location.assign(fill(cfg.redirect_url, { code: cfg.completion_code })), 3000);
  };
  if (server.complete || queue.s.finished) {  // finished before: the end screen, not a second session
    endScreen(await queue.drain(30000));
    return;
  }
  const held = new Set([...server.done, ...queue.heldOrders()]);
  const todo = plan.trials.filter((t) => !held.has(t.order));
  const previous = plan.trials.filter((t) => held.has(t.order)).pop() || null;
  const resuming = held.size > 0;
  queue.push("api/start", { participant: pid, session, token, plan_sha256: plan.plan_sha256, recruitment,
                            resumed: resuming, first_order: todo.length ? todo[0].order : null,
                            browser: browserName(), user_agent: navigator.userAgent.slice(0, 300),
                            screen_px: `${screen.width}x${screen.height}`, window_px: `${innerWidth}x${innerHeight}`,
                            device_pixel_ratio: devicePixelRatio, client: CLIENT_VERSION });

  message(`<p>${escapeHtml(cfg.texts.loading)} <span id="bs-progress"></span></p>`);
  // as long as the lab's refresh_measure_s at 60 Hz (the rate is not known yet)
  const refresh = await measureRefresh(Math.max(12, Math.round(cfg.timing.refresh_measure_s * 60)));
  const F = refresh.frame_ms;
  let stimuli;
  try {
    stimuli = await loadStimuli(todo, (i, n) => { const el = document.getElementById("bs-progress"); if (el) el.textContent = `${i}/${n}`; });
  } catch (e) { message(`<p>${escapeHtml(cfg.texts.load_failed)}</p><p>${escapeHtml(e.message)}</p>`); return; }
  document.body.innerHTML = "";
  let declined = false;
  const jsPsych = initJsPsych({ on_finish: async () => {
    if (declined) { message(textHtml(cfg.texts.declined)); return; }   // nothing was recorded
    message(`<p>${escapeHtml(cfg.texts.saving)}</p>`);
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    const saved = await queue.drain(120000) && queue.s.refused.length === 0;
    if (saved) { queue.s.finished = true; queue.save(); }
    endScreen(saved);
  } });
  const software = `bodyscene-web=${CLIENT_VERSION};jspsych=${jsPsych.version()};${browserName()}`;
  const frames = (s) => Math.max(0, Math.round(s * 1000 / F));
  const key = cfg.keys.continue;            // KeyboardEvent.key, translated by export-web
  const textScreen = (text, name) => ({ type: jsPsychHtmlKeyboardResponse, stimulus: textHtml(text),
                                        choices: [key], data: { screen: name } });
  window.__bodyscene = { jsPsych, plan, queue, refresh, todo: todo.map((t) => t.order) };   // for tests

  const timeline = [{ type: jsPsychBrowserCheck, features: ["width", "height", "browser", "browser_version", "mobile", "os"],
                      minimum_width: cfg.minimum_window[0], minimum_height: cfg.minimum_window[1],
                      inclusion_function: (d) => !d.mobile,
                      exclusion_message: () => textHtml(cfg.texts.excluded) }];
  if (cfg.procedure.consent && !resuming) {      // as the lab: the key agrees, Escape declines
    timeline.push({ type: jsPsychHtmlKeyboardResponse, stimulus: textHtml(cfg.texts.consent),
                    choices: [key, "Escape"], data: { screen: "consent" },
                    on_finish: (d) => { if (jsPsych.pluginAPI.compareKeys(d.response, "Escape")) {
                      declined = true; jsPsych.abortExperiment(textHtml(cfg.texts.declined)); } } });
  }
  timeline.push(resuming ? textScreen(cfg.texts.resume, "resume")
    : { type: jsPsychInstructions, pages: [textHtml(cfg.texts.instructions)], key_forward: key,
        show_clickable_nav: false, data: { screen: "instructions" } });
  timeline.push({ type: jsPsychPreload, auto_preload: false, images: [...stimuli.values()].flatMap((s) => s.urls) });
  if (cfg.fullscreen && url.searchParams.get("fullscreen") !== "0") {
    timeline.push({ type: jsPsychFullscreen, fullscreen_mode: true, message: textHtml(cfg.texts.fullscreen),
                    button_label: cfg.texts.fullscreen_button });
  }
  const nBlocks = Math.max(...plan.trials.map((t) => t.block));
  let lastPhase = previous ? previous.phase : null, lastBlock = previous ? previous.block : null;
  for (const t of todo) {
    if (t.phase === "practice" && lastPhase === null) timeline.push(textScreen(cfg.texts.practice, "practice"));
    else if (t.phase !== "practice" && lastPhase === "practice") timeline.push(textScreen(cfg.texts.main, "main"));
    else if (lastBlock !== null && lastBlock >= 1 && t.block !== lastBlock) {
      timeline.push(textScreen(fill(cfg.texts.break_, { n: t.block, total: nBlocks }), "break"));
    }
    lastPhase = t.phase; lastBlock = t.block;
    const choices = cfg.procedure.choice_order === "participant"   // one order for this participant
      ? t.choices.slice().sort((a, b) => fnv1a(`${plan.plan_sha256}:${pid}:${a}`) - fnv1a(`${plan.plan_sha256}:${pid}:${b}`))
      : seededShuffle(t.choices, `${plan.plan_sha256}:${pid}:${session}:${t.order}`);
    const holds = t.frames.length === 1 ? [Math.max(1, frames(t.duration_s))]
      : t.frames.map(() => Math.max(1, frames(1 / t.fps)));
    let attempt = 0;
    timeline.push({
      type: BodysceneTrialPlugin, frames: stimuli.get(t.order).urls, holds, choices,
      labels: choices.map((c) => escapeHtml(cfg.labels[c] ?? c)),
      iti_frames: frames(cfg.timing.iti_s), fixation_frames: Math.max(1, frames(cfg.timing.fixation_s)), frame_ms: F,
      prompt: escapeHtml(fill(cfg.texts.prompt, { k: choices.length })),
      data: { screen: "trial", order: t.order },
      on_start: () => { attempt = queue.attempt(t.order); },
      on_finish: (d) => queue.push("api/trial", {
        participant: pid, session, token, trial: t.trial, order: t.order, sha256: stimuli.get(t.order).sha256,
        response: d.response, rt_s: d.rt_s, choice_order: choices,
        stim_intended_s: d.intended_frames * F / 1000, stim_onset_s: d.stim_onset_ms / 1000,
        stim_offset_s: d.stim_offset_ms / 1000, stim_duration_s: (d.stim_offset_ms - d.stim_onset_ms) / 1000,
        stim_frames: d.stim_frames, dropped_frames: d.dropped_frames, refresh_hz: +refresh.hz.toFixed(3),
        browser: browserName(), screen_px: `${screen.width}x${screen.height}`, window_px: `${innerWidth}x${innerHeight}`,
        software,
        extra: { attempt, frame_intervals_ms: d.frame_intervals_ms, hidden: d.hidden, refresh_mean_ms: +refresh.mean_ms.toFixed(4),
                 refresh_long: refresh.n_long, isolated: window.crossOriginIsolated, device_pixel_ratio: devicePixelRatio,
                 time_origin_ms: performance.timeOrigin },
      }),
    });
    if (t.feedback) {
      timeline.push({ type: jsPsychHtmlKeyboardResponse, choices: "NO_KEYS", trial_duration: cfg.timing.feedback_s * 1000,
                      data: { screen: "feedback" },
                      stimulus: () => { const d = jsPsych.data.get().last(1).values()[0];
                        return textHtml(d.response === t.answer ? cfg.texts.correct : fill(cfg.texts.wrong, { answer: cfg.labels[t.answer] ?? t.answer })); } });
    }
  }
  await jsPsych.run(timeline);
}

main();
