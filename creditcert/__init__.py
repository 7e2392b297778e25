"""creditcert: the engine a city's credit centre runs for special credit reports (信用代证).

Library entry points: `config.load` (a city's settings), `store.Store` (its data),
`records.resolve_request` and `records.lookup` (what a subject's record holds), `codes.validate`
(credit codes), `catalog.load` (domain catalogs), `ingest.ingest_file` (departments' exports).
"""

__version__ = "0.1.0"
