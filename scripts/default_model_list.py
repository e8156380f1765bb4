"""Write the CSV list the shipped default model was trained from: EmoDB (original length) and
RAVDESS speech, the paper's 4 classes as their recipes read them, dev = EmoDB speaker 16,
test = RAVDESS actor 24.

    python scripts/default_model_list.py --emodb ../shared/data/emodb-full --ravdess ../shared/data/ravdess \
        --out data/default-model/list.csv
    copypaste-ser prepare folder --csv data/default-model/list.csv --out data/default-all
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from copypaste_ser.data.corpora import emodb, ravdess
from copypaste_ser.errors import UserError

SPLIT = {emodb.speaker_id("16"): "dev", ravdess.speaker_id(24): "test"}


def rows(emodb_root: Path, ravdess_root: Path) -> list[tuple[str, str, str, str]]:
    out = []
    for recipe, root in ((emodb, emodb_root), (ravdess, ravdess_root)):
        manifest, _ = recipe.prepare(root, classes="paper4")
        for u in manifest:
            out.append((str(Path(u.audio).resolve()), u.emotion, u.speaker, SPLIT.get(u.speaker, "train")))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emodb", type=Path, required=True, help="EmoDB root (holds wav/)")
    ap.add_argument("--ravdess", type=Path, required=True, help="RAVDESS root (holds Actor_NN/)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    try:
        table = rows(args.emodb, args.ravdess)
    except UserError as e:  # the recipes name the folder and what is wrong
        raise SystemExit(f"error: {e}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label", "speaker", "split"])
        writer.writerows(table)
    print(f"{len(table)} rows -> {args.out}")


if __name__ == "__main__":
    main()
