"""Surveys in the gateway: the in-memory book it targets and checks answers from, and its warehouse loader."""
