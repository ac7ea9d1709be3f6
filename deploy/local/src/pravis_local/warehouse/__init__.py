"""The local warehouse: the ClickHouse HTTP interface served from the embedded chdb engine.

Only one process may open a chdb data path, so this server owns ``settings.chdb_path`` and every worker and
analyst tool (clickhouse-connect, curl, Grafana) reaches the data over ClickHouse's HTTP protocol. Run it
with ``python -m pravis_local.warehouse [--host H] [--port P] [--data-dir D] [--connections N]``; build the
app with ``server.create_app``. Its parts: ``protocol`` (the HTTP interface's parameters, INSERT statements,
error codes, formats), ``compression`` (content codings), ``pool`` (the chdb connections), ``access`` (who
may ask what) and ``server`` (the app and the command line).

Locked down like a ClickHouse server (see ``access``): GET runs on connections with readonly=2, as
ClickHouse's HTTP handler sets it, so the engine refuses every write over GET; with PRAVIS_WAREHOUSE_PASSWORD
set, every request but /ping authenticates as ClickHouse accepts it (Basic auth, X-ClickHouse-User/-Key,
user/password parameters); requests addressed to a Host or sent from a web Origin that is neither loopback
nor in PRAVIS_WAREHOUSE_ALLOWED_HOSTS are refused, and no CORS header is ever sent; file access is confined
to ``PRAVIS_DATA_DIR/user_files`` (the working directory of ``server.main``, so relative names land there),
INTO OUTFILE / FROM INFILE are refused, and url()/remote()/s3()... are off unless
PRAVIS_WAREHOUSE_REMOTE_HOSTS lists hosts. ``server.main`` will not listen beyond loopback without a password.

Not a full ClickHouse server: one user; HTTP sessions (session_id) are ignored, so a SET statement lasts
for its own request only, and requests share small pools of chdb connections, one request per connection at
a time; dictionaries with a SOURCE are refused; ClickHouse's own block compression (compress=1 /
decompress=1) and external data tables are refused.
"""
