"""The data card as Markdown (`datacard.md`), as a section of the HTML report, and its gaps as
`synthgate audit` prints them. The card itself is built by pipelines/datacard.py."""

from __future__ import annotations

import html
from typing import Any

from pipelines.datacard import NOT_DECLARED

DATASHEET_TITLES = {
    "motivation": "Motivation",
    "composition": "Composition",
    "collection": "Collection process",
    "preprocessing": "Preprocessing, cleaning, labelling",
    "uses": "Uses",
    "distribution": "Distribution",
    "maintenance": "Maintenance",
}
"""Datasheets for Datasets (Gebru et al.): the sections the card maps its facts onto."""


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_answers(answers: list[dict[str, Any]]) -> list[str]:
    lines = ["| question | answer | source |", "|---|---|---|"]
    lines += [f"| {_md_cell(a['question'])} | {_md_cell(a['answer'])} | `{_md_cell(a['source'])}` |" for a in answers]
    return [*lines, ""]


def markdown(card: dict[str, Any]) -> str:
    """The card as a Markdown page: Art. 10(2) (a)-(h), the datasheet sections, the gaps."""
    version = f" v{card['version']}" if card.get("version") is not None else " (not released)"
    lines = [
        f"# Data card: {card['dataset']}{version}",
        "",
        "Generated from the run records (every answer names its source as `file#field`); free text comes "
        f'from the `governance:` block of params.yaml ("{NOT_DECLARED}" where it is missing).',
        "",
        "## EU AI Act Art. 10(2)",
        "",
    ]
    for section in card["article_10_2"]:
        lines += [f"### ({section['point']}) {section['title']}", "", *_md_answers(section["answers"])]
    lines += ["## Datasheet for the dataset", ""]
    for part in card["datasheet"]:
        lines += [f"### {DATASHEET_TITLES[part['id']]}", ""]
        if part.get("see"):
            lines += [f"See Art. 10(2) {', '.join(f'({p})' for p in part['see'])}.", ""]
        if part["answers"]:
            lines += _md_answers(part["answers"])
    lines += ["## Gaps", ""]
    lines += [f"- {g}" for g in card["gaps"]] or ["None: every question is answered."]
    return "\n".join(lines) + "\n"


def html_section(card: dict[str, Any]) -> str:
    """The card as an HTML section of the report (`id=datacard`)."""
    e = html.escape

    def rows(answers: list[dict[str, Any]]) -> str:
        return "".join(
            f"<tr><td>{e(a['question'])}</td><td>{e(a['answer'])}</td><td><code>{e(a['source'])}</code></td></tr>"
            for a in answers
        )

    parts = [
        f"<tr><th colspan=3>({e(s['point'])}) {e(s['title'])}</th></tr>{rows(s['answers'])}"
        for s in card["article_10_2"]
    ]
    parts += [
        f"<tr><th colspan=3>{e(DATASHEET_TITLES[d['id']])}</th></tr>{rows(d['answers'])}"
        for d in card["datasheet"]
        if d["answers"]
    ]
    gaps = "".join(f"<li>{e(g)}</li>" for g in card["gaps"]) or "<li>none</li>"
    return (
        "<section id=datacard><h2>Data card (EU AI Act Art. 10(2), datasheet)</h2>"
        "<p class=muted>Every answer from a run record (source as <code>file#field</code>); also released as "
        "<code>datacard.md</code> and <code>datacard.json</code>.</p>"
        f"<table><thead><tr><th>question</th><th>answer</th><th>source</th></tr></thead>{''.join(parts)}</table>"
        f"<h3>Gaps</h3><ul>{gaps}</ul></section>"
    )


def with_card(page: str, card: dict[str, Any]) -> str:
    """The report page with the card's section added at its end (before `</body>`)."""
    head, body, tail = page.rpartition("</body>")
    return f"{head}{html_section(card)}\n{body}{tail}" if body else page + html_section(card)


def audit_text(card: dict[str, Any]) -> str:
    """What `synthgate audit` prints: the gaps, or that the card is complete."""
    if not card["gaps"]:
        return f"{card['dataset']}: data card complete (every question answered from a record or params.yaml)"
    lines = [f"{card['dataset']}: data card has {len(card['gaps'])} gap(s):"]
    lines += [f"  - {g}" for g in card["gaps"]]
    lines.append("Declare the missing free text in params.yaml `datasets.<ds>.governance`; re-run the stages")
    lines.append("whose records are missing (`synthgate run <ds>` or `dvc repro`).")
    return "\n".join(lines)
