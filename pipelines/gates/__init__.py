"""Release gates: one module per family, one registry (`registry.GATES`), one typed result each.

Families: `contract` (GX release suite, synthetic rows present), `keys` (referential integrity,
primary keys), `pii` (PII replay), `constraints` (business rules), `quality` (SDMetrics quality
and diagnostic), `privacy` (exact copies, DCR low tail, DCR baseline protection), `utility` (TSTR vs TRTR,
rarest-class recall), `bias` (group shares and target rates of the `sensitive` columns).
"""

from pipelines.gates.base import Gate, GateContext, GateResult, gate
from pipelines.gates.registry import GATES, register

__all__ = ["GATES", "Gate", "GateContext", "GateResult", "gate", "register"]
