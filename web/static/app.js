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

document.addEventListener("DOMContentLoaded", () => {
  startLiveRefresh();
  filterEscorts();
  photoCapture();
});
