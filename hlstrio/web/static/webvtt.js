// Just enough WebVTT and HLS playlist reading for what the page loads itself: subtitle segments
// when the native engine shows none (Chromium's native HLS exposes no subtitle tracks), and the
// scrub thumbnails track. Browsers parse WebVTT only for <track src>, which cannot be fed
// segment by segment, hence this.

const TIMING = /^(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})[ \t]+-->[ \t]+(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})/;

function seconds(hours, minutes, secs, millis) {
  return Number(hours || 0) * 3600 + Number(minutes) * 60 + Number(secs) + Number(millis) / 1000;
}

// Cues of a WebVTT file as {start, end, text} (times in the file's own LOCAL seconds). Header,
// NOTE/STYLE/REGION blocks and cue settings are skipped; the payload is kept as written.
export function parseCues(text) {
  const blocks = text.replace(/\r\n?/g, "\n").split(/\n{2,}/);
  if (!blocks.length || !blocks[0].startsWith("WEBVTT")) return [];
  const cues = [];
  for (const block of blocks.slice(1)) {
    const lines = block.replace(/\n+$/, "").split("\n");
    const at = lines.findIndex((line) => line.includes("-->"));
    if (at < 0 || at > 1) continue; // NOTE, STYLE, REGION, or junk
    const match = TIMING.exec(lines[at].trim());
    if (!match) continue;
    cues.push({
      start: seconds(match[1], match[2], match[3], match[4]),
      end: seconds(match[5], match[6], match[7], match[8]),
      text: lines.slice(at + 1).join("\n"),
    });
  }
  return cues;
}

// The segments of an HLS media playlist as {start, end, url} on the playlist's timeline
// (RFC 8216 4.3.2.1: each EXTINF is its segment's duration), URLs resolved against `base`.
export function parseMediaPlaylist(text, base) {
  const segments = [];
  let duration = null;
  let position = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("#EXTINF:")) {
      duration = Number.parseFloat(line.slice(8));
    } else if (line && !line.startsWith("#") && duration !== null) {
      segments.push({ start: position, end: position + duration, url: new URL(line, base).href });
      position += duration;
      duration = null;
    }
  }
  return segments;
}

// The cue covering `time` in cues sorted by start (binary search: a film has ~700 thumbnails).
export function cueAt(cues, time) {
  let low = 0;
  let high = cues.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (cues[mid].start <= time) low = mid + 1;
    else high = mid - 1;
  }
  const cue = cues[high];
  return cue && time < cue.end ? cue : null;
}
