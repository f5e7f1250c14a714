"""Identity-loss ablation: fit the same photos with and without the identity losses.

    .venv/bin/python benchmarks/identity_ablation.py [--quality preview] [--seed 0]
        [--t1 PATH [--t1-faces 0 1 2]] [--no-astronaut] [--work DIR] [PHOTO ...]

For each photo the real CLI runs twice (`--identity none`, `--identity auto`, same seed and
quality). Then every installed recognition network scores photo against render, independently
of the fit. Where two networks are installed, the one the loss did NOT use is the fair judge;
with one, that same network judges (the table says which network the loss used).

The score cannot use the fit's own renders: preview.png and texture.png carry the photo's
pixels (the texture is unwrapped from the photo), so any render with them resembles the
photo whatever the shape. The fitted shape is rendered here instead, from the result folder
alone (mesh.npz, the view's expression weights and camera), with one flat skin colour (the
median of texture.png over the seen face texels), pale eyeballs and a fixed light, either over
the photo (as the fitter's identity loss sees it: hair, ears and background from the photo) or
over flat grey (the face shape alone). Both images are aligned into the network's chip by the
same transform from the photo's landmarks, as in the fit. A third row per photo, "mean face",
renders the model's mean identity with the `none` run's camera and expression: the level an
unfitted shape gets.

--t1 takes insightface's t1.jpg (six faces), or the insightface wheel or sdist holding it
(`pip download --no-deps insightface==0.7.3`); this script downloads nothing. Each face is
found with the MediaPipe detector, cropped square with a margin into its own file and fitted
on its own.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.facemodel import FaceModel, load_face_model  # noqa: E402
from engine.facemodel.ict import SKIN_ATLAS_UV_SCALE  # noqa: E402
from engine.identity import (  # noqa: E402
    IdentityNetwork,
    alignment_transform,
    load_identity_network,
    template_for,
    warp_to_chip,
)
from engine.imageio import load_photo  # noqa: E402
from engine.landmarks import get_detector  # noqa: E402
from engine.render import (  # noqa: E402
    PinholeCamera,
    rasterize,
    render_textured,
    sh_basis,
    uv_screen_vertices,
)
from engine.result import read_info, read_result  # noqa: E402

T1_MEMBER = "insightface/data/images/t1.jpg"
EYE_ALBEDO = (0.45, 0.42, 0.40)  # sclera, iris and pupil averaged
FLAT_BACKGROUND = 0.5
# Fixed light for the shape renders: shading = AMBIENT + FRONTAL * (-n_z) in camera space
# (n_z = -1 facing the camera), i.e. 1.0 on a surface facing the camera, 0.7 edge-on.
AMBIENT, FRONTAL = 0.7, 0.3
CROP_MARGIN = 2.2  # t1 crops: square side in units of the face box's longer side


@dataclass
class Row:
    """One line of the table."""

    photo: str
    face: str
    variant: str  # "off", "on" (identity losses) or "mean face"
    loss_network: str | None
    landmark_error_px: float | None
    fit_cosine: float | None  # result.json's own metric (its coarse-texture render)
    cosines: dict[str, float]  # "<net>/photo-bg" and "<net>/flat-bg" -> cosine
    shape_change_mm: float | None  # RMS face-vertex distance to the "off" fit's neutral shape
    seconds: float | None
    error: str | None = None


# ----------------------------------------------------------------------------- inputs


def read_t1(path: Path) -> np.ndarray:
    """insightface's t1.jpg as (H, W, 3) uint8, from the file itself or from a wheel/sdist."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith(T1_MEMBER))
            data = archive.read(name)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith(T1_MEMBER))
            data = archive.extractfile(member).read()
    else:
        data = path.read_bytes()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def square_window(box: np.ndarray, size: tuple[int, int], margin: float) -> tuple[int, ...]:
    """(x0, y0, side) of a square `margin` times the box's longer side, centred on the box
    and shifted (shrunk only if it must be) to stay inside an image of (W, H) = size."""
    w, h = size
    side = int(round(min(margin * max(box[2] - box[0], box[3] - box[1]), w, h)))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    return x0, y0, side


def crop_faces(rgb: np.ndarray, folder: Path, stem: str) -> list[Path]:
    """Every face of `rgb` cropped into its own PNG, left to right: `stem`_face<i>.png."""
    detector = get_detector("mediapipe")
    try:
        faces = sorted(detector.detect(rgb), key=lambda f: f.box[0])
    finally:
        detector.close()
    print(f"{stem}: MediaPipe found {len(faces)} faces", file=sys.stderr, flush=True)
    paths = []
    for i, face in enumerate(faces):
        x0, y0, side = square_window(face.box, (rgb.shape[1], rgb.shape[0]), CROP_MARGIN)
        path = folder / f"{stem}_face{i}.png"
        Image.fromarray(rgb[y0:y0 + side, x0:x0 + side]).save(path)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------ fitting


def run_cli(photo: Path, out: Path, identity: str, quality: str, seed: int) -> float:
    """Run `python -m engine reconstruct`; returns seconds. RuntimeError with the engine's
    last stderr line on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "reconstruct", str(photo), "--out", str(out),
         "--quality", quality, "--seed", str(seed), "--identity", identity, "--force"],
        cwd=REPO, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"exit {proc.returncode}: {last}")
    return time.perf_counter() - start


# ------------------------------------------------------------------------------ scoring


def flat_light(device: torch.device) -> torch.Tensor:
    """(1, 9, 3) camera-space SH coefficients giving AMBIENT + FRONTAL * (-n_z)."""
    facing = sh_basis(torch.tensor([0.0, 0.0, -1.0], device=device))  # (9,)
    sh = torch.zeros(1, 9, 3, device=device)
    sh[:, 0] = AMBIENT / facing[0]  # constant term
    sh[:, 2] = FRONTAL / facing[2]  # the z term: facing[2] = basis_z(n_z = -1) < 0
    return sh


def skin_colour(model: FaceModel, result: Path) -> torch.Tensor:
    """(3,) median of texture.png over the texels of the face region seen in the photo."""
    texture = np.asarray(Image.open(result / "texture.png").convert("RGB"), np.float32) / 255
    seen = np.asarray(Image.open(result / "texture_mask.png").convert("L")) > 127
    faces = model.region_triangles("face")
    uvs = model.triangle_uvs[faces] * model.triangle_uvs.new_tensor(SKIN_ATLAS_UV_SCALE)
    screen, tris = uv_screen_vertices(uvs, texture.shape[:2])
    face_texels = rasterize(screen, tris, texture.shape[:2]).mask[0].cpu().numpy()
    return torch.from_numpy(np.median(texture[face_texels & seen], axis=0))


def shape_render(model: FaceModel, vertices: torch.Tensor, camera: PinholeCamera,
                 skin: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """The face (skin) and eyeballs of `vertices` (1, V, 3) model space, flat-coloured and
    lit by `flat_light`, over background (1, H, W, 3) -> (1, 3, H, W) in [0, 1]."""
    face = model.region_triangles("face")
    eyes = model.region_triangles("eyes")
    triangles = model.triangles[torch.cat([face, eyes])]
    # a 1x2 texture: texel 0 skin, texel 1 eye; every corner samples its texel's centre
    texture = torch.stack([skin, skin.new_tensor(EYE_ALBEDO)], dim=1)[None, :, None, :]
    uv = torch.tensor([[0.25, 0.5]] * len(face) + [[0.75, 0.5]] * len(eyes))
    triangle_uvs = uv[:, None, :].expand(-1, 3, -1)
    out = render_textured(camera.transform(vertices), camera, triangles, triangle_uvs,
                          texture, flat_light(vertices.device), background.shape[1:3],
                          background=background)
    return out.image.permute(0, 3, 1, 2).clamp(0, 1)


def view_geometry(result: Path, mean_model: FaceModel | None = None
                  ) -> tuple[torch.Tensor, PinholeCamera, torch.Tensor, Path]:
    """From a result folder: model-space vertices (1, V, 3) of its first view (the fitted
    identity, or the model's mean identity when `mean_model` is given), that view's camera,
    its 68 landmarks (1, 68, 2) in original pixels, and the photo path."""
    result_folder = read_result(result)
    view = result_folder.info.views[0]
    mesh = result_folder.mesh
    weights = torch.tensor([view.expression_weights[n] for n in mesh.expression_names])
    if mean_model is None:
        deltas = torch.from_numpy(mesh.expression_deltas)
        vertices = (torch.from_numpy(mesh.vertices)
                    + torch.einsum("e,evc->vc", weights, deltas))[None]
    else:
        vertices = mean_model(torch.zeros(1, mean_model.num_identity), weights[None])
    cam = view.camera
    camera = PinholeCamera(torch.tensor(cam.rotation)[None], torch.tensor(cam.translation)[None],
                           torch.tensor(cam.focal)[None], torch.tensor(cam.principal_point)[None])
    landmarks = torch.tensor(view.landmarks, dtype=torch.float32)[None]
    return vertices.float(), camera, landmarks, Path(view.path)


def neutral_face(model: FaceModel, result: Path | None) -> torch.Tensor:
    """(V', 3) cm: the face-region vertices of a result's neutral shape (None: model mean)."""
    face = model.region_vertices("face")
    if result is None:
        return model.neutral[face]
    return torch.from_numpy(read_result(result).mesh.vertices)[face]


def shape_change_mm(model: FaceModel, result: Path, reference: Path | None) -> float:
    """RMS distance in mm between the neutral face shapes of `result` and `reference`."""
    diff = neutral_face(model, result) - neutral_face(model, reference)
    return float(diff.pow(2).sum(-1).mean().sqrt()) * 10.0


@torch.no_grad()
def photo_embeddings(nets: list[IdentityNetwork], result: Path) -> dict[str, torch.Tensor]:
    """Each network's (1, D) embedding of the photo of a result, aligned by its landmarks."""
    _, _, landmarks, photo_path = view_geometry(result)
    photo = torch.from_numpy(load_photo(photo_path).rgb.astype(np.float32) / 255)
    photo = photo.permute(2, 0, 1)[None]
    return {net.name: net.embed(warp_to_chip(photo, alignment_transform(
        landmarks, template_for(net)), net.input_size)) for net in nets}


@torch.no_grad()
def score(nets: list[IdentityNetwork], model: FaceModel, result: Path,
          mean_face: bool = False) -> dict[str, float]:
    """Cosine between the photo and the shape render for every network and background."""
    vertices, camera, landmarks, photo_path = view_geometry(result, model if mean_face else None)
    photo = torch.from_numpy(load_photo(photo_path).rgb.astype(np.float32) / 255)[None]
    skin = skin_colour(model, result)
    renders = {
        "photo-bg": shape_render(model, vertices, camera, skin, photo),
        "flat-bg": shape_render(model, vertices, camera, skin,
                                torch.full_like(photo, FLAT_BACKGROUND)),
    }
    photo_chw = photo.permute(0, 3, 1, 2)
    out = {}
    for net in nets:
        transform = alignment_transform(landmarks, template_for(net))
        target = net.embed(warp_to_chip(photo_chw, transform, net.input_size))
        for bg, render in renders.items():
            embedding = net.embed(warp_to_chip(render, transform, net.input_size))
            out[f"{net.name}/{bg}"] = float((target * embedding).sum())
    return out


# ------------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[Row], columns: list[str]) -> str:
    """A Markdown table of the rows."""
    head = ["photo", "face", "identity losses", "loss network", "landmark_error_px",
            "fit cosine (result.json)", *[f"cos {c}" for c in columns],
            "shape vs off, mm RMS", "fit s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.photo, r.face, r.variant, r.loss_network or "-", fmt(r.landmark_error_px, 2),
                 fmt(r.fit_cosine), *[fmt(r.cosines.get(c)) for c in columns],
                 fmt(r.shape_change_mm, 2), fmt(r.seconds, 0)]
        if r.error:
            cells[4] = f"failed: {r.error}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablate(photo: Path, label: str, face: str, args: argparse.Namespace, model: FaceModel,
           nets: list[IdentityNetwork]) -> tuple[list[Row], Path | None]:
    """The off / mean-face / on rows of one photo, and the "off" result folder (None if that
    fit failed)."""
    rows = []
    off: Path | None = None
    for variant, identity in (("off", "none"), ("on", "auto")):
        out = args.work / "results" / f"{photo.stem}_{identity}"
        try:
            seconds = run_cli(photo, out, identity, args.quality, args.seed)
        except RuntimeError as error:
            rows.append(Row(label, face, variant, None, None, None, {}, None, None, str(error)))
            continue
        info = read_info(out)
        change = None if off is None or variant == "off" else shape_change_mm(model, out, off)
        rows.append(Row(label, face, variant, info.identity_network,
                        info.metrics.landmark_error_px, info.metrics.identity_cosine,
                        score(nets, model, out), change, seconds))
        if variant == "off":
            off = out
            rows.append(Row(label, face, "mean face", None, None, None,
                            score(nets, model, out, mean_face=True),
                            shape_change_mm(model, out, None), None))
        print(f"{label} {face} {variant}: {seconds:.0f} s", file=sys.stderr, flush=True)
    return rows, off


def impostor_cosines(nets: list[IdentityNetwork], results: list[Path]) -> dict[str, list[float]]:
    """Per network, photo-to-photo cosines between every pair of different photos (different
    people here): the level a cosine must clear to mean "same person"."""
    embeddings = [photo_embeddings(nets, r) for r in results]
    return {net.name: [float((a[net.name] * b[net.name]).sum())
                       for i, a in enumerate(embeddings) for b in embeddings[i + 1:]]
            for net in nets}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, help="more photos to fit")
    parser.add_argument("--quality", choices=("preview", "standard", "high"), default="preview")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--t1", type=Path, default=None,
                        help="insightface's t1.jpg, or an insightface wheel/sdist holding it")
    parser.add_argument("--t1-faces", type=int, nargs="+", default=None, metavar="I",
                        help="which t1 faces to fit, left to right from 0 (default all)")
    parser.add_argument("--astronaut", action=argparse.BooleanOptionalAction, default=True,
                        help="fit skimage.data.astronaut() (default on)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for crops and result folders (default a new temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.work = args.work or Path(tempfile.mkdtemp(prefix="identity_ablation-"))
    (args.work / "results").mkdir(parents=True, exist_ok=True)
    photos: list[tuple[Path, str, str]] = []  # (file, photo label, face label)
    if args.astronaut:
        from skimage import data

        path = args.work / "astronaut.png"
        Image.fromarray(data.astronaut()).save(path)
        photos.append((path, "astronaut", "-"))
    if args.t1 is not None:
        crops = crop_faces(read_t1(args.t1), args.work, "t1")
        keep = range(len(crops)) if args.t1_faces is None else args.t1_faces
        photos += [(crops[i], "t1.jpg", f"{i} of {len(crops)}") for i in keep]
    photos += [(p, p.name, "-") for p in args.photos]

    model = load_face_model("cpu")
    nets = [net for name in ("arcface", "dlib")
            if (net := load_identity_network(prefer=(name,))) is not None]
    if not nets:
        sys.exit("no face-recognition network installed: nothing can score identity")
    rows: list[Row] = []
    offs: list[Path] = []
    for path, label, face in photos:
        photo_rows, off = ablate(path, label, face, args, model, nets)
        rows += photo_rows
        offs += [] if off is None else [off]
    columns = [f"{net.name}/{bg}" for net in nets for bg in ("photo-bg", "flat-bg")]
    print(f"quality {args.quality}, seed {args.seed}; scoring networks installed: "
          f"{', '.join(n.name for n in nets)}; results in {args.work}")
    print(table(rows, columns))
    for name, values in impostor_cosines(nets, offs).items():
        if values:
            print(f"{name}: photo-to-photo cosine between the {len(offs)} different people: "
                  f"min {min(values):.3f}, mean {np.mean(values):.3f}, max {max(values):.3f}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1))


if __name__ == "__main__":
    main()
