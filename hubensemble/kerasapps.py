"""The ``keras:NAME`` architectures: every image classifier of ``keras.applications`` as a
feature-vector module, with its input size, pooled width, parameter count and preprocessing.

A data table only (no TensorFlow, no Keras imported); `handles` re-exports it, where callers
look it up (``handles.KERAS_APPLICATIONS``, ``handles.keras_application``).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class KerasApplication:
    """One ``keras.applications`` architecture as a ``keras:NAME`` feature-vector module.

    ``module``: its sub-module of keras.applications (whose ``preprocess_input`` hubensemble
    puts inside the model); ``input_size``: the resolution its ImageNet weights were trained
    at (the Keras documentation's default input shape); ``min_size``: the smallest side Keras
    builds it at (``imagenet_utils.obtain_input_shape``); ``output_dim``: the width of its
    global-average-pooled features (``include_top=False, pooling="avg"``); ``params``: its
    parameter count without the top; ``preprocessing``: what ``preprocess_input`` does to
    pixels in [0, 255] — "tf" (to [-1, 1]), "caffe" (RGB->BGR, minus the ImageNet mean),
    "torch" ([0, 1], then ImageNet mean/std) or "inside" (none: the model rescales itself).
    Source: https://keras.io/api/applications/ and keras/src/applications/*.py (Keras 3.15);
    dims and parameter counts measured by building each with ``weights=None``.
    """

    module: str
    input_size: int
    min_size: int
    output_dim: int
    params: int
    preprocessing: str


def _apps(rows):
    return {name: KerasApplication(*row) for name, row in rows.items()}


#: ``keras:NAME`` architectures (every image classifier of keras.applications in Keras 3.15).
KERAS_APPLICATIONS: dict[str, KerasApplication] = _apps({
    "ConvNeXtTiny": ("convnext", 224, 32, 768, 27820128, "inside"),
    "ConvNeXtSmall": ("convnext", 224, 32, 768, 49454688, "inside"),
    "ConvNeXtBase": ("convnext", 224, 32, 1024, 87566464, "inside"),
    "ConvNeXtLarge": ("convnext", 224, 32, 1536, 196230336, "inside"),
    "ConvNeXtXLarge": ("convnext", 224, 32, 2048, 348147968, "inside"),
    "DenseNet121": ("densenet", 224, 32, 1024, 7037504, "torch"),
    "DenseNet169": ("densenet", 224, 32, 1664, 12642880, "torch"),
    "DenseNet201": ("densenet", 224, 32, 1920, 18321984, "torch"),
    "EfficientNetB0": ("efficientnet", 224, 32, 1280, 4049571, "inside"),
    "EfficientNetB1": ("efficientnet", 240, 32, 1280, 6575239, "inside"),
    "EfficientNetB2": ("efficientnet", 260, 32, 1408, 7768569, "inside"),
    "EfficientNetB3": ("efficientnet", 300, 32, 1536, 10783535, "inside"),
    "EfficientNetB4": ("efficientnet", 380, 32, 1792, 17673823, "inside"),
    "EfficientNetB5": ("efficientnet", 456, 32, 2048, 28513527, "inside"),
    "EfficientNetB6": ("efficientnet", 528, 32, 2304, 40960143, "inside"),
    "EfficientNetB7": ("efficientnet", 600, 32, 2560, 64097687, "inside"),
    "EfficientNetV2B0": ("efficientnet_v2", 224, 32, 1280, 5919312, "inside"),
    "EfficientNetV2B1": ("efficientnet_v2", 240, 32, 1280, 6931124, "inside"),
    "EfficientNetV2B2": ("efficientnet_v2", 260, 32, 1408, 8769374, "inside"),
    "EfficientNetV2B3": ("efficientnet_v2", 300, 32, 1536, 12930622, "inside"),
    "EfficientNetV2S": ("efficientnet_v2", 384, 32, 1280, 20331360, "inside"),
    "EfficientNetV2M": ("efficientnet_v2", 480, 32, 1280, 53150388, "inside"),
    "EfficientNetV2L": ("efficientnet_v2", 480, 32, 1280, 117746848, "inside"),
    "InceptionResNetV2": ("inception_resnet_v2", 299, 75, 1536, 54336736, "tf"),
    "InceptionV3": ("inception_v3", 299, 75, 2048, 21802784, "tf"),
    "MobileNet": ("mobilenet", 224, 32, 1024, 3228864, "tf"),
    "MobileNetV2": ("mobilenet_v2", 224, 32, 1280, 2257984, "tf"),
    "MobileNetV3Small": ("mobilenet_v3", 224, 32, 576, 939120, "inside"),
    "MobileNetV3Large": ("mobilenet_v3", 224, 32, 960, 2996352, "inside"),
    "NASNetMobile": ("nasnet", 224, 32, 1056, 4269716, "tf"),
    "NASNetLarge": ("nasnet", 331, 32, 4032, 84916818, "tf"),
    "ResNet50": ("resnet", 224, 32, 2048, 23587712, "caffe"),
    "ResNet101": ("resnet", 224, 32, 2048, 42658176, "caffe"),
    "ResNet152": ("resnet", 224, 32, 2048, 58370944, "caffe"),
    "ResNet50V2": ("resnet_v2", 224, 32, 2048, 23564800, "tf"),
    "ResNet101V2": ("resnet_v2", 224, 32, 2048, 42626560, "tf"),
    "ResNet152V2": ("resnet_v2", 224, 32, 2048, 58331648, "tf"),
    "VGG16": ("vgg16", 224, 32, 512, 14714688, "caffe"),
    "VGG19": ("vgg19", 224, 32, 512, 20024384, "caffe"),
    "Xception": ("xception", 299, 71, 2048, 20861480, "tf"),
})
