"""The fit as one call: the landmark stage, then the photometric stage with the identity
terms. Tensors in, a FitResult out; no files, no photos' paths (the result folder is
written by engine.result from what this returns)."""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from engine.facemodel import FaceModel
from engine.facemodel.ict import fitted_expression_mask
from engine.fit.crop import face_crop
from engine.fit.landmark_stage import fit_landmarks, landmark_objective, reprojection_error_px
from engine.fit.losses import masked_l1
from engine.fit.photometric_stage import fit_photometric
from engine.fit.presets import Preset
from engine.fit.renderer import FaceRenderer, StageTargets
from engine.fit.state import FitState, start_focal
from engine.fit.texture_model import CoarseTexture, TextureModel

# log-focal prior width when the EXIF gives the focal length (crops and rounding in the
# camera's own figure: about 5%)
EXIF_FOCAL_SIGMA = 0.05

# The noise model of detected landmarks, chosen on the validation split (cases 0-11) of
# benchmarks/shape_benchmark.py among landmark noise 3-15% of the eye distance and jaw
# weights 0-0.5: MediaPipe's points sit ~5% of the eye distance off the true projections
# of ICT's points, 13% on the jaw outline (whose sliding contour then pulls the shape the
# wrong way), so the noise is 15% and the jaw contour is left out (validation: 2.71 mm,
# 10/12 better than the average face, against 3.88 mm and 1/12 with 3% and 0.5). With
# ground-truth points (tests/fit) the defaults of fit_landmarks hold.
# The sideways mouth and jaw shapes get a tight prior: with the expression prior's 0.2 the
# fit put 0.07-0.3 of mouthLeft or mouthRight on 10 of the 12 validation faces, on the
# side the head was turned to (the detector's mouth points shift with the yaw). Chosen on
# the validation split among 0.02-0.2 (with the identity gain below): 0.05 takes it from
# 2.40 to 2.35 mm and the neutral faces' expression error from 0.050 to 0.035; on the test
# split 2.56 -> 2.57 mm, 0.045 -> 0.037.
# The other expressions take a sparse (Laplace) prior: under this noise model the Gaussian
# spread 0.02-0.08 over several expressions of every neutral face (explaining the
# detector's errors), and found no real expression any better. Chosen on the validation
# split among Laplace scales 0.1, 0.3 and 1 against the Gaussian (whole fit, mm / neutral /
# expressive expression error): 2.35 / 0.004 / 0.154, 2.36 / 0.004 / 0.140,
# 2.34 / 0.034 / 0.165 against 2.35 / 0.035 / 0.166; the neutral identity 2.28 mm from
# the truth against 2.33. Test split, seen once after the choice: 2.58 against 2.57 mm,
# 0.008 / 0.167 against 0.037 / 0.201, the neutral identity 2.41 against 2.44 mm.
DETECTED_NOISE = {"landmark_sigma": 0.15, "jaw_weight": 0.0, "sideways_sigma": 0.05,
                  "expression_laplace": 0.3}

# Under that noise model the landmark stage's identity is shrunk far towards the average
# face: on the validation split its codes spread ~0.2 as wide as the true ones (the
# detector's points lean to its own average face, and the loose noise lets the prior win),
# while a tighter noise or a wider prior lets the detector's errors in (stage 1 alone:
# 2.67 mm; noise 10% or 7%: 2.66, 2.72; identity prior 2 or 3: 2.61, 2.67). So the
# landmark evidence is read as seeing the face DETECTED_IDENTITY_GAIN times as far from
# the average as it is: stage 2 starts from the landmark identity / gain, and its landmark
# objective sees the identity times the gain (full_fit's identity_gain), so only the
# pixels and the identity terms see the real one.
# Chosen on the validation split among 0.4, 0.5, 0.67 and 1: 2.44, 2.40, 2.42, 2.50 mm;
# on the test split (unseen) 0.5 gives 2.56 mm against 2.79 with 1, 12 / 12 better than
# the average face either way.
DETECTED_IDENTITY_GAIN = 0.5

# With detected points stage 2 keeps the landmark stage's expression weights: its pixels
# did not find the true expressions (at the true weights the pixel L1 differs from the
# fitted ones' by under 2%) but added weights the truth does not have (jawOpen 0.07-0.19
# where the lips part by other shapes). Validation split (in-process, preview): 2.356 ->
# 2.350 mm, 12 / 12 better than the average face (was 11 / 12). Test split, seen once
# after the choice: 2.577 -> 2.549 mm. All 24: the expressions' L1 error on the expressive
# renders 1.078 -> 1.052 (no expression at all: 1.028), on the neutral ones 0.029 -> 0.021.
# Whole CLI, all 24: 2.469 -> 2.448 mm, 23 -> 22 better (cases 5 and 11 stay within
# 0.04 mm of the average face).
DETECTED_STAGE2_HOLD = ("expression",)

# on_step(step, steps, loss terms)
StepCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class FitResult:
    """The fitted unknowns of N views and how well they explain each photo.

    landmark_error_px: (N,) mean landmark distance in working-image pixels;
    photometric_l1: (N,) mean colour difference in the rendered face crop;
    identity_cosine: N cosines between photo and render, or None without a network.
    """

    state: FitState
    texture_model: TextureModel
    landmark_error_px: Tensor
    photometric_l1: Tensor
    identity_cosine: list[float] | None
    identity_network: str | None


def initial_state(model: FaceModel, images: Sequence[np.ndarray],
                  device: torch.device) -> FitState:
    """The mean face, before any stage, for N working images (H, W, 3)."""
    sizes = [(image.shape[0], image.shape[1]) for image in images]
    mask = fitted_expression_mask(model.expression_names, device)
    return FitState.initial(len(images), model.num_identity, mask, sizes, device)


def landmark_fit(model: FaceModel, images: Sequence[np.ndarray], landmarks: Tensor,
                 preset: Preset, on_step: StepCallback | None = None,
                 dense: Tensor | None = None,
                 expression_prior: Tensor | None = None,
                 focal: Tensor | None = None) -> FitState:
    """Stage 1 from the mean face. landmarks: (N, 68, 2) working-image pixels; dense:
    (N, 478, 2) MediaPipe mesh points there, or None; expression_prior: (N, E) weights the
    detector read off the photos (blendshape scores), or None; focal: (N,) focal lengths
    in working pixels the photos' EXIF gives (then held close), or None."""
    state = initial_state(model, images, landmarks.device)
    if focal is not None:
        state.log_focal = focal.log().to(state.log_focal)
    fit_landmarks(model, landmarks, state, preset.landmark_steps, on_step=on_step,
                  **detected_evidence(dense, expression_prior, focal))
    return state


def detected_evidence(dense: Tensor | None, expression_prior: Tensor | None,
                      focal: Tensor | None) -> dict:
    """The landmark objective's options for detected points (engine.fit.landmark_stage):
    the detector's noise model, its dense points and expression scores, and a tight focal
    prior when the EXIF gives the focal length."""
    focal_sigma = {} if focal is None else {"focal_sigma": EXIF_FOCAL_SIGMA}
    return {"dense": dense, "expression_prior": expression_prior, **focal_sigma,
            **DETECTED_NOISE}


def full_fit(model: FaceModel, images: Sequence[np.ndarray], landmarks: Tensor,
             state: FitState, preset: Preset, identity: str = "auto", seed: int = 0,
             on_step: StepCallback | None = None,
             log: Callable[[str], None] = lambda _: None, evidence: dict | None = None,
             focal: Tensor | None = None, texture: TextureModel | None = None,
             identity_gain: float = 1.0, hold: Collection[str] = ()) -> FitResult:
    """Stage 2, continuing from `state` (in place), and the per-view metrics.

    identity: which recognition network steers the fit ("auto", "arcface", "dlib", "none");
    seed: every random draw of the stage (its randomised views) comes from it. With
    preset.photo_shape the stage keeps the landmark stage's objective beside the pixels:
    evidence holds its options as stage 1 had them (detected_evidence for detected points;
    None: fit_landmarks' defaults, for exact points), focal the EXIF focal or None.
    texture: a learned texture model in the skin atlas's layout, its latent fitted with
    everything else (GANFit's stage 2); None: a coarse UV albedo around the photo's skin
    colour. A learned model cannot paint shading into the texture, so light and shape must
    explain it: on the shape benchmark's validation split 2.50 mm against 2.61 with the
    coarse albedo (whose pixel error is lower: it paints what it likes).
    identity_gain: how far from the average face the landmark evidence puts the identity,
    relative to the real one (DETECTED_IDENTITY_GAIN for detected points, 1 for exact
    ones): the stage starts from state.identity / identity_gain.
    hold: unknowns the stage keeps as the landmark stage left them (DETECTED_STAGE2_HOLD
    for detected points).
    """
    device = landmarks.device
    crops = [face_crop(lm.cpu().numpy(), preset.render_size) for lm in landmarks]
    photos = torch.stack([c.image(im) for c, im in zip(crops, images, strict=True)]).to(device)
    crop_landmarks = torch.stack([c.points(lm) for c, lm in zip(crops, landmarks, strict=True)])
    targets = StageTargets(photos, crop_landmarks, crops)
    renderer = FaceRenderer(model, crops, atlas=texture is not None)
    if texture is None:
        texture = CoarseTexture(_mean_face_colour(photos[0], crop_landmarks[0]))
    state.texture = texture.initial_latent().to(device)
    anchor = None
    if preset.photo_shape:
        sizes = [(image.shape[0], image.shape[1]) for image in images]
        start = start_focal(sizes, device) if focal is None else focal
        anchor = landmark_objective(model, landmarks, start, state.expression_mask,
                                    identity_gain=identity_gain, **(evidence or {}))
    with torch.no_grad():
        state.identity /= identity_gain
    extra, network, score = None, None, None
    if identity != "none":
        from engine.fit.identity_terms import build_identity_terms

        extra, network, score = build_identity_terms(identity, renderer, targets, preset,
                                                     device, seed, log)
    fit_photometric(renderer, targets, state, texture, preset, extra, on_step=on_step,
                    anchor=anchor, hold=hold)
    with torch.no_grad():
        rendered = renderer.render(state, texture.decode(state.texture), background=photos)
        pixel_l1 = masked_l1(rendered.images, photos, rendered.mask)
        cosines = score(rendered) if score else None
    return FitResult(state, texture, reprojection_error_px(model, state, landmarks), pixel_l1,
                     cosines, network)


def fit(model: FaceModel, images: Sequence[np.ndarray], landmarks: Tensor, preset: Preset,
        identity: str = "auto", seed: int = 0,
        on_stage: Callable[[str], None] = lambda _: None,
        on_step: Callable[[str], StepCallback | None] = lambda _: None,
        log: Callable[[str], None] = lambda _: None, dense: Tensor | None = None,
        expression_prior: Tensor | None = None, focal: Tensor | None = None,
        texture: TextureModel | None = None) -> FitResult:
    """Both stages: landmark_fit then full_fit (see those). on_stage(name) is called as each
    starts; on_step(stage) gives that stage's step callback."""
    torch.manual_seed(seed)
    on_stage("landmark_fit")
    state = landmark_fit(model, images, landmarks, preset, on_step("landmark_fit"), dense,
                         expression_prior, focal)
    on_stage("full_fit")
    return full_fit(model, images, landmarks, state, preset, identity, seed,
                    on_step("full_fit"), log, detected_evidence(dense, expression_prior, focal),
                    focal, texture, DETECTED_IDENTITY_GAIN, DETECTED_STAGE2_HOLD)


def _mean_face_colour(photo: Tensor, landmarks: Tensor) -> Tensor:
    """(3,) median colour of the cheeks/nose area: the texture's starting colour.

    photo: (3, S, S); landmarks: (68, 2) pixels of that crop."""
    lo = landmarks[[31, 35, 48, 54]].min(0).values
    hi = landmarks[[31, 35, 48, 54]].max(0).values
    x0, y0 = lo.clamp(min=0).long().tolist()
    x1, y1 = (hi + 1).long().tolist()
    patch = photo[:, max(y0 - 10, 0):y1, max(x0, 0):x1].reshape(3, -1)
    if patch.shape[1] == 0:
        return torch.full((3,), 0.6, device=photo.device)
    return patch.median(dim=1).values
