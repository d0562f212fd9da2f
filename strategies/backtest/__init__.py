"""The backtest (回测): the shop's past requests replayed through a strategy set, compared with
what really happened. docs/backtest.md says what it does for a merchant.

- ``matcher``: ``strategies.matching.evaluate`` compiled once per strategy set, for speed;
- ``loaders``: the period's requests streamed from PostgreSQL, the seeds, the snapshots;
- ``replay``: the engine (ledgers, limits, releases), one ``Replayed`` per request;
- ``report``: the aggregates and the changed requests, saved on a ``BacktestRun``;
- ``services``: start, execute (the Celery task's body) and cancel a run;
- ``admin`` and ``views``: the buttons, the report page, its status and CSV.
"""
