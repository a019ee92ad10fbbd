"""Property-based tests (hypothesis) with randomised, often malformed, inputs: data preparation and the
decoding options give a result or one of the project's named one-line errors, never another exception;
the search keeps its invariants on random encoder outputs."""

import math
import re
from typing import Optional

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from espnet_hatiam.data.datadir import format_data
from espnet_hatiam.data.kaldi import read_table
from espnet_hatiam.errors import InputError
from espnet_hatiam.search import SearchConfig, SearchCounters, decode_encoded
from tiny_model import build_tiny_model

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _one_line_naming(error: InputError, *names: str) -> None:
    message = str(error)
    assert "\n" not in message and any(name in message for name in names), message


def _first_bad_line(lines) -> Optional[int]:
    """The number of the first line that read_table must refuse: a value with no id, or a repeated id."""
    seen = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key = line.split(maxsplit=1)[0]
        if line[0].isspace() or key in seen:
            return number
        seen.add(key)
    return None


# ------------------------------------------------------------------ Kaldi tables

_ids = st.text(alphabet="ab-_1\u00e9", min_size=1, max_size=4)
_line = st.one_of(
    st.tuples(_ids, st.text(alphabet="xy z\u2581\t", max_size=6)).map(lambda kv: f"{kv[0]} {kv[1]}"),
    st.text(alphabet=" \t\u00a0ab", max_size=5),  # blank, white space only, a lone id
    st.sampled_from([" lead", "\tx y", "a", "a ", "\ufeffa b"]),
)


@FAST
@given(lines=st.lists(_line, max_size=8))
def test_any_kaldi_table_reads_or_names_its_file_and_line(tmp_path, lines):
    path = tmp_path / "text"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = _first_bad_line(lines)
    if bad is not None:
        with pytest.raises(InputError) as error:
            read_table(path)
        message = str(error.value)
        assert "\n" not in message and message.startswith(f"{path}:{bad}: "), (message, lines)
        return
    table = read_table(path)
    assert list(table) == [line.split(maxsplit=1)[0] for line in lines if line.strip()]
    for key, value in table.items():
        assert key and not any(c.isspace() for c in key) and "\n" not in value


# ------------------------------------------------------------------ data dirs through format_data

_audio = st.sampled_from(["ok", "ok", "missing", "empty", "garbage", "zero_samples", "stereo", "8k"])


def _write_audio(path, kind: str) -> None:
    rng = np.random.default_rng(0)
    if kind == "missing":
        return
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
    elif kind == "zero_samples":
        soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)
    elif kind == "stereo":
        soundfile.write(path, rng.uniform(-0.1, 0.1, (1600, 2)), 16000)
    else:
        soundfile.write(path, rng.uniform(-0.1, 0.1, 1600), 8000 if kind == "8k" else 16000)


@SLOW
@given(
    audio=st.lists(_audio, min_size=1, max_size=4),
    texts=st.lists(st.sampled_from(["A B", "", "  ", None]), min_size=4, max_size=4),
    speaker_missing=st.booleans(),
    extra_text=st.booleans(),
)
def test_format_data_gives_a_dump_or_a_named_error(tmp_path_factory, audio, texts, speaker_missing, extra_text):
    src = tmp_path_factory.mktemp("src")
    utts = [f"u{i}" for i in range(len(audio))]
    for utt, kind in zip(utts, audio):
        _write_audio(src / f"{utt}.wav", kind)
    (src / "wav.scp").write_text("".join(f"{u} {src / u}.wav\n" for u in utts))
    text_rows = [f"{u} {t}\n" for u, t in zip(utts, texts) if t is not None]
    (src / "text").write_text("".join(text_rows) + ("ghost A\n" if extra_text else ""))
    (src / "utt2spk").write_text("".join(f"{u} s\n" for u in utts[int(speaker_missing):]))
    dst = tmp_path_factory.mktemp("dst")
    try:
        format_data(src, dst, 16000, 1, 0.01, 20.0)
    except InputError as error:
        _one_line_naming(error, str(src), *utts)
        return
    kept = read_table(dst / "wav.scp")
    assert set(kept) <= set(utts) and set(read_table(dst / "text")) == set(kept)
    for utt in kept:
        info = soundfile.info(kept[utt])
        assert info.samplerate == 16000 and info.channels == 1 and info.frames > 0


# ------------------------------------------------------------------ decoding options

_value = st.one_of(st.integers(-3, 6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                   st.text(max_size=6), st.sampled_from(["beam", "greedy", "espnet", "maes", "0.5"]),
                   st.lists(st.integers(), max_size=2))
_option = st.sampled_from(["search_type", "beam_size", "nbest", "iam_blank_threshold", "hat_blank_threshold",
                           "max_sym_per_frame", "espnet_search_type", "lm_weight", "ilm_weight", "beem_size"])


@settings(max_examples=400, deadline=None)
@given(options=st.dictionaries(_option, _value, max_size=4))
@example(options={"ilm_weight": 0.5, "search_type": "greedy"})
@example(options={"beem_size": 3, "nbest": 2})
@example(options={"beam_size": 1, "nbest": 2})
def test_any_decoding_options_build_a_config_or_name_the_option(options):
    """What a decode yaml or the command line may hold: a valid config, or a one-line InputError naming
    one option, one that was given and whose removal ends that error."""
    try:
        config = SearchConfig.from_options(**options)
    except InputError as error:
        message = str(error)
        named = re.findall(r"option '(\w+)'", message)
        assert "\n" not in message and len(named) == 1, message
        assert named[0] in options, f"{message!r} blames an option not given in {options}"
        rest = {k: v for k, v in options.items() if k != named[0]}
        try:
            SearchConfig.from_options(**rest)
        except InputError as other:
            assert re.findall(r"option '(\w+)'", str(other)) != named, f"{named[0]} is not what is wrong in {options}"
        return
    assert config.search_type in ("greedy", "beam", "espnet") and 1 <= config.nbest <= config.beam_size
    for name in ("iam_blank_threshold", "hat_blank_threshold"):
        assert 0.0 <= getattr(config, name) <= 1.0


# ------------------------------------------------------------------ search invariants

@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"hat": build_tiny_model("hat"), "rnnt": build_tiny_model("rnnt", iam_weight=0.0)}


@SLOW
@given(
    joint_type=st.sampled_from(["hat", "rnnt"]),
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=4),
    beam_size=st.integers(1, 4),
    nbest_share=st.floats(0, 1),
    max_sym=st.integers(1, 3),
    scale=st.sampled_from([0.1, 1.0, 8.0]),
    theta=st.sampled_from([0.5, 0.9, 0.999999]),
    seed=st.integers(0, 2**16),
)
def test_search_invariants_on_random_encoder_outputs(models, joint_type, lengths, beam_size, nbest_share, max_sym,
                                                     scale, theta, seed):
    """n-best scores sorted and finite, no sequence twice, at most frames x max_sym labels, all real tokens;
    a threshold that skipped nothing (no frame, no label projection) gives the plain search's result."""
    model = models[joint_type]
    generator = torch.Generator().manual_seed(seed)
    enc_out = scale * torch.randn(len(lengths), max(lengths), model.joint_network.lin_enc.in_features, generator=generator)
    enc_lens = torch.tensor(lengths)
    nbest = max(1, math.ceil(nbest_share * beam_size))
    plain = SearchConfig(beam_size=beam_size, nbest=nbest, max_sym_per_frame=max_sym)
    hyps = decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, plain)
    assert len(hyps) == len(lengths)
    for nbest_list, frames in zip(hyps, lengths):
        assert 1 <= len(nbest_list) <= nbest
        scores = [h.score for h in nbest_list]
        assert all(math.isfinite(s) and s <= 1e-4 for s in scores) and scores == sorted(scores, reverse=True)
        for h in nbest_list:
            assert len(h.token_ids) <= frames * max_sym and all(0 < t < model.joint_network.vocab_size for t in h.token_ids)
        assert len({tuple(h.token_ids) for h in nbest_list}) == len(nbest_list)

    def result(n_best_lists):
        return [[(h.token_ids, round(h.score, 3)) for h in n] for n in n_best_lists]

    if joint_type == "hat":
        for iam, hat in ((theta, 1.0), (1.0, theta), (theta, theta)):
            counters = SearchCounters.for_lengths(enc_lens)
            config = SearchConfig(beam_size=beam_size, nbest=nbest, max_sym_per_frame=max_sym,
                                  iam_blank_threshold=iam, hat_blank_threshold=hat)
            thresholded = decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, config, counters)
            totals = counters.totals()
            assert totals["frames_kept"] <= totals["frames"]
            assert totals["label_projections"] <= totals["joint_evaluations"]
            if totals["frames_kept"] == totals["frames"] and totals["label_projections"] == totals["joint_evaluations"]:
                assert result(thresholded) == result(hyps)
    greedy = decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens,
                            SearchConfig(search_type="greedy", max_sym_per_frame=max_sym))
    for (g,), frames in zip(greedy, lengths):
        assert len(g.token_ids) <= frames * max_sym and math.isfinite(g.score)
