"""Privacy figures of synthetic rows, each judged against real unseen (holdout) rows.

`privacy_figures(synthetic, train, holdout, excluded, settings, seed)` computes every figure the
privacy gates judge (`pipelines.gates.privacy`), as a pure function a benchmark can call:
the compared and left-out columns (`columns`), exact copies and the DCR low tail (`figures`,
`distances`), and SDMetrics' DCRBaselineProtection (`attacks`). docs/gates-privacy.md gives the
reasoning behind each default threshold and the control figures.
"""

from pipelines.privacy.figures import PrivacyFigures, allowance, privacy_figures

__all__ = ["PrivacyFigures", "allowance", "privacy_figures"]
