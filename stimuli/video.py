"""Finding action videos on disk and reading evenly spaced frames or clip windows from them.

Two layouts are recognised: HAA500's (`video/<action>/<action>_<NNN>.mp4`, where the folder name
is the action, spaces and all) and a flat folder of `<action>_<NNN>.mp4`. HAA500 splits each
action's 20 videos by index (000-015 train, 016 val, 017-019 test), so the split is by clip and
never by frame. A video that cannot be named, opened or decoded is reported with a reason rather
than stopping a run over thousands of files."""

from __future__ import annotations

import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# FFmpeg writes what it thinks of a broken file ("moov atom not found", "header damaged") straight
# to stderr, once per attempt; a broken video is reported once, in rejected.csv, instead. OpenCV
# reads this level when it first opens a video, so it is set on import (a user's value wins).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")   # AV_LOG_QUIET

import numpy as np  # noqa: E402

from bodyscene.extras import missing_extra  # noqa: E402

try:
    import cv2
except ModuleNotFoundError as exc:  # no stimuli extra: one line naming it
    raise missing_extra(exc) or exc

from bodyscene.errors import BadInput

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
_NAME = re.compile(r"^(?P<action>.+)_(?P<index>\d{3})$")
DEFAULT_FPS = 30.0   # when a container does not state its rate


def haa500_split(index: int) -> str | None:
    """HAA500's own split by video index; None for an index outside 000-019."""
    if 0 <= index <= 15:
        return "train"
    if index == 16:
        return "val"
    if 17 <= index <= 19:
        return "test"
    return None


@dataclass(frozen=True)
class Video:
    """One source video: its action, index within the action, split and a stable key."""

    path: Path
    key: str          # path relative to the videos folder, '/'-separated: stable across machines
    action: str
    index: int
    split: str


@dataclass(frozen=True)
class Skipped:
    """A file that looked like a video but cannot be used, and why."""

    key: str
    reason: str


def discover_videos(root: str | Path) -> tuple[list[Video], list[Skipped]]:
    """All videos under `root` in either layout, sorted by key, plus the files skipped.

    `root` may be HAA500's top folder (holding `video/`), its `video/` folder itself, or a flat
    folder of `<action>_<NNN>.<ext>` files."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"--videos {root}: not a folder")
    base = root / "video" if (root / "video").is_dir() else root
    videos: list[Video] = []
    skipped: list[Skipped] = []
    for path in sorted(base.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        if any(part.startswith(".") for part in path.relative_to(base).parts):
            continue  # hidden files, e.g. macOS '._name.mp4' resource forks
        rel = path.relative_to(base)
        key = rel.as_posix()
        if len(rel.parts) > 2:
            skipped.append(Skipped(key, "nested too deep: expected <action>/<action>_<NNN>"
                                        f"{path.suffix} or <action>_<NNN>{path.suffix}"))
            continue
        m = _NAME.match(path.stem)
        if not m:
            skipped.append(Skipped(key, f"file name is not <action>_<NNN>{path.suffix}"))
            continue
        # HAA500: the folder names the action (its file stems may spell it differently)
        action = rel.parts[0] if len(rel.parts) == 2 else m.group("action")
        index = int(m.group("index"))
        split = haa500_split(index)
        if split is None:
            skipped.append(Skipped(key, f"index {index:03d} outside HAA500's 000-019 "
                                        f"(000-015 train, 016 val, 017-019 test)"))
            continue
        videos.append(Video(path=path, key=key, action=action, index=index, split=split))
    if not videos:
        raise BadInput(f"--videos {root}: no videos named <action>_<NNN>.mp4 found "
                       f"(HAA500 layout video/<action>/<action>_<NNN>.mp4, or a flat folder)")
    return videos, skipped


def window_starts(n_frames: int, window: int, samples: int) -> list[int]:
    """First frames of `samples` windows of `window` frames, evenly spaced: window i starts at
    the middle of the i-th of `samples` equal stretches of the possible starts. Fewer (distinct)
    starts when the video is too short for that many."""
    positions = n_frames - window + 1
    if positions < 1 or samples < 1:
        return []
    return sorted({min(positions - 1, int(math.floor((i + 0.5) * positions / samples)))
                   for i in range(samples)})


@dataclass
class Clip:
    """Windows read from one video: `windows[j]` is (start frame, (T, H, W, 3) uint8 RGB)."""

    video: Video
    fps: float
    n_frames: int
    windows: list[tuple[int, np.ndarray]]


class VideoError(Exception):
    """A video that cannot be used; the message is the reason written to rejected.csv."""


@contextmanager
def _quiet_opencv():
    """OpenCV's own "[ERROR] ... Failed to initialize VideoCapture" lines, off while opening."""
    log = cv2.utils.logging
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(level)


def _open(path: Path) -> cv2.VideoCapture:
    with _quiet_opencv():
        return cv2.VideoCapture(str(path))


def read_windows(video: Video, samples: int, window: int = 1) -> Clip:
    """Decode `samples` evenly spaced windows of `window` frames (RGB). Raises VideoError with a
    reason for an unreadable, empty or too short video."""
    cap = _open(video.path)
    try:
        if not cap.isOpened():
            raise VideoError("unreadable video: OpenCV cannot open it")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = float(fps) if fps and fps == fps and 0 < fps <= 1000 else DEFAULT_FPS
        stated = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        n = stated if stated > 0 else _count_frames(cap)
    finally:
        cap.release()
    if n <= 0:
        raise VideoError("empty video: no frames could be decoded")
    windows, seen = _decode(video.path, window_starts(n, window, samples), window)
    if seen is not None:
        # the container overstated its length: plan again on the frames that really exist
        n = seen
        if n <= 0:
            raise VideoError("empty video: no frames could be decoded")
        windows, _ = _decode(video.path, window_starts(n, window, samples), window)
    if not windows:
        raise VideoError(f"too short: {n} frame(s), a clip trial needs {window}")
    return Clip(video=video, fps=fps, n_frames=n, windows=windows)


def _count_frames(cap: cv2.VideoCapture) -> int:
    n = 0
    while cap.grab():
        n += 1
    return n


def _decode(path: Path, starts: list[int],
            window: int) -> tuple[list[tuple[int, np.ndarray]], int | None]:
    """Read the frames of the given windows in one sequential pass (seeking is unreliable in
    many codecs). Returns the complete windows, and the number of frames the video really has
    when it ended before the last wanted frame (None when it did not)."""
    wanted = {s + t for s in starts for t in range(window)}
    last = max(wanted) if wanted else -1
    got: dict[int, np.ndarray] = {}
    cap = _open(path)
    i = 0
    try:
        while i <= last:
            if not cap.grab():
                break
            if i in wanted:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    got[i] = np.ascontiguousarray(bgr[..., ::-1])
            i += 1
    finally:
        cap.release()
    windows = []
    for s in starts:
        frames = [got.get(s + t) for t in range(window)]
        if all(f is not None for f in frames):
            windows.append((s, np.stack(frames)))
    return windows, (None if i > last else i)
