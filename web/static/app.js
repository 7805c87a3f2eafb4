// nyutai console: small progressive enhancements (pages work without JavaScript).
"use strict";

// Live dashboard: replace the live block every few seconds (short polling, no reload).
function startLiveRefresh() {
  const box = document.getElementById("live");
  if (!box) return;
  const url = box.dataset.refresh;
  const every = parseInt(box.dataset.interval || "2000", 10);
  let busy = false;
  async function tick() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const resp = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (resp.redirected || resp.status === 401 || resp.status === 403) {
        window.location.reload(); // signed out (idle timeout): show the login page
        return;
      }
      if (resp.ok) {
        box.innerHTML = await resp.text();
        box.dataset.updated = String(Date.now());
      }
    } catch (e) {
      box.classList.add("stale");
    } finally {
      busy = false;
    }
  }
  setInterval(tick, every);
}

// Visitor form: offer only the escorts who may escort in the chosen area.
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

document.addEventListener("DOMContentLoaded", () => {
  startLiveRefresh();
  filterEscorts();
});
