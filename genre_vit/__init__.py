"""GenreViT: music-genre classification of whole songs with a Vision Transformer over log-Mel windows.

Importing the package registers the model with the transformers Auto classes (`AutoConfig`,
`AutoModelForAudioClassification`, `AutoFeatureExtractor`) and marks its classes for `register_for_auto_class`,
so that `save_pretrained` writes the source files next to the weights and the folder also loads with
`trust_remote_code=True` where this package is not installed.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from .configuration_genre_vit import GTZAN_GENRES, GenreViTConfig
from .feature_extraction_genre_vit import GenreViTFeatureExtractor
from .modeling_genre_vit import GenreViTForAudioClassification, GenreViTModel, GenreViTPreTrainedModel

AutoConfig.register(GenreViTConfig.model_type, GenreViTConfig, exist_ok=True)
AutoModel.register(GenreViTConfig, GenreViTModel, exist_ok=True)
AutoModelForAudioClassification.register(GenreViTConfig, GenreViTForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(GenreViTConfig, GenreViTFeatureExtractor, exist_ok=True)

GenreViTConfig.register_for_auto_class()
GenreViTModel.register_for_auto_class("AutoModel")
GenreViTForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
GenreViTFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

from .analysis import GenreClassifier, analyze_full_song  # noqa: E402
from .audio import AudioDecodeError, load_audio  # noqa: E402
from .results import GenreAnalysis  # noqa: E402

__version__ = "0.1.0"

__all__ = [
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
]
