"""Damaged dataset files (small copies built in tmp_path): each loader names the damaged file and how to get a
good copy; the Planetoid cache is keyed by its source, so a damaged copy neither poisons it nor is hidden by it."""
import csv
import io
import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image

from mixsuite.errors import DamagedFile, DataNotFound
from mixsuite.plugins.graphmix.data import load_planetoid, raw_files
from mixsuite.plugins.handwriting.data import load_lines
from mixsuite.plugins.image.data import load_dataset


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))


def jpeg(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def write_cifar_npz(root, bad_jpeg=False):
    folder = root / "cifar10_jpeg"
    folder.mkdir(parents=True)
    images = [jpeg(10 * i) for i in range(4)]
    if bad_jpeg:
        images[2] = images[2][:20]
    arrays = {}
    for split, imgs in (("train", images), ("test", images[:2])):
        arrays[f"{split}_jpeg"] = np.frombuffer(b"".join(imgs), np.uint8)
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(b) for b in imgs])
        arrays[f"{split}_labels"] = np.arange(len(imgs)) % 2
    np.savez(folder / "cifar10_jpeg.npz", classes=np.array(["a", "b"]), **arrays)
    return folder / "cifar10_jpeg.npz"


def test_a_truncated_cifar_npz_is_named(tmp_path):
    path = write_cifar_npz(tmp_path / "good")
    assert load_dataset("cifar10-jpeg", tmp_path / "good").train_x.shape == (4, 3, 4, 4)
    bad = write_cifar_npz(tmp_path / "bad")
    bad.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DamagedFile, match=rf"{bad} is damaged .*Copy cifar10_jpeg/cifar10_jpeg.npz again"):
        load_dataset("cifar10-jpeg", tmp_path / "bad")


def test_a_damaged_jpeg_in_the_npz_names_the_file_and_the_image(tmp_path):
    path = write_cifar_npz(tmp_path, bad_jpeg=True)
    with pytest.raises(DamagedFile, match=rf"{path} is damaged \(train image 2 does not decode"):
        load_dataset("cifar10-jpeg", tmp_path)


def write_poilus(root, n=3):
    folder = root / "htr_testaments_de_poilus"
    folder.mkdir(parents=True)
    with open(folder / "lines.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["id", "split", "text"])
        for i in range(n):
            w.writerow([f"l{i}", ("train", "val", "test")[i % 3], f"line {i}"])
    with tarfile.open(folder / "lines_h64.tar", "w") as tar:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 300), np.uint8)).save(buf, format="PNG")
            info = tarfile.TarInfo(f"lines/l{i}.png")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
    return folder / "lines_h64.tar"


def test_a_truncated_handwriting_tar_is_named(tmp_path):
    tar = write_poilus(tmp_path)
    assert len(load_lines(tmp_path, "poilus", 32, 800)["train"]) == 1
    tar.write_bytes(tar.read_bytes()[: len(tar.read_bytes()) // 2])
    with pytest.raises(DamagedFile, match=rf"{tar} is damaged \(lines/l\d\.png: .*Copy lines_h64.tar again"):
        load_lines(tmp_path, "poilus", 32, 800)


def planetoid_copy(shared_data, root, truncate=None):
    raw = root / "planetoid" / "Cora" / "raw"
    raw.mkdir(parents=True)
    for f in raw_files("Cora"):
        shutil.copyfile(shared_data / "planetoid" / "Cora" / "raw" / f, raw / f)
    if truncate:
        (raw / truncate).write_bytes((raw / truncate).read_bytes()[:500])
    return raw


def test_a_damaged_planetoid_copy_is_named_and_does_not_poison_the_cache(shared_data, tmp_path):
    raw = planetoid_copy(shared_data, tmp_path / "bad", truncate="ind.cora.allx")
    with pytest.raises(DamagedFile, match=rf"{raw / 'ind.cora.allx'} is damaged .*good copy"):
        load_planetoid(tmp_path / "bad", "cora")
    assert load_planetoid(shared_data, "cora").num_nodes == 2708   # the good data, read afresh
    assert not list((tmp_path / "cache").glob(".*"))                # no half-built folder left


def test_data_root_is_never_ignored_once_cached(shared_data, tmp_path):
    assert load_planetoid(shared_data, "cora").num_nodes == 2708
    planetoid_copy(shared_data, tmp_path / "bad", truncate="ind.cora.graph")
    with pytest.raises(DamagedFile, match="ind.cora.graph"):
        load_planetoid(tmp_path / "bad", "cora")
    with pytest.raises(DataNotFound, match="Planetoid Cora"):
        load_planetoid(tmp_path / "empty", "cora")
