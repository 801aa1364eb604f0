"""The training workbench: everything that makes, evaluates and ships a model, on top of the inference library.

- `data`: GTZAN-shaped folders and Hub datasets -> tracks -> track-level splits -> cached windows;
- `trainer`: training with the Hugging Face `Trainer` (`train.py`);
- `distillation`: teacher targets and the training-only auxiliary head;
- `evaluation`, `metrics`: window- and track-level evaluation and reports (`evaluate.py`);
- `cross_validation`: k-fold cross-validation by track and the model to ship (`cross_validate.py`);
- `model_card`: the model cards of trained models.

It depends on the library (`genre_vit`); the library never imports it. It needs the training extras
(`datasets`, `accelerate`, `scikit-learn`), imported by the modules that use them.
"""
