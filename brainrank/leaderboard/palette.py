"""One palette for every figure of the report and the web site.

A model is drawn the same way wherever it appears:

- its **colour** is its architecture family (Okabe & Ito's colour-blind-safe qualitative
  colours, :data:`FAMILY_COLOURS`);
- its **fill** says whether it is trained (filled) or randomly initialised (hollow: white
  inside, the family colour as the edge), and the mean curve of random networks is dashed
  where that of trained ones is solid (:data:`KIND_STYLES`);
- a **baseline** (a hand-made feature set: pixels, Gabor, GIST...) is no network: a grey
  diamond, or a horizontal reference line, never a depth curve, and it never enters a mean
  over models (:data:`BASELINE_COLOUR`).

Continuous values (heat maps) use one sequential colour-blind-safe scale, viridis
(:data:`SEQUENTIAL`), with one range per figure group. The site receives the same values
through ``/api/options`` (``palette``), so a convnet is the same blue on the page and in the
report.
"""

from __future__ import annotations

from typing import Any

#: Okabe & Ito (2008), "Color Universal Design": told apart with every common colour-vision
#: deficiency
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "vermillion": "#D55E00",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: architecture family -> colour (the taxonomy's families, :mod:`brainrank.core.taxonomy`)
FAMILY_COLOURS = {
    "convnet": OKABE_ITO["blue"],
    "transformer": OKABE_ITO["vermillion"],
    "mlp-mixer": OKABE_ITO["green"],
    "hybrid": OKABE_ITO["purple"],
    "other": OKABE_ITO["orange"],
}
#: a family the palette does not name (a plugin's own, or unknown)
UNKNOWN_FAMILY_COLOUR = "#7F7F7F"
#: baselines: no network, so no family colour
BASELINE_COLOUR = "#595959"

#: trained / random / baseline: marker, fill and line style (colour comes from the family)
KIND_STYLES: dict[str, dict[str, Any]] = {
    "trained": {"marker": "o", "filled": True, "linestyle": "-"},
    "random": {"marker": "o", "filled": False, "linestyle": "--"},
    "baseline": {"marker": "D", "filled": True, "linestyle": ":"},
}
KINDS = tuple(KIND_STYLES)

#: the sequential scale of every heat map (colour-blind safe, light = high)
SEQUENTIAL = "viridis"


def family_colour(family: Any) -> str:
    """The colour of an architecture family (grey for one the palette does not name)."""
    return FAMILY_COLOURS.get(str(family), UNKNOWN_FAMILY_COLOUR)


def model_style(family: Any, kind: str) -> dict[str, Any]:
    """Matplotlib keyword arguments that draw one model as a point: its family's colour,
    filled when trained, hollow when random; a grey diamond for a baseline."""
    style = KIND_STYLES.get(kind, KIND_STYLES["trained"])
    colour = BASELINE_COLOUR if kind == "baseline" else family_colour(family)
    return {
        "marker": style["marker"],
        "markeredgecolor": colour,
        "markerfacecolor": colour if style["filled"] else "white",
        "color": colour,
        "linestyle": "none",
    }


def as_json() -> dict[str, Any]:
    """The palette as the web site reads it."""
    return {
        "family": dict(FAMILY_COLOURS),
        "unknown_family": UNKNOWN_FAMILY_COLOUR,
        "baseline": BASELINE_COLOUR,
        "kind": {
            kind: {"filled": s["filled"], "dash": s["linestyle"] != "-"}
            for kind, s in KIND_STYLES.items()
        },
        "qualitative": list(OKABE_ITO.values()),
        "sequential": SEQUENTIAL,
    }
