"""reconstruct: photo(s) in, result folder out; the stages of DESIGN.md in order."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.device import resolve_device
from engine.facemodel import FaceModel, load_face_model
from engine.fit.fitter import FitResult, StepCallback, fit
from engine.fit.presets import Preset, get_preset
from engine.fit.texture_model import TextureModel
from engine.identity.same_person import compare_photos
from engine.imageio import Photo, working_image
from engine.landmarks import get_detector, select_face
from engine.plausibility import plausibility_notes
from engine.progress import Progress
from engine.report import RunInfo, View, result_images, result_info, result_mesh
from engine.result import check_destination, write_result
from engine.texture.complete import final_texture, load_texture_model
from engine.texture.latent_fit import stage_texture
from engine.texture.maps import DEFAULT_SIZE as DEFAULT_MAPS_SIZE


@dataclass(frozen=True)
class ReconstructOptions:
    quality: str = "standard"
    device: str = "auto"
    seed: int = 0
    force: bool = False
    landmarks: str = "mediapipe"
    identity: str = "auto"
    allow_different_people: bool = False
    maps_size: int = DEFAULT_MAPS_SIZE  # normal/roughness/AO map width; 0: no maps
    texture_model: str = "auto"  # auto, pca, none or a GAN checkpoint (complete.py)


def reconstruct(photos: list[Photo], out: Path, options: ReconstructOptions,
                progress: Progress, log: Callable[[str], None]) -> Path:
    """Run every stage on the loaded photos and write the result folder; returns its
    result.json path."""
    check_destination(out, options.force)
    preset = get_preset(options.quality)
    device = resolve_device(options.device)
    stages = StageClock(progress)
    stages.enter("detect")
    model = load_face_model(device)
    views = detect_views(photos, preset, options.landmarks, log)
    for i, notes in compare_photos([v.work for v in views], [v.landmarks for v in views],
                                   [v.photo.path.name for v in views],
                                   options.allow_different_people, log).items():
        views[i].notes.extend(notes)
    learned, texture_model = load_texture_model(options.texture_model, device)
    fitted = fit_views(model, views, preset, options, device, stages, log,
                       stage_texture(learned) if learned is not None else None)
    stages.enter("texture")
    albedo, seen = final_texture(model, [v.work for v in views], fitted.state,
                                 preset.texture_size, learned)
    mesh = result_mesh(model, fitted.state)
    images = result_images(model, mesh, views, fitted.state, albedo, seen, options.maps_size)
    stages.enter("write")
    stages.finish()
    run = RunInfo(preset.name, device, options.seed, options.landmarks, stages.timings)
    info = result_info(model, views, fitted, run, texture_model=texture_model,
                       texture_source="photo + texture model" if texture_model
                       else "photo unwrap", maps=images.map_files())
    return write_result(out, options.force, info, mesh, images)


def detect_views(photos: list[Photo], preset: Preset, detector_name: str,
                 log: Callable[[str], None]) -> list[View]:
    """Each photo's working copy and the 68 landmarks of its chosen face."""
    detector = get_detector(detector_name)
    views = []
    try:
        for photo in photos:
            work, scale = working_image(photo, preset.work_max_side)
            faces = detector.detect(work)
            face, notes = select_face(faces, (work.shape[1], work.shape[0]),
                                      scale_to_original=scale, source=photo.path.name)
            notes += plausibility_notes(work, face)
            for note in notes:
                log(f"{photo.path.name}: {note}")
            views.append(View(photo, work, scale, face.landmarks68, photo.notes + notes,
                              face.dense, face.blendshapes))
    finally:
        detector.close()
    return views


def fit_views(model: FaceModel, views: list[View], preset: Preset, options: ReconstructOptions,
              device: torch.device, stages: "StageClock", log: Callable[[str], None],
              texture: TextureModel | None = None) -> FitResult:
    """The landmark and photometric stages on the detected views, with progress events;
    texture: the texture model stage 2 fits jointly (None: a coarse UV albedo)."""
    inputs = fit_inputs(views, device, model.expression_names)
    return fit(model, [v.work for v in views], inputs.landmarks, preset, options.identity,
               options.seed, on_stage=stages.enter, on_step=stages.reporter, log=log,
               dense=inputs.dense, expression_prior=inputs.expression_prior,
               focal=inputs.focal, texture=texture)


@dataclass
class FitInputs:
    """What the fit takes from the photos: landmarks (N, 68, 2) working pixels; dense
    (N, 478, 2) MediaPipe mesh points or None; expression_prior (N, E) or None; focal (N,)
    working pixels from EXIF or None."""

    landmarks: torch.Tensor
    dense: torch.Tensor | None
    expression_prior: torch.Tensor | None
    focal: torch.Tensor | None


def fit_inputs(views: list[View], device: torch.device, expression_names: list[str],
               blendshape_prior: bool = False) -> FitInputs:
    """What the fit takes from the photos and detections: landmarks (N, 68, 2), dense
    (N, 478, 2) when every view has mesh points, expression_prior (N, E) when every view has
    blendshape scores and `blendshape_prior` is asked for (engine.landmarks.blendshapes maps
    ARKit's names to the model's; off by default: on the shape benchmark's validation renders
    the Face Landmarker scores neutral faces up to 0.9 browInnerUp and the prior made the
    expressions worse), focal (N,) working pixels when every photo's EXIF gives it."""
    def stacked(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.tensor(np.stack(arrays), dtype=torch.float32, device=device)

    dense = [v.dense for v in views]
    scores = [v.blendshapes for v in views]
    prior = None
    if blendshape_prior:
        from engine.landmarks.blendshapes import expression_weights

        given = [s for s in scores if s is not None]
        if len(given) == len(views):
            prior = stacked([expression_weights(s, expression_names) for s in given])
    focal = [v.photo.focal_px(v.work.shape[1], v.work.shape[0]) for v in views]
    points = [d[:, :2] for d in dense if d is not None]
    return FitInputs(
        landmarks=stacked([v.landmarks for v in views]),
        dense=stacked(points) if len(points) == len(views) else None,
        expression_prior=prior,
        focal=torch.tensor(focal, dtype=torch.float32, device=device)
        if all(f is not None for f in focal) else None)


class StageClock:
    """Announces each stage on the progress stream and times it for result.json."""

    _REPORT_EVERY = {"landmark_fit": 10, "full_fit": 5}

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._stage: str | None = None
        self._start = time.perf_counter()

    def enter(self, stage: str) -> None:
        self.finish()
        self.progress.stage(stage)
        self._stage = stage

    def finish(self) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.timings[self._stage] = round(now - self._start, 3)
        self._stage, self._start = None, now

    def reporter(self, stage: str) -> StepCallback:
        every = self._REPORT_EVERY.get(stage, 1)

        def report(step: int, steps: int, terms: dict[str, float]) -> None:
            if step % every == 0 or step == steps:
                self.progress.step(stage, step, steps, terms)
        return report
