"""engine.plausibility: a drawn face gets a note, real photos (also compressed or
upscaled) do not; a face the detector is unsure of gets a note. Faces are found by the
real MediaPipe detector, which fires on the drawing too (that is why the check exists)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from engine.landmarks import DetectedFace, get_detector
from engine.plausibility import FLAT_SHARE_NOTE, flat_share, plausibility_notes


def drawn_face(blur: float = 0) -> np.ndarray:
    """(512, 512, 3) a flat-coloured cartoon face: skin oval, eyes, brows, nose, mouth."""
    im = Image.new("RGB", (512, 512), (120, 160, 220))
    d = ImageDraw.Draw(im)
    d.ellipse((136, 80, 376, 420), fill=(235, 190, 160), outline=(60, 40, 30), width=4)
    for cx in (206, 306):
        d.ellipse((cx - 30, 205, cx + 30, 240), fill=(255, 255, 255), outline=(0, 0, 0), width=2)
        d.ellipse((cx - 12, 210, cx + 12, 236), fill=(70, 50, 30))
        d.line((cx - 35, 185, cx + 35, 180), fill=(70, 40, 20), width=8)
    d.line((256, 230, 245, 300), fill=(150, 100, 80), width=4)
    d.line((245, 300, 268, 302), fill=(150, 100, 80), width=4)
    d.chord((206, 320, 306, 370), 0, 180, fill=(190, 60, 60))
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(im)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.fixture(scope="module")
def detector():
    detector = get_detector("mediapipe")
    yield detector
    detector.close()


def face_in(detector, rgb: np.ndarray) -> DetectedFace:
    faces = detector.detect(rgb)
    assert faces, "MediaPipe found no face"
    return max(faces, key=lambda f: f.area)


def photos(astronaut: np.ndarray) -> dict[str, np.ndarray]:
    upscaled = Image.fromarray(astronaut).resize((128, 128)).resize((512, 512), Image.BICUBIC)
    return {"astronaut": astronaut, "jpeg15": jpeg(astronaut, 15),
            "upscaled": np.asarray(upscaled)}


def test_real_photos_get_no_note(detector, astronaut):
    for name, rgb in photos(astronaut).items():
        face = face_in(detector, rgb)
        assert flat_share(rgb, face.landmarks68) < 0.05, name
        assert plausibility_notes(rgb, face) == [], name


@pytest.mark.parametrize(("blur", "quality"), [(0, None), (3, 30)], ids=["plain", "blur-jpeg30"])
def test_drawn_face_gets_a_note(detector, blur, quality):
    rgb = drawn_face(blur)
    rgb = rgb if quality is None else jpeg(rgb, quality)
    face = face_in(detector, rgb)
    assert flat_share(rgb, face.landmarks68) > FLAT_SHARE_NOTE
    notes = plausibility_notes(rgb, face)
    assert len(notes) == 1 and "drawn or synthetic" in notes[0]


def test_unsure_detection_gets_a_note(detector, astronaut):
    face = face_in(detector, astronaut)
    unsure = DetectedFace(face.landmarks68, face.box, score=0.3)
    notes = plausibility_notes(astronaut, unsure)
    assert len(notes) == 1 and "confidence 0.30" in notes[0]
