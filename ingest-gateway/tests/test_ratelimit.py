from pravis_gateway.ratelimit import RateLimiter


def test_burst_then_refill_at_the_rate() -> None:
    limiter = RateLimiter(rate_per_s=100, burst=500)

    assert limiter.retry_after("k", 500, now=0.0) == 0
    assert limiter.retry_after("k", 50, now=0.0) == 1
    assert limiter.retry_after("k", 50, now=0.5) == 0
    assert limiter.retry_after("k", 150, now=1.0) == 1


def test_keys_have_separate_buckets() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=10)

    assert limiter.retry_after("a", 10, now=0.0) == 0
    assert limiter.retry_after("b", 10, now=0.0) == 0
    assert limiter.retry_after("a", 1, now=0.0) == 1


def test_batch_bigger_than_the_burst_waits_for_a_full_bucket() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=20)

    assert limiter.retry_after("k", 500, now=0.0) == 0
    assert limiter.retry_after("k", 500, now=0.0) == 2


def test_zero_rate_disables_limiting() -> None:
    assert RateLimiter(rate_per_s=0, burst=0).retry_after("k", 10**6, now=0.0) == 0
