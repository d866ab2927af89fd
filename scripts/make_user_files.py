#!/usr/bin/env python3
"""Test files as a new user would bring them: one header row of column
names, two sheets, blanks, negatives and 2-decimal values, as CSV, .xlsx
(openpyxl) and .ods (written by hand: a zip with content.xml), plus the
exact plaintext statistics of each column in expected.json (Python's
Decimal, independent of Crux).

Usage: pip install openpyxl && scripts/make_user_files.py [OUT_DIR]
(default tests/data/user; the files are committed, CI does not run this).
"""
import json
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl

SHEETS = {
    "Site A": [
        ("311", "2.50"), ("820", ""), ("-4", "3.25"), ("", "-1.10"), ("77", "0.05"),
        ("1200", "19.99"), ("0", "7"), ("15", "-0.75"),
    ],
    "Site B": [
        ("5", "1.01"), ("-60", "2"), ("940", ""), ("33", "4.40"), ("", "0.99"), ("8", "-3.30"),
    ],
}
HEADER = ("units", "price")


def number(text):
    return None if text == "" else Decimal(text)


def text(v):
    """As Crux prints an exact value: plain digits, no trailing zeros."""
    return format(v.normalize(), "f")


def stats(values):
    values = [v for v in values if v is not None]
    s = sorted(values)
    n = len(s)
    return {
        "count": n,
        "sum": text(sum(values, Decimal(0))),
        "min": text(s[0]) if s else None,
        "max": text(s[-1]) if s else None,
        "median_lower": text(s[(n + 1) // 2 - 1]) if s else None,
    }


def write_csv(path, rows):
    lines = [",".join(HEADER)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def write_xlsx(path):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in SHEETS.items():
        ws = wb.create_sheet(name)
        ws.append(list(HEADER))
        for r in rows:
            ws.append([float(c) if c else None for c in r])
    wb.save(path)


def ods_cell(text):
    if text == "":
        return "<table:table-cell/>"
    return (f'<table:table-cell office:value-type="float" office:value="{text}">'
            f"<text:p>{text}</text:p></table:table-cell>")


def write_ods(path):
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
    tables = []
    for name, rows in SHEETS.items():
        header = "".join(f'<table:table-cell office:value-type="string"><text:p>{h}</text:p></table:table-cell>'
                         for h in HEADER)
        body = "".join("<table:table-row>" + "".join(ods_cell(c) for c in r) + "</table:table-row>" for r in rows)
        tables.append(f'<table:table table:name="{name}"><table:table-row>{header}</table:table-row>{body}</table:table>')
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns} office:version="1.2">'
               f"<office:body><office:spreadsheet>{''.join(tables)}</office:spreadsheet></office:body>"
               "</office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?>'
                '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet",
                   compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/data/user"
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "site_a.csv", SHEETS["Site A"])
    write_csv(out / "site_b.csv", SHEETS["Site B"])
    write_xlsx(out / "sites.xlsx")
    write_ods(out / "sites.ods")
    expected = {"about": "one header row (units, price); made by scripts/make_user_files.py", "sheets": {}}
    all_rows = []
    for name, rows in SHEETS.items():
        expected["sheets"][name] = {h: stats([number(r[i]) for r in rows]) for i, h in enumerate(HEADER)}
        all_rows += rows
    expected["both"] = {h: stats([number(r[i]) for r in all_rows]) for i, h in enumerate(HEADER)}
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
