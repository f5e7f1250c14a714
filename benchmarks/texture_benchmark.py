"""Texture model benchmark (issue 9): occluder, neck colour, hidden half, texture-stage time.

On held-out portraits of ../shared/datasets/congress-portraits (the fixed split that
`texture-data build` and the `texture-pca` asset never train on), each photo is fitted by
the landmark stage (the data builder's fast fit: the same fit for both methods) and
textured two ways at the preview preset's texture size:
  today:  the photo unwrap with mirrored and push-pull fill (`bake_albedo`);
  model:  the texture model's robust completion blended with the trusted photo
          (`complete_albedo`, light estimated from the skin since stage 2 did not run).
Printed:
  occluder  a dark ellipse painted over one cheek (the photo is re-detected and re-fitted):
            mean |texture(occluded) - texture(clean)| over the occluded texels, 0-255;
  neck      share of neck texels (below the chin) whose colour is far from the cheeks'
            (CIE76 dE > 30), on the clean photos;
  hidden    in UV space, on the held-out data samples: the model fitted to the subject's
            right half predicts the left half; L1 (0-255) over its trusted texels, against
            mirroring the right half and the mean texture;
  time      texture-stage CPU seconds, today vs model, at each preset's texture size.
With --pictures DIR, writes photo | today | model textures of the first three portraits.

Usage: .venv/bin/python benchmarks/texture_benchmark.py [--photos 12] [--pictures DIR]
       (needs the texture-pca asset: python -m engine assets fetch --with texture-pca)
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy.spatial import cKDTree
from skimage.color import rgb2lab

from engine.facemodel import load_face_model
from engine.fit.fitter import landmark_fit
from engine.fit.presets import PRESETS, get_preset
from engine.landmarks import get_detector, select_face
from engine.paths import ganfit_home
from engine.texture.asset import default_source, load_installed
from engine.texture.atlas import atlas_positions, bake_albedo, skin_atlas_triangles
from engine.texture.complete import complete_albedo
from engine.texture.dataset import (
    FIT_STEPS,
    build_dataset,
    list_photos,
    load_sample,
    sample_paths,
)
from engine.texture.unwrap import sample_texels

TEXTURE = PRESETS["preview"].texture_size
FAR_DE = 30.0


def occlude(rgb: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo with a dark ellipse over the image-left cheek, and the ellipse's mask."""
    iod = np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0))
    centre = 0.5 * (landmarks[3] + landmarks[31]) + np.array([0.05, -0.1]) * iod
    rx, ry = 0.32 * iod, 0.38 * iod
    mask = Image.new("L", (rgb.shape[1], rgb.shape[0]), 0)
    ImageDraw.Draw(mask).ellipse([centre[0] - rx, centre[1] - ry, centre[0] + rx,
                                  centre[1] + ry], fill=255)
    inside = np.asarray(mask) > 127
    out = rgb.copy()
    out[inside] = (28, 26, 30)
    return out, inside


def fast_fit(model, detector, rgb: np.ndarray):
    face, _ = select_face(detector.detect(rgb), (rgb.shape[1], rgb.shape[0]))
    landmarks = torch.tensor(face.landmarks68[None], dtype=torch.float32)
    return landmark_fit(model, [rgb], landmarks, get_preset("preview", landmark_steps=FIT_STEPS)), \
        face.landmarks68


def textures(model, texture_model, rgb, state, size=TEXTURE):
    """(today, model) albedo atlases (3, T, 2T)."""
    today, _ = bake_albedo(model, [rgb], state, size)
    done = complete_albedo(model, texture_model, [rgb], state, size, fitted_light=False)
    return today, done.albedo


def occluded_texels(model, state, inside: np.ndarray, size=TEXTURE) -> torch.Tensor:
    """(T, 2T) bool: texels the clean fit sees inside the occluder."""
    triangles, uvs = skin_atlas_triangles(model)
    image = torch.from_numpy(inside.astype(np.float32))[None, None].expand(1, 3, -1, -1)
    posed = model(state.identity_batch(), state.expression)
    camera = state.camera()
    samples = sample_texels(image, camera.transform(posed), camera, triangles, uvs,
                            (size, 2 * size))
    hit = (samples.colour[0, :, 0] > 0.5) & (samples.weight[0] > 0)
    out = torch.zeros(size * 2 * size, dtype=torch.bool)
    out[samples.texel[hit]] = True
    return out.view(size, 2 * size)


def neck_far_share(model, albedo: torch.Tensor, state, size=TEXTURE) -> float:
    """Share of neck texels with CIE76 dE > 30 from the cheeks' median colour."""
    neutral = model(state.identity[None], torch.zeros_like(state.expression[:1]))[0]
    positions = atlas_positions(model, size, neutral)
    chin_y = float(neutral[model.landmark_vertices[8], 1])
    covered = positions.abs().sum(-1) > 0
    neck = covered & (positions[..., 1] < chin_y - 1.0) & (positions[..., 2] > -2.0)
    marks = neutral[model.landmark_vertices]
    cheeks = torch.stack([marks[[2, 31, 41]].mean(0), marks[[14, 35, 46]].mean(0)])
    cheek = covered & (torch.cdist(positions.view(-1, 3), cheeks).amin(1) < 1.6).view(neck.shape)
    lab = rgb2lab(albedo.permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float64))
    ref = np.median(lab[cheek.numpy()], axis=0)
    de = np.linalg.norm(lab[neck.numpy()] - ref, axis=-1)
    return float((de > FAR_DE).mean())


def mirror_index(positions: torch.Tensor, covered: torch.Tensor) -> np.ndarray:
    """(T*2T,) for each texel, the covered texel nearest its mirror point (x -> -x)."""
    flat = positions.view(-1, 3).numpy()
    ids = np.flatnonzero(covered.view(-1).numpy())
    _, nearest = cKDTree(flat[ids]).query(flat * np.array([-1.0, 1.0, 1.0]))
    return ids[nearest]


def hidden_half(model, texture_model, data: Path) -> dict[str, float]:
    """L1 (0-255) over the hidden half's trusted texels: model, mirroring, mean texture."""
    height = texture_model.atlas_size[0]
    positions = atlas_positions(model, height, model.neutral)
    covered = texture_model.covered
    mirror = mirror_index(positions, covered)
    left = positions[..., 0] > 0.3  # the subject's left, hidden
    right = positions[..., 0] < -0.3
    errors = {"model": [], "mirror": [], "mean": []}
    for path in sample_paths(data):
        sample = load_sample(path)
        albedo = torch.from_numpy(sample.albedo)
        confidence = torch.from_numpy(sample.confidence)
        hidden = left & (confidence > 0.5)
        mirrored_ok = confidence.view(-1)[mirror].view_as(confidence) > 0.5
        test = hidden & mirrored_ok  # texels all three methods can be scored on
        if int(test.sum()) < 200:
            continue
        latent, _ = texture_model.fit(albedo, confidence * right)
        predictions = {
            "model": texture_model.decode(latent).clamp(0, 1),
            "mirror": albedo.view(3, -1)[:, mirror].view_as(albedo),
            "mean": texture_model.mean.clamp(0, 1),
        }
        for name, predicted in predictions.items():
            errors[name].append(float((predicted - albedo).abs()[:, test].mean()) * 255)
    return {name: float(np.mean(v)) for name, v in errors.items()} | {
        "samples": len(errors["model"])}


def stage_times(model, texture_model, rgb, state) -> dict[str, tuple[float, float]]:
    """CPU seconds (one torch thread: wall time on a shared machine says little) of the
    texture stage, today and with the model, at each preset's texture size."""
    times = {}
    for name, preset in PRESETS.items():
        start = time.process_time()
        bake_albedo(model, [rgb], state, preset.texture_size)
        middle = time.process_time()
        complete_albedo(model, texture_model, [rgb], state, preset.texture_size,
                        fitted_light=False)
        times[name] = (middle - start, time.process_time() - middle)
    return times


def save_pictures(folder: Path, name: str, rgb: np.ndarray, occluded: np.ndarray,
                  atlases: list[torch.Tensor]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    side = atlases[0].shape[-2]
    photos = [Image.fromarray(p).resize((side, side)) for p in (rgb, occluded)]
    tiles = [np.asarray(p) for p in photos] + [
        (a.permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8) for a in atlases]
    Image.fromarray(np.concatenate(tiles, axis=1)).save(folder / f"{name}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=12, help="held-out portraits to use")
    parser.add_argument("--pictures", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=Path("out/texture-heldout-data"),
                        help="where the held-out samples for the hidden-half test go")
    args = parser.parse_args()
    torch.set_num_threads(1)
    texture_model = load_installed(ganfit_home())
    if texture_model is None:
        print("texture-pca is not installed: python -m engine assets fetch --with texture-pca",
              file=sys.stderr)
        return 4
    portraits = default_source() / "datasets/congress-portraits/images"
    photos = list_photos(portraits, "held-out", args.photos)
    trained = set(texture_model.info.get("samples", []))
    assert not trained & {p.stem for p in photos}, "held-out photos were used in the model"
    model = load_face_model("cpu")
    detector = get_detector("mediapipe")
    rows = []
    for i, path in enumerate(photos):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        state, landmarks = fast_fit(model, detector, rgb)
        occluded_rgb, inside = occlude(rgb, landmarks)
        occluded_state, _ = fast_fit(model, detector, occluded_rgb)
        texels = occluded_texels(model, state, inside)
        clean = textures(model, texture_model, rgb, state)
        dirty = textures(model, texture_model, occluded_rgb, occluded_state)
        row = {"photo": path.stem, "texels": int(texels.sum())}
        for k, method in enumerate(("today", "model")):
            row[f"occ_{method}"] = float((dirty[k] - clean[k]).abs()[:, texels].mean()) * 255
            row[f"neck_{method}"] = neck_far_share(model, clean[k], state)
        rows.append(row)
        print(f"{path.stem}: occluder error today {row['occ_today']:.1f} model "
              f"{row['occ_model']:.1f} ({row['texels']} texels); neck far today "
              f"{row['neck_today']:.0%} model {row['neck_model']:.0%}", flush=True)
        if args.pictures is not None and i < 3:
            save_pictures(args.pictures, path.stem, rgb, occluded_rgb, [*clean, *dirty])
        if i == 0:
            times = stage_times(model, texture_model, rgb, state)
    detector.close()
    print(f"\nheld-out portraits: {len(rows)}")
    for key, label in (("occ", "occluder mean texel error (0-255)"),
                       ("neck", "neck texels far from cheek colour (share)")):
        today = [r[f"{key}_today"] for r in rows]
        mine = [r[f"{key}_model"] for r in rows]
        print(f"{label}: today mean {np.mean(today):.3f} (max {np.max(today):.3f}); "
              f"model mean {np.mean(mine):.3f} (max {np.max(mine):.3f})")
    build_dataset(list_photos(portraits, "held-out", args.photos), args.data, workers=1,
                  log=lambda m: print(m, file=sys.stderr))
    half = hidden_half(model, texture_model, args.data)
    print(f"hidden half L1 (0-255) over {half['samples']} samples: model {half['model']:.2f}, "
          f"mirroring {half['mirror']:.2f}, mean texture {half['mean']:.2f}")
    for name, (old, new) in times.items():
        print(f"texture stage at {name} ({PRESETS[name].texture_size}): today {old:.2f} s, "
              f"model {new:.2f} s (CPU, one thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
