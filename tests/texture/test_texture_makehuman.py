"""MakeHuman's CC0 full-head skins carried into ICT's skin atlas: the registration lands the
base mesh's head on ICT's (anatomical points within 5 mm, the whole surface close), the
lookups stay inside the maps' head island, a rebaked dark-skinned map is that skin (not
the map's background or the "makehuman.org" strip) on the scalp and ears and is trusted
on the back of the head but not on the face's features, samples round-trip through the
data builder's format, and a model built with them says so in `assets list`."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.render import rasterize, uv_screen_vertices
from engine.texture import asset, makehuman
from engine.texture.atlas import atlas_positions
from engine.texture.dataset import Sample, load_sample, sample_paths, save_sample

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("GANFIT_SHARED_DATA", REPO.parent / "shared"))
SKINS = SHARED / makehuman.SKINS
HEIGHT = 32  # a small atlas keeps the bakes fast; the layout is the same at any size
DARK = "young_darkskinned_male_diffuse"

needs_skins = pytest.mark.skipif(
    not (SKINS / "base.obj").is_file(),
    reason=f"no MakeHuman skins at {SKINS} (the shared data's assets/makehuman-skins)")


@pytest.fixture(scope="module")
def registration(face_model) -> makehuman.Registration:
    head, eyes = makehuman.read_makehuman_head(SKINS / "base.obj")
    ict, ict_eyes = makehuman.ict_skin(face_model)
    return makehuman.register(head, eyes, ict, ict_eyes)


@pytest.fixture(scope="module")
def lookup(face_model, registration) -> makehuman.Correspondence:
    return makehuman.correspondence(face_model, registration, HEIGHT)


@needs_skins
def test_registration_lands_landmarks_and_surface_on_ict(face_model, registration):
    error = np.linalg.norm(registration.head.vertices[registration.landmarks]
                           - registration.ict_landmarks, axis=1)
    assert error.max() < 0.5, error  # cm
    ict, _ = makehuman.ict_skin(face_model)
    _, _, gap = makehuman.closest_points(registration.head.vertices, ict)
    assert np.percentile(gap, 95) < 0.2 and gap.max() < 1.0, np.percentile(gap, [50, 95, 100])


@needs_skins
def test_landmark_rules_find_the_same_anatomy_on_both_meshes(face_model):
    for surface, eyes in (makehuman.read_makehuman_head(SKINS / "base.obj"),
                          makehuman.ict_skin(face_model)):
        points = surface.vertices[makehuman.find_landmarks(surface, eyes)]
        # eye corners outer < inner < eyeball x on each side, mouth below, nose in front
        assert points[0, 0] < eyes[1, 0] < points[1, 0] < 0 < points[2, 0] < eyes[0, 0] \
            < points[3, 0]
        assert points[4, 0] < 0 < points[5, 0] and points[4, 1] < points[6, 1] < eyes[0, 1]
        assert points[6, 2] > points[:6, 2].max() and points[7, 1] > eyes[0, 1] + 5
        assert points[8, 2] < eyes[0, 2] - 10


@needs_skins
def test_lookups_stay_inside_the_head_island(registration, lookup):
    size = (512, 512)
    screen, triangles = uv_screen_vertices(torch.from_numpy(registration.head.uvs).float(),
                                           size)
    island = rasterize(screen, triangles, size).mask[0].float()
    # texel centres decide the mask: lookups on the island's rim may fall a texel outside
    island = torch.nn.functional.max_pool2d(island[None, None], 3, 1, 1)[0, 0].numpy() > 0
    uv = lookup.uv[lookup.confidence > 0]
    column = np.clip((uv[:, 0] * size[1]).astype(int), 0, size[1] - 1)
    row = np.clip(((1 - uv[:, 1]) * size[0]).astype(int), 0, size[0] - 1)
    assert island[row, column].all()
    assert uv[:, 0].min() > 0.6  # the head island is the right of the map


@needs_skins
def test_rebaked_dark_skin_covers_scalp_and_ears_but_not_the_features(face_model, registration,
                                                                     lookup):
    path = SKINS / "textures" / f"{DARK}.png"
    texture = makehuman.load_map(path, registration.head)
    sample = makehuman.bake(texture, lookup, np.ones(3), face_model.num_expressions)
    points = atlas_positions(face_model, HEIGHT, face_model.neutral).numpy()
    covered = np.abs(points).sum(-1) > 0
    eye_level = float(face_model.neutral[face_model.landmark_vertices[36], 1])
    back = covered & (points[..., 2] < -3.0) & (points[..., 1] > eye_level)
    assert back.sum() > 50 and (sample.confidence[back] > 0.9).mean() > 0.9
    scalp = sample.albedo[:, back & (sample.confidence > 0.9)]
    # the map's background is a flat mean skin colour and the strip is black and white;
    # the scalp is the painted short hair: darker than the background, neither, red > blue
    from PIL import Image

    background = np.asarray(Image.open(path))[5, 5] / 255
    assert scalp.mean() < background.mean() - 0.05
    assert (scalp[0] > scalp[2]).mean() > 0.95 and 0.02 < scalp.max(0).min() < scalp.max() < 0.9
    ears = covered & (np.abs(points[..., 0]) > 6.5) & (np.abs(points[..., 1] - 1) < 2)
    assert (sample.confidence[ears] > 0.5).mean() > 0.5
    eyes = np.linalg.norm(points - face_model.neutral[
        face_model.landmark_vertices[[37, 44]]].numpy()[:, None, None], axis=-1).min(0) < 0.6
    assert sample.confidence[covered & eyes].max() <= makehuman.FEATURE_CONFIDENCE + 0.05


@needs_skins
def test_sample_round_trips_through_the_data_format(tmp_path, face_model, registration, lookup):
    texture = makehuman.load_map(SKINS / "textures" / f"{DARK}.png", registration.head)
    sample = makehuman.bake(texture, lookup, np.array([0.9, 0.9, 0.9]),
                            face_model.num_expressions)
    name = makehuman.sample_name(Path(f"{DARK}.png"), mirrored=True)
    save_sample(tmp_path / name, sample)
    assert [p.name for p in sample_paths(tmp_path)] == [f"makehuman-{DARK}-mirrored.npz"]
    loaded = load_sample(tmp_path / name)
    assert loaded.albedo.shape == (3, HEIGHT, 2 * HEIGHT)
    assert np.abs(loaded.albedo - sample.albedo).max() <= 0.5 / 255 + 1e-6
    assert np.abs(loaded.confidence - sample.confidence).max() <= 0.5 / 255 + 1e-6
    assert loaded.expression.shape == (face_model.num_expressions,)
    assert not loaded.expression.any()


def test_model_with_makehuman_samples_names_them_and_their_licence(tmp_path, face_model):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("P1", "P2", "makehuman-a", "makehuman-a-mirrored"):
        save_sample(data / f"{name}.npz", Sample(
            rng.uniform(0.3, 0.8, (3, 16, 32)).astype(np.float32),
            np.ones((16, 32), np.float32), np.zeros(face_model.num_expressions, np.float32)))
    extra = {"source": makehuman.SOURCE, "licence": makehuman.LICENCE, "maps": 1, "samples": 2}
    asset.install_from_data(data, tmp_path, {"source": "portraits", "makehuman": extra},
                            components=2)
    detail = asset.status(tmp_path)["detail"]
    assert "2 portraits" in detail and "2 MakeHuman full-head skin samples" in detail
    assert "e181c53485eb5a3b1923ea555d4a292cc92856a5" in detail and "CC0 1.0" in detail
    model = asset.load_installed(tmp_path)
    assert model is not None and model.info["makehuman"] == extra
