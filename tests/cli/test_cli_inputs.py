"""Bad and unusual input through the real CLI (`python -m engine reconstruct`, a subprocess).

Each rejected input must give its documented exit code (DESIGN.md: 2 bad usage or input,
3 no face), one `error: ...` line on stderr and no traceback, an `{"event": "error"}` line
with the matching code as the last line of the --progress jsonl stream, and nothing left in
the --out parent: no result folder and no `.partial` temp folder.

Accepted but unusual files (16-bit, RGBA, grey, EXIF-rotated) are checked at the image-loading
+ detection level; two full preview reconstructs (slow) cover an EXIF-rotated JPEG (upright
size, landmarks and camera in upright pixels, the progress stream) and a photo with two small
faces (the notes for several faces and for a small face, the larger face fitted).
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.imageio import load_photo

REPO = Path(__file__).resolve().parents[2]
STAGES = ["detect", "landmark_fit", "full_fit", "texture", "write"]
EXIF_ORIENTATION = 0x0112

# astronaut columns kept for the portrait (non-square) EXIF test: the face spans x ~ 179..271.
PORTRAIT_COLUMNS = slice(0, 384)
# the two-faces canvas: (top, left, side) of each pasted astronaut; the first is the larger.
CANVAS_SIZE = (360, 640)  # (H, W)
BIG_FACE = (40, 30, 280)
SMALL_FACE = (100, 420, 150)


@dataclass
class EngineRun:
    """A finished `python -m engine` process: exit code, stderr text, stdout JSON events."""

    returncode: int
    stderr: str
    stdout: str

    @property
    def events(self) -> list[dict]:
        """Every stdout line parsed as JSON (fails the test if one is not JSON)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"stdout line is not JSON: {line!r}")
        return out


def run_engine(*args: object, timeout: float = 900) -> EngineRun:
    """Run `python -m engine ARGS` in the repository root, as the add-on does."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )
    return EngineRun(proc.returncode, proc.stderr, proc.stdout)


def reconstruct(images: list[Path], out: Path, *extra: str) -> EngineRun:
    """`reconstruct` with the progress stream on, preview quality unless `extra` says."""
    return run_engine("reconstruct", *images, "--out", out, "--progress", "jsonl",
                      "--quality", "preview", *extra)


def assert_failed(run: EngineRun, exit_code: int, code: str, mentions: str) -> None:
    """The documented failure shape: exit code, one stderr line, one final error event."""
    assert run.returncode == exit_code, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, run.stderr
    assert mentions.lower() in errors[0].lower()
    events = run.events
    assert events, "no progress events on stdout"
    assert [e["event"] for e in events].count("error") == 1
    last = events[-1]
    assert last["event"] == "error" and last["code"] == code
    assert "\n" not in last["message"]
    assert errors[0] == f"error: {last['message']}"
    assert "done" not in [e["event"] for e in events]


def assert_empty(folder: Path) -> None:
    """Nothing (no result, no `.NAME.partial-*` temp folder) was created in `folder`."""
    assert sorted(p.name for p in folder.iterdir()) == []


def save_png(rgb: np.ndarray, path: Path) -> Path:
    Image.fromarray(rgb).save(path)
    return path


def write_png16_rgb(rgb16: np.ndarray, path: Path) -> Path:
    """A 16-bit-per-channel RGB PNG (colour type 2, bit depth 16), which Pillow cannot write.

    Chunk layout from the PNG specification (W3C, 2003), sections 5.3 and 11.2.
    """
    h, w, _ = rgb16.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = rgb16.astype(">u2").reshape(h, w * 3).view(np.uint8).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def save_exif_rotated_jpeg(upright: np.ndarray, path: Path) -> Path:
    """Store `upright` turned 90 degrees anticlockwise with EXIF orientation 6 ("rotate 90
    clockwise to display"), as a phone held upright writes it."""
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    stored.save(path, quality=95, exif=exif)
    return path


def two_faces_canvas(astronaut: np.ndarray) -> np.ndarray:
    """(H, W, 3) grey canvas with the astronaut pasted twice, both small (eye distance ~24
    and ~13 px), the first larger: BIG_FACE and SMALL_FACE give where."""
    canvas = np.full((*CANVAS_SIZE, 3), 235, np.uint8)
    for top, left, side in (BIG_FACE, SMALL_FACE):
        pasted = Image.fromarray(astronaut).resize((side, side), Image.Resampling.LANCZOS)
        canvas[top:top + side, left:left + side] = np.asarray(pasted)
    return canvas


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8 ITU-R 601 luma, what Pillow's convert("L") computes."""
    return np.asarray(Image.fromarray(rgb).convert("L"))


def mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=1).mean())


def interocular(landmarks: np.ndarray) -> float:
    lm = np.asarray(landmarks)
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return pytest.importorskip("skimage.data").astronaut()


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


@pytest.fixture
def out_parent(tmp_path: Path) -> Path:
    """An empty folder for --out; tests assert what is (not) in it afterwards."""
    folder = tmp_path / "results"
    folder.mkdir()
    return folder


# ---------------------------------------------------------------- rejected input (fast)


def test_missing_file(inputs: Path, out_parent: Path):
    missing = inputs / "nobody.jpg"
    run = reconstruct([missing], out_parent / "r")
    assert_failed(run, 2, "BAD_IMAGE", "nobody.jpg")
    assert_empty(out_parent)


def test_missing_file_without_progress_keeps_stdout_empty(inputs: Path, out_parent: Path):
    run = run_engine("reconstruct", inputs / "nobody.jpg", "--out", out_parent / "r")
    assert run.returncode == 2 and run.stdout == ""
    assert "Traceback" not in run.stderr and "nobody.jpg" in run.stderr
    assert_empty(out_parent)


def test_directory(inputs: Path, out_parent: Path):
    run = reconstruct([inputs], out_parent / "r")
    assert_failed(run, 2, "BAD_IMAGE", "directory")
    assert_empty(out_parent)


def test_text_file_named_jpg(inputs: Path, out_parent: Path):
    fake = inputs / "photo.jpg"
    fake.write_text("this is not a JPEG, only text\n")
    run = reconstruct([fake], out_parent / "r")
    assert_failed(run, 2, "BAD_IMAGE", "photo.jpg")
    assert_empty(out_parent)


def test_truncated_jpeg(astronaut: np.ndarray, inputs: Path, out_parent: Path):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    cut = inputs / "cut.jpg"
    cut.write_bytes(data[: len(data) * 6 // 10])  # header and the top rows decode, not the rest
    run = reconstruct([cut], out_parent / "r")
    assert_failed(run, 2, "BAD_IMAGE", "cut.jpg")
    assert "truncated" in run.events[-1]["message"]
    assert_empty(out_parent)


def test_one_bad_file_among_good_ones_rejects_all(astronaut, inputs: Path, out_parent: Path):
    good = save_png(astronaut, inputs / "good.png")
    run = reconstruct([good, inputs / "gone.png"], out_parent / "r")
    assert_failed(run, 2, "BAD_IMAGE", "gone.png")
    assert_empty(out_parent)


def test_existing_out_is_untouched_without_force(astronaut, inputs: Path, out_parent: Path):
    photo = save_png(astronaut, inputs / "a.png")
    existing = out_parent / "r"
    existing.mkdir()
    (existing / "mine.txt").write_text("user data")
    before = (existing / "mine.txt").stat().st_mtime_ns
    run = reconstruct([photo], existing)
    assert_failed(run, 2, "BAD_IMAGE", "already exists")
    assert sorted(p.name for p in out_parent.iterdir()) == ["r"]
    assert sorted(p.name for p in existing.iterdir()) == ["mine.txt"]
    assert (existing / "mine.txt").read_text() == "user data"
    assert (existing / "mine.txt").stat().st_mtime_ns == before


@pytest.mark.slow  # the real detector in a subprocess
def test_no_face(inputs: Path, out_parent: Path):
    coffee = save_png(pytest.importorskip("skimage.data").coffee(), inputs / "coffee.png")
    run = reconstruct([coffee], out_parent / "r")
    assert_failed(run, 3, "NO_FACE", "no face")
    assert "coffee.png" in run.events[-1]["message"]
    assert_empty(out_parent)


def test_unknown_flag(astronaut, inputs: Path, out_parent: Path):
    photo = save_png(astronaut, inputs / "a.png")
    run = reconstruct([photo], out_parent / "r", "--frobnicate")
    assert_failed(run, 2, "BAD_IMAGE", "--frobnicate")
    assert_empty(out_parent)


def test_bad_choice_for_quality(astronaut, inputs: Path, out_parent: Path):
    photo = save_png(astronaut, inputs / "a.png")
    run = run_engine("reconstruct", photo, "--out", out_parent / "r", "--progress", "jsonl",
                     "--quality", "ultra")
    assert_failed(run, 2, "BAD_IMAGE", "ultra")
    assert_empty(out_parent)


def test_cuda_without_cuda(astronaut, inputs: Path, out_parent: Path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    photo = save_png(astronaut, inputs / "a.png")
    run = reconstruct([photo], out_parent / "r", "--device", "cuda")
    assert_failed(run, 2, "BAD_IMAGE", "cuda")
    assert_empty(out_parent)


def test_bad_texture_model_is_rejected_before_torch(astronaut, inputs: Path, out_parent: Path):
    photo = save_png(astronaut, inputs / "a.png")
    run = reconstruct([photo], out_parent / "r", "--texture-model", inputs / "gone.pt")
    assert_failed(run, 2, "BAD_IMAGE", "gone.pt")
    text = inputs / "checkpoint.pt"
    text.write_text("not a checkpoint\n")
    run = reconstruct([photo], out_parent / "r", "--texture-model", text)
    assert_failed(run, 2, "BAD_IMAGE", "checkpoint.pt")
    assert_empty(out_parent)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from engine.cli import main; "
         "code = main(sys.argv[1:]); print(code, 'torch' in sys.modules)",
         "reconstruct", str(photo), "--out", str(out_parent / "r"), "--texture-model", str(text)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert probe.stdout.split() == ["2", "False"], probe.stderr


# ------------------------------------------- accepted unusual files: loading + detection


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("mediapipe")
    from engine.landmarks import get_detector

    det = get_detector("mediapipe")
    yield det
    det.close()


def detect_one(detector, rgb: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks of the only face in `rgb`."""
    faces = detector.detect(rgb)
    assert len(faces) == 1
    return faces[0].landmarks68


def test_16bit_grey_png_is_scaled_and_detected(astronaut, detector, tmp_path: Path):
    grey8 = luminance(astronaut)
    rng = np.random.default_rng(0)
    grey16 = grey8.astype(np.uint16) * 257 + rng.integers(0, 128, grey8.shape, dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(path)  # uint16 array -> mode I;16 -> 16-bit grey PNG
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # really stored with 16 bits
    photo = load_photo(path)
    expected = np.floor(grey16 / 65535 * 255 + 0.5).astype(np.uint8)
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (512, 512, 3)
    np.testing.assert_array_equal(photo.rgb, np.repeat(expected[..., None], 3, axis=2))
    plain = detect_one(detector, np.repeat(grey8[..., None], 3, axis=2))
    assert mean_distance(detect_one(detector, photo.rgb), plain) < 0.02 * interocular(plain)


def test_16bit_rgb_png_keeps_colour_and_is_detected(astronaut, detector, tmp_path: Path):
    rng = np.random.default_rng(1)
    rgb16 = astronaut.astype(np.uint16) * 256 + rng.integers(0, 256, astronaut.shape,
                                                             dtype=np.uint16)
    photo = load_photo(write_png16_rgb(rgb16, tmp_path / "rgb16.png"))
    # 8 bits from 16: the high byte (Pillow) or rounding; either is within one level
    assert np.abs(photo.rgb.astype(int) - astronaut.astype(int)).max() <= 1
    plain = detect_one(detector, astronaut)
    assert mean_distance(detect_one(detector, photo.rgb), plain) < 0.02 * interocular(plain)


def test_rgba_png_is_composited_over_white_and_detected(astronaut, detector, tmp_path: Path):
    alpha = np.full(astronaut.shape[:2], 255, np.uint8)
    alpha[:, 440:] = 0  # transparent strip at the right (the flag side, away from the face)
    alpha[:, 400:440] = 128  # half-transparent strip
    rgba = np.dstack([astronaut, alpha])
    photo = load_photo(save_png(rgba, tmp_path / "rgba.png"))
    assert photo.rgb.shape == (512, 512, 3)
    np.testing.assert_array_equal(photo.rgb[:, :400], astronaut[:, :400])
    assert (photo.rgb[:, 440:] == 255).all()
    blend = astronaut[:, 400:440] * (128 / 255) + 255 * (127 / 255)
    assert np.abs(photo.rgb[:, 400:440] - blend).max() <= 1.0
    assert any("white" in note for note in photo.notes)
    plain = detect_one(detector, astronaut)
    assert mean_distance(detect_one(detector, photo.rgb), plain) < 0.03 * interocular(plain)


def test_grey_png_is_detected(astronaut, detector, tmp_path: Path):
    grey = luminance(astronaut)
    photo = load_photo(save_png(grey, tmp_path / "grey.png"))
    np.testing.assert_array_equal(photo.rgb, np.repeat(grey[..., None], 3, axis=2))
    colour = detect_one(detector, astronaut)
    # the same face, found from luminance alone: close to the colour photo's landmarks
    assert mean_distance(detect_one(detector, photo.rgb), colour) < 0.05 * interocular(colour)


def test_exif_rotated_jpeg_is_upright_and_detected(astronaut, detector, tmp_path: Path):
    upright = np.ascontiguousarray(astronaut[:, PORTRAIT_COLUMNS])  # 384 wide, 512 tall
    photo = load_photo(save_exif_rotated_jpeg(upright, tmp_path / "phone.jpg"))
    assert photo.orientation == 6
    assert photo.stored_size == (512, 384) and photo.size == (384, 512)
    assert np.abs(photo.rgb.astype(float) - upright).mean() < 3.0  # JPEG noise only
    plain = detect_one(detector, upright)
    assert mean_distance(detect_one(detector, photo.rgb), plain) < 0.03 * interocular(plain)


# ------------------------------------------------------------ full reconstructs (slow)


@dataclass
class Reconstruction:
    run: EngineRun
    out: Path
    upright: np.ndarray  # the photo as it should be seen, (H, W, 3)


@pytest.fixture(scope="module")
def exif_run(astronaut, tmp_path_factory) -> Reconstruction:
    """One preview reconstruct of an EXIF-rotated (orientation 6) portrait JPEG."""
    root = tmp_path_factory.mktemp("exif")
    upright = np.ascontiguousarray(astronaut[:, PORTRAIT_COLUMNS])
    photo = save_exif_rotated_jpeg(upright, root / "phone.jpg")
    (root / "results").mkdir()
    out = root / "results" / "head"
    return Reconstruction(reconstruct([photo], out, "--seed", "3"), out, upright)


@pytest.fixture(scope="module")
def two_faces_run(astronaut, tmp_path_factory) -> Reconstruction:
    """One preview reconstruct of a canvas with two small faces side by side."""
    root = tmp_path_factory.mktemp("two")
    canvas = two_faces_canvas(astronaut)
    photo = save_png(canvas, root / "two.png")
    (root / "results").mkdir()
    out = root / "results" / "head"
    return Reconstruction(reconstruct([photo], out), out, canvas)


def assert_succeeded(rec: Reconstruction) -> dict:
    """Exit 0, a complete result folder and nothing else beside it; returns result.json."""
    assert rec.run.returncode == 0, rec.run.stderr[-2000:]
    assert "Traceback" not in rec.run.stderr
    assert sorted(p.name for p in rec.out.parent.iterdir()) == [rec.out.name]
    names = {p.name for p in rec.out.iterdir()}
    assert {"result.json", "mesh.npz", "texture.png", "texture_mask.png",
            "preview.png"} <= names
    return json.loads((rec.out / "result.json").read_text())


def project_landmarks(out: Path, view: dict) -> np.ndarray:
    """The fitted mesh's 68 landmark vertices through the view's camera (DESIGN.md
    convention), (68, 2) pixels of the original photo."""
    with np.load(out / "mesh.npz") as mesh:
        names = [str(n) for n in mesh["expression_names"]]
        weights = np.array([view["expression_weights"][n] for n in names], dtype=np.float64)
        points = mesh["vertices"] + np.einsum("e,evc->vc", weights, mesh["expression_deltas"])
        points = points[mesh["landmark_vertices"]]
    cam = view["camera"]
    x = points @ np.array(cam["rotation"]).T + np.array(cam["translation"])
    assert (x[:, 2] > 0).all()  # in front of the camera
    return x[:, :2] / x[:, 2:] * np.array(cam["focal"]) + np.array(cam["principal_point"])


@pytest.mark.slow
def test_exif_rotated_reconstruct_is_in_upright_pixels(exif_run: Reconstruction, detector):
    info = assert_succeeded(exif_run)
    (view,) = info["views"]
    h, w = exif_run.upright.shape[:2]
    assert view["size"] == [w, h] == [384, 512]
    assert any("orientation 6" in note for note in view["notes"])
    landmarks = np.array(view["landmarks"])
    plain = detect_one(detector, exif_run.upright)
    iod = interocular(plain)
    assert mean_distance(landmarks, plain) < 0.03 * iod
    cx, cy = view["camera"]["principal_point"]
    assert abs(cx - (w - 1) / 2) < 1 and abs(cy - (h - 1) / 2) < 1
    # the fitted head projects onto the photo's face (inner points: the jaw contour slides)
    projected = project_landmarks(exif_run.out, view)
    assert mean_distance(projected[17:], landmarks[17:]) < 0.15 * iod
    error = view["metrics"]["landmark_error_px"]
    assert 0 < error < 0.15 * iod


@pytest.mark.slow
def test_progress_stream_order(exif_run: Reconstruction):
    assert_succeeded(exif_run)
    events = exif_run.run.events
    assert [e["name"] for e in events if e["event"] == "stage"] == STAGES
    assert {e["event"] for e in events} <= {"stage", "progress", "done"}
    stage = None
    last_step: dict[str, int] = {}
    for event in events:
        if event["event"] == "stage":
            stage = event["name"]
        elif event["event"] == "progress":
            assert event["stage"] == stage  # reported inside its own stage
            assert 0 < event["step"] <= event["steps"]
            assert event["step"] > last_step.get(stage, 0)
            last_step[stage] = event["step"]
            assert all(np.isfinite(v) for v in event["loss"].values())
            assert "total" in event["loss"]
    assert {"landmark_fit", "full_fit"} <= set(last_step)
    done = events[-1]
    assert done["event"] == "done" and [e["event"] for e in events].count("done") == 1
    assert Path(done["result"]) == exif_run.out / "result.json"
    assert done["seconds"] > 0


@pytest.mark.slow
def test_two_small_faces_fit_the_larger_with_notes(two_faces_run: Reconstruction):
    info = assert_succeeded(two_faces_run)
    (view,) = info["views"]
    assert view["size"] == [CANVAS_SIZE[1], CANVAS_SIZE[0]]
    notes = " | ".join(view["notes"])
    assert re.search(r"\b2 faces found; used the largest\b", notes), notes
    assert "face is small" in notes
    landmarks = np.array(view["landmarks"])
    top, left, side = BIG_FACE
    assert (landmarks[:, 0] > left).all() and (landmarks[:, 0] < left + side).all()
    assert (landmarks[:, 1] > top).all() and (landmarks[:, 1] < top + side).all()
    # where the astronaut's face is in the pasted copy: inside its middle
    centre = landmarks.mean(0)
    assert abs(centre[0] - (left + 0.45 * side)) < 0.15 * side
    assert np.isfinite(view["metrics"]["landmark_error_px"])
