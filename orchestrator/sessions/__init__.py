"""The session runtime: sessions as durable resources, advanced checkpoint by checkpoint.

`record` (what a session is), `ports` (repository, queue, subscriptions), `service` (what the
API does: create, wait, owned, cancel, events), `worker` and `checkpoints` (advancing one
session), one module per backend (`memory`, `postgres`, `dynamodb`, `sqs`), `push` and
`metrics`. The loop core never imports this package; it sees only its own `SessionStore`.
"""
