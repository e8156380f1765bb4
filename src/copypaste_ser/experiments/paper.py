"""The CopyPaste paper's published numbers (Pappagari et al., ICASSP 2021), to print beside ours.

Weighted F1 (%) per dataset, table and training data, in the scheme order No CP, SE-CP, N-CP,
N+SE-CP. Table 2: random initialisation, clean test; Table 3: speaker-pretrained, clean test;
Tables 5 / 6: speaker-pretrained, 10 dB / 0 dB test; Table 4: CREMA-D per-class F1 of the
speaker-pretrained model trained on clean data.
"""

from __future__ import annotations

SCHEMES = ("none", "se-cp", "n-cp", "n+se-cp")

#: dataset -> table -> training data -> scores in SCHEMES order
TABLES: dict[str, dict[int, dict[str, tuple[float, ...]]]] = {
    "crema-d": {
        2: {"clean": (71.46, 71.80, 74.34, 73.79), "clean+noise": (70.59, 72.83, 75.87, 74.55)},
        3: {"clean": (77.86, 78.54, 80.18, 79.21), "clean+noise": (79.60, 79.98, 80.17, 79.88)},
        5: {"clean": (72.76, 73.47, 77.06, 74.06), "clean+noise": (78.48, 78.79, 79.10, 79.30)},
        6: {"clean": (64.95, 66.21, 71.40, 65.53), "clean+noise": (76.44, 76.38, 76.83, 76.60)},
    },
    "msp-podcast": {
        2: {"clean": (47.36, 48.34, 49.14, 49.69), "clean+noise": (48.15, 50.61, 49.25, 50.71)},
        3: {"clean": (56.79, 58.68, 57.71, 58.22), "clean+noise": (57.91, 58.62, 57.82, 58.13)},
        5: {"clean": (55.25, 57.39, 55.54, 56.61), "clean+noise": (57.09, 57.52, 56.63, 57.52)},
        6: {"clean": (52.65, 55.15, 52.68, 53.91), "clean+noise": (55.88, 56.40, 55.28, 56.44)},
    },
    "iemocap": {
        2: {"clean": (43.03, 45.84, 44.19, 45.88), "clean+noise": (43.65, 49.49, 52.34, 51.41)},
        3: {"clean": (61.18, 62.15, 61.21, 61.90), "clean+noise": (62.57, 63.08, 63.48, 63.78)},
        5: {"clean": (58.82, 59.30, 58.93, 59.01), "clean+noise": (61.47, 61.80, 62.03, 62.63)},
        6: {"clean": (52.05, 51.73, 51.58, 51.62), "clean+noise": (58.55, 58.52, 59.32, 59.69)},
    },
}

#: CREMA-D per-class F1 (Table 4): class -> scores in SCHEMES order
CREMA_D_PER_CLASS = {"sad": (20.48, 20.59, 21.11, 22.37), "happy": (37.17, 46.19, 54.47, 46.70),
                     "angry": (70.53, 71.40, 75.85, 73.61), "neutral": (87.62, 87.55, 88.11, 87.83)}


def table_number(init: str, test: str) -> int | None:
    """The paper's table for a score table of ours (Table 2/3 clean, 5/6 at 10/0 dB)."""
    if test == "clean":
        return 2 if init == "scratch" else 3
    return {"10dB": 5, "0dB": 6}.get(test) if init != "scratch" else None


def paper_row(dataset: str | None, init: str, test: str, data: str, schemes: list[str]) -> str | None:
    """A Markdown table row of the paper's numbers for these columns, or None."""
    number = table_number(init, test)
    scores = TABLES.get(dataset or "", {}).get(number or 0, {}).get(data)
    if scores is None:
        return None
    by_scheme = dict(zip(SCHEMES, scores))
    label = {"clean": "Clean", "clean+noise": "Clean+Noise"}[data]
    return f"| the paper, Table {number}, {label} | " + " | ".join(f"{by_scheme[s]:.2f}" for s in schemes) + " |"


__all__ = ["SCHEMES", "TABLES", "CREMA_D_PER_CLASS", "table_number", "paper_row"]
