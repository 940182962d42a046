"""Video stage: clip bytes in, frames at a fixed rate (as stored JPEGs with
their hashes) or a named drop reason out.  PyAV (FFmpeg) decodes.

    bytes -> open (container sniffed, from memory) -> first video stream
          -> decode in order, bounded (packets, frames, wall time, seconds of clip)
          -> frame for each sample time t_k = k / fps, t_k < min(duration, max_seconds)
          -> each frame through pipeline.images.process_image (the one resizer,
             JPEG encoder and sha256/phash there) -> optionally the clip itself,
             cut to the first max_seconds by remuxing (no re-encode)

Which frame is "the frame at t_k": the first decoded frame whose timestamp is
>= t_k - half a frame interval (the frame nearest to t_k, the earlier of two
equally near).  A sample time after the last frame's
timestamp gets no frame.  So a 5.31 s clip at 25 fps gives frames at
0, 1, 2, 3, 4, 5 s (6 frames; bigbuckbunny), a 10.0 s one 10 (0..9 s; the
frame at 10 s does not exist), and a 4.004 s clip at 29.97 fps 4 (its last
frame is at 3.97 s, so t=4 s has none; carphone).

Drop reasons: empty, corrupt, truncated, audio_only, no_video_stream,
unsupported_codec, no_frames, decode_timeout (a decode bound hit before the
first frame; hit later, the frames so far are kept and ``truncated_to`` says
where they end), too_large_frames (declared frame size above the pixel cap).
Never raises.  The bounds mean a hostile or stalled stream costs at most
``max_decode_s`` of CPU: the data is already in memory (the fetcher has its
own total deadline), and decoding stops at the first of: enough frames,
``max_seconds`` of clip, ``max_packets`` packets, ``max_decode_s`` seconds.
"""
from __future__ import annotations

import io
import logging
import struct
import time
from dataclasses import dataclass, field

from .images import ImageConfig, process_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoConfig:
    fps: float = 1.0                # frames sampled per second of clip (Flamingo VTP: 1 FPS)
    max_frames: int = 32
    max_seconds: float = 60.0       # longer clips are cut to their first max_seconds
    frame_size: int = 512           # frames resized like images (keep_ratio_largest)
    frame_quality: int = 90
    store_clip: bool = False        # also store the clip (cut to max_seconds) as KEY.mp4
    max_packets: int = 20_000       # decode bounds: packets demuxed, wall time
    max_decode_s: float = 30.0
    max_frame_pixels: int = 4096 * 4096

    def image_config(self) -> ImageConfig:
        # Frames are whatever shape the video has: no minimum side or aspect checks.
        return ImageConfig(min_side=1, max_aspect_ratio=1000.0, image_size=self.frame_size,
                           resize_mode="keep_ratio_largest", resize_only_if_bigger=True,
                           encode_quality=self.frame_quality,
                           max_pixels=self.max_frame_pixels, jpeg_draft=False)


@dataclass
class DecodedVideo:
    ok: bool
    reason: str | None
    frames: list = field(default_factory=list)          # JPEG bytes
    frame_times: list = field(default_factory=list)     # seconds, from the frame timestamps
    frame_sha256: list = field(default_factory=list)
    frame_phashes: list = field(default_factory=list)
    duration: float | None = None       # of the stored sampling window (<= max_seconds)
    original_duration: float | None = None
    fps: float | None = None            # the clip's own frame rate
    width: int | None = None            # the clip's frame size
    height: int | None = None
    frame_width: int | None = None      # the stored frames' size
    frame_height: int | None = None
    codec: str | None = None
    has_audio: bool = False
    truncated_to: float | None = None   # set when the clip was cut to max_seconds
    clip: bytes | None = None


class _Drop(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def iso_bmff_truncated(data: bytes) -> bool:
    """An MP4/MOV whose top-level boxes run past the end of the bytes: a cut download."""
    if data[4:8] not in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return False
    pos, n = 0, len(data)
    while pos + 8 <= n:
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        if size == 1:
            if pos + 16 > n:
                return True
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        elif size == 0:
            return b"moov" not in data[:pos + 8] and data[pos + 4:pos + 8] != b"moov"
        if size < 8:
            return False
        if pos + size > n:
            return True
        pos += size
    return b"moov" not in data  # all boxes whole, but no movie header: cut before it


def _open(data: bytes):
    import av

    if not data:
        raise _Drop("empty")
    try:
        return av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise _Drop("truncated" if iso_bmff_truncated(data) else "corrupt", str(e)) from None


def _stream_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _cut_clip(data: bytes, seconds: float) -> bytes:
    """The first ``seconds`` of the clip, remuxed (packets copied) to MP4."""
    import av

    src = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    out_buf = io.BytesIO()
    try:
        streams = [s for s in src.streams if s.type in ("video", "audio")]
        with av.open(out_buf, mode="w", format="mp4") as out:
            mapping = {s.index: out.add_stream_from_template(s) for s in streams}
            for pkt in src.demux(streams):
                if pkt.dts is None:
                    continue
                if pkt.pts is not None and pkt.time_base is not None and \
                        float(pkt.pts * pkt.time_base) >= seconds:
                    continue
                pkt.stream = mapping[pkt.stream.index]
                out.mux(pkt)
    finally:
        src.close()
    return out_buf.getvalue()


def _frame_bmp(frame) -> bytes:
    buf = io.BytesIO()
    frame.to_image().save(buf, format="BMP")  # uncompressed: cheap to make and to read back
    return buf.getvalue()


def _decode(data: bytes, cfg: VideoConfig, out: DecodedVideo) -> None:
    import av

    container = _open(data)
    try:
        vstreams = list(container.streams.video)
        out.has_audio = bool(container.streams.audio)
        if not vstreams:
            raise _Drop("audio_only" if container.streams.audio else "no_video_stream")
        stream = vstreams[0]
        if stream.codec_context is None:
            raise _Drop("unsupported_codec", "FFmpeg has no decoder for the video stream")
        ctx = stream.codec_context
        out.codec = ctx.name
        out.width, out.height = ctx.width, ctx.height
        if ctx.width and ctx.height and ctx.width * ctx.height > cfg.max_frame_pixels:
            raise _Drop("too_large_frames", f"{ctx.width}x{ctx.height}")
        rate = stream.average_rate or stream.guessed_rate
        out.fps = round(float(rate), 3) if rate else None
        out.original_duration = _stream_duration(container, stream)
        window = cfg.max_seconds
        if out.original_duration is not None:
            window = min(window, out.original_duration)
        if out.original_duration is not None and out.original_duration > cfg.max_seconds:
            out.truncated_to = cfg.max_seconds
        half = 0.5 / float(rate) if rate else 0.02
        stream.thread_type = "AUTO"
        icfg = cfg.image_config()
        k, packets, start = 0, 0, time.monotonic()
        last_t = None
        error, capped = None, False
        try:
            for packet in container.demux(stream):
                packets += 1
                if packets > cfg.max_packets or time.monotonic() - start > cfg.max_decode_s:
                    if not out.frames:
                        raise _Drop("decode_timeout", f"{packets} packets")
                    capped = True  # keep what was decoded: the first part of the clip
                    break
                for frame in packet.decode():
                    if frame.pts is None or frame.time_base is None:
                        t = frame.time if frame.time is not None else None
                    else:
                        t = float(frame.pts * frame.time_base)
                    if t is None:
                        continue
                    last_t = t
                    target = k / cfg.fps
                    if target >= window or k >= cfg.max_frames:
                        break
                    if t >= target - half:
                        processed = process_image(_frame_bmp(frame), icfg, source="frame",
                                                  verify_hash=False)   # frames: phash only
                        if not processed.ok:
                            raise _Drop("corrupt", f"frame at {t:.3f}s: {processed.reason}")
                        out.frames.append(processed.jpeg)
                        out.frame_times.append(round(t, 3))
                        out.frame_sha256.append(processed.sha256)
                        out.frame_phashes.append(processed.phash)
                        out.width, out.height = processed.original_width, processed.original_height
                        out.frame_width, out.frame_height = processed.width, processed.height
                        k += 1
                        # A long gap (variable frame rate, a skipped keyframe) may cover
                        # several sample times; one frame serves them once only.
                        while k / cfg.fps <= t - half and k < cfg.max_frames:
                            k += 1
                else:
                    continue
                break
        except _Drop:
            raise
        except av.error.FFmpegError as e:
            error = e
        if error is not None and not out.frames:
            raise _Drop("truncated" if iso_bmff_truncated(data) else "corrupt", str(error))
        if error is not None:
            # Frames before the damage are real, but the clip is not what the page served.
            raise _Drop("truncated" if iso_bmff_truncated(data) else "corrupt",
                        f"after {len(out.frames)} frames: {error}")
        if not out.frames:
            raise _Drop("no_frames", f"last frame at {last_t}")
        expected = out.original_duration
        if capped:
            window = min(window, out.frame_times[-1] + 1.0 / cfg.fps)
            out.truncated_to = round(window, 3)
        elif expected is not None and last_t is not None and k < cfg.max_frames and \
                window == expected and last_t < min(expected, cfg.max_seconds) - 1.0:
            # The index promised more than the file holds: a cut download.
            raise _Drop("truncated", f"frames end at {last_t:.2f}s of {expected:.2f}s")
        out.duration = round(window, 3)
        if out.original_duration is not None:
            out.original_duration = round(out.original_duration, 3)
    finally:
        container.close()
    if cfg.store_clip:
        out.clip = _cut_clip(data, cfg.max_seconds) if out.truncated_to else data


def decode_video(data: bytes, cfg: VideoConfig = VideoConfig(), source: str = "") -> DecodedVideo:
    """Frames of one clip, or the drop reason. Never raises; ``source`` is for logs."""
    out = DecodedVideo(ok=False, reason=None)
    try:
        _decode(data, cfg, out)
    except _Drop as drop:
        log.debug("video dropped %s: %s", source or "<bytes>", drop)
        return DecodedVideo(ok=False, reason=drop.reason, has_audio=out.has_audio, codec=out.codec)
    except Exception as e:  # noqa: BLE001 - the contract is: never raise
        log.warning("video dropped %s: unexpected %s: %s", source or "<bytes>", type(e).__name__, e)
        return DecodedVideo(ok=False, reason="corrupt")
    out.ok = True
    return out
