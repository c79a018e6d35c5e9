// What this browser decodes, asked the way the chosen engine will play: native HLS decodes what
// the <video> element decodes (canPlayType), hls.js feeds Media Source Extensions
// (isTypeSupported). The answers become the session request's `capabilities`; the server copies
// what they allow and encodes the rest, so a wrong "yes" means a black screen and a wrong "no"
// only a needless transcode: when in doubt, say no.

// Codec names the server understands, each with full RFC 6381 strings (profile, level, depth)
// that prove the browser decodes it; any one is enough.
const VIDEO_PROBES = [
  ["h264", ['video/mp4; codecs="avc1.640028"', 'video/mp4; codecs="avc1.42E01E"']],
  ["hevc", ['video/mp4; codecs="hvc1.1.6.L93.B0"', 'video/mp4; codecs="hev1.1.6.L93.B0"']],
  ["av1", ['video/mp4; codecs="av01.0.05M.08"']],
  ["vp9", ['video/mp4; codecs="vp09.00.10.08"', 'video/webm; codecs="vp9"']],
];
// The 10-bit profile of each codec: H.264 High 10, HEVC Main10, AV1 Main 10-bit, VP9 profile 2.
const TEN_BIT_PROBES = {
  h264: ['video/mp4; codecs="avc1.6E0028"'],
  hevc: ['video/mp4; codecs="hvc1.2.4.L153.B0"', 'video/mp4; codecs="hev1.2.4.L153.B0"'],
  av1: ['video/mp4; codecs="av01.0.08M.10"'],
  vp9: ['video/mp4; codecs="vp09.02.10.10"'],
};
// HDR streams with their transfer function in the codec string (VP9 and AV1 carry colour
// primaries 09 = BT.2020, transfer 16 = PQ, matrix 09); HEVC strings cannot say it, so Main10
// stands in for it.
const HDR_PROBES = [
  'video/mp4; codecs="vp09.02.10.10.01.09.16.09.01"',
  'video/mp4; codecs="av01.0.08M.10.0.110.09.16.09.0"',
  'video/mp4; codecs="hvc1.2.4.L153.B0"',
];
const AUDIO_PROBES = [
  ["aac", ['audio/mp4; codecs="mp4a.40.2"']],
  ["mp3", ["audio/mpeg", 'audio/mp4; codecs="mp4a.69"']],
  ["ac3", ['audio/mp4; codecs="ac-3"']],
  ["eac3", ['audio/mp4; codecs="ec-3"']],
  ["opus", ['audio/mp4; codecs="opus"', 'audio/webm; codecs="opus"']],
  ["flac", ['audio/mp4; codecs="flac"']],
];
// fMP4 segments are ISO BMFF: the browser must take video/mp4 with a codec it decodes.
const FMP4_PROBE = 'video/mp4; codecs="avc1.640028"';

export function mediaSourceClass() {
  return window.ManagedMediaSource || window.MediaSource || null;
}

function supportsFor(engine, video) {
  const MediaSourceClass = mediaSourceClass();
  return engine === "native"
    ? (type) => video.canPlayType(type) !== ""
    : (type) => Boolean(MediaSourceClass && MediaSourceClass.isTypeSupported(type));
}

// Channels this browser both decodes and can put out: decodingInfo answers for decoding (it
// says yes to 5.1 on a laptop, then downmixes), the audio output's channel count for the
// speakers. Two unless both say more: a stereo AAC rendition is always offered anyway.
async function audioChannels() {
  const result = { decodes: 2, output: null, max: 2 };
  const capabilities = navigator.mediaCapabilities;
  if (capabilities && capabilities.decodingInfo) {
    for (const channels of [6, 8]) {
      try {
        const info = await capabilities.decodingInfo({
          type: "media-source",
          audio: { contentType: 'audio/mp4; codecs="mp4a.40.2"', channels: String(channels), bitrate: 384000, samplerate: 48000 },
        });
        if (info.supported) result.decodes = channels;
      } catch {
        break;
      }
    }
  }
  const AudioContextClass = window.AudioContext || window.webkitAudioContext;
  if (AudioContextClass) {
    try {
      // A suspended context (no user gesture yet) still reports the output's channel count.
      const context = new AudioContextClass();
      result.output = context.destination.maxChannelCount || null;
      context.close().catch(() => {});
    } catch {
      // no audio output at all
    }
  }
  if (result.output !== null) result.max = Math.max(2, Math.min(result.decodes, result.output));
  return result;
}

// `capabilities` is what the session request carries; `detected` what the page shows.
export async function detectCapabilities(engine, video) {
  const supports = supportsFor(engine, video);
  const pick = (probes) => probes.filter(([, types]) => types.some(supports)).map(([name]) => name);
  const videoCodecs = pick(VIDEO_PROBES);
  const audioCodecs = pick(AUDIO_PROBES);
  // One depth for all codecs (the request has no per-codec depth): 10 only if every codec we
  // claim decodes its 10-bit profile too, else a Main10 file would be copied to a browser that
  // decodes only Main.
  const tenBit = videoCodecs.filter((codec) => (TEN_BIT_PROBES[codec] || []).some(supports));
  const bitDepth = videoCodecs.length && tenBit.length === videoCodecs.length ? 10 : 8;
  const hdrDisplay = window.matchMedia("(dynamic-range: high)").matches;
  const hdrDecode = HDR_PROBES.some(supports);
  const channels = await audioChannels();
  const containers = supports(FMP4_PROBE) ? ["ts", "fmp4"] : ["ts"];
  return {
    capabilities: {
      video_codecs: videoCodecs,
      audio_codecs: audioCodecs,
      max_height: null,
      max_bitrate: null,
      max_audio_channels: channels.max,
      containers,
      max_video_bit_depth: bitDepth,
      hdr: hdrDisplay && hdrDecode,
    },
    detected: { tenBit, hdrDisplay, hdrDecode, channels },
  };
}
