"""A value a public function refused, in words: its type, size and first items (`described`),
and the one type check of an argument that says them (`typed`). TensorFlow-free."""


def described(value) -> str:
    """A value a function refused, in at most about 100 characters, for its TypeError: an
    array as "ndarray uint8 [40, 32, 32, 3]" (any object with dtype and shape), a list or
    tuple as its length and first items, bytes as their length and first bytes, anything
    else as its type and a shortened repr ("int 5"). A list of arrays printed ~460
    characters of numbers (a new-user check)."""
    import reprlib

    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return f"{type(value).__name__} {value.dtype} {list(value.shape)}"
    if isinstance(value, (list, tuple)):
        items = ", ".join(described(v) for v in value[:3]) + (", …" if len(value) > 3 else "")
        return f"{type(value).__name__} of {len(value)} ({items})"
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__} of {len(value)} bytes starting {bytes(value[:8])!r}"
    return f"{type(value).__name__} {reprlib.repr(value)}"


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
