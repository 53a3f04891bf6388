"""Which layer versions a `layers delete` would remove: a pure choice, made before anything is asked."""

from __future__ import annotations

from packer.errors import UsageError


def select_for_deletion(existing: list[int], explicit: tuple[int, ...] = (), *, all_versions: bool = False,
                        keep: int | None = None) -> list[int]:
    """Versions to delete, newest first.

    Exactly one way of choosing must be given: version numbers, `--all`, or `--keep N` (delete all
    but the newest N). Naming a version that does not exist is an error rather than a silent no-op,
    because it usually means the wrong layer or region."""
    ways = sum([bool(explicit), all_versions, keep is not None])
    if ways != 1:
        raise UsageError("say which versions to delete: VERSION..., --all, or --keep N (exactly one)")
    live = sorted(set(existing), reverse=True)
    if explicit:
        missing = sorted(set(explicit) - set(live))
        if missing:
            raise UsageError(f"no version {', '.join(map(str, missing))} "
                             f"(live versions: {', '.join(map(str, live)) or 'none'})")
        return sorted(set(explicit), reverse=True)
    if all_versions:
        return live
    assert keep is not None
    if keep < 0:
        raise UsageError("--keep must be 0 or more")
    return live[keep:]
