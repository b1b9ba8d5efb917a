"""A ranking row's notes: what the module's load warned of that changes what its score means
(a model fed the wrong value range sees every image nearly black, a classifier's logits or
probabilities, a module used frozen), kept in ranking.json's row ("notes", a list of str) by
`run_rank`, shown in the report's Ranking table and said again by a fit that reuses the
ranking (`note_lines`). A ranking written before they were kept reads as having none."""

from __future__ import annotations

from hubensemble.text import escaped


def module_notes(said, name) -> list[str]:
    """The notes of ranking.json's row of the module `name` (str): the texts of `said` (its
    load-time warnings, `hub.notices.captured`: a model fed the wrong value range, a
    classifier's logits or probabilities, a module used frozen: each changes what its score
    means) without their "module NAME (HANDLE): " lead, each once, in order."""
    lead, notes = f"module {name}", []
    for text in said:
        if text.startswith(lead + " (") and "): " in text:
            text = text[text.index("): ") + 3:]
        elif text.startswith(lead + ": "):
            text = text[len(lead) + 2:]
        if text not in notes:
            notes.append(text)
    return notes


def row_notes(row, *, short=False) -> list[str]:
    """A ranking.json row's "notes" (`module_notes`; [] for a row written before they were
    kept, or not a list of str); `short`: each as `_short_note` (what it means for the
    score, without the fix: the report's table and fit's reuse line)."""
    notes = row.get("notes")
    notes = [n for n in notes if isinstance(n, str)] if isinstance(notes, list) else []
    return [_short_note(n) for n in notes] if short else notes


def _short_note(note):
    """`note` up to its first "; " or ". " (its fix left out); longer than 100 characters,
    what follows its last ": " (what the score is of: "it sees every image nearly black")."""
    said = min((note[:note.index(end)] for end in ("; ", ". ") if end in note), key=len,
               default=note)
    if len(said) > 100 and ": " in said:
        tail = said[said.rindex(": ") + 2:]
        said = tail if len(tail) <= 100 else said[:99] + "…"
    return said


def note_lines(ranking) -> list[str]:
    """One line per module of `ranking` (a Ranking) whose row has notes (`row_notes`, short),
    for fit to say again when it reuses the ranking: its warnings were said once, when rank
    loaded the module ("rank: module m (0.8125): … it sees every image nearly black; its
    notes in ranking.json")."""
    return [f"rank: module {escaped(r['name'])}" + (
        f" ({r['score']:.4f})" if isinstance(r.get("score"), float) else "")
        + f": {'; '.join(row_notes(r, short=True))} (the fix: its notes in ranking.json)"
        for r in ranking.rows if row_notes(r)]
