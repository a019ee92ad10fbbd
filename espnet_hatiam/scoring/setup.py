"""What was compared, read from the experiments themselves: the sets' sizes and each system's setup.

The comparison's header is generated from ``dump/raw/<set>`` and every ``exp/asr_<system>_<tag>_seed<N>/
config.yaml``, so it cannot drift from what was trained: which seeds each system has, its encoder, epochs,
augmentation, initialisation and the checkpoints averaged for decoding.
"""

from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence

import yaml

from espnet_hatiam.scoring.compare import EXP_NAME


def set_sizes(ref_dir: Path, sets: Sequence[str], sampling_rate: int = 16000) -> str:
    """``train_nodev (848 utterances, 0.63 h) / test (117 utterances, 0.08 h)``: utterances of ``<set>/text``,
    hours from ``<set>/utt2num_samples`` where it exists."""
    parts = []
    for name in dict.fromkeys(sets):  # each set once, in order
        text = ref_dir / name / "text"
        if not text.exists():
            continue
        with open(text, encoding="utf-8") as f:
            count = sum(1 for line in f if line.strip())
        size = f"{count:,} utterances"
        samples = ref_dir / name / "utt2num_samples"
        if samples.exists():
            with open(samples, encoding="utf-8") as f:
                total = sum(int(line.split()[1]) for line in f if line.strip())
            size += f", {total / sampling_rate / 3600:.2f} h"
        parts.append(f"{name} ({size})")
    return " / ".join(parts)


def describe_config(config: dict) -> str:
    """One system's training setup from its ESPnet ``config.yaml``."""
    encoder = config.get("encoder_conf") or {}
    items = [f"{config.get('encoder')} {encoder.get('num_blocks', '?')} x {encoder.get('output_size', '?')}"]
    if config.get("model") == "espnet":
        decoder = config.get("decoder_conf") or {}
        ctc_weight = (config.get("model_conf") or {}).get("ctc_weight")
        items.append(f"{config.get('decoder')} decoder {decoder.get('num_blocks', '?')} blocks, ctc_weight {ctc_weight}")
    else:
        joint = config.get("joint_type", "hat")
        iam_weight = (config.get("model_conf") or {}).get("iam_weight", 0.0)
        items.append(f"{joint} joint" + (f", iam_weight {iam_weight}" if joint == "hat" else ""))
    items.append(f"{config.get('max_epoch')} epochs")
    items.append("SpecAugment" if config.get("specaug") else "no SpecAugment")
    init = config.get("init_param") or []
    items.append(f"init {', '.join(init)}" if init else "random init")
    items.append(f"{config.get('keep_nbest_models')} best averaged")
    return ", ".join(items)


def decoded(exp: Path) -> bool:
    """Whether an experiment has a scored decoding (one still training is not part of the comparison)."""
    return any(exp.glob("decode_*/*/score.json"))


def describe_systems(exps: Sequence[Path]) -> List[str]:
    """``system (seeds 1, 2024): setup`` for each decoded system; seeds whose setups differ are listed apart."""
    setups: Dict[str, Dict[str, List[int]]] = defaultdict(lambda: defaultdict(list))
    for exp in sorted(exps):
        match = EXP_NAME.fullmatch(exp.name)
        if match is None or not (exp / "config.yaml").exists() or not decoded(exp):
            continue
        with open(exp / "config.yaml", encoding="utf-8") as f:
            setups[match["system"]][describe_config(yaml.safe_load(f))].append(int(match["seed"]))
    lines = []
    for system in sorted(setups):
        for setup, seeds in setups[system].items():
            label = "seed" if len(seeds) == 1 else "seeds"
            lines.append(f"{system} ({label} {', '.join(map(str, sorted(seeds)))}): {setup}")
    return lines


def environment() -> str:
    """Date, machine, versions and the git commit of the imported ``espnet_hatiam`` (not the caller's checkout)."""
    import datetime
    import os
    import platform
    import subprocess

    import espnet
    import torch

    import espnet_hatiam

    package = Path(espnet_hatiam.__file__).parent
    commit = subprocess.run(["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown (not a git checkout)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{datetime.date.today().isoformat()}, {platform.machine()}, {cores} CPU cores, "
            f"python {platform.python_version()}, torch {torch.__version__}, espnet {espnet.__version__}, "
            f"espnet_hatiam of git {commit} ({package})")
