"""Live API answers as the stream tier sends them (README "Live API"), written out by hand so that the
dashboards' reading of `pravis_schemas.live_api` is checked against the documented shape."""

SUMMARY_BODY = (
    b'{"project_id":"shop","as_of":"2026-01-01T10:00:30.5Z","window":"5m","window_start":"2026-01-01T09:56:00Z",'
    b'"partitions":[0,1],"total_partitions":2,'
    b'"active_users":{"last_5m":4,"last_1h":9,"today":12,"relative_error":0.0129},'
    b'"events":{"total":50,"per_minute":10.0,"by_type":{"api_request":10,"error":2,"page_view":38}},'
    b'"errors":{"failures":5,"error_events":2,"error_rate":0.1},'
    b'"api":{"requests":10,"server_errors":0,"client_errors":1,"error_rate":0.0,"cache_hit_ratio":null,'
    b'"latency_ms":{"p50":12.0,"p95":80.0,"p99":95.5},"endpoints":{"/pay":{"requests":10,"server_errors":0,'
    b'"client_errors":1,"error_rate":0.0,"cache_hit_ratio":null,"latency_ms":{"p50":12.0,"p95":80.0,"p99":95.5}}}},'
    b'"ai":{"requests":0,"success_rate":null,"by_model":[]},'
    b'"feedback":{"count":0,"negative":0,"average_rating":null}}'
)

TIMESERIES_BODY = (
    b'{"project_id":"shop","partitions":[0,1],"minutes":['
    b'{"minute":"2026-01-01T09:59:00Z","events":20,"by_type":{"page_view":20},"failures":1,"error_rate":0.05,'
    b'"api_requests":0,"api_error_rate":null,"api_latency_ms":null,"active_users":3,"feedback":0},'
    b'{"minute":"2026-01-01T10:00:00Z","events":30,"by_type":{"api_request":10,"page_view":20},"failures":4,'
    b'"error_rate":0.133333,"api_requests":10,"api_error_rate":0.0,'
    b'"api_latency_ms":{"p50":12.0,"p95":80.0,"p99":95.5},"active_users":4,"feedback":0}]}'
)

ALERTS_BODY = (
    b'{"project_id":"shop","firing":[{"alert_id":"shop:error_rate:1","status":"firing","severity":"critical",'
    b'"project_id":"shop","metric":"error_rate","labels":{"endpoint":"/pay"},"observed":0.4,"expected":0.01,'
    b'"window_start":"2026-01-01T09:58:00Z","window_end":"2026-01-01T09:59:00Z",'
    b'"started_at":"2026-01-01T09:58:00Z","resolved_at":null,"message":"error rate 40% (expected 1%)"}]}'
)

PROJECTS_BODY = b'{"projects":["default","shop"]}'
