"""Pravis web dashboards: panels as parameterized ClickHouse SQL, charts drawn in the browser."""
