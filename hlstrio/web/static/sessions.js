// The sessions page: this user's playback sessions, refreshed every few seconds, each with a
// stop button (DELETE answers once the encoder is dead and its temp dir gone).
import { ApiError, api, el, formatTime, initChrome, relativeTime, withAuth } from "./common.js";

const REFRESH_MS = 2000;
const rows = document.getElementById("rows");
const tableWrap = document.getElementById("table-wrap");
const empty = document.getElementById("empty");
const count = document.getElementById("count");
const errorBox = document.getElementById("error");

let titles = new Map(); // media id -> title
let timer = 0;

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString();
}

function positionCell(session) {
  // `position` (s) comes from newer servers; older ones do not report it.
  if (!("position" in session) || session.position === null) return el("td", { class: "num" }, "—");
  const fraction = session.duration ? Math.min(1, session.position / session.duration) : 0;
  const bar = el("div", { class: "progress" }, el("div", {}));
  bar.firstChild.style.width = `${fraction * 100}%`;
  return el("td", { class: "num" }, `${formatTime(session.position)} / ${formatTime(session.duration)}`, bar);
}

function encoderCell(session) {
  if (!("encoder" in session)) return el("td", {}, "—");
  if (session.encoder === null) return el("td", {}, el("span", { class: "badge" }, "none"), el("span", { class: "sub" }, "remux: cut in-process"));
  return el("td", {}, el("span", { class: `badge ${session.encoder}` }, session.encoder));
}

function row(session) {
  const stop = el("button", { class: "button danger small stop", type: "button" }, "Stop");
  stop.addEventListener("click", async () => {
    stop.disabled = true;
    stop.textContent = "Stopping…";
    try {
      await api("DELETE", `/api/v1/sessions/${session.id}`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) showError(`Could not stop the session: ${err.message}`);
    }
    refresh();
  });
  const title = titles.get(session.media_id) || session.media_id;
  return el(
    "tr",
    { "data-session-id": session.id },
    el(
      "td",
      {},
      el("a", { href: `/play/${encodeURIComponent(session.media_id)}` }, title),
      el("span", { class: "sub" }, `${formatTime(session.duration)} · ${session.id.slice(0, 8)}…`),
    ),
    el(
      "td",
      {},
      el("span", { class: `badge ${session.mode}`, "data-mode": session.mode }, session.mode),
      el("span", { class: "sub", title: session.reason || "" }, actions(session)),
    ),
    el("td", {}, el("span", { class: `badge ${session.state}` }, session.state)),
    positionCell(session),
    encoderCell(session),
    el("td", { class: "num" }, clock(session.created_at)),
    el("td", { class: "num" }, relativeTime(session.last_access)),
    el("td", {}, stop),
  );
}

function actions(session) {
  const part = (name, action) => (action ? `${name} ${action}` : null);
  const parts = [part("video", session.video_action), part("audio", session.audio_action)];
  // Newer servers list every rendition and the segment container.
  const renditions = session.renditions || [];
  const count = (type, name) => {
    const n = renditions.filter((r) => r.type === type).length;
    return n ? `${n} ${name}${n > 1 ? "s" : ""}` : null;
  };
  parts.push(count("audio", "audio rendition"), count("subtitles", "subtitle"));
  if (session.container === "fmp4") parts.push("fMP4");
  return parts.filter(Boolean).join(", ");
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

async function refresh() {
  clearTimeout(timer);
  try {
    const { items } = await withAuth(() => api("GET", "/api/v1/sessions"));
    const unknown = items.some((s) => !titles.has(s.media_id));
    if (unknown) {
      const media = await api("GET", "/api/v1/media");
      titles = new Map(media.items.map((item) => [item.id, item.title]));
    }
    rows.replaceChildren(...items.map(row));
    tableWrap.hidden = items.length === 0;
    empty.hidden = items.length > 0;
    count.textContent = items.length ? String(items.length) : "";
    showError("");
  } catch (err) {
    showError(`Could not load sessions: ${err.message}`);
  }
  document.body.dataset.ready = "true";
  timer = setTimeout(refresh, REFRESH_MS);
}

initChrome("sessions");
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && refresh());
refresh();
