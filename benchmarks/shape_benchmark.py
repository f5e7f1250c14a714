"""Shape fidelity on Cycles renders of known faces: is the fit closer to the truth than the
average face?

    .venv/bin/python benchmarks/shape_benchmark.py [--cases all|validation|test|multiview|0-5,7]
        [--quality preview] [--ablation] [--cache DIR] [--out results.json]

Each case is a random ICT-FaceKit identity drawn N(0, 1) on all 100 modes; even cases
neutral, odd ones with 1-5 ARKit expressions at 0.2-0.8; head yaw +-35, pitch +-15,
roll +-5 degrees; focal length 35-85 mm full-frame equivalent (the fitter is not told:
the renders are PNGs without EXIF); 512x512 Cycles renders (benchmarks/cycles_faces.py)
with a procedural skin, eyes and soft key + fill light. Renders are cached under --cache,
keyed by the case's seed and the render version, so re-running the fit never re-renders.

The fit runs as a user runs it: `python -m engine reconstruct PHOTO --quality Q` (its own
process, its own MediaPipe landmarks). Measured per case: face-region (ICT vertices
0..6705) mean vertex error in mm after a similarity alignment (Umeyama, with scale) of
  - the fit (fitted identity + that view's fitted expression) against the truth (true
    identity + true expression),
  - the neutral average face, and the average face with the true expression (baselines),
  - the fitted neutral identity against the true neutral identity (what the artist animates);
expression weight error (mean |fitted - true| over the true expression's names and the five
strongest fitted ones), and the expressions' L1 error (sum of |fitted - true| over all of
them, beside the same for no expression at all: the per-name mean can be lowered by
adding small spurious weights, the sum cannot); fitted / true focal length; wall time of
the whole CLI.
Cases 0-11 are the validation split (for choosing weights), 12-23 the test split;
"multiview" is one extra identity seen in three photos, fitted from one and from all three.
--ablation runs the fit's parts one by one through the engine's Python API (the same
detection and fit calls as `reconstruct`): the landmark stage on the 68 points, + dense
points, + the Face Landmarker's blendshape prior, + a photometric stage that moves the
shape, + its identity terms (see ABLATION), and a diagnostic: the landmark stage told the
true identity ("known"), the ceiling of what the detected points say about the expression.
--size/--samples make smaller renders (the slow test uses 256 px, 8 samples).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.facemodel.geometry import fit_similarity

ROOT = Path(__file__).resolve().parents[1]
MODEL = Path(os.environ.get("GANFIT_HOME", Path.home() / ".cache" / "ganfit")) / \
    "ict-facekit" / "model.npz"
RENDER_VERSION = 3  # bump when the render setup changes: the cache key includes it
NUM_CASES = 24
VALIDATION = range(0, 12)
TEST = range(12, 24)
NARROW_FACE = 6706  # ICT vertices 0..6705: the face without ears and neck
# ARKit shapes a case may show: the fitted ones (gaze and ICT's extras are not fitted)
EXPRESSIVE = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L",
    "browOuterUp_R", "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R",
    "eyeBlink_L", "eyeBlink_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L",
    "mouthDimple_R", "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft",
    "mouthLowerDown_L", "mouthLowerDown_R", "mouthPress_L", "mouthPress_R", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmile_L", "mouthSmile_R", "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L",
    "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
)  # fmt: skip
SKINS = ([0.87, 0.68, 0.58], [0.78, 0.58, 0.46], [0.62, 0.44, 0.32], [0.42, 0.29, 0.21])
IRISES = ([0.35, 0.22, 0.12], [0.3, 0.42, 0.55], [0.33, 0.38, 0.2])
HAIR = ([0.12, 0.08, 0.05], [0.35, 0.25, 0.15], [0.05, 0.04, 0.04])


def case_spec(case: str | int) -> dict:
    """The ground truth and render settings of one case (fixed by its seed).

    case: 0..23, or "mv0".."mv2" (three views of one identity).
    """
    if isinstance(case, str) and case.startswith("mv"):
        view = int(case[2:])
        rng_id = np.random.default_rng(9000)
        rng = np.random.default_rng(9100 + view)
        expressive = view == 1
    else:
        rng_id = rng = np.random.default_rng(1000 + int(case))
        expressive = int(case) % 2 == 1
    identity = rng_id.standard_normal(100)
    expression: dict[str, float] = {}
    if expressive:
        count = int(rng.integers(1, 6))
        for name in rng.choice(EXPRESSIVE, size=count, replace=False):
            expression[str(name)] = float(np.round(rng.uniform(0.2, 0.8), 3))
    return {
        "case": str(case),
        "identity": identity.tolist(),
        "expression": expression,
        "yaw": float(rng.uniform(-35, 35)),
        "pitch": float(rng.uniform(-15, 15)),
        "roll": float(rng.uniform(-5, 5)),
        "focal_mm": float(rng.uniform(35, 85)),
        "face_fraction": float(rng.uniform(0.45, 0.65)),
        "shift": rng.uniform(-0.05, 0.05, size=2).tolist(),
        "skin": SKINS[int(rng.integers(len(SKINS)))],
        "iris": IRISES[int(rng.integers(len(IRISES)))],
        "hair": HAIR[int(rng.integers(len(HAIR)))],
        "key": [float(rng.uniform(-0.9, -0.4)) * rng.choice([-1, 1]),
                float(rng.uniform(0.3, 0.8)), 1.0],
        "background": rng.uniform(0.15, 0.6, size=3).round(3).tolist(),
        "samples": 16,  # + denoising; 512 px take ~50 s each on 2 busy cores
        "size": 512,
    }


class Model:
    """The raw ICT-FaceKit arrays the metrics need (numpy, float64)."""

    def __init__(self, path: Path = MODEL):
        with np.load(path) as data:
            self.neutral = data["neutral"].astype(np.float64)
            # the archive stores whole meshes; the bases are their offsets from the neutral
            self.identity = data["identity_shapes"].astype(np.float64) - self.neutral
            self.expression = data["expression_shapes"].astype(np.float64) - self.neutral
            self.expression_names = [str(n) for n in data["expression_names"]]

    def shape(self, identity: np.ndarray, expression: dict[str, float]) -> np.ndarray:
        """(V, 3) cm: neutral + identity (K,) . basis + named expression weights."""
        out = self.neutral + np.tensordot(identity, self.identity, axes=1)
        for name, weight in expression.items():
            out = out + weight * self.expression[self.expression_names.index(name)]
        return out


def umeyama_error_mm(source: np.ndarray, target: np.ndarray) -> float:
    """Mean distance (mm) of (P, 3) cm `source` to `target` after the best similarity
    transform of source onto target (Umeyama 1991, with scale)."""
    aligned = fit_similarity(source, target).apply(source)
    return float(np.linalg.norm(aligned - target, axis=1).mean() * 10.0)


def expression_error(fitted: dict[str, float], truth: dict[str, float]) -> float:
    """Mean |fitted - true| over the true expression's names and the five strongest fitted
    (weights of 0 count as not fitted)."""
    fitted = {name: weight for name, weight in fitted.items() if weight > 0}
    strongest = sorted(fitted, key=lambda n: fitted[n], reverse=True)[:5]
    names = set(truth) | set(strongest)
    if not names:  # nothing to find and nothing fitted
        return 0.0
    return float(np.mean([abs(fitted.get(n, 0.0) - truth.get(n, 0.0)) for n in names]))


def expression_l1(fitted: dict[str, float], truth: dict[str, float]) -> float:
    """Sum over all expressions of |fitted - true|: each missed or spurious unit of weight
    counts once. (expression_error's mean over names falls when small spurious weights
    join the five strongest: five of 0.001 beside a missed 0.6 smile make it 0.1.)"""
    return float(sum(abs(fitted.get(n, 0.0) - truth.get(n, 0.0))
                     for n in set(fitted) | set(truth)))


def render_cases(model: Model, specs: list[dict], cache: Path) -> None:
    """Render the specs whose image is not cached yet, in one Blender process."""
    todo = []
    for spec in specs:
        quality = "" if (spec["size"], spec["samples"]) == (512, 16) else \
            f"-{spec['size']}px{spec['samples']}s"
        folder = cache / f"v{RENDER_VERSION}-{spec['case']}{quality}"
        spec["image"] = str(folder / "photo.png")
        if (folder / "photo.png.json").exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        vertices = model.shape(np.array(spec["identity"]), spec["expression"])
        np.save(folder / "vertices.npy", vertices.astype(np.float32))
        (folder / "truth.json").write_text(json.dumps(spec, indent=1))
        todo.append({**spec, "vertices": str(folder / "vertices.npy")})
    if not todo:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(todo, f)
    try:
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cycles_faces.py"), f.name],
                       check=True, cwd=ROOT)
    finally:
        os.unlink(f.name)


def parse_cases(text: str) -> list[str]:
    """"all", "validation", "test", "multiview" or a list like "0-5,7" -> case ids."""
    named = {"all": [str(c) for c in range(NUM_CASES)],
             "validation": [str(c) for c in VALIDATION], "test": [str(c) for c in TEST],
             "multiview": ["mv0", "mv1", "mv2"]}
    if text in named:
        return named[text]
    out: list[str] = []
    for part in text.split(","):
        if part.startswith("mv"):
            out.append(part)
        elif "-" in part:
            lo, hi = part.split("-")
            out.extend(str(c) for c in range(int(lo), int(hi) + 1))
        else:
            out.append(str(int(part)))
    return out


def fit_cli(images: list[str], out: Path, quality: str) -> tuple[Path, float]:
    """Run `python -m engine reconstruct` as a user would; (result folder, wall seconds)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engine", "reconstruct", *images, "--out", str(out),
                    "--quality", quality, "--force", "--device", "cpu"],
                   check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return out, time.perf_counter() - start


def read_fit(folder: Path) -> tuple[np.ndarray, list[dict[str, float]], list[float]]:
    """(V, 3) fitted neutral vertices (cm), per-view expression weights and focal (px)."""
    info = json.loads((folder / "result.json").read_text())
    with np.load(folder / "mesh.npz") as mesh:
        vertices = mesh["vertices"].astype(np.float64)
    weights = [view["expression_weights"] for view in info["views"]]
    focals = [float(view["camera"]["focal"][0]) for view in info["views"]]
    return vertices, weights, focals


def score_view(model: Model, spec: dict, fitted_neutral: np.ndarray,
               weights: dict[str, float], focal_px: float) -> dict:
    """The metrics of one view (see the module docstring); errors in mm."""
    region = slice(0, NARROW_FACE)
    identity = np.array(spec["identity"])
    truth = model.shape(identity, spec["expression"])[region]
    fitted = fitted_neutral.copy()
    for name, weight in weights.items():
        if weight:
            fitted = fitted + weight * model.expression[model.expression_names.index(name)]
    true_focal = spec["focal_mm"] / 36.0 * spec["size"]
    return {
        "case": spec["case"],
        "expressive": bool(spec["expression"]),
        "fit_mm": umeyama_error_mm(fitted[region], truth),
        "mean_face_mm": umeyama_error_mm(model.neutral[region], truth),
        "mean_face_true_expression_mm": umeyama_error_mm(
            model.shape(np.zeros_like(identity), spec["expression"])[region], truth),
        "identity_mm": umeyama_error_mm(fitted_neutral[region],
                                        model.shape(identity, {})[region]),
        "expression_error": expression_error(weights, spec["expression"]),
        "expression_l1": expression_l1(weights, spec["expression"]),
        "no_expression_l1": expression_l1({}, spec["expression"]),
        "focal_ratio": focal_px / true_focal,
        "fitted_expression": {name: round(weight, 3) for name, weight in sorted(
            weights.items(), key=lambda kv: -kv[1])[:5] if round(weight, 3) > 0},
    }


def summary(rows: list[dict]) -> dict:
    """Means over the cases, split by neutral / expressive, and the win counts."""
    def mean(key: str, subset: list[dict]) -> float | None:
        return float(np.mean([r[key] for r in subset])) if subset else None

    keys = ("fit_mm", "mean_face_mm", "mean_face_true_expression_mm", "identity_mm",
            "expression_error", "expression_l1", "no_expression_l1", "focal_ratio", "seconds")
    out: dict = {"cases": len(rows),
                 "better_than_mean_face": sum(r["fit_mm"] < r["mean_face_mm"] for r in rows)}
    for label, subset in (("all", rows), ("neutral", [r for r in rows if not r["expressive"]]),
                          ("expressive", [r for r in rows if r["expressive"]])):
        out[label] = {k: mean(k, subset) for k in keys if all(k in r for r in subset)}
    return out


def run_cli(model: Model, specs: list[dict], quality: str, work: Path) -> list[dict]:
    """One CLI run per case (one photo each)."""
    rows = []
    for spec in specs:
        folder, seconds = fit_cli([spec["image"]], work / spec["case"], quality)
        vertices, weights, focals = read_fit(folder)
        row = score_view(model, spec, vertices, weights[0], focals[0])
        row["seconds"] = seconds
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def run_multiview(model: Model, specs: list[dict], quality: str, work: Path) -> dict:
    """The multi-view identity fitted from its first photo alone and from all three:
    identity error (neutral, mm) and the mean per-view error of each."""
    out = {}
    for label, chosen in (("one_photo", specs[:1]), ("three_photos", specs)):
        try:
            folder, seconds = fit_cli([s["image"] for s in chosen], work / label, quality)
        except subprocess.CalledProcessError as error:
            out[label] = {"error": f"reconstruct exited with {error.returncode}"}
            print(label, out[label], flush=True)
            continue
        vertices, weights, focals = read_fit(folder)
        rows = [score_view(model, s, vertices, w, f)
                for s, w, f in zip(chosen, weights, focals, strict=True)]
        out[label] = {"identity_mm": rows[0]["identity_mm"],
                      "fit_mm_view0": rows[0]["fit_mm"], "seconds": seconds}
        print(label, json.dumps(out[label]), flush=True)
    return out


# name: (68 points only, blendshape prior, stage 2: None / identity network choice, the
# installed texture model's latent in stage 2, the detected identity's gain, the identity
# held at the truth). lm68: landmark stage on the 68 points; dense: + MediaPipe's dense
# points (calibrated); prior: + the Face Landmarker's blendshape scores (off in
# reconstruct); photo: dense + the photometric stage moving the shape under the landmark
# objective, coarse albedo; identity: + its identity terms; texture: + the texture model's
# latent fitted in stage 2; gain: + stage 2 starting from the landmark identity /
# fitter.DETECTED_IDENTITY_GAIN and keeping its expressions (DETECTED_STAGE2_HOLD): what
# `reconstruct` runs. known: a diagnostic, not a method: the landmark stage told the true
# identity, so only pose, focal and expressions are fitted; its expression error is what
# the detected points can say about the expression when identity cannot absorb any of it.
ABLATION: dict[str, tuple[bool, bool, str | None, bool, bool, bool]] = {
    "lm68": (True, False, None, False, False, False),
    "dense": (False, False, None, False, False, False),
    "prior": (False, True, None, False, False, False),
    "photo": (False, False, "none", False, False, False),
    "identity": (False, False, "auto", False, False, False),
    "texture": (False, False, "auto", True, False, False),
    "gain": (False, False, "auto", True, True, False),
    "known": (False, False, None, False, False, True),
}


def run_ablation(model: Model, specs: list[dict], quality: str,
                 variants: list[str] | None = None) -> dict:
    """The fit's parts switched on one by one, through the engine's Python API (the same
    detection and fit calls as `reconstruct`): per variant the cases and their summary."""
    import torch

    from engine.facemodel import load_face_model
    from engine.fit.fitter import (
        DETECTED_IDENTITY_GAIN,
        DETECTED_STAGE2_HOLD,
        detected_evidence,
        full_fit,
        initial_state,
        landmark_fit,
    )
    from engine.fit.landmark_stage import fit_landmarks
    from engine.fit.presets import get_preset
    from engine.imageio import load_photo
    from engine.paths import ganfit_home
    from engine.pipeline import detect_views, fit_inputs
    from engine.texture.asset import load_installed
    from engine.texture.latent_fit import stage_texture

    preset = get_preset(quality)
    learned = load_installed(ganfit_home())
    face_model = load_face_model("cpu")
    names = variants or list(ABLATION)
    rows: dict[str, list[dict]] = {name: [] for name in names}
    for spec in specs:
        view = detect_views([load_photo(spec["image"])], preset, "mediapipe", lambda _: None)[0]
        inputs = fit_inputs([view], torch.device("cpu"), face_model.expression_names,
                            blendshape_prior=True)
        for name in names:
            sparse, use_prior, stage2, use_texture, use_gain, known = ABLATION[name]
            torch.manual_seed(0)
            start = time.perf_counter()
            dense = None if sparse else inputs.dense
            prior = inputs.expression_prior if use_prior else None
            if known:
                state = initial_state(face_model, [view.work], torch.device("cpu"))
                state.identity = torch.tensor(spec["identity"], dtype=state.identity.dtype)
                if inputs.focal is not None:
                    state.log_focal = inputs.focal.log().to(state.log_focal)
                fit_landmarks(face_model, inputs.landmarks, state, preset.landmark_steps,
                              hold=("identity",),
                              **detected_evidence(dense, prior, inputs.focal))
            else:
                state = landmark_fit(face_model, [view.work], inputs.landmarks, preset,
                                     dense=dense, expression_prior=prior, focal=inputs.focal)
            if stage2 is not None:
                evidence = detected_evidence(dense, prior, inputs.focal)
                texture = stage_texture(learned) if use_texture and learned else None
                state = full_fit(face_model, [view.work], inputs.landmarks, state, preset,
                                 stage2, evidence=evidence, focal=inputs.focal,
                                 texture=texture,
                                 identity_gain=DETECTED_IDENTITY_GAIN if use_gain else 1.0,
                                 hold=DETECTED_STAGE2_HOLD if use_gain else ()).state
            seconds = time.perf_counter() - start
            weights = dict(zip(face_model.expression_names,
                               state.expression[0].tolist(), strict=True))
            vertices = model.shape(state.identity.numpy().astype(np.float64), {})
            focal = float(state.log_focal[0].exp()) * view.scale
            row = score_view(model, spec, vertices, weights, focal)
            row["seconds"] = seconds
            rows[name].append(row)
            print(f"{name:>8}: {format_row(row)}", flush=True)
    return {name: {"summary": summary(r), "cases": r} for name, r in rows.items()}


def format_row(row: dict) -> str:
    return (f"case {row['case']:>3} {'expr' if row['expressive'] else 'neut'}  "
            f"fit {row['fit_mm']:.2f} mm  mean face {row['mean_face_mm']:.2f}  "
            f"mean+true expr {row['mean_face_true_expression_mm']:.2f}  "
            f"identity {row['identity_mm']:.2f}  expr err {row['expression_error']:.3f} "
            f"(L1 {row['expression_l1']:.2f}, none {row['no_expression_l1']:.2f})  "
            f"focal x{row['focal_ratio']:.2f}  {row.get('seconds', 0):.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="all",
                        help="all | validation | test | multiview | e.g. 0-5,7")
    parser.add_argument("--quality", default="preview")
    parser.add_argument("--ablation", action="store_true",
                        help="landmark stage only / + photometric / + identity terms")
    parser.add_argument("--cache", type=Path, default=MODEL.parents[1] / "shape-benchmark",
                        help="render cache (one folder per case and render version)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "shape_benchmark.json")
    parser.add_argument("--variants", default=None,
                        help="with --ablation: comma-separated variant names (default all)")
    parser.add_argument("--size", type=int, default=512, help="render side (px)")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples (denoised)")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    model = Model()
    cases = parse_cases(args.cases)
    specs = [{**case_spec(c if c.startswith("mv") else int(c)), "size": args.size,
              "samples": args.samples} for c in cases]
    render_cases(model, specs, args.cache)
    render_seconds = [json.loads(Path(s["image"] + ".json").read_text())["render_seconds"]
                      for s in specs]
    print(f"renders: {len(specs)}, mean {np.mean(render_seconds):.1f} s each (cached)")
    if args.render_only:
        return 0
    work = Path(tempfile.mkdtemp(prefix="ganfit-shape-bench-"))
    report: dict = {"quality": args.quality, "render_seconds_mean": float(np.mean(render_seconds))}
    single = [s for s in specs if not s["case"].startswith("mv")]
    multi = [s for s in specs if s["case"].startswith("mv")]
    if args.ablation:
        variants = args.variants.split(",") if args.variants else None
        report["ablation"] = run_ablation(model, single, args.quality, variants)
        for name, result in report["ablation"].items():
            print(name, json.dumps(result["summary"]))
    elif single:
        rows = run_cli(model, single, args.quality, work)
        report["cases"] = rows
        report["summary"] = summary(rows)
        print(json.dumps(report["summary"], indent=1))
    if len(multi) == 3 and not args.ablation:
        report["multiview"] = run_multiview(model, multi, args.quality, work)
    shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
