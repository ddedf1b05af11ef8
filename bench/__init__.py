"""`make bench`: throughput against the client's ceiling, backtest speed, latency and memory, in one
run."""
