"""The merchant back office. Importing the package registers every strategies admin; custom views
(reorder, template, export, history) check the shop themselves, and writes go through
``strategies.services``."""

from strategies.admin import (  # noqa: F401
    backtest,
    channels,
    common,
    platform_data,
    popular,
    shops,
    strategy,
)
