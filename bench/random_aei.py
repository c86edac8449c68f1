#!/usr/bin/env python3
"""A 256-px AEI-Net and an identity encoder with random weights, and a source face, for timing runs
(the pipeline's work does not depend on the weights):

    python3 bench/random_aei.py WORKDIR   # writes aei.safetensors, id.safetensors, source.png
"""

import sys
from pathlib import Path

import cv2
import torch

from realtime.io.demo import load_demo_face
from realtime.models.aei_net import AEINet
from realtime.models.checkpoint import save_checkpoint
from realtime.models.identity import IdentityEncoder

HYPERPARAMETERS = {"crop_size": 256, "id_dim": 128, "attr_width": 12, "gen_width": 12, "max_mult": 6}


def main(work: Path) -> None:
    torch.manual_seed(0)
    save_checkpoint(work / "aei.safetensors", AEINet(**HYPERPARAMETERS), architecture="aei_net", hyperparameters=HYPERPARAMETERS, training={"note": "random weights, timing only"})
    save_checkpoint(work / "id.safetensors", IdentityEncoder(), architecture="identity_encoder", hyperparameters={"embed_dim": 128})
    cv2.imwrite(str(work / "source.png"), cv2.cvtColor(load_demo_face(), cv2.COLOR_RGB2BGR))
    print(f"random_aei: checkpoints and source written to {work}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
