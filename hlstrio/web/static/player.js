// The player page: ask the browser what it decodes, create a session with those capabilities
// and the user's usual audio/subtitle language, play its HLS stream (natively when the browser
// can, else through the vendored hls.js), switch audio and subtitle renditions live, and end the
// session when the page goes away.
import { detectCapabilities } from "./capabilities.js";
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
import { ScrubThumbnails } from "./thumbs.js";
import {
  HlsJsEngine,
  NativeEngine,
  SubtitleDisplay,
  initialSubtitle,
  renditionCodecName,
  renditionIdOf,
  renditionLabel,
  renditionsOf,
  requestedTracks,
  saveChoice,
  savedChoice,
  subtitleLabel,
} from "./tracks.js";

const HLS_TYPE = "application/vnd.apple.mpegurl";
const HLSJS_URL = "/assets/vendor/hls.min.js";
const POLL_MS = 3000;

const $ = (id) => document.getElementById(id);
const video = $("video");
const player = $("player");
const seek = $("seek");

// Exposed for the browser tests and for curious people in the console.
const state = (window.hlstrioPlayer = {
  item: null,
  session: null,
  engine: null, // "native" | "hlsjs"
  engineWhy: "", // why this engine, when it is not the obvious one
  capabilities: null,
  detected: null,
  hls: null,
  tracks: null, // HlsJsEngine | NativeEngine of the playing session
  subtitles: new SubtitleDisplay(video),
  subtitleChoice: undefined, // rendition id or null (off) once the user picked one on this page
  burnIn: null, // stream index of the bitmap subtitle burnt into this session
  thumbs: null,
  ended: false,
  dragging: false,
});

// --- capabilities ---------------------------------------------------------------------------

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

// --- the item and the decision --------------------------------------------------------------

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
  const subtitles = item.subtitles || [];
  if (subtitles.length) chips.push(`${subtitles.length} subtitle${subtitles.length > 1 ? "s" : ""}`);
  chips.push(containerName(item));
  $("chips").replaceChildren(...chips.map((text) => el("span", { class: "chip" }, text)));

  seek.max = String(item.duration);
  $("time-total").textContent = formatTime(item.duration);
}

function renderCapabilities({ capabilities: caps, detected }) {
  const names = (list) => (list.length ? list.map(codecName).join(", ") : "nothing");
  $("capabilities").textContent = `${names(caps.video_codecs)} · ${names(caps.audio_codecs)}`;
  const { channels } = detected;
  const output = channels.output === null ? "output unknown" : `output ${channels.output} ch`;
  const lines = [
    `Segments: ${caps.containers.map((c) => (c === "ts" ? "MPEG-TS" : "fMP4")).join(", ")}`,
    `Video depth: ${caps.max_video_bit_depth}-bit` +
      (detected.tenBit.length ? ` (10-bit ${detected.tenBit.map(codecName).join(", ")})` : ""),
    `HDR: ${caps.hdr ? "yes" : "no"} (display ${detected.hdrDisplay ? "HDR" : "SDR"}, ` +
      `HDR decode ${detected.hdrDecode ? "yes" : "no"})`,
    `Audio: up to ${channelsName(caps.max_audio_channels)} (decodes ${channelsName(channels.decodes)}, ${output})`,
  ];
  $("capabilities-more").replaceChildren(...lines.map((line) => el("span", { class: "line" }, line)));
}

function sourceAudio(stream) {
  return state.item.audio.find((a) => a.index === stream) || null;
}

function videoActionText(session) {
  const source = state.item.video;
  if (!session.video_action || !source) return "none";
  const detail = `${codecName(source.codec)} ${source.width}×${source.height}`;
  if (session.video_action === "copy") return `Copy · ${detail}`;
  return `Encode → H.264 (from ${detail})`;
}

function audioActionText(rendition) {
  if (!rendition) return "none";
  const source = sourceAudio(rendition.stream);
  const codec = renditionCodecName(rendition.codec);
  if (rendition.action === "copy" || !source) {
    return `Copy · ${codec} ${channelsName(rendition.channels || (source && source.channels))}`;
  }
  const from = `${codecName(source.codec)} ${channelsName(source.channels)}`;
  const to = rendition.channels && rendition.channels !== source.channels ? `${codec} ${channelsName(rendition.channels)}` : codec;
  return `Encode → ${to} (from ${from})`;
}

// The audio rendition playing: what the engine reports, else the session's default.
function playingAudio(session) {
  const audio = renditionsOf(session, "audio");
  const id = state.tracks && state.tracks.session === session ? state.tracks.currentAudio() : null;
  return audio.find((r) => r.id === id) || audio.find((r) => r.default) || audio[0] || null;
}

function renderSession(session) {
  const mode = $("mode");
  mode.textContent = session.mode;
  mode.className = `badge ${session.mode}`;
  mode.dataset.mode = session.mode;
  $("reason").textContent = session.reason || "";
  $("video-action").textContent = videoActionText(session);
  const audio = playingAudio(session);
  $("audio-action").textContent = audio ? audioActionText(audio) : session.audio_action ? session.audio_action : "none";
  const parts = [session.state];
  if ("position" in session && session.position !== null) parts.push(`at ${formatTime(session.position)}`);
  if ("encoder" in session) parts.push(session.encoder ? `encoder ${session.encoder}` : "no encoder");
  if (session.container) parts.push(session.container === "fmp4" ? "fMP4" : "MPEG-TS");
  $("session-state").textContent = parts.join(" · ");
  player.dataset.sessionId = session.id;
  renderRenditions(session);
}

// Every rendition the master playlist offers, what is done to it and why; the file's bitmap
// subtitles too (they can only be burnt in, so they are not renditions).
function renderRenditions(session) {
  const playing = playingAudio(session);
  const rows = (session.renditions || []).map((r) => {
    const label = r.type === "video" ? { title: `${renditionCodecName(r.codec)} ${r.width}×${r.height}`, detail: "", forced: false } : renditionLabel(r);
    const active = (r.type === "audio" && playing && r.id === playing.id) || (r.type === "subtitles" && r.id === state.subtitles.shown);
    return renditionRow(r.type, label, r.action, r.reason, { id: r.id, active });
  });
  for (const track of (state.item.subtitles || []).filter((t) => !t.text)) {
    const burnt = state.burnIn === track.index;
    const label = { title: subtitleLabel(track), detail: codecName(track.format), forced: track.forced };
    const why = burnt ? "burnt into the video" : "bitmap: can only be burnt in (pick it in Subtitles)";
    rows.push(renditionRow("bitmap", label, burnt ? "burn-in" : "—", why, { id: track.id, active: burnt }));
  }
  $("renditions").replaceChildren(...rows);
}

function renditionRow(type, label, action, reason, { id, active }) {
  const kind = { video: "Video", audio: "Audio", subtitles: "Subtitles", bitmap: "Subtitles" }[type];
  return el(
    "tr",
    { "data-rendition": id, "data-type": type, "data-active": active ? "true" : null },
    el("td", { class: "kind" }, kind),
    el(
      "td",
      {},
      el("span", { class: "name" }, label.title, label.forced ? el("span", { class: "tag" }, "forced") : null),
      label.detail ? el("span", { class: "sub" }, label.detail) : null,
      reason ? el("span", { class: "sub why" }, reason) : null,
    ),
    el("td", { class: "action" }, el("span", { class: `badge ${action}`, "data-action": action }, action)),
  );
}

// --- audio and subtitle menus ---------------------------------------------------------------

function closeMenus(except = null) {
  for (const name of ["audio", "subtitles"]) {
    if (name === except) continue;
    $(`${name}-menu`).hidden = true;
    $(`${name}-button`).setAttribute("aria-expanded", "false");
  }
  player.classList.toggle("menu-open", except !== null && !$(`${except}-menu`).hidden);
}

function toggleMenu(name) {
  const menu = $(`${name}-menu`);
  const open = menu.hidden;
  closeMenus(name);
  menu.hidden = !open;
  $(`${name}-button`).setAttribute("aria-expanded", String(open));
  player.classList.toggle("menu-open", open);
  if (open) (menu.querySelector('[aria-checked="true"]') || menu.querySelector("button"))?.focus();
}

function menuItem({ key, title, detail, forced, checked, onChoose }) {
  const button = el(
    "button",
    { type: "button", role: "menuitemradio", "aria-checked": String(checked), "data-key": key, class: "menu-item" },
    el("span", { class: "check", "aria-hidden": "true" }),
    el(
      "span",
      { class: "text" },
      el("span", { class: "title" }, title, forced ? el("span", { class: "tag" }, "forced") : null),
      detail ? el("span", { class: "detail" }, detail) : null,
    ),
  );
  button.addEventListener("click", () => {
    closeMenus();
    onChoose();
  });
  return button;
}

function renderMenus() {
  const session = state.session;
  if (!session) return;
  // Audio: the renditions of the group the engine plays, one per source track.
  const choices = state.tracks ? state.tracks.audioChoices() : [];
  const playing = playingAudio(session);
  $("audio-menu").replaceChildren(
    el("div", { class: "menu-head" }, "Audio"),
    ...choices.map((r) => {
      const { title, detail } = renditionLabel(r);
      return menuItem({ key: r.id, title, detail, checked: playing && r.id === playing.id, onChoose: () => chooseAudio(r) });
    }),
  );
  $("audio-button").hidden = choices.length < 2;

  const subtitles = renditionsOf(session, "subtitles");
  const bitmaps = (state.item.subtitles || []).filter((t) => !t.text);
  const shown = state.burnIn === null ? state.subtitles.shown : null;
  const items = [
    el("div", { class: "menu-head" }, "Subtitles"),
    menuItem({ key: "off", title: "Off", checked: shown === null && state.burnIn === null, onChoose: () => chooseSubtitle(null) }),
    ...subtitles.map((r) => {
      const { title, detail, forced } = renditionLabel(r);
      return menuItem({ key: r.id, title, detail, forced, checked: r.id === shown, onChoose: () => chooseSubtitle(r) });
    }),
  ];
  if (bitmaps.length) {
    items.push(el("div", { class: "menu-head sub" }, "Burnt into the picture (restarts playback)"));
    for (const track of bitmaps) {
      items.push(
        menuItem({
          key: track.id,
          title: subtitleLabel(track),
          detail: `${codecName(track.format)} · bitmap`,
          forced: track.forced,
          checked: state.burnIn === track.index,
          onChoose: () => chooseBurnIn(track),
        }),
      );
    }
  }
  $("subtitles-menu").replaceChildren(...items);
  $("subtitles-button").hidden = subtitles.length + bitmaps.length === 0;
  $("subtitles-button").classList.toggle("on", shown !== null || state.burnIn !== null);
  renderSession(session);
}

const languageOf = (r) => (r && r.language ? r.language.toLowerCase().split("-")[0] : undefined);

function chooseAudio(rendition) {
  saveChoice(state.item.id, { media: { audio: rendition.stream }, global: { audio: languageOf(rendition) } });
  if (state.tracks && state.tracks.canSwitchAudio() && state.tracks.setAudio(rendition.id)) {
    player.dataset.audio = rendition.id;
    renderMenus();
    return;
  }
  // This engine cannot switch (native HLS without audioTracks): a session with it as default.
  startPlayback(currentPosition(), { audio: rendition.stream, subtitle: subtitleRequest(state.subtitles.shown) });
}

// A subtitle rendition as the session request names it: a stream index, or a sidecar's id.
function subtitleRequest(id) {
  if (id === null || id === undefined) return null;
  const track = (state.item.subtitles || []).find((t) => t.id === id);
  return track ? (track.sidecar ? track.id : track.index) : null;
}

function chooseSubtitle(rendition) {
  const id = rendition ? rendition.id : null;
  state.subtitleChoice = id;
  saveChoice(state.item.id, {
    media: { subtitle: id === null ? "off" : id },
    global: { subtitle: id === null ? "off" : languageOf(rendition) },
  });
  if (state.burnIn !== null) {
    // Leaving a burnt-in subtitle needs a session without it.
    startPlayback(currentPosition(), { audio: currentAudioStream(), subtitle: subtitleRequest(id) });
    return;
  }
  showSubtitle(id);
}

function chooseBurnIn(track) {
  if (state.burnIn === track.index) return;
  startPlayback(currentPosition(), { audio: currentAudioStream(), subtitle: track.index, burnIn: track.index });
}

function currentAudioStream() {
  const playing = state.session && playingAudio(state.session);
  return playing ? playing.stream : null;
}

function showSubtitle(id) {
  state.subtitles.show(id);
  if (state.tracks) state.tracks.setSubtitleSource(id);
  player.dataset.subtitle = id === null ? "off" : id;
  renderMenus();
}

// The engine knows its tracks: apply the page's subtitle choice and show the menus.
function tracksReady() {
  const session = state.session;
  state.subtitles.attach(session, state.engine);
  const saved = savedChoice(state.item.id);
  const id = state.burnIn !== null ? null : state.subtitleChoice !== undefined ? state.subtitleChoice : initialSubtitle(session, saved);
  const exists = renditionsOf(session, "subtitles").some((r) => r.id === id);
  showSubtitle(exists ? id : null);
  player.dataset.tracks = "ready";
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
  state.tracks = null;
  player.dataset.tracks = "";
  video.removeAttribute("src");
  video.load();
}

async function startPlayback(start, request = {}) {
  detach();
  hideMessage();
  closeMenus();
  state.ended = false;
  state.request = request;
  $("spinner").hidden = false;
  const body = { media_id: state.item.id, start: start > 0.5 ? start : 0, capabilities: state.capabilities };
  if (request.audio !== null && request.audio !== undefined) body.audio = request.audio;
  if (request.subtitle !== null && request.subtitle !== undefined) body.subtitle = request.subtitle;
  let session;
  try {
    session = await withAuth(() => api("POST", "/api/v1/sessions", body));
  } catch (err) {
    sessionFailed(err);
    return;
  }
  state.burnIn = request.burnIn ?? null;
  state.session = session;
  renderSession(session);
  renderMenus();
  state.thumbs.load(new URL("thumbs.vtt", new URL(session.master_url, location.href)).href);
  if (state.engine === "native") attachNative(session, body.start);
  else attachHlsJs(session, body.start);
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
  button.addEventListener("click", () => startPlayback(currentPosition(), state.request || {}));
  return button;
}

function attachNative(session, start) {
  video.src = session.master_url;
  video.addEventListener(
    "loadedmetadata",
    () => {
      if (start > 0 && Math.abs(video.currentTime - start) > 1) video.currentTime = start;
      state.tracks = new NativeEngine(video, session);
      tracksReady();
      autoplay();
    },
    { once: true },
  );
}

function attachHlsJs(session, start) {
  const Hls = window.Hls;
  // The server holds a segment request for up to segment_wait (15 s by default) while a
  // transcode catches up: wait longer than that for the first byte before retrying.
  const hls = new Hls({
    startPosition: start > 0 ? start : -1,
    backBufferLength: 60,
    // Cues come to the page (CUES_PARSED), which shows them in its own TextTracks.
    renderTextTracksNatively: false,
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
  state.tracks = new HlsJsEngine(hls, session);
  let recoveredMedia = false;
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    tracksReady();
    autoplay();
  });
  hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, () => renderMenus());
  hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
    // hls.js picks the DEFAULT=YES track on its own; the page's choice wins.
    if (state.tracks && state.tracks.hls === hls) state.tracks.setSubtitleSource(state.subtitles.shown);
  });
  hls.on(Hls.Events.CUES_PARSED, (_event, data) => {
    if (data.type === "subtitles" && data.subtitleTrack) state.subtitles.addCues(renditionIdOf(data.subtitleTrack.url), data.cues);
  });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recoveredMedia) {
      recoveredMedia = true;
      hls.recoverMediaError();
      return;
    }
    playbackFailed(`${data.type}: ${data.details}`);
  });
  hls.loadSource(session.master_url);
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
      if (session.id === state.session.id) {
        // Keep the object the engine adaptors hold: only the live fields change.
        Object.assign(state.session, session);
        renderSession(state.session);
      }
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
  $("audio-button").append(icon("audio"));
  $("subtitles-button").append(icon("subtitles"));
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
  if (video.audioTracks) video.audioTracks.addEventListener("change", () => renderMenus());

  seek.addEventListener("input", () => {
    state.dragging = true;
    $("time-current").textContent = formatTime(Number(seek.value));
    setFill(seek, Number(seek.value) / (Number(seek.max) || 1));
  });
  seek.addEventListener("change", () => {
    state.dragging = false;
    if (state.session && !state.ended) video.currentTime = Number(seek.value);
  });
  state.thumbs = new ScrubThumbnails({
    wrap: $("seek-wrap"),
    seek,
    box: $("scrub-preview"),
    image: $("scrub-image"),
    label: $("scrub-time"),
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
  for (const name of ["audio", "subtitles"]) {
    $(`${name}-button`).addEventListener("click", (event) => {
      event.stopPropagation();
      toggleMenu(name);
    });
  }
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".menu, .menu-button")) closeMenus();
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") return closeMenus();
    if (event.target.closest("input, select, textarea, button") || event.ctrlKey || event.metaKey) return;
    const step = { ArrowLeft: -5, ArrowRight: 5, j: -10, l: 10 }[event.key];
    if (event.key === " " || event.key === "k") togglePlay();
    else if (step) video.currentTime = Math.max(0, Math.min(Number(seek.max), video.currentTime + step));
    else if (event.key === "m") video.muted = !video.muted;
    else if (event.key === "f") $("fullscreen").click();
    else return;
    event.preventDefault();
  });

  // Hide the controls and cursor while playing and the mouse is still (not while a menu is open).
  let idleTimer = 0;
  const wake = () => {
    player.classList.remove("idle-cursor");
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (!video.paused && !player.classList.contains("menu-open")) player.classList.add("idle-cursor");
    }, 2500);
  };
  player.addEventListener("pointermove", wake);
  video.addEventListener("pause", wake);
}

// --- start ----------------------------------------------------------------------------------

// Native HLS where the browser has it, unless it would leave the user stuck on one audio track
// (Chromium exposes no audioTracks): then hls.js, which can switch. `?engine=` overrides.
async function chooseEngine(requested, item) {
  const nativeHls = video.canPlayType(HLS_TYPE) !== "";
  const switchesAudio = "audioTracks" in video;
  const manyAudio = item.audio.length > 1;
  if (requested === "native" && !nativeHls) {
    throw new Error("This browser has no native HLS playback (remove ?engine=native to use hls.js).");
  }
  if (requested === "native") {
    const why = manyAudio && !switchesAudio ? "requested (?engine=native); switching audio restarts the session" : "";
    return { engine: "native", why };
  }
  if (requested !== "hlsjs" && nativeHls && (switchesAudio || !manyAudio)) return { engine: "native", why: "" };
  const why =
    requested === "hlsjs"
      ? "requested (?engine=hlsjs)"
      : nativeHls
        ? "native HLS here cannot switch audio tracks"
        : "this browser has no native HLS playback";
  let Hls;
  try {
    Hls = await loadHlsJs();
  } catch (err) {
    if (requested !== "hlsjs" && nativeHls) {
      return { engine: "native", why: `hls.js could not be loaded (${err.message}): switching audio restarts the session` };
    }
    throw new Error(
      `The hls.js player (${HLSJS_URL}) could not be loaded: ${err.message}. It is needed because ${why}. ` +
        "It ships with hlstrio: reinstalling hlstrio restores it.",
    );
  }
  if (!Hls.isSupported()) {
    if (requested !== "hlsjs" && nativeHls) return { engine: "native", why: "" };
    throw new Error("This browser has neither native HLS playback nor Media Source Extensions, so it cannot play HLS.");
  }
  return { engine: "hlsjs", why };
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
    const chosen = await chooseEngine(params.get("engine") || "auto", state.item);
    state.engine = chosen.engine;
    state.engineWhy = chosen.why;
  } catch (err) {
    $("engine").textContent = "unavailable";
    showMessage("This browser cannot play here", err.message, [backToLibrary()]);
    player.dataset.state = "no-engine";
    return;
  }
  $("engine").textContent = state.engine === "native" ? "Native HLS (browser)" : `hls.js ${window.Hls.version}`;
  $("engine-why").textContent = state.engineWhy;
  player.dataset.engine = state.engine;
  const probed = await detectCapabilities(state.engine, video);
  state.capabilities = probed.capabilities;
  state.detected = probed.detected;
  renderCapabilities(probed);

  await startPlayback(start, requestedTracks(state.item, savedChoice(state.item.id)));
  setTimeout(pollSession, POLL_MS);
}

main();
