"""The resolver of ``zoo:PRESET/NAME`` handles, registered with hub by entry point (no cycle)."""

from hubensemble.zoo.cache import module_path


class ZooResolver:
    """``zoo:PRESET/NAME``: module NAME of a preset zoo in the user cache, built on first use.

    hubensemble.hub finds it through the entry point ``zoo`` of the group
    ``hubensemble.resolvers`` (setup.cfg) the first time it meets a ``zoo:`` handle; hub never
    imports the zoo. Same protocol as tensorflow_hub's resolvers: ``is_supported(handle)`` and
    ``__call__(handle) -> local folder``. A first use trains the whole preset (minutes for
    ``demo``); its progress bar says "building zoo 'demo' for zoo:demo/NAME". Raises
    ModuleLoadError for an unknown preset or module.
    """

    def is_supported(self, handle):
        """``zoo:…`` handles."""
        return handle.startswith("zoo:")

    def __call__(self, handle):
        preset, _, name = handle[len("zoo:"):].partition("/")
        return module_path(preset, name)
