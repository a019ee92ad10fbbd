"""What was compared, read from the experiments themselves: the sets' sizes and each system's setup.

The comparison's header is generated from the decode records (``results/asr_<system>_<tag>_seed<N>/``: each
set's recorded decodings and each system's ``config.yaml``), so it cannot drift from what was trained: which seeds each system has, its encoder, epochs,
augmentation, initialisation and the checkpoints averaged for decoding.
"""

from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence

import yaml

from espnet_hatiam.scoring.layout import decode_dirs, parse_exp
from espnet_hatiam.scoring.records import provenance


def set_sizes(records: Sequence[Path], sets: Sequence[str]) -> str:
    """``dev (85 utterances, 0.29 h) / test (1,089 utterances, 2.04 h)``: the first recorded decoding of each set
    (its utterance count and audio seconds)."""
    parts = []
    for name in dict.fromkeys(sets):  # each set once, in order
        found = next((d for record in sorted(records) for d in decode_dirs(record, dset=name)), None)
        if found is None:
            continue
        stats = found.score()["decode_stats"]
        parts.append(f"{name} ({stats['utterances']:,} utterances, {stats['audio_seconds'] / 3600:.2f} h)")
    return " / ".join(parts)


def describe_config(config: dict) -> str:
    """One system's training setup from its ESPnet ``config.yaml``."""
    encoder = config.get("encoder_conf") or {}
    items = [f"{config.get('encoder')} {encoder.get('num_blocks', '?')} x {encoder.get('output_size', '?')}"
             + (f" ({encoder['input_layer']} subsampling)" if encoder.get("input_layer") else "")]
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
    """Whether an experiment (or record) has a scored decoding (one still training is not part of the comparison)."""
    return bool(decode_dirs(exp))


def describe_systems(exps: Sequence[Path]) -> List[str]:
    """``system (seeds 1, 2024): setup`` for each decoded system; seeds whose setups differ are listed apart."""
    setups: Dict[str, Dict[str, List[int]]] = defaultdict(lambda: defaultdict(list))
    for exp in sorted(exps):
        parsed = parse_exp(exp)
        if parsed is None or not (exp / "config.yaml").exists() or not decoded(exp):
            continue
        with open(exp / "config.yaml", encoding="utf-8") as f:
            setups[parsed[0]][describe_config(yaml.safe_load(f))].append(parsed[2])
    lines = []
    for system in sorted(setups):
        for setup, seeds in setups[system].items():
            label = "seed" if len(seeds) == 1 else "seeds"
            lines.append(f"{system} ({label} {', '.join(map(str, sorted(seeds)))}): {setup}")
    return lines


def environment() -> str:
    """Date, machine, versions and the git commit of the imported ``espnet_hatiam`` (the comparison's own code)."""
    info = provenance()
    dirty = " (modified tree)" if info["dirty"] else ""
    return (f"{info['date']}, {info['machine']}, python {info['python']}, torch {info['torch']}, "
            f"espnet {info['espnet']}, espnet_hatiam of git {info['commit']}{dirty}")
