"""FitOptions: every choice of a fit, one field per option of the table whose record is
"fit" (hubensemble.options), checked as it is made. Apart from pipeline (which re-exports
it, and whose name it keeps: `pipeline.FitOptions`, pickled and shown so): the command
line's checks before TensorFlow (`preflight`) build one without importing the pipeline,
which imports them."""

import dataclasses

from hubensemble import options as option_table
from hubensemble.errors import checks_keywords


def _options_post_init(self):
    """Holds a numpy scalar as Python's (np.int64(3) as 3: `.item()`) and a tuple or numpy
    array of module names as a list, as run.json holds them, then checks every field
    (`options.check_record`): top_k=np.int64(3) keyed the stages otherwise than top_k=3 (a
    resumed fit of the same options typed the other way was refused as "written by an older
    hubensemble"), and modules=np.array([...]) stopped in the check ("The truth value of an
    array … is ambiguous"). A float option's int, threshold=0, is held as typed (run.json
    records it so); the stages key it as its float, as `--threshold 0` types it
    (`stagerecords.stage_keys`), and a run keyed from the int before still matches
    (`stagerecords.same_key`)."""
    import numpy as np

    for o in option_table.options_for(record="fit"):
        value = getattr(self, o.name)
        if isinstance(value, np.generic):
            setattr(self, o.name, value.item())
        elif o.nargs in ("+", "*") and isinstance(value, (tuple, np.ndarray)):
            setattr(self, o.name, value.tolist() if isinstance(value, np.ndarray) else list(value))
    option_table.check_record("fit", self)


def _for_stage(self, stage):
    """{option: value} of the options the result of `stage` depends on; an option added since
    runs were fitted (`Option.keyed_at_default` false) only when given, so those runs' keys
    stay theirs."""
    values = {f: getattr(self, f) for f in self.STAGE_FIELDS[stage]}
    return {f: v for f, v in values.items()
            if option_table.get(f).keyed_at_default or v != option_table.get(f).default}


# Every choice of a fit: one field per option of hubensemble.options whose record is "fit",
# with the table's default, in the table's order; values are checked against the table.
# A mistyped field names the one meant: FitOptions(topk=3) "(did you mean top_k?)".
FitOptions = checks_keywords(dataclasses.make_dataclass(
    "FitOptions", option_table.dataclass_fields("fit"),
    namespace={
        "__doc__": "Every choice of a fit (the options of hubensemble.options whose record is "
                   "'fit'; defaults = the paper's, except the profile, `cpu`, which a CPU "
                   "can finish). A value outside an option's type, choices or range raises "
                   "options.OptionError.\n\n"
                   "STAGE_FIELDS[stage]: the options whose change invalidates that stage (and "
                   "so every later one); derived from the table's `invalidates`.",
        "__post_init__": _options_post_init,
        "STAGE_FIELDS": option_table.stage_fields("fit"),
        "for_stage": _for_stage,
    }))
FitOptions.__module__ = "hubensemble.pipeline"  # its public home, as before
