// Scrub thumbnails: the session's `thumbs.vtt` (a WebVTT track whose cue payloads are image
// URLs relative to it, `thumb-N.jpg`, one every 10 s), fetched once per session, shown above the
// seek bar at the pointer while hovering or dragging. Servers without it answer 404: then
// nothing is shown and nothing more is asked.
import { formatTime } from "./common.js";
import { cueAt, parseCues } from "./webvtt.js";

const THUMB_PX = 14; // the seek bar's thumb (app.css)

export class ScrubThumbnails {
  constructor({ wrap, seek, box, image, label }) {
    Object.assign(this, { wrap, seek, box, image, label });
    this.cues = null; // null: none (yet); else [{start, end, url}]
    this.url = null;
    this.hovering = false;
    this.dragging = false;
    this.failed = new Set(); // images that did not load: not shown again
    image.addEventListener("error", () => {
      this.failed.add(image.dataset.src);
      this.hide();
    });
    wrap.addEventListener("pointermove", (event) => {
      this.hovering = true;
      this.showAtPointer(event.clientX);
    });
    wrap.addEventListener("pointerleave", () => {
      this.hovering = false;
      if (!this.dragging) this.hide();
    });
    seek.addEventListener("input", () => {
      this.dragging = true;
      this.showAtValue();
    });
    seek.addEventListener("change", () => {
      this.dragging = false;
      if (!this.hovering) this.hide();
    });
  }

  // Load the track of a session (a new session, a new track); failures leave it off.
  async load(url) {
    this.url = url;
    this.cues = null;
    this.hide();
    let response;
    try {
      response = await fetch(url);
    } catch {
      return false;
    }
    if (!response.ok || this.url !== url) return false;
    const cues = parseCues(await response.text());
    if (this.url !== url) return false;
    this.cues = cues
      .map((cue) => ({ start: cue.start, end: cue.end, url: new URL(cue.text.trim(), url).href }))
      .sort((a, b) => a.start - b.start);
    this.wrap.dataset.thumbs = String(this.cues.length);
    return true;
  }

  duration() {
    return Number(this.seek.max) || 0;
  }

  // The range input maps a click to a value over its width less the thumb's (the thumb's
  // centre travels from THUMB_PX / 2 to width - THUMB_PX / 2): the same mapping here, so the
  // preview shows where a click would land.
  showAtPointer(clientX) {
    const rect = this.seek.getBoundingClientRect();
    const travel = Math.max(1, rect.width - THUMB_PX);
    const fraction = Math.max(0, Math.min(1, (clientX - rect.left - THUMB_PX / 2) / travel));
    this.show(fraction * this.duration(), clientX - rect.left);
  }

  showAtValue() {
    // Dragging with the mouse or the keyboard: at the thumb, where the value is.
    const rect = this.seek.getBoundingClientRect();
    const value = Number(this.seek.value);
    const fraction = value / (this.duration() || 1);
    this.show(value, THUMB_PX / 2 + fraction * Math.max(1, rect.width - THUMB_PX));
  }

  show(time, x) {
    const cue = this.cues && cueAt(this.cues, time);
    if (!cue || this.failed.has(cue.url)) return this.hide();
    if (this.image.dataset.src !== cue.url) {
      this.image.dataset.src = cue.url;
      this.image.src = cue.url;
    }
    this.label.textContent = formatTime(time);
    this.box.hidden = false;
    // Centred on the pointer, kept inside the seek bar's width.
    const width = this.box.offsetWidth;
    const room = this.wrap.clientWidth;
    this.box.style.left = `${Math.max(0, Math.min(room - width, x - width / 2))}px`;
    this.box.dataset.time = String(time);
  }

  hide() {
    this.box.hidden = true;
  }
}
