"""Choosing table rows: one numbering and one syntax for every verb that shows samples.

A row is numbered as in the user's table: row 1 is the first data row of table.csv (the line after
the header; for an .npz, the first entry of its arrays), the number data errors print ("table.csv
row 7, column 'age': empty cell"). ``--missing drop`` keeps each row's number: a dropped row is not
in the fitted data, and choosing it is an error saying why it was dropped.

``--rows`` (``rows=``) always selects rows: comma-separated numbers and inclusive ranges,
``3,7,10-19``. ``--ids`` (``ids=``) selects by the id column's values. Without either,
``--samples N`` (``samples=``) takes N rows spread evenly over the table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from xcausal.io import DataError

__all__ = ["parse_rows", "select_rows", "row_label", "file_label"]

_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
_MAX_LISTED = 100_000  # a range longer than this is refused before its numbers are listed


def _shown(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def parse_rows(rows: str | int | Sequence[int], *, table_rows: int | None = None, option: str = "--rows") -> list[int]:
    """Row numbers from ``"3,7,10-19"`` (numbers and inclusive ranges, comma-separated), one row
    number, or a sequence of them; in the order given, repeats removed.

    Parameters
    ----------
    rows : the selection, as typed after ``--rows`` or as integers
    table_rows : rows in the table; numbers above it are refused (None: not checked)
    option : the option named in errors

    Raises
    ------
    DataError
        One line naming ``option``: empty selection, a token that is not a number or a range, a
        range that runs backwards, row 0 or a negative number, a row beyond ``table_rows``.
    """
    if isinstance(rows, (bool, np.bool_)):
        raise DataError(f"{option}: expected row numbers such as 3,7,10-19, got {rows!r}")
    if isinstance(rows, (int, np.integer)):
        items: list[Any] = [int(rows)]
        text = str(int(rows))
    elif isinstance(rows, str):
        text = rows.strip()
        items = [t.strip() for t in text.split(",")] if text else []
        if any(not t for t in items):
            raise DataError(f"{option} {_shown(text)}: empty entry between commas (write e.g. 3,7,10-19)")
    else:
        items = list(rows)
        text = ",".join(map(str, items))
    if not items:
        raise DataError(f"{option}: give at least one row number (e.g. 3,7,10-19; rows count from 1)")
    out: list[int] = []
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            lo = hi = int(item)
        elif isinstance(item, str) and item.isascii() and item.isdecimal():
            lo = hi = int(item)
        elif isinstance(item, str) and (m := _RANGE.match(item)):
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise DataError(f"{option} {_shown(text)}: range {item} runs backwards (write {hi}-{lo})")
        else:
            raise DataError(f"{option} {_shown(text)}: '{_shown(str(item))}' is not a row number or a range "
                            "such as 10-19")
        if lo < 1:
            raise DataError(f"{option} {_shown(text)}: rows are numbered from 1 (row 1 = the first data row of "
                            "the table, as data errors number rows)")
        if table_rows is not None and hi > table_rows:
            raise DataError(f"{option} {_shown(text)}: row {hi} is out of range (the table has {table_rows} "
                            f"row(s), numbered 1 to {table_rows})")
        if hi - lo >= _MAX_LISTED:
            raise DataError(f"{option} {_shown(text)}: range {item} is longer than {_MAX_LISTED:,} rows")
        out.extend(range(lo, hi + 1))
    return list(dict.fromkeys(out))


def _parse_ids(ids: str | Sequence[Any], option: str) -> list[str]:
    if isinstance(ids, str):
        items = [t.strip() for t in ids.split(",")]
        if any(not t for t in items) and ids.strip():
            raise DataError(f"{option} {_shown(ids.strip())}: empty entry between commas")
        items = [t for t in items if t]
    else:
        items = [str(t).strip() for t in ids]
    if not items:
        raise DataError(f"{option}: give at least one id")
    return list(dict.fromkeys(items))


def select_rows(ds: Any, *, rows: str | int | Sequence[int] | None = None, ids: str | Sequence[Any] | None = None,
                samples: int = 10) -> list[int]:
    """Positions in ``ds`` (0-based, for ``ds.images`` and the models) of the chosen rows.

    ``rows`` are table row numbers (see :func:`parse_rows`); ``ids`` values of the id column
    (text, compared after stripping blanks); with neither, ``samples`` rows spread evenly over
    ``ds``. ``ds`` is a :class:`~xcausal.data.dataset.CrossModalDataset` (its ``row_numbers``,
    ``ids``, ``dropped_rows``, ``dropped_ids``).

    Raises
    ------
    DataError
        One line naming the option: both ``rows`` and ``ids``; a bad selection; a row or id not in
        ``ds`` (dropped by ``--missing drop``, with the reason, or not in the table).
    """
    if rows is not None and ids is not None:
        raise DataError("--rows and --ids: give one of them")
    numbers = np.asarray(ds.row_numbers, dtype=np.int64)
    if rows is None and ids is None:
        if isinstance(samples, (bool, np.bool_)) or not isinstance(samples, (int, np.integer)) or samples < 1:
            raise DataError(f"--samples {samples}: must be at least 1")
        n = len(numbers)
        return [int(i) for i in np.linspace(0, n - 1, num=min(int(samples), n)).round().astype(int)]
    where = {int(r): i for i, r in enumerate(numbers)}
    if rows is not None:
        chosen = parse_rows(rows, table_rows=ds.table_rows)
        out = []
        for r in chosen:
            if r not in where:
                why = ds.dropped_rows.get(r)
                raise DataError(f"--rows: row {r} is not in the fitted data"
                                + (f" (dropped by --missing drop: {why})" if why else ""))
            out.append(where[r])
        return out
    wanted = _parse_ids(ids, "--ids")  # type: ignore[arg-type]
    if ds.ids is None:
        raise DataError("--ids: the data has no id column (give it with --id-column when fitting)")
    position = {}
    for i, v in enumerate(ds.ids):
        position.setdefault(str(v).strip(), i)
    out = []
    for key in wanted:
        if key not in position:
            if key in ds.dropped_ids:
                r = ds.dropped_ids[key]
                raise DataError(f"--ids: id '{_shown(key)}' (row {r}) is not in the fitted data (dropped by "
                                f"--missing drop: {ds.dropped_rows.get(r, 'missing cells')})")
            raise DataError(f"--ids: no row has id '{_shown(key)}' in column '{ds.id_column}'")
        out.append(position[key])
    return out


def row_label(ds: Any, i: int) -> str:
    """How position ``i`` of ``ds`` is named in figures: ``row 7``, or ``row 7 (P00007)`` with ids."""
    label = f"row {int(ds.row_numbers[i])}"
    if ds.ids is not None:
        label += f" ({_shown(str(ds.ids[i]).strip())})"
    return label


def file_label(ds: Any, i: int) -> str:
    """A file-name stem for position ``i`` of ``ds``: ``row7``, or ``row7_P00007`` with ids (characters
    other than letters, digits, ``.``, ``-`` and ``_`` in the id become ``_``)."""
    label = f"row{int(ds.row_numbers[i])}"
    if ds.ids is not None:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(ds.ids[i]).strip())[:40].strip("._")
        if safe:
            label += f"_{safe}"
    return label
