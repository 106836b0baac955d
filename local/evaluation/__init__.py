"""Evaluation (`lockgate eval`): golden cases judged by what the agent did to the world.

A case (YAML, `evals/cases/NN_name.yaml`) gives a request, a principal, optional fixture SQL,
a model (an inline script for CI, or `bedrock:MODEL_ID` for real runs), limits, and the
expected final state: the outcome, rows returned by SQL queries, tables that must be
unchanged, and bounds on steps, tokens and validation retries. What the model *said* is not
checked; the database is.

Every run of every case gets its own database, cloned from a template that is migrated and
seeded once per evaluation, so cases cannot leak into each other. `--repeat K` runs each case
K times and reports pass^k (all K runs pass), because real models are not deterministic.
Results: a table on the terminal, `report.json` and `chart.png` in `--out`, and a non-zero
exit code on any failure so the command can gate CI.

`cases` (the format and loading) → `databases` (template, clones, snapshots) → `runner` (one
run per clone through the real loop) → `judge` (the checks on the state left) → `results` →
`report` (table, JSON, chart); `cli` is the subcommand.
"""
