"""reconstruct: photo(s) in, result folder out. Orchestrates the stages of DESIGN.md."""

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine import __version__
from engine.errors import BadInputError
from engine.facemodel import FaceModel, load_face_model
from engine.fit.crop import FaceCrop, face_crop
from engine.fit.landmark_stage import fit_landmarks, reprojection_error_px
from engine.fit.photometric_stage import FaceRenderer, StageTargets, fit_photometric
from engine.fit.presets import Preset, get_preset
from engine.fit.state import FitState
from engine.fit.texture_model import CoarseTexture
from engine.imageio import Photo, load_photo, to_original, working_image
from engine.landmarks import get_detector, select_face
from engine.progress import Progress
from engine.result import ResultMesh, check_destination, write_result
from engine.texture.atlas import atlas_uvs, bake_albedo

# The 53 ARKit-style shapes are fitted except gaze (eyeLook*: 68 landmarks say nothing
# about where the eyes look); PupilDilate and cheekRaiser stay at 0.
FITTED_EXPRESSIONS = 53


def expression_mask(model: FaceModel, device: torch.device) -> torch.Tensor:
    """(E,) 1 for the expressions the fit may move."""
    return torch.tensor([float(i < FITTED_EXPRESSIONS and not name.startswith("eyeLook"))
                         for i, name in enumerate(model.expression_names)], device=device)


@dataclass(frozen=True)
class ReconstructOptions:
    quality: str = "standard"
    device: str = "auto"
    seed: int = 0
    force: bool = False
    landmarks: str = "mediapipe"
    identity: str = "auto"


@dataclass
class View:
    """One input photo: the decoded photo, its working copy and detected landmarks."""

    photo: Photo
    work: np.ndarray
    scale: float  # original pixels per working pixel
    landmarks: np.ndarray  # (68, 2) working pixels
    notes: list[str]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda was asked for but no CUDA GPU is available to torch")
    return torch.device(name)


def detect_views(photos: list[Photo], preset: Preset, detector_name: str,
                 log: Callable[[str], None]) -> list[View]:
    detector = get_detector(detector_name)
    views = []
    try:
        for photo in photos:
            work, scale = working_image(photo, preset.work_max_side)
            faces = detector.detect(work)
            face, notes = select_face(faces, (work.shape[1], work.shape[0]),
                                      scale_to_original=scale, source=photo.path.name)
            for note in notes:
                log(f"{photo.path.name}: {note}")
            views.append(View(photo, work, scale, face.landmarks68, photo.notes + notes))
    finally:
        detector.close()
    return views


def _mean_face_colour(photo: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """(3,) median colour of the cheeks/nose area: the texture's starting colour."""
    lo = landmarks[[31, 35, 48, 54]].min(0).values
    hi = landmarks[[31, 35, 48, 54]].max(0).values
    x0, y0 = lo.clamp(min=0).long().tolist()
    x1, y1 = (hi + 1).long().tolist()
    patch = photo[:, max(y0 - 10, 0):y1, max(x0, 0):x1].reshape(3, -1)
    if patch.shape[1] == 0:
        return torch.full((3,), 0.6, device=photo.device)
    return patch.median(dim=1).values


class StageClock:
    """Seconds spent per stage, for result.json's timings."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(now - self._last, 3)
        self._last = now


def reconstruct(images: list[Path], out: Path, options: ReconstructOptions,
                progress: Progress, log: Callable[[str], None]) -> Path:
    """Run every stage and write the result folder; returns its result.json path."""
    check_destination(out, options.force)
    preset = get_preset(options.quality)
    device = resolve_device(options.device)
    clock = StageClock()
    photos = [load_photo(p) for p in images]  # every input checked before any slow work
    progress.stage("detect")
    model = load_face_model(device)
    views = detect_views(photos, preset, options.landmarks, log)
    clock.lap("detect")
    return fit_views(model, views, out, options, preset, device, progress, log, clock)


def fit_views(model: FaceModel, views: list[View], out: Path, options: ReconstructOptions,
              preset: Preset, device: torch.device, progress: Progress,
              log: Callable[[str], None], clock: StageClock) -> Path:
    """Every stage after detection: fit, bake the texture, write the result folder."""
    torch.manual_seed(options.seed)

    def step_reporter(stage: str, every: int) -> Callable[[int, int, dict[str, float]], None]:
        def report(step: int, steps: int, terms: dict[str, float]) -> None:
            if step % every == 0 or step == steps:
                progress.step(stage, step, steps, terms)
        return report

    progress.stage("landmark_fit")
    n = len(views)
    fitted = expression_mask(model, device)
    sizes = [(v.work.shape[0], v.work.shape[1]) for v in views]
    state = FitState.initial(n, model.num_identity, model.num_expressions, sizes, device)
    landmarks = torch.tensor(np.stack([v.landmarks for v in views]), dtype=torch.float32,
                             device=device)
    fit_landmarks(model, landmarks, state, preset.landmark_steps, fitted,
                  on_step=step_reporter("landmark_fit", 10))
    clock.lap("landmark_fit")

    progress.stage("full_fit")
    crops = [face_crop(v.landmarks, preset.render_size) for v in views]
    photos = torch.stack([c.image(v.work) for c, v in zip(crops, views, strict=True)]).to(device)
    crop_landmarks = torch.stack([c.points(landmarks[i]) for i, c in enumerate(crops)])
    targets = StageTargets(photos, crop_landmarks, crops)
    renderer = FaceRenderer(model, crops)
    texture = CoarseTexture(_mean_face_colour(photos[0], crop_landmarks[0]))
    extra, identity_name, identity_score = _identity_terms(options.identity, renderer, targets,
                                                            preset, device, log)
    fit_photometric(renderer, targets, state, texture, preset, fitted, extra,
                    on_step=step_reporter("full_fit", 5))
    clock.lap("full_fit")

    progress.stage("texture")
    albedo, seen = _texture(model, views, state, preset, device)
    clock.lap("texture")

    progress.stage("write")
    with torch.no_grad():
        rendered = renderer.render(state, texture.decode(), background=photos)
        pixel_l1 = ((rendered.images - photos).abs() * rendered.mask).sum((1, 2, 3)) \
            / (3 * rendered.mask.sum((1, 2, 3))).clamp(min=1)
        cosines = identity_score(rendered) if identity_score else [None] * n
    errors = reprojection_error_px(model, state, landmarks)
    preview = _preview(renderer, state, albedo, views, device)
    info = _result_info(model, views, state, options, preset, device, clock.timings, errors,
                        pixel_l1, cosines, identity_name)
    mesh = _result_mesh(model, state)
    texture_png = (albedo.clamp(0, 1) * 255).round().byte().permute(1, 2, 0)
    path = write_result(out, options.force, info, mesh, texture_png.cpu().numpy(),
                        seen.cpu().numpy(), preview)
    return path


def _identity_terms(choice: str, renderer: FaceRenderer, targets: StageTargets, preset: Preset,
                    device: torch.device, log: Callable[[str], None]):
    """(extra loss, network name, scorer) for stage 2, or (None, None, None) without one."""
    if choice == "none":
        return None, None, None
    from engine.fit.identity_terms import build_identity_terms

    return build_identity_terms(choice, renderer, targets, preset, device, log)


def _texture(model: FaceModel, views: list[View], state: FitState, preset: Preset,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, T, 2T) albedo atlas and (T, 2T) seen-mask baked from the working photos."""
    return bake_albedo(model, [v.work for v in views], state.identity, state.expression,
                       state.camera(), state.sh, preset.texture_size)


def _preview(renderer: FaceRenderer, state: FitState, albedo: torch.Tensor, views: list[View],
             device: torch.device) -> np.ndarray:
    """The first view side by side: the textured render over the photo, and the fitted
    shape in plain grey over the photo (where the fit's geometry is easy to judge)."""
    view = views[0]
    h, w = view.work.shape[:2]
    full = FaceCrop(0.0, 0.0, float(max(h, w)), max(h, w))
    full_renderer = FaceRenderer(renderer.model, [full], atlas=True)
    photo = full.image(view.work)[None].to(device)
    one = FitState(**{k: (v if k == "identity" else v[:1]) for k, v in state.tensors().items()})
    with torch.no_grad():
        textured = full_renderer.render(one, albedo[None], background=photo).images[0]
        grey = torch.full_like(albedo[None, :, :8, :8], 0.7)
        shape = full_renderer.render(one, grey, background=photo)
        overlay = photo[0] + 0.75 * shape.mask[0] * (shape.images[0] - photo[0])
    panels = torch.cat([textured[:, :h, :w], overlay[:, :h, :w]], dim=2)
    return (panels.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def _result_mesh(model: FaceModel, state: FitState) -> ResultMesh:
    with torch.no_grad():
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


def _original_camera(state: FitState, index: int, scale: float) -> dict:
    """The view's camera in pixels of the original photo (DESIGN.md convention)."""
    camera = state.camera()
    focal = float(camera.focal[index, 0]) * scale
    principal = (camera.principal_point[index].cpu().numpy() + 0.5) * scale - 0.5
    return {
        "rotation": camera.rotation[index].cpu().numpy().round(7).tolist(),
        "translation": camera.translation[index].cpu().numpy().round(5).tolist(),
        "focal": [focal, focal],
        "principal_point": principal.round(3).tolist(),
    }


def _metrics(error_px: float | None, cosine: float | None, l1: float | None) -> dict:
    return {"landmark_error_px": error_px, "identity_cosine": cosine, "photometric_l1": l1}


def _result_info(model: FaceModel, views: list[View], state: FitState,
                 options: ReconstructOptions, preset: Preset, device: torch.device,
                 timings: dict[str, float], errors: torch.Tensor, pixel_l1: torch.Tensor,
                 cosines: list, identity_name: str | None) -> dict:
    entries = []
    for i, view in enumerate(views):
        weights = state.expression[i].cpu().numpy()
        names = model.expression_names
        entries.append({
            "path": str(view.photo.path.resolve()),
            "size": list(view.photo.size),
            "landmarks": to_original(view.landmarks, view.scale).round(3).tolist(),
            "expression_weights": {name: round(float(w), 5)
                                   for name, w in zip(names, weights, strict=True)},
            "camera": _original_camera(state, i, view.scale),
            "metrics": _metrics(float(errors[i]) * view.scale,
                                None if cosines[i] is None else float(cosines[i]),
                                float(pixel_l1[i])),
            "notes": view.notes,
        })
    summary = _metrics(
        float(np.mean([e["metrics"]["landmark_error_px"] for e in entries])),
        None if cosines[0] is None else float(np.mean([float(c) for c in cosines])),
        float(pixel_l1.mean()))
    return {
        "model": {"name": "ICT-FaceKit light", "version": "da5f95a", "licence": "MIT"},
        "units": "cm",
        "up_axis": "Y",
        "expression_names": model.expression_names,
        "quality": preset.name,
        "device": str(device),
        "engine_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "landmark_detector": options.landmarks,
        "identity_network": identity_name,
        "texture_model": None,
        "texture_source": "photo unwrap",
        "seed": options.seed,
        "timings": timings,
        "peak_cuda_memory_mb": (torch.cuda.max_memory_allocated() / 2**20
                                if device.type == "cuda" else None),
        "views": entries,
        "metrics": summary,
    }
