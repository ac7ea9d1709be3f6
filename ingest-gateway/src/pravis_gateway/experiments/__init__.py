"""A/B testing in the gateway: pure assignment, the warehouse-backed definition store and its cache."""
