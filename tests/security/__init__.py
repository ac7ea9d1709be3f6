"""Security suite: each finding of issue 17 replayed against real services, asserting the refusal and that
nothing changed."""
