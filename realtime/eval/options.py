"""What the evaluation commands take, each field once with its flag's help text; free of torch so
that parsing a command line imports none of the evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from realtime.errors import ConfigError
from realtime.options import option, required


@dataclass(frozen=True)
class EvalIdentityOptions:
    faces: tuple[Path, ...] = required("datasets from prepare-faces at --crop-size 112, with identities (LFW)")
    json: Path = required("results; a ROC plot is written next to it (.png)")
    encoder: tuple[Path, ...] = option((), "identity encoder checkpoints to evaluate (repeatable)")
    teacher: Path | None = option(None, "also evaluate the teacher checkpoint")
    pairs: int = option(3000, "same-identity pairs, and as many different-identity pairs")
    device: str = option("auto", "cuda, cpu or auto")

    def __post_init__(self) -> None:
        if not self.encoder and self.teacher is None:
            raise ConfigError("nothing to evaluate", "give --encoder CHECKPOINT and/or --teacher CHECKPOINT")
        if self.pairs < 1:
            raise ConfigError(f"--pairs {self.pairs} is too small", "e.g. --pairs 3000")


@dataclass(frozen=True)
class EvalSwapOptions:
    faces: Path = required("a prepare-faces dataset with identities and original image paths (LFW people not trained on)")
    generator: Path = required("the generator to measure: AEI-Net, or a per-target model (with --person)")
    identity_encoder: Path = required("the encoder that embeds each source (and measures 'ours')")
    json: Path = required("results; example swaps are written next to it (.png)")
    identities: int = option(100, "people in the trial and the retrieval gallery")
    seed: int = option(
        0, "which draw of people: 0 is the benchmark's; another gives a validation draw, to choose between models "
        "without choosing on the benchmark's people (draws share some: seeds 0 and 1 of 100 each, 16 people)", metavar="N",
    )
    person: Path | None = option(None, "per-target models: a clip of the person the model turns faces into")
    judge: bool = option(True, "also score with dlib's independent judge (--no-judge skips it; it needs pip install -e '.[judge]')")
    generator_profile: str | None = option(None, "users' ONNX swappers: the family, when the file cannot tell (as for run)", metavar="NAME")
    identity_converter: str | None = option(None, "users' ONNX swappers: the identity converter (as for run)", metavar="PATH")
    pixel_boost: int = option(1, "measure the pixel-boosted generator (as for run: 1, 2 or 4)", metavar="K")

    def byo(self) -> dict[str, object]:
        """The generator options that run takes under the same names."""
        return {"generator_profile": self.generator_profile, "identity_converter": self.identity_converter, "pixel_boost": self.pixel_boost}

    def __post_init__(self) -> None:
        if self.identities < 2:
            raise ConfigError(f"--identities {self.identities} is too small", "use at least 2 (100 is the default)")
