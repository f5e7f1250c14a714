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


def _mouth_scene(upper_lip: list[tuple[float, float, list[float]]]):
    """Texels on a plane around a closed mouth's inner lip line (y = 0, x in -2.5..2.5 cm):
    lips within 0.9 cm of it, skin beyond; `upper_lip` paints (half width, height above the
    line, colour) strips over the middle of the upper lip, in order. Returns albedo (M, 3),
    points (M, 3), the inner and outer lip loops, the skin colour (3,) and the confidence (M,),
    0 within the geometric confidence's mouth margin at rest (0.25 cm)."""
    xs, ys = torch.meshgrid(torch.arange(-2.5, 2.5, 0.05), torch.arange(-1.2, 1.2, 0.05),
                            indexing="ij")
    points = torch.stack([xs.flatten(), ys.flatten(), torch.zeros(xs.numel())], -1)
    inner = torch.tensor([[-2.5, 0.0, 0.0], [0.0, 0.01, 0.0], [2.5, 0.0, 0.0], [0.0, -0.01, 0.0]])
    outer = torch.tensor([[-2.6, 0.0, 0.0], [-2.0, 0.9, 0.0], [2.0, 0.9, 0.0], [2.6, 0.0, 0.0],
                          [2.0, -0.9, 0.0], [-2.0, -0.9, 0.0]])
    skin = torch.tensor([0.78, 0.58, 0.48])
    lips = torch.tensor([0.62, 0.36, 0.36])
    height = points[:, 1]
    albedo = torch.where((height.abs() < 0.9)[:, None], lips, skin)
    for half_width, top, colour in upper_lip:
        strip = (height >= 0) & (height < top) & (points[:, 0].abs() < half_width)
        albedo[strip] = torch.tensor(colour)
    confidence = (height.abs() > 0.25).float()
    return albedo, points, (inner, outer), skin, confidence


def test_teeth_on_the_lips_are_the_mouths_opening_and_lips_at_rest_are_kept():
    """A smile fitted with the lips closer than the photo's: the upper lip's texels next to
    the inner lip line show teeth. Teeth de-lit are skin-like in hue, only brighter (the
    colour test keeps them); those in the mouth's shadow are as dark as the skin. Both go,
    and the lips above them and elsewhere stay."""
    from engine.texture.confidence import mouth_opening_texels

    # de-lit L*a*b* (76, 12, 16) and (62, 11, 13); the skin (66, 16, 21), the lips (47, 27, 12)
    bright_teeth, shadowed_teeth = [0.86, 0.70, 0.62], [0.70, 0.56, 0.50]
    # bright front teeth up to 0.45 cm above the line (as measured on the astronaut) and
    # shadowed side teeth next to them along the line, less high
    albedo, points, loops, skin, confidence = _mouth_scene([(1.2, 0.35, shadowed_teeth),
                                                            (1.0, 0.45, bright_teeth)])
    teeth_colours = torch.tensor([bright_teeth, shadowed_teeth])
    assert (colour_confidence(teeth_colours, teeth_colours, skin) == 1).all()  # skin-like
    opening = mouth_opening_texels(albedo, points, *loops, skin, confidence)
    x, height = points[:, 0].abs(), points[:, 1]
    teeth = (confidence > 0) & (height >= 0) & (((height < 0.45) & (x < 1.0))
                                                | ((height < 0.35) & (x < 1.2)))
    assert opening[teeth].all()  # bright and shadowed teeth alike
    assert not opening[(height > 0.6) & (height < 0.85)].any()  # the upper lip above them
    assert not opening[(height < 0) & (height > -0.85)].any()  # the lower lip
    assert not opening[x > 1.6].any()  # along the line where no teeth show

    # a highlight on the lower lip, lip-red between it and the line, is not the opening
    highlight = (height < -0.55) & (height > -0.7) & (x < 0.5)
    albedo[highlight] = torch.tensor(bright_teeth)
    opening = mouth_opening_texels(albedo, points, *loops, skin, confidence)
    assert opening[teeth].all() and not opening[height < 0].any()

    # a closed mouth: lips and skin only, nothing is taken away, nor with a highlight
    albedo, points, loops, skin, confidence = _mouth_scene([])
    assert not mouth_opening_texels(albedo, points, *loops, skin, confidence).any()
    albedo[highlight] = torch.tensor(bright_teeth)
    assert not mouth_opening_texels(albedo, points, *loops, skin, confidence).any()
