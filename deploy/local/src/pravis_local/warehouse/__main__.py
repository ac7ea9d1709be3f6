"""``python -m pravis_local.warehouse``: serve the warehouse (see ``server.main`` for the options)."""

from pravis_local.warehouse.server import main

if __name__ == "__main__":
    main()
