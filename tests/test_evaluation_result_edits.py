"""A saved evaluation result (RUN/robustness.json, `evaluate_model`'s dict) edited by hand or by
a tool: a "task" that is no JSON object, a held-out record ("not_held_out", "data_changed")
without the counts its writers write. The report, evaluate's table and the held-out notes read
such a field as not recorded, as the rest of the package does (`fileio.json_object`,
`exportfolder.task_record`); they raised AttributeError, KeyError or TypeError."""

from test_report import N_TEST, fake_robustness, make_full_run, shown

from hubensemble import report
from hubensemble.evaluate import write_evaluation
from hubensemble.evaluationtext import format_evaluation
from hubensemble.heldout import changed_files_note, not_held_out_note


def _edited(**fields) -> dict:
    """fake_robustness's result with `fields` as a hand edit left them."""
    return {**fake_robustness(with_single=True), **fields}


def test_held_out_notes_read_a_record_without_its_counts():
    """"run" and "added"/"removed"/"present" gone: the note is still said, without them."""
    seen = {"images": 3, "train": 3}
    note = not_held_out_note(_edited(not_held_out=seen))
    assert note.startswith(f"3 of {N_TEST} test images are training (3) images"), note
    assert "the run: not recorded" in note, note
    copies = not_held_out_note(_edited(not_held_out=seen, same_data_as_export=True))
    assert copies and "not recorded" in copies, copies
    changed = {"folder": "/data/photos", "recorded": 30, "train": 19, "val": 5, "test": 5}
    note = changed_files_note(_edited(data_changed=changed))
    assert note and note.startswith("/data/photos holds ? of the 30 files"), note
    for damaged in ("x", ["run"], 3):  # no object at all: nothing known, nothing said
        assert not_held_out_note(_edited(not_held_out=damaged)) is None
        assert changed_files_note(_edited(data_changed=damaged)) is None


def test_evaluate_table_reads_a_task_that_is_no_object():
    """format_evaluation of a result whose "task" is a string, whose held-out records lack
    their "run" and "folder": the table, without the lines those would give."""
    for task in ("photos", ["a"], 3):
        table = format_evaluation(_edited(task=task, not_held_out={"images": 2, "train": 2}))
        assert table.startswith("Robustness on the test split"), table
        assert f"2 of the {N_TEST} scored images are training (2) images" in table, table
        assert "skipped" not in table
    table = format_evaluation(_edited(data_changed={"train": 4, "val": 1}))
    assert f"5 of the {N_TEST} scored images are training (4) or validation (1)" in table, table


def test_report_of_an_edited_robustness_json(tmp_path, figures_not_drawn):
    """The report of a run whose robustness.json's "task" is a string says it is damaged,
    naming the file and the field; a held-out record without "run" or "added" is shown
    without them."""
    make_full_run(tmp_path, robustness=False, seed=3)
    write_evaluation(_edited(task="photos"), tmp_path / "robustness.json")
    md = shown(report.write_report(tmp_path)[0].read_text())
    assert 'robustness.json is unreadable (damaged: its "task" is a JSON string' in md, md
    write_evaluation(_edited(not_held_out={"images": 30, "train": 24, "val": 6},
                             data_changed={"folder": "/data/photos", "recorded": 30,
                                           "train": 19, "val": 5, "test": 5}),
                     tmp_path / "robustness.json")
    md = shown(report.write_report(tmp_path)[0].read_text())
    assert (f"**Warning:** 30 of {N_TEST} test images are training (24) or validation (6) "
            "images of this export's run") in md, md[md.find("Robustness"):][:1500]
    assert "**Warning:** /data/photos holds ? of the 30 files" in md
