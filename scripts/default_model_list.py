"""Write the CSV list the shipped default model was trained from: EmoDB (original length) and
RAVDESS speech, the paper's 4 classes, dev = EmoDB speaker 16, test = RAVDESS actor 24.

    python scripts/default_model_list.py --emodb ../shared/data/emodb-full --ravdess ../shared/data/ravdess \
        --out data/default-model/list.csv
    copypaste-ser prepare folder --csv data/default-model/list.csv --out data/default-all
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

EMODB = {"W": "angry", "F": "happy", "N": "neutral", "T": "sad"}
RAVDESS = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry"}
AUDIO = ("*.wav", "*.flac")


def rows(emodb: Path, ravdess: Path) -> list[tuple[str, str, str, str]]:
    out = []
    for path in sorted(p for pattern in AUDIO for p in (emodb / "wav").glob(pattern)):
        if path.stem[5] in EMODB:
            speaker = path.stem[:2]
            out.append((str(path.resolve()), EMODB[path.stem[5]], f"emodb-{speaker}", "dev" if speaker == "16" else "train"))
    for path in sorted(p for pattern in AUDIO for p in ravdess.glob(f"Actor_*/{pattern}")):
        fields = path.stem.split("-")
        if fields[2] in RAVDESS:
            actor = int(fields[6])
            out.append((str(path.resolve()), RAVDESS[fields[2]], f"ravdess-{actor:02d}", "test" if actor == 24 else "train"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emodb", type=Path, required=True, help="EmoDB root (holds wav/)")
    ap.add_argument("--ravdess", type=Path, required=True, help="RAVDESS root (holds Actor_NN/)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    table = rows(args.emodb, args.ravdess)
    if not table:
        raise SystemExit(f"error: no EmoDB or RAVDESS audio under {args.emodb} / {args.ravdess}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label", "speaker", "split"])
        writer.writerows(table)
    print(f"{len(table)} rows -> {args.out}")


if __name__ == "__main__":
    main()
