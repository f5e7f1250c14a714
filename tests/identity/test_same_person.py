"""engine.identity.same_person: altered copies of one photo are judged the same person,
portraits of different people are not; the policy (exit 2 naming the photos, notes for
borderline pairs, --allow-different-people) on hand-made judgements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import BadInputError
from engine.identity.same_person import (
    DIFFERENT_MIN,
    SAME_MAX,
    PairJudgement,
    compare_photos,
    face_descriptors,
    judge_pairs,
    same_person_notes,
)

PORTRAITS = Path(__file__).resolve().parents[2].parent / "shared/datasets/congress-portraits"


@pytest.fixture(scope="module")
def portraits(dlib_models) -> list[tuple[np.ndarray, np.ndarray]]:
    """Four congress portraits (four people) with dlib's 68 landmarks."""
    from PIL import Image

    files = sorted((PORTRAITS / "images").glob("*.jpg"))[:4]
    if len(files) < 4:
        pytest.skip(f"no congress portraits in {PORTRAITS}")
    out = []
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))
        rect = max(dlib_models["detector"](image, 1), key=lambda r: r.area())
        shape = dlib_models["sp68"](image, rect)
        out.append((image, np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)))
    return out


def test_altered_copies_of_one_photo_are_the_same_person(faces, dlib_net):
    descriptors = face_descriptors(dlib_net, [f.image for f in faces],
                                   [f.landmarks68 for f in faces])
    pairs = judge_pairs(descriptors)
    assert len(pairs) == len(faces) * (len(faces) - 1) // 2
    worst = max(pairs, key=lambda p: p.distance)
    assert worst.verdict == "same", (faces[worst.first].name, faces[worst.second].name, worst)


def test_descriptor_matches_dlib_on_the_photo(faces, dlib_models, dlib_net):
    """The torch path (68 landmarks -> chip -> network) lands near what dlib computes from
    its own 5-point predictor (measured 0.09: the two landmark sets differ slightly)."""
    import dlib

    face = faces[0]
    rect = dlib_models["detector"](face.image, 1)[0]
    ours = face_descriptors(dlib_net, [face.image], [face.landmarks68])[0].numpy()
    theirs = np.array(dlib_models["rec"].compute_face_descriptor(
        face.image, dlib_models["sp5"](face.image, rect)))
    assert isinstance(rect, dlib.rectangle)
    assert np.linalg.norm(ours - theirs) < 0.25 * SAME_MAX


def test_different_people_are_different(portraits, faces, dlib_net):
    images = [faces[0].image] + [p[0] for p in portraits]
    landmarks = [faces[0].landmarks68] + [p[1] for p in portraits]
    pairs = judge_pairs(face_descriptors(dlib_net, images, landmarks))
    assert all(p.distance >= SAME_MAX for p in pairs), pairs
    # none passes silently; most stop the run (look-alike studio portraits: some only noted)
    assert sum(p.verdict == "different" for p in pairs) >= len(pairs) // 2, pairs


def test_compare_photos_raises_naming_both_photos(portraits, faces):
    images = [faces[0].image, portraits[0][0]]
    landmarks = [faces[0].landmarks68, portraits[0][1]]
    with pytest.raises(BadInputError, match=r"a\.jpg and b\.jpg.*--allow-different-people"):
        compare_photos(images, landmarks, ["a.jpg", "b.jpg"], False, log=lambda _: None)
    notes = compare_photos(images, landmarks, ["a.jpg", "b.jpg"], True, log=lambda _: None)
    assert "b.jpg" in notes[0][0] and "a.jpg" in notes[1][0]
    assert compare_photos(images[:1], landmarks[:1], ["a.jpg"], False, print) == {}


def test_policy_on_made_up_judgements():
    names = ["a.jpg", "b.jpg", "c.jpg"]
    same = PairJudgement(0, 1, SAME_MAX / 2, "same")
    borderline = PairJudgement(0, 2, (SAME_MAX + DIFFERENT_MIN) / 2, "borderline")
    different = PairJudgement(1, 2, DIFFERENT_MIN + 0.1, "different")
    assert same_person_notes([same], names, False) == {}
    notes = same_person_notes([same, borderline], names, False)
    assert set(notes) == {0, 2}
    assert "may not be the same person as c.jpg" in notes[0][0]
    assert "may not be the same person as a.jpg" in notes[2][0]
    with pytest.raises(BadInputError, match=r"b\.jpg and c\.jpg \(face distance 0\.85\)"):
        same_person_notes([same, borderline, different], names, False)
    allowed = same_person_notes([same, borderline, different], names, True)
    assert any("different person than c.jpg" in n for n in allowed[1])
