#!/usr/bin/env python3
"""Packed models as files: the Hugging Face model folder of recipe stage 15, and the files of a
packed model (zip, unpacked folder or Hugging Face folder) for ``Speech2Text``-like classes.

    python -m espnet_hatiam.bin.hf_model_folder --packed exp/asr_x/model.zip \\
        --results exp/asr_x/RESULTS.md --out exp/asr_x/hf_model [--name an4_asr_x] [--lang en]

makes the folder that ESPnet's upload stage (``asr.sh`` stage 15) pushes to a Hugging Face
model repository, without pushing it: the packed files as the zip holds them (``meta.yaml``,
``exp/...`` config, model and statistics, ``data/token_list/...`` token list and bpe model,
RESULTS.md and its images) and a model card ``README.md`` (Hugging Face metadata, usage, the
RESULTS table, the training config). ``git init; git lfs track '*.pth' '*.npz' '*.model'``
there and a push publishes it.
"""

import argparse
import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, Optional, Union

import yaml

KEEP = (".git", ".gitattributes")  # a clone of the model repository stays one


@contextlib.contextmanager
def packed_model_files(model: Union[Path, str], unpack_dir: Optional[str] = None) -> Iterator[Dict[str, str]]:
    """The files of a packed model as the keywords of ``Speech2Text``: ``asr_train_config``, ``asr_model_file``.

    ``model`` is either the archive of ``espnet2.bin.pack`` (unpacked to ``unpack_dir``,
    default ``<archive without suffix>_unpacked`` beside it), or a folder with its files and
    ``meta.yaml``: the folder it was unpacked to (e.g. by ``espnet_model_zoo``'s
    ``ModelDownloader``) or the Hugging Face model folder of stage 15. A folder is read, never
    written: its yaml files name the packed files relative to the folder (as packed) or by
    absolute path (as unpacked); while the context is open, copies with every packed file named
    by its absolute path lie in a temporary directory.
    """
    from espnet2.main_funcs.pack_funcs import find_path_and_change_it_recursive, unpack

    model = Path(model)
    if model.is_file():
        yield unpack(model, unpack_dir or str(model.with_suffix("")) + "_unpacked")
        return
    meta = model / "meta.yaml"
    if not meta.is_file():
        raise FileNotFoundError(f"no packed model at '{model}' (neither an archive nor a folder with meta.yaml)")
    info = yaml.safe_load(meta.read_text(encoding="utf-8"))
    root = model.absolute()
    packed = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    files = {key: str(root / name) for key, name in info["files"].items()}
    with tempfile.TemporaryDirectory(prefix="packed_model_") as tmp:
        for key, name in info["yaml_files"].items():
            config = yaml.safe_load((root / name).read_text(encoding="utf-8"))
            for path in packed:
                config = find_path_and_change_it_recursive(config, str(path), str(root / path))
            files[key] = str(Path(tmp) / f"{key}.yaml")
            Path(files[key]).write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        yield files


def make_hf_folder(
    packed: Path,
    out: Path,
    results: Optional[Path] = None,
    name: Optional[str] = None,
    corpus: str = "noinfo",
    lang: str = "noinfo",
) -> Path:
    """Unpack ``packed`` into ``out`` as packed (paths relative to the folder) and write its model card.

    ``results`` is the RESULTS.md the card shows (the recipe's ``exp/<asr>/RESULTS.md``); when
    the zip holds a different copy of it, the zip is older than the scores and is refused.
    """
    from espnet2.main_funcs.pack_funcs import Archiver

    results_text = results.read_text(encoding="utf-8") if results is not None else ""
    with Archiver(packed) as archive:
        members = {archive.get_name_from_info(info): info for info in archive}
        if results is not None:
            packed_results = members.get(_packed_name(results))
            if packed_results is not None and archive.extractfile(packed_results).read().decode("utf-8") != results_text:
                raise SystemExit(f"{packed} holds an older {results}: pack it again (stage 14)")
        out.mkdir(parents=True, exist_ok=True)
        for old in out.iterdir():  # the previous folder's files, e.g. of another --inference_model
            if old.name not in KEEP:
                shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
        for info in members.values():
            archive.extract(info, path=out)
    meta = yaml.safe_load((out / "meta.yaml").read_text(encoding="utf-8"))
    config_name = meta["yaml_files"]["asr_train_config"]
    card = model_card(
        meta,
        config=(out / config_name).read_text(encoding="utf-8"),
        results=results_text,
        name=name or packed.parent.name,
        corpus=corpus,
        lang=lang,
    )
    (out / "README.md").write_text(card, encoding="utf-8")
    return out


def _packed_name(path: Path) -> str:
    """The name ``espnet2.bin.pack`` gives a file in the archive: relative to the working dir if below it."""
    path = path.resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def model_card(meta: dict, config: str, results: str, name: str, corpus: str, lang: str) -> str:
    """README.md of a Hugging Face model repository (the sections of ESPnet's model cards)."""
    import espnet_hatiam

    train_args = yaml.safe_load(config)
    is_hat = "joint_type" in train_args  # this project's task; ESPnet's ASR task has no joint_type
    joint_type = train_args.get("joint_type")
    header = {
        "tags": ["espnet", "audio", "automatic-speech-recognition"]
        + (["espnet_hatiam", "transducer", joint_type] if is_hat else []),
        "language": lang,
        "datasets": [corpus],
        "license": "cc-by-4.0",
        "library_name": "espnet",
    }
    files = {**meta["yaml_files"], **meta["files"]}
    if is_hat:
        what = (
            f"A {'HAT' if joint_type == 'hat' else 'RNN-T'} transducer "
            f"({train_args.get('encoder')} encoder, iam_weight {train_args.get('model_conf', {}).get('iam_weight', 0.0)})"
        )
        usage = (
            "from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text\n\n"
            "# this folder, a clone of its model repository, or the model.zip it was made from\n"
            'speech2text = HATSpeech2Text.from_pretrained("path/to/this/folder", beam_size=4)\n'
            "text, tokens, token_ids, hyp = speech2text(waveform)[0]  # 16 kHz float waveform"
        )
    else:
        what = f"An ESPnet ASR model ({train_args.get('encoder')} encoder, {train_args.get('decoder')} decoder)"
        usage = (
            "from espnet2.bin.asr_inference import Speech2Text\n"
            "from espnet_hatiam.bin.hf_model_folder import packed_model_files\n\n"
            'with packed_model_files("path/to/this/folder") as files:\n'
            "    speech2text = Speech2Text(**files, beam_size=4)\n"
            "text, tokens, token_ids, hyp = speech2text(waveform)[0]"
        )
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).rstrip(),
        "---",
        "",
        f"## espnet_hatiam ASR model: `{name}`",
        "",
        f"{what}, trained with the `{corpus}/asr1` recipe of espnet_hatiam {espnet_hatiam.__version__} "
        f"(ESPnet {meta.get('espnet', '?')}, torch {meta.get('torch', '?')}): "
        "`hat_asr.sh` stages 1-13, packed by stage 14, this folder by stage 15.",
        "",
        "### How to use",
        "",
        "```python",
        usage,
        "```",
        "",
        "### Files",
        "",
        "|key|file|",
        "|---|---|",
        *[f"|{key}|`{value}`|" for key, value in files.items()],
        "",
        results.strip() if results.strip() else "(no RESULTS.md: run stage 13 before packing)",
        "",
        "## ASR config",
        "",
        "<details><summary>expand</summary>",
        "",
        "```yaml",
        config.rstrip(),
        "```",
        "",
        "</details>",
        "",
        "### Citing",
        "",
        "HAT with an internal acoustic model and dual blank thresholding: Moriya et al., Interspeech 2024, "
        "arXiv:2409.20313. ESPnet: Watanabe et al., Interspeech 2018, arXiv:1804.00015.",
        "",
    ]
    return "\n".join(lines)


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packed", type=Path, required=True, help="model zip of espnet2.bin.pack asr")
    parser.add_argument("--out", type=Path, required=True, help="the model folder (made anew)")
    parser.add_argument("--results", type=Path, default=None, help="RESULTS.md for the model card")
    parser.add_argument("--name", default=None, help="model name in the card (the repository id to push to)")
    parser.add_argument("--corpus", default="noinfo", help="dataset named in the card's metadata")
    parser.add_argument("--lang", default="noinfo", help="language code of the card's metadata")
    args = parser.parse_args(cmd)
    make_hf_folder(args.packed, args.out, args.results, args.name, args.corpus, args.lang)
    print(f"Generate: {args.out}")


if __name__ == "__main__":
    main()
