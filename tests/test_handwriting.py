"""Handwriting: mixed CTC, decoding, CER/WER, the width rule for mixed pairs, loaders, bucketing, smoke run."""
import json

import pytest
import torch
import torch.nn.functional as F

from mixsuite.errors import DataNotFound
from mixsuite.mixing import MixPlan, mixed_ctc_loss
from mixsuite.plugins.handwriting.batching import BucketBatchSampler, collate
from mixsuite.plugins.handwriting.data import load_lines
from mixsuite.plugins.handwriting.model import CRNN, GatedHTR, frames
from mixsuite.plugins.handwriting.text import Alphabet, BeamDecoder, error_rates, greedy_decode
from conftest import record_files


def test_cer_wer_on_known_strings():
    r = error_rates(["le chat", "abc"], ["le chien", "abd"])
    assert r["cer"] == pytest.approx((3 + 1) / (8 + 3))       # chat->chien: a->i, t->e, +n = 3; abc->abd: 1
    assert r["wer"] == pytest.approx((1 + 1) / (2 + 1))
    assert error_rates(["x"], ["x"]) == {"cer": 0.0, "wer": 0.0}


def test_greedy_decoding_of_a_hand_built_emission():
    # frames: a a - b b - - b c  (blank = 0) -> "abbc"; then the second sequence is cut at its length (3 frames)
    path = [1, 1, 0, 2, 2, 0, 0, 2, 3]
    lp = torch.full((9, 2, 4), -10.0)
    for t, c in enumerate(path):
        lp[t, 0, c] = 0.0
        lp[t, 1, [3, 3, 1, 2, 2, 2, 2, 2, 2][t]] = 0.0
    assert greedy_decode(lp, torch.tensor([9, 3])) == [[1, 2, 2, 3], [3, 1]]


def test_beam_search_agrees_with_a_peaked_emission():
    alphabet = Alphabet(["ab c"])
    ids = alphabet.encode("ab c")
    lp = torch.full((8, 1, len(alphabet)), -20.0)
    for t, c in enumerate([ids[0], 0, ids[1], ids[2], 0, ids[3], 0, 0]):
        lp[t, 0, c] = 0.0
    beam = BeamDecoder(alphabet, beam_size=5)
    assert beam(lp.log_softmax(-1), torch.tensor([8])) == ["ab c"]


def test_alphabet_drops_unknown_characters():
    a = Alphabet(["abc", "ca b"])
    assert len(a) == 5 and a.encode("abz c") == [2, 3, 1, 4]
    assert a.decode(a.encode("cab")) == "cab"


def test_mixed_ctc_with_lam_one_is_plain_ctc_and_gradchecks():
    torch.manual_seed(0)
    lp = torch.randn(10, 2, 5, dtype=torch.float64).log_softmax(-1)
    ta, la = torch.tensor([[1, 2, 3], [2, 2, 0]]), torch.tensor([3, 2])
    lens = torch.tensor([10, 8])
    assert torch.allclose(mixed_ctc_loss(lp, ta, la, ta.flip(0), la.flip(0), lens, 1.0),
                          F.ctc_loss(lp, ta, lens, la), atol=1e-12)
    z = torch.randn(6, 2, 4, dtype=torch.float64, requires_grad=True)
    fn = lambda z: mixed_ctc_loss(z.log_softmax(-1), ta[:, :2].clamp(max=3), torch.tensor([2, 1]),
                                  torch.tensor([[3, 1], [1, 0]]), torch.tensor([2, 1]), torch.tensor([6, 5]),
                                  torch.tensor([0.3, 0.8], dtype=torch.float64))
    assert torch.autograd.gradcheck(fn, (z,))


def test_mixed_pair_input_length_is_the_larger(monkeypatch):
    """A mixed pair is scored with max(frames_a, frames_b) input frames and the partner's transcript."""
    import contextlib
    import types

    import mixsuite.plugins.handwriting.task as mod

    task = mod.HandwritingTask.__new__(mod.HandwritingTask)
    task.net = task.model = GatedHTR(6)
    task.engine = types.SimpleNamespace(autocast=contextlib.nullcontext)
    plan = MixPlan("block1", torch.tensor(0.25), torch.tensor([1, 0]))
    task.mixer = types.SimpleNamespace(step=lambda b, device=None: contextlib.nullcontext(plan))
    seen = {}

    def spy(lp, ta, la, tb, lb, lengths, lam, **kw):
        seen.update(lengths=lengths, tb=tb, lb=lb, lam=lam)
        return lp.sum() * 0

    monkeypatch.setattr(mod, "mixed_ctc_loss", spy)
    task.loss(torch.zeros(2, 1, 64, 96), torch.tensor([96, 40]), torch.tensor([[1, 2], [3, 0]]), torch.tensor([2, 1]))
    assert seen["lengths"].tolist() == [12, 12]          # max(frames(96), frames(40)) = max(12, 5), for both rows
    assert seen["tb"].tolist() == [[3, 0], [1, 2]] and seen["lb"].tolist() == [1, 2] and float(seen["lam"]) == 0.25


def test_models_output_frames_and_mixing_points():
    for net in (GatedHTR(10), CRNN(10)):
        out = net(torch.randn(2, 1, 64, 160))
        assert out.shape == (20, 2, 10) and int(frames(torch.tensor([160]))) == 20
        assert torch.allclose(out.exp().sum(-1), torch.ones(20, 2), atol=1e-5)
        assert {"block1", "block2", "block3", "block4"} <= dict(net.named_modules()).keys()


def test_collate_pads_to_multiple_of_8_and_bucketing_is_sorted():
    items = [(torch.full((4, 5), 255, dtype=torch.uint8), [1, 2], 0), (torch.zeros(4, 11, dtype=torch.uint8), [3], 1)]
    x, widths, targets, tlens, idx = collate(items)
    assert x.shape == (2, 1, 4, 16) and widths.tolist() == [5, 11]
    assert x[0].sum() == 0 and x[1, 0, :, :11].min() == 1 and x[1, 0, :, 11:].max() == 0   # ink = 1, padding = 0
    assert targets.tolist() == [[1, 2], [3, 0]] and tlens.tolist() == [2, 1]
    s = BucketBatchSampler(torch.tensor([5, 50, 7, 49, 6, 48]), batch_size=2, seed=0)
    s.set_epoch(1)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert {tuple(sorted(b)) for b in batches} == {(1, 3), (2, 5), (0, 4)}   # neighbours in width share a batch


def test_poilus_from_shared_data(shared_data):
    splits = load_lines(shared_data, "poilus", height=64, max_width=100000)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (2514, 286, 278)
    assert splits["train"].pixels.shape[0] == 64 and splits["train"].widths.min() >= 46
    assert sum(len(t) for t in splits["val"].texts) == 7939


def test_tsv_layout_and_missing(tmp_path, monkeypatch):
    from PIL import Image
    import numpy as np

    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "mylines"
    folder.mkdir()
    rows = []
    for i, split in enumerate(["train", "train", "val", "test"]):
        Image.fromarray(np.full((20, 40 + 10 * i), 200, np.uint8)).save(folder / f"{i}.png")
        rows.append(f"{i}.png\tline {i}\t{split}")
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n")
    splits = load_lines(tmp_path, "tsv:mylines", height=10, max_width=1000)
    assert len(splits["train"]) == 2 and splits["val"].texts == ["line 2"] and splits["train"].widths.tolist() == [20, 25]
    with pytest.raises(DataNotFound, match="labels.tsv"):
        load_lines(tmp_path, "tsv:nothing", height=10, max_width=100)


def test_smoke_config(cli, tmp_path, shared_data):
    out = cli("run", "tasks/handwriting", "-c", "configs/handwriting/smoke.yaml", "--results-dir", tmp_path / "r",
              "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads(record_files(tmp_path / "r")[0].read_text())["metrics"]
    assert 0 <= m["test_cer"] <= 1.5 and m["best_epoch"] in (1, 2) and m["unknown_chars_test"] >= 0
    assert m["val_nll_per_char"] > 0
