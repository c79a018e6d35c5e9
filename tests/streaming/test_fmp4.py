"""Fragmented MP4 renditions cut on demand: init segments, media segments, real decoders.

The rules under test:
- Apple HLS Authoring Spec 1.5: HEVC MUST be delivered in fMP4, not MPEG-TS (and AV1, VP9,
  Opus, FLAC only exist in HLS as fMP4); 1.10: the sample entry is `hvc1` (never `hev1`) and
  `avc1` (never `avc3`) - parameter sets in the sample description.
- RFC 8216 3.3 (Fragmented MPEG-4): the Media Initialization Section (#EXT-X-MAP, 4.3.2.5,
  version 6+) is an ISO BMFF file with an `ftyp` compatible with `iso6` or higher, then a
  `moov` with a `trak` for every `traf` and an `mvex`; every fMP4 segment has a `tfdt` in each
  `traf`. Segments are cut in any order, so tfdt(k+1) must equal tfdt(k) plus segment k's
  sample durations; each segment starts with a sync sample (RFC 8216 4.3.5.1
  EXT-X-INDEPENDENT-SEGMENTS: decodable without other segments; Apple 7.4).
Media are tiny real files (160x90, 3 s, GOP 12 at 24 fps) made by the bundled ffmpeg, which
then plays the cut segments back as a client.
"""

from __future__ import annotations

import io
import itertools
import random
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlstrio.media import MediaInfo, probe
from hlstrio.streaming._fmp4 import (
    Fmp4Unsupported,
    audio_media_segment,
    decode_timeline,
    init_segment,
    init_segment_for,
    media_segment,
    output_ticks,
    rewrite_nal_units,
    split_annex_b,
    track_timescale,
)
from hlstrio.streaming._mp4box import Sample, codec_string, fragment
from hlstrio.streaming._mpegts import TS_OFFSET
from hlstrio.streaming._remux import cut_video_ts
from hlstrio.streaming._timeline import Segment, Timeline, keyframe_timeline
from tests import mp4parse
from tests.mp4parse import Fragment, Init
from tests.support import make_clips

FPS = 24
SECONDS = 3
GOP = 12
SEGMENT_SECONDS = 1.0  # two GOPs a segment: three segments a clip

_VIDEO = f"-f lavfi -i testsrc2=size=160x90:rate={FPS}"
_X265 = "-c:v libx265 -preset ultrafast -x265-params"
_X265_PARAMS = f"log-level=error:keyint={GOP}:min-keyint={GOP}:scenecut=0"
_X264 = f"-c:v libx264 -preset veryfast -g {GOP} -keyint_min {GOP} -sc_threshold 0"
# HDR10 (Apple 1.5 / Mydia: most HEVC is Main10): the colour tags go on the frames (ffmpeg 9
# drops -color_* output options without setparams), the mastering display and content light
# level on the input (stream side data, as a Matroska Colour element carries them).
_MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
_HDR10_INPUT = f"-mastering_display {_MASTER} -content_light 1000,400"
_HDR10_TAGS = "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc:range=tv"
_HDR10_X265 = "open-gop=0:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"
_HDR10_X265 += f":master-display={_MASTER}:max-cll=1000,400:hdr10=1"
_HLG_VUI = "colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc"


def _tone(hz: int) -> str:
    return f"-f lavfi -i sine=frequency={hz}:sample_rate=48000"


CLIPS: dict[str, str] = {
    # x265 defaults to open GOPs: keyframes are CRAs with leading pictures after them. HLG
    # colour only in the bitstream's VUI: the Matroska Colour element gets the matrix alone.
    "hevc_opus.mkv": f"{_VIDEO} {_tone(330)} {_X265} {_X265_PARAMS}:{_HLG_VUI} -colorspace"
    " bt2020nc -pix_fmt yuv420p -c:a libopus -b:a 48k -ac 2",
    "hevc10_eac3.mkv": f"{_HDR10_INPUT} {_VIDEO} {_tone(550)} -vf {_HDR10_TAGS}"
    f" {_X265} {_X265_PARAMS}:{_HDR10_X265} -pix_fmt yuv420p10le -c:a eac3 -b:a 96k -ac 2",
    "h264_aac.mp4": f"{_VIDEO} {_tone(440)} {_X264} -pix_fmt yuv420p -c:a aac -b:a 64k -ac 2",
    "av1_flac.mkv": f"{_VIDEO} {_tone(660)} -c:v libaom-av1 -usage realtime -cpu-used 8"
    f" -g {GOP} -pix_fmt yuv420p -c:a flac -ac 2",
    "vp9_opus.webm": f"{_VIDEO} {_tone(770)} -c:v libvpx-vp9 -deadline realtime -cpu-used 8"
    f" -g {GOP} -pix_fmt yuv420p -c:a libopus -b:a 48k -ac 2",
    # MPEG-TS: Annex B video, AC-3, ADTS AAC.
    "h264_ac3_aac.ts": f"{_VIDEO} {_tone(440)} {_tone(880)} -map 0:v -map 1:a -map 2:a {_X264}"
    " -pix_fmt yuv420p -c:a:0 ac3 -b:a:0 96k -c:a:1 aac -b:a:1 64k -ac 2",
}


@dataclass(frozen=True)
class Case:
    clip: str
    kind: str  # "video" | "audio"
    nth: int  # among the clip's streams of that kind
    entry: str  # expected sample entry
    config: str  # expected decoder config box
    codecs: str  # expected RFC 6381 string (prefix for video)
    closed_gop: bool = True

    @property
    def id(self) -> str:
        return f"{self.clip}:{self.kind}{self.nth}"


CASES = [
    Case("hevc_opus.mkv", "video", 0, "hvc1", "hvcC", "hvc1.1.6.L30", closed_gop=False),
    Case("hevc10_eac3.mkv", "video", 0, "hvc1", "hvcC", "hvc1.2.4.L30"),
    Case("h264_aac.mp4", "video", 0, "avc1", "avcC", "avc1.64000a"),
    Case("av1_flac.mkv", "video", 0, "av01", "av1C", "av01.0.00M.08"),
    Case("vp9_opus.webm", "video", 0, "vp09", "vpcC", "vp09.00.10.08"),
    Case("h264_ac3_aac.ts", "video", 0, "avc1", "avcC", "avc1.64000a"),
    Case("hevc_opus.mkv", "audio", 0, "Opus", "dOps", "Opus"),
    Case("hevc10_eac3.mkv", "audio", 0, "ec-3", "dec3", "ec-3"),
    Case("h264_aac.mp4", "audio", 0, "mp4a", "esds", "mp4a.40.2"),
    Case("av1_flac.mkv", "audio", 0, "fLaC", "dfLa", "fLaC"),
    Case("vp9_opus.webm", "audio", 0, "Opus", "dOps", "Opus"),
    Case("h264_ac3_aac.ts", "audio", 0, "ac-3", "dac3", "ac-3"),
    Case("h264_ac3_aac.ts", "audio", 1, "mp4a", "esds", "mp4a.40.2"),
]
VIDEO_CASES = [c for c in CASES if c.kind == "video"]
AUDIO_CASES = [c for c in CASES if c.kind == "audio"]


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    return make_clips(tmp_path_factory.mktemp("fmp4"), ffmpeg, CLIPS, SECONDS, timeout=120)


@dataclass
class Cut:
    """One rendition of a clip, cut into every segment in a shuffled order."""

    case: Case
    path: Path
    info: MediaInfo
    stream_index: int
    timeline: Timeline
    init_bytes: bytes
    init: Init
    segments: list[bytes]  # by index
    order: list[int]  # the order they were cut in

    def fragments(self) -> list[Fragment]:
        return [mp4parse.parse_fragment(s, self.init) for s in self.segments]

    def concatenated(self, directory: Path) -> Path:
        out = directory / f"{self.case.id.replace(':', '_')}.mp4"
        out.write_bytes(self.init_bytes + b"".join(self.segments))
        return out


def _stream_index(info: MediaInfo, case: Case) -> int:
    if case.kind == "video":
        assert info.video is not None
        return info.video.index
    return info.audio[case.nth].index


def _timeline(info: MediaInfo) -> Timeline:
    assert info.video_time_base is not None and info.video_end_pts is not None
    return keyframe_timeline(
        info.keyframe_pts, info.video_time_base, info.video_end_pts, SEGMENT_SECONDS
    )


def cut_segment(
    path: Path, case: Case, index: int, timeline: Timeline, stream: int, init: bytes | None
) -> bytes:
    """Segment `index` as the session would cut it (audio: the video segment's time window)."""
    segment = timeline[index]
    if case.kind == "video":
        return media_segment(path, stream, segment, index + 1, init=init)
    last = index == len(timeline) - 1
    end = segment.start + segment.duration if last else timeline[index + 1].start
    return audio_media_segment(
        path, stream, segment.start, end, index + 1, is_first=index == 0, is_last=last, init=init
    )


_cuts: dict[tuple[Path, Case], Cut] = {}


def cut(clips: Path, case: Case) -> Cut:
    key = (clips, case)
    if key not in _cuts:
        path = clips / case.clip
        info = probe(path)
        index = _stream_index(info, case)
        timeline = _timeline(info)
        assert len(timeline) >= 3, timeline
        order = list(range(len(timeline)))
        random.Random(case.id).shuffle(order)
        if order == sorted(order):
            order.reverse()
        data = init_segment(path, index)
        segments: dict[int, bytes] = {}
        for k in order:  # with the init passed in, and without (rebuilt inside the cut)
            segments[k] = cut_segment(path, case, k, timeline, index, data if k % 2 else None)
        _cuts[key] = Cut(
            case,
            path,
            info,
            index,
            timeline,
            data,
            mp4parse.parse_init(data),
            [segments[k] for k in range(len(timeline))],
            order,
        )
    return _cuts[key]


def assert_continuous(fragments: list[Fragment], timescale: int) -> None:
    """RFC 8216 3.3 across independently cut segments: tfdt(k+1) == tfdt(k) + durations(k)."""
    for k, (a, b) in enumerate(itertools.pairwise(fragments)):
        gap = b.base_decode_time - (a.base_decode_time + a.duration)
        assert gap == 0, (
            f"segment {k + 1}: tfdt {b.base_decode_time} but segment {k} ends at "
            f"{a.base_decode_time + a.duration} ({gap / timescale:+.4f} s)"
        )


def source_packets(path: Path, stream_index: int) -> list[tuple[int, bool, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams[stream_index]
        return [
            (p.pts, p.is_keyframe, bytes(p))
            for p in container.demux(stream)
            if p.size and p.pts is not None
        ]


def ffmpeg_frames(ffmpeg: str, path: Path, select: str = "0") -> tuple[list[str], str]:
    """Decode with the ffmpeg CLI: (per-frame hashes in decode output order, warnings)."""
    run = subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-v",
            "warning",
            "-i",
            str(path),
            "-map",
            select,
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    hashes = [
        line.rsplit(",", 1)[1].strip()
        for line in run.stdout.splitlines()
        if line and not line.startswith("#")
    ]
    return hashes, run.stderr.strip()


# --- init segments ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_init_segment_is_one_fragmented_track(clips: Path, case: Case) -> None:
    """RFC 8216 3.3: ftyp compatible with iso6, moov with the trak and mvex/trex, no samples;
    Apple 1.10: hvc1/avc1 sample entries (never hev1/avc3)."""
    c = cut(clips, case)
    init = c.init
    assert "iso6" in [init.major_brand, *init.compatible_brands]
    assert init.track_count == 1 and init.track_id == 1
    assert init.handler == ("vide" if case.kind == "video" else "soun")
    assert init.entry == case.entry and init.entry_count == 1
    assert init.entry not in ("hev1", "avc3")
    assert init.config_type == case.config and init.config
    assert init.sample_table_entries and not any(init.sample_table_entries.values())
    assert not init.has_edit_list  # presentation = decode time + offset, nothing else
    with av.open(str(c.path)) as container:
        assert init.timescale == track_timescale(container.streams[c.stream_index])
    if case.kind == "video":
        assert (init.width, init.height) == (160, 90)
    else:
        assert init.sample_rate == 48000 and init.channels == 2


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.entry == "hvc1"],
    ids=_ids([c for c in CASES if c.entry == "hvc1"]),
)
def test_hvcc_carries_complete_parameter_sets(clips: Path, case: Case) -> None:
    """Apple 1.10 / ISO 14496-15 8.4.1: for hvc1 the VPS, SPS and PPS are all in the hvcC,
    array_completeness = 1, and none is left in the samples."""
    c = cut(clips, case)
    arrays = mp4parse.hvcc_arrays(c.init.config)
    for nal_type in (32, 33, 34):
        complete, units = arrays[nal_type]
        assert complete and units
    size = mp4parse.nal_length_size(c.init)
    for frag, data in zip(c.fragments(), c.segments, strict=True):
        for sample in frag.sample_data(data):
            types = {(u[0] >> 1) & 0x3F for u in mp4parse.nal_units(sample, size)}
            assert not types & {32, 33, 34, 35}  # VPS, SPS, PPS, access unit delimiter


def test_hdr10_colour_and_mastering_metadata_are_kept(clips: Path) -> None:
    """HDR10 HEVC: colr nclx (BT.2020, PQ, BT.2020 NCL), mdcv and clli carried from the source
    (VIDEO-RANGE=PQ renditions; the decoder's colour signalling must survive the copy)."""
    init = cut(clips, CASES[1]).init
    assert init.colour == mp4parse.Colour(primaries=9, transfer=16, matrix=9, full_range=False)
    assert init.mastering == mp4parse.MasteringDisplay(
        ((13250, 34500), (7500, 3000), (34000, 16000)), (15635, 16450), 10_000_000, 1
    )
    assert init.content_light == (1000, 400)
    assert init.config[1] & 0x1F == 2  # general_profile_idc: Main 10


def test_colour_the_container_omits_is_read_from_the_bitstream(clips: Path) -> None:
    """colr nclx must describe the video even when only its SPS does (HLG here): the
    container says "unspecified" for primaries and transfer, the init says BT.2020 / HLG."""
    c = cut(clips, CASES[0])
    with av.open(str(c.path)) as container:
        cc = container.streams.video[0].codec_context
        assert (cc.color_primaries, cc.color_trc) == (2, 2)  # what the container says
    assert c.init.colour == mp4parse.Colour(primaries=9, transfer=18, matrix=9, full_range=False)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_codec_string_from_init(clips: Path, case: Case) -> None:
    """CODECS (RFC 6381) from the config box; for H.264/HEVC it matches the probe's string."""
    c = cut(clips, case)
    value = codec_string(c.init_bytes)
    assert value is not None and value.startswith(case.codecs)
    if case.kind == "video" and case.entry in ("avc1", "hvc1"):
        assert c.info.video is not None
        assert value == c.info.video.hls_codec


# --- media segments ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_segments_cut_in_any_order_are_continuous(clips: Path, case: Case) -> None:
    """RFC 8216 3.3: tfdt in every traf; cut in shuffled order, tfdt(k+1) = tfdt(k) + the
    durations of k; mfhd counts up; every video segment starts with a sync sample."""
    c = cut(clips, case)
    fragments = c.fragments()
    assert [f.sequence_number for f in fragments] == list(range(1, len(fragments) + 1))
    assert all(f.track_id == c.init.track_id for f in fragments)
    assert_continuous(fragments, c.init.timescale)
    if case.kind == "video":
        for frag in fragments:
            assert frag.samples[0].is_sync
            assert all(s.composition_offset >= 0 for s in frag.samples)
    # One clock with MPEG-TS and WebVTT: the first sample shows at source time + 1.4 s.
    with av.open(str(c.path)) as container:
        time_base = container.streams[c.stream_index].time_base
    assert time_base is not None
    first = fragments[0]
    shown = Fraction(first.base_decode_time + first.samples[0].composition_offset, c.init.timescale)
    expected = source_packets(c.path, c.stream_index)[0][0] * time_base + TS_OFFSET
    assert abs(shown - expected) <= Fraction(1, 1000)


_DTS_CASES = [c for c in VIDEO_CASES if c.clip.endswith((".mp4", ".ts"))]


@pytest.mark.parametrize("case", _DTS_CASES, ids=_ids(_DTS_CASES))
def test_decode_times_are_source_dts_plus_offset(clips: Path, case: Case) -> None:
    """Where the container stores DTS (MP4, MPEG-TS), every sample's decode time is exactly
    that DTS + 1.4 s in track ticks - the same timeline the TS cut writes (Matroska stores no
    DTS; there the same rule, sorted presentation times minus the reorder delay, stands in)."""
    c = cut(clips, case)
    with av.open(str(c.path)) as container:
        stream = container.streams[c.stream_index]
        assert stream.time_base is not None
        expected = [
            output_ticks(p.dts, stream.time_base, c.init.timescale)
            for p in container.demux(stream)
            if p.size and p.dts is not None
        ]
    assert [t for f in c.fragments() for t in f.decode_times()] == expected


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_segments_carry_every_source_packet_once(clips: Path, case: Case) -> None:
    """Every packet of the stream in exactly one segment, in decode order, with its bytes
    (Matroska/MP4 video and audio are copied untouched; MPEG-TS is converted, so only counted)."""
    c = cut(clips, case)
    source = source_packets(c.path, c.stream_index)
    cut_samples = [
        s
        for frag, data in zip(c.fragments(), c.segments, strict=True)
        for s in frag.sample_data(data)
    ]
    assert len(cut_samples) == len(source)
    if not case.clip.endswith(".ts"):
        assert cut_samples == [_without_sample_entry_nals(data, c.init) for _, _, data in source]
    if case.kind == "video":
        flags = [s.is_sync for f in c.fragments() for s in f.samples]
        assert flags == [key for _, key, _ in source]


def _without_sample_entry_nals(packet: bytes, init: Init) -> bytes:
    """A source packet less the in-band parameter sets its hvcC already has (x265 with hdr10
    repeats them in every keyframe): what an hvc1 sample must hold."""
    if init.entry != "hvc1":
        return packet
    size = mp4parse.nal_length_size(init)
    known = {u for _, units in mp4parse.hvcc_arrays(init.config).values() for u in units}
    kept = [
        u
        for u in mp4parse.nal_units(packet, size)
        if not ((u[0] >> 1) & 0x3F in (32, 33, 34) and u in known)
    ]
    return b"".join(len(u).to_bytes(size, "big") + u for u in kept)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_ffmpeg_plays_init_plus_segments(
    clips: Path, case: Case, ffmpeg: str, tmp_path: Path
) -> None:
    """A real client: `cat init seg0 seg1 ... > x.mp4; ffmpeg -i x.mp4` decodes every frame
    with no warning. Video frames come out pixel-identical to the source's."""
    c = cut(clips, case)
    hashes, warnings = ffmpeg_frames(ffmpeg, c.concatenated(tmp_path))
    assert warnings == ""
    assert len(hashes) == len(source_packets(c.path, c.stream_index))
    if case.kind == "video":
        source, _ = ffmpeg_frames(ffmpeg, c.path, f"0:{c.stream_index}")
        assert hashes == source


@pytest.mark.parametrize(
    "case",
    [c for c in VIDEO_CASES if c.closed_gop],
    ids=_ids([c for c in VIDEO_CASES if c.closed_gop]),
)
def test_each_segment_decodes_alone_to_its_duration(clips: Path, case: Case) -> None:
    """A player that seeks requests init + segment k only: it decodes (sync sample first) to
    exactly the Segment's duration, starting at its start + 1.4 s. (Open GOPs are left out:
    their leading pictures belong to the GOP before, so a lone segment cannot show them.)"""
    c = cut(clips, case)
    for segment, data, frag in zip(c.timeline.segments, c.segments, c.fragments(), strict=True):
        # In the container: the samples span exactly the Segment (EXTINF) duration...
        assert Fraction(frag.duration, c.init.timescale) == pytest.approx(segment.duration)
        # ... and a decoder fed init + this segment alone shows all of its frames.
        with av.open(io.BytesIO(c.init_bytes + data), "r") as container:
            frames = list(container.decode(video=0))
        times = [f.time for f in frames]
        assert frames and None not in times
        assert len(frames) == round(segment.duration * FPS)
        assert min(t for t in times if t is not None) == pytest.approx(
            segment.start + float(TS_OFFSET), abs=1.5e-3
        )


def test_fmp4_and_ts_renditions_share_one_clock(clips: Path) -> None:
    """A TS rendition and an fMP4 one of the same segment present its first frame at the same
    time (source + 1.4 s), so a client switching containers or WebVTT's X-TIMESTAMP-MAP agree."""
    c = cut(clips, CASES[2])  # H.264 in MP4
    for k in (0, 2):
        ts = cut_video_ts(c.path, c.timeline[k], c.stream_index)
        with av.open(io.BytesIO(ts), "r", format="mpegts") as container:
            ts_first = min(
                Fraction(p.pts * p.time_base) for p in container.demux(video=0) if p.pts is not None
            )
        frag = mp4parse.parse_fragment(c.segments[k], c.init)
        shown = min(frag.presentation_times())
        assert abs(Fraction(shown, c.init.timescale) - ts_first) <= Fraction(1, 1000)


def test_continuity_check_catches_a_tfdt_one_sample_off(clips: Path) -> None:
    """The continuity assertion is not vacuous: shift one segment's tfdt by one sample and it
    fails (and ffmpeg, given that file, no longer shows the frames on the source's clock)."""
    c = cut(clips, CASES[2])
    fragments = c.fragments()
    fragments[1].base_decode_time += fragments[1].samples[0].duration
    with pytest.raises(AssertionError, match="segment 1: tfdt"):
        assert_continuous(fragments, c.init.timescale)


def test_unknown_codec_or_missing_parameters_raise_one_exception(
    tmp_path: Path, ffmpeg: str, clips: Path
) -> None:
    """Whatever cannot be copied into fMP4 is one exception type the lead turns into a
    transcode with the reason said."""
    path = tmp_path / "mpeg2_pcm.mkv"
    args = f"{_VIDEO} {_tone(440)} -t 1 -c:v mpeg2video -c:a pcm_s16le"
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", *args.split(), str(path)], check=True)
    for index in (0, 1):
        with pytest.raises(Fmp4Unsupported, match="cannot be copied"):
            init_segment(path, index)
    segment = Segment(0, 0.0, 1.0, 0, 1000)
    with pytest.raises(Fmp4Unsupported):
        media_segment(path, 0, segment, 1)
    with pytest.raises(Fmp4Unsupported):
        audio_media_segment(path, 1, 0.0, 1.0, 1)
    # AC-3's dac3 comes from its frames: without packets to read there is nothing to say.
    with (
        av.open(str(clips / "h264_ac3_aac.ts")) as container,
        pytest.raises(Fmp4Unsupported, match="no codec parameters"),
    ):
        init_segment_for(container.streams.audio[0])


def test_encoded_audio_goes_through_the_packet_level_entry_point(
    tmp_path: Path, ffmpeg: str
) -> None:
    """The in-process AAC encoder (another engineer's `_audio.py`) uses the same two calls:
    `init_segment_for(encoder stream)` and `fragment(samples, base_decode_time=...)`. Three
    windows encoded apart, fragmented in shuffled order, play back whole and continuous."""
    sink = av.open(io.BytesIO(), "w", format="mp4")
    stream = sink.add_stream("aac", rate=48000, layout="stereo")
    sink.start_encoding()
    init = init_segment_for(stream)
    parsed = mp4parse.parse_init(init)
    assert (parsed.entry, parsed.timescale, codec_string(init)) == ("mp4a", 48000, "mp4a.40.2")
    frames_per_window = 47  # ~1 s of 1024-sample AAC frames
    samples: list[Sample] = []
    for n in range(3 * frames_per_window):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = 48000, n * 1024
        samples += [Sample(bytes(p), 1024) for p in stream.encode(frame)]
    samples += [Sample(bytes(p), 1024) for p in stream.encode(None)]
    windows = [
        samples[i : i + frames_per_window] for i in range(0, len(samples), frames_per_window)
    ]
    time_base = Fraction(1, 48000)
    segments: dict[int, bytes] = {}
    for k in (2, 0, 1, 3)[: len(windows)]:
        first = sum(len(w) for w in windows[:k]) * 1024
        base = output_ticks(first, time_base, 48000)
        segments[k] = fragment(windows[k], base_decode_time=base, sequence_number=k + 1)
    fragments = [mp4parse.parse_fragment(segments[k], parsed) for k in sorted(segments)]
    assert_continuous(fragments, 48000)
    out = tmp_path / "aac.mp4"
    out.write_bytes(init + b"".join(segments[k] for k in sorted(segments)))
    hashes, warnings = ffmpeg_frames(ffmpeg, out)
    assert warnings == "" and len(hashes) == len(samples)
    sink.close()


# --- pure parts -------------------------------------------------------------------------------

_sample = st.builds(
    Sample,
    data=st.binary(min_size=1, max_size=40),
    duration=st.integers(0, 5000),
    is_sync=st.booleans(),
    composition_offset=st.integers(-3000, 3000),
)


@settings(max_examples=200, deadline=None)
@given(
    samples=st.lists(_sample, max_size=30)
    | st.lists(_sample, min_size=1, max_size=1).map(lambda s: s * 5),
    base=st.integers(0, 2**40),
    sequence=st.integers(1, 2**32 - 1),
)
def test_fragment_round_trips_through_an_independent_parser(
    samples: list[Sample], base: int, sequence: int
) -> None:
    """moof+mdat as ISO/IEC 14496-12 8.8 lays it out: whatever defaults the writer picks, a
    reader resolving tfhd/trex defaults gets every sample's size, duration, flags, offset and
    bytes back; trun version 1 exactly when an offset is negative; data_offset hits the mdat."""
    data = fragment(samples, base_decode_time=base, sequence_number=sequence)
    frag = mp4parse.parse_fragment(data)
    assert frag.sequence_number == sequence and frag.base_decode_time == base
    assert frag.tfhd_flags & 0x020000  # default-base-is-moof (CMAF)
    assert [s.duration for s in frag.samples] == [s.duration for s in samples]
    assert [s.is_sync for s in frag.samples] == [s.is_sync for s in samples]
    assert [s.composition_offset for s in frag.samples] == [s.composition_offset for s in samples]
    assert frag.sample_data(data) == [s.data for s in samples]
    assert frag.trun_version == (1 if any(s.composition_offset < 0 for s in samples) else 0)


def test_decode_timeline_open_gop() -> None:
    """Decode times are the presentation times sorted minus the reorder delay; with an open
    GOP the next segment starts at its earliest leading picture, so the sums still chain."""
    # One tick a frame, two frames of reordering. Segment 0: I0 P3 B1 B2 P6 B4 B5; segment 1
    # opens with a CRA at 9 whose leading pictures 7 and 8 follow it in decode order.
    first = decode_timeline([0, 3, 1, 2, 6, 4, 5], next_ticks=7, delay_ticks=2)
    second = decode_timeline([9, 7, 8, 12, 10, 11], next_ticks=13, delay_ticks=2)
    base0, durations0, offsets0 = first
    base1, _, offsets1 = second
    assert base0 == -2 and base1 == 5
    assert base0 + sum(durations0) == base1
    assert min(offsets0) >= 0 and min(offsets1) >= 0
    assert offsets0[0] == 2  # the keyframe shows at its pts: base + offset


def test_annex_b_becomes_length_prefixed_without_aud_and_known_parameter_sets() -> None:
    sps, pps, idr = b"\x67\x64\x00\x0a\xac", b"\x68\xee\x3c\x80", b"\x65\x88\x84\x00\x21"
    aud = b"\x09\xf0"
    annex_b = b"\0\0\0\1" + aud + b"\0\0\0\1" + sps + b"\0\0\1" + pps + b"\0\0\1" + idr + b"\0"
    assert split_annex_b(annex_b) == [aud, sps, pps, idr]
    known = {sps, pps}

    def drop(nal: bytes) -> bool:
        return nal[0] & 0x1F == 9 or nal in known

    out = rewrite_nal_units(annex_b, 0, 4, drop)
    assert out == struct.pack(">I", len(idr)) + idr
    # Already length-prefixed and nothing to drop: the very same bytes, no copy.
    prefixed = struct.pack(">I", len(idr)) + idr
    assert rewrite_nal_units(prefixed, 4, 4, drop) is prefixed


def test_output_ticks_are_source_time_plus_offset() -> None:
    assert output_ticks(0, Fraction(1, 1000), 16000) == 22400
    assert output_ticks(-1024, Fraction(1, 48000), 48000) == 67200 - 1024
    assert output_ticks(90000, Fraction(1, 90000), 90000) == 90000 + 126000
