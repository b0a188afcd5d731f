"""The Jupyter workbench (``nasbench_lab.widgets``): live dashboards over the headless engine.

``launch(...)`` builds a run and its :class:`RunDashboard`; :class:`ArchitectureExplorer` walks a
search space; :class:`RunBrowser` replays stored runs; :class:`Launcher` is the form version of
``launch``; :class:`StrategyArena` races black-box strategies; :class:`ParetoSearch` grows Pareto fronts live; :class:`DartsControls` changes a
differentiable run's arch learning rate or temperature while it is paused; :class:`SweepView` follows a
sweep (many runs on a process pool or Ray) live. Everything here only reads runs (``run.events``, the RunStore) and draws with
``nasbench_lab.viz``.
"""

from .arena import StrategyArena
from .browser import RunBrowser
from .darts import DartsControls
from .dashboard import RunDashboard
from .explorer import ArchitectureExplorer
from .launch import Launcher, launch
from .pareto import ParetoSearch
from .sweep import SweepView

__all__ = ["ArchitectureExplorer", "DartsControls", "Launcher", "ParetoSearch", "RunBrowser", "RunDashboard",
           "StrategyArena", "SweepView", "launch"]
