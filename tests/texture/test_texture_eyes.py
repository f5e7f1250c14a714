"""The iris texture from the photo (engine/texture/eyes.py)."""

import numpy as np
import torch

from engine.render import front_camera
from engine.texture import eyes


def _at_radius(texture: np.ndarray, radius: float) -> np.ndarray:
    size = texture.shape[0]
    return texture[size // 2, int(size / 2 + radius * size)].astype(int)


def test_iris_texture_keeps_the_photo_colour_between_pupil_and_limbus():
    rng = np.random.default_rng(0)
    radius = rng.uniform(0.09, 0.4, 4000)
    blue, white = np.array([0.1, 0.3, 0.6]), np.array([0.85, 0.85, 0.85])
    colour = np.where((radius < 0.25)[:, None], blue, white) + rng.normal(0, 0.02, (4000, 3))
    texture = eyes.iris_texture(radius, colour, size=256)
    assert texture.shape == (256, 256, 3) and texture.dtype == np.uint8
    iris = _at_radius(texture, 0.17)
    assert np.all(np.abs(iris - blue * 255) < 0.15 * 255), iris  # the photo's blue
    assert np.all(_at_radius(texture, 0.0) < 10)  # the pupil
    assert np.all(_at_radius(texture, 0.35) < 15)  # beyond the limbus: hidden, dark
    assert eyes.iris_texture(np.zeros(0), np.zeros((0, 3))) is None


def test_iris_samples_see_the_irises_from_the_front(face_model):
    """A front view of the neutral model over a uniform photo: both irises are seen, and
    only their front (small UV radii), not the hidden inner eyeball."""
    photo = np.full((400, 400, 3), (40, 90, 160), dtype=np.uint8)
    camera = front_camera((400, 400), distance=60.0, focal=900.0, target=(0.0, 3.0, 0.0))
    radius, colour = eyes.iris_samples(face_model, photo, face_model.neutral, camera)
    assert len(radius) > 100
    np.testing.assert_allclose(colour, np.tile([40 / 255, 90 / 255, 160 / 255],
                                               (len(radius), 1)), atol=1e-6)
    assert np.median(radius) < 0.3
    # Turned away (camera behind the head): nothing of the irises is seen.
    back = front_camera((400, 400), distance=60.0, focal=900.0)
    back.rotation = back.rotation @ torch.diag(torch.tensor([-1.0, 1.0, -1.0]))
    back.translation = -(back.rotation[0] @ torch.tensor([0.0, 0.0, -60.0]))[None]
    assert len(eyes.iris_samples(face_model, photo, face_model.neutral, back)[0]) == 0
