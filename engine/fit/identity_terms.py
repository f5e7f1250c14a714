"""GANFit's identity terms for stage 2, built on whichever recognition network is installed.

- l_id: 1 - cos(F(photo), F(render)), both warped into the network's chip by the same
  similarity transform taken from the photo's landmarks;
- l-hat id: the same against a second render with pose, expression, light and camera
  randomised but identity and texture kept, aligned by its own projected landmarks;
- content: distances between inner feature maps of photo and render chips.
"""

import math
from collections.abc import Callable

import torch
from torch import Tensor

from engine.fit.presets import Preset
from engine.fit.renderer import ExtraLoss, FaceRenderer, Rendered, StageTargets
from engine.fit.state import FitState
from engine.identity import (
    alignment_transform,
    identity_and_content_loss,
    identity_target,
    load_identity_network,
    target_identity_loss,
    template_for,
    warp_to_chip,
)
from engine.render import PinholeCamera, axis_angle_to_matrix

_PREFERENCES = {"auto": ("arcface", "dlib"), "arcface": ("arcface",), "dlib": ("dlib",)}


def build_identity_terms(
    choice: str, renderer: FaceRenderer, targets: StageTargets, preset: Preset,
    device: torch.device, seed: int, log: Callable[[str], None],
) -> tuple[ExtraLoss | None, str | None, Callable[[Rendered], list[float]] | None]:
    """(extra loss for fit_photometric, network name, final-cosine scorer), or Nones when
    no network is installed (then the fit runs on pixels and landmarks alone).
    seed: the randomised views' draws (the same seed gives the same views)."""
    net = load_identity_network(_PREFERENCES[choice], device=device)
    if net is None:
        log("no face-recognition network installed: fitting without identity losses "
            "(`python -m engine assets fetch --with arcface`, or pip install dlib-bin "
            "face_recognition_models)")
        return None, None, None
    log(f"identity network: {net.name}")
    template = template_for(net)
    transform = alignment_transform(targets.landmarks, template)
    photo_chips = warp_to_chip(targets.photos, transform, net.input_size)
    target = identity_target(net, photo_chips)
    background = targets.photos.mean((2, 3), keepdim=True).expand_as(targets.photos)
    generator = torch.Generator(device="cpu").manual_seed(seed)

    def extra(rendered: Rendered, state: FitState, albedo: Tensor, step: int) -> dict[str, Tensor]:
        if step % preset.identity_every:
            return {}
        # The free coarse texture would otherwise take the identity terms on itself (paint
        # a likeness instead of shaping one); with it held fixed here, their gradients
        # move shape, expression, pose and light only.
        shape_render = renderer.render(state, albedo.detach(), background=targets.photos)
        chips = warp_to_chip(shape_render.images, transform, net.input_size)
        identity, content = identity_and_content_loss(net, target, chips)
        losses = {"identity": preset.w_identity * identity.mean(),
                  "content": preset.w_content * content.mean()}
        if preset.w_identity_random > 0:
            random_view = _random_render(renderer, state, albedo.detach(), generator, background)
            random_chips = warp_to_chip(
                random_view.images,
                alignment_transform(random_view.landmarks.detach(), template), net.input_size)
            losses["identity_random"] = preset.w_identity_random * target_identity_loss(
                net, target.mean_embedding(), random_chips).mean()
        return losses

    @torch.no_grad()
    def score(rendered: Rendered) -> list[float]:
        chips = warp_to_chip(rendered.images, transform, net.input_size)
        return (1.0 - target_identity_loss(net, target, chips)).tolist()

    return extra, net.name, score


def _random_render(renderer: FaceRenderer, state: FitState, albedo: Tensor,
                   generator: torch.Generator, background: Tensor) -> Rendered:
    """The fitted identity and texture under a random head turn, expression and light."""
    n = state.expression.shape[0]
    device = state.identity.device

    def uniform(*shape: int, scale: float) -> Tensor:
        return ((torch.rand(*shape, generator=generator) * 2 - 1) * scale).to(device)

    camera = renderer.crop_camera(state)
    turn = torch.stack([uniform(n, scale=0.2), uniform(n, scale=math.radians(35)),
                        uniform(n, scale=0.05)], dim=1)  # pitch, yaw, roll in model axes
    rotation = camera.rotation @ axis_angle_to_matrix(turn)
    # keep the head centre where it was: rotate about the model point under the nose
    pivot = state.identity.new_tensor([0.0, 0.0, 8.0])
    translation = camera.translation + ((camera.rotation - rotation) @ pivot)
    random_camera = PinholeCamera(rotation, translation, camera.focal, camera.principal_point)
    expression = (torch.rand(n, state.expression.shape[1], generator=generator).to(device)
                  < 0.05).float() * torch.rand(n, 1, generator=generator).to(device)
    sh = state.sh.detach() + uniform(n, 9, 3, scale=0.15)
    sh[:, 0] = state.sh.detach()[:, 0]
    return renderer.render(state, albedo, expression=expression,
                           camera=random_camera, sh=sh, background=background)

