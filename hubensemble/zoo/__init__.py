"""The offline demo zoo (demo-only): glyph upstream data, the zoo builder and its resolver.

Sub-modules, one concern each:

* `glyphs` — procedural upstream data: glyphs, shapes and textures with a label hierarchy;
* `upstream` — `UpstreamData` (any images + hierarchy), hierarchy files and checks;
* `arch` — the ResNet-v2 (GroupNorm, weight standardisation) backbones;
* `config` — `TrainSpec`, `ZooConfig`, presets, the build `plan`, catalogue entries, the
  cache location;
* `train` — upstream training with one compiled model per architecture;
* `builder` — `build_zoo`: plans the zoo, writes the folder atomically under its build lock;
* `parts` — the finished modules of a build that stopped (OUT.partial), reused by the next
  build of the same recipe;
* `workers` — trains each module, in this process or on a pool of worker processes;
* `cache` — `ensure_zoo` / `module_path`: preset zoos in the user cache, built once (again
  only when the recipe changes: `is_cached`);
* `resolver` — `ZooResolver` for ``zoo:PRESET/NAME`` handles, which hubensemble.hub loads
  through the entry point group ``hubensemble.resolvers`` (hub never imports the zoo).

Importing this package does not import TensorFlow. See docs/zoo.md.
"""

from hubensemble.zoo import glyphs
from hubensemble.zoo.arch import (ARCHITECTURES, ArchSpec, arch_label, build_backbone,
                                  count_params, per_image_standardization_class,
                                  std_conv2d_class)
from hubensemble.zoo.builder import MARKER, build_zoo, is_zoo, recorded_config, zoo_difference
from hubensemble.zoo.cache import cli_build, ensure_zoo, is_cached, module_path
from hubensemble.zoo.config import (DEMO_HEADER, LICENSE, PRESETS, RECIPE_VERSION, ModelPlan,
                                    TrainSpec, ZooConfig, demo_catalogue_specs, plan, preset,
                                    recipe_difference, write_demo_catalogue, zoo_dir, zoo_root)
from hubensemble.zoo.upstream import UpstreamData, check_hierarchy, load_hierarchy

__all__ = [
    "glyphs", "ARCHITECTURES", "ArchSpec", "arch_label", "build_backbone", "count_params",
    "per_image_standardization_class", "std_conv2d_class", "MARKER", "build_zoo", "is_zoo",
    "recorded_config", "zoo_difference", "cli_build", "ensure_zoo", "is_cached", "module_path",
    "DEMO_HEADER", "LICENSE", "PRESETS", "RECIPE_VERSION", "ModelPlan", "TrainSpec",
    "ZooConfig", "demo_catalogue_specs", "plan", "preset", "recipe_difference",
    "write_demo_catalogue", "zoo_dir", "zoo_root", "UpstreamData",
    "check_hierarchy", "load_hierarchy",
]
