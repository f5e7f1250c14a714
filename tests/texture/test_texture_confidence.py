"""Which texels count as skin: the colour test against the face's own skin colour keeps
skin under a little shading and rejects what portraits put around a face."""

import torch

from engine.texture.confidence import colour_confidence
from engine.texture.observe import estimate_shading


def test_colour_test_keeps_skin_and_rejects_collar_suit_hair_and_highlights():
    skin = torch.tensor([0.78, 0.58, 0.48])
    colours = {
        "skin": skin, "shaded skin": skin * 0.85, "lighter skin": skin * 1.08,
        "white collar": torch.tensor([0.95, 0.95, 0.96]),
        "dark suit": torch.tensor([0.10, 0.11, 0.16]),
        "black occluder": torch.tensor([0.11, 0.10, 0.12]),
        "blue backdrop": torch.tensor([0.35, 0.5, 0.7]),
        "grey hair": torch.tensor([0.6, 0.6, 0.62]),
        "clipped highlight": torch.tensor([0.99, 0.93, 0.88]),
    }
    albedo = torch.stack(list(colours.values()))
    kept = colour_confidence(albedo, albedo, skin)
    verdict = dict(zip(colours, kept.tolist(), strict=True))
    assert verdict == {name: float(name.endswith("skin")) for name in colours}


def test_estimated_shading_divides_out_a_side_light():
    generator = torch.Generator().manual_seed(0)
    normal = torch.nn.functional.normalize(torch.randn(4000, 3, generator=generator), dim=-1)
    normal[:, 2] = normal[:, 2].abs()  # facing the camera
    light = 0.75 + 0.25 * normal[:, 0:1]  # brighter on one side
    albedo = torch.tensor([0.7, 0.5, 0.4])
    photo = albedo * light
    reference = normal[:, 2] > 0.9
    shading = estimate_shading(photo, normal, torch.ones(4000, dtype=torch.bool), reference)
    delit = photo / shading
    assert (delit.std(0) < 0.01).all()  # the side light is gone
    # and the level is the reference region's photographed colour
    assert torch.allclose(delit.mean(0), photo[reference].median(0).values, atol=0.02)
