"""The real-video path: action videos in, a matched trial set out (`bodyscene stimuli build`).

Per video: decode evenly spaced frames (or clip windows), find the people with a segmenter, keep
one person mask per frame by a policy, and hand the items to the trial-set writer. Segmentation is
the slow part (yolov8x-seg: seconds per frame on a CPU), so everything else runs beside it: a
reader thread decodes the next videos while the model works, and a small thread pool composes
and writes PNGs. Nothing a bad video does stops the run: it lands in rejected.csv with a reason.
`--shard i/n` builds a deterministic 1/n of the videos; `merge` joins the shards.

Dropping videos is not neutral (a segmenter that misses people filmed without a face removes
whole actions), so every build ends with a per-action tally, videos kept and rejected with the
most common reason, printed and written to the run record, and a warning for every action that
lost more than half of its videos."""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import re
import shutil
import tempfile
import threading
import zlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bodyscene.errors import BadInput
from bodyscene.provenance import write_run_record
from bodyscene.tables import (
    Schema,
    is_int,
    non_empty,
    read_csv,
    write_csv_atomic,
    write_json_atomic,
)

from .compose import MaskNoise
from .segmenters import (
    MIN_PART,
    People,
    Segmenter,
    clean_people,
    create_segmenter,
    describe,
)
from .trialset import Item, TrialSetConfig, TrialSetWriter, finalize
from .video import Clip, Video, VideoError, discover_videos, read_windows

POLICIES = ("single", "largest", "union")
REJECTED_SCHEMA = Schema(
    name="rejected list", required=("video", "frame", "reason"),
    checks={"video": non_empty, "reason": non_empty,
            "frame": lambda v: None if v == "" else is_int(0)(v)})
_RECORD = re.compile(r"^build\.shard-(\d+)-of-(\d+)\.json$")
_REJECTED_SHARD = re.compile(r"^rejected\.shard-(\d+)-of-(\d+)\.csv$")
LOST_SHARE = 0.5   # an action that loses more than this share of its videos is warned about


@dataclass
class BuildConfig:
    videos: str
    out: str
    segmenter: str = "yolo"         # yolo | mediapipe | package.module:factory
    # the options given for it (weights, conf, image_size, batch_size, device, ...); the run
    # record also holds the settings the segmenter resolved
    segmenter_options: dict = field(default_factory=dict)
    samples_per_video: int = 3      # windows sampled evenly per video (each clip_frames long)
    policy: str = "single"          # the paper's: exactly one person on every sampled frame
    min_mask: float = 0.005         # smallest person mask kept, as a fraction of the frame
    min_part: float = MIN_PART      # mask pieces below this share of the largest person go
    shard: tuple[int, int] = (0, 1)
    progress: bool = True
    workers: int = 2                # composition/PNG-writing threads
    seed: int = 0
    trials: TrialSetConfig = field(default_factory=TrialSetConfig)

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise BadInput(f"--policy: expected one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.samples_per_video < 1:
            raise BadInput(f"--samples-per-video: at least 1, got {self.samples_per_video}")
        if self.trials.clip_frames < 1:
            raise BadInput(f"--clip-frames: at least 1, got {self.trials.clip_frames}")
        if not 0.0 <= self.min_mask < 1.0:
            raise BadInput(f"--min-mask: a fraction of the frame in [0, 1), got {self.min_mask}")
        if not 0.0 <= self.min_part < 1.0:
            raise BadInput(f"--min-part: a fraction of the largest person in [0, 1), got "
                           f"{self.min_part}")
        if self.workers < 1:
            raise BadInput(f"--workers: at least 1, got {self.workers}")
        i, n = self.shard
        if not (n >= 1 and 0 <= i < n):
            raise BadInput(f"--shard: expected i/n with 0 <= i < n, got {i}/{n}")


@dataclass(frozen=True)
class Rejection:
    video: str
    frame: int | None
    reason: str


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' (0-based: a cluster array of n tasks numbered 0..n-1)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise BadInput(f"--shard: expected i/n such as 0/4, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise BadInput(f"--shard: expected i/n with 0 <= i < n (numbered from 0), got {text!r}")
    return i, n


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    """Which shard a video belongs to depends only on its key, so any n tasks split any dataset
    the same way on any machine."""
    i, n = shard
    return zlib.crc32(key.encode("utf-8")) % n == i


def item_id(video: Video, start: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", video.action).strip("-") or "action"
    return f"{slug}_{video.index:03d}_f{start:05d}"


def choose_masks(clip: Clip, people: list[list[People]], policy: str, min_mask: float,
                 segmenter: str, min_part: float = MIN_PART) -> tuple[list[Item], list[Rejection]]:
    """Turn one video's windows and the people found on them into items and rejections.

    `people[j][t]` are the people on frame t of window j; pieces of masks smaller than
    `min_part` of the frame's largest person are dropped first (clean_people), so a stray blob
    is neither counted as a person nor composed. A frame without a person, or whose
    chosen mask covers less than `min_mask` of it, loses its window; under `single`, a frame
    with no person or several loses the whole video (the paper kept only videos showing exactly
    one person on every sampled frame)."""
    video = clip.video
    rejected: dict[tuple[int, str], Rejection] = {}
    chosen: list[tuple[int, np.ndarray, np.ndarray] | None] = []
    drop_video = False
    for (start, frames), found in zip(clip.windows, people):
        masks, ok = [], True
        for t, p in enumerate(found):
            p = clean_people(p, min_part)
            f = start + t
            reason = None
            if policy == "single" and len(p) != 1:
                drop_video = True
            if len(p) == 0:
                reason = "no person detected"
            elif policy == "single" and len(p) > 1:
                reason = (f"{len(p)} people detected (policy single keeps a video only if "
                          f"every sampled frame shows exactly one person)")
            else:
                if policy == "union" or len(p) == 1:
                    mask = p.masks.any(axis=0)
                else:  # largest
                    mask = p.masks[int(np.argmax(p.masks.reshape(len(p), -1).sum(axis=1)))]
                frac = float(mask.mean())
                if frac < min_mask:
                    reason = (f"person mask covers {100 * frac:.2f}% of the frame, below "
                              f"--min-mask {100 * min_mask:.2f}%")
                masks.append(mask)
            if reason:
                ok = False
                rejected.setdefault((f, reason), Rejection(video.key, f, reason))
        chosen.append((start, frames, np.stack(masks)) if ok else None)
    items = []
    if drop_video:
        return [], sorted(rejected.values(), key=lambda r: (r.frame, r.reason))
    for entry in chosen:
        if entry is None:
            continue
        start, frames, masks = entry
        items.append(Item(item_id=item_id(video, start), action=video.action, split=video.split,
                          source=video.key, frame=start, fps=clip.fps, frames=frames,
                          masks=masks, segmenter=segmenter))
    return items, sorted(rejected.values(), key=lambda r: (r.frame, r.reason))


_DONE = object()


def _reader(videos: list[Video], cfg: BuildConfig, q: queue.Queue, stop: threading.Event) -> None:
    """Decode videos ahead of the segmenter; a bad video becomes a Rejection in the queue."""
    for video in videos:
        if stop.is_set():
            return
        try:
            got: object = read_windows(video, cfg.samples_per_video, cfg.trials.clip_frames)
        except VideoError as exc:
            got = Rejection(video.key, None, str(exc))
        except Exception as exc:  # a decoder crash is still one video's problem
            got = Rejection(video.key, None, f"unreadable video: {type(exc).__name__}: {exc}")
        _put(q, got, stop)
    _put(q, _DONE, stop)


def _put(q: queue.Queue, entry: object, stop: threading.Event) -> None:
    """Put unless the consumer has given up (then the reader just ends)."""
    while not stop.is_set():
        try:
            q.put(entry, timeout=0.2)
            return
        except queue.Full:
            continue


def _next_batch(q: queue.Queue, want_frames: int) -> tuple[list[object], bool]:
    """Block for one decoded video, then take whatever else is ready up to `want_frames`
    frames, so a GPU gets full batches and a CPU never waits for them."""
    got, frames, done = [], 0, False
    first = True
    while first or frames < want_frames:
        try:
            entry = q.get() if first else q.get_nowait()
        except queue.Empty:
            break
        first = False
        if entry is _DONE:
            done = True
            break
        got.append(entry)
        if isinstance(entry, Clip):
            frames += sum(len(w) for _, w in entry.windows)
    return got, done


def build(cfg: BuildConfig, segmenter: Segmenter | None = None) -> Path:
    """Build this shard's items; unsharded, also finalize. Returns trials.csv (unsharded) or the
    shard's item list. Everything that can be refused is refused before the segmenter loads; a
    run that fails removes what it wrote, so it can simply be run again."""
    cfg.check()
    cfg.trials.check()
    out = Path(cfg.out)
    i, n = cfg.shard
    check_output_folder(out)
    rejected_path = out / ("rejected.csv" if n == 1 else f"rejected.shard-{i}-of-{n}.csv")
    _refuse_rebuild(out, cfg.shard, rejected_path)
    videos, skipped = discover_videos(cfg.videos)
    mine = [v for v in videos if in_shard(v.key, cfg.shard)]
    if segmenter is None:
        segmenter = create_segmenter(cfg.segmenter, **cfg.segmenter_options)
    before = set(out.iterdir()) if out.is_dir() else None
    rejections = [Rejection(s.key, None, s.reason) for s in skipped if in_shard(s.key, cfg.shard)]
    try:
        writer = TrialSetWriter(out, cfg.trials, shard=cfg.shard)
        # the record holds the segmenter that ran and the settings it resolved, not the request
        ran = dataclasses.replace(cfg, segmenter=segmenter.name,
                                  segmenter_options=dict(getattr(segmenter, "settings", {}) or {}))
        write_run_record(out, ran, cfg.seed, name=f"build.shard-{i}-of-{n}.json",
                         segmenter=describe(segmenter), n_videos=len(mine))
        n_items, kept = _run(mine, cfg, segmenter, writer, rejections)
        writer.close()
        write_rejected(rejected_path, rejections)
        print(_summary(cfg.shard, n_items, len(mine), len(kept), rejections, rejected_path))
        tally = per_action(mine, kept, rejections)
        _record_tally(out / f"build.shard-{i}-of-{n}.json", tally)
        report_tally(tally, rejected_path, getattr(segmenter, "miss_hint", ""))
        if n == 1:
            return finalize(out, cfg.trials, run_config=ran)
        return writer.items_file
    except BaseException as exc:
        _remove_failed_run(out, before, cfg.shard, rejected_path)
        if isinstance(exc, BadInput):
            said = str(exc).replace(" (see rejected.csv)", "")   # it is removed with the rest
            raise BadInput(f"{said}. {_reasons(rejections)}The failed run's files were "
                           f"removed; fix the cause and run it again") from None
        raise


def check_output_folder(out: Path) -> None:
    """Refuse an --out that cannot be a folder we write into (an existing file, a path under a
    file, a read-only place), in one line, before any model is loaded. Nothing is created."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out}: is a file, not a folder; choose a folder path")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise BadInput(f"--out {out}: {parent} is a file, so no folder can be made under it")
    try:
        probe = tempfile.mkdtemp(prefix=".bodyscene-write-test-", dir=parent)
    except OSError as exc:
        raise BadInput(f"--out {out}: cannot write in {parent} ({exc.strerror})") from None
    os.rmdir(probe)


def _refuse_rebuild(out: Path, shard: tuple[int, int], rejected_path: Path) -> None:
    """A finished (or killed) run is never overwritten; say exactly what to delete to redo it."""
    i, n = shard
    if (out / "trials.csv").exists():
        raise BadInput(f"{out / 'trials.csv'}: a finished trial set is already there; choose a "
                       f"new --out, or delete the folder {out} to build it again (nothing is "
                       f"overwritten)")
    done = [p for p in (out / f"items.shard-{i}-of-{n}.csv", rejected_path) if p.exists()]
    if done:
        what = (f"the folder {out}" if n == 1 else
                " and ".join(str(p) for p in done) + " (this shard's files)")
        raise BadInput(f"{done[0]}: shard {i}/{n} was already built here; choose a new --out, "
                       f"or delete {what} to build it again (nothing is overwritten)")


def _remove_failed_run(out: Path, before: set[Path] | None, shard: tuple[int, int],
                       rejected_path: Path) -> None:
    """Remove what a failed run wrote. Unsharded: everything that was not in `out` before (all
    of `out` if the run made it). A shard shares its folder with others running at the same
    time, so it removes only its own files (its PNGs, if any, are rewritten identically)."""
    i, n = shard
    if n > 1:
        for p in (out / f"items.shard-{i}-of-{n}.csv", rejected_path,
                  out / f"build.shard-{i}-of-{n}.json"):
            p.unlink(missing_ok=True)
        return
    if before is None:
        shutil.rmtree(out, ignore_errors=True)
        return
    for p in set(out.iterdir()) - before if out.is_dir() else ():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def reason_kind(reason: str) -> str:
    """A rejection reason without its numbers and details ("N people detected"), so reasons
    of one kind are counted together."""
    return re.sub(r"\d+(\.\d+)?", "N", reason.split(" (")[0].split(":")[0]).strip()


def per_action(videos: list[Video], kept: set[str],
               rejections: list[Rejection]) -> list[dict]:
    """Per action: its videos, how many gave items (kept), how many gave none (rejected) and
    the most common reason among those (its kind; ties go to the first in sorted order).
    A file skipped before decoding counts under its folder's action."""
    actions: dict[str, list[str]] = {}
    for v in videos:
        actions.setdefault(v.action, []).append(v.key)
    reasons: dict[str, list[str]] = {}
    for r in rejections:
        reasons.setdefault(r.video, []).append(reason_kind(r.reason))
    known = {v.key for v in videos}
    for key in reasons:
        if key not in known:
            actions.setdefault(key.split("/")[0] if "/" in key else "(no action)",
                               []).append(key)
    rows = []
    for action in sorted(actions):
        lost = [k for k in actions[action] if k not in kept]
        counts: dict[str, int] = {}
        for k in lost:
            # a video's own most common reason, then the action's over its lost videos
            own = reasons.get(k) or ["no items"]
            top = max(sorted(set(own)), key=own.count)
            counts[top] = counts.get(top, 0) + 1
        reason = max(sorted(counts), key=counts.get) if counts else ""
        rows.append({"action": action, "videos": len(actions[action]),
                     "kept": len(actions[action]) - len(lost), "rejected": len(lost),
                     "reason": reason})
    return rows


def lost_actions(tally: list[dict]) -> list[dict]:
    """The actions that lost more than LOST_SHARE of their videos."""
    return [r for r in tally if r["videos"] and r["rejected"] > LOST_SHARE * r["videos"]]


def format_tally(tally: list[dict]) -> str:
    """The per-action table as printed at the end of a build."""
    width = max([len(r["action"]) for r in tally] + [6])
    lines = [f"per action: videos kept / rejected (most common reason)"]
    for r in tally:
        why = f"  ({r['reason']})" if r["rejected"] else ""
        lines.append(f"  {r['action']:<{width}}  {r['kept']:>4} kept / {r['rejected']:>4} "
                     f"rejected{why}")
    return "\n".join(lines)


def report_tally(tally: list[dict], rejected_path: Path, miss_hint: str = "") -> None:
    """Print the per-action table, and a warning on stderr for every action that lost more
    than half of its videos (the benchmark would silently lose that action's share).
    `miss_hint` (a segmenter's `miss_hint`) follows a warning whose reason is a missed person."""
    import sys

    if not tally:
        return
    print(format_tally(tally))
    for r in lost_actions(tally):
        hint = f" ({miss_hint})" if miss_hint and r["reason"] == "no person detected" else ""
        print(f"WARNING: action {r['action']!r} lost {r['rejected']} of its {r['videos']} "
              f"videos (more than {100 * LOST_SHARE:.0f}%), mostly {r['reason']!r}{hint}; see "
              f"{rejected_path}", file=sys.stderr)


def _record_tally(record: Path, tally: list[dict]) -> None:
    """Add the per-action tally to the build's run record (written when the run started)."""
    data = json.loads(record.read_text(encoding="utf-8"))
    data["per_action"] = tally
    data["lost_actions"] = [r["action"] for r in lost_actions(tally)]
    write_json_atomic(record, data, sort_keys=True)


def _reasons(rejections: list[Rejection]) -> str:
    """The rejections counted by kind ("no person detected: 6 frame(s)"), for an error that
    removes rejected.csv along with the rest of a failed run."""
    if not rejections:
        return ""
    kinds: dict[str, int] = {}
    for r in rejections:
        kind = reason_kind(r.reason)
        kinds[kind] = kinds.get(kind, 0) + 1
    listed = "; ".join(f"{k}: {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
    return f"Rejected: {listed}. "


def _summary(shard: tuple[int, int], n_items: int, n_videos: int, kept: int,
             rejections: list[Rejection], rejected_path: Path) -> str:
    i, n = shard
    bad_videos = len({r.video for r in rejections})
    text = (f"shard {i}/{n}: {n_items} items from {n_videos} videos ({kept} kept); "
            f"{len(rejections)} rejection(s) in {bad_videos} video(s), see {rejected_path}")
    unreadable = sorted(r.video for r in rejections if r.frame is None
                        and r.reason.startswith(("unreadable video", "empty video")))
    if unreadable:
        shown = ", ".join(unreadable[:5]) + (", ..." if len(unreadable) > 5 else "")
        text += f"\n{len(unreadable)} unreadable video(s): {shown}"
    return text


def _run(videos: list[Video], cfg: BuildConfig, segmenter: Segmenter, writer: TrialSetWriter,
         rejections: list[Rejection]) -> tuple[int, set[str]]:
    """The overlapped pipeline: reader thread -> segmenter (this thread) -> writer pool.
    Returns the number of items and the keys of the videos that gave at least one."""
    q: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    reader = threading.Thread(target=_reader, args=(videos, cfg, q, stop), daemon=True,
                              name="bodyscene-video-reader")
    reader.start()
    pending: set[Future] = set()
    n_items = 0
    kept: set[str] = set()
    try:
        with ThreadPoolExecutor(cfg.workers, thread_name_prefix="bodyscene-compose") as pool, \
                tqdm(total=len(videos), desc="videos", unit="video", leave=False,
                     disable=not cfg.progress) as bar:
            done = False
            while not done:
                got, done = _next_batch(q, max(1, segmenter.batch))
                clips = [g for g in got if isinstance(g, Clip)]
                rejections.extend(g for g in got if isinstance(g, Rejection))
                frames = [f for c in clips for _, w in c.windows for f in w]
                found = segmenter.segment(frames) if frames else []
                if len(found) != len(frames):
                    raise RuntimeError(f"segmenter {segmenter.name} returned {len(found)} "
                                       f"results for {len(frames)} frames")
                k = 0
                for clip in clips:
                    per_window = []
                    for _, w in clip.windows:
                        per_window.append(found[k:k + len(w)])
                        k += len(w)
                    items, rej = choose_masks(clip, per_window, cfg.policy, cfg.min_mask,
                                              describe(segmenter), cfg.min_part)
                    rejections.extend(rej)
                    for item in items:
                        # bound the items held in memory: wait while the pool is saturated
                        while len(pending) >= 2 * cfg.workers:
                            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for f in finished:
                                f.result()
                        pending.add(pool.submit(writer.add, item))
                        n_items += 1
                        kept.add(item.source)
                bar.update(len(got))
            for f in pending:
                f.result()
    finally:
        stop.set()
        reader.join(timeout=5)
    return n_items, kept


def write_rejected(path: Path, rejections: list[Rejection]) -> Path:
    rows = sorted(({"video": r.video, "frame": "" if r.frame is None else r.frame,
                    "reason": r.reason} for r in rejections),
                  key=lambda r: (r["video"], -1 if r["frame"] == "" else r["frame"], r["reason"]))
    write_csv_atomic(path, rows, REJECTED_SCHEMA.columns)
    return path


# --- merge ------------------------------------------------------------------------------------

def trials_config_from_record(data: dict) -> TrialSetConfig:
    """The TrialSetConfig a shard was built with, from its run record."""
    d = dict(data)
    names = {f.name for f in dataclasses.fields(TrialSetConfig)}
    d = {k: v for k, v in d.items() if k in names}
    if d.get("fill") is not None:
        d["fill"] = tuple(d["fill"])
    if d.get("mask_noise"):
        d["mask_noise"] = MaskNoise(**d["mask_noise"])
    return TrialSetConfig(**d)


def merge(out: str | Path) -> Path:
    """Join all shards in `out` into trials.csv and rejected.csv, with the trial settings the
    shards were built with (they must agree)."""
    out = Path(out)
    records = sorted(p for p in out.glob("build.shard-*-of-*.json") if _RECORD.match(p.name))
    if not records:
        raise BadInput(f"{out}: no shard records (build.shard-I-of-N.json); build the shards "
                       f"with `bodyscene stimuli build --shard I/N --out {out}` first")
    trials, first = None, None
    tallies = []
    for p in records:
        try:
            record = json.loads(p.read_text(encoding="utf-8"))
            data = record["config"]["trials"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"{p}: not a readable build record ({exc})") from None
        tallies.append(record.get("per_action") or [])
        if trials is None:
            trials, first = data, p
        elif data != trials:
            raise BadInput(f"{p}: built with different trial settings than {first.name} "
                           f"(e.g. --clip-frames, --k, --seed); shards must share them")
    cfg = trials_config_from_record(trials)
    tally = merge_tallies(tallies)
    manifest = finalize(out, cfg, run_config={"merged_shards": [p.name for p in records],
                                              "trials": cfg, "per_action": tally})
    rows = []
    for p in sorted(out.glob("rejected.shard-*-of-*.csv")):
        if _REJECTED_SHARD.match(p.name):
            rows.extend(read_csv(p, REJECTED_SCHEMA).to_dict("records"))
    target = out / "rejected.csv"
    if not target.exists():
        write_rejected(target, [Rejection(r["video"], int(r["frame"]) if r["frame"] else None,
                                          r["reason"]) for r in rows])
    print(f"merged {len(records)} shard(s): {manifest}; {len(rows)} rejection(s) in {target}")
    report_tally(tally, target)
    return manifest


def merge_tallies(tallies: list[list[dict]]) -> list[dict]:
    """The shards' per-action tallies added up; an action's reason is the one of the shard
    where it lost the most videos."""
    merged: dict[str, dict] = {}
    worst: dict[str, int] = {}
    for tally in tallies:
        for r in tally:
            m = merged.setdefault(r["action"], {"action": r["action"], "videos": 0, "kept": 0,
                                                "rejected": 0, "reason": ""})
            for k in ("videos", "kept", "rejected"):
                m[k] += int(r[k])
            if r["rejected"] > worst.get(r["action"], 0):
                worst[r["action"]], m["reason"] = r["rejected"], r["reason"]
    return [merged[a] for a in sorted(merged)]
