"""Hugging Face model cards (`README.md`) for trained models: the run, its data and split, its results, the teacher
it learned from, and its cross-validated numbers."""

from pathlib import Path

from ..configuration_genre_vit import GenreViTConfig
from ..model_folder import MIN_TRANSFORMERS_VERSION, RUN_FILE
from .metrics import report_markdown


def model_card(run: dict, config: GenreViTConfig) -> str:
    """A Hugging Face model card (README.md) for a training run."""
    splits = run["split_sizes"]
    validation = run.get("validation_metrics", {})
    labels = ", ".join(config.id2label[i] for i in range(config.num_labels))
    parameters = run["parameters"]
    probe = run.get("linear_probe")
    if probe:
        selection = "The probe's strength was chosen by cross-validation over the training and validation tracks"
        split_note = (
            "no window of a test track was trained on; the probe was fitted on the training and validation tracks."
        )
        selection_result = (
            f"Held-out window accuracy of the chosen strength in the probe's cross-validation: "
            f"{probe['cross_validation_accuracy']:.4f}"
        )
    else:
        selection = "The checkpoint was chosen on validation accuracy"
        split_note = "no window of a validation or test track was trained on."
        selection_result = (
            f"Validation window accuracy of the chosen checkpoint: {validation.get('eval_accuracy', float('nan')):.4f}"
        )
    if splits["test"]["tracks"]:
        test_note = (
            f"{selection}; the test split was not used in training or selection.\n"
            "  Test numbers come from `evaluate.py` (`report.md` beside it, when present)."
        )
    else:
        test_note = (
            f"{selection}. There is no test split, so the honest estimate of accuracy on unseen tracks is the\n"
            "  cross-validation below."
        )
    teacher = ""
    if run.get("teacher"):
        teachers = run["teacher"] if isinstance(run["teacher"], list) else [run["teacher"]]  # one dict before 2026-11
        # the teacher labelled unlabelled music for the probe where the run records it; nothing was distilled then
        labelled = (probe or {}).get("teacher_labelled")
        outputs = [f"`{t['output']}` ({t['dimension']} values, from `{Path(t['targets']).name}`" for t in teachers]
        credits = []
        if any(t["output"] != "handcrafted" for t in teachers):
            credits.append(
                ("Teacher: musicnn" if labelled else "Distilled from musicnn")
                + " (Pons & Serra, 2019; ISC licence; https://github.com/jordipons/musicnn). "
                "musicnn's MSD taggers learned from the Million Song Dataset's audio previews with Last.fm tags, its "
                "MTT taggers from MagnaTagATune."
            )
        if any(t["output"] == "handcrafted" for t in teachers):
            credits.append(
                "`handcrafted` targets are librosa descriptors of the audio (MFCC, spectral contrast, chroma, "
                "zero-crossing rate, spectral centroid and onset strength statistics; "
                "`scripts/handcrafted_targets.py`)."
            )
        if labelled:
            heavy = "as heavy" if labelled["weight"] == 1 else f"{labelled['weight']:g} times as heavy"
            use = (
                f"The teachers' outputs, {'; '.join(output + ')' for output in outputs)}, fed a logistic regression "
                "fitted on this run's labelled training and validation tracks (the teacher probe); its genre "
                f"probabilities of each of {labelled['tracks']} tracks without labels were the soft targets of their "
                f"{labelled['windows']:,} windows in this model's linear probe, together {heavy} as the labelled "
                "windows. Neither the teacher nor its probe is part of this model."
            )
        else:
            targets = "; ".join(
                output + (f", loss weight {t['weight']:g})" if "weight" in t else ")")
                for output, t in zip(outputs, teachers)
            )
            use = (
                f"The teachers' outputs on the training audio, {targets}, were regression targets of an auxiliary\n"
                "head that is not part of this model."
            )
        teacher = f"""
## Teacher

{" ".join(credits)} {use}
"""
    recipe = run["recipe"]
    init_from = run["arguments"]["model"].get("init_from")
    # A local folder is named by its last part only: a card never shows the training machine's paths.
    start = f"Initialised from `{_public_name(init_from)}`. " if init_from else ""
    if probe:
        offsets = probe.get("window_offsets_seconds") or []
        extra_windows = (
            f" (the window grid and the grid shifted by {', '.join(f'{o:g}' for o in offsets)} s)" if offsets else ""
        )
        training_time = (
            f"Classifier fitted in {run['train_seconds']:.0f} s on {run['device']} (encoder frozen; no epochs)."
        )
        recipe = (
            f"{start}Encoder frozen; the classifier is a linear probe of the pooled embedding: an L2-regularised "
            f"logistic regression on standardised embeddings\n(strength C = {probe['strength']:g}, chosen by "
            f"{probe['selection']} among {', '.join(probe['cross_validation_accuracy_by_strength'])}:\nheld-out window "
            f"accuracy {probe['cross_validation_accuracy']:.4f}), then fitted on all {probe['fitted_on']['windows']} "
            f"windows of those {probe['fitted_on']['tracks']} tracks{extra_windows},\nwith the standardisation "
            f"folded into `Linear({config.hidden_size}, {config.num_labels})`."
        )
    else:
        training_time = (
            f"Epochs run: {run['epochs_run']:.0f} of at most {recipe['epochs']:g}; training time "
            f"{run['train_seconds']:.0f} s on {run['device']}."
        )
        recipe = (
            f"{start}Recipe: focal loss (gamma {config.focal_loss_gamma}), AdamW (lr {recipe['learning_rate']:g}, "
            f"weight decay\n{recipe['weight_decay']:g}), cosine to {recipe['min_learning_rate']:g}, batch "
            f"{recipe['batch_size']},\nearly stopping (patience {recipe['early_stopping_patience']}), drop path "
            f"{config.drop_path_rate}, seed {recipe['seed']}."
        )
    skipped = f", skipped: {', '.join(run['skipped_tracks'])}" if run["skipped_tracks"] else ""
    cross_validation = ""
    if run.get("cross_validation"):
        cross_validation = "\n" + cross_validation_markdown(run["cross_validation"], heading_level=2)
    outside = (
        'Music far from every genre it learnt is answered "none of these genres" (beyond a genre distance of '
        f"{config.none_of_these_distance:.2f}; see `calibration.json`)."
        if getattr(config, "none_of_these_distance", None) is not None
        else "Music outside these ten genres is still forced into one of them (`scripts/calibrate.py` fits a "
        '"none of these genres" answer).'
    )
    return _with_metadata(
        f"""# GenreViT: {run["output_name"]}

A Vision Transformer over 4-s log-Mel windows that classifies music genre, trained with GenreViT's `train.py`.
Load it with `from_pretrained` after `genre_vit.register_auto_classes()`, or with `trust_remote_code=True` without
the package. Either way it needs `transformers>={MIN_TRANSFORMERS_VERSION}`.

## Labels

{labels}

## Training data and split

- Data: `{_public_name(run["data"])}` ({run["tracks"]} readable tracks{skipped}).
- Split by track ({run["split_method"]}); {split_note}
- Tracks (windows): train {splits["train"]["tracks"]} ({splits["train"]["windows"]}), validation
  {splits["validation"]["tracks"]} ({splits["validation"]["windows"]}), test {splits["test"]["tracks"]}.
  The track ids are in `{RUN_FILE}`.
- {test_note}

## Results

- {selection_result}
- {training_time}

## Model

{config.num_hidden_layers} pre-LN blocks of width {config.hidden_size}, {config.num_attention_heads} heads,
{config.patch_grid[0]}x{config.patch_grid[1]} patches of {config.patch_size}x{config.patch_size} over a
{config.num_frequency_bins}x{config.num_time_frames} log-Mel image; {parameters:,} parameters.
{recipe}
{teacher}{cross_validation}
## Intended use and limits

Genre tagging of Western popular music in the ten GTZAN genres, song by song or window by window. Genre labels are
fuzzy and GTZAN has known faults (repeated and mislabelled clips, artist overlap between tracks), so numbers on a
split of GTZAN overstate accuracy on new music. {outside}
"""
    )


def _with_metadata(body: str) -> str:
    """The card's text under its Hub metadata, written by `huggingface_hub.ModelCardData` (which checks the fields
    the Hub reads)."""
    from huggingface_hub import ModelCard, ModelCardData

    metadata = ModelCardData(
        library_name="transformers",
        pipeline_tag="audio-classification",
        license="apache-2.0",
        tags=["audio-classification", "music", "genre-classification", "genre_vit"],
    )
    return str(ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n{body}"))


def _public_name(source: str) -> str:
    """A Hub id as it is; a local path by its last part (`/data/gtzan` -> `gtzan`)."""
    path = Path(source)
    return path.name if path.is_absolute() or source.startswith(".") or len(path.parts) > 2 else source


def format_mean_std(entry: dict) -> str:
    """`{"mean": 0.81, "std": 0.05}` -> `"0.810 ± 0.050"`."""
    if entry["mean"] is None:
        return "–"
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}" if entry["std"] is not None else f"{entry['mean']:.3f}"


def cross_validation_markdown(summary: dict, heading_level: int = 2) -> str:
    """The mean ± std table, the per-fold table and the pooled per-genre tables, as Markdown."""
    h = "#" * heading_level
    mean_std = summary["mean_std"]
    lines = [
        f"{h} {summary['folds']}-fold cross-validation by track",
        "",
        (
            "Mean ± sample standard deviation over the folds; each fold's model was chosen without its held-out "
            "fold (on its validation tracks, or by the linear probe's cross-validation over its other tracks) and "
            "scored on that fold."
        ),
        "",
        "| level | accuracy | macro F1 | macro AUC |",
        "| --- | ---: | ---: | ---: |",
    ]
    for level in ("window", "track"):
        cells = [format_mean_std(mean_std[f"{level}_{metric}"]) for metric in ("accuracy", "macro_f1", "macro_auc")]
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| fold | test tracks | test windows | selection acc. (validation, or the probe's inner CV) | epochs "
        "| window acc. | track acc. | window macro AUC |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fold in summary["per_fold"]:
        auc = "–" if fold["window_macro_auc"] is None else f"{fold['window_macro_auc']:.3f}"
        lines.append(
            f"| {fold['fold']} | {fold['test_tracks']} | {fold['test_windows']} | {fold['selection_accuracy']:.3f} "
            f"| {fold['epochs_run']:.0f} | {fold['window_accuracy']:.3f} | {fold['track_accuracy']:.3f} | {auc} |"
        )
    pooled_report = report_markdown(summary["pooled"], title="Pooled out-of-fold predictions")
    pooled_report = "\n".join(
        ("#" * heading_level + line) if line.startswith("#") else line for line in pooled_report.splitlines()
    )
    lines += [
        "",
        (
            "Pooled: every track's windows as predicted by the one fold model that did not train on it. Pooled AUCs "
            "rank probabilities of differently calibrated fold models together, so they can be lower than the "
            "per-fold AUCs."
        ),
        "",
        pooled_report,
    ]
    return "\n".join(lines) + "\n"


def shipped_model_card(
    folder: Path,
    protocol_rows: dict,
    row_name: str,
    sources: list[dict],
    encoder_note: str,
    repo_id: str = "genre-vit/genre-vit-gtzan",
) -> str:
    """The card of a shipped model (at most 150 lines): what it is, how to use it, its data and their licences, the
    protocol table with its anchors, its limits, how it was made; the Hub metadata with a `model-index` of its
    measured figures (`huggingface_hub.ModelCardData`).

    Args:
        folder: the model folder (its `config.json`, `training_run.json`, `calibration.json` and
            `evaluation_protocols.json` are read).
        protocol_rows: `scripts/protocol_table.py`'s `protocols.json`; `row_name` is this model's row.
        sources: the unlabelled music, one dict per source: `source`, `tracks`, `hours`, `licences`, `genre_mix`
            (the teacher ensemble's genre of each track, counted).
        encoder_note: one sentence on where the encoder came from.
    """
    import json

    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from ..model_folder import CALIBRATION_FILE, PROTOCOLS_FILE

    def read(name: str) -> dict:
        path = Path(folder) / name
        return json.loads(path.read_text()) if path.is_file() else {}

    config, run, calibration = read("config.json"), read(RUN_FILE), read(CALIBRATION_FILE)
    protocols = read(PROTOCOLS_FILE)
    test, validation, gtzan = protocols["emotify_test"], protocols["emotify_validation"], protocols.get("gtzan")
    probe = run.get("linear_probe", {})
    taught = probe.get("teacher_labelled") or {}
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    results = [
        EvalResult(
            task_type="audio-classification",
            dataset_type="emotify",
            dataset_name="Emotify test half (classical, pop, rock)",
            dataset_split="even-numbered excerpts",
            metric_type="accuracy",
            metric_value=round(test["track_accuracy"], 4),
            metric_name="track accuracy",
        )
    ]
    if gtzan:
        results.append(
            EvalResult(
                task_type="audio-classification",
                dataset_type="gtzan",
                dataset_name=f"GTZAN ({gtzan['tracks']} clips)",
                dataset_split=f"{gtzan['protocol']} by track",
                metric_type="accuracy",
                metric_value=round(gtzan["right"] / gtzan["tracks"], 4),
                metric_name="track accuracy",
            )
        )
    metadata = ModelCardData(
        library_name="transformers",
        pipeline_tag="audio-classification",
        license="apache-2.0",
        tags=["audio-classification", "music", "genre-classification", "genre_vit"],
        model_name=repo_id.split("/")[-1],
        eval_results=results,
    )

    def cell(entry: dict | None, numerator: str = "right", denominator: str = "tracks") -> str:
        return f"{entry[numerator]}/{entry[denominator]}" if entry and numerator in entry else "–"

    table = [
        "| system | Emotify validation | Emotify test | test: confident answers, right | electronic answered "
        "confidently (test) | GTZAN |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in protocol_rows.items():
        shown = f"**{name}**" if name == row_name else name
        gtzan_cell = f"{cell(row.get('gtzan'))} {row['gtzan']['protocol']}" if row.get("gtzan") else "–"
        confident = (
            f"{row['test']['confident']}, {row['test']['confident_right']}" if "confident" in row["test"] else "–"
        )
        table.append(
            f"| {shown} | {cell(row['validation'])} | {cell(row['test'])} | {confident} | "
            f"{cell(row['test'], 'electronic_confident', 'electronic_tracks')} | {gtzan_cell} |"
        )
    source_lines = [
        "| source | tracks | hours | licences | teacher ensemble's genres (tracks) |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for source in sources:
        mix = ", ".join(f"{genre} {count}" for genre, count in source["genre_mix"].items() if count)
        licences = source["licences"] or "see the package"
        source_lines.append(f"| {source['source']} | {source['tracks']} | {source['hours']:.2f} | {licences} | {mix} |")
    hours = sum(source["hours"] for source in sources)
    body = f"""# GenreViT: music genre over time, from 99 GTZAN clips and two teachers

A Vision Transformer (the seed GenreViT architecture, {run.get("parameters", 25417738):,} parameters) that answers
each 4-s window of a song with ten genre probabilities, and the song with their mean over its music windows. Its
classifier fitted the labels of **99 real GTZAN clips** only; it is not the reference's 1000-clip model.

Labels: {", ".join(labels)}. It can also answer "uncertain: A or B" (no clear lead) and "none of the ten genres
fits" (beyond a genre distance of {config.get("none_of_these_distance", float("nan")):.2f}).

## Use

```python
from genre_vit import GenreClassifier

classifier = GenreClassifier.from_pretrained("{repo_id}")
result = classifier.analyze("song.mp3")
print(result.summary())  # e.g. "rock, 71% — 87 windows over 2:58"
```

Or `transformers.pipeline("audio-classification", model="{repo_id}", trust_remote_code=True)`, which needs
`transformers>={MIN_TRANSFORMERS_VERSION}`; the demo (`python app.py`) and the CLI (`genre-vit analyze song.mp3`) use
it by default.

## Accuracy

Every choice was made on the Emotify validation half (odd-numbered excerpts); the test half (even-numbered) was
only reported. Emotify's classical, pop and rock are GTZAN genres by other artists; its electronic excerpts are
none of the ten. GTZAN 5-fold CV by track is artist-leaky: a floor of what was learnt, not of what generalises.

{chr(10).join(table)}

On the test half it is right on {test["correct"]} of {test["tracks"]} ({test["track_accuracy"]:.0%});
{test["confident_answers"]} answers were confident and {test["confident_answers_right"]} of those right;
{test["electronic_answered_confidently"]} of {test["electronic_tracks"]} electronic excerpts got a confident genre.
Validation half: {validation["correct"]} of {validation["tracks"]}. `docs/model-development.md` in the project has
every candidate.

## Data and licences

- **Labels**: 99 GTZAN clips (Tzanetakis & Cook, 2002; 8-13 per genre, 30 s; research use), the only labels fitted.
- **Unlabelled music** ({hours:.1f} h; no labels), whose teacher answers taught the classifier:

{chr(10).join(source_lines)}

- **Teachers** (their outputs only; neither is part of this model): musicnn MSD (Pons & Serra, 2019; ISC) and
  EfficientAT `mn04_as` (Schmid et al., 2023; MIT; AudioSet).
- **Choosing and reporting**: Emotify (Aljanaki et al., 2016; Magnatune music): its labels chose the temperature
  and the "none of these" distance on the validation half and were never fitted.

## How it was made

1. Encoder: {encoder_note}
2. Classifier: a linear probe of the pooled embedding (`train.py --init-from ENCODER --classifier-only`), fitted on
   the {probe.get("fitted_on", {}).get("tracks", "–")} GTZAN clips' windows and on {taught.get("windows", "–"):,}
   windows of {taught.get("tracks", "–")} unlabelled tracks, each taught the teacher ensemble's genre probabilities
   (musicnn's probe times EfficientAT's zero-shot genres, `scripts/ensemble_targets.py`).
3. Calibration (`scripts/calibrate.py`): temperature {calibration.get("temperature", float("nan")):.2f} and "none of
   these" distance {calibration.get("none_of_these_distance", float("nan")):.2f}, chosen on the Emotify validation half.
4. Scored by `scripts/protocol_table.py` (the table above; the command is in `evaluation_protocols.json`).

## Limits

Genre labels are fuzzy and GTZAN's 99 clips are few. On music from elsewhere the model is right about
{test["track_accuracy"]:.0%} of the time; read the timeline and the runner-up rather than one label. The student
tracks its teachers: the best teacher row above bounds what it can learn from them.
"""
    return str(ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n{body}"))


__all__ = ["cross_validation_markdown", "format_mean_std", "model_card", "shipped_model_card"]
