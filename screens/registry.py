"""Which screens the app shows. Adding a screen is one line in ``SCREENS``.

Entries name their class as "module:Class" so a screen's module is imported only when it is first
shown (the first paint stays fast). Register only screens that work.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from textual.screen import Screen


@dataclass(frozen=True)
class ScreenEntry:
    key: str
    title: str
    target: str  # "package.module:ScreenClass"

    @property
    def mode(self) -> str:
        return self.title.lower()

    def load(self) -> type[Screen]:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def factory(self) -> Callable[[], Screen]:
        return lambda: self.load()()


SCREENS: list[ScreenEntry] = [
    ScreenEntry("1", "Models", "screens.models:ModelsScreen"),
    ScreenEntry("2", "Datasets", "screens.datasets:DatasetsScreen"),
    ScreenEntry("3", "Experiments", "screens.experiments:ExperimentsScreen"),
    ScreenEntry("4", "Rate", "screens.rating:RateScreen"),
    ScreenEntry("5", "Results", "screens.results:ResultsScreen"),
    ScreenEntry("6", "Fine-tune", "screens.finetune:FinetuneScreen"),
    ScreenEntry("7", "Monitor", "screens.monitor:MonitorScreen"),
]
