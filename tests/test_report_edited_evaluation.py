"""A saved evaluation (RUN/robustness.json, `evaluate_model`'s dict) whose count, split or an
entry's "ensemble" was edited away, or whose "data_changed" or "classes" is no object: evaluate's
table, the held-out notes and the report read each as not recorded ("?", "–"), or name the
field, as they read the rest (`fileio.json_object`, `heldout.recorded_count`). They raised
KeyError or TypeError (the table), said "None examples", dropped the whole Robustness section
("could not be drawn (KeyError: 'ensemble')"), or took a "data_changed" string without a word."""

import copy

from test_report import N_TEST, fake_robustness, make_full_run, shown

from hubensemble import report
from hubensemble.evaluate import write_evaluation
from hubensemble.evaluationtext import format_evaluation
from hubensemble.heldout import changed_files_note, not_held_out_note


def _edited(edit) -> dict:
    """fake_robustness's result (with a best single member) after `edit(result)`."""
    result = copy.deepcopy(fake_robustness(with_single=True))
    edit(result)
    return result


def test_the_table_reads_a_count_split_or_entry_edited_away():
    """Fails before: KeyError 'n', 'split', 'ensemble'; TypeError of an entry string."""
    whole = format_evaluation(_edited(lambda r: None)).splitlines()
    table = format_evaluation(_edited(lambda r: r.pop("n"))).splitlines()
    assert table[0] == "Robustness on the test split (? examples; corruptions' seed 0)", table
    assert table[1:] == whole[1:]
    table = format_evaluation(_edited(lambda r: r.update(n="x", split=None))).splitlines()
    assert table[0] == "Robustness on the ? split (? examples; corruptions' seed 0)", table
    table = format_evaluation(_edited(lambda r: r["clean"].pop("ensemble"))).splitlines()
    clean = next(line for line in table if line.startswith("clean"))
    assert clean.split() == ["clean", "-", "-", "0.8625", "-", "0.1875", "-", "0.0600"], clean
    table = format_evaluation(_edited(lambda r: r["corruptions"]["jpeg"].update({"2": "x"})))
    jpeg = [line.split() for line in table.splitlines() if line.startswith("jpeg")]
    assert jpeg[1] == ["jpeg", "2"] + ["-"] * 6 and jpeg[0][2] == "0.8000", jpeg
    table = format_evaluation(_edited(lambda r: r.update(best_single="x", classes="x")))
    assert "best single member: ? (?)" in table, table


def test_the_held_out_notes_read_a_count_edited_away():
    """Fails before: KeyError 'n'."""
    seen = {"run": "/runs/r", "images": 3, "train": 3}
    note = not_held_out_note(_edited(lambda r: (r.pop("n"), r.update(not_held_out=seen))))
    assert note.startswith("3 of ? test images are training (3) images"), note
    changed = {"folder": "/data/photos", "recorded": 30, "present": 30, "added": 1,
               "train": 19, "val": 5, "test": 5}
    note = changed_files_note(_edited(lambda r: (r.pop("n"), r.update(data_changed=changed))))
    assert "all ? images are scored as test examples" in note, note


def test_the_report_reads_a_count_or_entry_edited_away_and_names_a_data_changed_string(
        tmp_path, figures_not_drawn):
    """Fails before: "(None examples)", the section not drawn, a string taken silently."""
    make_full_run(tmp_path, robustness=False, seed=3)
    path = tmp_path / "robustness.json"

    def robustness(edit) -> str:
        write_evaluation(_edited(edit), path)
        md = shown(report.write_report(tmp_path)[0].read_text())
        return md[md.index("## Robustness"):][:3000]

    section = robustness(lambda r: r.pop("n"))
    assert "The export evaluated on the test split (? examples)" in section, section
    section = robustness(lambda r: r["clean"].pop("ensemble"))
    assert "could not be drawn" not in section, section
    assert "| clean | – | – | 0.8625 | – | 0.1875 | – | 0.0600 |" in section, section
    assert f"test split ({N_TEST} examples)" in section
    section = robustness(lambda r: r.update(data_changed="x"))
    assert ('robustness.json is unreadable (damaged: its "data_changed" is a JSON string, '
            "expected an object)") in section, section


def test_the_overview_names_an_export_whose_files_cannot_load(tmp_path, figures_not_drawn):
    """RUN/export with its variables/variables.index gone, or a saved_model.pb cut short, was
    named in the Overview as the run's export without a word: predict and evaluate refuse
    it (`formats.check_saved_model_files`). The Overview says it in their words, with the
    command that writes it again. Fails before: no such line."""
    from evaluatefakes import fake_saved_model_pb

    make_full_run(tmp_path, robustness=False, seed=3)
    export = tmp_path / "export"
    (export / "assets").mkdir(parents=True, exist_ok=True)
    (export / "assets" / "hubensemble.json").write_text('{"format": "hubensemble-export"}')
    (export / "saved_model.pb").write_bytes(fake_saved_model_pb()[:9])  # cut short
    md = shown(report.write_report(tmp_path)[0].read_text())
    assert (f"The export cannot be loaded ({export}/saved_model.pb does not parse as a "
            "SavedModel (9 bytes: cut short, or damaged)); write it again with "
            f"`hubensemble export --run {tmp_path}`.") in md, md[:3000]
    (export / "saved_model.pb").write_bytes(fake_saved_model_pb())
    md = shown(report.write_report(tmp_path)[0].read_text())
    assert "The export cannot be loaded" not in md
