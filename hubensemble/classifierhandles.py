"""Handles that name an image *classification* model rather than a feature vector.

TF Hub publishes most ImageNet models twice, a feature vector (pooled features, for a new
head: transfer learning) and a classification module (the publisher's class logits):
https://www.tensorflow.org/hub/common_saved_model_apis/images. Both load and rank; only the
handle tells them apart before anything loads, so `catalogue validate` and the module
runtime say which one a user wrote and what to catalogue instead. Pure string checks (no
file system, no TensorFlow). Also `HEAD_PASS`, the layers of a Keras classifier's
convolutional head, which `hub.sources` and `hub.locate` cut a model before.
"""

from __future__ import annotations

import re
import urllib.parse

from hubensemble.handlewarnings import field_source
from hubensemble.kagglehandles import kaggle_parts

#: Layers a convolutional classifier head passes its logits through to the model's output
#: (keras.applications' MobileNet: Reshape, Activation; MobileNetV3: Flatten, Activation).
HEAD_PASS = ("Activation", "Softmax", "Reshape", "Flatten", "Dropout")


def classifier_handle(handle) -> str | None:
    """For a TF Hub / Kaggle handle that names an image *classification* model (tfhub.dev's
    ``…/classification/N`` or ``…/classifier/…``, a Kaggle variation ``…classification…``),
    whose output is class logits, not features: the advice to give, naming its feature-vector
    variant when the naming rule gives one (TF Hub publishes most ImageNet models as both:
    https://www.tensorflow.org/hub/common_saved_model_apis/images); else None."""
    parts = kaggle_parts(handle) if isinstance(handle, str) else None
    if parts is not None and "classification" in parts[3].lower():
        twin = "/".join(parts[:3] + (re.sub("(?i)classification", "feature-vector", parts[3]),
                                     parts[4]))
        return f"its feature-vector variation (https://www.kaggle.com/models/{twin})"
    split = urllib.parse.urlsplit(handle if isinstance(handle, str) else "")
    segments = split.path.strip("/").split("/")
    if split.netloc.lower() != "tfhub.dev" or not {"classification", "classifier"} & set(
            segments):
        return None
    if "classification" in segments:
        segments[segments.index("classification")] = "feature_vector"
        return f"its feature_vector variant (https://tfhub.dev/{'/'.join(segments)})"
    return "a feature_vector module"


def classifier_handle_warnings(specs) -> list[str]:
    """A warning line per entry whose handle names a classification model
    (`classifier_handle`): rank embeds its class logits, which a new head can train on, but
    it is not the feature vector transfer learning means."""
    return [f"warning: {field_source(spec, 'handle')}: handle '{spec.handle}' names a "
            f"classification module: "
            f"it returns class logits, not features; for transfer, catalogue {advice}"
            for spec in specs for advice in [classifier_handle(spec.handle)] if advice]
