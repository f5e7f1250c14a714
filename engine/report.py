"""What a fit becomes in the result folder: FitResult + detected views -> the typed records
of engine.result (cameras in the original photo's pixels, metrics, mesh arrays)."""

import platform
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from engine import __version__
from engine.facemodel import FaceModel
from engine.fit.fitter import FitResult
from engine.fit.state import FitState
from engine.imageio import Photo, to_original
from engine.preview import preview_image
from engine.result import Camera, Metrics, ResultImages, ResultInfo, ResultMesh, ViewRecord
from engine.texture.atlas import atlas_uvs
from engine.texture.eyes import IRIS_PNG, first_view_iris
from engine.texture.maps import bake_maps, map_files
from engine.texture.teeth import mouth_maps

MODEL_INFO = {"name": "ICT-FaceKit light", "version": "da5f95a", "licence": "MIT"}


@dataclass
class View:
    """One input photo: the decoded photo, its working copy and detected landmarks."""

    photo: Photo
    work: np.ndarray  # (H, W, 3) uint8, the photo scaled to the preset's working size
    scale: float  # original pixels per working pixel
    landmarks: np.ndarray  # (68, 2) working pixels
    notes: list[str]
    dense: np.ndarray | None = None  # (478, 2+) MediaPipe mesh points, working pixels
    blendshapes: dict[str, float] | None = None  # ARKit name -> score, from the detector


@dataclass(frozen=True)
class RunInfo:
    """How the run was asked for and what it ran on."""

    quality: str
    device: torch.device
    seed: int
    landmark_detector: str
    timings: dict[str, float]


def original_camera(state: FitState, index: int, scale: float) -> Camera:
    """The view's camera in pixels of the original photo (DESIGN.md convention)."""
    camera = state.camera()
    focal = float(camera.focal[index, 0]) * scale
    principal = (camera.principal_point[index].cpu().numpy() + 0.5) * scale - 0.5
    return Camera(rotation=camera.rotation[index].cpu().numpy().round(7).tolist(),
                  translation=camera.translation[index].cpu().numpy().round(5).tolist(),
                  focal=[focal, focal], principal_point=principal.round(3).tolist())


def result_info(model: FaceModel, views: Sequence[View], fitted: FitResult, run: RunInfo,
                texture_source: str, maps: dict[str, str] | None = None,
                texture_model: str | None = None) -> ResultInfo:
    state = fitted.state
    records = []
    for i, view in enumerate(views):
        weights = state.expression[i].cpu().numpy()
        cosine = None if fitted.identity_cosine is None else float(fitted.identity_cosine[i])
        records.append(ViewRecord(
            path=str(view.photo.path.resolve()),
            size=list(view.photo.size),
            landmarks=to_original(view.landmarks, view.scale).round(3).tolist(),
            expression_weights={name: round(float(w), 5)
                                for name, w in zip(model.expression_names, weights, strict=True)},
            camera=original_camera(state, i, view.scale),
            metrics=Metrics(float(fitted.landmark_error_px[i]) * view.scale, cosine,
                            float(fitted.photometric_l1[i])),
            notes=view.notes,
        ))
    summary = Metrics(
        float(np.mean([float(fitted.landmark_error_px[i]) * v.scale
                       for i, v in enumerate(views)])),
        None if fitted.identity_cosine is None else float(np.mean(fitted.identity_cosine)),
        float(fitted.photometric_l1.mean()))
    return ResultInfo(
        model=MODEL_INFO, expression_names=model.expression_names, quality=run.quality,
        device=str(run.device), engine_version=__version__,
        python=platform.python_version(), torch=torch.__version__,
        landmark_detector=run.landmark_detector, identity_network=fitted.identity_network,
        texture_model=texture_model,
        texture_source=texture_source, seed=run.seed,
        timings=run.timings,
        peak_cuda_memory_mb=(torch.cuda.max_memory_allocated() / 2**20
                             if run.device.type == "cuda" else None),
        views=records, metrics=summary, maps=maps or {})


def result_images(model: FaceModel, mesh: ResultMesh, views: Sequence[View], state: FitState,
                  albedo: Tensor, seen: Tensor, maps_size: int) -> ResultImages:
    """texture.png and its mask from the baked albedo (3, T, 2T) and seen mask (T, 2T), the
    preview of the first view, the normal/roughness/AO maps at `maps_size` wide (none for 0),
    the iris colour from the first photo and the generated teeth and gums colours."""
    vertices = torch.from_numpy(mesh.vertices)
    maps = map_files(bake_maps(model, vertices, albedo, seen, maps_size)) if maps_size else {}
    maps.update(mouth_maps(model, vertices))
    iris = first_view_iris(model, views[0].work, state)
    if iris is not None:
        maps["iris"] = (IRIS_PNG, iris)
    texture = (albedo.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return ResultImages(texture, seen.cpu().numpy(),
                        preview_image(model, state, albedo, views[0].work), maps)


@torch.no_grad()
def result_mesh(model: FaceModel, state: FitState) -> ResultMesh:
    """The fitted identity at neutral expression with the model's topology and blendshapes."""
    vertices = model(state.identity[None], torch.zeros_like(state.expression[:1]))[0]
    return ResultMesh(
        vertices=vertices.cpu().numpy(),
        polygon_sizes=model.polygon_sizes.cpu().numpy(),
        polygon_vertices=model.polygon_vertices.cpu().numpy(),
        loop_uvs=atlas_uvs(model).cpu().numpy(),
        polygon_materials=model.polygon_materials.cpu().numpy(),
        material_names=model.material_names,
        expression_names=model.expression_names,
        expression_deltas=model.expression_deltas(state.identity).cpu().numpy(),
        landmark_vertices=model.landmark_vertices.cpu().numpy(),
    )
