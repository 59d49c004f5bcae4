"""Pictures for docs/real_videos.md from the real-photo test's footage: builds it with
`--segmenter mediapipe` (as tests/test_real_photos.py does) and copies the contact sheet
(original / body / background / conflict) and the masks sheet into docs/.

    python scripts/real_photos_figure.py          # needs the [realseg] extra and fetch-segmenter
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    import real_photos

    from bodyscene.cli import main as bodyscene

    why = real_photos.unavailable()
    if why:
        print(f"cannot run the offline segmenter: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="real_photos_") as tmp:
        videos = real_photos.write_videos(Path(tmp) / "haa500")
        out = Path(tmp) / "stim"
        code = bodyscene(["stimuli", "build", "--videos", str(videos), "--out", str(out),
                          "--segmenter", "mediapipe", "--samples-per-video", "2", "--quiet",
                          "--contact-sheet-items", "4"])
        if code:
            return code
        for name, target in (("contact_sheet.png", "real_photos_contact_sheet.png"),
                             ("masks_sheet.png", "real_photos_masks.png")):
            shutil.copyfile(out / name, ROOT / "docs" / target)
            print(f"wrote docs/{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
