"""The drill's row-exact verdict, on hand-made rows (no database needed)."""

from __future__ import annotations

from pcbackup.drill import compare

BEFORE = {1: (1, "old-1", "2026-11-27T10:00:00.000001Z")}
A = [(2, "drill-a-0", "2026-11-27T10:00:01.000001Z"), (3, "drill-a-1", "2026-11-27T10:00:01.000002Z")]
B = [(5, "drill-b-0", "2026-11-27T10:00:03.000001Z")]
FOREIGN = (4, "someone-else", "2026-11-27T10:00:02.000001Z")
SOURCE_AFTER = {row[0]: row for row in [*BEFORE.values(), *A, FOREIGN, *B]}


def restored(*rows: tuple[int, str, str]) -> dict[int, tuple[int, str, str]]:
    return {row[0]: row for row in rows}


def test_exact_restore_passes_strict() -> None:
    """Given exactly the old rows and batch A restored, then the drill passes even in strict mode."""
    verdict = compare(BEFORE, A, B, SOURCE_AFTER, restored(*BEFORE.values(), *A))
    assert (verdict.ok(strict=True), verdict.missing, verdict.after_target) == (True, [], [])


def test_missing_acknowledged_stamp_fails() -> None:
    """Given one stamp of batch A absent from the restore, then the verdict names it and fails."""
    verdict = compare(BEFORE, A, B, SOURCE_AFTER, restored(*BEFORE.values(), A[0]))
    assert (verdict.ok(strict=False), verdict.missing) == (False, [A[1]])


def test_altered_row_counts_as_missing() -> None:
    """Given a restored row whose timestamp differs from its receipt, then it is reported as missing."""
    altered = (A[0][0], A[0][1], "2026-11-27T10:00:01.000009Z")
    verdict = compare(BEFORE, A, B, SOURCE_AFTER, restored(*BEFORE.values(), altered, A[1]))
    assert verdict.missing == [A[0]]


def test_stamp_after_target_fails() -> None:
    """Given a stamp written after the target in the restore, then the drill fails and names it."""
    verdict = compare(BEFORE, A, B, SOURCE_AFTER, restored(*BEFORE.values(), *A, *B))
    assert (verdict.ok(strict=False), verdict.after_target) == (False, B)


def test_other_clients_rows_pass_only_when_not_strict() -> None:
    """Given a row another client committed before the target, then a live drill accepts it, a strict one not."""
    verdict = compare(BEFORE, A, B, SOURCE_AFTER, restored(*BEFORE.values(), *A, FOREIGN))
    assert (verdict.foreign, verdict.ok(strict=False), verdict.ok(strict=True)) == (1, True, False)


def test_row_unknown_to_the_source_fails() -> None:
    """Given a restored row the source never had, then the drill fails even when not strict."""
    ghost = (9, "ghost", "2026-11-27T10:00:02.500000Z")
    verdict = compare(BEFORE, A, B, SOURCE_AFTER, restored(*BEFORE.values(), *A, ghost))
    assert (verdict.unknown, verdict.ok(strict=False)) == ([ghost], False)
