"""A value a public function refused, in words: its type, size and first items (`described`),
and the one type check of an argument that says them (`typed`). TensorFlow-free."""


def described(value) -> str:
    """A value a function refused, in at most about 100 characters, for its TypeError: its
    type, then an array as "ndarray uint8 [40, 32, 32, 3]" (any object with dtype and
    shape), a path as "PosixPath 'runs/a'", a record with a name (a ModuleSpec, a Task, a
    Keras model) as "ModuleSpec 'alpha'", bytes as their length and first bytes, anything
    else as a shortened repr ("int 5"); a list or tuple as its length and first items, their
    type said once when they share it: "list of 2 ModuleSpec ('alpha', 'beta')", "list of 2
    ndarray (uint8 [40, 32, 32, 3], int64 [40])", "tuple of 2 (int 32, bool True)". A list
    of arrays printed ~460 characters of numbers, a list of catalogue entries "list of 2
    (ModuleSpec ModuleSpec(na...ne, source=''), …" (new-user checks)."""
    kind, detail = _described_parts(value)
    return f"{kind} {detail}"


def _described_parts(value) -> tuple[str, str]:
    """(type name, the rest of `described`'s words) of `value`."""
    import os
    import reprlib

    kind = type(value).__name__
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return kind, f"{value.dtype} {list(value.shape)}"
    if isinstance(value, (list, tuple)):
        parts = [_described_parts(v) for v in value[:3]]
        more = ", …" if len(value) > 3 else ""
        if not parts:
            return kind, "of 0"
        if len({type(v) for v in value}) == 1:  # one type: said once
            return kind, f"of {len(value)} {parts[0][0]} ({', '.join(d for _, d in parts)}{more})"
        return kind, f"of {len(value)} ({', '.join(f'{k} {d}' for k, d in parts)}{more})"
    if isinstance(value, (bytes, bytearray)):
        return kind, f"of {len(value)} bytes starting {bytes(value[:8])!r}"
    if isinstance(value, os.PathLike):
        return kind, reprlib.repr(os.fspath(value))
    name = getattr(value, "name", None)
    if isinstance(name, str) and not isinstance(value, str):  # a record: its repr is long
        return kind, reprlib.repr(name)
    return kind, reprlib.repr(value)


def typed(function: str, name: str, value, kinds, what: str, *, example: str | None = None):
    """`value` when it is an instance of `kinds` (a type or tuple of types), else TypeError
    "`function`() `name` must be `what`, got TYPE VALUE" (`described`), with "; e.g.
    `name`=`example`" when `example` is given. A bool is no int or float here (True is not
    1) unless bool is one of `kinds`. The one type check of a public function's argument
    that is neither a folder (`stageargs.folder`), a Task (`stageargs.task`) nor an option
    (`options.check`): shipped_catalogue's name, load_module's, greedy_select's arrays."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool)):
        return value
    raise TypeError(f"{function}() {name} must be {what}, got {described(value)}"
                    + (f"; e.g. {name}={example}" if example else ""))
