// Shared by every page: API calls (with the bearer token when the server wants one), the
// token prompt, DOM and formatting helpers. Data from the server only ever reaches the page
// through textContent/attributes, never as HTML.

const TOKEN_KEY = "hlstrio.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function authHeaders() {
  const token = storedToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function api(method, path, body) {
  const headers = authHeaders();
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", `cannot reach the server (${err.message})`);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: a proxy error page, for instance
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`);
  }
  return data;
}

// Run `load` (which calls the API); when the server answers 401, ask for a token and retry.
export async function withAuth(load) {
  for (;;) {
    try {
      return await load();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      const rejected = storedToken() !== null;
      sessionStorage.removeItem(TOKEN_KEY);
      renderAuthStatus();
      const token = await askForToken(rejected ? "That token was not accepted." : null);
      sessionStorage.setItem(TOKEN_KEY, token);
      renderAuthStatus();
    }
  }
}

function askForToken(error) {
  return new Promise((resolve) => {
    const input = el("input", {
      id: "token-input",
      type: "password",
      autocomplete: "off",
      placeholder: "Access token",
      "aria-label": "Access token",
    });
    const form = el(
      "form",
      { class: "modal", id: "token-form" },
      el("h2", {}, "Sign in to hlstrio"),
      el("p", {}, "This server needs an access token. It is kept for this browser tab only."),
      input,
      error ? el("div", { class: "error", id: "token-error" }, error) : null,
      el("div", { class: "actions" }, el("button", { class: "button primary", type: "submit" }, "Sign in")),
    );
    const backdrop = el("div", { class: "modal-backdrop" }, form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      backdrop.remove();
      resolve(token);
    });
    document.body.append(backdrop);
    input.focus();
  });
}

export function renderAuthStatus() {
  const box = document.getElementById("auth-status");
  if (!box) return;
  box.hidden = storedToken() === null;
}

export function initChrome(current) {
  for (const link of document.querySelectorAll(".topbar nav a")) {
    if (link.dataset.nav === current) link.setAttribute("aria-current", "page");
  }
  const signOut = document.getElementById("sign-out");
  if (signOut) {
    signOut.addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      location.reload();
    });
  }
  renderAuthStatus();
}

// el("a", {href: "/"}, "text", child, ...): build DOM without innerHTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Inline SVG icons: the page has no icon font and no network beyond this server.
const ICONS = {
  play: "M8 5.14v13.72a1 1 0 0 0 1.5.86l11-6.86a1 1 0 0 0 0-1.72l-11-6.86A1 1 0 0 0 8 5.14z",
  pause: "M7 4h3.5v16H7zM13.5 4H17v16h-3.5z",
  volume: "M4 9v6h4l5 5V4L8 9H4zm12.5 3a4.5 4.5 0 0 0-2.5-4v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z",
  muted: "M4 9v6h4l5 5V4L8 9H4zm12.6 3L19 9.6 17.6 8.2 15.2 10.6 12.8 8.2 11.4 9.6l2.4 2.4-2.4 2.4 1.4 1.4 2.4-2.4 2.4 2.4 1.4-1.4z",
  fullscreen: "M4 4h6v2H6v4H4zm10 0h6v6h-2V6h-4zM4 14h2v4h4v2H4zm14 0h2v6h-6v-2h4z",
  audio: "M12 3a9 9 0 0 0-9 9v6a3 3 0 0 0 3 3h2v-8H5v-1a7 7 0 0 1 14 0v1h-3v8h2a3 3 0 0 0 3-3v-6a9 9 0 0 0-9-9z",
  subtitles: "M4 5h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2zm0 2v10h16V7H4zm2 6h5v2H6zm7 0h5v2h-5zm-7-3h8v2H6zm10 0h2v2h-2z",
  search: "M10 3a7 7 0 1 0 4.2 12.6l4.6 4.6 1.4-1.4-4.6-4.6A7 7 0 0 0 10 3zm0 2a5 5 0 1 1 0 10 5 5 0 0 1 0-10z",
};

export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

export function formatTime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

const CODEC_NAMES = {
  h264: "H.264",
  hevc: "HEVC",
  av1: "AV1",
  vp9: "VP9",
  vp8: "VP8",
  mpeg4: "MPEG-4",
  mpeg2video: "MPEG-2",
  aac: "AAC",
  opus: "Opus",
  mp3: "MP3",
  ac3: "AC-3",
  eac3: "E-AC-3",
  flac: "FLAC",
  vorbis: "Vorbis",
  dts: "DTS",
  truehd: "TrueHD",
  subrip: "SRT",
  ass: "ASS",
  webvtt: "WebVTT",
  mov_text: "MP4 text",
  hdmv_pgs_subtitle: "PGS",
  dvd_subtitle: "VobSub",
  dvb_subtitle: "DVB",
};

export function codecName(codec) {
  return CODEC_NAMES[codec] || String(codec).toUpperCase();
}

export function channelsName(channels) {
  return { 1: "mono", 2: "stereo", 6: "5.1", 8: "7.1" }[channels] || `${channels} ch`;
}

export function qualityName(height) {
  if (height >= 2000) return "4K";
  if (height >= 1400) return "1440p";
  if (height >= 1000) return "1080p";
  if (height >= 700) return "720p";
  return `${height}p`;
}

export function languageName(code) {
  if (!code || code === "und") return null;
  try {
    return new Intl.DisplayNames([navigator.language || "en"], { type: "language" }).of(code) || code;
  } catch {
    return code;
  }
}

export function audioLabel(track, position) {
  const language = languageName(track.language);
  const parts = [language || `Track ${position + 1}`, codecName(track.codec), channelsName(track.channels)];
  return parts.join(" · ");
}

export function relativeTime(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.max(0, Math.round((Date.now() - then) / 1000));
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

// Poster <img>: a plain URL when the API needs no token (the browser caches it), else fetched
// with the Authorization header and shown through a blob: URL.
export function posterUrl(mediaId, width) {
  return `/api/v1/media/${encodeURIComponent(mediaId)}/poster.jpg?w=${width}`;
}

export async function loadPoster(img, mediaId, width) {
  if (storedToken() === null) {
    img.src = posterUrl(mediaId, width);
    return;
  }
  const response = await fetch(posterUrl(mediaId, width), { headers: authHeaders() });
  if (!response.ok) throw new Error(`poster: HTTP ${response.status}`);
  const url = URL.createObjectURL(await response.blob());
  img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
  img.src = url;
}

// The file's extension says more to people than the demuxer's name ("mov" for an .mp4).
export function containerName(item) {
  const dot = item.path.lastIndexOf(".");
  return dot > 0 ? item.path.slice(dot + 1).toUpperCase() : item.container.toUpperCase();
}
