"""A quick side-by-side of AEI-Net generators on aligned crops of held-out clips (the ablations' judge):
each target frame wears another clip's person (embedded from one frame, judged against a frame far
from it), and per generator:
- identity to that other frame by our encoder, by the MobileFaceNet teacher and by dlib's judge;
- sharpness: variance of the Laplacian in the inner face, swap / target, both at 256 px (a 128-px
  generator's output is upsampled as the pipeline would);
- reconstruction: mean absolute error (grey levels) when the source is the target itself;
and a grid: target | each generator's swap | the source frame, and the mean log power spectra of
the targets and of each generator's swaps (spectra.png: a lattice shows as fixed bright points).
    python3 bench/swap_probe.py OUTDIR --faces DATASET --generators NAME=PATH ... [--clips C ...] [--per-clip 8]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.eval.image_measures import mean_log_spectrum  # noqa: E402
from realtime.eval.swap_measures import DlibJudge  # noqa: E402
from realtime.inference.spec import from_generator, to_generator  # noqa: E402
from realtime.models.checkpoint import load_checkpoint  # noqa: E402
from realtime.train.data import face_records, load_crops  # noqa: E402
from realtime.train.teacher import load_teacher, teacher_view  # noqa: E402

CLIPS = ("liveportrait_d0", "liveportrait_d3", "liveportrait_d10", "liveportrait_d14", "liveportrait_d19", "dfl_Obama_speaking")
SIZE = 256
TEACHER = ROOT.parent / "shared" / "models" / "teacher_mobilefacenet_casia_112x96.ckpt"


def inner_face(size: int) -> np.ndarray:
    """An ellipse over the eyes, nose and mouth of an ArcFace-aligned crop (no hair, no background)."""
    mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(mask, (size // 2, int(0.58 * size)), (int(0.28 * size), int(0.33 * size)), 0, 0, 360, 1, -1)
    return mask.astype(bool)


def laplacian_variance(image: np.ndarray, mask: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F)[mask].var())


def resized(images: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode=mode, align_corners=False, antialias=size < images.shape[-1])


def pick(dataset: Path, clips: list[str], per_clip: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(targets, sources, references) at 256 px: ``per_clip`` evenly spaced frames of each clip as
    targets; the next clip's first frame as the source and its last as the reference."""
    records = [r for r in face_records([dataset]) if r.identity in clips]
    by_clip = {c: [r for r in records if r.identity == c] for c in clips}
    empty = [c for c, rs in by_clip.items() if len(rs) < 2]
    if empty:
        raise SystemExit(f"{dataset} has fewer than two faces of {', '.join(empty)}: prepare those clips")
    crops = {c: load_crops(rs) for c, rs in by_clip.items()}
    targets, sources, references = [], [], []
    for index, clip in enumerate(clips):
        other = clips[(index + 1) % len(clips)]
        frames = crops[clip][np.linspace(0, len(crops[clip]) - 1, per_clip).round().astype(int)]
        targets.append(frames)
        sources.append(np.repeat(crops[other][:1], per_clip, axis=0))
        references.append(np.repeat(crops[other][-1:], per_clip, axis=0))
    return tuple(np.concatenate(x) for x in (targets, sources, references))  # type: ignore[return-value]


@torch.no_grad()
def swap(generator: torch.nn.Module, encoder: torch.nn.Module, sources: torch.Tensor, targets: torch.Tensor, crop: int) -> torch.Tensor:
    identity = encoder(resized(sources, 112))
    out = torch.cat([generator(resized(targets[i : i + 8], crop), identity[i : i + 8]) for i in range(0, len(targets), 8)])
    return resized(out, SIZE, mode="bicubic").clamp(-1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--faces", type=Path, required=True, help="a prepare-faces dataset of the clips at 256 px")
    parser.add_argument("--generators", nargs="+", required=True, metavar="NAME=PATH")
    parser.add_argument("--identity-encoder", type=Path, default=ROOT / "models" / "identity-encoder-v1.safetensors")
    parser.add_argument("--clips", nargs="+", default=list(CLIPS))
    parser.add_argument("--per-clip", type=int, default=8)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    targets_np, sources_np, references_np = pick(args.faces, args.clips, args.per_clip)
    targets, sources, references = (to_generator(torch.from_numpy(x)) for x in (targets_np, sources_np, references_np))
    encoder, _ = load_checkpoint(args.identity_encoder, expect="identity_encoder")
    encoder = encoder.eval()
    teacher = load_teacher(TEACHER).eval() if TEACHER.is_file() else None
    judge = DlibJudge()
    box = np.array([[0.12 * SIZE, 0.15 * SIZE], [0.88 * SIZE, 0.95 * SIZE]])  # the face in an aligned crop
    mask = inner_face(SIZE)

    def identities(images: torch.Tensor, images_np: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray]:
        with torch.no_grad():
            ours = encoder(resized(images, 112))
            theirs = F.normalize(teacher(teacher_view(resized(images, 112))), dim=1) if teacher is not None else None
        return ours, theirs, np.stack([judge.describe(image, box) for image in images_np])

    ref_ours, ref_teacher, ref_dlib = identities(references, references_np)
    target_sharpness = np.array([laplacian_variance(t, mask) for t in targets_np])
    results, rows = {}, [targets_np]
    for spec in args.generators:
        name, _, path = spec.partition("=")
        generator, info = load_checkpoint(Path(path), expect="aei_net")
        generator = generator.eval()
        crop = int(info.crop_size or 128)
        swapped = swap(generator, encoder, sources, targets, crop)
        swapped_np = from_generator(swapped).numpy()
        ours, theirs, dlib_desc = identities(swapped, swapped_np)
        rebuilt = from_generator(swap(generator, encoder, targets, targets, crop)).numpy()
        results[name] = {
            "generator": path, "crop_size": crop, "training": info.training,
            "ours_to_reference": float((ours * ref_ours).sum(1).mean()),
            "teacher_to_reference": float((theirs * ref_teacher).sum(1).mean()) if theirs is not None and ref_teacher is not None else None,
            "dlib_distance_to_reference": float(np.linalg.norm(dlib_desc - ref_dlib, axis=1).mean()),
            "dlib_same_person_share": float((np.linalg.norm(dlib_desc - ref_dlib, axis=1) < DlibJudge.threshold).mean()),
            "sharpness_vs_target": float(np.median([laplacian_variance(s, mask) for s in swapped_np] / target_sharpness)),
            "reconstruction_mae": float(np.abs(rebuilt.astype(np.float32) - targets_np.astype(np.float32)).mean()),
        }
        rows.append(swapped_np)
        print(name, json.dumps({k: v for k, v in results[name].items() if k not in ("training", "generator")}))
    rows.append(sources_np)
    (args.outdir / "swap-probe.json").write_text(json.dumps({"pairs": len(targets_np), "clips": args.clips, "generators": results}, indent=1) + "\n")
    shown = np.linspace(0, len(targets_np) - 1, min(12, len(targets_np))).round().astype(int)
    labels = ["target"] + [spec.partition("=")[0] for spec in args.generators] + ["source"]
    strips = []
    for label, row in zip(labels, rows, strict=True):
        strip = np.concatenate(list(row[shown]), axis=1)
        band = np.full((22, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(band, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        strips += [band, strip]
    cv2.imwrite(str(args.outdir / "swap-probe.jpg"), cv2.cvtColor(np.concatenate(strips), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    write_spectra(args.outdir / "spectra.png", labels[:-1], rows[:-1])
    print(f"wrote {args.outdir / 'swap-probe.json'}, {args.outdir / 'swap-probe.jpg'} and {args.outdir / 'spectra.png'}")


def write_spectra(path: Path, labels: list[str], rows: list[np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spectra = [mean_log_spectrum(row) for row in rows]
    low, high = min(float(s.min()) for s in spectra), max(float(s.max()) for s in spectra)
    figure, axes = plt.subplots(1, len(spectra), figsize=(3.2 * len(spectra), 3.4))
    for axis, label, spectrum in zip(np.atleast_1d(axes), labels, spectra, strict=True):
        axis.imshow(spectrum, cmap="magma", vmin=low, vmax=high, extent=(-0.5, 0.5, 0.5, -0.5))
        axis.set_title(label)
        axis.set_xlabel("cycles / px")
    figure.suptitle("mean log power spectrum of the 256-px crops (one colour scale)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


if __name__ == "__main__":
    main()
