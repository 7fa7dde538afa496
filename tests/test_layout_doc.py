"""docs/layout.md against the cext/ headers: every number the doc states is the number the compiler sees.

A small C program is generated from the headers (hftel.h, hftel_registry.h, hftel_ring.h and
hftel_writer.h: every object-like HFTEL_* macro, every enum constant, offsetof/sizeof of every member
of the structs in STRUCTS -- the segment header, the descriptor, the ring header, the ring record
header, the spill file header and the spill frame --, the histogram block geometry for every bucket
count, and each `C expression` the doc quotes), compiled with the system `cc` and run. Its
`NAME=value` lines are compared with the doc's machine-checked tables:

  * layout tables   -- columns Offset, Size, C constant and "`STRUCT` member";
  * constant tables -- columns C constant and Value;
  * expression tables -- columns C expression and Value;
  * the histogram block table -- columns B, Counts at, Sum at and Block length.

Every struct in STRUCTS needs a layout table. Of hftel.h, every *_OFFSET and *_LENGTH macro and every
enum constant must be stated in a checked table; of hftel_ring.h and hftel_writer.h (the rings and
the spill file are described in full), every object-like macro and every enum constant.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEADER = REPO / "cext" / "hftel.h"
REGISTRY = REPO / "cext" / "hftel_registry.h"
RING = REPO / "cext" / "hftel_ring.h"
WRITER = REPO / "cext" / "hftel_writer.h"  # includes hftel_registry.h, which includes hftel.h and hftel_ring.h
HEADERS = (HEADER, REGISTRY, RING, WRITER)
DOC = REPO / "docs" / "layout.md"
# Every struct of the ABI (the segment's and the spill file's), and the header that declares it.
STRUCTS = {
    "hftel_header": HEADER,
    "hftel_descriptor": HEADER,
    "hftel_ring_header": RING,
    "hftel_record_header": RING,
    "hftel_spill_header": WRITER,
    "hftel_spill_frame": WRITER,
}
# Headers the doc describes in full: each of their object-like macros and enum constants is stated.
FULLY_DOCUMENTED = (RING, WRITER)
MAX_BUCKETS = 256
NONE_CELLS = {"", "-", "—", "n/a"}

# --------------------------------------------------------------------------------------------------
# What the headers say.
# --------------------------------------------------------------------------------------------------


def macro_names(header_text: str) -> list[str]:
    """Object-like HFTEL_* macros with a value (not include guards, not function-like macros)."""
    return re.findall(r"^#define\s+(HFTEL_\w+)[ \t]+\S", header_text, re.MULTILINE)


def enum_names(header_text: str) -> list[str]:
    """Every enumerator of every enum in the header."""
    names = []
    for body in re.findall(r"\benum\s+\w+\s*\{(.*?)\}", header_text, re.DOTALL):
        body = re.sub(r"/\*.*?\*/", "", body, flags=re.DOTALL)
        names += re.findall(r"\b(HFTEL_\w+)\s*=", body)
    return names


def struct_members(header_text: str, struct: str) -> list[str]:
    """The member names of `typedef struct STRUCT { ... } STRUCT;`, in declaration order."""
    match = re.search(r"typedef\s+struct\s+%s\s*\{(.*?)\}\s*%s\s*;" % (struct, struct), header_text, re.DOTALL)
    assert match, f"struct {struct} not found in {STRUCTS[struct].name}"
    body = re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.DOTALL)
    return re.findall(r"(\w+)\s*(?:\[[^\]]*\])?\s*;", body)


def c_program(headers: dict[Path, str], expressions: list[str]) -> str:
    """A C program printing NAME=value for everything the doc may state."""
    lines = ['#include <stdio.h>', '#include "hftel_writer.h"', "",
             # Values print exactly whatever their type: a u64 above 2^63 (the tag key) stays
             # positive, a negative enum constant (HFTEL_AUDIT_LOST) stays negative.
             "static void show(const char *name, int is_signed, long long as_signed, unsigned long long as_unsigned)",
             "{",
             "    if (is_signed && as_signed < 0) {",
             '        printf("%s=%lld\\n", name, as_signed);',
             "    } else {",
             '        printf("%s=%llu\\n", name, as_unsigned);',
             "    }",
             "}", "", "int main(void)", "{"]

    def emit(label: str, expression: str) -> None:
        text = label.replace("\\", "\\\\").replace('"', '\\"')
        value = f"({expression})"
        lines.append(f'    show("{text}", ({value} * 0 - 1) < 0, (long long){value}, (unsigned long long){value});')

    texts = [headers[path] for path in HEADERS]
    for name in dict.fromkeys(name for text in texts for name in macro_names(text)):
        emit(name, name)
    for name in dict.fromkeys(name for text in texts for name in enum_names(text)):
        emit(name, name)
    for struct, declared_in in STRUCTS.items():
        emit(f"sizeof({struct})", f"sizeof({struct})")
        for member in struct_members(headers[declared_in], struct):
            emit(f"offsetof({struct}.{member})", f"offsetof({struct}, {member})")
            emit(f"sizeof({struct}.{member})", f"sizeof((({struct} *)0)->{member})")
    for count in range(1, MAX_BUCKETS + 1):
        emit(f"counts_at({count})", f"hftel_histogram_counts_offset({count}u)")
        emit(f"sum_at({count})", f"hftel_histogram_counts_offset({count}u) + ({count}u + 1u) * HFTEL_SIZE_OF_LONG")
        emit(f"block_length({count})", f"hftel_histogram_block_length({count}u)")
    for expression in expressions:
        emit(expression, expression)
    lines += ["    return 0;", "}", ""]
    return "\n".join(lines)


def compile_and_run(source: str, workdir: Path) -> dict[str, int]:
    """Compiles `source` against cext/ with the system cc and parses its NAME=value output."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler: `cc` is not on PATH, so the header's layout cannot be computed")
    program = workdir / "print_layout.c"
    binary = workdir / "print_layout"
    program.write_text(source)
    built = subprocess.run([cc, "-Wall", "-I", str(HEADER.parent), str(program), "-o", str(binary)],
                           capture_output=True, text=True)
    assert built.returncode == 0, f"cannot compile the layout printer:\n{built.stderr}"
    ran = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    values = {}
    for line in ran.stdout.splitlines():
        name, _, value = line.rpartition("=")
        values[name] = int(value)
    return values


# --------------------------------------------------------------------------------------------------
# What the doc says.
# --------------------------------------------------------------------------------------------------


@dataclass
class Table:
    line: int            # 1-based line of the table's header row
    columns: list[str]   # lower-cased, backticks stripped
    rows: list[tuple[int, list[str]]]  # (line, cells with backticks stripped)

    def column(self, name: str) -> int | None:
        return self.columns.index(name) if name in self.columns else None

    def struct(self) -> str | None:
        """The struct a layout table describes, from its "`STRUCT` member" column."""
        for column in self.columns:
            match = re.fullmatch(r"(\w+) member", column)
            if match:
                return match.group(1)
        return None


def _cells(line: str) -> list[str]:
    return [cell.strip().replace("`", "").strip() for cell in line.strip().strip("|").split("|")]


def parse_tables(doc_text: str) -> list[Table]:
    """Every Markdown pipe table of the doc (diagrams in fenced code blocks are not tables)."""
    tables, current, fenced = [], None, False
    for number, line in enumerate(doc_text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or not line.lstrip().startswith("|"):
            current = None
            continue
        cells = _cells(line)
        if current is None:
            current = Table(number, [cell.lower() for cell in cells], [])
            tables.append(current)
        elif not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            current.rows.append((number, cells))
    return tables


def number(cell: str) -> int | None:
    """The first integer in a cell (decimal or 0x hex, with a leading minus sign if any), or None."""
    match = re.search(r"(?<![\w.])-?(?:0x[0-9a-fA-F]+|\d+)\b", cell)
    return None if match is None else int(match.group(0), 0)


def stated_layout_version(doc_text: str) -> int | None:
    """The version in the doc's `**Layout version: N**` line."""
    match = re.search(r"\*\*Layout version:\s*(\d+)\*\*", doc_text)
    return None if match is None else int(match.group(1))


def doc_expressions(doc_text: str) -> list[str]:
    """The C expressions quoted in the doc's expression tables, for the program to evaluate."""
    found = []
    for table in parse_tables(doc_text):
        column = table.column("c expression")
        if column is not None and table.column("value") is not None:
            found += [cells[column] for _, cells in table.rows]
    return found


def _check_layout_table(table: Table, headers: dict[Path, str], layout: dict[str, int]) -> list[str]:
    struct = table.struct()
    members = struct_members(headers[STRUCTS[struct]], struct) if struct in STRUCTS else None
    if members is None:
        return [f"line {table.line}: layout table of unknown struct {struct!r}"]
    offset_col, size_col = table.column("offset"), table.column("size")
    member_col, constant_col = table.columns.index(f"{struct} member"), table.column("c constant")
    problems, spans, seen = [], [], []
    for line, cells in table.rows:
        member = cells[member_col]
        where = f"line {line}: {struct}.{member}"
        offset, size = number(cells[offset_col]), number(cells[size_col])
        if member not in members:
            problems.append(f"{where}: no such member in {STRUCTS[struct].name}")
            continue
        seen.append(member)
        true_offset = layout[f"offsetof({struct}.{member})"]
        true_size = layout[f"sizeof({struct}.{member})"]
        if offset != true_offset:
            problems.append(f"{where}: doc says offset {offset}, the header says {true_offset}")
        if size != true_size:
            problems.append(f"{where}: doc says size {size}, the header says {true_size}")
        constant = cells[constant_col] if constant_col is not None else ""
        if constant.lower() not in NONE_CELLS:
            if constant not in layout:
                problems.append(f"{where}: constant {constant} is not defined in the headers")
            elif layout[constant] != true_offset:
                problems.append(f"{where}: {constant} is {layout[constant]}, not the member's offset {true_offset}")
        if offset is not None and size is not None:
            spans.append((offset, size, member))
    for member in members:
        if seen.count(member) != 1:
            problems.append(f"line {table.line}: {struct}.{member} appears {seen.count(member)} times, not once")
    end = 0
    for offset, size, member in sorted(spans):
        if offset != end:
            problems.append(f"line {table.line}: {struct} table has a gap or overlap at {end} (next row {member})")
        end = offset + size
    if spans and end != layout[f"sizeof({struct})"]:
        problems.append(f"line {table.line}: {struct} table ends at {end}, sizeof is {layout[f'sizeof({struct})']}")
    return problems


def _check_value_table(table: Table, key_column: str, layout: dict[str, int]) -> list[str]:
    key_col, value_col = table.column(key_column), table.column("value")
    problems = []
    for line, cells in table.rows:
        key, stated = cells[key_col], number(cells[value_col])
        if key not in layout:
            problems.append(f"line {line}: {key} is not defined in the headers (or was not evaluated)")
        elif stated != layout[key]:
            problems.append(f"line {line}: doc says {key} = {stated}, the header says {layout[key]}")
    return problems


def _check_histogram_table(table: Table, layout: dict[str, int]) -> list[str]:
    problems = []
    for line, cells in table.rows:
        count = number(cells[table.column("b")])
        for column, key in (("counts at", "counts_at"), ("sum at", "sum_at"), ("block length", "block_length")):
            stated, true = number(cells[table.column(column)]), layout.get(f"{key}({count})")
            if stated != true:
                problems.append(f"line {line}: B={count}: doc says {column} {stated}, the header says {true}")
    return problems


def check_doc(doc_text: str, headers: dict[Path, str], layout: dict[str, int]) -> list[str]:
    """Every disagreement between the doc's checked tables and the compiled headers, as sentences."""
    problems = []
    for table in parse_tables(doc_text):
        columns = set(table.columns)
        if {"offset", "size"} <= columns and table.struct():
            problems += _check_layout_table(table, headers, layout)
        elif {"c constant", "value"} <= columns:
            problems += _check_value_table(table, "c constant", layout)
        elif {"c expression", "value"} <= columns:
            problems += _check_value_table(table, "c expression", layout)
        elif {"b", "counts at", "sum at", "block length"} <= columns:
            problems += _check_histogram_table(table, layout)
    return problems


def documented_constants(doc_text: str) -> set[str]:
    """Constants named in a checked table's `C constant` column."""
    names = set()
    for table in parse_tables(doc_text):
        column = table.column("c constant")
        if column is not None and ({"value"} <= set(table.columns) or table.struct()):
            names |= {cells[column] for _, cells in table.rows}
    return names


def undocumented_constants(doc_text: str, headers: dict[Path, str]) -> list[str]:
    """The constants the doc must state but no checked table does: hftel.h's *_OFFSET and *_LENGTH
    macros and enum constants, and every object-like macro and enum constant of FULLY_DOCUMENTED."""
    wanted = [name for name in macro_names(headers[HEADER]) if name.endswith(("_OFFSET", "_LENGTH"))]
    wanted += enum_names(headers[HEADER])
    for path in FULLY_DOCUMENTED:
        wanted += macro_names(headers[path]) + enum_names(headers[path])
    documented = documented_constants(doc_text)
    return [name for name in dict.fromkeys(wanted) if name not in documented]


# --------------------------------------------------------------------------------------------------
# Fixtures.
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headers() -> dict[Path, str]:
    """The text of each header in HEADERS."""
    return {path: path.read_text() for path in HEADERS}


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text()


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, headers: dict[Path, str], doc_text: str) -> dict[str, int]:
    """NAME=value for every constant, offset and size, as the compiler computes them."""
    source = c_program(headers, doc_expressions(doc_text))
    return compile_and_run(source, tmp_path_factory.mktemp("layout"))


def _replace_cell(doc_text: str, row_marker: str, column: int, new_value: str) -> str:
    """The doc with one cell of the table row containing `row_marker` replaced."""
    lines = doc_text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("|") and row_marker in line:
            cells = line.strip().strip("|").split("|")
            cells[column] = f" {new_value} "
            lines[i] = "|" + "|".join(cells) + "|"
            return "\n".join(lines)
    raise AssertionError(f"no table row contains {row_marker!r}")


# --------------------------------------------------------------------------------------------------
# Tests.
# --------------------------------------------------------------------------------------------------


def test_doc_states_the_layout_version_of_the_header(doc_text, layout):
    """The doc's `**Layout version: N**` is HFTEL_LAYOUT_VERSION."""
    assert stated_layout_version(doc_text) == layout["HFTEL_LAYOUT_VERSION"]


def test_doc_has_a_layout_table_for_every_struct_of_the_abi(doc_text):
    """The segment header, the descriptor, the ring header, the ring record header, the spill file
    header and the spill frame are each described by a checked layout table."""
    described = {table.struct() for table in parse_tables(doc_text)}
    assert set(STRUCTS) <= described


def test_every_offset_size_and_value_in_the_doc_matches_the_header(doc_text, headers, layout):
    """Each checked table row states exactly what the compiled headers compute."""
    assert check_doc(doc_text, headers, layout) == []


def test_every_constant_the_doc_must_state_is_in_the_doc(doc_text, headers):
    """No HFTEL_*_OFFSET, HFTEL_*_LENGTH or enum constant of hftel.h, and no macro or enum constant of
    hftel_ring.h or hftel_writer.h, is left undocumented."""
    assert undocumented_constants(doc_text, headers) == []


def test_the_ring_and_writer_headers_are_covered(headers, layout):
    """Sanity: the printer did evaluate the new headers' constants and structs."""
    for path in FULLY_DOCUMENTED:
        assert macro_names(headers[path]) and all(name in layout for name in macro_names(headers[path]))
        assert all(name in layout for name in enum_names(headers[path]))
    assert layout["sizeof(hftel_ring_header)"] == layout["HFTEL_RING_HEADER_LENGTH"]
    assert layout["sizeof(hftel_record_header)"] == layout["HFTEL_RECORD_HEADER_LENGTH"]
    assert layout["sizeof(hftel_spill_header)"] == layout["HFTEL_SPILL_HEADER_LENGTH"]
    assert layout["sizeof(hftel_spill_frame)"] == layout["HFTEL_SPILL_FRAME_HEADER_LENGTH"]


def test_a_wrong_offset_in_the_doc_is_reported(doc_text, headers, layout):
    """Moving the epoch to offset 16 in a copy of the doc is caught, naming the field and both numbers."""
    wrong = _replace_cell(doc_text, "HFTEL_EPOCH_OFFSET", 0, "16")
    assert any("hftel_header.epoch: doc says offset 16, the header says 24" in problem
               for problem in check_doc(wrong, headers, layout))


def test_a_wrong_ring_header_offset_in_the_doc_is_reported(doc_text, headers, layout):
    """Moving the ring's head onto the head cache's line in a copy of the doc is caught."""
    wrong = _replace_cell(doc_text, "| `HFTEL_RING_HEAD_OFFSET` |", 0, "128")
    assert any("hftel_ring_header.head: doc says offset 128, the header says 256" in problem
               for problem in check_doc(wrong, headers, layout))


def test_a_wrong_size_in_the_doc_is_reported(doc_text, headers, layout):
    """Shrinking the descriptor's name field in a copy of the doc is caught as a size mismatch."""
    wrong = _replace_cell(doc_text, "HFTEL_NAME_OFFSET", 1, "64")
    assert any("hftel_descriptor.name: doc says size 64, the header says 128" in problem
               for problem in check_doc(wrong, headers, layout))


def test_a_wrong_record_header_size_in_the_doc_is_reported(doc_text, headers, layout):
    """Widening the record's pid to 8 bytes in a copy of the doc is caught."""
    wrong = _replace_cell(doc_text, "| `HFTEL_RECORD_PID_OFFSET` |", 1, "8")
    assert any("hftel_record_header.pid: doc says size 8, the header says 4" in problem
               for problem in check_doc(wrong, headers, layout))


def test_a_wrong_constant_value_in_the_doc_is_reported(doc_text, headers, layout):
    """Stating HFTEL_VALUE_ALIGNMENT as 64 in a copy of the doc is caught."""
    wrong = _replace_cell(doc_text, "| `HFTEL_VALUE_ALIGNMENT` |", 1, "64")
    assert any("doc says HFTEL_VALUE_ALIGNMENT = 64, the header says 128" in problem
               for problem in check_doc(wrong, headers, layout))


def test_a_wrong_u64_constant_above_2_to_the_63_is_reported(doc_text, headers, layout):
    """The tag key (top bit set) is compared as the unsigned number it is, and a wrong one is caught."""
    assert layout["HFTEL_RECORD_TAG_KEY"] == 0x9E3779B97F4A7C10
    wrong = _replace_cell(doc_text, "| `HFTEL_RECORD_TAG_KEY` |", 1, "0x9e3779b97f4a7c18")
    assert any(f"doc says HFTEL_RECORD_TAG_KEY = {0x9E3779B97F4A7C18}, the header says {0x9E3779B97F4A7C10}"
               in problem for problem in check_doc(wrong, headers, layout))


def test_a_wrong_sign_in_the_doc_is_reported(doc_text, headers, layout):
    """A negative enum constant (HFTEL_AUDIT_LOST, -1) stated as 1 is caught."""
    assert layout["HFTEL_AUDIT_LOST"] == -1
    wrong = _replace_cell(doc_text, "| `HFTEL_AUDIT_LOST` |", 1, "1")
    assert any("doc says HFTEL_AUDIT_LOST = 1, the header says -1" in problem
               for problem in check_doc(wrong, headers, layout))


def test_a_dropped_row_in_the_doc_is_reported(doc_text, headers, layout):
    """Deleting the heartbeat row from a copy of the doc leaves a gap and an undocumented constant."""
    wrong = "\n".join(line for line in doc_text.splitlines() if "HFTEL_HEARTBEAT_OFFSET" not in line)
    assert any("hftel_header.heartbeat_ns appears 0 times" in problem
               for problem in check_doc(wrong, headers, layout))
    assert "HFTEL_HEARTBEAT_OFFSET" in undocumented_constants(wrong, headers)


def test_a_dropped_spill_frame_row_in_the_doc_is_reported(doc_text, headers, layout):
    """Deleting the CRC row of the spill frame table from a copy of the doc is caught."""
    wrong = "\n".join(line for line in doc_text.splitlines() if not line.startswith("| 12 | 4 | u32 | `crc32` |"))
    assert wrong != doc_text
    problems = check_doc(wrong, headers, layout)
    assert any("hftel_spill_frame.crc32 appears 0 times" in problem for problem in problems)
    assert any("hftel_spill_frame table ends at 12, sizeof is 16" in problem for problem in problems)


@pytest.mark.parametrize("constant", ["HFTEL_RECORD_MAX_SHARE", "HFTEL_SPILL_FRAME_SYNC", "HFTEL_LOG_INT_TEXT",
                                      "HFTEL_PEEK_UNTAGGED"])
def test_a_dropped_ring_or_writer_constant_is_reported(doc_text, headers, constant):
    """Deleting the row of any macro or enum constant of hftel_ring.h or hftel_writer.h is caught."""
    wrong = "\n".join(line for line in doc_text.splitlines() if not line.startswith(f"| `{constant}` |"))
    assert wrong != doc_text
    assert undocumented_constants(wrong, headers) == [constant]


def test_a_wrong_layout_version_in_the_doc_is_detected(doc_text, layout):
    """A copy of the doc claiming the next layout version disagrees with HFTEL_LAYOUT_VERSION."""
    version = layout["HFTEL_LAYOUT_VERSION"]
    wrong = doc_text.replace(f"**Layout version: {version}**", f"**Layout version: {version + 1}**")
    assert stated_layout_version(wrong) != layout["HFTEL_LAYOUT_VERSION"]
