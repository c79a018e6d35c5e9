// The player page: ask the browser what it decodes, create a session with those capabilities,
// play its HLS stream (natively when the browser can, else through the vendored hls.js) and
// end the session when the page goes away.
import {
  ApiError,
  api,
  audioLabel,
  authHeaders,
  channelsName,
  codecName,
  containerName,
  el,
  formatTime,
  icon,
  initChrome,
  qualityName,
  withAuth,
} from "./common.js";

const HLS_TYPE = "application/vnd.apple.mpegurl";
const HLSJS_URL = "/assets/vendor/hls.min.js";
const POLL_MS = 3000;

// Codec names the server understands, each with the MIME types that prove the browser decodes
// it (any one is enough). The server then copies what the output container can carry and the
// client decodes, and encodes the rest.
const VIDEO_PROBES = [
  ["h264", ['video/mp4; codecs="avc1.640028"', 'video/mp4; codecs="avc1.42E01E"']],
  ["hevc", ['video/mp4; codecs="hvc1.1.6.L93.B0"', 'video/mp4; codecs="hev1.1.6.L93.B0"']],
  ["av1", ['video/mp4; codecs="av01.0.05M.08"']],
  ["vp9", ['video/mp4; codecs="vp09.00.10.08"', 'video/webm; codecs="vp9"']],
];
const AUDIO_PROBES = [
  ["aac", ['audio/mp4; codecs="mp4a.40.2"']],
  ["mp3", ["audio/mpeg", 'audio/mp4; codecs="mp4a.69"']],
  ["ac3", ['audio/mp4; codecs="ac-3"']],
  ["eac3", ['audio/mp4; codecs="ec-3"']],
  ["opus", ['audio/mp4; codecs="opus"', 'audio/webm; codecs="opus"']],
  ["flac", ['audio/mp4; codecs="flac"']],
];

const $ = (id) => document.getElementById(id);
const video = $("video");
const player = $("player");
const seek = $("seek");

// Exposed for the browser tests and for curious people in the console.
const state = (window.hlstrioPlayer = {
  item: null,
  session: null,
  engine: null, // "native" | "hlsjs"
  capabilities: null,
  hls: null,
  audio: null,
  ended: false,
  dragging: false,
});

// --- capability detection -------------------------------------------------------------------

function mediaSourceClass() {
  return window.ManagedMediaSource || window.MediaSource || null;
}

function detectCapabilities(engine) {
  // Native HLS decodes what the <video> element decodes; hls.js feeds Media Source Extensions.
  const MediaSourceClass = mediaSourceClass();
  const supports =
    engine === "native"
      ? (type) => video.canPlayType(type) !== ""
      : (type) => Boolean(MediaSourceClass && MediaSourceClass.isTypeSupported(type));
  const pick = (probes) => probes.filter(([, types]) => types.some(supports)).map(([name]) => name);
  return {
    video_codecs: pick(VIDEO_PROBES),
    audio_codecs: pick(AUDIO_PROBES),
    max_height: null,
    max_bitrate: null,
  };
}

function loadHlsJs() {
  if (window.Hls) return Promise.resolve(window.Hls);
  return new Promise((resolve, reject) => {
    const script = el("script", { src: HLSJS_URL });
    script.addEventListener("load", () =>
      window.Hls ? resolve(window.Hls) : reject(new Error("the file loaded but defined no player")),
    );
    script.addEventListener("error", () => reject(new Error("the file is missing or failed to load")));
    document.head.append(script);
  });
}

// --- messages over the video ----------------------------------------------------------------

function showMessage(title, text, actions = []) {
  $("message-title").textContent = title;
  $("message-text").replaceChildren(...(Array.isArray(text) ? text : [text]));
  $("message-actions").replaceChildren(...actions);
  $("message").hidden = false;
  $("spinner").hidden = true;
  $("big-play").hidden = true;
  player.dataset.state = "message";
}

function hideMessage() {
  $("message").hidden = true;
}

const backToLibrary = () => el("a", { class: "button", href: "/" }, "Back to library");

// --- the item -------------------------------------------------------------------------------

function renderItem(item) {
  document.title = `${item.title} · hlstrio`;
  $("title").textContent = item.title;
  $("path").textContent = item.path;
  const chips = [formatTime(item.duration)];
  if (item.video) {
    chips.push(`${item.video.width}×${item.video.height} (${qualityName(item.video.height)})`);
    chips.push(`${codecName(item.video.codec)} · ${Math.round(item.video.fps * 100) / 100} fps`);
  }
  item.audio.forEach((track, i) => chips.push(audioLabel(track, i)));
  chips.push(containerName(item));
  $("chips").replaceChildren(...chips.map((text) => el("span", { class: "chip" }, text)));

  seek.max = String(item.duration);
  $("time-total").textContent = formatTime(item.duration);

  if (item.audio.length > 1) {
    const select = $("audio-track");
    select.replaceChildren(
      ...item.audio.map((track, i) => el("option", { value: track.index }, audioLabel(track, i))),
    );
    select.addEventListener("change", () => startPlayback(currentPosition(), Number(select.value)));
    $("audio-select").hidden = false;
  }
}

function renderCapabilities(caps) {
  const names = (list) => (list.length ? list.map(codecName).join(", ") : "nothing");
  $("capabilities").textContent = `${names(caps.video_codecs)} · ${names(caps.audio_codecs)}`;
}

function actionText(action, kind, session) {
  const item = state.item;
  const source = kind === "video" ? item.video : item.audio.find((a) => a.index === session.audio);
  if (!action || !source) return "none";
  const from = codecName(source.codec);
  const detail = kind === "video" ? `${from} ${source.width}×${source.height}` : `${from} ${channelsName(source.channels)}`;
  if (action === "copy") return `Copy · ${detail}`;
  return `Encode → ${kind === "video" ? "H.264" : "AAC"} (from ${detail})`;
}

function renderSession(session) {
  const mode = $("mode");
  mode.textContent = session.mode;
  mode.className = `badge ${session.mode}`;
  mode.dataset.mode = session.mode;
  $("reason").textContent = session.reason || "";
  $("video-action").textContent = actionText(session.video_action, "video", session);
  $("audio-action").textContent = actionText(session.audio_action, "audio", session);
  const parts = [session.state];
  // Newer servers also report how far the client got and whether the encoder runs.
  if ("position" in session && session.position !== null) parts.push(`at ${formatTime(session.position)}`);
  if ("encoder" in session) parts.push(session.encoder ? `encoder ${session.encoder}` : "no encoder");
  $("session-state").textContent = parts.join(" · ");
  player.dataset.sessionId = session.id;
  if (session.audio !== null) $("audio-track").value = String(session.audio);
}

// --- playback -------------------------------------------------------------------------------

function currentPosition() {
  return video.currentTime || Number(seek.value) || 0;
}

function detach() {
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  video.removeAttribute("src");
  video.load();
}

async function startPlayback(start, audio) {
  detach();
  hideMessage();
  state.ended = false;
  state.audio = audio;
  $("spinner").hidden = false;
  const body = { media_id: state.item.id, start: start > 0.5 ? start : 0, capabilities: state.capabilities };
  if (audio !== null && audio !== undefined) body.audio = audio;
  let session;
  try {
    session = await withAuth(() => api("POST", "/api/v1/sessions", body));
  } catch (err) {
    sessionFailed(err);
    return;
  }
  state.session = session;
  renderSession(session);
  if (state.engine === "native") attachNative(session.master_url, body.start);
  else attachHlsJs(session.master_url, body.start);
}

function sessionFailed(err) {
  if (err instanceof ApiError && err.status === 415) {
    showMessage("This title cannot be played", err.message, [backToLibrary()]);
  } else if (err instanceof ApiError && err.status === 429) {
    showMessage("Too many playback sessions", [
      `${err.message}. Stop one on the `,
      el("a", { href: "/sessions" }, "Sessions page"),
      " and try again.",
    ], [retryButton(), backToLibrary()]);
  } else {
    showMessage("Could not start playback", err.message, [retryButton(), backToLibrary()]);
  }
}

function retryButton(label = "Try again") {
  const button = el("button", { class: "button primary", type: "button", id: "restart" }, label);
  button.addEventListener("click", () => startPlayback(currentPosition(), state.audio));
  return button;
}

function attachNative(url, start) {
  video.src = url;
  video.addEventListener(
    "loadedmetadata",
    () => {
      if (start > 0 && Math.abs(video.currentTime - start) > 1) video.currentTime = start;
      autoplay();
    },
    { once: true },
  );
}

function attachHlsJs(url, start) {
  const Hls = window.Hls;
  // The server holds a segment request for up to segment_wait (15 s by default) while a
  // transcode catches up: wait longer than that for the first byte before retrying.
  const hls = new Hls({
    startPosition: start > 0 ? start : -1,
    backBufferLength: 60,
    fragLoadPolicy: {
      default: {
        maxTimeToFirstByteMs: 30000,
        maxLoadTimeMs: 120000,
        timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
        errorRetry: { maxNumRetry: 6, retryDelayMs: 1000, maxRetryDelayMs: 8000 },
      },
    },
  });
  state.hls = hls;
  let recoveredMedia = false;
  hls.on(Hls.Events.MANIFEST_PARSED, () => autoplay());
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recoveredMedia) {
      recoveredMedia = true;
      hls.recoverMediaError();
      return;
    }
    playbackFailed(`${data.type}: ${data.details}`);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
}

function autoplay() {
  video.play().catch((err) => {
    // Autoplay with sound was refused (or interrupted): wait for a click.
    console.info(`autoplay: ${err.name}: ${err.message}`);
    $("spinner").hidden = true;
    $("big-play").hidden = false;
  });
}

async function playbackFailed(detail) {
  if (state.ended || !state.session) return;
  // A stopped or expired session looks like a network error to the player: tell them apart.
  if (await sessionGone()) return sessionEnded();
  showMessage("Playback failed", detail, [retryButton(), backToLibrary()]);
}

async function sessionGone() {
  try {
    await api("GET", `/api/v1/sessions/${state.session.id}`);
    return false;
  } catch (err) {
    return err instanceof ApiError && err.status === 404;
  }
}

function sessionEnded() {
  if (state.ended) return;
  state.ended = true;
  const at = currentPosition();
  detach();
  $("session-state").textContent = "ended";
  showMessage(
    "This playback session has ended",
    "It was stopped (for example from the Sessions page) or sat idle for too long.",
    [retryButton(`Resume from ${formatTime(at)}`), backToLibrary()],
  );
  seek.value = String(at);
  player.dataset.state = "ended";
}

async function pollSession() {
  if (state.session && !state.ended && document.visibilityState === "visible") {
    try {
      const session = await api("GET", `/api/v1/sessions/${state.session.id}`);
      if (session.id === state.session.id) renderSession(session);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && !state.ended) sessionEnded();
    }
  }
  setTimeout(pollSession, POLL_MS);
}

function stopSessionOnLeave() {
  // keepalive lets the request outlive the page; sendBeacon cannot send DELETE or headers.
  if (!state.session || state.ended) return;
  fetch(`/api/v1/sessions/${state.session.id}`, { method: "DELETE", keepalive: true, headers: authHeaders() }).catch(
    () => {},
  );
}

// --- controls -------------------------------------------------------------------------------

function setFill(input, fraction) {
  input.style.setProperty("--fill", `${Math.max(0, Math.min(1, fraction)) * 100}%`);
}

function updateTime() {
  const duration = Number(seek.max) || 0;
  if (!state.dragging) {
    seek.value = String(video.currentTime);
    $("time-current").textContent = formatTime(video.currentTime);
    setFill(seek, duration ? video.currentTime / duration : 0);
  }
  const ranges = video.buffered;
  let end = 0;
  for (let i = 0; i < ranges.length; i++) {
    if (ranges.start(i) <= video.currentTime + 0.5) end = Math.max(end, ranges.end(i));
  }
  $("buffered").style.width = `${duration ? Math.min(1, end / duration) * 100 : 0}%`;
}

function togglePlay() {
  if (!state.session || state.ended) return;
  if (video.paused) autoplay();
  else video.pause();
}

function updatePlayIcons() {
  const playing = !video.paused;
  $("play").replaceChildren(icon(playing ? "pause" : "play"));
  $("play").setAttribute("aria-label", playing ? "Pause" : "Play");
  $("big-play").hidden = playing || state.ended || !$("message").hidden || !state.session;
  player.dataset.state = state.ended ? "ended" : playing ? "playing" : "paused";
}

function updateVolumeIcon() {
  const muted = video.muted || video.volume === 0;
  $("mute").replaceChildren(icon(muted ? "muted" : "volume"));
  $("volume").value = String(video.muted ? 0 : video.volume);
  setFill($("volume"), video.muted ? 0 : video.volume);
}

function wireControls() {
  $("big-play").append(icon("play"));
  $("fullscreen").append(icon("fullscreen"));
  updatePlayIcons();
  updateVolumeIcon();

  $("play").addEventListener("click", togglePlay);
  $("big-play").addEventListener("click", togglePlay);
  video.addEventListener("click", togglePlay);
  video.addEventListener("play", updatePlayIcons);
  video.addEventListener("pause", updatePlayIcons);
  video.addEventListener("timeupdate", updateTime);
  video.addEventListener("progress", updateTime);
  video.addEventListener("waiting", () => ($("spinner").hidden = false));
  video.addEventListener("seeking", () => ($("spinner").hidden = false));
  for (const ready of ["playing", "seeked", "canplay"]) {
    video.addEventListener(ready, () => ($("spinner").hidden = video.paused || video.readyState >= 3));
  }
  video.addEventListener("playing", () => {
    $("spinner").hidden = true;
    $("big-play").hidden = true;
  });
  video.addEventListener("error", () => {
    // With hls.js the element's own errors are reported through hls.js.
    if (state.engine === "native" && video.error && video.getAttribute("src")) {
      playbackFailed(video.error.message || `media error ${video.error.code}`);
    }
  });
  video.addEventListener("volumechange", updateVolumeIcon);

  seek.addEventListener("input", () => {
    state.dragging = true;
    $("time-current").textContent = formatTime(Number(seek.value));
    setFill(seek, Number(seek.value) / (Number(seek.max) || 1));
  });
  seek.addEventListener("change", () => {
    state.dragging = false;
    if (state.session && !state.ended) video.currentTime = Number(seek.value);
  });

  $("mute").addEventListener("click", () => (video.muted = !video.muted));
  $("volume").addEventListener("input", () => {
    video.volume = Number($("volume").value);
    video.muted = video.volume === 0;
  });
  $("fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else player.requestFullscreen().catch(() => {});
  });

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea, button") || event.ctrlKey || event.metaKey) return;
    const step = { ArrowLeft: -5, ArrowRight: 5, j: -10, l: 10 }[event.key];
    if (event.key === " " || event.key === "k") togglePlay();
    else if (step) video.currentTime = Math.max(0, Math.min(Number(seek.max), video.currentTime + step));
    else if (event.key === "m") video.muted = !video.muted;
    else if (event.key === "f") $("fullscreen").click();
    else return;
    event.preventDefault();
  });

  // Hide the controls and cursor while playing and the mouse is still.
  let idleTimer = 0;
  const wake = () => {
    player.classList.remove("idle-cursor");
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (!video.paused) player.classList.add("idle-cursor");
    }, 2500);
  };
  player.addEventListener("pointermove", wake);
  video.addEventListener("pause", wake);
}

// --- start ----------------------------------------------------------------------------------

async function chooseEngine(requested) {
  const nativeHls = video.canPlayType(HLS_TYPE) !== "";
  if (requested === "native" && !nativeHls) {
    throw new Error("This browser has no native HLS playback (remove ?engine=native to use hls.js).");
  }
  if (requested !== "hlsjs" && nativeHls) return "native";
  let Hls;
  try {
    Hls = await loadHlsJs();
  } catch (err) {
    const why = requested === "hlsjs" ? "hls.js was requested (?engine=hlsjs)" : "this browser has no native HLS playback";
    throw new Error(
      `The hls.js player (${HLSJS_URL}) could not be loaded: ${err.message}. It is needed because ${why}. ` +
        "It ships with hlstrio: reinstalling hlstrio restores it.",
    );
  }
  if (!Hls.isSupported()) {
    throw new Error("This browser has neither native HLS playback nor Media Source Extensions, so it cannot play HLS.");
  }
  return "hlsjs";
}

async function main() {
  initChrome("library");
  wireControls();
  const mediaId = decodeURIComponent(location.pathname.split("/")[2] || "");
  const params = new URLSearchParams(location.search);
  const start = Math.max(0, Number(params.get("t")) || 0);

  window.addEventListener("pagehide", stopSessionOnLeave);
  // Back/forward cache: the session was ended on pagehide, so start over.
  window.addEventListener("pageshow", (event) => event.persisted && location.reload());

  try {
    state.item = await withAuth(() => api("GET", `/api/v1/media/${encodeURIComponent(mediaId)}`));
  } catch (err) {
    $("title").textContent = "Not found";
    const notFound = err instanceof ApiError && err.status === 404;
    showMessage(
      notFound ? "Not in the library" : "Could not load this title",
      notFound ? "No media has this id: it may have been removed or renamed." : err.message,
      [backToLibrary()],
    );
    return;
  }
  renderItem(state.item);

  try {
    state.engine = await chooseEngine(params.get("engine") || "auto");
  } catch (err) {
    $("engine").textContent = "unavailable";
    showMessage("This browser cannot play here", err.message, [backToLibrary()]);
    player.dataset.state = "no-engine";
    return;
  }
  $("engine").textContent = state.engine === "native" ? "Native HLS (browser)" : `hls.js ${window.Hls.version}`;
  player.dataset.engine = state.engine;
  state.capabilities = detectCapabilities(state.engine);
  renderCapabilities(state.capabilities);

  await startPlayback(start, null);
  setTimeout(pollSession, POLL_MS);
}

main();
