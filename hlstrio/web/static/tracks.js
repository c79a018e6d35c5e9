// Audio and subtitle renditions: labels, the user's remembered choice, and switching them live
// in whichever engine plays (hls.js `audioTrack`/`subtitleTrack`, native `audioTracks[i].enabled`
// and `textTracks[i].mode`). Subtitles are shown through TextTracks the page owns unless the
// native engine offers its own (Safari): hls.js hands its parsed cues over (CUES_PARSED, with
// renderTextTracksNatively off: hls.js's own <track src="data:..."> elements would break the
// page's media-src policy), and for a native engine that shows none (Chromium) the page loads
// the rendition's WebVTT segments itself, a few ahead of the play position.
import { channelsName, codecName, languageName } from "./common.js";
import { parseCues, parseMediaPlaylist } from "./webvtt.js";

// --- labels ---------------------------------------------------------------------------------

// RFC 6381 codec strings (what a rendition sends) as people know them.
const CODEC_PREFIXES = [
  ["avc1", "H.264"],
  ["avc3", "H.264"],
  ["hvc1", "HEVC"],
  ["hev1", "HEVC"],
  ["av01", "AV1"],
  ["vp09", "VP9"],
  ["mp4a.40.5", "HE-AAC"],
  ["mp4a.40.29", "HE-AAC v2"],
  ["mp4a.40.34", "MP3"],
  ["mp4a.6b", "MP3"],
  ["mp4a", "AAC"],
  ["ac-3", "AC-3"],
  ["ec-3", "E-AC-3"],
  ["opus", "Opus"],
  ["flac", "FLAC"],
  ["wvtt", "WebVTT"],
];

export function renditionCodecName(codec) {
  if (!codec) return "";
  const lower = codec.toLowerCase();
  const known = CODEC_PREFIXES.find(([prefix]) => lower.startsWith(prefix));
  return known ? known[1] : codecName(codec);
}

const FORCED_SUFFIX = /\s*\((forced|forcé)\)\s*$/i;

// {title, detail, forced} of an audio or subtitle rendition: the server's NAME first (from the
// track's title or language), then what NAME leaves out.
export function renditionLabel(rendition) {
  const language = languageName(rendition.language);
  let title = rendition.name || language || rendition.id;
  if (rendition.forced) title = title.replace(FORCED_SUFFIX, "");
  const detail = [];
  if (language && !title.toLowerCase().includes(language.toLowerCase())) detail.push(language);
  detail.push(renditionCodecName(rendition.codec));
  if (rendition.type === "audio" && rendition.channels) detail.push(channelsName(rendition.channels));
  return { title, detail: detail.filter(Boolean).join(" · "), forced: Boolean(rendition.forced) };
}

export function subtitleLabel(track) {
  // A bitmap track of the file (burn-in only): not a rendition, so from the media item.
  return track.title || languageName(track.language) || `Subtitle ${track.index}`;
}

// --- remembered choices -----------------------------------------------------------------------

// Per file: the exact track picked (a stream index, a sidecar id, "off"). Across files: the
// language, so the French track of the next film plays too.
const GLOBAL_KEY = "hlstrio.tracks";
const mediaKey = (mediaId) => `hlstrio.tracks.${mediaId}`;

function readJson(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "{}") || {};
  } catch {
    return {};
  }
}

export function savedChoice(mediaId) {
  return { global: readJson(GLOBAL_KEY), media: readJson(mediaKey(mediaId)) };
}

export function saveChoice(mediaId, change) {
  try {
    const media = { ...readJson(mediaKey(mediaId)), ...change.media };
    const global = { ...readJson(GLOBAL_KEY), ...change.global };
    localStorage.setItem(mediaKey(mediaId), JSON.stringify(media));
    localStorage.setItem(GLOBAL_KEY, JSON.stringify(global));
  } catch {
    // storage full or disabled: the choice holds for this page only
  }
}

const baseLanguage = (tag) => (tag || "").toLowerCase().split("-")[0];

// What the session request asks for as default (`audio`, `subtitle`), from what was chosen
// before, checked against this file's tracks (an unknown one would be a 400).
export function requestedTracks(item, saved) {
  const result = { audio: null, subtitle: null };
  const audio = item.audio || [];
  if (audio.some((track) => track.index === saved.media.audio)) {
    result.audio = saved.media.audio;
  } else if (saved.global.audio) {
    const match = audio.find((track) => baseLanguage(track.language) === saved.global.audio);
    if (match) result.audio = match.index;
  }
  const subtitles = (item.subtitles || []).filter((track) => track.text);
  const asRequest = (track) => (track.sidecar ? track.id : track.index);
  const exact = subtitles.find((track) => track.id === saved.media.subtitle);
  if (exact) {
    result.subtitle = asRequest(exact);
  } else if (saved.media.subtitle !== "off" && saved.global.subtitle && saved.global.subtitle !== "off") {
    const language = subtitles.filter((track) => baseLanguage(track.language) === saved.global.subtitle);
    const match = language.find((track) => !track.forced) || language[0];
    if (match) result.subtitle = asRequest(match);
  }
  return result;
}

// The subtitle the page should show at start: "off" when that was the last choice, else the
// session's DEFAULT=YES rendition (which the request above picked), else none.
export function initialSubtitle(session, saved) {
  const subtitles = renditionsOf(session, "subtitles");
  const off = saved.media.subtitle === "off" || (saved.media.subtitle === undefined && saved.global.subtitle === "off");
  if (off) return null;
  const chosen = subtitles.find((r) => r.default);
  return chosen ? chosen.id : null;
}

export function renditionsOf(session, type) {
  return (session.renditions || []).filter((r) => r.type === type);
}

// The rendition id in a rendition URL: /hls/{session}/{id}/index.m3u8 ("v" at the root).
export function renditionIdOf(url) {
  const parts = new URL(url, location.href).pathname.split("/");
  return parts.length >= 5 ? parts[parts.length - 2] : "v";
}

// --- engines --------------------------------------------------------------------------------

// One audio rendition per source track: the engine plays one group (by codec); where it does not
// say which, the group listed first (the server lists the stereo AAC group first).
function audioByStream(session, group) {
  const seen = new Map();
  for (const r of renditionsOf(session, "audio")) {
    const key = r.stream ?? r.id;
    if (!seen.has(key) || (group && r.group === group && seen.get(key).group !== group)) seen.set(key, r);
  }
  return [...seen.values()];
}

// hls.js: its lists are the renditions of the playing variant's groups, in playlist order.
export class HlsJsEngine {
  constructor(hls, session) {
    this.hls = hls;
    this.session = session;
    this.name = "hlsjs";
  }

  canSwitchAudio() {
    return true;
  }

  audioChoices() {
    const tracks = this.hls.audioTracks || [];
    if (!tracks.length) return audioByStream(this.session, null);
    const byId = new Map(renditionsOf(this.session, "audio").map((r) => [r.id, r]));
    return tracks.map((track) => byId.get(renditionIdOf(track.url))).filter(Boolean);
  }

  currentAudio() {
    const track = (this.hls.audioTracks || [])[this.hls.audioTrack];
    return track ? renditionIdOf(track.url) : null;
  }

  setAudio(id) {
    const index = (this.hls.audioTracks || []).findIndex((track) => renditionIdOf(track.url) === id);
    if (index < 0) return false;
    this.hls.audioTrack = index;
    return true;
  }

  setSubtitleSource(id) {
    const index = id === null ? -1 : (this.hls.subtitleTracks || []).findIndex((t) => renditionIdOf(t.url) === id);
    this.hls.subtitleTrack = index;
  }
}

// Native HLS: `audioTracks` where the browser exposes it (Safari; Chromium behind
// --enable-experimental-web-platform-features), matched to renditions by NAME and LANGUAGE.
export class NativeEngine {
  constructor(video, session) {
    this.video = video;
    this.session = session;
    this.name = "native";
  }

  tracks() {
    return this.video.audioTracks ? [...this.video.audioTracks] : [];
  }

  canSwitchAudio() {
    return Boolean(this.video.audioTracks);
  }

  matchAudio(track) {
    const candidates = renditionsOf(this.session, "audio").filter(
      (r) => r.name === track.label && (!track.language || !r.language || baseLanguage(track.language) === baseLanguage(r.language)),
    );
    return candidates[0] || null;
  }

  audioChoices() {
    const tracks = this.tracks();
    if (!tracks.length) return audioByStream(this.session, null);
    return tracks.map((track) => this.matchAudio(track)).filter(Boolean);
  }

  currentAudio() {
    const track = this.tracks().find((t) => t.enabled);
    const rendition = track && this.matchAudio(track);
    return rendition ? rendition.id : null;
  }

  setAudio(id) {
    const tracks = this.tracks();
    const index = tracks.findIndex((track) => (this.matchAudio(track) || {}).id === id);
    if (index < 0) return false;
    // Enable the new one first: a moment with no enabled track would mute the element.
    tracks[index].enabled = true;
    tracks.forEach((track, i) => i !== index && (track.enabled = false));
    return true;
  }

  setSubtitleSource() {
    // The page loads segments itself (SubtitleDisplay), or the engine's own tracks show.
  }
}

// --- subtitles on screen ----------------------------------------------------------------------

const TEXT_KINDS = new Set(["subtitles", "captions", "forced"]);
const LOAD_AHEAD_SECONDS = 30;
const CUE_LINE = -3; // third line from the bottom
const cueKey = (cue) => `${cue.startTime.toFixed(3)}|${cue.endTime.toFixed(3)}|${cue.text}`;

// The TextTracks subtitles show in. With hls.js, cues come from CUES_PARSED; with a native engine,
// from its own tracks where it has them (Safari), else from segments loaded here (Chromium).
export class SubtitleDisplay {
  constructor(video) {
    this.video = video;
    this.own = new Map(); // rendition id -> {track, keys}
    this.session = null;
    this.engine = null; // "native" | "hlsjs"
    this.shown = null; // rendition id
    this.loader = null;
    video.addEventListener("timeupdate", () => this.loadAround());
    video.addEventListener("seeking", () => this.loadAround());
    // Safari adds its own tracks once the playlist is read: switch over to them.
    video.textTracks.addEventListener("addtrack", () => this.engine === "native" && this.apply());
  }

  attach(session, engine) {
    this.session = session;
    this.engine = engine;
    this.loader = null;
    this.apply();
  }

  ownTrack(rendition) {
    let entry = this.own.get(rendition.id);
    if (!entry) {
      const { title } = renditionLabel(rendition);
      const track = this.video.addTextTrack("subtitles", title, rendition.language || "");
      track.mode = "disabled";
      entry = { track, keys: new Set() };
      this.own.set(rendition.id, entry);
    }
    return entry;
  }

  ownTracks() {
    return new Set([...this.own.values()].map((entry) => entry.track));
  }

  // The native engine's own subtitle tracks (Safari), matched by label.
  engineTrack(rendition) {
    const own = this.ownTracks();
    const title = rendition.name;
    return [...this.video.textTracks].find((t) => !own.has(t) && TEXT_KINDS.has(t.kind) && t.label === title) || null;
  }

  hasEngineTracks() {
    const own = this.ownTracks();
    return [...this.video.textTracks].some((t) => !own.has(t) && TEXT_KINDS.has(t.kind));
  }

  show(id) {
    this.shown = id;
    this.apply();
  }

  apply() {
    if (!this.session) return;
    const renditions = renditionsOf(this.session, "subtitles");
    const useEngine = this.engine === "native" && this.hasEngineTracks();
    for (const rendition of renditions) {
      const on = rendition.id === this.shown;
      const engine = this.engineTrack(rendition);
      if (engine) engine.mode = useEngine && on ? "showing" : "disabled";
      if (!useEngine || this.own.has(rendition.id) || on) {
        const { track } = this.ownTrack(rendition);
        track.mode = !useEngine && on ? "showing" : "disabled";
      }
    }
    if (!useEngine && this.engine === "native") this.loadAround();
  }

  // The TextTrack showing the chosen subtitle now (for the tests and the info panel).
  activeTrack() {
    if (this.shown === null) return null;
    const rendition = renditionsOf(this.session, "subtitles").find((r) => r.id === this.shown);
    if (!rendition) return null;
    return (this.engine === "native" && this.engineTrack(rendition)) || this.ownTrack(rendition).track;
  }

  addCues(id, cues) {
    const rendition = renditionsOf(this.session, "subtitles").find((r) => r.id === id);
    if (!rendition) return;
    const entry = this.ownTrack(rendition);
    for (const cue of cues) {
      const key = cueKey(cue);
      if (entry.keys.has(key)) continue; // hls.js hands segments over again after a seek
      entry.keys.add(key);
      // Above the control bar, which overlays the bottom of the picture; cues the file
      // positions itself keep their place.
      if (cue.line === "auto") cue.line = CUE_LINE;
      entry.track.addCue(cue);
    }
  }

  // Native engine without subtitle tracks: fetch the shown rendition's segments from the play
  // position to LOAD_AHEAD_SECONDS ahead. Cue times are the rendition's LOCAL times, which the
  // server maps to the video's first frame (X-TIMESTAMP-MAP), the start of the timeline here.
  async loadAround() {
    if (this.engine !== "native" || this.shown === null || this.hasEngineTracks()) return;
    const id = this.shown;
    const base = new URL(this.session.master_url, location.href);
    if (!this.loader || this.loader.id !== id || this.loader.session !== this.session.id) {
      const url = new URL(`${id}/index.m3u8`, base).href;
      this.loader = { id, session: this.session.id, segments: null, loading: new Set(), done: new Set() };
      const loader = this.loader;
      try {
        const response = await fetch(url);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        loader.segments = parseMediaPlaylist(await response.text(), url);
      } catch (err) {
        console.info(`subtitles ${id}: ${err.message}`);
        loader.segments = [];
      }
    }
    const loader = this.loader;
    if (!loader.segments) return; // the playlist is on its way
    const now = this.video.currentTime;
    for (const segment of loader.segments) {
      if (segment.end < now || segment.start > now + LOAD_AHEAD_SECONDS) continue;
      if (loader.done.has(segment.url) || loader.loading.has(segment.url)) continue;
      loader.loading.add(segment.url);
      fetch(segment.url)
        .then((response) => (response.ok ? response.text() : Promise.reject(new Error(`HTTP ${response.status}`))))
        .then((text) => {
          loader.done.add(segment.url);
          const cues = parseCues(text).map((cue) => new VTTCue(cue.start, cue.end, cue.text));
          this.addCues(id, cues);
        })
        .catch((err) => console.info(`subtitle segment ${segment.url}: ${err.message}`))
        .finally(() => loader.loading.delete(segment.url));
    }
  }
}
