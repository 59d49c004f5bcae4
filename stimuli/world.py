"""The synthetic action world: articulated people doing actions in procedurally drawn scenes.

A figure is a 2-D skeleton (pelvis, spine, neck, head, shoulders, elbows, hands, hips, knees,
ankles, feet) whose joint angles follow an action-specific pose sequence over time; each clip
varies the phase, speed, joint angles, body size, build, position, left/right facing and clothes.
Scenes are sky/ground layouts with textures and objects, redrawn with new colours and object
placement per clip and static within it (a fixed camera). The figure is drawn at 4x and reduced
with area averaging, so the frame is anti-aliased and the person mask (coverage >= 0.5) comes from
the very same geometry: it is exact to the pixel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from bodyscene.extras import missing_extra

try:
    import cv2
except ModuleNotFoundError as exc:  # no stimuli extra: one line naming it
    raise missing_extra(exc) or exc

ACTIONS: tuple[str, ...] = ("wave", "cheer", "squat", "kick", "punch", "bow", "jumping_jack",
                            "balance")
SCENES: tuple[str, ...] = ("beach", "forest", "city_street", "gym", "snow_field", "meadow",
                           "indoor_room", "stage")
_SUPERSAMPLE = 4

# Body proportions in units of standing height (soles to top of head = 1).
_TORSO, _NECK, _HEAD_R = 0.30, 0.035, 0.075
_UPPER_ARM, _FOREARM, _THIGH, _SHIN, _FOOT = 0.17, 0.16, 0.245, 0.235, 0.055
_SHOULDER_W, _HIP_W, _ANKLE = 0.085, 0.05, 0.03
_ARM_T, _LEG_T, _SIDE_TORSO_T = 0.055, 0.07, 0.12

# Palette indices of the figure's label image (0 = no figure).
_SKIN, _SHIRT, _TROUSERS, _SHOES, _HAIR = 1, 2, 3, 4, 5
_FAR = 5          # a far-side part (side view) has its near index + _FAR, drawn in shade


def home_scene(action: str) -> str:
    """Each action's home scene (the one it is shown in with probability scene-consistency)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; the world knows {', '.join(ACTIONS)}")
    return SCENES[ACTIONS.index(action) % len(SCENES)]


@dataclass
class WorldStyle:
    size: int                      # image side in pixels
    figure_scale: float = 1.0      # figure height relative to the default (~55-70% of the image)
    scene_salience: float = 1.0    # contrast of scene features: 0 = a plain field of one colour
    video_fps: float = 8.0         # frames per second of the rendered videos


# ------------------------------------------------------------------------------------- poses

@dataclass
class Pose:
    """Joint angles of one frame, in degrees. Limb angles are absolute, measured from straight
    down; in the front view positive turns a limb outward from the body (side a is image right,
    side b is mirrored), in the side view positive turns it forward. Side a is the near side in
    the side view."""

    view: str                         # "front" or "side"
    lean: float                       # spine from vertical, positive forward / to image right
    head: float                       # head tilt relative to the spine
    arm_a: tuple[float, float]        # (upper arm, forearm)
    arm_b: tuple[float, float]
    leg_a: tuple[float, float]        # (thigh, shin)
    leg_b: tuple[float, float]
    lift: float = 0.0                 # feet off the ground (jumps), in body heights


def _s(p: float) -> float:
    return math.sin(2 * math.pi * p)


def _c01(p: float) -> float:
    """0 -> 1 -> 0 over one cycle."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * p)


def _wave(p):
    return Pose("front", 0, 0, arm_a=(125, 160 + 28 * _s(p)), arm_b=(8, 4),
                leg_a=(6, 3), leg_b=(6, 3))


def _cheer(p):
    b = _c01(p)
    return Pose("front", 0, -8, arm_a=(150 + 8 * b, 158 + 10 * b), arm_b=(150 + 8 * b, 158 + 10 * b),
                leg_a=(9, 6), leg_b=(9, 6), lift=0.03 * b)


def _squat(p):
    d = 0.55 + 0.45 * _c01(p)
    thigh = 25 + 55 * d
    return Pose("front", 0, 0, arm_a=(30, -105), arm_b=(30, -105),
                leg_a=(thigh, -8 - 5 * d), leg_b=(thigh, -8 - 5 * d))


def _kick(p):
    k = _c01(p)
    thigh = 35 + 60 * k
    return Pose("side", -8 - 6 * k, 5, arm_a=(-35, 20), arm_b=(40, 120),
                leg_a=(thigh, thigh - 45 * (1 - k) + 5), leg_b=(-4, -4))


def _punch(p):
    e = _c01(p)       # near arm extends while the far one guards, then they swap
    f = 1 - e
    return Pose("side", 6, -4, arm_a=(25 + 65 * e, 150 - 60 * e), arm_b=(25 + 65 * f, 150 - 60 * f),
                leg_a=(18, 10), leg_b=(-18, -20))


def _bow(p):
    b = 0.55 + 0.45 * _c01(p)
    lean = 10 + 70 * b
    return Pose("side", lean, 10, arm_a=(8 + 10 * b, 12 + 10 * b), arm_b=(4 + 10 * b, 8 + 10 * b),
                leg_a=(-3, 0), leg_b=(-3, 0))


def _jumping_jack(p):
    o = _c01(p)
    arm = 18 + 147 * o
    leg = 4 + 24 * o
    return Pose("front", 0, 0, arm_a=(arm, arm + 8 * o), arm_b=(arm, arm + 8 * o),
                leg_a=(leg, leg), leg_b=(leg, leg), lift=0.045 * abs(_s(p)))


def _balance(p):
    sway = 3 * _s(p)
    return Pose("front", sway, -sway, arm_a=(165, -170), arm_b=(165, -170),
                leg_a=(78, -62), leg_b=(2, 0))


_POSES: dict[str, tuple[Callable[[float], Pose], float]] = {
    # action: (pose at phase p, cycles per second)
    "wave": (_wave, 1.2), "cheer": (_cheer, 1.0), "squat": (_squat, 0.5), "kick": (_kick, 0.6),
    "punch": (_punch, 0.9), "bow": (_bow, 0.4), "jumping_jack": (_jumping_jack, 0.9),
    "balance": (_balance, 0.3),
}
assert set(_POSES) == set(ACTIONS)


# ----------------------------------------------------------------------------- clip sampling

@dataclass(frozen=True)
class ClipParams:
    """Everything that varies between clips of one action, drawn once per clip."""

    action: str
    scene: str
    phase: float                    # phase at the first frame (cycles)
    rate: float                     # cycles per second
    jitter: tuple[float, ...]       # lean + 8 limb-angle offsets, degrees
    mirror: bool                    # left/right flip (facing direction in the side view)
    height: float                   # standing height as a fraction of the image side
    x: float                        # horizontal position in the free range, 0..1
    y: float                        # vertical position in the free range, 0..1
    limbs: float                    # limb thickness factor
    arms: float                     # arm length factor
    colours: tuple[tuple[int, int, int], ...]   # skin, shirt, trousers, shoes, hair
    scene_seed: int


def sample_clip(action: str, scene: str, style: WorldStyle, rng: np.random.Generator) -> ClipParams:
    if action not in _POSES:
        raise ValueError(f"unknown action {action!r}; the world knows {', '.join(ACTIONS)}")
    if scene not in _SCENES:
        raise ValueError(f"unknown scene {scene!r}; the world knows {', '.join(SCENES)}")
    base_rate = _POSES[action][1]
    skin = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
    shirt = _hsv(rng.uniform(0, 180), rng.uniform(120, 230), rng.uniform(120, 235))
    trousers = _hsv(rng.uniform(0, 180), rng.uniform(40, 200), rng.uniform(40, 140))
    shoes = _hsv(rng.uniform(0, 180), rng.uniform(0, 80), rng.uniform(20, 70))
    hair = _HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))]
    return ClipParams(
        action=action, scene=scene, phase=float(rng.uniform(0, 1)),
        rate=float(base_rate * rng.uniform(0.8, 1.25)),
        jitter=tuple(float(v) for v in np.concatenate([rng.normal(0, 3, 1), rng.normal(0, 6, 8)])),
        mirror=bool(rng.random() < 0.5), height=float(rng.uniform(0.56, 0.68) * style.figure_scale),
        x=float(rng.uniform(0, 1)), y=float(rng.uniform(0.55, 1.0)),
        limbs=float(rng.uniform(0.85, 1.2)), arms=float(rng.uniform(0.93, 1.07)),
        colours=(skin, shirt, trousers, shoes, hair), scene_seed=int(rng.integers(2**31)))


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    px = np.array([[[h, s, v]]], np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0])  # type: ignore


_SKIN_TONES = ((255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66),
               (141, 85, 36), (92, 56, 30))
_HAIR_COLOURS = ((30, 22, 16), (70, 45, 25), (120, 80, 40), (200, 160, 90), (150, 150, 150),
         (20, 20, 20))


# ---------------------------------------------------------------------------- the skeleton

def _dir(angle: float) -> np.ndarray:
    """Unit vector of a limb at `angle` degrees from straight down (y up, positive toward +x)."""
    a = math.radians(angle)
    return np.array([math.sin(a), -math.cos(a)])


def _joints(pose: Pose, jitter: tuple[float, ...], arms: float) -> dict[str, np.ndarray]:
    """Joint positions in body units (y up, pelvis at the origin before grounding)."""
    j = jitter
    lean = pose.lean + j[0]
    spine = np.array([math.sin(math.radians(lean)), math.cos(math.radians(lean))])
    across = np.array([spine[1], -spine[0]])
    pelvis = np.zeros(2)
    neck = pelvis + _TORSO * spine
    front = pose.view == "front"
    sw, hw = (_SHOULDER_W, _HIP_W) if front else (0.0, 0.012)
    out = {"pelvis": pelvis, "neck": neck}
    head_a = math.radians(lean + pose.head)
    head_dir = np.array([math.sin(head_a), math.cos(head_a)])
    out["head"] = neck + (_NECK + _HEAD_R) * head_dir
    out["head_dir"] = head_dir
    for k, (side, sign) in enumerate((("a", 1.0), ("b", -1.0))):
        mirror = sign if front else 1.0         # front view: side b mirrors side a
        width = sign if front else (1.0 if side == "a" else -1.0)
        up, fore = getattr(pose, f"arm_{side}")
        thigh, shin = getattr(pose, f"leg_{side}")
        up, fore = up + j[1 + 4 * k], fore + j[2 + 4 * k]
        thigh, shin = thigh + j[3 + 4 * k], shin + j[4 + 4 * k]
        shoulder = neck - 0.03 * spine + width * sw * across
        hip = pelvis + width * hw * across
        elbow = shoulder + arms * _UPPER_ARM * _dir(mirror * up)
        hand = elbow + arms * _FOREARM * _dir(mirror * fore)
        knee = hip + _THIGH * _dir(mirror * thigh)
        ankle = knee + _SHIN * _dir(mirror * shin)
        toe_dir = np.array([0.6 * sign, -0.15]) if front else np.array([1.0, 0.0])
        toe = ankle + _FOOT * toe_dir / np.linalg.norm(toe_dir)
        out.update({f"shoulder_{side}": shoulder, f"elbow_{side}": elbow, f"hand_{side}": hand,
                    f"hip_{side}": hip, f"knee_{side}": knee, f"ankle_{side}": ankle,
                    f"toe_{side}": toe})
    # stand on the lower foot; a jump lifts the whole body
    ground = min(out["ankle_a"][1], out["ankle_b"][1]) - _ANKLE
    shift = np.array([0.0, -ground + pose.lift])
    return {k: (v + shift if k != "head_dir" else v) for k, v in out.items()}


def clip_poses(params: ClipParams, n_frames: int, fps: float) -> list[tuple[Pose, dict]]:
    """The pose and joints of every frame of a clip, mirrored as the clip says."""
    fn = _POSES[params.action][0]
    poses = []
    for t in range(n_frames):
        pose = fn((params.phase + params.rate * t / fps) % 1.0)
        joints = _joints(pose, params.jitter, params.arms)
        if params.mirror:
            joints = {k: v * np.array([-1.0, 1.0]) for k, v in joints.items()}
        poses.append((pose, joints))
    return poses


def _placement(params: ClipParams, poses: list[tuple[Pose, dict]], size: int):
    """Pixels per body unit and the image position of the body origin, chosen so that the
    whole clip's figure stays inside the frame (shrunk if it would not fit)."""
    pts = np.concatenate([np.stack([v for k, v in j.items() if k != "head_dir"])
                          for _, j in poses])
    pad = max(_HEAD_R, _LEG_T * params.limbs)
    x0, x1 = pts[:, 0].min() - pad, pts[:, 0].max() + pad
    y0, y1 = min(pts[:, 1].min(), 0.0) - 0.01, pts[:, 1].max() + pad
    margin = 1.0
    scale = params.height * size
    scale = min(scale, (size - 2 * margin) / (x1 - x0), (size - 2 * margin) / (y1 - y0))
    # image x of body x = 0, image y of body y = 0 (image y grows downward)
    ox_lo, ox_hi = margin - x0 * scale, size - margin - x1 * scale
    oy_lo, oy_hi = margin + y1 * scale, size - margin + y0 * scale
    ox = ox_lo + params.x * max(0.0, ox_hi - ox_lo)
    oy = oy_lo + params.y * max(0.0, oy_hi - oy_lo)
    return scale, ox, oy


def _draw_figure(pose: Pose, joints: dict, params: ClipParams, scale: float, ox: float,
                 oy: float, size: int) -> np.ndarray:
    """The figure as a label image at 4x resolution: 0 = empty, else a palette index."""
    S = _SUPERSAMPLE
    canvas = np.zeros((size * S, size * S), np.uint8)

    def px(p: np.ndarray) -> tuple[int, int]:
        return (int(round((ox + p[0] * scale) * S)), int(round((oy - p[1] * scale) * S)))

    def thick(t: float) -> int:
        return max(1, int(round(t * params.limbs * scale * S)))

    def limb(a, b, label, t):
        cv2.line(canvas, px(joints[a]), px(joints[b]), label, thick(t), cv2.LINE_8)

    def arm(side, far):
        f = _FAR if far else 0
        limb(f"shoulder_{side}", f"elbow_{side}", _SHIRT + f, _ARM_T)
        limb(f"elbow_{side}", f"hand_{side}", _SKIN + f, _ARM_T * 0.85)
        cv2.circle(canvas, px(joints[f"hand_{side}"]), thick(_ARM_T * 0.6), _SKIN + f, -1)

    def leg(side, far):
        f = _FAR if far else 0
        limb(f"hip_{side}", f"knee_{side}", _TROUSERS + f, _LEG_T)
        limb(f"knee_{side}", f"ankle_{side}", _TROUSERS + f, _LEG_T * 0.9)
        limb(f"ankle_{side}", f"toe_{side}", _SHOES + f, _LEG_T * 0.75)

    def torso():
        if pose.view == "front":
            n, p = joints["neck"], joints["pelvis"]
            spine = (n - p) / max(1e-6, float(np.linalg.norm(n - p)))
            across = np.array([spine[1], -spine[0]])
            w_top, w_bot = _SHOULDER_W + _ARM_T * 0.4, _HIP_W + _LEG_T * 0.5
            quad = [n - 0.01 * spine + w_top * across, n - 0.01 * spine - w_top * across,
                    p - 0.02 * spine - w_bot * across, p - 0.02 * spine + w_bot * across]
            cv2.fillConvexPoly(canvas, np.array([px(q) for q in quad], np.int32), _SHIRT)
        else:
            cv2.line(canvas, px(joints["pelvis"]), px(joints["neck"]), _SHIRT,
                     thick(_SIDE_TORSO_T), cv2.LINE_8)
        # neck
        limb("neck", "head", _SKIN, _ARM_T * 0.8)

    def head():
        c = px(joints["head"])
        r = max(1, int(round(_HEAD_R * scale * S)))
        cv2.circle(canvas, c, r, _SKIN, -1)
        # hair: a cap over the top half of the head, turned with it
        hd = joints["head_dir"]
        ang = math.degrees(math.atan2(-hd[1], hd[0]))  # image-space angle of "up" for the head
        cv2.ellipse(canvas, c, (r, r), ang, -90, 90, _HAIR, -1)
        cv2.circle(canvas, (int(round(c[0] - 0.45 * r * hd[0])), int(round(c[1] + 0.45 * r * hd[1]))),
                   int(round(r * 0.72)), _SKIN, -1)

    if pose.view == "front":
        leg("a", False), leg("b", False)
        torso()
        arm("a", False), arm("b", False)
        head()
    else:
        arm("b", True), leg("b", True)
        torso()
        leg("a", False)
        head()
        arm("a", False)
    return canvas


def _palette(params: ClipParams) -> np.ndarray:
    near = np.array(params.colours, np.float32)               # skin, shirt, trousers, shoes, hair
    far = near * 0.72                                            # far-side limbs in shade
    pal = np.zeros((11, 3), np.float32)
    pal[1:6] = near
    pal[6:11] = far
    return pal


def _frame_indices(n_frames: int, only: Sequence[int] | None) -> list[int]:
    idx = list(range(n_frames)) if only is None else [int(t) for t in only]
    if any(not 0 <= t < n_frames for t in idx):
        raise ValueError(f"frame indices must lie in [0, {n_frames}), got {idx}")
    return idx


def render_layers(params: ClipParams, n_frames: int, style: WorldStyle,
                  only: Sequence[int] | None = None):
    """The clip's static scene (H,W,3 float32), and per frame the figure's premultiplied colour
    (T,H,W,3 float32) and its coverage (T,H,W float32 in [0, 1]). `only` renders just those
    frame indices of the n-frame clip (identical to the same frames of a full render)."""
    size = style.size
    S = _SUPERSAMPLE
    scene = draw_scene(params.scene, size, style.scene_salience,
                       np.random.default_rng(params.scene_seed))
    poses = clip_poses(params, n_frames, style.video_fps)   # placement needs the whole clip
    scale, ox, oy = _placement(params, poses, size)
    pal = _palette(params)
    idx = _frame_indices(n_frames, only)
    colour = np.zeros((len(idx), size, size, 3), np.float32)
    alpha = np.zeros((len(idx), size, size), np.float32)
    for k, t in enumerate(idx):
        pose, joints = poses[t]
        labels = _draw_figure(pose, joints, params, scale, ox, oy, size)
        # only the figure's box (on the 4x grid) needs colouring and reducing
        x, y, w, h = cv2.boundingRect(labels)
        if w == 0:
            continue
        x0, y0 = x // S, y // S
        x1, y1 = -(-(x + w) // S), -(-(y + h) // S)
        crop = labels[y0 * S:y1 * S, x0 * S:x1 * S]
        colour[k, y0:y1, x0:x1] = cv2.resize(pal[crop], (x1 - x0, y1 - y0),
                                             interpolation=cv2.INTER_AREA)
        alpha[k, y0:y1, x0:x1] = cv2.resize((crop > 0).astype(np.float32), (x1 - x0, y1 - y0),
                                            interpolation=cv2.INTER_AREA)
    return scene.astype(np.float32), colour, alpha


def render_clip(params: ClipParams, n_frames: int, style: WorldStyle,
                only: Sequence[int] | None = None):
    """Frames (T,H,W,3 uint8 RGB) and exact person masks (T,H,W bool) of one clip (or of the
    frame indices in `only`)."""
    scene, colour, alpha = render_layers(params, n_frames, style, only)
    frames = scene[None] * (1.0 - alpha[..., None]) + colour
    frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
    return frames, alpha >= 0.5


def render_video(action: str, scene: str, n_frames: int, style: WorldStyle,
                 rng: np.random.Generator, only: Sequence[int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A clip of `action` performed in `scene`, with this clip's variation drawn from `rng`.
    `only` (frame indices) renders just those frames of the clip, e.g. the ones a trial set
    samples; they are byte-identical to the same frames of the full clip."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    return render_clip(sample_clip(action, scene, style, rng), n_frames, style, only)


# ---------------------------------------------------------------------------------- scenes

def _jit(rng: np.random.Generator, rgb, sd: float = 14.0) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.normal(0, sd, 3), 0, 255)


def _vgrad(img: np.ndarray, y0: int, y1: int, top, bottom) -> None:
    y0, y1 = max(0, y0), min(img.shape[0], y1)
    if y1 <= y0:
        return
    t = np.linspace(0, 1, y1 - y0, dtype=np.float32)[:, None, None]
    img[y0:y1] = (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)


def _noise(rng: np.random.Generator, size: int, cells: int, amp: float,
           shape: tuple[int, int] | None = None) -> np.ndarray:
    """Smooth value noise: random values on a coarse grid, enlarged with bilinear interpolation."""
    h, w = shape or (size, size)
    coarse = rng.normal(0, amp, (max(2, h * cells // size), max(2, w * cells // size)))
    return cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)[..., None]


def _poly(img, pts, colour) -> None:
    cv2.fillPoly(img, [np.round(np.asarray(pts)).astype(np.int32)], tuple(float(c) for c in colour),
                 cv2.LINE_AA)


def _beach(img, n, rng):
    hz = int(n * rng.uniform(0.42, 0.52))
    shore = int(n * rng.uniform(0.6, 0.68))
    _vgrad(img, 0, hz, _jit(rng, (90, 160, 235)), _jit(rng, (180, 215, 245)))
    _vgrad(img, hz, shore, _jit(rng, (20, 90, 160)), _jit(rng, (40, 140, 190)))
    _vgrad(img, shore, n, _jit(rng, (235, 210, 150)), _jit(rng, (215, 185, 120)))
    img[shore:] += _noise(rng, n, n // 3, 10, (n - shore, n))
    for k in range(3):   # wave crests
        y = hz + (k + 1) * (shore - hz) / 4 + rng.uniform(-1, 1)
        cv2.line(img, (0, int(y)), (n, int(y + rng.uniform(-2, 2))), (230, 240, 250), 1, cv2.LINE_AA)
    cx, cy = rng.uniform(0.1, 0.9) * n, rng.uniform(0.08, 0.25) * n
    cv2.circle(img, (int(cx), int(cy)), max(2, int(0.07 * n)), (255, 230, 90), -1, cv2.LINE_AA)
    ux = rng.uniform(0.08, 0.92) * n   # parasol
    uy = shore + rng.uniform(0.05, 0.15) * n
    cv2.line(img, (int(ux), int(uy)), (int(ux), int(uy + 0.22 * n)), (90, 70, 50), max(1, n // 48))
    _poly(img, [(ux - 0.14 * n, uy + 0.03 * n), (ux, uy - 0.05 * n), (ux + 0.14 * n, uy + 0.03 * n)],
          _jit(rng, (220, 60, 60), 30))


def _forest(img, n, rng):
    hz = int(n * rng.uniform(0.5, 0.6))
    _vgrad(img, 0, hz, _jit(rng, (170, 205, 190)), _jit(rng, (120, 160, 110)))
    _vgrad(img, hz, n, _jit(rng, (60, 95, 40)), _jit(rng, (45, 70, 30)))
    img[hz:] += _noise(rng, n, n // 2, 14, (n - hz, n))
    for _ in range(int(rng.integers(5, 9))):
        x = rng.uniform(0, 1) * n
        base = hz + rng.uniform(-0.02, 0.1) * n
        w = rng.uniform(0.04, 0.07) * n
        cv2.rectangle(img, (int(x - w / 2), int(base - 0.3 * n)), (int(x + w / 2), int(base)),
                      tuple(float(c) for c in _jit(rng, (95, 65, 40))), -1)
        r = rng.uniform(0.1, 0.17) * n
        for dx, dy in ((0, -0.35), (-0.08, -0.28), (0.08, -0.28)):
            cv2.circle(img, (int(x + dx * n), int(base + dy * n)), int(r),
                       tuple(float(c) for c in _jit(rng, (40, 110, 45), 20)), -1, cv2.LINE_AA)


def _city_street(img, n, rng):
    hz = int(n * rng.uniform(0.58, 0.66))
    _vgrad(img, 0, hz, _jit(rng, (175, 185, 200)), _jit(rng, (215, 215, 215)))
    x = -rng.uniform(0, 0.1) * n
    while x < n:
        w = rng.uniform(0.18, 0.3) * n
        top = rng.uniform(0.08, 0.35) * n
        col = _jit(rng, (150, 110, 90) if rng.random() < 0.5 else (120, 125, 135), 25)
        cv2.rectangle(img, (int(x), int(top)), (int(x + w), hz), tuple(float(c) for c in col), -1)
        win = col * 0.45 + np.float32([60, 70, 90])
        step = max(3, int(0.07 * n))
        for wy in range(int(top) + step // 2, hz - step, step):
            for wx in range(int(x) + step // 2, int(x + w) - step // 2, step):
                cv2.rectangle(img, (wx, wy), (wx + max(1, step // 2), wy + max(1, step // 2)),
                              tuple(float(c) for c in win), -1)
        x += w + rng.uniform(0.0, 0.04) * n
    cv2.rectangle(img, (0, hz), (n, hz + max(2, n // 16)), (170, 170, 165), -1)   # sidewalk
    _vgrad(img, hz + max(2, n // 16), n, _jit(rng, (80, 80, 85)), _jit(rng, (60, 60, 65)))
    img[hz:] += _noise(rng, n, n // 2, 8, (n - hz, n))
    y = int((hz + n) / 2 + 0.1 * n)
    dash = max(3, n // 10)
    for x0 in range(int(rng.uniform(0, dash)), n, 2 * dash):
        cv2.line(img, (x0, y), (x0 + dash, y), (235, 220, 120), max(1, n // 40))


def _gym(img, n, rng):
    hz = int(n * rng.uniform(0.6, 0.7))
    wall = _jit(rng, (215, 220, 200))
    _vgrad(img, 0, hz, wall, wall * 0.92)
    floor = _jit(rng, (200, 140, 80))
    _vgrad(img, hz, n, floor, floor * 0.85)
    step = max(3, n // 12)
    for y in range(hz + step // 2, n, step):   # floor planks
        cv2.line(img, (0, y), (n, y), tuple(float(c) for c in floor * 0.7), 1, cv2.LINE_AA)
    x0 = rng.uniform(0.0, 0.5) * n             # wall bars
    bars = _jit(rng, (150, 100, 55))
    for k in range(6):
        x = int(x0 + k * 0.07 * n)
        cv2.line(img, (x, int(0.12 * n)), (x, hz), tuple(float(c) for c in bars), max(1, n // 40))
    for y in np.linspace(0.15 * n, hz - 2, 7):
        cv2.line(img, (int(x0), int(y)), (int(x0 + 5 * 0.07 * n), int(y)),
                 tuple(float(c) for c in bars * 0.8), 1, cv2.LINE_AA)
    cv2.line(img, (0, int(hz * 0.4)), (n, int(hz * 0.4)), tuple(float(c) for c in _jit(rng, (40, 90, 170), 30)),
             max(1, n // 30))
    mx = rng.uniform(0.55, 0.85) * n           # a rack of dumbbells / a medicine ball
    cv2.circle(img, (int(mx), int(hz + 0.08 * n)), max(2, int(0.06 * n)),
               tuple(float(c) for c in _jit(rng, (40, 40, 40))), -1, cv2.LINE_AA)


def _snow_field(img, n, rng):
    hz = int(n * rng.uniform(0.5, 0.6))
    _vgrad(img, 0, hz, _jit(rng, (150, 180, 220)), _jit(rng, (215, 225, 240)))
    for _ in range(3):                          # mountains with snow caps
        cx, w, h = rng.uniform(0, 1) * n, rng.uniform(0.25, 0.45) * n, rng.uniform(0.15, 0.3) * n
        _poly(img, [(cx - w, hz), (cx, hz - h), (cx + w, hz)], _jit(rng, (120, 125, 145)))
        _poly(img, [(cx - w * 0.3, hz - h * 0.7), (cx, hz - h), (cx + w * 0.3, hz - h * 0.7)],
              (245, 248, 255))
    _vgrad(img, hz, n, (235, 240, 250), (250, 250, 255))
    img[hz:] += _noise(rng, n, n // 3, 7, (n - hz, n)) * np.float32([1, 1, 0.4])
    for _ in range(int(rng.integers(2, 5))):    # pines
        x, base = rng.uniform(0, 1) * n, hz + rng.uniform(0, 0.08) * n
        h = rng.uniform(0.15, 0.28) * n
        _poly(img, [(x - 0.07 * n, base), (x, base - h), (x + 0.07 * n, base)], _jit(rng, (30, 80, 50)))


def _meadow(img, n, rng):
    hz = int(n * rng.uniform(0.45, 0.58))
    _vgrad(img, 0, hz, _jit(rng, (70, 140, 230)), _jit(rng, (160, 200, 240)))
    for _ in range(int(rng.integers(2, 4))):    # clouds
        cx, cy = rng.uniform(0, 1) * n, rng.uniform(0.06, 0.3) * n
        for dx in (-0.06, 0.0, 0.06):
            cv2.ellipse(img, (int(cx + dx * n), int(cy)), (max(2, int(0.07 * n)), max(1, int(0.04 * n))),
                        0, 0, 360, (250, 250, 250), -1, cv2.LINE_AA)
    hill = _jit(rng, (110, 170, 70))
    cv2.ellipse(img, (int(rng.uniform(0.2, 0.8) * n), hz + 2), (int(0.5 * n), int(0.12 * n)), 0,
                180, 360, tuple(float(c) for c in hill * 0.9), -1, cv2.LINE_AA)
    _vgrad(img, hz, n, hill, _jit(rng, (80, 150, 50)))
    img[hz:] += _noise(rng, n, n // 2, 12, (n - hz, n))
    for _ in range(int(0.25 * n)):              # flowers
        x, y = rng.uniform(0, n), rng.uniform(hz + 2, n)
        col = ((250, 240, 80), (250, 120, 160), (255, 255, 255))[int(rng.integers(3))]
        img[int(y), int(x)] = col


def _indoor_room(img, n, rng):
    hz = int(n * rng.uniform(0.62, 0.72))
    wall = _jit(rng, (225, 200, 170), 20)
    img[:hz] = wall
    stripe = max(2, n // 12)
    for x in range(int(rng.uniform(0, stripe)), n, 2 * stripe):   # wallpaper stripes
        img[:hz, x:x + stripe] = wall * 0.88
    carpet = _jit(rng, (150, 60, 60), 30)
    _vgrad(img, hz, n, carpet, carpet * 0.8)
    img[hz:] += _noise(rng, n, n // 3, 10, (n - hz, n))
    cv2.line(img, (0, hz), (n, hz), tuple(float(c) for c in wall * 0.6), max(1, n // 32))
    wx, wy = rng.uniform(0.05, 0.6) * n, rng.uniform(0.1, 0.2) * n       # a window
    ww, wh = 0.3 * n, 0.28 * n
    cv2.rectangle(img, (int(wx), int(wy)), (int(wx + ww), int(wy + wh)), (140, 190, 235), -1)
    cv2.rectangle(img, (int(wx), int(wy)), (int(wx + ww), int(wy + wh)), (250, 250, 245), max(1, n // 40))
    cv2.line(img, (int(wx + ww / 2), int(wy)), (int(wx + ww / 2), int(wy + wh)), (250, 250, 245),
             max(1, n // 48))
    px_ = rng.uniform(0.05, 0.85) * n                                   # a picture frame
    cv2.rectangle(img, (int(px_), int(0.2 * n)), (int(px_ + 0.12 * n), int(0.34 * n)),
                  tuple(float(c) for c in _jit(rng, (60, 90, 60), 40)), -1)
    cv2.rectangle(img, (int(px_), int(0.2 * n)), (int(px_ + 0.12 * n), int(0.34 * n)), (110, 80, 40),
                  max(1, n // 64))


def _stage(img, n, rng):
    hz = int(n * rng.uniform(0.68, 0.76))
    img[:hz] = _jit(rng, (25, 20, 30), 8)
    curtain = _jit(rng, (170, 20, 35), 20)
    cw = rng.uniform(0.15, 0.22) * n
    for x in range(n):                                                  # folded curtains
        if x < cw or x > n - cw:
            img[:hz, x] = curtain * (0.7 + 0.3 * math.cos(x * 2 * math.pi / max(3, n / 12)))
    img[:max(2, int(0.08 * n))] = curtain * 0.85                         # valance
    floor = _jit(rng, (120, 75, 40))
    _vgrad(img, hz, n, floor, floor * 0.7)
    for x in range(0, n, max(3, n // 10)):
        cv2.line(img, (x, hz), (int(n / 2 + (x - n / 2) * 1.6), n), tuple(float(c) for c in floor * 0.6),
                 1, cv2.LINE_AA)
    sx = rng.uniform(0.3, 0.7) * n                                       # spotlight
    spot = np.zeros_like(img[..., 0])
    cv2.ellipse(spot, (int(sx), int(hz + 0.1 * n)), (int(0.25 * n), int(0.06 * n)), 0, 0, 360, 1.0, -1,
                cv2.LINE_AA)
    _poly(spot, [(sx - 0.04 * n, 0), (sx + 0.04 * n, 0), (sx + 0.25 * n, hz + 0.1 * n),
                 (sx - 0.25 * n, hz + 0.1 * n)], (0.45,))
    spot = cv2.GaussianBlur(spot, (0, 0), max(0.5, n / 64))
    img += spot[..., None] * np.float32([120, 110, 70])


_SCENES: dict[str, Callable[[np.ndarray, int, np.random.Generator], None]] = {
    "beach": _beach, "forest": _forest, "city_street": _city_street, "gym": _gym,
    "snow_field": _snow_field, "meadow": _meadow, "indoor_room": _indoor_room, "stage": _stage,
}
assert set(_SCENES) == set(SCENES)


def draw_scene(scene: str, size: int, salience: float, rng: np.random.Generator) -> np.ndarray:
    """One scene image (H,W,3 uint8 RGB). `salience` scales every feature's contrast about the
    image's mean colour: 0 leaves a plain field, 1 the full scene."""
    if scene not in _SCENES:
        raise ValueError(f"unknown scene {scene!r}; the world knows {', '.join(SCENES)}")
    img = np.zeros((size, size, 3), np.float32)
    _SCENES[scene](img, size, rng)
    img += rng.normal(0, 3.0, img.shape).astype(np.float32)           # sensor grain
    img = np.clip(img, 0, 255)
    mean = img.mean(axis=(0, 1), keepdims=True)
    img = mean + float(salience) * (img - mean)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
