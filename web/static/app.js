// nyutai console: small progressive enhancements (pages work without JavaScript).
"use strict";

// Live dashboard: the live block is fetched again (no reload) when the server-sent-event
// stream (startLiveStream below) reports a new event, a presence change or an alarm change.
// Only while the stream is down (no EventSource, refused, or not open again within a few
// seconds) does the page fall back to short polling every data-interval ms; it stops as soon
// as the stream is back. #live's data-mode says which one feeds it ("stream" or "poll").
function startLiveRefresh() {
  const box = document.getElementById("live");
  if (!box) return;
  const url = box.dataset.refresh;
  const every = parseInt(box.dataset.interval || "2000", 10);
  const grace = parseInt(box.dataset.grace || "5000", 10);
  let busy = false;
  let again = false;
  let pollTimer = null;
  let downTimer = null;
  let soon = null;
  box.dataset.mode = "waiting";
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const resp = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (resp.redirected || resp.status === 401 || resp.status === 403) {
        window.location.reload(); // signed out (idle timeout): show the login page
        return;
      }
      if (resp.ok) {
        box.innerHTML = await resp.text();
        box.classList.remove("stale");
        box.dataset.updated = String(Date.now());
      }
    } catch (e) {
      box.classList.add("stale");
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  function schedule() {
    // a burst of events (a visitor and their escort) gives one fetch
    if (soon) return;
    soon = setTimeout(() => { soon = null; refresh(); }, 150);
  }
  function poll(on) {
    if (on && !pollTimer) {
      pollTimer = setInterval(() => { if (!document.hidden) refresh(); }, every);
      box.dataset.mode = "poll";
    } else if (!on && pollTimer) {
      clearInterval(pollTimer);
      pollTimer = null;
    }
  }
  function streamDown() {
    if (!downTimer && !pollTimer) downTimer = setTimeout(() => { downTimer = null; poll(true); }, grace);
  }
  let everUp = false;
  let lastPresence = null;
  document.addEventListener("nyutai:stream", (e) => {
    if (e.detail && e.detail.up) {
      clearTimeout(downTimer);
      downTimer = null;
      const catchUp = !!pollTimer || !everUp;
      everUp = true;
      poll(false);
      box.dataset.mode = "stream";
      // what changed between the page's rendering and the stream, or while it was away
      if (catchUp) schedule();
    } else {
      streamDown();
    }
  });
  document.addEventListener("nyutai:event", schedule);
  document.addEventListener("nyutai:alarms", schedule);
  document.addEventListener("nyutai:presence", (e) => {
    // every (re)connection sends the counts again: only a change is worth a fetch
    const now = JSON.stringify(e.detail);
    if (lastPresence !== null && now !== lastPresence) schedule();
    lastPresence = now;
  });
  streamDown(); // no stream at all (no EventSource, no banner): poll after the grace time
}

// Visitor form: offer only the escorts who may escort in the chosen area. The page renders
// the chosen area's first escorts only; on a change of area the escort picker (below) asks
// escorts.json for the new area's, and until it answers the old area's are disabled here.
function filterEscorts() {
  const area = document.getElementById("visit-area");
  const escort = document.getElementById("visit-escort");
  if (!area || !escort) return;
  function apply() {
    for (const opt of escort.options) {
      if (!opt.dataset.area) continue;
      const show = opt.dataset.area === area.value;
      opt.hidden = !show;
      opt.disabled = !show;
      if (!show && opt.selected) escort.value = "";
    }
  }
  area.addEventListener("change", apply);
  apply();
}

// Person pickers: a search field fills its <select> from a JSON endpoint as you type
// (at most 50 people; web/pickers.py), so a page never lists every person of the site.
function startPickers() {
  for (const input of document.querySelectorAll("input.picker")) {
    const select = document.getElementById(input.dataset.pickerTarget);
    const status = document.getElementById(input.dataset.pickerTarget + "-status");
    const area = input.dataset.pickerArea ? document.getElementById(input.dataset.pickerArea) : null;
    if (!select) continue;
    let timer = null;
    let asked = 0;
    async function search() {
      const url = new URL(input.dataset.pickerUrl, window.location.href);
      url.searchParams.set("q", input.value);
      if (area) url.searchParams.set("area", area.value);
      const mine = ++asked;
      try {
        const resp = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
        if (!resp.ok || mine !== asked) return; // a later keystroke's answer wins
        const data = await resp.json();
        const keep = select.options.length && select.options[0].value === "" ? select.options[0] : null;
        const was = select.value;
        select.replaceChildren();
        if (keep) select.append(keep);
        for (const r of data.results) {
          const opt = new Option(r.label, String(r.id));
          if (area) opt.dataset.area = area.value;
          select.append(opt);
        }
        if (data.results.length && !keep) select.selectedIndex = 0;
        // the choice survives a new answer that still offers it (same area, narrower name)
        if (was && data.results.some((r) => String(r.id) === was)) select.value = was;
        if (status) {
          const n = String(data.results.length) + (data.more ? "+" : "");
          status.textContent = (input.dataset.foundLabel || "") + ": " + n;
        }
      } catch (e) {
        if (status) status.textContent = "!";
      }
    }
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, 250);
    });
    // another area: its own escorts, with or without a name typed (the page rendered only
    // the first area's)
    if (area) area.addEventListener("change", search);
  }
}

// Visitor photo: the browser's camera (getUserMedia) fills the form's file input with a
// JPEG; without a camera (or permission, or outside a secure context) the file input stays.
function photoCapture() {
  const canCamera = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  for (const form of document.querySelectorAll("form.photo-capture")) {
    const video = form.querySelector("video.camera-view");
    const start = form.querySelector("button.camera-start");
    const shoot = form.querySelector("button.camera-shoot");
    const input = form.querySelector("input[type=file]");
    if (!canCamera || !video || !start || !shoot || !input) continue;
    start.hidden = false;
    let stream = null;
    start.addEventListener("click", async () => {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
      } catch (e) {
        start.hidden = true; // refused or no camera: the file input remains
        form.classList.add("no-camera");
        return;
      }
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      shoot.hidden = false;
    });
    shoot.addEventListener("click", () => {
      if (!stream || !video.videoWidth) return;
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      canvas.toBlob((blob) => {
        if (!blob) return;
        const file = new File([blob], "visitor.jpg", { type: "image/jpeg" });
        const dt = new DataTransfer();
        dt.items.add(file);
        input.files = dt.files;
        for (const track of stream.getTracks()) track.stop();
        form.dataset.captured = "1";
        form.submit();
      }, "image/jpeg", 0.85);
    });
  }
}

// Site settings: a contract end typed unticks "not known yet"; ticking it empties the date.
function settingUnknown() {
  const form = document.getElementById("setting-contract_end");
  if (!form) return;
  const date = form.querySelector("input[name=value]");
  const unknown = form.querySelector("input[name=unknown]");
  if (!date || !unknown) return;
  date.addEventListener("input", () => { if (date.value) unknown.checked = false; });
  unknown.addEventListener("change", () => { if (unknown.checked) date.value = ""; });
}

document.addEventListener("DOMContentLoaded", () => {
  settingUnknown();
  startLiveRefresh();
  filterEscorts();
  startPickers();
  photoCapture();
});

// Live console: one server-sent-event stream per page (web/views/live.py). The banner lists
// raised alarms on every page until they are acknowledged; for guards it also beeps (Web
// Audio, no sound file) until acknowledged or silenced; a silent (duress) alarm never beeps.
// The alarms page reloads its tables when an alarm changes, unless a comment is being typed.
function startLiveStream() {
  const banner = document.getElementById("alarm-banner");
  if (!banner || !window.EventSource) return;
  const list = document.getElementById("alarm-banner-list");
  const wantsSound = banner.dataset.sound === "1";
  let audio = null;
  let beepTimer = null;
  let silencedUpTo = 0;
  let newestAudible = 0;

  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.35);
    } catch (e) { /* no audio device: the banner still shows */ }
  }
  function sound(on) {
    if (on && !beepTimer) {
      beep();
      beepTimer = setInterval(beep, 2000);
    } else if (!on && beepTimer) {
      clearInterval(beepTimer);
      beepTimer = null;
    }
    banner.dataset.sounding = beepTimer ? "1" : "";
  }
  const mute = document.getElementById("alarm-mute");
  if (mute) mute.addEventListener("click", () => { silencedUpTo = newestAudible; sound(false); });

  function showAlarms(alarms) {
    list.replaceChildren();
    for (const a of alarms) {
      const li = document.createElement("li");
      li.className = "alarm-banner-item" + (a.silent ? " silent" : "");
      li.dataset.alarmId = String(a.id);
      li.textContent = `${a.time} ${a.text}${a.place ? " — " + a.place : ""}`;
      list.appendChild(li);
    }
    banner.hidden = alarms.length === 0;
    const audible = alarms.filter((a) => !a.silent).map((a) => a.id);
    newestAudible = audible.length ? Math.max(...audible) : 0;
    sound(wantsSound && newestAudible > silencedUpTo);
  }

  async function refreshAlarmsPage() {
    const table = document.getElementById("alarm-table");
    if (!table) return;
    const typing = [...document.querySelectorAll("main input[name=comment]")].some(
      (i) => i.value || i === document.activeElement);
    if (typing) return; // never throw away what a guard is writing
    const resp = await fetch(window.location.href, { credentials: "same-origin" });
    if (!resp.ok || resp.redirected) return;
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    const fresh = doc.querySelector("main");
    const main = document.querySelector("main");
    if (fresh && main) main.replaceChildren(...fresh.childNodes);
  }

  let source = null;
  let seenAlarms = null;
  function streamState(up) {
    document.dispatchEvent(new CustomEvent("nyutai:stream", { detail: { up } }));
  }
  function connect() {
    source = new EventSource(banner.dataset.stream);
    source.addEventListener("hello", () => streamState(true));
    source.onopen = () => streamState(true);
    source.addEventListener("alarms", (e) => {
      showAlarms(JSON.parse(e.data));
      if (seenAlarms !== null && seenAlarms !== e.data) document.dispatchEvent(new CustomEvent("nyutai:alarms"));
      seenAlarms = e.data;
    });
    source.addEventListener("alarms_changed", () => {
      refreshAlarmsPage();
      document.dispatchEvent(new CustomEvent("nyutai:alarms"));
    });
    source.addEventListener("event", (e) => {
      document.dispatchEvent(new CustomEvent("nyutai:event", { detail: JSON.parse(e.data) }));
    });
    source.addEventListener("presence", (e) => {
      document.dispatchEvent(new CustomEvent("nyutai:presence", { detail: JSON.parse(e.data) }));
    });
    source.onerror = () => {
      // the browser reconnects by itself (each stream lasts 25 s); the dashboard falls back to
      // polling only if it is not open again within its grace time
      streamState(false);
      // a closed stream (signed out, refused) is not retried by the browser: try again later
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 15000);
    };
  }
  connect();
}

document.addEventListener("DOMContentLoaded", startLiveStream);
