"""Alphabet, greedy CTC decoding, optional beam search (torchaudio), and CER / WER with editdistance."""
from __future__ import annotations

import editdistance
import torch

BLANK = 0


class Alphabet:
    """Characters of the training text; index 0 is the CTC blank. Unknown characters are dropped (the task counts
    them per split)."""

    def __init__(self, texts):
        self.chars = sorted({c for t in texts for c in t})
        self.index = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in text if c in self.index]

    def decode(self, ids) -> str:
        return "".join(self.chars[i - 1] for i in ids if i != BLANK)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. log_probs (T, B, C)."""
    best = log_probs.argmax(-1).T.cpu()                 # (B, T)
    out = []
    for seq, n in zip(best, lengths.tolist()):
        seq = seq[:n]
        keep = torch.ones_like(seq, dtype=torch.bool)
        keep[1:] = seq[1:] != seq[:-1]
        out.append([int(i) for i in seq[keep & (seq != BLANK)]])
    return out


class BeamDecoder:
    """torchaudio's CTC beam search (flashlight-text), lexicon-free or with a lexicon of words."""

    SIL = "|"

    def __init__(self, alphabet: Alphabet, beam_size: int = 10, lexicon_words=None, lexicon_path=None):
        try:
            from torchaudio.models.decoder import ctc_decoder
        except (ImportError, RuntimeError) as e:  # flashlight-text missing
            raise ImportError("beam search needs flashlight-text, in the htr extra: pip install -e '.[htr]'") from e
        self.tokens = ["<blank>"] + [self.SIL if c == " " else c for c in alphabet.chars]
        if self.SIL not in self.tokens:
            self.tokens.append(self.SIL)
        lexicon = None
        if lexicon_words:
            lexicon = str(lexicon_path)
            with open(lexicon, "w", encoding="utf-8") as f:
                for w in sorted(set(lexicon_words)):
                    if w and self.SIL not in w:
                        f.write(f"{w}\t{' '.join(w)} {self.SIL}\n")
        self.decoder = ctc_decoder(lexicon=lexicon, tokens=self.tokens, beam_size=beam_size, blank_token="<blank>",
                                   sil_token=self.SIL, unk_word="<unk>", log_add=True)
        self.alphabet = alphabet

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        emissions = log_probs.transpose(0, 1).float().cpu().contiguous()      # (B, T, C)
        hyps = self.decoder(emissions, lengths.cpu().int())
        out = []
        for h in hyps:
            tokens = [self.tokens[int(t)] for t in h[0].tokens] if h else []
            out.append("".join(" " if t == self.SIL else t for t in tokens if t != "<blank>").strip())
        return out


def error_rates(hyps: list[str], refs: list[str]) -> dict:
    """CER and WER (edit distance over reference length, summed over lines), as fractions."""
    chars = sum(editdistance.eval(h, r) for h, r in zip(hyps, refs))
    words = sum(editdistance.eval(h.split(), r.split()) for h, r in zip(hyps, refs))
    return {"cer": chars / max(1, sum(len(r) for r in refs)), "wer": words / max(1, sum(len(r.split()) for r in refs))}
