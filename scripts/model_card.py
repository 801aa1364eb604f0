"""Write a shipped model's card (README.md in its folder): `genre_vit.training.model_card.shipped_model_card` with
the protocol table's rows and the unlabelled music that taught its classifier.

    python scripts/model_card.py --model checkpoints/genre-vit-gtzan --protocols runs/protocols/protocols.json \
        --row shipped --music ../probe-music --licences ../pretrain-music/sources.tsv \
        --ensemble runs/teacher/ensemble-probe-music.npz --encoder-note "..."

`--music` is the folder of unlabelled music the probe learnt from (one sub-folder per source); each source's tracks
and hours are measured from its files, its licences read from `--licences` (`scripts/unlabelled_music.py`'s
`sources.tsv`), and its genre mix is the teacher ensemble's genre of each track (`--ensemble`, from
`scripts/ensemble_targets.py`). The card is written atomically.
"""

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile

from genre_vit import GTZAN_GENRES
from genre_vit.files import write_text_atomic
from genre_vit.model_folder import MODEL_CARD_FILE
from genre_vit.training.data import load_tracks_from_folder
from genre_vit.training.distillation import DISTRIBUTION_OUTPUT, TeacherTargets
from genre_vit.training.model_card import shipped_model_card


def music_sources(music: Path, licences: Path, ensemble: TeacherTargets) -> list[dict]:
    """One entry per sub-folder of `music`: its tracks, hours, licences and the ensemble's genre mix."""
    with licences.open() as table:
        licence_of = {row["package"]: row["licences"] for row in csv.DictReader(table, delimiter="\t")}
    tracks = load_tracks_from_folder(music)
    sources: dict[str, dict] = {}
    for path, key in zip(map(Path, tracks["audio_path"]), tracks["track_id"]):
        source = sources.setdefault(
            path.parent.name,
            {"source": path.parent.name, "tracks": 0, "hours": 0.0, "licences": licence_of.get(path.parent.name, "")},
        )
        source["tracks"] += 1
        source["hours"] += soundfile.info(str(path)).duration / 3600
        source.setdefault("mix", Counter())[GTZAN_GENRES[int(np.argmax(ensemble.track_target(key)))]] += 1
    for source in sources.values():
        source["genre_mix"] = {genre: source["mix"][genre] for genre in GTZAN_GENRES}
        del source["mix"]
    return sorted(sources.values(), key=lambda source: source["source"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--protocols", type=Path, required=True, help="scripts/protocol_table.py's protocols.json")
    parser.add_argument("--row", required=True, help="the model's row in that table")
    parser.add_argument("--music", type=Path, required=True, help="the unlabelled music the probe learnt from")
    parser.add_argument("--licences", type=Path, required=True, help="scripts/unlabelled_music.py's sources.tsv")
    parser.add_argument("--ensemble", type=Path, required=True, help="the ensemble's targets for that music")
    parser.add_argument("--encoder-note", required=True, help="one sentence: where the encoder came from")
    parser.add_argument("--repo-id", default="genre-vit/genre-vit-gtzan")
    args = parser.parse_args(argv)
    rows = json.loads(args.protocols.read_text())
    if args.row not in rows:
        parser.error(f"{args.protocols} has no row {args.row!r}.")
    ensemble = TeacherTargets.load(args.ensemble, DISTRIBUTION_OUTPUT)
    sources = music_sources(args.music, args.licences, ensemble)
    card = shipped_model_card(args.model, rows, args.row, sources, args.encoder_note, args.repo_id)
    write_text_atomic(args.model / MODEL_CARD_FILE, card)
    print(f"{args.model / MODEL_CARD_FILE}: {len(card.splitlines())} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
