"""A scans folder's labels file (labels.csv: file,label[,case]), read as people write it: typed
by hand (spaces after commas, "./a.png", `File,Label`) or exported by a spreadsheet (byte-order
mark, CRLF, blank lines, an optional column left empty at the end of a row). Anything else is one
line naming the file and the line. predict-scans reads labels with it, and `make scans` keeps
the user's own rows with it, so both read a file the same way.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from digitpipe.errors import UserError

REQUIRED = ("file", "label")


def rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header (names stripped, lower case) and (line number, fields) of every other row that
    is not blank, each as long as the header; a row may leave out trailing columns other than
    file and label (they read as empty)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{path}: line {line} is not UTF-8 text ({exc.reason}): save it as CSV UTF-8"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    found, line = [], 1
    try:
        for fields in reader:
            if any(field.strip() for field in fields):
                found.append((line, fields))
            line = reader.line_num + 1  # a quoted field may span lines
    except csv.Error as exc:
        raise UserError(f"{path}: line {reader.line_num}: not CSV ({exc})") from None
    header = [name.strip().lower() for name in found[0][1]] if found else []
    if not all(name in header for name in REQUIRED):
        first = ",".join(found[0][1]) if found else "(the file is empty)"
        separator = next((name for sep, name in ((";", "';'"), ("\t", "tabs")) if sep in first), "")
        hint = f" (separated by {separator}: use commas)" if separator and len(header) == 1 else ""
        raise UserError(
            f"{path}: needs a header row with columns file,label (and optionally case); its "
            f"first row is: {first}{hint}"
        )
    body = []
    for line, fields in found[1:]:
        missing = header[len(fields) :]
        if len(fields) > len(header) or any(name in REQUIRED for name in missing):
            raise UserError(
                f"{path}: line {line} has {len(fields)} fields, the header {len(header)}: "
                f"{','.join(fields)}"
            )
        body.append((line, fields + [""] * len(missing)))
    return header, body


def file_name(field: str) -> str:
    """A labels file's name of a picture as the folder's listing names it: "./a.png " is a.png."""
    return Path(field.strip()).as_posix()


def read_labels(folder: Path, labels_file: str | None) -> dict[str, tuple[str, str]]:
    """{relative file name: (label, case)} from the folder's optional labels file; a label is
    the number written, in the digits 0-9."""
    if not labels_file or not (folder / labels_file).is_file():
        return {}
    path = folder / labels_file
    header, body = rows(path)
    column = {name: header.index(name) for name in (*REQUIRED, "case") if name in header}
    labels: dict[str, tuple[str, str]] = {}
    for line, fields in body:
        if not fields[column["file"]].strip():
            raise UserError(f"{path}: line {line}: no file name")
        file, label = file_name(fields[column["file"]]), fields[column["label"]].strip()
        case = fields[column["case"]].strip() if "case" in column else ""
        where = f"{path}: line {line}: {file!r}"
        if not label:
            raise UserError(f"{where} has an empty label (leave a picture without one out)")
        if not (label.isascii() and label.isdigit()):
            raise UserError(f"{where}: the label is not made of digits 0-9: {label!r}")
        if labels.get(file, (label,))[0] != label:
            raise UserError(f"{where} is labelled twice: {labels[file][0]} and {label}")
        labels[file] = (label, case)
    return labels
