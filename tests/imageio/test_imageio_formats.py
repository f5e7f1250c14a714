"""engine.imageio.load_photo: every failure is a BadInputError naming the file, and every
supported pixel format comes out as upright (H, W, 3) uint8 with the documented conversion."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from engine.errors import BadInputError
from engine.imageio import MIN_SIDE, load_photo, to_original, working_image


def _gradient(h: int = 96, w: int = 128) -> np.ndarray:
    """(h, w, 3) uint8 test pattern with distinct values per pixel and channel."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], -1).astype(np.uint8)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (8-bit grey) with a tiny IDAT: a bomb header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# --- failures ---------------------------------------------------------------------------


def test_missing_file(tmp_path: Path):
    with pytest.raises(BadInputError, match="nope.jpg does not exist") as info:
        load_photo(tmp_path / "nope.jpg")
    assert info.value.exit_code == 2


def test_directory(tmp_path: Path):
    with pytest.raises(BadInputError, match="is a directory"):
        load_photo(tmp_path)


@pytest.mark.parametrize("content", [b"hello, I am not a picture\n" * 20, b""])
def test_not_an_image(tmp_path: Path, content: bytes):
    path = tmp_path / "notes.jpg"
    path.write_bytes(content)
    with pytest.raises(BadInputError, match="notes.jpg"):
        load_photo(path)


@pytest.mark.parametrize("fraction", [0.3, 0.8, 0.995])
@pytest.mark.parametrize("flag", [False, True])
def test_truncated_jpeg_is_rejected(astronaut, save, monkeypatch, fraction, flag):
    """Even when another library switched Pillow's LOAD_TRUNCATED_IMAGES on, a truncated
    JPEG is refused (not decoded into a half-grey picture), and the flag is left as found."""
    path = save(astronaut, "cut.jpg", quality=90)
    full = path.read_bytes()
    path.write_bytes(full[: int(len(full) * fraction)])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", flag)
    with pytest.raises(BadInputError, match="cut.jpg is damaged or truncated"):
        load_photo(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is flag


def test_truncated_png_is_rejected(astronaut, save):
    path = save(astronaut, "cut.png")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match="cut.png"):
        load_photo(path)


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_decompression_bomb(tmp_path: Path, side: int):
    """100 MP (Pillow warns) and 400 MP (Pillow refuses) headers are both rejected unread."""
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    with pytest.raises(BadInputError, match="bomb.png is too large"):
        load_photo(path)


def test_tiny_image_is_rejected_and_minimum_accepted(save):
    with pytest.raises(BadInputError, match=f"tiny.png is too small .*{MIN_SIDE} px"):
        load_photo(save(_gradient(MIN_SIDE - 1, 200), "tiny.png"))
    assert load_photo(save(_gradient(MIN_SIDE, MIN_SIDE), "ok.png")).size == (MIN_SIDE, MIN_SIDE)


# --- formats ----------------------------------------------------------------------------


def test_rgb_png_is_exact(save):
    img = _gradient()
    photo = load_photo(save(img, "rgb.png"))
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (96, 128, 3)
    np.testing.assert_array_equal(photo.rgb, img)
    assert photo.size == photo.stored_size == (128, 96) and photo.orientation == 1


def test_16bit_grey_png_is_scaled_not_clipped(save):
    ramp = np.linspace(0, 65535, 128 * 96).reshape(96, 128).astype(np.uint16)
    path = save(Image.fromarray(ramp), "grey16.png")
    assert Image.open(path).mode.startswith("I")
    photo = load_photo(path)
    expected = np.round(ramp / 65535.0 * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(photo.rgb[..., 0], expected)
    np.testing.assert_array_equal(photo.rgb[..., 0], photo.rgb[..., 2])
    assert photo.rgb.max() == 255 and photo.rgb.min() == 0


def test_rgba_composited_over_white(save):
    img = _gradient()
    alpha = np.zeros(img.shape[:2], np.uint8)
    alpha[:, 64:] = 255
    alpha[:32, :32] = 128
    photo = load_photo(save(np.dstack([img, alpha]), "rgba.png"))
    np.testing.assert_array_equal(photo.rgb[:, 64:], img[:, 64:])
    assert (photo.rgb[40:, :64] == 255).all()
    half = 0.5 * img[:32, :32].astype(float) + 0.5 * 255
    assert np.abs(photo.rgb[:32, :32] - half).max() <= 1.0
    assert any("white" in n for n in photo.notes)


def test_grey_l_and_la(save):
    grey = _gradient()[..., 0]
    photo = load_photo(save(grey, "l.png"))
    np.testing.assert_array_equal(photo.rgb, np.repeat(grey[..., None], 3, 2))
    alpha = np.full(grey.shape, 255, np.uint8)
    alpha[:10] = 0
    la = load_photo(save(Image.fromarray(np.dstack([grey, alpha]), "LA"), "la.png"))
    assert (la.rgb[:10] == 255).all()
    np.testing.assert_array_equal(la.rgb[10:, :, 1], grey[10:])


def test_palette_with_and_without_transparency(save):
    img = _gradient()
    pal = Image.fromarray(img).quantize(colors=64)
    photo = load_photo(save(pal, "p.png"))
    np.testing.assert_array_equal(photo.rgb, np.asarray(pal.convert("RGB")))
    index = np.asarray(pal)
    photo_t = load_photo(save(pal, "pt.png", transparency=int(index[0, 0])))
    assert (photo_t.rgb[index == index[0, 0]] == 255).all()


def test_cmyk_jpeg(astronaut, save):
    photo = load_photo(save(Image.fromarray(astronaut).convert("CMYK"), "cmyk.jpg", quality=95))
    assert photo.rgb.shape == astronaut.shape
    assert np.abs(photo.rgb.astype(int) - astronaut).mean() < 4.0


def test_first_frame_of_animation(save):
    frames = [Image.fromarray(np.full((80, 80, 3), v, np.uint8)) for v in (10, 200)]
    path = save(frames[0], "anim.gif", save_all=True, append_images=frames[1:])
    photo = load_photo(path)
    assert abs(int(photo.rgb.mean()) - 10) <= 2
    assert any("2 frames" in n for n in photo.notes)


@pytest.mark.parametrize(("orientation", "rot90_k"), [(3, 2), (6, 1), (8, -1)])
def test_exif_orientation_gives_upright_image(astronaut, save, orientation, rot90_k):
    """A camera stores the sensor image and a tag saying how to turn it: orientation 6 means
    "turn 90 degrees clockwise to view", so the stored pixels are the upright view turned
    counter-clockwise (np.rot90 k=1)."""
    stored = np.ascontiguousarray(np.rot90(astronaut[:, :400], rot90_k))
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = load_photo(save(stored, "rot.jpg", quality=95, exif=exif))
    assert photo.rgb.shape == astronaut[:, :400].shape
    assert np.abs(photo.rgb.astype(int) - astronaut[:, :400]).mean() < 3.0
    assert photo.stored_size == (stored.shape[1], stored.shape[0])
    assert photo.orientation == orientation
    assert any(f"orientation {orientation}" in n for n in photo.notes)


# --- working copies ---------------------------------------------------------------------


def test_working_image_small_photo_is_untouched(save):
    photo = load_photo(save(_gradient(), "g.png"))
    image, scale = working_image(photo, 512)
    assert scale == 1.0 and image is photo.rgb


def test_working_image_maps_back_to_original_pixels(save):
    """A bright square at a known place in the original is found, in the working copy, at the
    place `to_original` maps back to the original position (to a small fraction of a px)."""
    h, w = 1500, 2600
    rgb = np.zeros((h, w, 3), np.uint8)
    y0, x0, s = 811, 1733, 24
    rgb[y0 : y0 + s, x0 : x0 + s] = 255
    photo = load_photo(save(rgb, "dot.png"))
    image, scale = working_image(photo, 500)
    assert max(image.shape[:2]) <= 500 and scale == pytest.approx(w / 500)
    weight = image[..., 0].astype(float)
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    centre_work = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
    centre_orig = np.array([x0 + (s - 1) / 2, y0 + (s - 1) / 2])
    np.testing.assert_allclose(to_original(centre_work, scale), centre_orig, atol=0.1 * scale)
