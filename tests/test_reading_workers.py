"""With workers, the plain pieces of a CSV file of our layout are read by the workers (each writes its rows'
shard parts and gives back the rows left to the row-by-row code), the rest by the reading process: the
records are the same bytes as one process's reading, and rows rejected while reading come out in their
places, in pieces read by workers, in pieces the csv module reads, and on both sides of a piece's edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policyhistory import Rerate

from .test_rerate_agreement import COLUMNS, DESTINATIONS, KNOWN_AT, LICENSE_SETS, _store

ROWS = 3_000
PIECE_BYTES = 4_096
"""The pieces the file is cut into, small so that the file makes about sixty of them."""


def _calls(path: Path) -> list[int]:
    """A file of ROWS calls of two tenants, with rows refused while reading (a bad duration, a bad start, a
    NUL in a call id), a call id given twice, and a quoted field (its piece is read by the csv module); returns
    the rows (from 0) that are refused while reading."""
    lines = [",".join(COLUMNS)]
    refused = []
    for index in range(ROWS):
        tenant = ("acme", "seoul")[index % 2]
        start = f"2020-{1 + index % 12:02d}-{1 + index % 28:02d}T{index % 24:02d}:{index % 60:02d}:00Z"
        duration = str(30 + index % 3_000)
        call_id = f"c{index}" if index != 1_500 else "c10"  # c10 again: refused by its shard, not while reading
        licenses = LICENSE_SETS[index % len(LICENSE_SETS)]
        if index % 397 == 5:
            duration = "soon"
            refused.append(index)
        elif index % 397 == 200:
            start = "2020-13-01T00:00:00Z"
            refused.append(index)
        elif index == 2_222:
            call_id = "c\x002222"
            refused.append(index)
        fields = [call_id, tenant, start, duration, ("conf_out", "user_out", "conf_in")[index % 3], f"o{index % 7}",
                  "FR" if tenant == "acme" else "KR", licenses, DESTINATIONS[index % len(DESTINATIONS)]]
        if index == 1_000:
            fields[5] = '"o, quoted"'
        lines.append(",".join(fields))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return refused


def test_workers_read_pieces_into_the_same_records_as_one_process(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "calls.csv"
    refused = _calls(path)
    store = _store(tmp_path)
    monkeypatch.setattr("policyhistory._columnar.CHUNK_BYTES", PIECE_BYTES)  # the reading process cuts the pieces
    found = {workers: list(Rerate(store, [path], known_at=KNOWN_AT, workers=workers, workdir=tmp_path)
                           .records_json())
             for workers in (1, 2)}
    with monkeypatch.context() as patched:
        patched.setattr("policyhistory._reading.own_csv_pieces", lambda path: None)
        row_by_row = list(Rerate(store, [path], known_at=KNOWN_AT, workers=1).records_json())
    assert found[1] == found[2] == row_by_row
    assert ROWS == len(found[2])
    errors = [index for index, text in enumerate(found[2]) if '"error"' in text]
    assert set(refused) < set(errors)  # and the later c10, refused by its shard
    assert [f'"line": {index + 2},' in found[2][index] for index in refused] == [True] * len(refused)
    assert 1 == sum("already" in found[2][index] for index in (10, 1_500))  # the later by start is refused
    assert '"o, quoted"' not in found[2][1_000] and '"error"' not in found[2][1_000]
