"""The spool keeps batches durably until they are retired, survives a restart, and holds its cap."""
from __future__ import annotations

import json
import os
import stat

import pytest

from hftel_exporter.spool import MANIFEST, QUARANTINE, Spool, SpoolFullError


def put(spool, key, data=b"x" * 100, **manifest):
    return spool.put(key, {"audit_orders.rows": data}, {"tables": {"audit_orders": {"rows": 1}}, **manifest})


def test_an_entry_holds_its_files_and_manifest(tmp_path):
    spool = Spool(str(tmp_path / "spool"), max_bytes=1 << 20)
    entry = put(spool, "e1", data=b"rows", origin="audit")
    with open(entry.file("audit_orders.rows"), "rb") as file:
        assert file.read() == b"rows"
    assert entry.manifest["origin"] == "audit" and entry.manifest["key"] == "e1"


def test_entries_come_back_oldest_first_after_a_restart(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    for key in ("b", "a", "c"):
        put(spool, key)
    assert [entry.manifest["key"] for entry in Spool(str(tmp_path), max_bytes=1 << 20).entries()] == ["b", "a", "c"]


def test_new_entries_after_a_restart_sort_after_the_old_ones(tmp_path):
    put(Spool(str(tmp_path), max_bytes=1 << 20), "old")
    reopened = Spool(str(tmp_path), max_bytes=1 << 20)
    put(reopened, "new")
    assert [entry.manifest["key"] for entry in reopened.entries()] == ["old", "new"]


def test_a_retired_entry_is_gone_from_disk(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    entry = put(spool, "e")
    spool.retire(entry)
    assert not os.path.exists(entry.path) and spool.entries() == [] and spool.bytes == 0


def test_a_half_written_entry_left_by_a_crash_is_removed_at_start(tmp_path):
    os.makedirs(tmp_path / ".tmp-000000000001-e")
    (tmp_path / ".tmp-000000000001-e" / "audit_orders.rows").write_bytes(b"partial")
    assert Spool(str(tmp_path), max_bytes=1 << 20).entries() == []
    assert not (tmp_path / ".tmp-000000000001-e").exists()


def test_a_damaged_manifest_is_moved_aside_and_reported(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    entry = put(spool, "e")
    with open(os.path.join(entry.path, MANIFEST), "w") as file:
        file.write("{not json")
    reopened = Spool(str(tmp_path), max_bytes=1 << 20)
    assert reopened.entries() == []
    assert len(reopened.damaged) == 1 and entry.name in reopened.damaged[0]
    assert (tmp_path / QUARANTINE / entry.name / "audit_orders.rows").exists()


def test_a_batch_past_the_cap_is_refused_and_nothing_is_written(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=150)
    put(spool, "first")
    with pytest.raises(SpoolFullError, match="cap of 150"):
        put(spool, "second")
    assert [entry.manifest["key"] for entry in spool.entries()] == ["first"]
    assert sorted(os.listdir(tmp_path)) == [spool.entries()[0].name]


def test_the_cap_frees_up_when_entries_retire(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=150)
    spool.retire(put(spool, "first"))
    second = put(spool, "second")
    assert spool.entries() == [second] and spool.usage_ratio == pytest.approx(second.bytes / 150)


def test_spool_files_are_private_to_the_exporter(tmp_path):
    spool = Spool(str(tmp_path / "spool"), max_bytes=1 << 20)
    entry = put(spool, "e")
    assert stat.S_IMODE(os.stat(spool.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(entry.file("audit_orders.rows")).st_mode) == 0o600


def test_quarantine_takes_an_entry_out_of_the_replay_and_keeps_its_rows(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    entry = put(spool, "poison", data=b"keep me")
    where = spool.quarantine(entry)
    assert Spool(str(tmp_path), max_bytes=1 << 20).entries() == []
    with open(os.path.join(where, "audit_orders.rows"), "rb") as file:
        assert file.read() == b"keep me"
    assert json.load(open(os.path.join(where, MANIFEST)))["key"] == "poison"


def test_oldest_age_counts_from_the_oldest_entry(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    assert spool.oldest_age() == 0.0
    entry = put(spool, "e")
    assert spool.oldest_age(now=entry.created + 42.0) == pytest.approx(42.0)
