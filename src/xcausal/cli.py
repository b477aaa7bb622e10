"""Command-line interface. Thin: arguments -> config -> public function -> output directory.

Bad input exits with status 2 and one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xcausal import __version__

app = typer.Typer(
    name="xcausal",
    help="Causal discovery between images and structured variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out_console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xcausal {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    """xcausal: find cause-effect relations between images and structured variables."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _split(s: str | None) -> list[str]:
    return [t.strip() for t in s.split(",") if t.strip()] if s else []


def _cli_type(o) -> Any:
    """The type typer parses an option's flag as (text for choices, lists and tuples)."""
    if o.type in (bool, int, float, str):
        return o.type
    if o.type in (Optional[int], Optional[float]):
        return o.type
    return Optional[str]


def _option_parameter(o, *, help: str, panel: str | None = None, hidden: bool = False) -> inspect.Parameter:
    """The keyword parameter of a command for FitOption ``o``: its flags, type and default (a list
    option's default is None, "not given")."""
    given_as_default = not isinstance(o.default, (list, tuple))
    shown = given_as_default and o.default not in (None, False, "")
    return inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default if given_as_default else None,
                             annotation=Annotated[_cli_type(o), typer.Option(
                                 *o.cli_flags(), help=help, rich_help_panel=panel, hidden=hidden, show_default=shown)])


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """Option values as typer passes them -> the values FitConfig and load_dataset take (lists split,
    paths as text)."""
    from xcausal.options import FIT_OPTIONS

    given: dict[str, Any] = {}
    for name, value in options.items():
        o = FIT_OPTIONS[name]
        if value is None and o.default is not None:
            value = o.default  # a list, tuple or text option not given
        elif o.is_list and isinstance(value, str):
            value = _split(value)
        elif isinstance(value, Path):
            value = str(value)
        given[name] = value
    return given


# Choosing rows: one meaning in every verb that shows samples (xcausal.rows)
_ROWS_HELP = ("Table rows to show: row numbers and ranges, e.g. 3,7,10-19 (1 = the first data row of table.csv, "
              "as data errors number rows; rows dropped by --missing drop keep their numbers).")
_IDS_HELP = "Rows to show by the values of the id column, e.g. P00007,P00012 (instead of --rows)."
_SAMPLES_HELP = "Without --rows or --ids: show this many rows, spread over the table."
RowsOption = Annotated[Optional[str], typer.Option("--rows", help=_ROWS_HELP)]
IdsOption = Annotated[Optional[str], typer.Option("--ids", help=_IDS_HELP)]


def _check_selection(rows: str | None, ids: str | None, samples: int) -> None:
    """--rows / --ids / --samples checked before anything is loaded (the table is checked later)."""
    from xcausal.io import DataError
    from xcausal.rows import parse_rows

    if rows is not None and ids is not None:
        raise DataError("--rows and --ids: give one of them")
    if rows is not None:
        parse_rows(rows)
    if ids is not None and not _split(ids):
        raise DataError("--ids: give at least one id")
    if samples < 1:
        raise DataError(f"--samples {samples}: must be at least 1")


# --------------------------------------------------------------------------- simulate
REALISTIC_FAMILIES = ("morpho", "marker", "site", "anticausal", "chain", "unrelated", "mixed")
"""``--kind`` values of the realistic families (xcausal.data.realistic, kept equal by a test)."""


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output dataset directory (or a .npz file).")],
    kind: Annotated[str, typer.Option("--kind", help="appendix-e (the paper's synthetic graphs), mnist-rotate or mnist-shift (real MNIST digits, Sec. 4.2 / App. E.3), circles (RGB circles with binary hue/radius/shift and a stress-strain curve modality), xray-phantom (chest-radiograph-like phantoms with infected, age, opacity_score, site), or a realistic family on MNIST digits: morpho, marker, site, anticausal, chain, unrelated, mixed (docs/realistic_suite.md).")] = "appendix-e",
    graph: Annotated[str, typer.Option("--graph", help="appendix-e: graph spec E/N (E structured variables, N-E latents), or 'first'.")] = "5/10",
    n: Annotated[int, typer.Option("--n", help="Number of samples.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (the data are a pure function of it).")] = 0,
    image_size: Annotated[Optional[int], typer.Option("--image-size", help="Image side in pixels (default: 128 for xray-phantom, 32 otherwise).")] = None,
    digits: Annotated[str, typer.Option("--digits", help="mnist-*: number of distinct digit images (the paper: 10), or 'all'.")] = "10",
    circles_dag: Annotated[str, typer.Option("--circles-dag", help="circles: DAG over hue, radius, shift: v-structure, chain or independent.")] = "v-structure",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Simulate a benchmark dataset: the CMCL paper's Appendix-E graphs, rotated / shifted MNIST, circles, x-ray phantoms, or a realistic MNIST family."""
    from xcausal.data.dataset import save_dataset_dir, save_dataset_npz
    from xcausal.io import DataError, check_output

    check_output(out, overwrite=overwrite, kind="file" if str(out).endswith(".npz") else "directory")
    if image_size is None:
        image_size = 128 if kind == "xray-phantom" else 32
    if kind == "appendix-e":
        from xcausal.data.simulate import simulate_appendix_e

        sim = simulate_appendix_e(graph, n, seed=seed, image_size=image_size)
        what = f"graph {graph}"
    elif kind in ("mnist-rotate", "mnist-shift"):
        from xcausal.data.mnist import simulate_mnist

        if digits != "all" and not (digits.isascii() and digits.isdecimal()):
            raise DataError(f"--digits {digits}: give a number of digit images or 'all'")
        sim = simulate_mnist(kind.split("-")[1], n, seed=seed, image_size=image_size,  # type: ignore[arg-type]
                             digits="all" if digits == "all" else int(digits))
        what = f"{kind} ({digits} digit images)"
    elif kind == "circles":
        from xcausal.data.circles import CIRCLE_DAGS, simulate_circles

        if circles_dag not in CIRCLE_DAGS:
            raise DataError(f"--circles-dag {circles_dag}: must be {', '.join(CIRCLE_DAGS[:-1])} or {CIRCLE_DAGS[-1]}")
        sim = simulate_circles(n, seed=seed, image_size=image_size, dag=circles_dag)  # type: ignore[arg-type]
        what = f"circles ({circles_dag}; modalities: {', '.join(sim.modalities)})"
    elif kind == "xray-phantom":
        from xcausal.data.xray import MIN_IMAGE_SIZE, simulate_xray_phantom

        if image_size < MIN_IMAGE_SIZE:
            raise DataError(f"--image-size {image_size}: xray-phantom needs at least {MIN_IMAGE_SIZE}")
        sim = simulate_xray_phantom(n, seed=seed, image_size=image_size)
        what = f"x-ray phantoms ({image_size} px; infected, age, opacity_score, site)"
    elif kind in REALISTIC_FAMILIES:
        from xcausal.data.realistic import MIN_IMAGE_SIZE as MIN_REALISTIC_SIZE, simulate_realistic

        if image_size < MIN_REALISTIC_SIZE:
            raise DataError(f"--image-size {image_size}: {kind} needs at least {MIN_REALISTIC_SIZE}")
        sim = simulate_realistic(kind, n, seed=seed, image_size=image_size)
        what = f"realistic {kind} ({image_size} px; {', '.join(sim.table.columns)})"
    else:
        raise DataError(f"--kind {kind}: must be appendix-e, mnist-rotate, mnist-shift, circles, xray-phantom, "
                        f"or one of the realistic families {', '.join(REALISTIC_FAMILIES)}")
    save = save_dataset_npz if str(out).endswith(".npz") else save_dataset_dir
    kw = {"extra_files": {"simulation.json": sim.info}} if save is save_dataset_dir else {}
    save(out, sim.images, sim.table, truth=sim.truth, latents=sim.latents, overwrite=overwrite,
         modalities=sim.modalities, **kw)
    err_console.print(f"wrote {n} samples of {what} ({len(sim.truth.edges)} true edges) to {out}")


# --------------------------------------------------------------------------- convert
def convert(src: Path, out: Path, overwrite: bool = False, **options: Any) -> None:
    """Convert a dataset directory to one .npz, or a .npz to a directory (with the data options a
    fit would use: roles, missing rows, types; images at their stored size unless --image-size)."""
    from xcausal.data.dataset import convert_dataset

    given = _given(options)
    if options.get("image_size") is None:
        given["image_size"] = None
    convert_dataset(src, out, overwrite=overwrite, **given)
    err_console.print(f"wrote {out}")


def _convert_parameters() -> list[inspect.Parameter]:
    """convert's parameters: source, output, --overwrite, then every data option of fit."""
    from xcausal.options import DATA_OPTIONS, FIT_OPTIONS

    kw = inspect.Parameter.KEYWORD_ONLY
    return [inspect.Parameter("src", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[
                Path, typer.Argument(help="Dataset directory or .npz file.")]),
            inspect.Parameter("out", kw, annotation=Annotated[
                Path, typer.Option("--out", "-o", help="Output: a .npz file or a directory.")]),
            inspect.Parameter("overwrite", kw, default=False, annotation=Annotated[
                bool, typer.Option("--overwrite", help="Replace OUT if it exists.")])] + \
        [_option_parameter(o, help=o.help[0].upper() + o.help[1:] + ".") for o in (FIT_OPTIONS[n] for n in DATA_OPTIONS)]


convert.__signature__ = inspect.Signature(_convert_parameters(), return_annotation=None)  # type: ignore[attr-defined]
convert.__annotations__ = {p.name: p.annotation for p in convert.__signature__.parameters.values()}  # type: ignore[attr-defined]
app.command()(convert)


# --------------------------------------------------------------------------- info
def info(data: Path, **options: Any) -> None:
    """Validate a dataset and show its rows, image size and detected variable types."""
    from xcausal.data.dataset import load_dataset

    ds = load_dataset(data, **_given(options))
    out_console.print(f"{data}: {len(ds)} rows, images {ds.channels}×{ds.image_size}×{ds.image_size}", soft_wrap=True)
    stored = max(ds.stored_sizes) if ds.stored_sizes else ds.image_size
    if stored > ds.image_size and options.get("image_size") is None:
        out_console.print(f"images: stored up to {stored} px, downscaled to {ds.image_size} "
                          f"(--image-size {stored} keeps them)", soft_wrap=True, highlight=False)
    if ds.mixed_channels:
        out_console.print(f"images: mixed grayscale and RGB -> {'RGB' if ds.channels == 3 else 'grayscale'}",
                          soft_wrap=True, highlight=False)
    if ds.id_column is not None:
        out_console.print(f"row ids: column '{ds.id_column}' (not a variable)", soft_wrap=True)
    if ds.dropped_rows:
        from collections import Counter

        why = Counter(ds.dropped_rows.values()).most_common()
        shown = "; ".join(f"{reason} ({k})" for reason, k in why[:5]) + ("; …" if len(why) > 5 else "")
        first = ", ".join(str(r) for r in sorted(ds.dropped_rows)[:10]) + (" …" if len(ds.dropped_rows) > 10 else "")
        out_console.print(f"rows dropped (--missing drop): {len(ds.dropped_rows)} of {ds.table_rows}: {shown}; "
                          f"rows {first}", soft_wrap=True, highlight=False)
    t = Table()
    t.add_column("variable")
    t.add_column("type")
    t.add_column("values")
    for v in ds.variables:
        if v.categories:
            vals = ", ".join(v.categories[:6]) + (" …" if len(v.categories) > 6 else "")
        else:
            col = ds.u[:, ds.variable_names.index(v.name)]
            vals = f"{col.min():.3g} .. {col.max():.3g}"
        t.add_row(v.name, v.type.value, vals)
    out_console.print(t)
    if ds.truth is not None:
        out_console.print(f"ground truth: {len(ds.truth.edges)} edge(s) over {len(ds.truth.nodes)} nodes")
    out_console.print(_default_fit_text(ds), soft_wrap=True, highlight=False)


def _default_fit_text(ds: Any) -> str:
    """'default cmcl fit: E epochs of K steps, estimated time about T on this machine'."""
    from xcausal.cost import clock_text, estimate_cmcl_fit
    from xcausal.models.cmcl.config import OPTIONS

    batch = OPTIONS["batch_size"].default
    epochs, seconds = estimate_cmcl_fit(ds, batch_size=batch, plan=OPTIONS["channel_plan"].default)
    return (f"default cmcl fit: {epochs} epochs of {-(-len(ds) // batch)} steps, estimated time "
            f"{clock_text(seconds)} on this machine")


def _info_parameters() -> list[inspect.Parameter]:
    """info's parameters: the dataset, then every data option of fit (the same flags and meaning)."""
    from xcausal.options import DATA_OPTIONS, FIT_OPTIONS

    data = inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[
        Path, typer.Argument(help="Dataset directory or .npz file.")])
    return [data] + [_option_parameter(o, help=o.help[0].upper() + o.help[1:] + ".")
                     for o in (FIT_OPTIONS[n] for n in DATA_OPTIONS)]


info.__signature__ = inspect.Signature(_info_parameters(), return_annotation=None)  # type: ignore[attr-defined]
info.__annotations__ = {p.name: p.annotation for p in info.__signature__.parameters.values()}  # type: ignore[attr-defined]
app.command()(info)


# --------------------------------------------------------------------------- evaluate
def _fmt(x: object) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3f}"
    return str(x)


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory, or a bare graph.json.")],
    truth: Annotated[Path, typer.Option("--truth", help="Dataset (directory/.npz) holding the ground truth, or a truth.json.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object on stdout.")] = False,
    counterfactual: Annotated[bool, typer.Option("--counterfactual", help="Also measure counterfactual images: effectiveness, invariance, composition, reversibility.")] = False,
    samples: Annotated[int, typer.Option("--samples", help="Rows (spread over the table) that --counterfactual uses.")] = 64,
) -> None:
    """Score a run against the ground truth: SHD/TPR/FPR/FDR, MCC/MIC, per-variable verdicts."""
    from xcausal.evaluate import FEATURE_METHODS, evaluate_run
    from xcausal.io import DataError, write_json

    if counterfactual and not run.is_dir():
        raise DataError(f"{run}: --counterfactual needs a run directory (with the model), not a graph.json")
    if samples < 1:
        raise DataError(f"--samples {samples}: must be at least 1")
    res = evaluate_run(run, truth)
    if res.get("method") in FEATURE_METHODS:
        _evaluate_features_out(run, truth, res, as_json=as_json, counterfactual=counterfactual, samples=samples)
        return
    if counterfactual:
        from xcausal.api import load_generative_model, load_run_dataset
        from xcausal.evaluate import evaluate_counterfactuals, load_truth

        model = load_generative_model(run)
        res["counterfactual"] = evaluate_counterfactuals(model, load_run_dataset(run, truth), load_truth(truth)[0],
                                                         samples=samples)
    if run.is_dir():
        write_json(run / "metrics.json", res)
    if as_json:
        typer.echo(json.dumps(res))
        return
    t = Table(title=f"{res.get('method') or run}: structure vs truth")
    for k in ("shd", "tpr", "fpr", "fdr", "nnz", "mcc", "mic"):
        t.add_column(k)
    t.add_row(*[_fmt(res[k]) for k in ("shd", "tpr", "fpr", "fdr", "nnz", "mcc", "mic")])
    out_console.print(t)
    v = Table(title="per variable")
    for c in ("variable", "true", "found", "agree"):
        v.add_column(c)
    for name, d in res["variables"].items():
        tl = f"{d['true']} ({', '.join(d['true_latents'])})" if d["true_latents"] else d["true"]
        fl = f"{d['found']} ({', '.join(d['found_latents'])})" if d["found_latents"] else d["found"]
        v.add_row(name, tl, fl, "[green]yes[/]" if d["agree"] else "[red]no[/]")
    out_console.print(v)
    und = res.get("n_undetermined", 0)
    out_console.print(f"{res['n_agree']}/{res['n_variables']} variables agree with the truth"
                      + (f" ({und} undetermined: the direction was left open)" if und else ""))
    if "counterfactual" in res:
        keys = ["effectiveness_r", "effectiveness_mae", "invariance_l1", "composition_l1_1", "composition_l1_10",
                "reversibility_l1"]
        c = Table(title="counterfactual images (L1 in 0-255; '-' = not applicable)")
        for k in ["variable"] + keys:
            c.add_column(k)
        for name, d in res["counterfactual"].items():
            c.add_row(name, *[_fmt(d.get(k)) for k in keys])
        out_console.print(c)


def _evaluate_features_out(run: Path, truth: Path, res: dict, *, as_json: bool, counterfactual: bool,
                           samples: int) -> None:
    """evaluate for causal-pima / pima runs: feature recovery, structure up to equivalence, do() checks."""
    from xcausal.io import write_json

    if counterfactual:
        from xcausal.api import load_model, load_run_dataset
        from xcausal.evaluate import evaluate_feature_interventions, load_truth

        res["interventions"] = evaluate_feature_interventions(load_model(run), load_run_dataset(run, truth),
                                                              load_truth(truth)[0], res["matching"], samples=samples)
    if run.is_dir():
        write_json(run / "metrics.json", res)
    if as_json:
        typer.echo(json.dumps(res))
        return
    keys = ("cluster_accuracy", "joint_accuracy", "node_accuracy", "skeleton_shd", "cpdag_shd", "shd")
    t = Table(title=f"{res['method']}: discovered features vs truth")
    for k in keys:
        t.add_column(k)
    t.add_row(*[_fmt(res[k]) for k in keys])
    out_console.print(t)
    m = Table(title="feature -> learned node")
    for c in ("feature", "node", "flipped", "accuracy"):
        m.add_column(c)
    for f, (node, flipped) in res["matching"].items():
        m.add_row(f, node, "yes" if flipped else "no", _fmt(res["node_accuracies"][f]))
    out_console.print(m)
    out_console.print("learned edges: " + (", ".join(f"{a} -> {b}" for a, b, _ in res["edges"]) or "none"))
    if "interventions" in res:
        c = Table(title="do(feature) measured from the regenerated images' pixels")
        for col in ("feature", "target_accuracy", "others_unchanged", "descendant_effect (data)"):
            c.add_column(col)
        for f, d in res["interventions"].items():
            others = ", ".join(f"{o} {_fmt(v)}" for o, v in d["others_unchanged"].items()) or "-"
            de = ", ".join(f"{k} {d['descendant_effect'][k]:+.2f} ({d.get('descendant_effect_data', {}).get(k, float('nan')):+.2f})"
                           for k in d["descendant_effect"]) or "-"
            c.add_row(f, _fmt(d["target_accuracy"]), others, de)
        out_console.print(c)


# --------------------------------------------------------------------------- fit
_EXPERT = "Expert options (hidden flags; see `xcausal options`)"


def _fit_parameters() -> list[inspect.Parameter]:
    """The fit command's parameters, one per option of :data:`xcausal.options.FIT_OPTIONS`."""
    from xcausal.options import CONFIG, FIT_OPTIONS, PANELS

    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
              inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                annotation=Annotated[Optional[Path], typer.Argument(help=FIT_OPTIONS["data"].help)])]
    config = [inspect.Parameter("config", kw, default=None, annotation=Annotated[Optional[Path], typer.Option(
                  "--config", rich_help_panel=CONFIG,
                  help="YAML file of options (keys = option names, e.g. `epochs: 60`); the command line wins")]),
              inspect.Parameter("set_", kw, default=None, annotation=Annotated[Optional[list[str]], typer.Option(
                  "--set", rich_help_panel=CONFIG, metavar="NAME=VALUE",
                  help="any option, repeatable, e.g. --set anm_entropy=gmm (all: `xcausal options`)")])]
    order = {p: i for i, p in enumerate(PANELS)}
    for o in sorted(FIT_OPTIONS.values(), key=lambda o: order.get(o.panel, len(order))):
        if o.name in ("data", "command"):
            continue
        params.append(_option_parameter(o, help=o.help, panel=o.panel or _EXPERT, hidden=o.panel is None))
    return params + config


def fit(ctx: typer.Context, data: Optional[Path] = None, config: Optional[Path] = None,
        set_: Optional[list[str]] = None, **options: Any) -> None:
    """Fit a method and write the run directory (graph.json, latents, checkpoint, graph.png, ...).

    cmcl checkpoints its training in OUT.partial (every --checkpoint-every epochs, and when stopped by
    Ctrl-C or SIGTERM); `--resume` continues from there. OUT appears only when the fit is complete.
    Every option has one name: `--name` here, `name:` in --config, `--set name=value`.
    """
    import shlex

    from xcausal.api import FitConfig, read_config_file
    from xcausal.api import fit as api_fit
    from xcausal.io import DataError
    from xcausal.options import FIT_OPTIONS, parse_text

    given: dict[str, Any] = {"data": None if data is None else str(data), **_given(options)}
    from_cli = {n for n in options if getattr(ctx.get_parameter_source(n), "name", "") not in ("DEFAULT", "DEFAULT_MAP")}
    for item in set_ or []:
        key, sep, text = item.partition("=")
        name = key.strip().replace("-", "_")
        if not sep or name not in FIT_OPTIONS or name in ("data", "command"):
            raise DataError(f"--set {item}: expected NAME=VALUE with an option name (see `xcausal options`)")
        if name in from_cli:
            raise DataError(f"--set {item}: {name} is also given as a flag; give it once")
        given[name] = parse_text(FIT_OPTIONS[name], text)
        from_cli.add(name)
    if config is not None:
        for key, val in read_config_file(config).items():
            if key not in from_cli:
                given[key] = val
    for need in ("data", "out"):
        if not given.get(need):
            raise DataError(f"fit: no {'dataset' if need == 'data' else '--out run directory'} given "
                            f"(pass it on the command line or as `{need}:` in --config)")
    given["data"], given["out"] = str(given["data"]), str(given["out"])
    cfg = FitConfig(**given, command=shlex.join(["xcausal", *_ARGV]))
    if isinstance(cfg.threads, int) and not isinstance(cfg.threads, bool) and cfg.threads >= 1:
        from xcausal._runtime import limit_process_threads

        limit_process_threads(cfg.threads)  # this process is the command line's own
    run = api_fit(cfg)
    from xcausal.run import read_run

    rd = read_run(run)
    g = rd.graph
    err_console.print(f"wrote {run}: {len(g.edges)} edge(s)")
    if cfg.method == "cmcl":
        from xcausal.models.cmcl.config import knowledge_summary

        err_console.print(knowledge_summary(rd.config.get("params") or {}), markup=False, highlight=False,
                          soft_wrap=True)
    for e in g.edges:
        out_console.print(f"  {e.source} -> {e.target}  (weight {e.weight:.2f})")


fit.__signature__ = inspect.Signature(_fit_parameters(), return_annotation=None)  # type: ignore[attr-defined]
fit.__annotations__ = {p.name: p.annotation for p in fit.__signature__.parameters.values()}  # type: ignore[attr-defined]
app.command(context_settings={"max_content_width": 100})(fit)


@app.command()
def options(
    method: Annotated[Optional[str], typer.Option("--method", help="Only the options that apply to this method.")] = None,
) -> None:
    """Every option of `xcausal fit` with its default and what it does (flags, --set and YAML take the same names)."""
    from xcausal.options import FIT_OPTIONS

    t = Table(title="xcausal fit options (--name VALUE, --set name=VALUE, or name: VALUE in --config)")
    for c in ("option", "default", "applies to", "what it does"):
        t.add_column(c, overflow="fold")
    for o in FIT_OPTIONS.values():
        if o.name == "command" or (method and o.methods != "all" and method not in o.methods):
            continue
        default = ",".join(map(str, o.default)) if isinstance(o.default, (list, tuple)) else o.default
        t.add_row(o.name, "-" if default in (None, "") else str(default),
                  "all" if o.methods == "all" else ", ".join(o.methods), o.help)
    out_console.print(t)


# --------------------------------------------------------------------------- intervene
@app.command()
def intervene(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    var: Annotated[str, typer.Option("--var", help="Variable to intervene on.")],
    values: Annotated[str, typer.Option("--values", help="Comma-separated values, e.g. 0,2.5,5.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")],
    rows: RowsOption = None,
    ids: IdsOption = None,
    samples: Annotated[int, typer.Option("--samples", help=_SAMPLES_HELP)] = 10,
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset (default: the one the run was fitted on).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Regenerate images under do(VAR = value): grid rows = samples, columns = values."""
    from xcausal.api import intervention_grid
    from xcausal.io import DataError, check_output

    check_output(out, overwrite=overwrite, kind="file")
    vals = _split(values)
    if not vals:
        raise DataError("--values: give at least one value")
    _check_selection(rows, ids, samples)
    intervention_grid(run, var, vals, out, rows=rows, ids=ids, samples=samples, data=data)
    err_console.print(f"wrote {out}")


# --------------------------------------------------------------------------- counterfactual / explain
@app.command()
def counterfactual(
    run: Annotated[Path, typer.Argument(help="Run directory (cmcl).")],
    set_: Annotated[list[str], typer.Option("--set", help="VAR=VALUE, repeatable: the intervention do(VAR = VALUE).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    rows: RowsOption = None,
    ids: IdsOption = None,
    samples: Annotated[int, typer.Option("--samples", help=_SAMPLES_HELP)] = 10,
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset (default: the one the run was fitted on).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Each chosen image beside its counterfactual under do(VAR = VALUE) (PNG grid, images/rowN_*.png, CSV)."""
    from xcausal.api import counterfactual_pairs
    from xcausal.io import DataError

    values: dict[str, str] = {}
    for item in set_:
        name, sep, val = item.partition("=")
        if not sep or not name.strip() or not val.strip():
            raise DataError(f"--set {item}: expected VAR=VALUE")
        values[name.strip()] = val.strip()
    _check_selection(rows, ids, samples)
    res = counterfactual_pairs(run, values, out, rows=rows, ids=ids, samples=samples, data=data, overwrite=overwrite)
    err_console.print(f"wrote {res}/counterfactuals.png, images/, counterfactuals.csv")


@app.command()
def explain(
    run: Annotated[Path, typer.Argument(help="Run directory (cmcl or a VAE pipeline).")],
    latent: Annotated[str, typer.Option("--latent", help="Latent to explain, e.g. z1.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")],
    rows: RowsOption = None,
    ids: IdsOption = None,
    samples: Annotated[int, typer.Option("--samples", help=_SAMPLES_HELP)] = 8,
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset (default: the one the run was fitted on).")] = None,
    negative: Annotated[bool, typer.Option("--negative", help="Explain -z (a latent's sign is arbitrary).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Grad-CAM++ heatmaps of one latent over input images: where in the image the latent lives."""
    from xcausal.api import explain_latent
    from xcausal.io import check_output

    check_output(out, overwrite=overwrite, kind="file")
    _check_selection(rows, ids, samples)
    explain_latent(run, latent, out, rows=rows, ids=ids, samples=samples, data=data, sign=-1 if negative else 1)
    err_console.print(f"wrote {out}")


# --------------------------------------------------------------------------- bench
@app.command()
def bench(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (resumes if it holds cached cells).")],
    suite: Annotated[str, typer.Option("--suite", help="paper (CMCL paper Fig. 2, Tables 1-2) or realistic (scenario families on MNIST digits and x-ray phantoms, judged by measuring the images; docs/realistic_suite.md).")] = "paper",
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Seeds per graph or family (default: paper 5, realistic 3).", show_default=False)] = None,
    n: Annotated[int, typer.Option("--n", help="Samples per simulated dataset.")] = 2000,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Training epochs of every method (default: each method's own).")] = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", help="Image side in pixels (default: 32; realistic --quick: 16; xray-phantom at least 32).", show_default=False)] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Cells run in parallel (processes).")] = 1,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Torch and BLAS threads per parallel cell (default: cores // jobs).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run. paper: two small graphs, one seed, 3 epochs, n = 300; realistic: one seed, n <= 80, 16 px, 2 epochs, cmcl only unless --methods.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    backend: Annotated[str, typer.Option("--backend", help="joblib backend: loky, ray or dask.", rich_help_panel="Paper suite")] = "loky",
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address (default: a local cluster).", rich_help_panel="Paper suite")] = None,
    graphs: Annotated[Optional[str], typer.Option("--graphs", help="Figure-2 graphs, comma-separated (default: the paper's seven).", rich_help_panel="Paper suite")] = None,
    table1_graphs: Annotated[Optional[str], typer.Option("--table1-graphs", help="Table-1 graphs (default: 3/10,5/10,8/16,10/20).", rich_help_panel="Paper suite")] = None,
    ablation_graph: Annotated[str, typer.Option("--ablation-graph", help="Table-2 graph.", rich_help_panel="Paper suite")] = "20/40",
    representations: Annotated[Optional[str], typer.Option("--representations", help="Figure-2 representation learners (default: betavae,factorvae,tcvae,ivae).", rich_help_panel="Paper suite")] = None,
    families: Annotated[Optional[str], typer.Option("--families", help="Families, comma-separated (default: morpho,marker,site,anticausal,chain,unrelated,mixed,xray-phantom).", rich_help_panel="Realistic suite")] = None,
    methods: Annotated[Optional[str], typer.Option("--methods", help="cmcl (its defaults) and/or <representation>+<structure> pipelines, comma-separated (default: cmcl,ivae+notears).", rich_help_panel="Realistic suite")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Refits per cell on resamples, for the verdicts' support (wrong-and-confident rate); 0 = off.", rich_help_panel="Realistic suite")] = 0,
) -> None:
    """Run a benchmark suite (resumable): the CMCL paper's Figure 2, Table 1 and Table 2, or the realistic suite's per-family scores."""
    from xcausal.io import DataError

    if suite not in ("paper", "realistic"):
        raise DataError(f"--suite {suite}: unknown suite (available: paper, realistic)")
    if threads is not None and threads < 1:
        raise DataError(f"--threads {threads}: must be at least 1")
    command = "xcausal bench " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [])
    if suite == "realistic":
        paper_only = {"--backend": backend != "loky", "--scheduler": scheduler is not None, "--graphs": graphs,
                      "--table1-graphs": table1_graphs, "--ablation-graph": ablation_graph != "20/40",
                      "--representations": representations}
        given = [k for k, v in paper_only.items() if v]
        if given:
            raise DataError(f"{', '.join(given)}: only for --suite paper")
        from xcausal.bench.realistic import RealisticBenchConfig, run_realistic_bench

        rcfg = RealisticBenchConfig(out=str(out), seeds=3 if seeds is None else seeds, n=n, image_size=image_size,
                                    epochs=epochs, bootstrap=bootstrap, jobs=jobs, threads=threads, quick=quick,
                                    methods=_split(methods) or None)
        if families:
            rcfg.families = _split(families)

        def rprogress(cell, done: int, total: int, row) -> None:
            if not quiet:
                what = "" if row is None else (f": {row['n_right']}/{row['n_variables']} verdicts right, "
                                               f"MCC {row['mcc']:.2f}, fit {row['fit_seconds']:.0f} s")
                err_console.print(f"[{done}/{total}] {cell.family} {cell.method} seed {cell.seed}{what}", highlight=False)

        res = run_realistic_bench(rcfg, command=command, on_cell=rprogress)
        out_console.print((res / "summary.md").read_text(), markup=False, highlight=False)
        err_console.print(f"wrote {res}/summary.md, results.csv, variables.csv")
        return
    if families or methods or bootstrap:
        raise DataError("--families, --methods, --bootstrap: only for --suite realistic")
    from xcausal.bench.paper import PaperBenchConfig, run_paper_bench

    cfg = PaperBenchConfig(out=str(out), seeds=5 if seeds is None else seeds, n=n, epochs=epochs, jobs=jobs,
                           backend=backend, threads=threads,  # type: ignore[arg-type]
                           scheduler=scheduler, quick=quick, ablation_graph=ablation_graph,
                           image_size=32 if image_size is None else image_size)
    if graphs:
        cfg.fig2_graphs = _split(graphs)
    if table1_graphs:
        cfg.table1_graphs = _split(table1_graphs)
    if representations:
        cfg.representations = _split(representations)

    def progress(cell, done: int, total: int) -> None:
        if not quiet:
            err_console.print(f"[{done}/{total}] {cell.kind} {cell.name} {cell.graph} seed {cell.seed}", highlight=False)

    res = run_paper_bench(cfg, command=command, on_cell=progress)
    out_console.print((res / "results.md").read_text(), markup=False, highlight=False)
    err_console.print(f"wrote {res}/results.md, figure2.png, table1.csv, table2.csv, timing.csv")


# --------------------------------------------------------------------------- report
@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Run directory (any method).")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset (default: the one the run was fitted on).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="HTML file to write (default: RUN/report.html).")] = None,
    rows: RowsOption = None,
    ids: IdsOption = None,
    samples: Annotated[int, typer.Option("--samples", help="Without --rows or --ids: rows (spread over the table) in each image grid and heatmap.")] = 6,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the report if it exists.")] = False,
) -> None:
    """Write one self-contained HTML report of a run: verdicts, data, graph, interventions, traversals, heatmaps, training curves, provenance."""
    from xcausal.io import DataError, check_output
    from xcausal.viz.report import write_report

    if not run.is_dir():
        raise DataError(f"{run}: not a run directory" if run.exists() else f"{run}: no such run directory")
    target = out if out is not None else run / "report.html"
    check_output(target, overwrite=overwrite, kind="file")
    _check_selection(rows, ids, samples)
    res = write_report(run, data=data, out=target, samples=samples, rows=rows, ids=ids)
    err_console.print(f"wrote {res}", highlight=False)


# --------------------------------------------------------------------------- entry point
ERROR_LINE_MAX = 300
"""Longest ``error:`` / ``internal error:`` line printed; longer messages lose their middle."""
_WORD_MAX = 160  # longest run of non-blank characters (a path, a cell value) kept whole


def _capped(msg: str, limit: int) -> str:
    """``msg`` shortened to ``limit`` characters. Each over-long word (a path, a cell value) loses its
    middle first, so that a path keeps its start and its file name; then, if the message is still
    too long, the message loses its middle (it starts with the file name in xcausal's errors)."""
    from xcausal.io import cut_middle

    if len(msg) <= limit:
        return msg
    msg = re.sub(r"\S{%d,}" % (_WORD_MAX + 1), lambda m: cut_middle(m.group(), _WORD_MAX), msg)
    return cut_middle(msg, limit)


def _print_error(msg: str) -> None:
    """``error: msg`` on one line of stderr, at most ERROR_LINE_MAX characters; ``msg`` (file names,
    cell values) is not rich markup."""
    msg = _capped(msg, ERROR_LINE_MAX - len("error: "))
    err_console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)


def _first_line(exc: BaseException) -> str:
    """The first non-blank line of ``str(exc)``, or '' when it has none."""
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")


def _is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, or torch's allocation failures (RuntimeError / torch.OutOfMemoryError)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    msg = str(exc)
    return isinstance(exc, RuntimeError) and ("not enough memory" in msg or "can't allocate memory" in msg)


def _allocating_function(exc: BaseException) -> str | None:
    """``module.function`` of the innermost xcausal frame (not the CLI's) the exception passed through."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith("xcausal.") and module != __name__:
            found = f"{module}.{tb.tb_frame.f_code.co_name}"
        tb = tb.tb_next
    return found


def _memory_error_line(exc: BaseException) -> str:
    """One line: what ran out of memory and, when known, how much it asked for."""
    where = _allocating_function(exc)
    what = _first_line(exc)
    return "out of memory" + (f" in {where}" if where else "") + (f": {what}" if what else "")


_ARGV: list[str] = []  # the arguments of the current main() call, recorded in a run's config.json


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; maps bad input to a one-line error and exit status 2.

    Exit status: 0 done; 2 bad input, a file problem or not enough memory (one ``error:`` line);
    1 an unexpected exception (one ``internal error:`` line; ``--debug`` raises it instead);
    130 (or 128 + the signal) interrupted.
    """
    from xcausal.io import DataError

    argv = list(sys.argv[1:] if argv is None else argv)
    global _ARGV
    _ARGV = list(argv)
    debug = "--debug" in argv
    try:
        # standalone_mode=False: typer returns the status of a typer.Exit (Ctrl-C becomes Exit(130))
        # instead of calling sys.exit, and raises usage errors and everything else to here
        status = app(args=argv, prog_name="xcausal", standalone_mode=False)
    except (DataError, ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as exc:
        if debug:
            raise
        _print_error(_first_line(exc) or type(exc).__name__)
        return 2
    except OSError as exc:  # permission denied, a directory where a file was expected, disk full, ...
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _print_error(f"{where}{exc.strerror or type(exc).__name__}")
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:  # a declined prompt: typer's own message, if any, was shown
        return 1
    except typer.TyperException as exc:  # usage errors: a missing argument, an unknown option, a bad value
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help was shown
            return exc.exit_code
        lines = [ln for ln in exc.format_message().splitlines() if ln.strip()]
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None and ctx.command_path else ""
        _print_error(f"{lines[0] if lines else type(exc).__name__}{hint}")
        return exc.exit_code
    except Exception as exc:  # a stopped fit, not enough memory, and anything unexpected
        cmcl = sys.modules.get("xcausal.models.cmcl")  # (not imported: no fit ran, torch stays unloaded)
        if cmcl is not None and isinstance(exc, cmcl.FitInterrupted) and not debug:
            import signal

            name = signal.Signals(exc.signum).name if exc.signum else "a stop request"
            hint = " (continue with the same command and --resume)" if exc.checkpoint_dir is not None else ""
            err_console.print(f"interrupted by {name}: {_first_line(exc)}{hint}", markup=False,
                              highlight=False, soft_wrap=True)
            return 128 + exc.signum if exc.signum else 130
        if debug:
            raise
        if _is_out_of_memory(exc):
            _print_error(_memory_error_line(exc))
            return 2
        detail = _first_line(exc)
        tail = " (rerun with --debug for the traceback)"
        what = _capped(type(exc).__name__ + (f": {detail}" if detail else ""),
                       ERROR_LINE_MAX - len("internal error: ") - len(tail))
        err_console.print(f"[bold red]internal error:[/] {escape(what)}{tail}", highlight=False, soft_wrap=True)
        return 1
    if isinstance(status, int) and not isinstance(status, bool) and status:
        if status == 130:
            err_console.print("interrupted")
        return status
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
