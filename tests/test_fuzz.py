"""A short, bounded fuzzing run in CI (issue 15): mutated real ELF files through the reader, the
symbol reader and `analyze` in process, and through `layerpack analyze`; mutated and hostile zips
through analyze/check/vendor. Any traceback, other exit code, hang or write outside fails.
The long run (20,000 + 1,000 mutants) is `python bench/fuzz_long.py`; on the code before issue 15
the same generator found 61 crashes in its first 1,000 library mutants (IsADirectoryError).
"""

from __future__ import annotations

import pytest

from tests import fuzzing


@pytest.fixture
def work(tmp_path):
    return tmp_path


def test_elf_mutants_through_the_library_never_crash_or_hang(work):
    tally = fuzzing.Tally()
    one = work / "lib"
    one.mkdir()
    for what, data in fuzzing.elf_mutants(300, seed=15):
        verdict = fuzzing.elf_library(data, one)
        tally.add(verdict, f"{what}: {verdict}")
    assert tally.failures == {}, tally.line("library")


def test_elf_mutants_through_the_cli_are_a_result_or_one_line(work):
    tally = fuzzing.Tally()
    for i, (what, data) in enumerate(fuzzing.elf_mutants(6, seed=16)):
        tally.add(*reversed(fuzzing.elf_cli_case(what, data, work, i)))
    assert tally.failures == {}, tally.failures


def test_zip_mutants_and_attacks_through_the_cli_never_crash_hang_or_write_outside(work):
    tally = fuzzing.Tally()
    for i in range(12):
        what, verdict = fuzzing.zip_case(i, 17, work)
        tally.add(verdict, f"{what}: {verdict}")
    assert tally.failures == {}, tally.failures
