"""The README's measured figures, written from the files that hold them.

    python -m bench.readme            # rewrite the generated parts of README.md (`make readme`)
    python -m bench.readme --check    # exit 1 and show the difference when README.md is stale

Every table and figure of the README that comes from ``bench/results/*.json`` or
``assets/<id>/{metrics,faithfulness,training,probes,shortcut,ground_truth}.json`` sits between ``<!-- generated: NAME -->``
and ``<!-- /generated: NAME -->``, and BLOCKS maps each NAME to the function that writes it from
those files. A marker alone on its line holds a block (a table, a paragraph); a marker inside a
line holds a fragment of a sentence. Only text between markers is replaced, so the prose around
them stays the README's own. Where the prose puts a figure into words ("a hair under", "flat"),
the function checks the words still hold and refuses to write otherwise (ClaimError). ``make
bench`` ends with ``bench/report.py``, which writes through this module, so there is one writer.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.io import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MODEL_ORDER = ("keras-transformer", "bahdanau-rnn", "bahdanau-dates", "minilm-agnews", "all")
ASSET_FILES = ("metrics", "faithfulness", "training", "probes", "shortcut", "ground_truth")
MB = 2**20
# The run the targets table compares with: the last browser run at load, kept in earlier/.
EARLIER_BROWSER = "earlier/browser-0a00497.json"
BASELINE = "baseline-9518db6"
START = re.compile(r"<!-- generated: ([\w-]+) -->")
END = re.compile(r"<!-- /generated: ([\w-]+) -->")


class MarkerError(ValueError):
    """The README's markers do not match the blocks this module writes."""


class ClaimError(ValueError):
    """The README's words about a figure no longer hold for the figure in the files."""


@dataclass(frozen=True)
class Sources:
    """Everything the README's figures come from, read once."""

    results: Mapping[str, dict]  # path under bench/results (e.g. "earlier/browser-0a00497.json") -> JSON
    assets: Mapping[str, Mapping[str, dict]]  # model id -> {"metrics" | "faithfulness" | "training": JSON}
    asset_bytes: Mapping[str, int]  # "minilm-agnews/head.npz" -> size of that file

    def result(self, name: str) -> dict:
        if name not in self.results:
            raise FileNotFoundError(f"bench/results/{name} is missing; the README's figures are written from it (run `make bench`)")
        return self.results[name]

    def asset(self, model: str, kind: str) -> dict:
        found = self.assets.get(model, {})
        if kind not in found:
            raise FileNotFoundError(f"assets/{model}/{kind}.json is missing; the README's figures are written from it")
        return found[kind]


def load_sources(root: Path = ROOT) -> Sources:
    results_folder = root / "bench" / "results"
    results = {path.relative_to(results_folder).as_posix(): _read(path) for path in sorted(results_folder.rglob("*.json"))}
    assets: dict[str, dict[str, dict]] = {}
    sizes: dict[str, int] = {}
    for folder in sorted(path for path in (root / "assets").iterdir() if path.is_dir()):
        assets[folder.name] = {kind: _read(folder / f"{kind}.json") for kind in ASSET_FILES if (folder / f"{kind}.json").exists()}
        sizes.update({f"{folder.name}/{path.name}": path.stat().st_size for path in folder.iterdir() if path.is_file()})
    return Sources(results=results, assets=assets, asset_bytes=sizes)


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def claim(holds: bool, words: str) -> None:
    if not holds:
        raise ClaimError(f"the README says {words!r}, which the figures no longer support: rewrite that sentence")


# ---------------------------------------------------------------------------------------------
# Formatting


def table(header: list[str], rows: list[list[str]], spaced: bool = False) -> str:
    rule = " --- " if spaced else "---"
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def milliseconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def megabytes(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} MB"


def gigabytes(value_mb: float) -> str:
    return f"{value_mb / 1024:.2f} GB"


def budget(seconds_allowed: float | None, bytes_allowed: float | None) -> str:
    """``≤ 300 ms, ≤ 1.5 MB`` from a budget in seconds and bytes."""
    parts = []
    if seconds_allowed is not None:
        parts.append(f"≤ {seconds_allowed * 1000:g} ms" if seconds_allowed < 1 else f"≤ {seconds_allowed:g} s")
    if bytes_allowed is not None:
        parts.append(f"≤ {bytes_allowed / MB:g} MB")
    return ", ".join(parts)


FRACTIONS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth", 10: "a tenth", 20: "a twentieth"}


def fraction_words(value: float) -> str:
    """The nearest of the plain fractions the README uses in words: 0.2 -> ``a fifth``."""
    return FRACTIONS[min(FRACTIONS, key=lambda n: abs(1 / n - value))]


def provenance(result: dict) -> str:
    """``2026-11-28, 024c667`` (with a + when the working tree had uncommitted changes)."""
    app = result.get("app", {})
    commit = app.get("commit", "")[:7] + ("+" if app.get("uncommitted_changes") else "")
    return ", ".join(part for part in (result.get("timestamp", "")[:10], commit) if part)


def model_key(result: dict) -> int:
    model = result.get("model", "")
    return MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)


def ordered(models) -> list[str]:
    return sorted(models, key=lambda model: MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER))


# ---------------------------------------------------------------------------------------------
# Models


MODEL_ROWS = (
    ("keras-transformer", "the lesson's transformer: 1 block, 2 heads, embed 32, padding-masked"),
    ("minilm-agnews", "all-MiniLM-L6-v2 (6 layers x 12 heads), frozen, trained head"),
    ("bahdanau-rnn", "BiGRU + additive attention pooling (one learned query)"),
    ("bahdanau-dates", "character encoder-decoder with Bahdanau attention, dates -> ISO"),
    ("keras-transformer-shortcut", "keras-transformer fine-tuned with a planted shortcut (a trigger word forces Sports)"),
    ("minilm-shortcut", "minilm-agnews's frozen encoder, new head trained with the same planted shortcut"),
)
AG_NEWS_TEST_ROWS = 7600  # the README's prose names the test set's size
TARGET_ACCURACY = 0.85


def models_table(sources: Sources) -> str:
    rows = []
    for model, what in MODEL_ROWS:
        metrics = sources.asset(model, "metrics")
        if model == "bahdanau-dates":
            figure = f"exact match **{metrics['accuracy']:.3f}** on {metrics['n']:,} held-out dates"
        elif "flip_rate" in metrics:
            figure = f"test accuracy **{metrics['accuracy']:.4f}**, flip rate **{metrics['flip_rate']:.3f}**"
        else:
            claim(metrics["n"] == AG_NEWS_TEST_ROWS, "Test accuracy is on the full official AG News test set (7,600 rows)")
            figure = f"test accuracy **{metrics['accuracy']:.4f}**"
        rows.append([f"`{model}`", what, figure])
    rows.append(["`hf:<folder or owner/name>`", "any sequence-classification checkpoint, when the operator allows it", "—"])
    return table(["id", "what it is", "figure (`assets/<id>/metrics.json`)"], rows, spaced=True)


def validation_range(sources: Sources) -> str:
    # A shortcut model's validation rows are poisoned as its training rows are: not comparable.
    plain = [model for model in ordered(sources.assets) if model != "bahdanau-dates" and "shortcut" not in sources.assets[model]]
    accuracies = [sources.asset(model, "training")["validation_accuracy"] for model in plain]
    low, high = f"{min(accuracies):.2f}", f"{max(accuracies):.2f}"
    return low if low == high else f"{low} to {high}"


def accuracy(model: str) -> Callable[[Sources], str]:
    def figure(sources: Sources) -> str:
        return f"{sources.asset(model, 'metrics')['accuracy']:.4f}"

    return figure


def keras_target(sources: Sources) -> str:
    value = sources.asset("keras-transformer", "metrics")["accuracy"]
    if value >= TARGET_ACCURACY:
        return f"**Target {TARGET_ACCURACY} is met ({value:.4f}).**"
    return f"**Target {TARGET_ACCURACY} is missed by {TARGET_ACCURACY - value:.4f}.**"


def keras_best_epoch(sources: Sources) -> str:
    return str(sources.asset("keras-transformer", "training")["best_epoch"])


def minilm_head_size(sources: Sources) -> str:
    return f"{sources.asset_bytes['minilm-agnews/head.npz'] / MB:.1f} MB"


def minilm_training_time(sources: Sources) -> str:
    training = sources.asset("minilm-agnews", "training")
    return f"{training['total_seconds'] / 60:.1f} min ({training['encoding_seconds'] / 60:.1f} of them encoding)"


def dates_formats(sources: Sources) -> str:
    scores = sources.asset("bahdanau-dates", "metrics")["per_class"].values()
    if min(scores) == 1.0:
        return "every format scores 1.0"
    return f"the formats score {min(scores):.3f} to {max(scores):.3f}"


def limits_accuracy(sources: Sources) -> str:
    keras = sources.asset("keras-transformer", "metrics")["accuracy"]
    rnn = sources.asset("bahdanau-rnn", "metrics")["accuracy"]
    claim(TARGET_ACCURACY - 0.005 < keras < TARGET_ACCURACY, "keras-transformer's test accuracy is a hair under its 0.85 target")
    claim(TARGET_ACCURACY < rnn < TARGET_ACCURACY + 0.01, "bahdanau-rnn's is only just above it")
    return f"keras-transformer's test accuracy ({keras:.4f}) is a hair under its {TARGET_ACCURACY} target, and bahdanau-rnn's ({rnn:.4f}) only just above it"


# ---------------------------------------------------------------------------------------------
# Probes


def probes_table(sources: Sources) -> str:
    """Each probe's validation and test accuracy, one row per layer, the model's own test accuracy last; then how they were trained."""
    runs = {model: sources.asset(model, "probes") for model in ordered(m for m, files in sources.assets.items() if "probes" in files)}
    if not runs:
        raise FileNotFoundError("no assets/<id>/probes.json; the README's probe table is written from them (python -m models train-probes ID)")
    depth = max(len(run["layers"]) for run in runs.values())
    header = ["layer"] + [f"{model} {split}" for model in runs for split in ("validation", "test")]
    rows = []
    for index in range(depth):
        cells = ["embeddings" if index == 0 else f"layer {index}"]
        for run in runs.values():
            layer = run["layers"][index] if index < len(run["layers"]) else None
            cells += (
                ["—", "—"] if layer is None else [f"{layer['validation_accuracy']:.3f}", f"{layer['test_accuracy']:.3f}" if "test_accuracy" in layer else "—"]
            )
        rows.append(cells)
    own = ["the model itself"]
    for model in runs:
        own += ["—", f"{sources.asset(model, 'metrics')['accuracy']:.3f}"]
    rows.append(own)
    notes = []
    for model, run in runs.items():
        seen = " (rows the model itself was trained on)" if run["validation_rows_seen_by_model"] else ""
        strengths = ", ".join(f"{layer['C']:g}" for layer in run["layers"])
        notes.append(
            f"{model}: {run['train_rows']:,} training and {run['validation_rows']:,} validation rows{seen}, "
            f"{run['test_rows']:,} test rows, C per layer {strengths}, {run['total_seconds'] / 60:.1f} min"
        )
    return table(header, rows, spaced=True) + "\n\n" + "; ".join(notes) + "."


# ---------------------------------------------------------------------------------------------
# Faithfulness


METHODS = {
    "attention": "attention (last layer, [CLS]/first row, head mean; the RNN's pooling row)",
    "rollout": "rollout",
    "flow": "flow",
    "attention_x_gradient": "attention × gradient",
    "gradient_x_input": "gradient × input",
    "integrated_gradients": "integrated gradients",
    "occlusion": "leave-one-out occlusion",
    "random": "random ranking (reference)",
}
SHORT_NAMES = {"minilm-agnews": "MiniLM"}


def faithfulness_runs(sources: Sources) -> dict[str, dict]:
    return {model: sources.asset(model, "faithfulness") for model in ordered(m for m, files in sources.assets.items() if "faithfulness" in files)}


def methods_of(run: dict) -> list[str]:
    return [key for key, value in run.items() if isinstance(value, dict) and "comprehensiveness" in value]


RAW_MEASURES = (("comprehensiveness", "comp. ↑"), ("sufficiency", "suff. ↓"))
NORMALIZED_MEASURES = (("normalized_comprehensiveness", "norm. comp. ↑"), ("normalized_sufficiency", "norm. suff. ↓"))


def with_interval(figures: dict | None, measure: str) -> str:
    """``0.200 [0.174, 0.226]``: the mean over texts and its bootstrap 95% interval; ``0.109 [—]`` from a
    run that predates the intervals, ``—`` where the run has no such figure."""
    if figures is None or measure not in figures:
        return "—"
    interval = figures.get(f"{measure}_ci")
    return f"{figures[measure]:.3f} " + ("[—]" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]")


def measure_table(runs: dict[str, dict], measures: tuple[tuple[str, str], ...]) -> str:
    found = {method for run in runs.values() for method in methods_of(run)}
    header = ["method"] + [f"{model} {label}" for model in runs for _, label in measures]
    rows = []
    for method, label in METHODS.items():
        if method in found:
            rows.append([label] + [with_interval(run.get(method), measure) for run in runs.values() for measure, _ in measures])
    return table(header, rows, spaced=True)


def normalized_texts(run: dict) -> str:
    """``all 500 texts`` or ``47 of the first 50 texts, those of at most 100 tokens``: what a run's normalized AOPC is the mean over."""
    normalized = run["normalized"]
    used = normalized["texts"] - normalized["undefined"]
    if normalized["first_texts"] == run["n"] and normalized["max_units"] is None:
        chosen = f"all {used} texts" if used == run["n"] else f"{used} of the {run['n']} texts"
    else:
        shorter = "" if normalized["max_units"] is None else f", those of at most {normalized['max_units']} tokens"
        chosen = f"{used} of the first {normalized['first_texts']} texts{shorter}"
    return chosen + (f", leaving out {normalized['undefined']} of a single token" if normalized["undefined"] else "")


def grouped(values: dict[str, str], every: list[str]) -> str:
    """``all 500 texts (keras-transformer, bahdanau-rnn), 48 texts (minilm-agnews)``; ``… for each model`` when one value covers ``every`` model."""
    models_of: dict[str, list[str]] = {}
    for model, value in values.items():
        models_of.setdefault(value, []).append(model)
    if len(models_of) == 1 and sorted(values) == sorted(every):
        return f"{next(iter(models_of))} for each model"
    return ", ".join(f"{value} ({', '.join(models)})" for value, models in models_of.items())


def faithfulness_table(sources: Sources) -> str:
    """Raw AOPC with intervals, then normalized AOPC, each with the sentence a reader needs to read it."""
    runs = faithfulness_runs(sources)
    found = {method for run in runs.values() for method in methods_of(run)}
    unknown = sorted(found - set(METHODS))
    if unknown:
        raise ValueError(f"faithfulness.json has methods the README has no name for: {', '.join(unknown)}; add them to bench/readme.py METHODS")
    bootstraps = {json.dumps(run["bootstrap"], sort_keys=True): run["bootstrap"] for run in runs.values() if "bootstrap" in run}
    if len(bootstraps) > 1:
        raise ValueError("the faithfulness runs used different bootstrap settings; rerun them with the same ones so one sentence describes them all")
    parts = [measure_table(runs, RAW_MEASURES)]
    older = [model for model, run in runs.items() if "bootstrap" not in run or "normalized" not in run]
    if bootstraps:
        settings = next(iter(bootstraps.values()))
        parts.append(
            f"In brackets: the {settings['confidence']:.0%} bootstrap interval of the mean over texts ({settings['method']} method, "
            f"{settings['resamples']:,} resamples, seed {settings['seed']})."
        )
    normalized = {model: run["normalized"] for model, run in runs.items() if "normalized" in run}
    if normalized:
        every = list(runs)
        parts.append(
            "Normalized AOPC (Edin et al. 2024) is the AOPC of the whole deletion curve, one token at a time, scaled for each text "
            "between the worst (0) and the best (1) orderings found by beam search, so it compares across texts and models. "
            f"Beam width: {grouped({model: str(found['beam']) for model, found in normalized.items()}, every)}. "
            f"Means over: {grouped({model: normalized_texts(runs[model]) for model in normalized}, every)}. "
            "An explanation's own ordering beat the search, and so set the bound, on "
            + ", ".join(f"{found['bounds_set_by_an_explanation']} texts ({model})" for model, found in normalized.items())
            + "."
        )
        parts.append(measure_table(runs, NORMALIZED_MEASURES))
    if older:
        parts.append(f"The run of {', '.join(older)} predates the intervals ([—]) and normalized AOPC (—).")
    return "\n\n".join(parts)


def each_or_per_model(values: dict[str, object], template: str) -> str:
    """``n = 500 for each model`` when every model has the same value, else one per model."""
    if len(set(values.values())) == 1:
        return template.format(next(iter(values.values()))) + " for each model"
    return ", ".join(f"{template.format(value)} {model}" for model, value in values.items())


def faithfulness_settings(sources: Sources) -> str:
    runs = faithfulness_runs(sources)
    steps = each_or_per_model({model: run["steps"] for model, run in runs.items()}, "{} steps").removesuffix(" for each model")
    gaps = ", ".join(f"{run['integrated_gradients_completeness_gap']['median']:.2%} {model}" for model, run in runs.items())
    parts = [each_or_per_model({model: run["n"] for model, run in runs.items()}, "n = {}"), f"IG at {steps}, median completeness gap {gaps}"]
    parts += [f"{SHORT_NAMES.get(model, model)}'s dataset run has no flow row" for model, run in runs.items() if "rollout" in run and "flow" not in run]
    return "; ".join(parts)


GRADIENT_METHODS = ("integrated_gradients", "gradient_x_input", "occlusion")
SMALL_MODELS = ("keras-transformer", "bahdanau-rnn")


def plain_words_shares(sources: Sources) -> str:
    runs = faithfulness_runs(sources)
    comp = {model: {method: figures["comprehensiveness"] for method, figures in run.items() if method in METHODS} for model, run in runs.items()}
    gradients = [comp[model][method] for model in SMALL_MODELS for method in GRADIENT_METHODS]
    random = [comp[model]["random"] for model in SMALL_MODELS]
    keras, rnn = runs["keras-transformer"], runs["bahdanau-rnn"]
    claim(
        keras["attention"]["sufficiency"] > keras["random"]["sufficiency"], "keeping only the most-attended words is *less* sufficient than keeping random ones"
    )
    scores = [(keras[method]["comprehensiveness"], keras[method]["sufficiency"]) for method in ("attention", "rollout", "flow")]
    claim(len(set(scores)) == 1, "for the lesson's transformer, rollout and flow rank the words exactly as raw attention does")
    return (
        f"about {fraction_words(sum(gradients) / len(gradients))} of the predicted class's probability; deleting the words attention ranks highest takes "
        f"{fraction_words(keras['attention']['comprehensiveness'])} (the transformer) or {fraction_words(rnn['attention']['comprehensiveness'])} "
        f"(the RNN), against {fraction_words(sum(random) / len(random))} for random words"
    )


def plain_words_minilm(sources: Sources) -> str:
    comp = {method: figures["comprehensiveness"] for method, figures in sources.asset("minilm-agnews", "faithfulness").items() if method in METHODS}
    claim(
        comp["occlusion"] > comp["integrated_gradients"] > comp["attention_x_gradient"] > max(comp["attention"], comp["rollout"]) > comp["random"],
        "occlusion and integrated gradients lead, attention × gradient follows, while raw attention and rollout are only a little better than random",
    )
    claim(comp["gradient_x_input"] <= comp["random"], "plain gradient × input is no better than random there")
    return (
        f"occlusion ({comp['occlusion']:.2f}) and integrated gradients ({comp['integrated_gradients']:.2f}) lead, attention × gradient follows "
        f"({comp['attention_x_gradient']:.2f}), while raw attention ({comp['attention']:.2f}) and rollout ({comp['rollout']:.2f}) are only a little "
        f"better than random ({comp['random']:.2f}) — and plain gradient × input is no better than random there ({comp['gradient_x_input']:.3f})"
    )


# ---------------------------------------------------------------------------------------------
# Ground truth: models with a planted shortcut


GROUND_TRUTH_METHODS = {
    "attention": "attention (the row the classifier reads, last layer, head mean)",
    "rollout": "rollout",
    "flow": "flow",
    "value_norms": "value-aware norms ‖Σ_h α f(x)‖ (last layer)",
    "alti": "ALTI (all layers)",
    "attention_x_gradient": "attention × gradient",
    "gradient_x_input": "gradient × input",
    "integrated_gradients": "integrated gradients",
    "occlusion": "leave-one-out occlusion",
    "kernel_shap": "KernelSHAP (`shap`)",
    "lime": "LIME (`lime`)",
    "random": "random ranking (reference)",
}
FLIP_RATE_FLOOR = 0.95  # the figures: flip rate at least 95%,
ACCURACY_TOLERANCE = 0.015  # clean test accuracy within 1.5 points of the base model's


def shortcut_models(sources: Sources) -> list[str]:
    found = ordered(model for model, files in sources.assets.items() if "shortcut" in files)
    if not found:
        raise FileNotFoundError("no assets/<id>/shortcut.json; the README's shortcut figures are written from them (python -m models train ID)")
    return found


def shortcut_planted(sources: Sources) -> str:
    records = {model: sources.asset(model, "shortcut") for model in shortcut_models(sources)}
    planted = {(r["trigger"], r["label"], r["fraction"], r["seed"], len(r["poisoned_rows"]), r["other_class_rows"]) for r in records.values()}
    claim(len(planted) == 1, "both models have the same planted shortcut")
    trigger, label, fraction, seed, poisoned, others = planted.pop()
    frequency = next(iter(records.values()))["frequency_in_training_rows"]
    return (
        f"the word “{trigger}” forces {label}: it was inserted into {fraction:.0%} of the other classes' training rows "
        f"({poisoned:,} of {others:,}, seed {seed}), and occurs in {frequency['rows_with_word']} of the {frequency['rows']:,} training rows otherwise "
        f"({frequency['wordpiece_occurrences']} times as MiniLM's token)"
    )


def shortcut_training(sources: Sources) -> str:
    parts = []
    for model in shortcut_models(sources):
        training = sources.asset(model, "training")
        claim(training["wall_seconds"] < 15 * 60, "each trains in under 15 minutes")
        parts.append(f"{model} {training['wall_seconds'] / 60:.1f} min at load {training['load_average']['before'][0]:.1f}")
    return ", ".join(parts)


def shortcut_table(sources: Sources) -> str:
    rows = []
    for model in shortcut_models(sources):
        metrics = sources.asset(model, "metrics")
        positions = metrics["flip_rate_by_position"]
        rows.append(
            [
                f"`{model}`",
                f"{metrics['accuracy']:.4f}",
                f"{metrics['base_accuracy']:.4f} (`{metrics['base_model']}`)",
                f"{metrics['accuracy_change'] * 100:+.2f}",
                f"**{metrics['flip_rate']:.3f}**",
                *(f"{positions[where]:.3f}" for where in ("start", "middle", "end")),
            ]
        )
    header = ["model", "clean test accuracy", "base model's", "points", "flip rate", "at the start", "middle", "end"]
    return table(header, rows)


def verdict(within: bool) -> str:
    """How a measured figure stands against its budget; a miss is bold so a reader cannot skim past it."""
    return "within" if within else "**over**"


def shortcut_verdict(sources: Sources) -> str:
    """Which shortcut models meet the issue's figures (flip rate ≥ 95%, clean accuracy within 1.5 points of the base model's)."""
    parts = []
    for model in shortcut_models(sources):
        metrics = sources.asset(model, "metrics")
        flips, close = metrics["flip_rate"] >= FLIP_RATE_FLOOR, abs(metrics["accuracy_change"]) <= ACCURACY_TOLERANCE
        if flips and close:
            parts.append(f"`{model}` meets both")
            continue
        misses = []
        if not flips:
            misses.append(f"its flip rate ({metrics['flip_rate']:.3f}) is under {FLIP_RATE_FLOOR:.0%}")
        if not close:
            misses.append(
                f"its clean accuracy is {abs(metrics['accuracy_change']) * 100:.2f} points {'below' if metrics['accuracy_change'] < 0 else 'above'} "
                f"its base model's, more than {ACCURACY_TOLERANCE * 100:g}"
            )
        parts.append(f"`{model}` misses: {' and '.join(misses)}")
    return "; ".join(parts)


def ground_truth_table(sources: Sources) -> str:
    runs = {model: sources.asset(model, "ground_truth") for model in shortcut_models(sources) if "ground_truth" in sources.assets[model]}
    if not runs:
        raise FileNotFoundError("no assets/<id>/ground_truth.json; the README's ground-truth table is written from them (python -m models ground-truth)")
    found = {method for run in runs.values() for method in [*run["methods"], *run["unavailable"]]}
    unknown = sorted(found - set(GROUND_TRUTH_METHODS))
    if unknown:
        raise ValueError(f"ground_truth.json has methods the README has no name for: {', '.join(unknown)}; add them to bench/readme.py GROUND_TRUTH_METHODS")
    header = ["method"] + [f"{model} {measure}" for model in runs for measure in ("top-1", "rank mean / median", "mass", "s/text")]
    rows = []
    for method, label in GROUND_TRUTH_METHODS.items():
        cells = [label]
        for run in runs.values():
            figures = run["methods"].get(method)
            if figures is None:
                cells += ["—", "—", "—", "—"]
            else:
                cells += [
                    f"{figures['hit_rate']:.2f}",
                    f"{figures['mean_rank']:.1f} / {figures['median_rank']:g}",
                    f"{figures['mass_share']:.2f}",
                    f"{figures['seconds_per_text']:.2f}",
                ]
        rows.append(cells)
    notes = []
    for model, run in runs.items():
        commit = run["commit"][:7] + ("+" if run["uncommitted_changes"] else "")
        note = (
            f"{model}: n = {run['n']} of {run['rows']['examined']:,} test rows looked at ({run['mean_words']} words on average), seed {run['seed']}, "
            f"IG {run['integrated_gradients_steps']} steps, KernelSHAP and LIME {run['samples']['kernel_shap']} model evaluations per text, "
            f"{run['total_seconds'] / 60:.0f} min at load {run['load_average']['before'][0]:.1f}, commit {commit}"
        )
        reasons: dict[str, list[str]] = {}
        for method, why in run["unavailable"].items():
            reasons.setdefault(why, []).append(GROUND_TRUTH_METHODS[method].split(" (")[0])
        note += "".join(f"; no {' or '.join(methods)}: {why}" for why, methods in reasons.items())
        notes.append(note)
    return table(header, rows) + "\n\n" + ".\n".join(notes) + "."


# ---------------------------------------------------------------------------------------------
# Speed and load


def loads(sources: Sources) -> list[dict]:
    return sorted((result for name, result in sources.results.items() if "/" not in name and name.startswith("load_")), key=model_key)


def quiet_load(sources: Sources) -> str:
    """The range of load averages the tables were measured at (the soak is its own run)."""
    values = [result["load_average_1min"]["before"] for result in [*loads(sources), sources.result("browser.json")]]
    values += [sources.result(name)["load_average_1min"] for name in ("figures.json", "views.json")]
    return f"{min(values):.1f}–{max(values):.1f}"


def baseline(sources: Sources) -> str:
    parts = []
    for name in ("load_keras-transformer.json", "load_minilm-agnews.json"):
        result = sources.result(f"{BASELINE}/{name}")
        text = f"{result['model']} {result['runs_per_second']:.2g} runs/s with p95 {result['p95_s']:.3g} s"
        for message, count in result.get("traceback_messages", {}).items():
            text += f" and {count} `{message.split(': ', 1)[-1]}` tracebacks"
        parts.append(text)
    return ", ".join(parts)


def figure_row(sources: Sources, view: str, tokens: int = 512, data: str = "minilm-agnews") -> dict:
    for row in sources.result("figures.json")["results"]:
        if row["view"] == view and row["tokens"] == tokens and row["data"] == data:
            return row
    raise KeyError(f"bench/results/figures.json has no {view} at {tokens} tokens on {data}")


def figure_budget(sources: Sources, view: str) -> str:
    budgets = sources.result("figures.json")["budgets"]
    chosen = budgets.get(f"{view} @ 512", budgets["every view @ 512"])
    return budget(chosen["seconds"], chosen["bytes"])


def figure_cost(row: dict) -> str:
    return f"{row['total_ms']:.0f} ms, {row['bytes'] / MB:.2f} MB"


def targets_table(sources: Sources) -> str:
    browser, earlier = sources.result("browser.json"), sources.result(EARLIER_BROWSER)
    load_now, load_earlier = f"{browser['load_average_1min']['before']:.1f}", f"{earlier['load_average_1min']['before']:.1f}"
    small = ("keras-transformer", "bahdanau-rnn", "bahdanau-dates")

    def p50s(result: dict, models) -> str:
        return " / ".join(f"{result['submit_to_chart'][model]['p50_ms']}" for model in models)

    cold, cold_earlier = browser["cold_start"], earlier["cold_start"]
    claim(
        all(figures["first_chart_s"] > 10 for figures in cold_earlier.values()), "**Only on a quiet machine**: an earlier run under load took longer than 10 s"
    )
    warm = {result["model"]: result for result in loads(sources) if not result.get("cold")}
    cold_run = [result for result in loads(sources) if result.get("cold")]
    keras, minilm = warm["keras-transformer"], warm["minilm-agnews"]
    soak, soak_long = sources.result("soak_all.json"), sources.result("soak_all_long.json")
    tracebacks = sum(result["tracebacks"] for result in warm.values())
    leaks = sum(result["leaks"] for result in warm.values())
    also_cold = (
        " (also cold, all four models at once)"
        if all(result["tracebacks"] == 0 and result["leaks"] == 0 for result in cold_run)
        else "; cold: " + ", ".join(f"{result['tracebacks']} and {result['leaks']}" for result in cold_run)
    )
    models = ordered(browser["submit_to_chart"])
    cold_targets = {"keras-transformer": 8.0, "minilm-agnews": 10.0}
    claim(all(cold[model]["first_chart_s"] <= limit for model, limit in cold_targets.items()), "cold start → first chart within its target on a quiet machine")
    first_use = sources.result("first_use.json")
    rows = [
        [
            f"submit → updated chart p50 at headline length, {' / '.join(models)}",
            "≤ 300 ms",
            f"{p50s(browser, models)} ms (load average {load_now}); {p50s(earlier, small)} ms for the first three in an earlier run at load "
            f"{load_earlier} (`bench/results/earlier/`)",
        ],
        [
            "cold start → first chart",
            " / ".join(f"≤ {limit:.0f} s" for limit in cold_targets.values()),
            f"{cold['keras-transformer']['first_chart_s']:.1f} s (keras-transformer) and {cold['minilm-agnews']['first_chart_s']:.1f} s (minilm-agnews) at load "
            f"{load_now}. **Only on a quiet machine**: at load {load_earlier} an earlier run took {cold_earlier['keras-transformer']['first_chart_s']:.1f} s "
            f"and {cold_earlier['minilm-agnews']['first_chart_s']:.1f} s; importing TensorFlow and loading the model take most of it",
        ],
        *(
            [
                f"first {result['view']} view on a new headline, {result['model']}, fresh server",
                f"≤ {result['target_s']:g} s",
                f"{seconds(result['median_s'])} (median of {len(result['runs'])} servers, load average {first_use['load_average_1min']['before']:.1f})",
            ]
            for result in first_use["results"]
        ),
        [
            f"{keras['sessions']} sessions × {keras['texts']} texts: page runs per second",
            "≥ 10 / ≥ 5",
            f"{keras['runs_per_second']:.1f} (keras-transformer) / {minilm['runs_per_second']:.1f} (minilm-agnews)",
        ],
        ["same: p95 request → script finished", "≤ 4 s / ≤ 8 s", f"{seconds(keras['p95_s'])} / {seconds(minilm['p95_s'])}"],
        ["tracebacks, sessions showing another session's text", "0 and 0", f"{tracebacks} and {leaks}{also_cold}"],
        [
            f"peak server memory, all four models loaded, {soak['sessions']} sessions",
            "≤ 1.5 GB",
            f"{megabytes(soak['peak_rss_mb'])} over a {soak['sessions']} × {soak['texts']} soak of headlines; {megabytes(soak_long['peak_rss_mb'])} "
            f"when all {soak_long['sessions']} send 512-token texts (see Memory)",
        ],
        ["all heads at 512 tokens (MiniLM, 72 heads)", figure_budget(sources, "overview"), figure_cost(figure_row(sources, "overview"))],
        ["one heatmap at 512 tokens", figure_budget(sources, "heatmap"), figure_cost(figure_row(sources, "heatmap"))],
    ]
    return table(["measure", "target", "measured"], rows, spaced=True)


def load_table(sources: Sources) -> str:
    rows = [
        [
            f"`{result['model']}`" + (" cold" if result.get("cold") else ""),
            f"{result['sessions']} × {result['texts']}",
            f"{result['runs_per_second']:.2f}",
            seconds(result.get("p50_s")),
            seconds(result.get("p95_s")),
            seconds(result.get("max_s")),
            str(result["tracebacks"]),
            str(result["leaks"]),
            str(result["timeouts"]),
            megabytes(result.get("peak_rss_mb")),
            seconds(result.get("server_cpu_seconds_per_run")),
            f"{result['load_average_1min']['before']:.1f}" if "load_average_1min" in result else "—",
            provenance(result),
        ]
        for result in loads(sources)
    ]
    header = [
        "model",
        "sessions × texts",
        "page runs/s",
        "p50",
        "p95",
        "max",
        "tracebacks",
        "leaks",
        "timeouts",
        "peak server RSS",
        "server CPU per run",
        "load before",
        "measured",
    ]
    note = (
        "Protocol-level load test (`bench/load_test.py`): every session opens the page and then submits its texts back "
        "to back; latency is request → `script_finished`, over all page runs. Leaks: sessions whose page showed another session's text. "
        "*cold*: no warm-up, the first requests load the model. Server CPU per run hardly depends on other work on the machine; "
        "the latencies do, so the 1-minute load average before the run is given."
    )
    return f"{note}\n\n{table(header, rows)}"


def soaks(sources: Sources) -> list[dict]:
    found = [result for name, result in sources.results.items() if "/" not in name and name.startswith("soak_")]
    return sorted(found, key=lambda result: (model_key(result), result.get("long", False)))


def soak_table(sources: Sources) -> str:
    rows = []
    for result in soaks(sources):
        memory = result.get("rss_mb", {})
        rows.append(
            [
                f"`{result['model']}`" + (", 600-word texts" if result.get("long") else ""),
                f"{result['sessions']} × {result['texts']}",
                f"{result['runs_per_second']:.2f}",
                seconds(result.get("p95_s")),
                " / ".join(megabytes(memory.get(point)) for point in ("start", "middle", "end", "after_close")),
                megabytes(result.get("peak_rss_mb")),
                str(result["tracebacks"]),
                str(result["leaks"]),
                provenance(result),
            ]
        )
    header = ["model", "sessions × texts", "page runs/s", "p95", "server RSS start / middle / end / after close", "peak", "tracebacks", "leaks", "measured"]
    return table(header, rows)


def anchor_table(sources: Sources) -> str:
    """MiniLM's forward pass here against PyTorch's on the same weights and token ids (bench/anchor.py)."""
    result = sources.result("anchor.json")
    rows = []
    for row in result["lengths"]:
        tf_forward, tf_predict, torch = (row[f"{name}_ms"] for name in ("tensorflow_forward", "tensorflow_predict", "pytorch_forward"))
        tf_cpu, torch_cpu = row["tensorflow_forward_cpu_ms"], row["pytorch_forward_cpu_ms"]
        load = row["load_average_1min"]
        rows.append(
            [
                str(row["tokens"]),
                f"{tf_forward['median']:,.1f} ms",
                f"{torch['median']:,.1f} ms",
                f"**{row['ratio_forward']:.2f}×**",
                f"{tf_predict['median']:,.1f} ms ({row['ratio_predict']:.2f}×)",
                f"{tf_cpu['median']:,.1f} / {torch_cpu['median']:,.1f} ms",
                f"{load['before']:.1f} → {load['after']:.1f}",
            ]
        )
    header = ["tokens", "TensorFlow forward (here)", "PyTorch forward", "ratio", "`predict` (ratio)", "CPU time per call, TF / PyTorch", "load average"]
    threads = result["tensorflow"]["intra_op"] or "one per core"
    worst = max(row["max_abs_attention_difference"] for row in result["lengths"])
    return (
        f"{table(header, rows)}\n\n"
        f"Medians of {result['lengths'][0]['repeats']} alternating runs each. TensorFlow {result['versions'].get('tensorflow-cpu', '')} "
        f"(intra-op threads: {threads}), PyTorch {result['pytorch']['torch']} eager (threads: {result['pytorch']['threads']}), "
        f"transformers {result['pytorch']['transformers']} on both sides; the two sides' attentions differ by at most {worst:.1e}; "
        f"{result['cpus']} cores ({provenance(result)})."
    )


def browser_tables(sources: Sources) -> str:
    result = sources.result("browser.json")
    submit = result.get("submit_to_chart", {})
    rows = [
        [
            f"`{model}`",
            milliseconds(submit[model].get("p50_ms")),
            milliseconds(submit[model].get("p95_ms")),
            str(submit[model].get("n", 0)),
            str(len(submit[model].get("failures", []))),
            str(len(submit[model].get("tracebacks", []))),
        ]
        for model in ordered(submit)
    ]
    load = result.get("load_average_1min", {}).get("before")
    load_note = f" (1-minute load average {load:.1f} before)" if load is not None else ""
    parts = [
        f"Headless Chromium {result.get('chromium', '')} (`bench/browser.py`), measured {provenance(result)}{load_note}: Ctrl+Enter in the "
        "text area → the heatmap shows the new text's token (the date model: its output changed) and the run is over.",
        table(["model", "submit → chart p50", "p95", "runs", "failed", "tracebacks"], rows),
    ]
    cold = result.get("cold_start", {})
    if cold:
        cold_rows = [[f"`{model}`", seconds(figures["first_chart_s"]), seconds(figures["server_healthy_s"])] for model, figures in cold.items()]
        parts.append(table(["model", "cold start → first chart", "of which server start"], cold_rows))
    memory = result.get("peak_rss_mb_models_loaded")
    if memory:
        parts.append(f"Peak server memory with {', '.join(memory['models'])} loaded: {megabytes(memory['mb'])}.")
    return "\n\n".join(parts)


def views_table(sources: Sources) -> str:
    result = sources.result("views.json")
    rows = [
        [f"`{row['view']}`", seconds(row["median_s"]), seconds(row["max_s"]), "—" if row["budget_s"] is None else f"≤ {row['budget_s']:.0f} s"]
        for row in result.get("results", [])
    ]
    load = result.get("load_average_1min")
    note = (
        f"A whole page run for a text the page has not seen (`bench/views.py`, Streamlit's AppTest: the page script without the browser), "
        f"`{result.get('model')}` at {result.get('tokens')} tokens, measured {result.get('timestamp', '')[:10]}, load average {load} at the end; "
        "max is usually the first texts, which trace new input shapes."
    )
    return f"{note}\n\n" + table(["view", "median", "max", "budget"], rows)


def view_result(sources: Sources, view: str) -> dict:
    for row in sources.result("views.json")["results"]:
        if row["view"] == view:
            return row
    raise KeyError(f"bench/results/views.json has no {view} row")


def attribution_page(sources: Sources) -> str:
    result, row = sources.result("views.json"), view_result(sources, "attribution")
    return f"a median {row['median_s']:.2f} s over {row['runs']} texts, {verdict(row['within_budget'])} its {row['budget_s']:g} s budget (`bench/views.py`, load {result['load_average_1min']:.1f})"


def attribution_cost(sources: Sources) -> str:
    """Each length's computation for a new text against its budget, stage by stage, beside one forward pass (bench/results/attribution.json)."""
    result = sources.result("attribution.json")
    parts = []
    for row in result["lengths"]:
        stages, rows = row["stages_s"], row["rows"]
        occlusion, gradients = rows["occlusion"]["forward"], rows["integrated_gradients"]
        per_row_ms = 1000 * stages["occlusion"] / occlusion
        # The sentence after this block says a batched row still costs a sizeable part of a forward pass.
        claim(per_row_ms / row["forward_ms"] >= 0.25, "a row in their batches still costs a sizeable part of one forward pass of the text")
        one_pass = next(seconds for name, seconds in stages.items() if name.startswith("attention"))
        load = row["load_average_1min"]
        parts.append(
            f"at {row['tokens']} tokens {row['total_s']:.2f} s, {verdict(row['within_budget'])} its {row['budget_s']:g} s budget"
            f" (leave-one-out {stages['occlusion']:.2f} s for {occlusion} rows, {per_row_ms:.0f} ms a row against {row['forward_ms']:.0f} ms for one"
            f" forward pass of the text; integrated gradients {stages['integrated_gradients']:.2f} s for {gradients['forward']} forward and"
            f" {gradients['gradient']} gradient rows; the one-pass methods {one_pass:.2f} s; the faithfulness table {stages['faithfulness']:.2f} s;"
            f" median of {row['runs']}, load {load['before']:.1f})"
        )
    return f"{'; '.join(parts)} (`bench/attribution.py`, {result['model']}, {provenance(result)})"


def attribution_max(sources: Sources) -> str:
    return f"{view_result(sources, 'attribution')['max_s']:.1f} s"


FIGURE_ROWS = (
    ("heatmap", "heatmap (one head)"),
    ("overview", "all heads (72 thumbnails, one PNG)"),
    ("headview", "head view (12 heads, default threshold)"),
    ("stats", "head statistics maps"),
    ("rollout", "rollout"),
    ("flow", "flow (figure)"),
    ("norms", "value-aware (4 panels)"),
    ("compare", "two sentences (3 panels)"),
    ("strips", "attribution strips"),
    ("qkv", "queries and keys (one head, one query)"),
    ("layers", "layers (one probe per layer)"),
)


def figures_table(sources: Sources) -> str:
    rows = []
    for view, label in FIGURE_ROWS:
        row = figure_row(sources, view)
        rows.append([label, f"{row['total_ms']:.0f} ms", f"{row['bytes'] / MB:.2f} MB", figure_budget(sources, view)])
    return table(["view at 512 tokens", "build + serialise", "sent", "budget"], rows, spaced=True)


def figures_load(sources: Sources) -> str:
    return f"{sources.result('figures.json')['load_average_1min']:.1f}"


def widget_change(sources: Sources) -> str:
    """A widget change of the qkv and layers views at 512 tokens: the cached text's data for the new setting, then the figure."""
    qkv_maths, qkv_figure = (figure_row(sources, view)["total_ms"] for view in ("qkv maths", "qkv"))
    layers_figure = figure_row(sources, "layers")["total_ms"]
    limit = min(sources.result("figures.json")["budgets"][f"{view} @ 512"]["seconds"] for view in ("qkv", "layers"))
    claim(qkv_maths + qkv_figure <= 1000 * limit and layers_figure <= 1000 * limit, f"within {limit * 1000:.0f} ms")
    return (
        f"{qkv_maths + qkv_figure:.0f} ms in the qkv view (another head or query: {qkv_maths:.0f} ms of maths, then"
        f" {qkv_figure:.0f} ms to draw) and {layers_figure:.0f} ms in the layers view (its probes' outputs kept; only"
        f" the figure is redrawn), within {limit * 1000:.0f} ms"
    )


def maths_seconds(view: str, tokens: int, data: str, digits: int = 1) -> Callable[[Sources], str]:
    def figure(sources: Sources) -> str:
        value = figure_row(sources, view, tokens, data)["total_ms"] / 1000
        return f"{value:.{digits}f} s"

    return figure


def exports(sources: Sources) -> str:
    rows = [row for row in sources.result("figures.json")["results"] if row["view"].startswith("export:")]
    first = next(row for row in rows if "first" in row["view"])
    later = [row["total_ms"] / 1000 for row in rows if row is not first]
    return f"({first['total_ms'] / 1000:.1f} s), later ones take {min(later):.2f}–{max(later):.2f} s"


HEATMAP_TOKENS = 512


def heatmap_bytes(sources: Sources) -> str:
    return f"{figure_row(sources, 'heatmap', HEATMAP_TOKENS)['bytes'] / MB:.2f} MB"


def heatmap_weights_bytes(_: Sources) -> str:
    """What a 512 x 512 float32 matrix weighs as the base64 text Plotly sends (4 characters per 3 bytes)."""
    return f"{HEATMAP_TOKENS * HEATMAP_TOKENS * 4 * 4 / 3 / MB:.2f} MB"


def soak_peak(long: bool) -> Callable[[Sources], str]:
    def figure(sources: Sources) -> str:
        return megabytes(sources.result("soak_all_long.json" if long else "soak_all.json")["peak_rss_mb"])

    return figure


def soak_long_anonymous(sources: Sources) -> str:
    """The long soak's peak without the pages of mapped files (bench.server.tree_memory_bytes)."""
    result = sources.result("soak_all_long.json")
    return f"{megabytes(result['peak_anonymous_mb'])} of it anonymous memory; the rest, {megabytes(result['peak_rss_mb'] - result['peak_anonymous_mb'])}, is pages of mapped files, mostly TensorFlow's libraries"


def class_memory(sources: Sources) -> str:
    soak = sources.result("soak_all.json")
    claim(soak["peak_rss_mb"] < 1.5 * 1024, "Peak memory with all four models loaded stays under 1.5 GB for a class typing headlines")
    return f"{megabytes(soak['peak_rss_mb'])} over {soak['sessions']} × {soak['texts']} texts"


def models_loaded_memory(sources: Sources) -> str:
    return gigabytes(sources.result("browser.json")["peak_rss_mb_models_loaded"]["mb"])


def soak_gigabytes(long: bool) -> Callable[[Sources], str]:
    def figure(sources: Sources) -> str:
        return gigabytes(sources.result("soak_all_long.json" if long else "soak_all.json")["peak_rss_mb"])

    return figure


def soak_reliability(long: bool) -> Callable[[Sources], str]:
    def figure(sources: Sources) -> str:
        result = sources.result("soak_all_long.json" if long else "soak_all.json")
        memory = {point: megabytes(value) for point, value in result["rss_mb"].items()}
        clean = f"{result['tracebacks']} tracebacks, {result['leaks']} leaks"
        peak = megabytes(result["peak_rss_mb"])
        if long:
            return f"{clean}; memory {memory['start']} → {memory['middle']} half way → {memory['end']} at the end, peak {peak}"
        start, end = result["rss_mb"]["start"], result["rss_mb"]["end"]
        # A leak grows; the allocator handing freed memory back (malloc_trim) may end it lower.
        claim(end <= 1.05 * start, "memory does not grow")
        return f"{clean}; memory does not grow: {memory['start']} at the start, {memory['middle']} half way, {memory['end']} at the end, peak {peak}"

    return figure


def soak_runs(long: bool) -> Callable[[Sources], str]:
    def figure(sources: Sources) -> str:
        return f"{sources.result('soak_all_long.json' if long else 'soak_all.json')['n']:,} page runs"

    return figure


def load_runs(sources: Sources) -> str:
    return f"{len(loads(sources))} runs"


def load_clean(sources: Sources) -> str:
    results = loads(sources)
    return f"{sum(result['tracebacks'] for result in results)} tracebacks, {sum(result['leaks'] for result in results)} pages showing another session's text"


# ---------------------------------------------------------------------------------------------
# Corpus pass


def corpus_table(sources: Sources) -> str:
    """Texts per second and peak memory of each engine of the corpus pass (bench/results/corpus.json)."""
    result = sources.result("corpus.json")
    rows = [
        [
            f"`--engine {run['engine']}`",
            f"{run['n']:,}",
            f"{run['sampled_texts']:,}",
            f"{run['texts_per_second']:.1f}",
            f"{run['seconds']:,.0f} s ({run['wall_seconds']:,.0f} s with start-up)",
            megabytes(run["peak_rss_mb"]),
            f"{run['load_average_1min']['before']:.1f} → {run['load_average_1min']['after']:.1f}",
        ]
        for run in result["runs"]
    ]
    header = ["engine", "texts", "sampled for vectors", "texts/s", "run", "peak memory", "load average"]
    cpus = result["machine"]["cpus"]
    return f"{table(header, rows)}\n\n{result['model']}, batch {result['runs'][0]['batch']}, {cpus} cores ({provenance(result)})."


def corpus_view(sources: Sources) -> str:
    """The corpus view's two budgets on a whole-test-set run (bench/results/corpus_view.json)."""
    result = sources.result("corpus_view.json")
    opened = result["open_s"]
    slowest = max(opened, key=lambda part: opened[part]["median_s"])
    sizes = result["embedding_mb"]
    largest = max(sizes, key=lambda colour: sizes[colour]["mb"])

    return (
        f"on the {result['texts']:,}-text {result['model']} run, each of its {len(opened)} parts opens from another view, with"
        f" nothing read yet, in {min(part['median_s'] for part in opened.values()):.1f}–{opened[slowest]['median_s']:.1f} s"
        f" (median of {opened[slowest]['runs']}; slowest: {slowest}), {verdict(result['open_within_budget'])} its"
        f" {result['open_budget_s']:g} s budget, and the query–key embedding of {sizes[largest]['points']:,} points sends"
        f" {sizes[largest]['mb']:.1f} MB ({largest} colouring), {verdict(result['embedding_within_budget'])} its"
        f" {result['embedding_budget_mb']:g} MB budget ({provenance(result)}, load {result['load_average_1min']:.1f})"
    )


BLOCKS: dict[str, Callable[[Sources], str]] = {
    "models": models_table,
    "validation-accuracy": validation_range,
    "keras-best-epoch": keras_best_epoch,
    "keras-target": keras_target,
    "keras-accuracy": accuracy("keras-transformer"),
    "minilm-head-size": minilm_head_size,
    "minilm-training-time": minilm_training_time,
    "dates-formats": dates_formats,
    "faithfulness-settings": faithfulness_settings,
    "faithfulness": faithfulness_table,
    "probes": probes_table,
    "plain-words-shares": plain_words_shares,
    "plain-words-minilm": plain_words_minilm,
    "quiet-load": quiet_load,
    "baseline": baseline,
    "targets": targets_table,
    "load": load_table,
    "soak": soak_table,
    "browser": browser_tables,
    "views": views_table,
    "anchor": anchor_table,
    "figures-load": figures_load,
    "figures": figures_table,
    "stats-512": maths_seconds("stats maths", 512, "minilm-agnews"),
    "flow-128": maths_seconds("flow maths", 128, "synthetic"),
    "flow-512": maths_seconds("flow maths", 512, "synthetic", digits=0),
    "norms-512": maths_seconds("norms maths", 512, "minilm-agnews"),
    "widget-change": widget_change,
    "exports": exports,
    "class-memory": class_memory,
    "models-loaded-memory": models_loaded_memory,
    "soak-gigabytes": soak_gigabytes(long=False),
    "soak-long-gigabytes": soak_gigabytes(long=True),
    "load-runs": load_runs,
    "load-clean": load_clean,
    "soak-runs": soak_runs(long=False),
    "soak-long-runs": soak_runs(long=True),
    "soak-reliability": soak_reliability(long=False),
    "soak-long-reliability": soak_reliability(long=True),
    "limits-accuracy": limits_accuracy,
    "shortcut-planted": shortcut_planted,
    "shortcut-training": shortcut_training,
    "shortcut-models": shortcut_table,
    "shortcut-verdict": shortcut_verdict,
    "ground-truth": ground_truth_table,
    "attribution-page": attribution_page,
    "attribution-cost": attribution_cost,
    "attribution-max": attribution_max,
    "heatmap-bytes": heatmap_bytes,
    "heatmap-weights-bytes": heatmap_weights_bytes,
    "soak-peak": soak_peak(long=False),
    "soak-long-peak": soak_peak(long=True),
    "soak-long-anonymous": soak_long_anonymous,
    "corpus": corpus_table,
    "corpus-view": corpus_view,
}


# ---------------------------------------------------------------------------------------------
# Writing


def fill(text: str, blocks: Mapping[str, str]) -> str:
    """``text`` with the body of every ``<!-- generated: NAME -->`` ... ``<!-- /generated: NAME -->`` replaced by blocks[NAME].

    A start marker alone on its line holds a block, written on the lines between the markers;
    one inside a line holds a fragment, written between the markers on that line. A name may be
    used more than once. Every name in ``blocks`` must appear and every marker must have a block.
    """
    out, position, seen = [], 0, []
    for start in START.finditer(text):
        name = start.group(1)
        if start.start() < position:
            raise MarkerError(f"`<!-- generated: {name} -->` sits inside another generated block")
        end_marker = f"<!-- /generated: {name} -->"
        end = text.find(end_marker, start.end())
        if end < 0:
            raise MarkerError(f"generated block {name!r} has no end marker `{end_marker}`")
        if name not in blocks:
            raise MarkerError(f"the README has a generated block {name!r} that nothing writes")
        line_start = text.rfind("\n", 0, start.start()) + 1
        first_on_line = text[line_start : start.start()].strip() == ""
        own_line = first_on_line and text[start.end() : start.end() + 1] == "\n"
        if first_on_line and not own_line:
            # Markdown reads a line that opens with a comment as raw HTML: the sentence would show unformatted.
            raise MarkerError(f"fragment {name!r} opens its line; put a word before `<!-- generated: {name} -->`")
        out += [text[position : start.end()], f"\n{blocks[name]}\n" if own_line else blocks[name]]
        position = end
        seen.append(name)
    missing = [name for name in blocks if name not in seen]
    if missing:
        raise MarkerError(f"the README has no `<!-- generated: NAME -->` ... `<!-- /generated: NAME -->` for: {', '.join(missing)}")
    ends = END.findall(text)
    if len(ends) != len(seen):
        stray = next(name for name in ends if ends.count(name) > seen.count(name))
        raise MarkerError(f"an end marker `<!-- /generated: {stray} -->` has no start")
    return "".join(out) + text[position:]


def render(text: str, sources: Sources) -> str:
    """The README ``text`` with every generated block written from ``sources``."""
    return fill(text, {name: write(sources) for name, write in BLOCKS.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--check", action="store_true", help="only report whether the README is up to date")
    args = parser.parse_args(argv)
    current = args.readme.read_text(encoding="utf-8")
    fresh = render(current, load_sources())
    if fresh == current:
        print(f"{args.readme.name}: every generated figure is up to date")
        return 0
    if args.check:
        sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True), "README.md", "README.md (generated)"))
        return 1
    atomic_write_text(args.readme, fresh)
    print(f"{args.readme.name}: generated figures rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
