import torch

from mixsuite.cache import cached, source_key


def test_cached_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.arange(3)}

    a, b = cached("thing", build), cached("thing", build)
    assert calls == [1] and torch.equal(a["x"], b["x"])
    f = tmp_path / "src.bin"
    f.write_bytes(b"abc")
    k1 = source_key(f)
    f.write_bytes(b"abcd")
    assert source_key(f) != k1
