"""The content-addressed document store: layout, idempotence, atomic writes, refused digests."""
from __future__ import annotations

import hashlib
import os
import stat

import pytest

from backend.documents import DocumentStore

DOCUMENT = b"%PDF-1.7 an invoice, as far as the store cares"
DIGEST = hashlib.sha256(DOCUMENT).hexdigest()


@pytest.fixture
def store(tmp_path) -> DocumentStore:
    return DocumentStore(tmp_path / "documents")


def test_put_stores_under_the_sha256_with_two_levels_of_fan_out(store, tmp_path):
    assert store.put(DOCUMENT) == DIGEST
    expected = tmp_path / "documents" / DIGEST[:2] / DIGEST[2:4] / DIGEST
    assert store.path_for(DIGEST) == expected
    assert expected.read_bytes() == DOCUMENT


def test_stored_documents_read_back(store):
    store.put(DOCUMENT)
    assert store.exists(DIGEST)
    assert store.read(DIGEST) == DOCUMENT
    with store.open(DIGEST) as file:
        assert file.read() == DOCUMENT


def test_absent_documents(store):
    absent = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(absent)
    with pytest.raises(FileNotFoundError):
        store.read(absent)
    with pytest.raises(FileNotFoundError):
        store.open(absent)


def test_storing_the_same_bytes_twice_writes_once(store, monkeypatch):
    store.put(DOCUMENT)
    first = store.path_for(DIGEST).stat()
    replaced = []
    monkeypatch.setattr(os, "replace", lambda *args: replaced.append(args))
    assert store.put(DOCUMENT) == DIGEST
    assert replaced == []
    assert store.path_for(DIGEST).stat().st_ino == first.st_ino


def test_put_many_stores_each_document_once_and_syncs_them_together(store, monkeypatch):
    store.put(DOCUMENT)
    before = store.path_for(DIGEST).stat().st_ino
    others = [b"statement 1", b"statement 2"]
    syncs: list[str] = []
    monkeypatch.setattr(os, "fsync", lambda descriptor: syncs.append("fsync"))
    monkeypatch.setattr(os, "sync", lambda: syncs.append("sync"))

    digests = store.put_many([others[0], DOCUMENT, others[1], others[0]])

    assert digests == [hashlib.sha256(data).hexdigest() for data in (others[0], DOCUMENT, others[1], others[0])]
    assert [store.read(digest) for digest in digests] == [others[0], DOCUMENT, others[1], others[0]]
    assert store.path_for(DIGEST).stat().st_ino == before  # stored before: not rewritten
    assert syncs == ["sync"]  # once for all, after the last rename
    assert store.put_many([DOCUMENT]) == [DIGEST] and syncs == ["sync"]  # nothing new: nothing to sync
    assert [path.name for path in store.path_for(digests[0]).parent.iterdir()] == [digests[0]]


def test_stored_files_are_mode_0640_whatever_the_umask(store):
    previous = os.umask(0o077)
    try:
        store.put(DOCUMENT)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(store.path_for(DIGEST).stat().st_mode) == 0o640


def test_the_empty_document_is_a_document(store):
    digest = store.put(b"")
    assert digest == hashlib.sha256(b"").hexdigest()
    assert store.read(digest) == b""


def test_a_failed_write_leaves_neither_the_document_nor_a_temporary_file(store, monkeypatch):
    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.put(DOCUMENT)
    assert not store.exists(DIGEST)
    assert list(store.path_for(DIGEST).parent.iterdir()) == []


def test_no_temporary_files_stay_behind(store):
    store.put(DOCUMENT)
    assert [path.name for path in store.path_for(DIGEST).parent.iterdir()] == [DIGEST]


@pytest.mark.parametrize(
    "digest",
    [
        "../../../../etc/passwd",
        DIGEST.upper(),
        DIGEST[:-1],
        DIGEST + "0",
        DIGEST[:-1] + "g",
        DIGEST[:30] + "/" + DIGEST[31:],
        DIGEST + "\n",
        "",
        None,
    ],
)
def test_malformed_digests_are_refused_everywhere(store, digest):
    for method in (store.path_for, store.exists, store.read, store.open):
        with pytest.raises(ValueError, match="not a lowercase hex SHA-256"):
            method(digest)
