"""Reading photos robustly: any common file in, an upright 8-bit sRGB array out.

Decisions (each raises BadInputError, exit 2, with a one-line message naming the file):
- missing file, directory, unreadable file, not an image: rejected.
- truncated or corrupt data: rejected. Pillow can decode a truncated JPEG into a half-grey
  picture (when `ImageFile.LOAD_TRUNCATED_IMAGES` is set anywhere in the process); fitting a
  face to that would give garbage, so the flag is forced off while decoding.
- more than `MAX_PIXELS` pixels (Pillow's own decompression-bomb threshold, ~89 MP): rejected
  before decoding.
- smaller than `MIN_SIDE` px on either side: rejected (no face in it can be fitted).
- EXIF orientation: applied, so `rgb` is upright; landmarks and cameras refer to this frame.
- alpha (RGBA, LA, PA, palette transparency): composited over white, as a viewer shows it.
- 16-bit grey (I;16) and 32-bit (I, F): scaled from their range to 8 bits, not clipped.
- CMYK, palette, grey, bilevel: converted to RGB; an embedded ICC profile is converted to sRGB.
- multi-frame files (GIF, TIFF): the first frame, with a note.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from engine.errors import BadInputError

MIN_SIDE = 64
EXIF_IFD = 0x8769  # the Exif sub-IFD, where the camera's settings are
FOCAL_35MM_TAG = 0xA405  # FocalLengthIn35mmFilm
FULL_FRAME_DIAGONAL_MM = 43.27  # the 35 mm-equivalent focal length refers to this diagonal
MAX_PIXELS = 89_478_485  # Pillow's default Image.MAX_IMAGE_PIXELS (~ 1024 * 1024 * 1024 // 4 // 3)


@dataclass
class Photo:
    """A decoded photo, upright (EXIF orientation applied).

    rgb: (H, W, 3) uint8 sRGB.
    path: the file it came from.
    stored_size: (width, height) as stored in the file, before EXIF rotation.
    orientation: the EXIF orientation tag that was applied (1 = none).
    notes: conversions worth telling the user (go into result.json).
    focal_35mm: EXIF FocalLengthIn35mmFilm (mm, full-frame equivalent), or None when the
        file does not say (the fit then assumes a typical portrait focal length).
    """

    rgb: np.ndarray
    path: Path
    stored_size: tuple[int, int]
    orientation: int = 1
    notes: list[str] = field(default_factory=list)
    focal_35mm: float | None = None

    def focal_px(self, width: int, height: int) -> float | None:
        """The EXIF focal length in pixels of a (width, height) copy of this photo, or None.

        The 35 mm equivalent refers to the full-frame diagonal (43.27 mm), so
        f_px = f_35 * diagonal_px / 43.27 for any aspect ratio.
        """
        if self.focal_35mm is None:
            return None
        return self.focal_35mm * float(np.hypot(width, height)) / FULL_FRAME_DIAGONAL_MM

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of `rgb`: the original photo after EXIF rotation."""
        return self.rgb.shape[1], self.rgb.shape[0]


def load_photo(path: str | Path) -> Photo:
    """Decode `path` into an upright (H, W, 3) uint8 RGB Photo; BadInputError on any failure."""
    path = Path(path)
    name = path.name or str(path)
    data = _read_bytes(path)
    notes: list[str] = []
    previous_flag = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                _check_size(im.size, name)
                frames = getattr(im, "n_frames", 1)
                if frames > 1:
                    notes.append(f"{name}: {frames} frames; used the first")
                im.load()
                stored_size = im.size
                orientation = int(im.getexif().get(0x0112, 1) or 1)
                focal_35mm = exif_focal_35mm(im)
                upright = ImageOps.exif_transpose(im)
                rgb = _to_rgb8(upright, notes, name)
    except BadInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInputError(
            f"{name} is too large to decode safely (over {MAX_PIXELS / 1e6:.0f} megapixels)"
        ) from None
    except UnidentifiedImageError:
        raise BadInputError(f"{name} is not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # truncated streams ("image file is truncated"), broken chunks, bad headers
        raise BadInputError(f"{name} is damaged or truncated ({_first_line(exc)})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous_flag
    if orientation != 1:
        notes.append(f"{name}: EXIF orientation {orientation} applied")
    return Photo(rgb=rgb, path=path, stored_size=stored_size, orientation=orientation, notes=notes,
                 focal_35mm=focal_35mm)


def exif_focal_35mm(im: Image.Image) -> float | None:
    """EXIF FocalLengthIn35mmFilm (tag 0xA405 in the Exif IFD) in mm, or None when absent,
    zero (EXIF's "unknown") or implausible (outside 8..1200 mm)."""
    try:
        value = im.getexif().get_ifd(EXIF_IFD).get(FOCAL_35MM_TAG)
    except (AttributeError, KeyError, ValueError, TypeError, OSError):
        return None
    if value is None:
        return None
    try:
        focal = float(value)
    except (TypeError, ValueError):
        return None
    return focal if 8.0 <= focal <= 1200.0 else None


def working_image(photo: Photo, max_side: int) -> tuple[np.ndarray, float]:
    """A copy of `photo.rgb` whose long side is at most `max_side`, and its scale.

    Returns (image (h, w, 3) uint8, scale) with scale = original px per working px (>= 1).
    The copy covers exactly the area [0, w*scale) x [0, h*scale) of the original (up to
    scale-1 edge pixels are dropped so that both axes share one scale), so a working pixel
    coordinate u maps back as u_original = (u + 0.5) * scale - 0.5 (see `to_original`).
    """
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    h, w = photo.rgb.shape[:2]
    if max(h, w) <= max_side:
        return photo.rgb, 1.0
    scale = max(h, w) / max_side
    ww, wh = max(1, int(w / scale + 1e-6)), max(1, int(h / scale + 1e-6))
    box = (0.0, 0.0, ww * scale, wh * scale)
    image = Image.fromarray(photo.rgb).resize(
        (ww, wh), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0
    )
    return np.asarray(image), scale


def to_original(points: np.ndarray, scale: float) -> np.ndarray:
    """(..., 2) working-image pixel coordinates -> original pixels (centre convention)."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * scale - 0.5


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, with the filesystem failures turned into BadInputError."""
    name = path.name or str(path)
    if not path.exists():
        raise BadInputError(f"{path} does not exist")
    if path.is_dir():
        raise BadInputError(f"{path} is a directory, not an image file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{name} cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise BadInputError(f"{name} is empty")
    return data


def _check_size(size: tuple[int, int], name: str) -> None:
    """Reject images too small to hold a fittable face, or too large to decode safely."""
    w, h = size
    if w * h > MAX_PIXELS:
        raise BadInputError(
            f"{name} is too large to decode safely ({w}x{h}, over {MAX_PIXELS / 1e6:.0f} "
            "megapixels)"
        )
    if min(w, h) < MIN_SIDE:
        raise BadInputError(f"{name} is too small ({w}x{h} px; need at least {MIN_SIDE} px)")


def _to_rgb8(im: Image.Image, notes: list[str], name: str) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 sRGB (see the module docstring for the rules)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _high_bit_depth_grey(im, notes, name)
    icc = im.info.get("icc_profile")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        alpha = np.asarray(im.getchannel("A"), dtype=np.float32)[..., None] / 255.0
        if alpha.min() < 1.0:
            notes.append(f"{name}: transparent pixels composited over white")
        im = im.convert("RGB")
        rgb = np.asarray(_to_srgb(im, icc, notes, name), dtype=np.float32)
        return np.clip(rgb * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(_to_srgb(im, icc, notes, name))


def _to_srgb(im: Image.Image, icc: bytes | None, notes: list[str], name: str) -> Image.Image:
    """RGB image, converted from an embedded ICC profile to sRGB where there is one."""
    if icc and im.mode in ("RGB", "CMYK"):
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if converted is not None:
                return converted
        except (ImportError, OSError, ImageCms.PyCMSError):
            notes.append(f"{name}: its colour profile could not be applied; colours may be off")
    return im.convert("RGB")


def _high_bit_depth_grey(im: Image.Image, notes: list[str], name: str) -> np.ndarray:
    """16/32-bit grey -> (H, W, 3) uint8, scaled (not clipped) to 8 bits."""
    a = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        full = 1.0 if hi <= 1.0 and lo >= 0.0 else max(hi, 1e-12)
        notes.append(f"{name}: floating-point image scaled to 8 bits")
    else:
        full = 65535.0 if a.max() > 255 or im.mode.startswith("I;16") else 255.0
    grey = np.clip(np.nan_to_num(a) / full * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
