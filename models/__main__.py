"""Command line: ``python -m models list|predict|evaluate|train|train-probes|faithfulness|ground-truth|corpus|seal``.

Errors meant for the user (bad id, empty text, missing data or assets) print one line on stderr
and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from models import registry
from models.base import LensError
from models.io import CHECKSUMS, atomic_write_json, read_json, seal

VERSIONED_PACKAGES = ("tensorflow-cpu", "keras", "transformers", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help="run here (default) or through Ray Data's actor pool, one model per actor")
    parser.add_argument("--address", help="with --engine ray: a Ray cluster's address (ray://HOST:10001 or auto); default: a local Ray with 2 CPUs")
    parser.add_argument("--workers", type=int, help="with --engine ray: model actors (default: one per CPU of the cluster)")


def _check_engine(args: argparse.Namespace) -> None:
    if args.engine != "ray" and (args.address or args.workers):
        raise LensError("--address and --workers are for --engine ray")


def _mapper(args: argparse.Namespace):
    """None (the command's own loop) for --engine local, else the per-text map on Ray actors."""
    _check_engine(args)
    if args.engine != "ray":
        return None
    from models.ray_engine import mapper

    return mapper(args.model, args.address, args.workers)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m models", description="Attention Lens models")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("list", help="one model id per line with its description")

    predict = commands.add_parser("predict", help="predict and report attention shapes")
    predict.add_argument("--model", required=True)
    predict.add_argument("texts", nargs="+", metavar="TEXT")
    predict.add_argument("--json", action="store_true", help="one JSON object per line per text")
    predict.add_argument("--ablate", metavar="L:H[,L:H...]", help="switch these attention heads off (1-based layer:head)")
    predict.add_argument("--uniform", action="store_true", help="replace the RNN's attention by uniform weights")
    predict.add_argument("--explain", metavar="METHOD", help="print one attribution method's score per token for the predicted class")
    predict.add_argument(
        "--foil", metavar="CLASS", help="with --explain: why the predicted class and not CLASS (a label); explains log p(predicted) - log p(CLASS)"
    )

    evaluate = commands.add_parser("evaluate", help="accuracy on the model's test set")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--data", help="folder holding the CSVs (default: $AG_NEWS_DIR, ../shared/data/ag_news)")
    evaluate.add_argument("--limit", type=int, help="evaluate only the first N test rows")
    evaluate.add_argument("--assets", type=Path, help="load the model from this folder instead of assets/ID")
    evaluate.add_argument("--write-metrics", action="store_true", help="write ASSETS/metrics.json (the shipped figure)")

    faithfulness = commands.add_parser("faithfulness", help="how faithful each explanation is, over the first N AG News test rows")
    faithfulness.add_argument("--model", required=True)
    faithfulness.add_argument("--n", type=int, default=500, help="number of test rows (default 500)")
    faithfulness.add_argument("--steps", type=int, help="integrated-gradients steps (default 32)")
    faithfulness.add_argument("--data", help="folder holding the CSVs (default: $AG_NEWS_DIR, ../shared/data/ag_news)")
    faithfulness.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    faithfulness.add_argument("--write", action="store_true", help="also write assets/ID/faithfulness.json (the shipped figure)")
    faithfulness.add_argument("--beam", type=int, help="beam width of normalized AOPC's search for the best and worst orderings (default 5)")
    faithfulness.add_argument("--normalized-n", type=int, help="search normalized AOPC's bounds on the first N texts only (default: all n)")
    faithfulness.add_argument("--normalized-max-units", type=int, help="and only on those of at most this many tokens (default: any)")
    _engine_arguments(faithfulness)

    truth = commands.add_parser("ground-truth", help="how often each explanation ranks a shortcut model's trigger first, on N flipped AG News test rows")
    truth.add_argument("--model", required=True, help="a model with a planted shortcut (keras-transformer-shortcut, minilm-shortcut)")
    truth.add_argument("--n", type=int, default=100, help="number of flipped test rows (default 100)")
    truth.add_argument("--seed", type=int, default=0, help="seed of the trigger positions, KernelSHAP, LIME and the random ranking (default 0)")
    truth.add_argument("--samples", type=int, default=256, help="model evaluations per text for KernelSHAP and for LIME (default 256)")
    truth.add_argument("--data", help="folder holding the CSVs (default: $AG_NEWS_DIR, ../shared/data/ag_news)")
    truth.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    truth.add_argument("--write", action="store_true", help="also write assets/ID/ground_truth.json (the shipped figure)")
    _engine_arguments(truth)

    corpus = commands.add_parser("corpus", help="every head's statistics, predictions and a query/key sample over a corpus, as Parquet tables in --out")
    corpus.add_argument("--model", required=True, help="a classifier")
    corpus.add_argument("--data", help="a CSV (columns text, optionally label) or TXT (one text per line); default: the AG News test set")
    corpus.add_argument("--n", type=int, help="only the first N texts (default: all)")
    corpus.add_argument("--out", type=Path, required=True, help="the run's folder (its tables and run.json)")
    _engine_arguments(corpus)
    corpus.add_argument("--batch", type=int, default=32, help="texts per batch (default 32)")
    corpus.add_argument("--sample-tokens", type=int, default=5000, help="tokens per head whose query and key vectors are kept (default 5000, at most 10000)")

    train = commands.add_parser("train", help="train and save weights to assets/ID (or --out)")
    train.add_argument("model")
    train.add_argument("--data")
    train.add_argument("--epochs", type=int)
    train.add_argument("--limit", type=int, help="use only the first N training rows")
    train.add_argument("--out", type=Path, help="folder for the trained files (default: assets/ID)")

    probes = commands.add_parser("train-probes", help="train a linear probe per layer of a transformer classifier (the layers view) into assets/ID")
    probes.add_argument("model")
    probes.add_argument("--data", help="folder holding the CSVs (default: $AG_NEWS_DIR, ../shared/data/ag_news)")
    probes.add_argument("--limit", type=int, help="use only the first N training rows")
    probes.add_argument("--test-limit", type=int, help="score only the first N test rows (0: none; default: all; the test set chooses nothing)")
    probes.add_argument("--seed", type=int, default=0, help="seed of the validation split (default 0)")

    seal = commands.add_parser("seal", help="record the SHA-256 of a model's files in checksums.json (training does this itself); only for files you trust")
    seal.add_argument("model")
    seal.add_argument("--assets", type=Path, help="the model's folder (default: assets/ID)")
    return parser


def _list() -> None:
    for model_id, description in registry.available().items():
        print(f"{model_id}\t{description}")


def _predictions(args: argparse.Namespace) -> tuple[list, dict]:
    """Each text's Prediction, with heads switched off if asked, and the JSON keys that say so."""
    model = registry.load(args.model)
    if args.ablate is None and not args.uniform:
        return model.predict_batch(args.texts), {}
    from models.explain.ablation import format_heads, parse_heads, predict_with_heads_off, supports_ablation

    reason = supports_ablation(model)
    if reason:
        raise LensError(reason)
    heads = parse_heads(args.ablate or "", model.attention_grid)  # type: ignore[attr-defined]  # every model that supports ablation has one
    if args.ablate is not None and not heads:
        raise LensError("--ablate needs at least one LAYER:HEAD, e.g. --ablate 1:2")
    predictions = [predict_with_heads_off(model, text, heads, uniform=args.uniform) for text in args.texts]
    return predictions, ({"heads_off": format_heads(heads)} if heads else {}) | ({"uniform_attention": True} if args.uniform else {})


def _explain(args: argparse.Namespace) -> None:
    """``predict --explain METHOD [--foil CLASS]``: one method's score per token of each text."""
    from models.explain.attribution import CLASS_FREE, METHODS, attribute

    if args.explain not in METHODS:
        raise LensError(f"unknown method {args.explain!r}; choose from {', '.join(METHODS)}")
    if args.ablate is not None or args.uniform:
        raise LensError("--explain explains the model as it is: drop --ablate and --uniform")
    if args.foil is not None and args.explain in CLASS_FREE:
        raise LensError(f"{args.explain} is the same for every class, so it cannot contrast two; try gradient_x_input, integrated_gradients or occlusion")
    model = registry.load(args.model)
    foil = None
    if args.foil is not None:
        names = [label.casefold() for label in model.labels]
        if args.foil.casefold() not in names:
            raise LensError(f"--foil must be one of {', '.join(model.labels)}, got {args.foil!r}")
        foil = names.index(args.foil.casefold())
    for text in args.texts:
        target = int(model.predict(text).probs.argmax())
        if foil == target:
            raise LensError(f"{model.labels[target]} is the predicted class of {text!r}: pick another --foil")
        a = attribute(model, text, foil=foil, methods=[args.explain])
        if args.explain not in a.scores:
            raise LensError(f"{args.explain} is not available for {args.model}: {a.unavailable.get(args.explain, 'no reason given')}")
        scores = a.scores[args.explain]
        explained = f"log p({a.target_label}) - log p({a.foil_label})" if a.foil is not None else f"p({a.target_label})"
        if args.json:
            record = {"model": args.model, "text": text, "method": args.explain, "class": a.target_label, "foil": a.foil_label, "explained": explained}
            print(json.dumps({**record, "tokens": list(a.tokens), "scores": [round(float(v), 6) for v in scores]}, ensure_ascii=False))
            continue
        print(f"{args.explain}: what {explained} depends on")
        for token, score in zip(a.tokens, scores):
            print(f"  {score:+.4f}  {token}")


def _predict(args: argparse.Namespace) -> None:
    if args.explain is not None:
        _explain(args)
        return
    if args.foil is not None:
        raise LensError("--foil contrasts an explanation: add --explain METHOD")
    predictions, ablation = _predictions(args)
    for prediction in predictions:
        if args.json:
            print(json.dumps({**prediction.to_json_dict(), **ablation}, ensure_ascii=False))
            continue
        if prediction.is_seq2seq:
            print(f"output: {prediction.output}")
        else:
            ranked = sorted(zip(prediction.labels, prediction.probs), key=lambda pair: -pair[1])
            print("  ".join(f"{label} {prob:.3f}" for label, prob in ranked))
        print(f"  tokens: {' '.join(prediction.source_tokens)}")
        print(f"  attention (layers, heads, target, source): {prediction.attentions.shape}")
        for note in prediction.notes:
            print(f"  note: {note}")
        if prediction.dropped_tokens:
            print(f"  note: {prediction.dropped_tokens} tokens beyond the model's limit were dropped")


def _evaluate(args: argparse.Namespace) -> None:
    found = registry.entry(args.model)
    if args.write_metrics and not found.ships_assets:
        raise LensError(f"--write-metrics records the figures of shipped models in assets/; {args.model} is not one")
    asset_dir = args.assets or found.asset_dir
    model = registry.load(args.model, asset_dir)
    report = {"model": args.model, **found.family().evaluate(model, data_dir=args.data, limit=args.limit)}
    if args.write_metrics:
        if args.limit is not None:
            raise LensError("--write-metrics needs the whole test set: drop --limit")
        training = read_json(asset_dir / "training.json", f"run `python -m models train {args.model}`")
        metrics = {**report, "training": training, "evaluated": dt.date.today().isoformat(), "versions": package_versions()}
        atomic_write_json(asset_dir / "metrics.json", metrics)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(f"{args.model}: accuracy {report['accuracy']:.4f} on {report['n']} examples")
        for name, value in report.get("per_class", {}).items():
            print(f"  {name:10s} {value}")
        if "flip_rate" in report:
            positions = ", ".join(f"{where} {rate:.4f}" for where, rate in report["flip_rate_by_position"].items())
            print(f"  trigger {report['shortcut']['trigger']!r} -> {report['shortcut']['label']}: flip rate {report['flip_rate']:.4f} ({positions})")


def _faithfulness(args: argparse.Namespace) -> None:
    from models.data import load_split
    from models.explain.attribution import DEFAULT_STEPS, supports_attribution
    from models.explain.faithfulness import BEAM_WIDTH, FRACTIONS, RANDOM, dataset_faithfulness, gap_summary, most_faithful
    from models.provenance import load_average_since

    found = registry.entry(args.model)
    if args.write and not found.ships_assets:
        raise LensError(f"--write records the figures of shipped models in assets/; {args.model} is not one")
    if args.n < 1:
        raise LensError(f"--n must be at least 1, got {args.n}")
    beam = BEAM_WIDTH if args.beam is None else args.beam
    if beam < 1 or any(value is not None and value < 0 for value in (args.normalized_n, args.normalized_max_units)):
        raise LensError("--beam must be at least 1, --normalized-n and --normalized-max-units at least 0")
    mapper = _mapper(args)
    model = registry.load(args.model)
    reason = supports_attribution(model)
    if reason:
        raise LensError(reason)
    data = load_split("test", args.data, args.n)
    texts = list(data.texts)

    def progress(done: int) -> None:
        print(f"\r{done}/{len(texts)} texts", end="\n" if done == len(texts) else "", file=sys.stderr, flush=True)

    steps = args.steps or DEFAULT_STEPS
    # Each method's seconds per text depend on what else the machine runs: recorded beside them.
    load_before = os.getloadavg()
    report, gaps = dataset_faithfulness(
        model,
        texts,
        steps=steps,
        progress=progress,
        beam=beam,
        normalized_texts=args.normalized_n,
        normalized_max_units=args.normalized_max_units,
        mapper=mapper,
    )
    completeness = gap_summary(gaps)
    if args.write:
        record = {
            **report,
            "integrated_gradients_completeness_gap": completeness,
            "steps": steps,
            "fractions": list(FRACTIONS),
            "data": str(data.source),
            "evaluated": dt.date.today().isoformat(),
            "load_average": load_average_since(load_before),
            "versions": package_versions(),
        }
        atomic_write_json(found.asset_dir / "faithfulness.json", record)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"{args.model}: faithfulness over the first {report['n']} AG News test rows (AOPC over the top {', '.join(f'{f:.0%}' for f in FRACTIONS)})")
    normalized = report["normalized"]
    shorter = "" if normalized["max_units"] is None else f" (those of at most {normalized['max_units']} tokens)"
    print(
        f"  normalized AOPC (Edin et al. 2024) over {normalized['texts']} of the first {normalized['first_texts']} texts{shorter}, "
        f"beam width {normalized['beam']}; "
        f"[{report['bootstrap']['confidence']:.0%} bootstrap interval over texts, {report['bootstrap']['method']}]"
    )
    print(f"  {'method':22s} {'comprehensiveness ↑':>28s} {'sufficiency ↓':>28s} {'normalized comp. ↑':>28s} {'normalized suff. ↓':>28s} {'s/text':>8s}")
    rows = [{"method": name, **values} for name, values in report.items() if isinstance(values, dict) and "comprehensiveness" in values]

    def cell(row: dict, measure: str) -> str:
        if measure not in row:
            return f"{'—':>28s}"
        interval = row[f"{measure}_ci"]
        return f"{row[measure]:8.4f} [{interval[0]:8.4f}, {interval[1]:8.4f}]" if interval else f"{row[measure]:28.4f}"

    for row in rows:
        measures = ("comprehensiveness", "sufficiency", "normalized_comprehensiveness", "normalized_sufficiency")
        print(f"  {row['method']:22s} {' '.join(cell(row, measure) for measure in measures)} {row['seconds']:8.3f}")
    print(f"  followed best (comprehensiveness − sufficiency): {most_faithful([row for row in rows if row['method'] != RANDOM])}")
    if completeness["texts"]:
        print(
            f"  integrated gradients ({steps} steps): completeness gap median {completeness['median']:.2%}, "
            f"90th percentile {completeness['p90']:.2%}, above 5% on {completeness['above_5_percent']:.0%} of texts"
        )


def _ground_truth(args: argparse.Namespace) -> None:
    from models import ground_truth
    from models.shortcut import shortcut_of

    found = registry.entry(args.model)
    shortcut = shortcut_of(args.model)
    if shortcut is None:
        raise LensError(f"{args.model} has no planted shortcut; ground truth needs one of: {', '.join(m for m in registry.available() if shortcut_of(m))}")
    if args.samples < 2:
        raise LensError(f"--samples must be at least 2, got {args.samples}")
    mapper = _mapper(args)
    model = registry.load(args.model)

    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} texts", end="\n" if done == total else "", file=sys.stderr, flush=True)

    report = ground_truth.ground_truth(model, shortcut, n=args.n, seed=args.seed, samples=args.samples, data_dir=args.data, progress=progress, mapper=mapper)
    if args.write:
        atomic_write_json(found.asset_dir / "ground_truth.json", {**report, "versions": package_versions()})
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        ground_truth.print_table(report)


def _corpus(args: argparse.Namespace) -> None:
    from models.corpus import run_corpus

    _check_engine(args)
    record = run_corpus(
        args.model,
        None,
        args.out,
        engine=args.engine,
        data=args.data,
        n=args.n,
        batch=args.batch,
        sample_tokens=args.sample_tokens,
        address=args.address,
        workers=args.workers,
    )
    print(f"{record['n']} texts in {record['seconds']:.1f} s ({record['texts_per_second']:.1f} texts/s) with the {record['engine']} engine: {args.out}")


def _train(args: argparse.Namespace) -> None:
    found = registry.entry(args.model)
    out_dir = args.out or found.asset_dir
    summary = found.family().train(args.model, data_dir=args.data, epochs=args.epochs, limit=args.limit, out_dir=out_dir)
    summary = {**summary, "trained": dt.date.today().isoformat(), "versions": package_versions()}
    atomic_write_json(Path(out_dir) / "training.json", summary)
    print(f"saved {args.model} to {out_dir}")


def _train_probes(args: argparse.Namespace) -> None:
    from models import probes

    stamp = {"trained": dt.date.today().isoformat(), "versions": package_versions()}
    report = probes.train(args.model, data_dir=args.data, limit=args.limit, test_limit=args.test_limit, seed=args.seed, stamp=stamp)
    print(f"saved probes of {args.model} for {len(report['layers'])} layers in {report['total_seconds']:.0f} s")
    for layer in report["layers"]:
        test = f", test {layer['test_accuracy']:.4f}" if "test_accuracy" in layer else ""
        print(f"  {layer['name']:12s} validation {layer['validation_accuracy']:.4f}{test} (C={layer['C']:g})")


def _seal(args: argparse.Namespace) -> None:
    found = registry.entry(args.model)
    if not found.ships_assets and not args.assets:
        raise LensError(f"{args.model} has no asset folder of ours to seal")
    folder = args.assets or found.asset_dir
    if not folder.is_dir():
        raise LensError(f"{folder} is not a folder")
    for name, digest in seal(folder).items():
        print(f"{digest}  {name}")
    print(f"recorded in {folder / CHECKSUMS}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {
        "list": lambda _: _list(),
        "predict": _predict,
        "evaluate": _evaluate,
        "train": _train,
        "faithfulness": _faithfulness,
        "ground-truth": _ground_truth,
        "corpus": _corpus,
        "seal": _seal,
        "train-probes": _train_probes,
    }
    try:
        handlers[args.command](args)
    except LensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
