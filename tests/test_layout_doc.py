"""docs/layout.md against cext/hftel.h: every number the doc states is the number the compiler sees.

A small C program is generated from the headers (every object-like HFTEL_* macro, every enum
constant, offsetof/sizeof of every member of the header and descriptor structs, the histogram block
geometry for every bucket count, and each `C expression` the doc quotes), compiled with the system
`cc` and run. Its `NAME=value` lines are compared with the doc's machine-checked tables:

  * layout tables   -- columns Offset, Size, C constant and "`STRUCT` member";
  * constant tables -- columns C constant and Value;
  * expression tables -- columns C expression and Value;
  * the histogram block table -- columns B, Counts at, Sum at and Block length.
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
DOC = REPO / "docs" / "layout.md"
STRUCTS = ("hftel_header", "hftel_descriptor")
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
    assert match, f"struct {struct} not found in {HEADER}"
    body = re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.DOTALL)
    return re.findall(r"(\w+)\s*(?:\[[^\]]*\])?\s*;", body)


def c_program(header_text: str, registry_text: str, expressions: list[str]) -> str:
    """A C program printing NAME=value for everything the doc may state."""
    lines = ['#include <stdio.h>', '#include "hftel_registry.h"', "", "int main(void)", "{"]

    def emit(label: str, expression: str) -> None:
        text = label.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'    printf("%s=%lld\\n", "{text}", (long long)({expression}));')

    for name in dict.fromkeys(macro_names(header_text) + macro_names(registry_text)):
        emit(name, name)
    for name in dict.fromkeys(enum_names(header_text) + enum_names(registry_text)):
        emit(name, name)
    for struct in STRUCTS:
        emit(f"sizeof({struct})", f"sizeof({struct})")
        for member in struct_members(header_text, struct):
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
    """The first integer in a cell (decimal or 0x hex), or None."""
    match = re.search(r"\b0x[0-9a-fA-F]+\b|\b\d+\b", cell)
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


def _check_layout_table(table: Table, header_text: str, layout: dict[str, int]) -> list[str]:
    struct = table.struct()
    members = struct_members(header_text, struct) if struct in STRUCTS else None
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
            problems.append(f"{where}: no such member in {HEADER.name}")
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


def check_doc(doc_text: str, header_text: str, layout: dict[str, int]) -> list[str]:
    """Every disagreement between the doc's checked tables and the compiled header, as sentences."""
    problems = []
    for table in parse_tables(doc_text):
        columns = set(table.columns)
        if {"offset", "size"} <= columns and table.struct():
            problems += _check_layout_table(table, header_text, layout)
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


def undocumented_constants(doc_text: str, header_text: str) -> list[str]:
    """hftel.h's *_OFFSET and *_LENGTH macros and enum constants that no checked table states."""
    wanted = [name for name in macro_names(header_text) if name.endswith(("_OFFSET", "_LENGTH"))]
    wanted += enum_names(header_text)
    documented = documented_constants(doc_text)
    return [name for name in wanted if name not in documented]


# --------------------------------------------------------------------------------------------------
# Fixtures.
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def header_text() -> str:
    return HEADER.read_text()


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text()


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, header_text: str, doc_text: str) -> dict[str, int]:
    """NAME=value for every constant, offset and size, as the compiler computes them."""
    source = c_program(header_text, REGISTRY.read_text(), doc_expressions(doc_text))
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


def test_doc_has_a_layout_table_for_the_header_and_the_descriptor(doc_text):
    """Both structs of the ABI are described by a checked layout table."""
    described = {table.struct() for table in parse_tables(doc_text)}
    assert set(STRUCTS) <= described


def test_every_offset_size_and_value_in_the_doc_matches_the_header(doc_text, header_text, layout):
    """Each checked table row states exactly what the compiled header computes."""
    assert check_doc(doc_text, header_text, layout) == []


def test_every_offset_length_and_enum_constant_of_the_header_is_in_the_doc(doc_text, header_text):
    """No HFTEL_*_OFFSET, HFTEL_*_LENGTH or enum constant of hftel.h is left undocumented."""
    assert undocumented_constants(doc_text, header_text) == []


def test_a_wrong_offset_in_the_doc_is_reported(doc_text, header_text, layout):
    """Moving the epoch to offset 16 in a copy of the doc is caught, naming the field and both numbers."""
    wrong = _replace_cell(doc_text, "HFTEL_EPOCH_OFFSET", 0, "16")
    assert any("hftel_header.epoch: doc says offset 16, the header says 24" in problem
               for problem in check_doc(wrong, header_text, layout))


def test_a_wrong_size_in_the_doc_is_reported(doc_text, header_text, layout):
    """Shrinking the descriptor's name field in a copy of the doc is caught as a size mismatch."""
    wrong = _replace_cell(doc_text, "HFTEL_NAME_OFFSET", 1, "64")
    assert any("hftel_descriptor.name: doc says size 64, the header says 128" in problem
               for problem in check_doc(wrong, header_text, layout))


def test_a_wrong_constant_value_in_the_doc_is_reported(doc_text, header_text, layout):
    """Stating HFTEL_VALUE_ALIGNMENT as 64 in a copy of the doc is caught."""
    wrong = _replace_cell(doc_text, "| `HFTEL_VALUE_ALIGNMENT` |", 1, "64")
    assert any("doc says HFTEL_VALUE_ALIGNMENT = 64, the header says 128" in problem
               for problem in check_doc(wrong, header_text, layout))


def test_a_dropped_row_in_the_doc_is_reported(doc_text, header_text, layout):
    """Deleting the heartbeat row from a copy of the doc leaves a gap and an undocumented constant."""
    wrong = "\n".join(line for line in doc_text.splitlines() if "HFTEL_HEARTBEAT_OFFSET" not in line)
    assert any("hftel_header.heartbeat_ns appears 0 times" in problem
               for problem in check_doc(wrong, header_text, layout))
    assert "HFTEL_HEARTBEAT_OFFSET" in undocumented_constants(wrong, header_text)


def test_a_wrong_layout_version_in_the_doc_is_detected(doc_text, layout):
    """A copy of the doc claiming the next layout version disagrees with HFTEL_LAYOUT_VERSION."""
    version = layout["HFTEL_LAYOUT_VERSION"]
    wrong = doc_text.replace(f"**Layout version: {version}**", f"**Layout version: {version + 1}**")
    assert stated_layout_version(wrong) != layout["HFTEL_LAYOUT_VERSION"]
