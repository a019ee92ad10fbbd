"""Blank synchrony measured where decoding happens: greedy's per-frame labels, the IAM agreement
counter, its way through the decoding dir, and plot_results drawing it from decoding outputs only."""

import json

import pytest
import torch

from espnet_hatiam.bin import make_results, plot_results
from espnet_hatiam.data.decode_dir import STATS, DecodeDirWriter, merge_jobs
from espnet_hatiam.search import SearchConfig, SearchCounters, decode_encoded, greedy_search
from espnet_hatiam.search.counters import blank_agreement
from tiny_model import build_tiny_model


def _encoder_output(batch=3, frames=(30, 22, 9), size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(batch, max(frames), size, generator=g), torch.tensor(frames)


@pytest.fixture(scope="module", params=["hat", "rnnt"])
def model(request):
    """A random model that emits labels on some frames and whose IAM calls some frames blank."""
    torch.manual_seed(1)
    model = build_tiny_model(request.param)
    with torch.no_grad():
        for name in ("lin_blank", "lin_label", "lin_out"):
            if hasattr(model.joint_network, name):
                getattr(model.joint_network, name).weight.mul_(4.0)
    return model


@torch.no_grad()
def _reference_greedy(model, enc_out, max_sym):
    """Slow greedy search of one utterance ``(T, De)``: the whole label history through the
    prediction network at each step. Returns ``(labels, labels emitted per frame)``."""
    joint, decoder = model.joint_network, model.decoder
    decoder.set_device(enc_out.device)
    labels, per_frame = [], []
    for t in range(enc_out.size(0)):
        emitted = 0
        while emitted < max_sym:
            dec_out = decoder(torch.tensor([[0] + labels]))[0, -1]
            token = int(joint(enc_out[t], dec_out).argmax())
            if token == 0:
                break
            labels.append(token)
            emitted += 1
        per_frame.append(emitted)
    return labels, per_frame


@pytest.mark.parametrize("max_sym", [1, 2, 3])
@pytest.mark.parametrize("plan", ["select", "compiled"])
def test_frame_labels_equal_a_slow_one_utterance_greedy(model, max_sym, plan):
    enc_out, enc_lens = _encoder_output()
    frame_labels = torch.zeros(enc_out.shape[:2], dtype=torch.long)
    hyps = greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, max_sym, frame_labels=frame_labels,
                         row_plan=plan)
    assert hyps == greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, max_sym, row_plan=plan)
    for b in range(enc_out.size(0)):
        labels, per_frame = _reference_greedy(model, enc_out[b, : enc_lens[b]], max_sym)
        assert hyps[b].token_ids == labels
        assert frame_labels[b, : enc_lens[b]].tolist() == per_frame
        assert frame_labels[b, enc_lens[b]:].eq(0).all()  # padding
        assert int(frame_labels[b].sum()) == len(hyps[b].token_ids)
    assert (frame_labels > 0).any() and ((frame_labels == 0) & (torch.arange(30) < enc_lens[:, None])).any()
    if max_sym > 1:
        assert (frame_labels > 1).any(), "the case should emit several labels on a frame"


def test_frame_labels_of_the_wrong_shape_are_refused(model):
    enc_out, enc_lens = _encoder_output()
    with pytest.raises(ValueError, match="frame_labels must be"):
        greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, frame_labels=torch.zeros(3, 5))


def _reference_agreement(model, enc_out, enc_lens, max_sym):
    """Agreeing frames per utterance, from the IAM's full output and the slow greedy path."""
    counts = []
    for b in range(enc_out.size(0)):
        frames = enc_out[b, : enc_lens[b]]
        _, per_frame = _reference_greedy(model, frames, max_sym)
        with torch.no_grad():
            iam_blank = model.joint_network.iam(frames)[:, 0].exp() >= 0.5
        counts.append(sum(bool(iam) == (n == 0) for iam, n in zip(iam_blank.tolist(), per_frame)))
    return counts


@pytest.mark.parametrize("max_sym", [1, 2])
def test_greedy_decode_counts_the_frames_where_iam_and_path_agree(model, max_sym):
    enc_out, enc_lens = _encoder_output()
    counters = SearchCounters.for_lengths(enc_lens)
    config = SearchConfig(search_type="greedy", max_sym_per_frame=max_sym)
    decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, config, counters)
    expected = _reference_agreement(model, enc_out, enc_lens, max_sym)
    assert counters.blank_agreement.tolist() == expected
    assert counters.blank_agreement.dtype == torch.int64
    assert 0 < sum(expected) < int(enc_lens.sum()), "the case should have agreeing and disagreeing frames"
    assert counters.utterance(1)["blank_agreement"] == expected[1]
    assert counters.totals()["blank_agreement"] == sum(expected)


@pytest.mark.parametrize("options", [
    {"search_type": "beam", "beam_size": 2},
    {"search_type": "greedy", "iam_blank_threshold": 0.9},
    {"search_type": "greedy", "hat_blank_threshold": 0.9},
])
def test_blank_agreement_is_absent_unless_greedy_with_thresholds_off(model, options):
    if options.get("hat_blank_threshold", 1.0) < 1 and not model.joint_network.is_factorized:
        pytest.skip("HAT threshold needs the HAT joint")
    enc_out, enc_lens = _encoder_output()
    counters = SearchCounters.for_lengths(enc_lens)
    decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, SearchConfig(**options), counters)
    assert counters.blank_agreement is None
    assert "blank_agreement" not in counters.utterance(0) and "blank_agreement" not in counters.totals()


def test_blank_agreement_ignores_padding():
    class Joint:
        def iam_blank_log_prob(self, enc_out):
            return enc_out[..., 0]  # log P(blank) = feature 0

    blank, label = 0.0, -5.0  # P(blank) 1 and ~0.007
    enc_out = torch.tensor([[[blank], [label], [label], [blank]], [[label], [blank], [blank], [blank]]])
    frame_labels = torch.tensor([[0, 2, 0, 1], [1, 1, 0, 0]])
    assert blank_agreement(Joint(), enc_out, torch.tensor([4, 2]), frame_labels).tolist() == [2, 1]


def _write_job(directory, keys, agreement):
    with DecodeDirWriter(str(directory), {"search_type": "greedy"}) as writer:
        for key, agree in zip(keys, agreement):
            counters = {"frames": 10, "frames_kept": 10, "joint_evaluations": 12, "label_projections": 12}
            if agree is not None:
                counters["blank_agreement"] = agree
            writer.write(key, [("A", ["A"], [2], type("H", (), {"score": -1.0})())], counters)
        counters = {"frames": 10 * len(keys)}
        if agreement[0] is not None:
            counters["blank_agreement"] = sum(agreement)
        writer.add(counters, len(keys))


def test_writer_and_merge_carry_blank_agreement_only_where_every_job_measured_it(tmp_path):
    logdir = tmp_path / "measured" / "logdir"
    _write_job(logdir / "output.1", ["u1", "u2"], [7, 9])
    _write_job(logdir / "output.2", ["u3"], [4])
    merge_jobs(tmp_path / "measured", 2)
    stats = json.loads((tmp_path / "measured" / "decode_stats.json").read_text())
    assert stats["blank_agreement"] == 20 and stats["frames"] == 30 and stats["utterances"] == 3
    lines = [json.loads(line) for line in (tmp_path / "measured" / "utt_stats.jsonl").read_text().splitlines()]
    assert [line["blank_agreement"] for line in lines] == [7, 9, 4]

    logdir = tmp_path / "mixed" / "logdir"  # a job decoded by a version that did not measure it
    _write_job(logdir / "output.1", ["u1"], [7])
    _write_job(logdir / "output.2", ["u2"], [None])
    merge_jobs(tmp_path / "mixed", 2)
    stats = json.loads((tmp_path / "mixed" / "decode_stats.json").read_text())
    assert "blank_agreement" not in stats and set(STATS) <= set(stats)


def _fake_decoding(exp, name, wer, rtf, utterances=None):
    """A decoding dir as stages 12-13 leave it; ``utterances`` [(agreeing, frames)] for a measuring greedy one."""
    out = exp / f"decode_{name}_valid.wer.ave" / "test"
    out.mkdir(parents=True)
    stats = {"utterances": 3, "encoder_seconds": 1.0, "search_seconds": 0.5, "audio_seconds": 10.0,
             "frames": 100, "frames_kept": 100, "joint_evaluations": 100, "label_projections": 100}
    rows = [{"utt": f"u{i}", "frames": 100 // 3} for i in range(3)]
    if utterances is not None:
        stats.update(frames=sum(f for _, f in utterances), blank_agreement=sum(a for a, _ in utterances))
        rows = [{"utt": f"u{i}", "frames": f, "blank_agreement": a} for i, (a, f) in enumerate(utterances)]
    (out / "decode_stats.json").write_text(json.dumps(stats))
    (out / "utt_stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    counts = {c: 1 for c in make_results.COLUMNS}
    score = {"wer": {**counts, "Err": wer}, "cer": counts, "rtf": rtf, "encoder_rtf": 0.1,
             "frame_skip_ratio": 0.0, "label_projection_ratio": 1.0, "decode_stats": stats}
    (out / "score.json").write_text(json.dumps(score))
    return out


PNG = b"\x89PNG\r\n\x1a\n"


def test_plots_and_synchrony_come_from_decoding_dirs_only(tmp_path, capsys):
    exp = tmp_path / "exp"
    _fake_decoding(exp, "greedy", 12.0, 0.2, utterances=[(45, 50), (30, 40), (0, 0), (8, 10)])
    _fake_decoding(exp, "dual_0.95", 12.5, 0.1)
    _fake_decoding(exp, "plain_greedy", 13.0, 0.15, utterances=[(9, 10)])
    images = tmp_path / "images"
    plot_results.main(["--exp", str(exp), "--test_set", "test", "--out_dir", str(images)])
    assert (images / "speed_accuracy.png").read_bytes()[:8] == PNG
    assert (images / "blank_synchrony.png").read_bytes()[:8] == PNG
    synchrony = json.loads((images / "blank_synchrony.json").read_text())
    assert synchrony["decode_dir"] == "decode_greedy_valid.wer.ave/test"  # first by name
    assert synchrony["frames"] == 100 and synchrony["utterances"] == 4
    assert synchrony["blank_synchrony"] == pytest.approx(83 / 100)
    per_utterance = synchrony["per_utterance"]  # the utterance of 0 frames has no share
    assert per_utterance["min"] == 0.75 and per_utterance["median"] == 0.8 and per_utterance["max"] == 0.9
    assert synchrony["other_decodings"] == {"decode_plain_greedy_valid.wer.ave/test": 0.9}
    assert "blank synchrony of decode_greedy_valid.wer.ave/test" in capsys.readouterr().out
    results = make_results.make_results(exp, images)
    assert "83.0 % of 100 frames, 4 utterances, measured by decode_greedy_valid.wer.ave/test" in results
    assert f"]({images / 'blank_synchrony.png'})" in results and f"]({images / 'speed_accuracy.png'})" in results


def test_without_a_measuring_greedy_decoding_the_synchrony_figure_is_skipped(tmp_path, capsys):
    exp = tmp_path / "exp"
    _fake_decoding(exp, "dual_0.95", 12.5, 0.1)
    _fake_decoding(exp, "greedy", 12.0, 0.2)  # decoded before blank_agreement was measured
    images = tmp_path / "images"
    images.mkdir()
    for stale in ("blank_synchrony.png", "blank_synchrony.json"):
        (images / stale).write_text("from an older run")
    plot_results.main(["--exp", str(exp), "--test_set", "test", "--out_dir", str(images)])
    assert "no greedy decoding of test with both thresholds off measured blank_agreement" in capsys.readouterr().out
    assert (images / "speed_accuracy.png").read_bytes()[:8] == PNG
    assert not (images / "blank_synchrony.png").exists() and not (images / "blank_synchrony.json").exists()
    results = make_results.make_results(exp, images)
    assert "Blank synchrony" not in results and "speed_accuracy.png" in results


def test_plot_results_takes_no_model_options():
    with pytest.raises(SystemExit):
        plot_results.main(["--exp", "e", "--test_set", "t", "--out_dir", "o", "--model", "valid.wer.best.pth"])
