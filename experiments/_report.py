"""Write results/README.md from the experiments' summary.json files (the claims tables are generated).

    python -m experiments._report            # after the experiments have written results/NAME/

Each section: the experiment's title and description (its module docstring), the figures it wrote,
the command that made it, the run's time and dataset, and the table of claims (the paper's claim,
its source, what this run measured with its spread over seeds, agreement). ``results/NAME/NOTES.md``,
when present, is included after the table: what the run shows in words, written by a person.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from ibjax import io

ORDER = (
    "tishby",
    "saxe",
    "snr",
    "depth_and_data",
    "ib_bound",
    "linear_teacher",
    "goldfeld",
    "edge_mnist",
    "cnn",
    "skipping",
    "as_if_random",
    "quantized",
    "robustness",
)
AGREE = {True: "yes", False: "**no**", None: "undecided"}


def agreement(c: dict) -> str:
    """'yes', '**no**', or 'undecided: <reason>' (a claim the run cannot decide is never rendered as no)."""
    if c["agrees"] is None and c.get("reason"):
        return f"undecided: {c['reason']}" + _effect(c)
    return AGREE[c["agrees"]] + _effect(c)


def _effect(c: dict) -> str:
    """' (effect E, interval [lo, hi], threshold T)' from the verdict module's entry, when it has them."""
    e, iv, t = c.get("effect"), c.get("interval") or [None, None], c.get("threshold")
    if e is None:
        return ""
    out = f"effect {e:.3g}"
    if None not in iv and iv[0] != iv[1]:
        out += f", interval [{iv[0]:.3g}, {iv[1]:.3g}]"
    return f" ({out}" + (f", threshold {t:.3g})" if t is not None else ")")


def fmt(measured) -> str:
    """A claim's measured numbers as compact text: 'name: mean ± se (n seeds)'."""
    if isinstance(measured, dict) and "mean" in measured:
        if measured["mean"] is None:
            return "not reached" + (f" ({measured['n_seeds']} seeds)" if "n_seeds" in measured else "")
        se = f" ± {measured['se']:.3g}" if measured.get("se") else ""
        n = f" ({measured['n_seeds']} seeds)" if "n_seeds" in measured else ""
        return f"{measured['mean']:.4g}{se}{n}"
    if isinstance(measured, dict):
        return "; ".join(f"{k}: {fmt(v)}" for k, v in measured.items())
    if isinstance(measured, float):
        return f"{measured:.4g}"
    return str(measured)


PHASES = ("load", "compile", "compute", "write", "plot")


def split(s: dict) -> str:
    """ ", of which L s load, C s compile (P programs), X s compute, W s write, F s plot" when the summary
    records its timing (older summaries: compile and figures only)."""
    t = s.get("timing")
    if not t:
        return ""
    if "plot [s]" in t:
        parts = [
            f"{t[k + ' [s]']:.0f} s {k}" + (f" ({t['programs compiled']} programs)" if k == "compile" else "")
            for k in PHASES
        ]
        return ", of which " + ", ".join(parts)
    return (
        f", of which {t['compile [s]']:.0f} s compiling ({t['programs compiled']} programs) and "
        f"{t['figures and claims [s]']:.0f} s figures and claims"
    )


def cell(text: str) -> str:
    """Text for one markdown table cell: a '|' inside (a norm ||K||) would split the row."""
    return str(text).replace("|", "\\|")


def section(name: str, root: Path) -> str:
    s = json.loads((root / name / "summary.json").read_text())
    doc = (importlib.import_module(f"experiments.{name}").__doc__ or name).strip().split("\n\n")
    title, rest = doc[0], [p for p in doc[1:] if not p.lstrip().startswith("python -m")]
    figs = [f for f in s.get("files", []) if f.endswith((".png", ".gif"))]
    lines = [f"## {name}: {title}", "", *(p.strip() + "\n" for p in rest[:2])]
    lines += [f"![{f}]({name}/{f})" for f in figs] + [""]
    lines += [
        f"Command: `{s['command'].strip()}` ({s['seconds']:.0f} s on 2 CPU cores{split(s)}; data: {s.get('dataset', '?')})",
        "",
    ]
    lines += ["| claim | source | this run | agrees |", "|---|---|---|---|"]
    lines += [
        f"| {cell(c['claim'])} | {cell(c['source'])} | {cell(fmt(c['measured']))} | {cell(agreement(c))} |"
        for c in s["claims"]
    ]
    notes = root / name / "NOTES.md"
    if notes.is_file():
        lines += ["", notes.read_text().strip()]
    return "\n".join(lines) + "\n"


def _done(t: dict) -> str:
    """How the timed run got its results: from scratch, or by reusing runs and planes."""
    if "runs trained" not in t:
        return "-"
    reused = t["runs reused"] + t["planes reused"]
    if not reused:
        return "from scratch"
    done = t["runs trained"] + t["planes computed"]
    return f"rerun: reused {t['runs reused']} runs, {t['planes reused']} planes" + (
        f"; trained {t['runs trained']}, computed {t['planes computed']}" if done else ""
    )


def time_table(names, root: Path) -> str:
    """Each experiment's committed wall time split into load / compile / compute / write / plot."""
    lines = [
        "| experiment | wall [s] | " + " | ".join(f"{p} [s]" for p in PHASES) + " | programs compiled | run as |",
        "|---|---|" + "---|" * len(PHASES) + "---|---|",
    ]
    for n in names:
        s = json.loads((root / n / "summary.json").read_text())
        t = s.get("timing") or {}
        if "plot [s]" in t:
            cells = [f"{t[p + ' [s]']:.0f}" for p in PHASES] + [str(t["programs compiled"])]
        else:  # a summary from before the split: what it recorded
            cells = ["-", f"{t['compile [s]']:.0f}" if t else "-", "-", "-", "-", str(t.get("programs compiled", "-"))]
        lines.append(f"| {n} | {s['seconds']:.0f} | " + " | ".join(cells) + f" | {_done(t)} |")
    note = (
        "Wall time of each committed run on 2 CPU cores (plot: figures and claims, after the run; compute: "
        "training and estimation, the rest). Compile counts what the run still compiled with the persistent "
        "compilation cache as the machine had it. A dash: the committed run predates the split. Run as: from "
        "scratch (every run trained, every plane computed), or a rerun that found finished run directories and "
        "saved planes (its time is not what a first run costs: README's experiment table has those)."
    )
    return "## Wall time\n\n" + note + "\n\n" + "\n".join(lines) + "\n"


def main(root: str | Path = "results") -> Path:
    root = Path(root)
    names = [n for n in ORDER if (root / n / "summary.json").is_file()]
    names += sorted(
        p.parent.name
        for p in root.glob("*/summary.json")
        if p.parent.name not in names and not p.parent.name.endswith("_quick") and p.parent.name != "benchmarks"
    )
    head = (
        "# Results\n\nEvery experiment's figures, the command that made them and the paper's claims against "
        "what the committed run shows. Generated by `python -m experiments._report` from each "
        "`results/NAME/summary.json`; numbers are means ± standard errors over seeds. "
        "`python -m experiments.all` reruns every experiment and regenerates this page.\n"
    )
    verdicts = root / "VERDICTS.md"  # the introduction: how the verdicts changed under the shared rule
    if verdicts.is_file():
        head += "\n" + verdicts.read_text().strip() + "\n"
    path = root / "README.md"
    body = "\n".join(section(n, root) for n in names)
    io.atomic_write_bytes(path, (head + "\n" + time_table(names, root) + "\n" + body).encode())
    print(f"wrote {path} ({len(names)} experiment(s): {', '.join(names)})")
    return path


if __name__ == "__main__":
    main()
