"""GenreViT: music-genre classification of whole songs with a Vision Transformer over log-Mel windows.

Importing the package is cheap: its names load on first use (PEP 562), and analysing songs (`GenreClassifier`,
`analyze_full_song`, the command line) needs only torch and numpy, not transformers.

The Hugging Face classes (`GenreViTConfig`, `GenreViTModel`, `GenreViTForAudioClassification`,
`GenreViTFeatureExtractor`, `GenreViTPreTrainedModel`) import transformers. The first use of any of them through this
package registers the model with the transformers Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForAudioClassification`, `AutoFeatureExtractor`); `register_auto_classes()` does it explicitly. Their
modules mark the classes for `register_for_auto_class`, so that `save_pretrained` writes the source files next to
the weights and the folder also loads with `trust_remote_code=True` where this package is not installed.
"""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_HUGGING_FACE_NAMES = {
    "GenreViTConfig": "configuration_genre_vit",
    "GenreViTFeatureExtractor": "feature_extraction_genre_vit",
    "GenreViTForAudioClassification": "modeling_genre_vit",
    "GenreViTModel": "modeling_genre_vit",
    "GenreViTPreTrainedModel": "modeling_genre_vit",
}
_LIBRARY_NAMES = {
    "GTZAN_GENRES": "configuration_genre_vit",
    "AudioDecodeError": "audio",
    "load_audio": "audio",
    "GenreAnalysis": "results",
    "GenreClassifier": "analysis",
    "BUNDLED_MODEL_DIR": "analysis",
    "analyze_full_song": "analysis",
}

__all__ = [
    "BUNDLED_MODEL_DIR",
    "GTZAN_GENRES",
    "AudioDecodeError",
    "GenreAnalysis",
    "GenreClassifier",
    "GenreViTConfig",
    "GenreViTFeatureExtractor",
    "GenreViTForAudioClassification",
    "GenreViTModel",
    "GenreViTPreTrainedModel",
    "analyze_full_song",
    "load_audio",
    "register_auto_classes",
]


def register_auto_classes() -> None:
    """Register GenreViT with the transformers Auto classes (idempotent; imports transformers)."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

    from .configuration_genre_vit import GenreViTConfig
    from .feature_extraction_genre_vit import GenreViTFeatureExtractor
    from .modeling_genre_vit import GenreViTForAudioClassification, GenreViTModel

    AutoConfig.register(GenreViTConfig.model_type, GenreViTConfig, exist_ok=True)
    AutoModel.register(GenreViTConfig, GenreViTModel, exist_ok=True)
    AutoModelForAudioClassification.register(GenreViTConfig, GenreViTForAudioClassification, exist_ok=True)
    AutoFeatureExtractor.register(GenreViTConfig, GenreViTFeatureExtractor, exist_ok=True)


def __getattr__(name: str):
    if name in _HUGGING_FACE_NAMES:
        register_auto_classes()
        value = getattr(importlib.import_module(f".{_HUGGING_FACE_NAMES[name]}", __name__), name)
    elif name in _LIBRARY_NAMES:
        value = getattr(importlib.import_module(f".{_LIBRARY_NAMES[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from .analysis import BUNDLED_MODEL_DIR, GenreClassifier, analyze_full_song
    from .audio import AudioDecodeError, load_audio
    from .configuration_genre_vit import GTZAN_GENRES, GenreViTConfig
    from .feature_extraction_genre_vit import GenreViTFeatureExtractor
    from .modeling_genre_vit import (
        GenreViTForAudioClassification,
        GenreViTModel,
        GenreViTPreTrainedModel,
    )
    from .results import GenreAnalysis
